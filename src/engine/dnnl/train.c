/*
 * train.c - the oneDNN backend's training slots: the convolution forward
 * for weights that change between calls, its backward passes (data and
 * weights), on NHWC tensors.
 *
 * Unlike inference (backend.c), nothing is cached by weight contents: the
 * weights are reordered from TF's layout into the primitive's on every
 * call (a few MB per training step, next to GFLOPs of convolution), and the
 * weight gradient is reordered back into TF's layout with a sum post-op, so
 * it adds into the caller's gradient as the reference does. What is cached
 * (per exec, keyed by the layer's geometry, the batch shape and the thread
 * count) are the three primitives of a layer, their reorders and buffers:
 * a training step meets the same few dozen layers again and again.
 *
 * The 3x3 stride-1 SAME layers on planes of 4x4 and more, with channels in
 * 16s, run all three passes with Winograd where oneDNN has the kernels
 * (AVX-512; F(4x4, 3x3), as inference does; FACENET_WINOGRAD=0 turns it
 * off). Its kernels need channel-blocked activations (nChw16c), so
 * each pass reorders the NHWC tensors it reads and writes to and from
 * blocked copies; fn_dnnl_conv2d_backward_both makes dy's copy once for both
 * backward passes. On ResNet-29 at batch 48 (docs/performance-training.md),
 * per layer and step with the conversions, the 8x8 layers take 6.4 ms
 * against 10.8 and the 4x4 ones 8.8 against 11.6, the 35x35 and 17x17 ones
 * gain under a millisecond, and planes under 4x4 lose (1x1: 8.4 against
 * 0.9).
 *
 * Average pooling's backward (TF padding) is oneDNN's too.
 *
 * Declined (the reference runs): depthwise convolutions (the networks that
 * train here have none), and any case oneDNN only has its reference
 * kernel for.
 */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backward.h"
#include "engine/dnnl/dnnl_backend.h"

#define OK(call) ((call) == dnnl_success)
#define MAX_LAYERS 96
#define WINO_MIN_PLANE 4 /* Winograd on planes of at least 4x4 (see above) */

typedef struct tconv {
    int kh, kw, stride, pad, cin, cout, n, h, w, threads;
    int ok;                         /* all three primitives were made */
    dnnl_primitive_t fwd, bwd_d, bwd_w;
    dnnl_primitive_t to_fwd, to_bwd; /* user weights -> each primitive's layout */
    dnnl_primitive_t dw_back;       /* diff weights -> user layout, summed in */
    dnnl_memory_t user_w, w_fwd, w_bwd, dw, user_dw;
    dnnl_memory_t x, y;             /* NHWC: src and dst, or diff_src and diff_dst */
    int wino;                       /* Winograd on blocked copies xb, yb of x and y */
    dnnl_memory_t xb, yb;
    dnnl_primitive_t x_in, y_in, x_out, y_out; /* NHWC <-> blocked */
    dnnl_memory_t s_fwd, s_bd, s_bw, s_r; /* scratchpads */
    size_t scratch;                 /* the largest scratchpad */
    struct tconv *next;
} tconv;

/* An average pool's backward. (A max pool's would need the forward's
 * workspace, i.e. running its forward again: measured on ResNet-29's stem
 * pool at batch 48, 16 + 20 ms against the reference's 21, so the
 * reference keeps it.) */
typedef struct tpool {
    int k, stride, pad, n, h, w, c, threads;
    int ok;
    dnnl_primitive_t bwd;
    dnnl_memory_t dx, dy;
    struct tpool *next;
} tpool;

struct fn_dnnl_train {
    tconv *convs; /* most recently used first */
    int n_convs;
    tpool *pools;
    void *scratch;
    size_t scratch_size;
};

static void tpool_free(tpool *p) {
    if (p->bwd) dnnl_primitive_destroy(p->bwd);
    if (p->dx) dnnl_memory_destroy(p->dx);
    if (p->dy) dnnl_memory_destroy(p->dy);
    free(p);
}

/* Destroy what c holds and zero it, keeping its key (the layer's geometry). */
static void tconv_clear(tconv *c) {
    dnnl_primitive_t p[10] = {c->fwd, c->bwd_d, c->bwd_w, c->to_fwd, c->to_bwd,
                              c->dw_back, c->x_in, c->y_in, c->x_out, c->y_out};
    dnnl_memory_t m[13] = {c->user_w, c->w_fwd, c->w_bwd, c->dw, c->user_dw, c->x,  c->y,
                           c->s_fwd,  c->s_bd,  c->s_bw, c->s_r, c->xb,      c->yb};
    for (int i = 0; i < 10; i++)
        if (p[i]) dnnl_primitive_destroy(p[i]);
    for (int i = 0; i < 13; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    const tconv key = *c;
    memset(c, 0, sizeof *c);
    c->kh = key.kh, c->kw = key.kw, c->stride = key.stride, c->pad = key.pad, c->cin = key.cin;
    c->cout = key.cout, c->n = key.n, c->h = key.h, c->w = key.w, c->threads = key.threads;
}

static void tconv_free(tconv *c) {
    tconv_clear(c);
    free(c);
}

void fn_dnnl_train_free(fn_dnnl_state *st) {
    fn_dnnl_train *t = st->train;
    if (!t) return;
    while (t->convs) {
        tconv *next = t->convs->next;
        tconv_free(t->convs);
        t->convs = next;
    }
    while (t->pools) {
        tpool *next = t->pools->next;
        tpool_free(t->pools);
        t->pools = next;
    }
    free(t->scratch);
    free(t);
    st->train = NULL;
}

/* A memory of md with its own buffer, or with none (NULL) when own = 0. */
static dnnl_memory_t mem(fn_dnnl_state *st, const dnnl_memory_desc_t *md, int own) {
    dnnl_memory_t m = NULL;
    return OK(dnnl_memory_create(&m, md, st->engine, own ? DNNL_MEMORY_ALLOCATE : DNNL_MEMORY_NONE)) ? m : NULL;
}

static const dnnl_memory_desc_t *md_of(const_dnnl_primitive_desc_t pd, dnnl_query_t what) {
    return dnnl_primitive_desc_query_md(pd, what, 0);
}

/* The scratchpad memory of pd (NULL when it needs none: *ok stays). */
static dnnl_memory_t scratch_of(fn_dnnl_state *st, tconv *c, const_dnnl_primitive_desc_t pd, int *ok) {
    size_t need = fn_dnnl_scratch_size(pd);
    if (need == 0) return NULL;
    if (need > c->scratch) c->scratch = need;
    dnnl_memory_t m = mem(st, md_of(pd, dnnl_query_scratchpad_md), 0);
    if (!m) *ok = 0;
    return m;
}

/* A reorder from one layout to another (sum: added into the destination).
 * one: made (so run) on one thread, for the weights (see run1); else on the
 * exec's, for activations, which are megabytes. scratch: where its
 * scratchpad memory goes; NULL: it must need none. */
static dnnl_primitive_t reorder(fn_dnnl_state *st, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                int sum, int one, tconv *c, dnnl_memory_t *scratch) {
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t p = NULL;
    if (sum && (!OK(dnnl_post_ops_create(&po)) || !OK(dnnl_post_ops_append_sum(po, 1.0f)))) goto done;
    if (!(attr = fn_dnnl_attr(po))) goto done;
    /* A reorder fixes its work split when made: made on one thread, it runs
     * on one (see run1). */
    const int saved = omp_get_max_threads(), set = one && saved != 1;
    if (set) omp_set_num_threads(1);
    dnnl_status_t made = dnnl_reorder_primitive_desc_create(&pd, from, st->engine, to, st->engine, attr);
    if (set) omp_set_num_threads(saved);
    if (!OK(made)) goto done;
    int ok = 1;
    if (scratch) {
        dnnl_memory_t s = scratch_of(st, c, pd, &ok);
        if (s && *scratch) dnnl_memory_destroy(*scratch);
        if (s) *scratch = s;
    } else if (fn_dnnl_scratch_size(pd) != 0) {
        ok = 0;
    }
    if (ok) {
        if (set) omp_set_num_threads(1);
        p = fn_dnnl_primitive(pd);
        if (set) omp_set_num_threads(saved);
    }
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (po) dnnl_post_ops_destroy(po);
    return p;
}

/* Build the primitives of one layer shape; c->ok says whether it worked. */
static void tconv_make(fn_dnnl_state *st, tconv *c, const fn_conv_desc *d, int wino) {
    int oh, ow;
    dnnl_dims_t strides = {d->stride, d->stride}, pl, pr;
    fn_dnnl_padding(c->h, d->kh, d->stride, d->padding, &oh, &pl[0], &pr[0]);
    fn_dnnl_padding(c->w, d->kw, d->stride, d->padding, &ow, &pl[1], &pr[1]);
    dnnl_dims_t wdims = {d->cout, d->cin, d->kh, d->kw};
    dnnl_memory_desc_t xmd, ymd, xany, yany, wany, wuser;
    const dnnl_alg_kind_t alg = wino ? dnnl_convolution_winograd : dnnl_convolution_direct;
    dnnl_primitive_desc_t fpd = NULL, dpd = NULL, wpd = NULL;
    dnnl_primitive_attr_t attr = fn_dnnl_attr(NULL);
    dnnl_convolution_desc_t fd, dd, wd;
    int ok = attr && !fn_dnnl_md_nhwc(&xmd, c->n, c->h, c->w, d->cin) &&
             !fn_dnnl_md_nhwc(&ymd, c->n, oh, ow, d->cout) &&
             !fn_dnnl_md_tag_dt(&xany, c->n, c->h, c->w, d->cin, wino ? dnnl_format_tag_any : dnnl_nhwc, dnnl_f32) &&
             !fn_dnnl_md_tag_dt(&yany, c->n, oh, ow, d->cout, wino ? dnnl_format_tag_any : dnnl_nhwc, dnnl_f32) &&
             OK(dnnl_memory_desc_init_by_tag(&wany, 4, wdims, dnnl_f32, dnnl_format_tag_any)) &&
             OK(dnnl_memory_desc_init_by_tag(&wuser, 4, wdims, dnnl_f32, dnnl_hwio)) &&
             OK(dnnl_convolution_forward_desc_init(&fd, dnnl_forward_training, alg, &xany, &wany, NULL,
                                                   &yany, strides, pl, pr)) &&
             OK(dnnl_primitive_desc_create(&fpd, &fd, attr, st->engine, NULL)) &&
             OK(dnnl_convolution_backward_data_desc_init(&dd, alg, &xany, &wany, &yany, strides, pl, pr)) &&
             OK(dnnl_primitive_desc_create(&dpd, &dd, attr, st->engine, fpd)) &&
             OK(dnnl_convolution_backward_weights_desc_init(&wd, alg, &xany, &wany, NULL, &yany, strides, pl,
                                                            pr)) &&
             OK(dnnl_primitive_desc_create(&wpd, &wd, attr, st->engine, fpd));
    /* oneDNN's reference kernels are slower than ours: decline them. */
    ok = ok && !fn_dnnl_is_reference(fpd) && !fn_dnnl_is_reference(dpd) && !fn_dnnl_is_reference(wpd);
    if (ok) {
        const dnnl_memory_desc_t *wf = md_of(fpd, dnnl_query_weights_md), *wb = md_of(dpd, dnnl_query_weights_md),
                                 *dw = md_of(wpd, dnnl_query_diff_weights_md);
        ok = wf && wb && dw && (c->user_w = mem(st, &wuser, 0)) && (c->user_dw = mem(st, &wuser, 0)) &&
             (c->w_fwd = mem(st, wf, 1)) && (c->w_bwd = mem(st, wb, 1)) && (c->dw = mem(st, dw, 1)) &&
             (c->x = mem(st, &xmd, 0)) && (c->y = mem(st, &ymd, 0)) &&
             (c->to_fwd = reorder(st, &wuser, wf, 0, 1, c, &c->s_r)) &&
             (c->to_bwd = reorder(st, &wuser, wb, 0, 1, c, &c->s_r)) &&
             (c->dw_back = reorder(st, dw, &wuser, 1, 1, c, &c->s_r));
        if (ok && wino) {
            /* The blocked copies, and the reorders to and from the caller's NHWC. */
            const dnnl_memory_desc_t *xb = md_of(fpd, dnnl_query_src_md), *yb = md_of(fpd, dnnl_query_dst_md);
            ok = xb && yb && dnnl_memory_desc_equal(xb, md_of(dpd, dnnl_query_diff_src_md)) &&
                 dnnl_memory_desc_equal(yb, md_of(dpd, dnnl_query_diff_dst_md)) &&
                 dnnl_memory_desc_equal(xb, md_of(wpd, dnnl_query_src_md)) &&
                 dnnl_memory_desc_equal(yb, md_of(wpd, dnnl_query_diff_dst_md)) && (c->xb = mem(st, xb, 1)) &&
                 (c->yb = mem(st, yb, 1)) && (c->x_in = reorder(st, &xmd, xb, 0, 0, c, NULL)) &&
                 (c->y_in = reorder(st, &ymd, yb, 0, 0, c, NULL)) &&
                 (c->x_out = reorder(st, xb, &xmd, 0, 0, c, NULL)) &&
                 (c->y_out = reorder(st, yb, &ymd, 0, 0, c, NULL));
        }
        c->s_fwd = ok ? scratch_of(st, c, fpd, &ok) : NULL;
        c->s_bd = ok ? scratch_of(st, c, dpd, &ok) : NULL;
        c->s_bw = ok ? scratch_of(st, c, wpd, &ok) : NULL;
        ok = ok && (c->fwd = fn_dnnl_primitive(fpd)) && (c->bwd_d = fn_dnnl_primitive(dpd)) &&
             (c->bwd_w = fn_dnnl_primitive(wpd));
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (dpd) dnnl_primitive_desc_destroy(dpd);
    if (wpd) dnnl_primitive_desc_destroy(wpd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    c->ok = ok;
    c->wino = ok && wino;
}

/* The cached layer for d on an n x h x w input; NULL if none can be had. */
static tconv *layer(const fn_exec *ex, const fn_conv_desc *d, int n, int h, int w, int threads) {
    fn_dnnl_state *st = ex ? ex->backend_state : NULL;
    if (!st || d->depthwise || n <= 0) return NULL;
    if (!st->train && !(st->train = calloc(1, sizeof *st->train))) return NULL;
    fn_dnnl_train *t = st->train;
    for (tconv **pp = &t->convs; *pp; pp = &(*pp)->next) {
        tconv *c = *pp;
        if (c->kh == d->kh && c->kw == d->kw && c->stride == d->stride && c->pad == (int)d->padding &&
            c->cin == d->cin && c->cout == d->cout && c->n == n && c->h == h && c->w == w && c->threads == threads) {
            *pp = c->next; /* to the front */
            c->next = t->convs;
            t->convs = c;
            return c->ok ? c : NULL;
        }
    }
    tconv *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kh = d->kh, c->kw = d->kw, c->stride = d->stride, c->pad = (int)d->padding;
    c->cin = d->cin, c->cout = d->cout, c->n = n, c->h = h, c->w = w, c->threads = threads;
    const int want_wino = st->winograd && d->kh == 3 && d->kw == 3 && d->stride == 1 &&
                          d->padding == FN_PAD_SAME && h >= WINO_MIN_PLANE && w >= WINO_MIN_PLANE &&
                          d->cin % 16 == 0 && d->cout % 16 == 0;
    if (want_wino) {
        tconv_make(st, c, d, 1);
        if (!c->ok) tconv_clear(c); /* e.g. no Winograd kernel for this CPU: direct instead */
    }
    if (!want_wino || !c->ok) tconv_make(st, c, d, 0);
    c->next = t->convs;
    t->convs = c;
    if (++t->n_convs > MAX_LAYERS) { /* drop the least recently used */
        tconv *q = t->convs;
        while (q->next->next) q = q->next;
        tconv_free(q->next);
        q->next = NULL;
        t->n_convs--;
    }
    if (c->ok && c->scratch > t->scratch_size) {
        size_t need = (c->scratch + 63) & ~(size_t)63;
        void *p = aligned_alloc(64, need);
        if (!p) {
            c->ok = 0; /* cached, it would be run with too small a scratchpad */
            return NULL;
        }
        free(t->scratch);
        t->scratch = p;
        t->scratch_size = need;
    }
    return c->ok ? c : NULL;
}

/* The thread count for a call, set as fn_dnnl_threads_enter does, but one
 * while fn_dnnl_machine_busy(), as graphs run. Measured here with 7-14
 * runnable processes on 2 cores, a ResNet-29 training step at batch 48 took
 * 2.3-3.0 s on two threads and 1.6-1.8 s on one. */
static int threads_enter(const fn_exec *ex, fn_dnnl_threads *th) {
    int n = fn_dnnl_threads_enter(ex, th);
    if (n > 1 && fn_dnnl_machine_busy()) omp_set_num_threads(n = 1);
    return n;
}

static int run(fn_dnnl_state *st, dnnl_primitive_t p, dnnl_memory_t scratch, int n, dnnl_exec_arg_t *args) {
    if (scratch) {
        if (!OK(dnnl_memory_set_data_handle(scratch, st->train->scratch))) return -1;
        args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, scratch};
    }
    return OK(dnnl_primitive_execute(p, st->stream, n, args)) ? 0 : -1;
}

/* A weight reorder on the calling thread alone: it moves at most a few
 * hundred KB, and a parallel region costs more than that whenever a team
 * thread is not running (measured on a busy 2-core machine: 0.4 ms on one
 * thread, 15 ms on two, for the largest ResNet layer). */
static int run1(fn_dnnl_state *st, dnnl_primitive_t p, dnnl_memory_t scratch, int n, dnnl_exec_arg_t *args) {
    int saved = omp_get_max_threads();
    if (saved != 1) omp_set_num_threads(1);
    int rc = run(st, p, scratch, n, args);
    if (rc == 0 && !OK(dnnl_stream_wait(st->stream))) rc = -1;
    if (saved != 1) omp_set_num_threads(saved);
    return rc;
}

/* Reorder the caller's weights into w (a primitive's layout). */
static int weights_in(fn_dnnl_state *st, tconv *c, dnnl_primitive_t r, dnnl_memory_t w, const float *user) {
    dnnl_exec_arg_t a[3] = {{DNNL_ARG_FROM, c->user_w}, {DNNL_ARG_TO, w}};
    if (!OK(dnnl_memory_set_data_handle(c->user_w, (void *)user))) return -1;
    return run1(st, r, c->s_r, 2, a);
}

static int set2(tconv *c, const void *x, const void *y) {
    return OK(dnnl_memory_set_data_handle(c->x, (void *)x)) && OK(dnnl_memory_set_data_handle(c->y, (void *)y))
               ? 0
               : -1;
}

/* Reorder an activation between the caller's NHWC and a blocked copy (on
 * the exec's threads; the reorder needs no scratchpad). */
static int act(fn_dnnl_state *st, dnnl_primitive_t r, dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t a[2] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    return run(st, r, NULL, 2, a);
}

int fn_dnnl_conv2d_train(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    /* The epilogue is the reference's to do (training keeps it apart). */
    if (d->bias || d->scale || d->shift || d->act != FN_ACT_NONE) return -1;
    fn_dnnl_threads th;
    int threads = threads_enter(ex, &th), rc = -1;
    tconv *c = layer(ex, d, x->n, x->h, x->w, threads);
    if (c) {
        fn_dnnl_state *st = ex->backend_state;
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, c->wino ? c->xb : c->x},
                                {DNNL_ARG_WEIGHTS, c->w_fwd},
                                {DNNL_ARG_DST, c->wino ? c->yb : c->y}};
        rc = weights_in(st, c, c->to_fwd, c->w_fwd, d->weights) || set2(c, x->data, y->data) ||
                     (c->wino && act(st, c->x_in, c->x, c->xb)) || run(st, c->fwd, c->s_fwd, 3, a) ||
                     (c->wino && act(st, c->y_out, c->yb, c->y)) || !OK(dnnl_stream_wait(st->stream))
                 ? -1
                 : 0;
    }
    fn_dnnl_threads_leave(&th);
    return rc;
}

int fn_dnnl_conv2d_backward_data(const fn_exec *ex, const fn_tensor *dy, const fn_conv_desc *d, fn_tensor *dx) {
    fn_dnnl_threads th;
    int threads = threads_enter(ex, &th), rc = -1;
    tconv *c = layer(ex, d, dx->n, dx->h, dx->w, threads);
    if (c) {
        fn_dnnl_state *st = ex->backend_state;
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_DIFF_DST, c->wino ? c->yb : c->y},
                                {DNNL_ARG_WEIGHTS, c->w_bwd},
                                {DNNL_ARG_DIFF_SRC, c->wino ? c->xb : c->x}};
        rc = weights_in(st, c, c->to_bwd, c->w_bwd, d->weights) || set2(c, dx->data, dy->data) ||
                     (c->wino && act(st, c->y_in, c->y, c->yb)) || run(st, c->bwd_d, c->s_bd, 3, a) ||
                     (c->wino && act(st, c->x_out, c->xb, c->x)) || !OK(dnnl_stream_wait(st->stream))
                 ? -1
                 : 0;
    }
    fn_dnnl_threads_leave(&th);
    return rc;
}

int fn_dnnl_conv2d_backward_weights(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy,
                                    const fn_conv_desc *d, float *dw, float *dbias) {
    fn_dnnl_threads th;
    int threads = threads_enter(ex, &th), rc = -1;
    tconv *c = dw ? layer(ex, d, x->n, x->h, x->w, threads) : NULL;
    if (c) {
        fn_dnnl_state *st = ex->backend_state;
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, c->wino ? c->xb : c->x},
                                {DNNL_ARG_DIFF_DST, c->wino ? c->yb : c->y},
                                {DNNL_ARG_DIFF_WEIGHTS, c->dw}};
        dnnl_exec_arg_t b[3] = {{DNNL_ARG_FROM, c->dw}, {DNNL_ARG_TO, c->user_dw}};
        rc = set2(c, x->data, dy->data) || (c->wino && act(st, c->x_in, c->x, c->xb)) ||
                     (c->wino && act(st, c->y_in, c->y, c->yb)) || run(st, c->bwd_w, c->s_bw, 3, a) ||
                     !OK(dnnl_memory_set_data_handle(c->user_dw, dw)) || run1(st, c->dw_back, c->s_r, 2, b) ||
                     !OK(dnnl_stream_wait(st->stream))
                 ? -1
                 : 0;
    }
    fn_dnnl_threads_leave(&th);
    /* A bias gradient is a plain per-channel sum: the reference's. */
    if (rc == 0 && dbias) fn_bias_add_backward(dy, dbias);
    return rc;
}

int fn_dnnl_conv2d_backward_both(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, const fn_conv_desc *d,
                                 fn_tensor *dx, float *dw) {
    fn_dnnl_threads th;
    int threads = threads_enter(ex, &th), rc = -1;
    tconv *c = layer(ex, d, x->n, x->h, x->w, threads);
    /* Only Winograd's layers gain (dy's blocked copy is made once); the
     * others take the two slots, which are as fast. */
    if (c && c->wino) {
        fn_dnnl_state *st = ex->backend_state;
        dnnl_exec_arg_t a[4] = {{DNNL_ARG_SRC, c->xb}, {DNNL_ARG_DIFF_DST, c->yb}, {DNNL_ARG_DIFF_WEIGHTS, c->dw}};
        dnnl_exec_arg_t b[3] = {{DNNL_ARG_FROM, c->dw}, {DNNL_ARG_TO, c->user_dw}};
        dnnl_exec_arg_t g[4] = {{DNNL_ARG_DIFF_DST, c->yb}, {DNNL_ARG_WEIGHTS, c->w_bwd}, {DNNL_ARG_DIFF_SRC, c->xb}};
        /* The weights' pass before the data pass, which overwrites xb; its
         * sum into the caller's dw last, so that a failure before it leaves
         * dw as it was for the caller's fallback (dx is overwritten anyway). */
        rc = set2(c, x->data, dy->data) || act(st, c->y_in, c->y, c->yb) ||
                     (dw && (act(st, c->x_in, c->x, c->xb) || run(st, c->bwd_w, c->s_bw, 3, a))) ||
                     (dx && (weights_in(st, c, c->to_bwd, c->w_bwd, d->weights) ||
                             !OK(dnnl_memory_set_data_handle(c->x, dx->data)) ||
                             run(st, c->bwd_d, c->s_bd, 3, g) || act(st, c->x_out, c->xb, c->x))) ||
                     (dw && (!OK(dnnl_memory_set_data_handle(c->user_dw, dw)) ||
                             run1(st, c->dw_back, c->s_r, 2, b))) ||
                     !OK(dnnl_stream_wait(st->stream))
                 ? -1
                 : 0;
    }
    fn_dnnl_threads_leave(&th);
    return rc;
}

/* Build an average pool's backward primitive (p->ok says whether it
 * worked). The scratchpad is left to oneDNN (library mode): it needs none. */
static void tpool_make(fn_dnnl_state *st, tpool *p) {
    int oh, ow;
    dnnl_dims_t strides = {p->stride, p->stride}, kernel = {p->k, p->k}, pl, pr;
    fn_dnnl_padding(p->h, p->k, p->stride, (fn_padding)p->pad, &oh, &pl[0], &pr[0]);
    fn_dnnl_padding(p->w, p->k, p->stride, (fn_padding)p->pad, &ow, &pl[1], &pr[1]);
    /* TF's average ignores padded cells, as exclude_padding does. */
    const dnnl_alg_kind_t alg = dnnl_pooling_avg_exclude_padding;
    dnnl_memory_desc_t xmd, ymd;
    dnnl_pooling_desc_t fd, bd;
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    p->ok = !fn_dnnl_md_nhwc(&xmd, p->n, p->h, p->w, p->c) && !fn_dnnl_md_nhwc(&ymd, p->n, oh, ow, p->c) &&
            OK(dnnl_pooling_forward_desc_init(&fd, dnnl_forward_training, alg, &xmd, &ymd, strides, kernel, pl,
                                              pr)) &&
            OK(dnnl_primitive_desc_create(&fpd, &fd, NULL, st->engine, NULL)) &&
            OK(dnnl_pooling_backward_desc_init(&bd, alg, &xmd, &ymd, strides, kernel, pl, pr)) &&
            OK(dnnl_primitive_desc_create(&bpd, &bd, NULL, st->engine, fpd)) && !fn_dnnl_is_reference(bpd) &&
            (p->dx = mem(st, &xmd, 0)) && (p->dy = mem(st, &ymd, 0)) && (p->bwd = fn_dnnl_primitive(bpd));
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
}

static tpool *pool_layer(const fn_exec *ex, int k, int stride, fn_padding pad, const fn_tensor *dx, int threads) {
    fn_dnnl_state *st = ex ? ex->backend_state : NULL;
    if (!st || dx->n <= 0) return NULL;
    if (!st->train && !(st->train = calloc(1, sizeof *st->train))) return NULL;
    for (tpool *p = st->train->pools; p; p = p->next)
        if (p->k == k && p->stride == stride && p->pad == (int)pad && p->n == dx->n && p->h == dx->h &&
            p->w == dx->w && p->c == dx->c && p->threads == threads)
            return p->ok ? p : NULL;
    tpool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->k = k, p->stride = stride, p->pad = (int)pad, p->threads = threads;
    p->n = dx->n, p->h = dx->h, p->w = dx->w, p->c = dx->c;
    tpool_make(st, p);
    p->next = st->train->pools; /* a network has a handful: no eviction */
    st->train->pools = p;
    return p->ok ? p : NULL;
}

int fn_dnnl_maxpool_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *dy, int k, int stride,
                             fn_padding pad, fn_tensor *dx) {
    (void)ex, (void)x, (void)dy, (void)k, (void)stride, (void)pad, (void)dx;
    return -1; /* the reference's (see struct tpool) */
}

int fn_dnnl_avgpool_backward(const fn_exec *ex, const fn_tensor *dy, int k, int stride, fn_padding pad,
                             fn_tensor *dx) {
    fn_dnnl_threads th;
    int threads = threads_enter(ex, &th), rc = -1;
    tpool *p = pool_layer(ex, k, stride, pad, dx, threads);
    if (p) {
        fn_dnnl_state *st = ex->backend_state;
        dnnl_exec_arg_t b[2] = {{DNNL_ARG_DIFF_DST, p->dy}, {DNNL_ARG_DIFF_SRC, p->dx}};
        rc = !OK(dnnl_memory_set_data_handle(p->dy, dy->data)) || !OK(dnnl_memory_set_data_handle(p->dx, dx->data)) ||
                     !OK(dnnl_primitive_execute(p->bwd, st->stream, 2, b)) || !OK(dnnl_stream_wait(st->stream))
                 ? -1
                 : 0;
    }
    fn_dnnl_threads_leave(&th);
    return rc;
}
