/* elementwise.c - reference per-channel and elementwise ops (in place). */
#include <math.h>

#include "engine/engine.h"

void fn_bias_add(fn_tensor *x, const float *bias) {
    size_t rows = fn_tensor_count(x) / (size_t)x->c;
    for (size_t r = 0; r < rows; r++) {
        float *p = x->data + r * (size_t)x->c;
        for (int c = 0; c < x->c; c++) p[c] += bias[c];
    }
}

void fn_scale_shift(fn_tensor *x, const float *scale, const float *shift) {
    size_t rows = fn_tensor_count(x) / (size_t)x->c;
    for (size_t r = 0; r < rows; r++) {
        float *p = x->data + r * (size_t)x->c;
        for (int c = 0; c < x->c; c++) {
            float v = p[c];
            if (scale) v *= scale[c];
            if (shift) v += shift[c];
            p[c] = v;
        }
    }
}

void fn_activate(fn_tensor *x, fn_act act, float alpha) {
    size_t n = fn_tensor_count(x);
    float *p = x->data;
    switch (act) {
    case FN_ACT_NONE: return;
    case FN_ACT_RELU:
        for (size_t i = 0; i < n; i++) p[i] = p[i] > 0.0f ? p[i] : 0.0f;
        return;
    case FN_ACT_RELU6:
        for (size_t i = 0; i < n; i++) p[i] = p[i] < 0.0f ? 0.0f : (p[i] > 6.0f ? 6.0f : p[i]);
        return;
    case FN_ACT_LEAKY:
        for (size_t i = 0; i < n; i++) p[i] = p[i] > 0.0f ? p[i] : p[i] * alpha;
        return;
    }
}

static inline float get_or_zero(const fn_tensor *t, int b, int y, int x, int c) {
    if (y >= t->h || x >= t->w || c >= t->c) return 0.0f;
    return *fn_at(t, b, y, x, c);
}

void fn_add_zero_extended(const fn_tensor *a, const fn_tensor *b, fn_tensor *y) {
    /* Each element of y is written after both inputs' elements at the same
     * position are read, so y may alias an input of its own shape. */
    for (int n = 0; n < y->n; n++)
        for (int i = 0; i < y->h; i++)
            for (int j = 0; j < y->w; j++)
                for (int c = 0; c < y->c; c++)
                    *fn_at(y, n, i, j, c) = get_or_zero(a, n, i, j, c) + get_or_zero(b, n, i, j, c);
}

void fn_l2_normalize(float *x, int rows, int dim, float eps) {
    for (int r = 0; r < rows; r++) {
        float *p = x + (size_t)r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)p[i] * p[i];
        double norm = ss > 0.0 ? sqrt(ss) : 0.0;
        if (norm < eps) norm = eps;
        float inv = (float)(1.0 / norm);
        for (int i = 0; i < dim; i++) p[i] *= inv;
    }
}
