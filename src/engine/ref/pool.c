/* pool.c - reference max and average pooling, and the global mean. */
#include <float.h>

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
