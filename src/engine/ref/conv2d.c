/*
 * conv2d.c - reference convolution and depthwise convolution, with the
 * bias / scale-shift / activation epilogue, and the reference backend table.
 *
 * Direct loops in TF's layouts: for each output pixel, accumulate
 * x[iy][ix][ci] * w[ky][kx][ci][:] into the output row, so the innermost loop
 * runs over contiguous output channels. Taps falling in the padding are
 * skipped (they would multiply zeros). Parallel over output rows.
 */
#include <string.h>

#include "engine/engine.h"

/* Every slot NULL: the reference ops, no state, graphs run op by op. */
const fn_backend fn_backend_ref = {.name = "reference"};

static inline float act_apply(float v, fn_act act, float alpha) {
    switch (act) {
    case FN_ACT_RELU: return v > 0.0f ? v : 0.0f;
    case FN_ACT_RELU6: return v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v);
    case FN_ACT_LEAKY: return v > 0.0f ? v : v * alpha;
    case FN_ACT_NONE: break;
    }
    return v;
}

/* The epilogue on one output pixel's channels. */
static void epilogue(float *o, const fn_conv_desc *d) {
    int c = d->cout;
    if (d->bias)
        for (int i = 0; i < c; i++) o[i] += d->bias[i];
    if (d->scale)
        for (int i = 0; i < c; i++) o[i] *= d->scale[i];
    if (d->shift)
        for (int i = 0; i < c; i++) o[i] += d->shift[i];
    if (d->act != FN_ACT_NONE)
        for (int i = 0; i < c; i++) o[i] = act_apply(o[i], d->act, d->alpha);
}

typedef struct conv_job {
    const fn_tensor *x;
    const fn_conv_desc *d;
    fn_tensor *y;
    int pad_top, pad_left;
} conv_job;

static void conv_rows(void *vp, int begin, int end) {
    const conv_job *j = vp;
    const fn_tensor *x = j->x;
    const fn_conv_desc *d = j->d;
    fn_tensor *y = j->y;
    const int cin = d->cin, cout = d->cout, s = d->stride;
    for (int row = begin; row < end; row++) {
        int b = row / y->h, oy = row % y->h;
        for (int ox = 0; ox < y->w; ox++) {
            float *o = fn_at(y, b, oy, ox, 0);
            memset(o, 0, sizeof(float) * (size_t)cout);
            for (int ky = 0; ky < d->kh; ky++) {
                int iy = oy * s - j->pad_top + ky;
                if (iy < 0 || iy >= x->h) continue;
                for (int kx = 0; kx < d->kw; kx++) {
                    int ix = ox * s - j->pad_left + kx;
                    if (ix < 0 || ix >= x->w) continue;
                    const float *xp = fn_at(x, b, iy, ix, 0);
                    if (d->depthwise) {
                        const float *wp = d->weights + ((size_t)ky * d->kw + kx) * cin;
                        for (int c = 0; c < cin; c++) o[c] += xp[c] * wp[c];
                    } else {
                        const float *wp = d->weights + ((size_t)ky * d->kw + kx) * cin * cout;
                        for (int ci = 0; ci < cin; ci++) {
                            const float xv = xp[ci];
                            const float *wr = wp + (size_t)ci * cout;
                            for (int co = 0; co < cout; co++) o[co] += xv * wr[co];
                        }
                    }
                }
            }
            epilogue(o, d);
        }
    }
}

void fn_ref_conv2d(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    conv_job j = {x, d, y, 0, 0};
    int oh, ow;
    fn_window_out(x->h, d->kh, d->stride, d->padding, &oh, &j.pad_top);
    fn_window_out(x->w, d->kw, d->stride, d->padding, &ow, &j.pad_left);
    fn_parallel_for(ex, y->n * y->h, 1, conv_rows, &j);
}
