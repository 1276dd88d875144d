/*
 * backward.c - routes the training ops that a backend may replace (the
 * slots after state_free in struct fn_backend) to the backend in use, and
 * to the reference when the slot is NULL or declines the call
 * (fn_conv2d_backward_both: to the two single-pass routes).
 */
#include "engine/backward.h"

static const fn_backend *backend_of(const fn_exec *ex) {
    return ex && ex->backend ? ex->backend : &fn_backend_ref;
}

void fn_conv2d_train(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    const fn_backend *be = backend_of(ex);
    if (!be->conv2d_train || be->conv2d_train(ex, x, d, y) != 0) fn_ref_conv2d(ex, x, d, y);
}

void fn_conv2d_backward_data(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx) {
    const fn_backend *be = backend_of(ex);
    if (!be->conv2d_backward_data || be->conv2d_backward_data(ex, dy, d, dx) != 0)
        fn_ref_conv2d_backward_data(ex, dy, d, dx);
}

void fn_conv2d_backward_weights(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, const fn_conv_desc *d,
                                float *dw, float *dbias) {
    const fn_backend *be = backend_of(ex);
    if (!be->conv2d_backward_weights || be->conv2d_backward_weights(ex, x, dy, d, dw, dbias) != 0)
        fn_ref_conv2d_backward_weights(ex, x, dy, d, dw, dbias);
}

void fn_conv2d_backward_both(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, const fn_conv_desc *d,
                             fn_tensor *dx, float *dw) {
    const fn_backend *be = backend_of(ex);
    if ((!dx && !dw) || (be->conv2d_backward_both && be->conv2d_backward_both(ex, x, dy, d, dx, dw) == 0)) return;
    if (dw) fn_conv2d_backward_weights(ex, x, dy, d, dw, NULL);
    if (dx) fn_conv2d_backward_data(ex, dy, d, dx);
}

void fn_maxpool_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                         fn_padding pad, fn_tensor *dx) {
    const fn_backend *be = backend_of(ex);
    if (!be->maxpool_backward || be->maxpool_backward(ex, x, dy, k, stride, pad, dx) != 0)
        fn_ref_maxpool_backward(ex, x, dy, k, stride, pad, dx);
}

void fn_avgpool_backward(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                         fn_tensor *dx) {
    const fn_backend *be = backend_of(ex);
    if (!be->avgpool_backward || be->avgpool_backward(ex, dy, k, stride, pad, dx) != 0)
        fn_ref_avgpool_backward(ex, dy, k, stride, pad, dx);
}
