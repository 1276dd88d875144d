/*
 * train.c - the oneDNN backend's training slots: convolution forward for
 * changing weights, its backward passes, and pooling backward.
 */
#include "engine/dnnl/dnnl_backend.h"

int fn_dnnl_conv2d_train(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    (void)ex, (void)x, (void)d, (void)y;
    return -1;
}

int fn_dnnl_conv2d_backward_data(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx) {
    (void)ex, (void)dy, (void)d, (void)dx;
    return -1;
}

int fn_dnnl_conv2d_backward_weights(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy,
                                    const fn_conv_desc *d, float *dw, float *dbias) {
    (void)ex, (void)x, (void)dy, (void)d, (void)dw, (void)dbias;
    return -1;
}

int fn_dnnl_maxpool_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                             fn_padding pad, fn_tensor *dx) {
    (void)ex, (void)x, (void)dy, (void)k, (void)stride, (void)pad, (void)dx;
    return -1;
}

int fn_dnnl_avgpool_backward(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                             fn_tensor *dx) {
    (void)ex, (void)dy, (void)k, (void)stride, (void)pad, (void)dx;
    return -1;
}
