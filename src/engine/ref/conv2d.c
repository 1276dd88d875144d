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

#include "engine/backward.h"
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

/* ---- backward (engine/backward.h) */

typedef struct conv_bwd_job {
    const fn_tensor *x, *dy;
    const fn_conv_desc *d;
    fn_tensor *dx;
    float *dw;
    int pad_top, pad_left;
} conv_bwd_job;

/* dx by gathering: each input pixel sums, over the taps that reached it,
 * w[tap][ci][:] . dy[out pixel][:]. Parallel over input rows, no races. */
static void conv_bwd_data_rows(void *vp, int begin, int end) {
    const conv_bwd_job *j = vp;
    const fn_tensor *dy = j->dy;
    const fn_conv_desc *d = j->d;
    fn_tensor *dx = j->dx;
    const int cin = d->cin, cout = d->cout, s = d->stride;
    for (int row = begin; row < end; row++) {
        int b = row / dx->h, iy = row % dx->h;
        for (int ix = 0; ix < dx->w; ix++) {
            float *o = fn_at(dx, b, iy, ix, 0);
            memset(o, 0, sizeof(float) * (size_t)cin);
            for (int ky = 0; ky < d->kh; ky++) {
                int ty = iy + j->pad_top - ky;
                if (ty < 0 || ty % s) continue;
                int oy = ty / s;
                if (oy >= dy->h) continue;
                for (int kx = 0; kx < d->kw; kx++) {
                    int tx = ix + j->pad_left - kx;
                    if (tx < 0 || tx % s) continue;
                    int ox = tx / s;
                    if (ox >= dy->w) continue;
                    const float *g = fn_at(dy, b, oy, ox, 0);
                    if (d->depthwise) {
                        const float *wp = d->weights + ((size_t)ky * d->kw + kx) * cin;
                        for (int c = 0; c < cin; c++) o[c] += g[c] * wp[c];
                    } else {
                        const float *wp = d->weights + ((size_t)ky * d->kw + kx) * cin * cout;
                        for (int ci = 0; ci < cin; ci++) {
                            const float *wr = wp + (size_t)ci * cout;
                            float acc = 0.0f;
                            for (int co = 0; co < cout; co++) acc += wr[co] * g[co];
                            o[ci] += acc;
                        }
                    }
                }
            }
        }
    }
}

void fn_ref_conv2d_backward_data(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx) {
    conv_bwd_job j = {NULL, dy, d, dx, NULL, 0, 0};
    int o;
    fn_window_out(dx->h, d->kh, d->stride, d->padding, &o, &j.pad_top);
    fn_window_out(dx->w, d->kw, d->stride, d->padding, &o, &j.pad_left);
    fn_parallel_for(ex, dx->n * dx->h, 1, conv_bwd_data_rows, &j);
}

/* dw by taps: each task owns the filter slice of one (ky, kx) and sweeps
 * the whole batch, adding outer products x[ci] * dy[:] into it. */
static void conv_bwd_weights_taps(void *vp, int begin, int end) {
    const conv_bwd_job *j = vp;
    const fn_tensor *x = j->x, *dy = j->dy;
    const fn_conv_desc *d = j->d;
    const int cin = d->cin, cout = d->cout, s = d->stride;
    for (int tap = begin; tap < end; tap++) {
        const int ky = tap / d->kw, kx = tap % d->kw;
        float *dw = j->dw + (size_t)tap * cin * (d->depthwise ? 1 : cout);
        for (int b = 0; b < dy->n; b++)
            for (int oy = 0; oy < dy->h; oy++) {
                int iy = oy * s - j->pad_top + ky;
                if (iy < 0 || iy >= x->h) continue;
                for (int ox = 0; ox < dy->w; ox++) {
                    int ix = ox * s - j->pad_left + kx;
                    if (ix < 0 || ix >= x->w) continue;
                    const float *xp = fn_at(x, b, iy, ix, 0);
                    const float *g = fn_at(dy, b, oy, ox, 0);
                    if (d->depthwise) {
                        for (int c = 0; c < cin; c++) dw[c] += xp[c] * g[c];
                        continue;
                    }
                    for (int ci = 0; ci < cin; ci++) {
                        const float xv = xp[ci];
                        if (xv == 0.0f) continue; /* after a ReLU, often */
                        float *wr = dw + (size_t)ci * cout;
                        for (int co = 0; co < cout; co++) wr[co] += xv * g[co];
                    }
                }
            }
    }
}

void fn_ref_conv2d_backward_weights(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy,
                                    const fn_conv_desc *d, float *dw, float *dbias) {
    conv_bwd_job j = {x, dy, d, NULL, dw, 0, 0};
    int o;
    fn_window_out(x->h, d->kh, d->stride, d->padding, &o, &j.pad_top);
    fn_window_out(x->w, d->kw, d->stride, d->padding, &o, &j.pad_left);
    if (dw) fn_parallel_for(ex, d->kh * d->kw, 1, conv_bwd_weights_taps, &j);
    if (dbias) fn_bias_add_backward(dy, dbias);
}

int fn_conv2d_backward(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, const fn_tensor *y,
                       const fn_tensor *dy, fn_tensor *dx, float *dw, float *dbias, float *dscale, float *dshift) {
    const size_t n = fn_tensor_count(y);
    float *g = fn_arena_floats(ex->arena, n);
    if (!g) return -1;
    fn_tensor gt = fn_tensor_make(y->n, y->h, y->w, y->c, g);
    fn_activate_backward(y, dy, d->act, d->alpha, &gt);
    if (dshift) fn_bias_add_backward(&gt, dshift);
    if (d->scale) {
        if (dscale) {
            /* The scale's input, conv(x) + bias, is not kept: recompute it. */
            float *u = fn_arena_floats(ex->arena, n);
            if (!u) return -1;
            fn_conv_desc plain = *d;
            plain.scale = plain.shift = NULL;
            plain.act = FN_ACT_NONE;
            fn_tensor ut = fn_tensor_make(y->n, y->h, y->w, y->c, u);
            fn_conv2d_train(ex, x, &plain, &ut);
            fn_scale_shift_backward(&ut, &gt, d->scale, &gt, dscale, NULL);
        } else {
            fn_scale_shift_backward(NULL, &gt, d->scale, &gt, NULL, NULL);
        }
    }
    if (dbias) fn_bias_add_backward(&gt, dbias);
    fn_conv2d_backward_both(ex, x, &gt, d, dx, dw);
    return 0;
}
