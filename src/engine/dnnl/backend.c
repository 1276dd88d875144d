/*
 * backend.c - the oneDNN backend: convolutions, dense layers and whole
 * graphs on Intel's oneDNN (Debian's libdnnl, f32, OpenMP runtime).
 *
 * Design. oneDNN is fast because of three things, and the backend is built
 * around keeping all three:
 *
 *   1. Prepared primitives. Creating a primitive (choosing a kernel, JIT-
 *      compiling it, reordering the weights into its blocking) costs far
 *      more than running it, so nothing is created per call. Everything
 *      lives in an fn_dnnl_state that hangs off the fn_exec (a session's),
 *      made and freed by the table's state_create / state_free hooks: the
 *      reordered weights (per layer and layout, prims.c), the per-op
 *      primitives below (keyed by the conv descriptor's contents, the input
 *      shape and the thread count; LRU, at most MAX_OPS), and the compiled
 *      graphs (graph.c; keyed by graph, batch size and thread count).
 *   2. Blocked layouts. Its direct kernels want activations as nChw16c
 *      (channels in blocks of 16, one AVX-512 register); converting from and
 *      to NHWC around every layer would cost as much as the convolutions at
 *      batch 1. So a network laid out as an fn_graph (engine/graph.h; the
 *      ResNet is) runs as one compiled plan that keeps every activation
 *      blocked and converts only at the edges (graph.c). The layouts are
 *      asked for, not left to oneDNN: left to itself, oneDNN 2.6 picks its
 *      brgemm kernels on NHWC, which measured slower on every ResNet layer.
 *      3x3 stride-1 layers on planes of 8x8 and more use Winograd. The per-
 *      op slots (conv2d, dense) remain for networks that call ops one by
 *      one; they take and give NHWC, which oneDNN also runs well.
 *   3. Fusion. The conv epilogue's scale and shift are folded into the
 *      weights and bias (prims.c explains the rounding), activations are
 *      eltwise post-ops, and in a graph a residual add and the ReLU after it
 *      are a sum + eltwise post-op of the convolution before the add (a sum
 *      rather than a binary-add post-op: the conv accumulates in place into
 *      the buffer that already holds the shortcut).
 *
 * Threads: Debian's oneDNN runs on OpenMP, so the thread count is OpenMP's
 * for the calling thread, set to the exec's pool size around each call and
 * restored after (it is per-thread state in OpenMP, so concurrent sessions
 * on other threads are not affected). oneDNN fixes a kernel's work split
 * when the primitive is created, so the thread count is part of every
 * cache key. The exec's own pool sits idle meanwhile.
 *
 * Failure is never fatal: when there is no state, or oneDNN cannot make a
 * primitive, a slot says so and the dispatcher runs the reference instead
 * (and a graph that does not compile runs op by op), so results are always
 * there, only slower.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <oneapi/dnnl/dnnl_version.h>

#include "engine/dnnl/dnnl_backend.h"

#define OK(call) ((call) == dnnl_success)
#define MAX_OPS 128

#define STR_(x) #x
#define STR(x) STR_(x)

/* A cached per-op primitive on NHWC tensors. */
struct fn_dnnl_op {
    int is_dense;
    fn_conv_desc conv;     /* conv key */
    const float *w, *bias; /* dense key */
    int n, h, w_, c, out, threads;
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst, scratch; /* addresses set on each call */
    fn_dnnl_weights *wts;
    fn_dnnl_op *next;
};

int fn_dnnl_threads_enter(const fn_exec *ex, fn_dnnl_threads *t) {
    int n = fn_pool_threads(ex ? ex->pool : NULL);
    t->saved = omp_get_max_threads();
    if (t->saved != n) omp_set_num_threads(n);
    return n;
}

void fn_dnnl_threads_leave(const fn_dnnl_threads *t) {
    if (omp_get_max_threads() != t->saved) omp_set_num_threads(t->saved);
}

int fn_dnnl_machine_busy(void) {
    const char *env = getenv("FACENET_THREADS_ADAPT");
    double load;
    if ((env && strcmp(env, "0") == 0) || getloadavg(&load, 1) != 1) return 0;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus > 0 && load > (double)cpus + 0.5;
}

/* The exec's parallel loops (batch norm, element-wise passes, pooling,
 * resizing) on OpenMP's team, the threads that run the primitives: after a
 * primitive they spin for a while before they sleep, and a second set of
 * threads (the exec's pool) started then competes with them for the same
 * cores. A training step of the ResNet-29 at batch 48 on 2 threads took
 * 371-448 ms this way against 431-538 ms on the pool (three rounds on a
 * quiet machine, alternating). Tasks are handed out one at a time, as the
 * pool does. On a busy machine the pool does better (a team's join waits
 * for a descheduled thread: 2.8 s against 1.1 s a step), so then it
 * declines. */
static int dnnl_parallel(const fn_exec *ex, int n_tasks, fn_task_fn task, void *arg) {
    const int threads = fn_pool_threads(ex ? ex->pool : NULL);
    if (threads < 2 || omp_in_parallel() || fn_dnnl_machine_busy()) return -1;
    int next = 0;
#pragma omp parallel num_threads(threads)
    for (;;) {
        int i;
#pragma omp atomic capture
        i = next++;
        if (i >= n_tasks) break;
        task(arg, i);
    }
    return 0;
}

static void op_free(fn_dnnl_op *op) {
    if (op->prim) dnnl_primitive_destroy(op->prim);
    if (op->src) dnnl_memory_destroy(op->src);
    if (op->dst) dnnl_memory_destroy(op->dst);
    if (op->scratch) dnnl_memory_destroy(op->scratch);
    free(op);
}

/* Make room in the state's scratchpad for a primitive of pd. */
static int reserve_scratch(fn_dnnl_state *st, const_dnnl_primitive_desc_t pd) {
    size_t need = fn_dnnl_scratch_size(pd);
    if (need <= st->scratch_size) return 0;
    need = (need + 63) & ~(size_t)63;
    void *p = aligned_alloc(64, need);
    if (!p) return -1;
    free(st->scratch);
    st->scratch = p;
    st->scratch_size = need;
    return 0;
}

/* Finish a new cache entry from its primitive descriptor (consumed). With
 * no descriptor, or if anything fails, the entry is kept without a
 * primitive: it remembers that this case is declined, so that it is not
 * retried (at the cost of a primitive creation) on every call. */
static fn_dnnl_op *op_finish(fn_dnnl_state *st, fn_dnnl_op *op, dnnl_primitive_desc_t pd) {
    if (pd) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
        const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
        const dnnl_memory_desc_t *spmd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        int ok = op->wts && smd && dmd && (op->src = fn_dnnl_memory(st, smd)) &&
                 (op->dst = fn_dnnl_memory(st, dmd)) && reserve_scratch(st, pd) == 0 &&
                 (fn_dnnl_scratch_size(pd) == 0 || (spmd && (op->scratch = fn_dnnl_memory(st, spmd)))) &&
                 (op->prim = fn_dnnl_primitive(pd));
        dnnl_primitive_desc_destroy(pd);
        if (!ok && op->prim) {
            dnnl_primitive_destroy(op->prim);
            op->prim = NULL;
        }
    }
    op->next = st->ops;
    st->ops = op;
    if (++st->n_ops > MAX_OPS) {
        fn_dnnl_op *q = st->ops;
        while (q->next->next) q = q->next;
        op_free(q->next);
        q->next = NULL;
        st->n_ops--;
    }
    return op;
}

/* Move a hit to the front of the list (most recently used first). */
static fn_dnnl_op *op_hit(fn_dnnl_state *st, fn_dnnl_op **pp) {
    fn_dnnl_op *op = *pp;
    *pp = op->next;
    op->next = st->ops;
    st->ops = op;
    return op;
}

static fn_dnnl_op *conv_op(fn_dnnl_state *st, const fn_conv_desc *d, const fn_tensor *x, int threads) {
    for (fn_dnnl_op **pp = &st->ops; *pp; pp = &(*pp)->next) {
        const fn_dnnl_op *op = *pp;
        if (!op->is_dense && op->n == x->n && op->h == x->h && op->w_ == x->w && op->threads == threads &&
            fn_dnnl_same_conv(&op->conv, d))
            return op_hit(st, pp);
    }
    int oh, ow;
    dnnl_memory_desc_t smd, dmd;
    dnnl_primitive_desc_t pd = NULL;
    if (fn_conv_shape(d, x->h, x->w, &oh, &ow) || fn_dnnl_md_nhwc(&smd, x->n, x->h, x->w, d->cin) ||
        fn_dnnl_md_nhwc(&dmd, x->n, oh, ow, d->cout) ||
        fn_dnnl_conv_pd(st, d, x->n, x->h, x->w, dnnl_convolution_direct, &smd, &dmd, 0, FN_ACT_NONE, 0.0f,
                        NULL, &pd))
        pd = NULL;
    /* On NHWC, ours beats oneDNN's reference kernel: decline such a case. */
    if (pd && fn_dnnl_is_reference(pd)) {
        dnnl_primitive_desc_destroy(pd);
        pd = NULL;
    }
    fn_dnnl_op *op = calloc(1, sizeof *op);
    if (!op) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    op->conv = *d;
    op->n = x->n, op->h = x->h, op->w_ = x->w, op->c = d->cin, op->threads = threads;
    op->wts = pd ? fn_dnnl_conv_weights(st, d, pd) : NULL;
    return op_finish(st, op, pd);
}

static fn_dnnl_op *dense_op(fn_dnnl_state *st, const float *w, const float *bias, int n, int in, int out,
                            int threads) {
    for (fn_dnnl_op **pp = &st->ops; *pp; pp = &(*pp)->next) {
        const fn_dnnl_op *op = *pp;
        if (op->is_dense && op->w == w && op->bias == bias && op->n == n && op->c == in && op->out == out &&
            op->threads == threads)
            return op_hit(st, pp);
    }
    dnnl_memory_desc_t smd, dmd;
    dnnl_primitive_desc_t pd = NULL;
    if (fn_dnnl_md_rows(&smd, n, in) || fn_dnnl_md_rows(&dmd, n, out) ||
        fn_dnnl_dense_pd(st, &smd, out, bias != NULL, &dmd, &pd))
        pd = NULL;
    fn_dnnl_op *op = calloc(1, sizeof *op);
    if (!op) {
        if (pd) dnnl_primitive_desc_destroy(pd);
        return NULL;
    }
    op->is_dense = 1;
    op->w = w, op->bias = bias, op->n = n, op->c = in, op->out = out, op->threads = threads;
    op->wts = pd ? fn_dnnl_dense_weights(st, w, bias, pd) : NULL;
    return op_finish(st, op, pd);
}

static int op_run(fn_dnnl_state *st, const fn_dnnl_op *op, const float *x, float *y) {
    if (!op->prim) return -1; /* a declined case */
    dnnl_exec_arg_t args[5];
    int n = 0;
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, op->src};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, op->wts->w};
    if (op->wts->b) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, op->wts->b};
    args[n++] = (dnnl_exec_arg_t){DNNL_ARG_DST, op->dst};
    if (op->scratch) {
        if (!OK(dnnl_memory_set_data_handle(op->scratch, st->scratch))) return -1;
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, op->scratch};
    }
    if (!OK(dnnl_memory_set_data_handle(op->src, (void *)x)) || !OK(dnnl_memory_set_data_handle(op->dst, y)))
        return -1;
    return OK(dnnl_primitive_execute(op->prim, st->stream, n, args)) && OK(dnnl_stream_wait(st->stream)) ? 0
                                                                                                         : -1;
}

static int dnnl_conv2d(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    fn_dnnl_state *st = ex ? ex->backend_state : NULL;
    if (!st || x->n <= 0) return -1;
    fn_dnnl_threads t;
    int threads = fn_dnnl_threads_enter(ex, &t);
    const fn_dnnl_op *op = conv_op(st, d, x, threads);
    int rc = op ? op_run(st, op, x->data, y->data) : -1;
    fn_dnnl_threads_leave(&t);
    return rc;
}

static int dnnl_dense(const fn_exec *ex, const fn_tensor *x, const float *w, const float *bias,
                      fn_tensor *y) {
    fn_dnnl_state *st = ex ? ex->backend_state : NULL;
    if (!st || x->n <= 0) return -1;
    fn_dnnl_threads t;
    int threads = fn_dnnl_threads_enter(ex, &t);
    const fn_dnnl_op *op = dense_op(st, w, bias, x->n, x->h * x->w * x->c, y->c, threads);
    int rc = op ? op_run(st, op, x->data, y->data) : -1;
    fn_dnnl_threads_leave(&t);
    return rc;
}

static void state_free(void *vp) {
    fn_dnnl_state *st = vp;
    if (!st) return;
    fn_dnnl_train_free(st);
    fn_dnnl_plans_free(st);
    while (st->ops) {
        fn_dnnl_op *next = st->ops->next;
        op_free(st->ops);
        st->ops = next;
    }
    fn_dnnl_weights_free_all(st);
    free(st->scratch);
    if (st->stream) dnnl_stream_destroy(st->stream);
    if (st->engine) dnnl_engine_destroy(st->engine);
    free(st);
}

static void *state_create(void) {
    fn_dnnl_state *st = calloc(1, sizeof *st);
    if (!st) return NULL;
    if (!OK(dnnl_engine_create(&st->engine, dnnl_cpu, 0)) ||
        !OK(dnnl_stream_create(&st->stream, st->engine, dnnl_stream_default_flags))) {
        state_free(st);
        return NULL;
    }
    /* oneDNN's direct kernels block channels by the vector width. */
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    st->block = (isa & dnnl_cpu_isa_avx512_core) == dnnl_cpu_isa_avx512_core ? 16
                : (isa & dnnl_cpu_isa_avx2) == dnnl_cpu_isa_avx2             ? 8
                                                                             : 0;
    const char *wino = getenv("FACENET_WINOGRAD");
    st->winograd = !(wino && strcmp(wino, "0") == 0);
    return st;
}

const fn_backend fn_backend_dnnl = {
    "oneDNN " STR(DNNL_VERSION_MAJOR) "." STR(DNNL_VERSION_MINOR) "." STR(DNNL_VERSION_PATCH) " (f32)",
    dnnl_conv2d,
    dnnl_dense,
    fn_dnnl_graph_run,
    state_create,
    state_free,
    /* training: train.c */
    fn_dnnl_conv2d_train,
    fn_dnnl_conv2d_backward_data,
    fn_dnnl_conv2d_backward_weights,
    fn_dnnl_maxpool_backward,
    fn_dnnl_avgpool_backward,
    dnnl_parallel,
    fn_dnnl_conv2d_backward_both,
};
