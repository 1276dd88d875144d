/* elementwise.c - reference per-channel and elementwise ops (in place). */
#include <math.h>
#include <string.h>

#include "engine/backward.h"
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

/* ---- backward (engine/backward.h) */

static inline float act_grad(float y, fn_act act, float alpha) {
    switch (act) {
    case FN_ACT_RELU: return y > 0.0f ? 1.0f : 0.0f;
    case FN_ACT_RELU6: return y > 0.0f && y < 6.0f ? 1.0f : 0.0f;
    case FN_ACT_LEAKY: return y > 0.0f ? 1.0f : alpha;
    case FN_ACT_NONE: break;
    }
    return 1.0f;
}

void fn_activate_backward(const fn_tensor *y, const fn_tensor *dy, fn_act act, float alpha, fn_tensor *dx) {
    const size_t n = fn_tensor_count(y);
    if (act == FN_ACT_NONE) {
        if (dx->data != dy->data) memcpy(dx->data, dy->data, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) dx->data[i] = dy->data[i] * act_grad(y->data[i], act, alpha);
}


void fn_bias_add_backward(const fn_tensor *dy, float *dbias) {
    const int c = dy->c;
    size_t rows = fn_tensor_count(dy) / (size_t)c;
    /* Per-channel sums in double: a channel sums up to N*H*W values. */
    double acc[512];
    for (int c0 = 0; c0 < c; c0 += 512) {
        int nc = c - c0 < 512 ? c - c0 : 512;
        for (int i = 0; i < nc; i++) acc[i] = 0.0;
        for (size_t r = 0; r < rows; r++) {
            const float *p = dy->data + r * (size_t)c + c0;
            for (int i = 0; i < nc; i++) acc[i] += p[i];
        }
        for (int i = 0; i < nc; i++) dbias[c0 + i] += (float)acc[i];
    }
}

void fn_scale_shift_backward(const fn_tensor *x, const fn_tensor *dy, const float *scale, fn_tensor *dx,
                             float *dscale, float *dshift) {
    const int c = dy->c;
    size_t rows = fn_tensor_count(dy) / (size_t)c;
    if (dshift) fn_bias_add_backward(dy, dshift);
    if (dscale) {
        double acc[512];
        for (int c0 = 0; c0 < c; c0 += 512) {
            int nc = c - c0 < 512 ? c - c0 : 512;
            for (int i = 0; i < nc; i++) acc[i] = 0.0;
            for (size_t r = 0; r < rows; r++) {
                const float *g = dy->data + r * (size_t)c + c0, *xp = x->data + r * (size_t)c + c0;
                for (int i = 0; i < nc; i++) acc[i] += (double)g[i] * xp[i];
            }
            for (int i = 0; i < nc; i++) dscale[c0 + i] += (float)acc[i];
        }
    }
    if (!dx) return;
    for (size_t r = 0; r < rows; r++) {
        const float *g = dy->data + r * (size_t)c;
        float *o = dx->data + r * (size_t)c;
        if (scale)
            for (int i = 0; i < c; i++) o[i] = g[i] * scale[i];
        else if (o != g)
            memcpy(o, g, sizeof(float) * (size_t)c);
    }
}

void fn_add_zero_extended_backward(const fn_tensor *dy, fn_tensor *da, fn_tensor *db) {
    fn_tensor *outs[2] = {da, db};
    for (int k = 0; k < 2; k++) {
        fn_tensor *t = outs[k];
        if (!t) continue;
        /* An input is never larger than the output (zero extension only). */
        for (int n = 0; n < t->n; n++)
            for (int i = 0; i < t->h; i++)
                for (int j = 0; j < t->w; j++)
                    memcpy(fn_at(t, n, i, j, 0), fn_at(dy, n, i, j, 0), sizeof(float) * (size_t)t->c);
    }
}

void fn_l2_normalize_backward(const float *x, const float *dy, int rows, int dim, float eps, float *dx) {
    for (int r = 0; r < rows; r++) {
        const float *p = x + (size_t)r * dim, *g = dy + (size_t)r * dim;
        float *o = dx + (size_t)r * dim;
        double ss = 0.0;
        for (int i = 0; i < dim; i++) ss += (double)p[i] * p[i];
        double norm = ss > 0.0 ? sqrt(ss) : 0.0;
        if (norm < eps) {
            /* y = x / eps: a constant scale. */
            for (int i = 0; i < dim; i++) o[i] = (float)(g[i] / eps);
            continue;
        }
        /* y = x / |x|: dx = (dy - y (y . dy)) / |x|. */
        double dot = 0.0;
        for (int i = 0; i < dim; i++) dot += (double)g[i] * p[i];
        dot /= norm;
        for (int i = 0; i < dim; i++) o[i] = (float)((g[i] - p[i] / norm * dot) / norm);
    }
}
