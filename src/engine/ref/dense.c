/* dense.c - reference fully connected layer: y = x . W + b, W is [in][out]. */
#include "engine/backward.h"
#include "engine/engine.h"

void fn_ref_dense(const fn_exec *ex, const fn_tensor *x, const float *w, const float *bias, fn_tensor *y) {
    (void)ex;
    const size_t in = (size_t)x->h * x->w * x->c;
    const int out = y->c;
    for (int b = 0; b < x->n; b++) {
        const float *xr = x->data + (size_t)b * in;
        float *o = y->data + (size_t)b * out;
        for (int j = 0; j < out; j++) o[j] = bias ? bias[j] : 0.0f;
        for (size_t i = 0; i < in; i++) {
            const float xv = xr[i];
            const float *wr = w + i * (size_t)out;
            for (int j = 0; j < out; j++) o[j] += xv * wr[j];
        }
    }
}

void fn_dense_backward(const fn_exec *ex, const fn_tensor *x, const float *w, const fn_tensor *dy, fn_tensor *dx,
                       float *dw, float *dbias) {
    (void)ex;
    const size_t in = (size_t)x->h * x->w * x->c;
    const int out = dy->c;
    for (int b = 0; b < x->n; b++) {
        const float *xr = x->data + (size_t)b * in, *g = dy->data + (size_t)b * out;
        if (dx) {
            float *o = dx->data + (size_t)b * in;
            for (size_t i = 0; i < in; i++) {
                const float *wr = w + i * (size_t)out;
                float acc = 0.0f;
                for (int j = 0; j < out; j++) acc += wr[j] * g[j];
                o[i] = acc;
            }
        }
        if (dw)
            for (size_t i = 0; i < in; i++) {
                const float xv = xr[i];
                float *wr = dw + i * (size_t)out;
                for (int j = 0; j < out; j++) wr[j] += xv * g[j];
            }
        if (dbias)
            for (int j = 0; j < out; j++) dbias[j] += g[j];
    }
}
