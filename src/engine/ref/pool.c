/* pool.c - reference max and average pooling, and the global mean. */
#include <float.h>
#include <string.h>

#include "engine/backward.h"
#include "engine/engine.h"

typedef struct pool_job {
    const fn_tensor *x;
    fn_tensor *y;
    int k, stride, pad_top, pad_left, is_max;
} pool_job;

static void pool_rows(void *vp, int begin, int end) {
    const pool_job *j = vp;
    const fn_tensor *x = j->x;
    fn_tensor *y = j->y;
    for (int row = begin; row < end; row++) {
        int b = row / y->h, oy = row % y->h;
        int y0 = oy * j->stride - j->pad_top;
        for (int ox = 0; ox < y->w; ox++) {
            int x0 = ox * j->stride - j->pad_left;
            float *o = fn_at(y, b, oy, ox, 0);
            for (int c = 0; c < y->c; c++) o[c] = j->is_max ? -FLT_MAX : 0.0f;
            int cells = 0;
            for (int ky = 0; ky < j->k; ky++) {
                int iy = y0 + ky;
                if (iy < 0 || iy >= x->h) continue;
                for (int kx = 0; kx < j->k; kx++) {
                    int ix = x0 + kx;
                    if (ix < 0 || ix >= x->w) continue;
                    const float *p = fn_at(x, b, iy, ix, 0);
                    cells++;
                    if (j->is_max) {
                        for (int c = 0; c < y->c; c++) o[c] = p[c] > o[c] ? p[c] : o[c];
                    } else {
                        for (int c = 0; c < y->c; c++) o[c] += p[c];
                    }
                }
            }
            if (!j->is_max && cells > 0) {
                float inv = 1.0f / (float)cells;
                for (int c = 0; c < y->c; c++) o[c] *= inv;
            }
        }
    }
}

static void pool(const fn_exec *ex, const fn_tensor *x, int k, int stride, fn_padding pad, fn_tensor *y,
                 int is_max) {
    pool_job j = {x, y, k, stride, 0, 0, is_max};
    int o;
    fn_window_out(x->h, k, stride, pad, &o, &j.pad_top);
    fn_window_out(x->w, k, stride, pad, &o, &j.pad_left);
    fn_parallel_for(ex, y->n * y->h, 1, pool_rows, &j);
}

void fn_maxpool(const fn_exec *ex, const fn_tensor *x, int k, int stride, fn_padding pad, fn_tensor *y) {
    pool(ex, x, k, stride, pad, y, 1);
}

void fn_avgpool(const fn_exec *ex, const fn_tensor *x, int k, int stride, fn_padding pad, fn_tensor *y) {
    pool(ex, x, k, stride, pad, y, 0);
}

void fn_global_mean(const fn_tensor *x, fn_tensor *y) {
    const int hw = x->h * x->w;
    for (int b = 0; b < x->n; b++) {
        float *o = fn_at(y, b, 0, 0, 0);
        for (int c = 0; c < x->c; c++) o[c] = 0.0f;
        for (int i = 0; i < hw; i++) {
            const float *p = x->data + ((size_t)b * hw + i) * x->c;
            for (int c = 0; c < x->c; c++) o[c] += p[c];
        }
        for (int c = 0; c < x->c; c++) o[c] /= (float)hw;
    }
}

/* ---- backward (engine/backward.h). Windows overlap, so the work is split
 * by batch item: each task owns whole images of dx. */

typedef struct pool_bwd_job {
    const fn_tensor *x, *dy;
    fn_tensor *dx;
    int k, stride, pad_top, pad_left;
} pool_bwd_job;

static void maxpool_bwd_items(void *vp, int begin, int end) {
    const pool_bwd_job *j = vp;
    const fn_tensor *x = j->x, *dy = j->dy;
    fn_tensor *dx = j->dx;
    const int C = dy->c;
    /* Per channel, the best value and the window cell holding it, swept
     * over the cells with the channels innermost (contiguous). */
    float best[256];
    int arg[256];
    for (int b = begin; b < end; b++) {
        memset(fn_at(dx, b, 0, 0, 0), 0, sizeof(float) * (size_t)dx->h * dx->w * C);
        for (int oy = 0; oy < dy->h; oy++) {
            int y0 = oy * j->stride - j->pad_top;
            for (int ox = 0; ox < dy->w; ox++) {
                int x0 = ox * j->stride - j->pad_left;
                const float *g = fn_at(dy, b, oy, ox, 0);
                for (int c0 = 0; c0 < C; c0 += 256) {
                    const int nc = C - c0 < 256 ? C - c0 : 256;
                    for (int c = 0; c < nc; c++) best[c] = -FLT_MAX, arg[c] = -1;
                    for (int ky = 0; ky < j->k; ky++) {
                        int iy = y0 + ky;
                        if (iy < 0 || iy >= x->h) continue;
                        for (int kx = 0; kx < j->k; kx++) {
                            int ix = x0 + kx;
                            if (ix < 0 || ix >= x->w) continue;
                            /* The forward pass keeps the first maximum (strict >). */
                            const float *p = fn_at(x, b, iy, ix, c0);
                            const int cell = iy * x->w + ix;
                            for (int c = 0; c < nc; c++)
                                if (arg[c] < 0 || p[c] > best[c]) best[c] = p[c], arg[c] = cell;
                        }
                    }
                    float *o = fn_at(dx, b, 0, 0, c0);
                    for (int c = 0; c < nc; c++)
                        if (arg[c] >= 0) o[(size_t)arg[c] * C + c] += g[c0 + c];
                }
            }
        }
    }
}

static void avgpool_bwd_items(void *vp, int begin, int end) {
    const pool_bwd_job *j = vp;
    const fn_tensor *dy = j->dy;
    fn_tensor *dx = j->dx;
    const int C = dy->c;
    for (int b = begin; b < end; b++) {
        memset(fn_at(dx, b, 0, 0, 0), 0, sizeof(float) * (size_t)dx->h * dx->w * C);
        for (int oy = 0; oy < dy->h; oy++) {
            int y0 = oy * j->stride - j->pad_top;
            int ya = y0 < 0 ? 0 : y0, yb = y0 + j->k < dx->h ? y0 + j->k : dx->h;
            for (int ox = 0; ox < dy->w; ox++) {
                int x0 = ox * j->stride - j->pad_left;
                int xa = x0 < 0 ? 0 : x0, xb = x0 + j->k < dx->w ? x0 + j->k : dx->w;
                int cells = (yb - ya) * (xb - xa);
                if (cells <= 0) continue;
                const float inv = 1.0f / (float)cells;
                const float *g = fn_at(dy, b, oy, ox, 0);
                for (int iy = ya; iy < yb; iy++)
                    for (int ix = xa; ix < xb; ix++) {
                        float *o = fn_at(dx, b, iy, ix, 0);
                        for (int c = 0; c < C; c++) o[c] += g[c] * inv;
                    }
            }
        }
    }
}

static void pool_bwd(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                     fn_padding pad, fn_tensor *dx, int is_max) {
    pool_bwd_job j = {x, dy, dx, k, stride, 0, 0};
    int o;
    fn_window_out(dx->h, k, stride, pad, &o, &j.pad_top);
    fn_window_out(dx->w, k, stride, pad, &o, &j.pad_left);
    fn_parallel_for(ex, dx->n, 1, is_max ? maxpool_bwd_items : avgpool_bwd_items, &j);
}

void fn_ref_maxpool_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                             fn_padding pad, fn_tensor *dx) {
    pool_bwd(ex, x, dy, k, stride, pad, dx, 1);
}

void fn_ref_avgpool_backward(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                             fn_tensor *dx) {
    pool_bwd(ex, NULL, dy, k, stride, pad, dx, 0);
}

void fn_global_mean_backward(const fn_tensor *dy, fn_tensor *dx) {
    const int hw = dx->h * dx->w;
    for (int b = 0; b < dx->n; b++) {
        const float *g = fn_at(dy, b, 0, 0, 0);
        for (int i = 0; i < hw; i++) {
            float *o = dx->data + ((size_t)b * hw + i) * dx->c;
            for (int c = 0; c < dx->c; c++) o[c] = g[c] / (float)hw;
        }
    }
}
