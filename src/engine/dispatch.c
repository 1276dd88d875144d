/*
 * dispatch.c - routes the ops that a backend may replace to the backend in
 * use, picks the default backend, and holds the shape arithmetic and the
 * parallel loop every backend shares.
 *
 * Which fast backend exists is decided at build time (CMake's
 * FACENET_BACKEND defines FACENET_HAVE_DNNL); the environment variable
 * FACENET_BACKEND=ref only lets a run fall back to the reference, for
 * comparisons.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/engine.h"

#ifdef FACENET_HAVE_DNNL
extern const fn_backend fn_backend_dnnl;
#endif

const fn_backend *fn_backend_default(void) {
#ifdef FACENET_HAVE_DNNL
    const char *env = getenv("FACENET_BACKEND");
    if (!env || strcmp(env, "ref") != 0) return &fn_backend_dnnl;
#endif
    return &fn_backend_ref;
}

const fn_backend *fn_backend_fast(void) {
#ifdef FACENET_HAVE_DNNL
    return &fn_backend_dnnl;
#else
    return NULL;
#endif
}

int fn_exec_init(fn_exec *ex, const fn_backend *backend, fn_pool *pool, fn_arena *arena) {
    ex->backend = backend;
    ex->pool = pool;
    ex->arena = arena;
    ex->backend_state = NULL;
    ex->int8 = 0;
    ex->observe = NULL;
    ex->observe_user = NULL;
    if (backend && backend->state_create) {
        ex->backend_state = backend->state_create();
        if (!ex->backend_state) return -1;
    }
    return 0;
}

void fn_exec_release(fn_exec *ex) {
    if (ex->backend && ex->backend->state_free && ex->backend_state)
        ex->backend->state_free(ex->backend_state);
    ex->backend_state = NULL;
}

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
    if (!be->conv2d || be->conv2d(ex, x, d, y) != 0) fn_ref_conv2d(ex, x, d, y);
}

void fn_dense(const fn_exec *ex, const fn_tensor *x, const float *w, const float *bias, fn_tensor *y) {
    const fn_backend *be = ex && ex->backend ? ex->backend : &fn_backend_ref;
    if (!be->dense || be->dense(ex, x, w, bias, y) != 0) fn_ref_dense(ex, x, w, bias, y);
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
    const int n_tasks = (n + chunk - 1) / chunk;
    const fn_backend *be = ex->backend;
    if (be && be->parallel && be->parallel(ex, n_tasks, range_task, &j) == 0) return;
    fn_pool_run(pool, n_tasks, range_task, &j);
}
