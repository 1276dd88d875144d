/*
 * dispatch.c - routes the ops that a backend may replace to the backend in
 * use, and holds the shape arithmetic and the parallel loop every backend
 * shares.
 */
#include "engine/engine.h"

const fn_backend *fn_backend_default(void) { return &fn_backend_ref; }

int fn_window_out(int in, int k, int stride, fn_padding pad, int *out, int *pad_before) {
    if (in <= 0 || k <= 0 || stride <= 0) return -1;
    if (pad == FN_PAD_SAME) {
        int o = (in + stride - 1) / stride;
        int total = (o - 1) * stride + k - in;
        if (total < 0) total = 0;
        *out = o;
        if (pad_before) *pad_before = total / 2;
        return 0;
    }
    if (in < k) return -1;
    *out = (in - k) / stride + 1;
    if (pad_before) *pad_before = 0;
    return 0;
}

int fn_conv_shape(const fn_conv_desc *d, int h, int w, int *oh, int *ow) {
    if (fn_window_out(h, d->kh, d->stride, d->padding, oh, NULL) != 0) return -1;
    return fn_window_out(w, d->kw, d->stride, d->padding, ow, NULL);
}

void fn_conv2d(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    const fn_backend *be = ex && ex->backend ? ex->backend : &fn_backend_ref;
    (be->conv2d ? be->conv2d : fn_ref_conv2d)(ex, x, d, y);
}

void fn_dense(const fn_exec *ex, const fn_tensor *x, const float *w, const float *bias, fn_tensor *y) {
    const fn_backend *be = ex && ex->backend ? ex->backend : &fn_backend_ref;
    (be->dense ? be->dense : fn_ref_dense)(ex, x, w, bias, y);
}

typedef struct range_job {
    fn_range_fn fn;
    void *arg;
    int n, chunk;
} range_job;

static void range_task(void *vp, int task) {
    range_job *j = vp;
    int begin = task * j->chunk;
    int end = begin + j->chunk < j->n ? begin + j->chunk : j->n;
    j->fn(j->arg, begin, end);
}

void fn_parallel_for(const fn_exec *ex, int n, int grain, fn_range_fn fn, void *arg) {
    if (n <= 0) return;
    fn_pool *pool = ex ? ex->pool : NULL;
    int threads = fn_pool_threads(pool);
    if (grain < 1) grain = 1;
    if (threads == 1 || n <= grain) {
        fn(arg, 0, n);
        return;
    }
    /* About four chunks per thread balance uneven rows without much overhead. */
    int chunk = (n + threads * 4 - 1) / (threads * 4);
    if (chunk < grain) chunk = grain;
    range_job j = {fn, arg, n, chunk};
    fn_pool_run(pool, (n + chunk - 1) / chunk, range_task, &j);
}
