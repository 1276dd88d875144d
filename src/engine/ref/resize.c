/*
 * resize.c - TF's legacy bilinear resize (align_corners = false,
 * half_pixel_centers = false), as face-api uses it, and zero padding.
 *
 * Computed in float in TF's order: the source coordinate is dst * (in/out)
 * with the ratio rounded to float first; interpolate along x on the two
 * rows, then along y. No antialiasing, so downscaling skips pixels.
 */
#include <math.h>
#include <string.h>

#include "engine/engine.h"

void fn_resize_bilinear_legacy(const fn_tensor *x, fn_tensor *y) {
    const float sy = (float)x->h / (float)y->h;
    const float sx = (float)x->w / (float)y->w;
    const int C = x->c;
    for (int b = 0; b < y->n; b++) {
        for (int oy = 0; oy < y->h; oy++) {
            const float fy = (float)oy * sy;
            const int y0 = (int)floorf(fy);
            const int y1 = (int)ceilf(fy) < x->h - 1 ? (int)ceilf(fy) : x->h - 1;
            const float dy = fy - (float)y0;
            for (int ox = 0; ox < y->w; ox++) {
                const float fx = (float)ox * sx;
                const int x0 = (int)floorf(fx);
                const int x1 = (int)ceilf(fx) < x->w - 1 ? (int)ceilf(fx) : x->w - 1;
                const float dx = fx - (float)x0;
                const float *tl = fn_at(x, b, y0, x0, 0), *tr = fn_at(x, b, y0, x1, 0);
                const float *bl = fn_at(x, b, y1, x0, 0), *br = fn_at(x, b, y1, x1, 0);
                float *o = fn_at(y, b, oy, ox, 0);
                for (int c = 0; c < C; c++) {
                    const float top = tl[c] + (tr[c] - tl[c]) * dx;
                    const float bot = bl[c] + (br[c] - bl[c]) * dx;
                    o[c] = top + (bot - top) * dy;
                }
            }
        }
    }
}

void fn_pad_spatial(const fn_tensor *x, int top, int bottom, int left, int right, fn_tensor *y) {
    (void)bottom;
    (void)right;
    memset(y->data, 0, fn_tensor_count(y) * sizeof(float));
    const size_t row = (size_t)x->w * x->c * sizeof(float);
    for (int b = 0; b < x->n; b++)
        for (int i = 0; i < x->h; i++) memcpy(fn_at(y, b, i + top, left, 0), fn_at(x, b, i, 0, 0), row);
}
