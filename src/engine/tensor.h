/*
 * tensor.h - the engine's tensor: 4-D, NHWC, float32, dense.
 *
 * A tensor does not own its data: the memory comes from a session's arena
 * (activations) or a model file (weights). Vectors are [n,1,1,c].
 */
#ifndef FN_TENSOR_H
#define FN_TENSOR_H

#include <stddef.h>

typedef struct fn_tensor {
    int n, h, w, c;
    float *data;
} fn_tensor;

static inline size_t fn_tensor_count(const fn_tensor *t) {
    return (size_t)t->n * (size_t)t->h * (size_t)t->w * (size_t)t->c;
}

static inline fn_tensor fn_tensor_make(int n, int h, int w, int c, float *data) {
    fn_tensor t = {n, h, w, c, data};
    return t;
}

/* Element (b, y, x, ch). */
static inline float *fn_at(const fn_tensor *t, int b, int y, int x, int ch) {
    return t->data + ((((size_t)b * t->h + y) * t->w + x) * t->c + ch);
}

#endif
