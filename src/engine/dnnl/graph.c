/*
 * graph.c - running an fn_graph (engine/graph.h) as one compiled oneDNN
 * plan.
 *
 * A plan is made the first time a graph runs with a batch size and thread
 * count, and kept in the exec's state (up to MAX_PLANS, most recently used
 * first; plans share the reordered weights, so each is small). It is a list
 * of steps - primitives with their arguments bound, or "zero this buffer" -
 * and a memory layout for every value:
 *
 *   - convolutions are asked for channel-blocked activations and, where
 *     it pays, Winograd (conv_pd below); other ops take their input's
 *     layout and let oneDNN choose the output's. A value stays in the layout
 *     its producer gave it (nChw16c for every activation of the ResNet), and
 *     a reorder is inserted only where a consumer wants another (the NHWC
 *     input into the stem convolution; the output, if it is not plain);
 *   - a convolution whose only consumer is the next op, an add whose shape
 *     is the conv's own, takes the add as post-ops: the other input is first
 *     placed in the conv's destination (zero-extended: the destination is
 *     zeroed and the input reordered into the sub-block it covers - or, when
 *     that input dies here and already has the layout, the conv simply
 *     writes over it), and the conv accumulates into it with a sum post-op
 *     followed by the add's activation. That is dlib's residual add + ReLU
 *     at no cost;
 *   - other adds (the ResNet's last two down blocks, where the main path is
 *     one pixel smaller than the shortcut) are: zero, reorder one input into
 *     its sub-block, reorder-with-sum the other into its sub-block, eltwise;
 *   - pools and the global mean are oneDNN pooling, the dense layer an inner
 *     product writing straight into the caller's output.
 *
 * int8 (graph.h): a quantized value is u8 or s8 NHWC - oneDNN 2.6 has int8
 * kernels (brgemm, VNNI) for NHWC only and falls back to its reference
 * loops on blocked layouts - and carries its scale. A convolution on such a
 * value runs on s8 weights with per-channel output scales (input scale x
 * weight scale / output scale) that take the s32 sum straight to the
 * output's units; a fused residual add is a sum post-op scaled by shortcut
 * scale / output scale, so the shortcut is never rescaled on its own. A
 * float32 result of a value the graph quantizes (the network's input) is
 * rounded to its grid by a reorder with a scale; a consumer that wants
 * float32 (the global mean, the dense layer, unfused adds) gets one the same
 * way. Pools keep their input's type and scale, as the graph says.
 *
 * Memory: every intermediate value gets a buffer; buffers whose steps do
 * not overlap share bytes (first-fit by size), and one scratchpad region
 * serves all primitives, which run one after another. The whole workspace
 * is taken from the session's arena on each run, so a plan holds no
 * activation memory of its own and the arena's reuse applies; the memory
 * objects get their addresses then (dnnl_memory_set_data_handle is cheap).
 *
 * Threads on a busy machine: a graph runs on one thread while
 * fn_dnnl_machine_busy() says the cores are taken (backend.c).
 */
#include <limits.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "engine/dnnl/dnnl_backend.h"

#define OK(call) ((call) == dnnl_success)
#define MAX_PLANS 64 /* per exec: the embedding path's batch sizes (1-16), the landmarks' (1-8), the
                       * detector, each at one and at the context's thread count */
#define MAX_ARGS 8
#define MAX_KEY_OUTPUTS 16 /* a graph with more outputs is not compiled (the SSD has 12) */
#define ALIGN 64

/* Buffers that are not the workspace's: the caller's input, the scratchpad,
 * and output k of the graph as BUF_OUT - k. */
enum { BUF_IN = -1, BUF_SCRATCH = -2, BUF_OUT = -3 };

typedef struct pbuf {
    size_t size, off;
    int first, last; /* steps that use it */
} pbuf;

typedef struct pmem {
    dnnl_memory_t mem;
    int buf; /* a pbuf, or BUF_* */
} pmem;

typedef struct pstep {
    dnnl_primitive_t prim; /* NULL: zero buffer zero_buf */
    int zero_buf;
    int nargs;
    dnnl_exec_arg_t args[MAX_ARGS];
    int arg_mem[MAX_ARGS]; /* index into mems, -1 for weights */
} pstep;

struct fn_dnnl_plan {
    /* the key */
    const fn_graph *g;
    fn_graph_op *ops; /* a copy, to notice a different graph at the same address */
    fn_graph_qvalue *q; /* a copy of the graph's quantization, or NULL */
    int n_ops, n, threads;
    int outputs[MAX_KEY_OUTPUTS], n_outputs;
    int failed;
    pstep *steps;
    int n_steps, cap_steps;
    pmem *mems;
    int n_mems, cap_mems;
    pbuf *bufs;
    int n_bufs, cap_bufs;
    size_t scratch_off, scratch_size, total;
    fn_dnnl_plan *next;
};

/* What the compiler knows about a value. */
typedef struct value {
    dnnl_memory_desc_t md;
    int buf, mem;
    float scale; /* real value = stored value * scale: 1 for float32 */
} value;

typedef struct compiler {
    fn_dnnl_state *st;
    fn_dnnl_plan *p;
    const fn_graph *g;
    int n;
    value *val;
    int *uses, *last_use;
    int *fused; /* fused[i]: op i (an add) was taken into the conv before it */
    int *out_of; /* out_of[v]: the output value v is (its first), or -1 */
    dnnl_memory_desc_t *out_md; /* per output: the caller's layout */
    int *out_mem;               /* per output: its memory object */
} compiler;

/* ---- growing arrays */

/* arr with room for need elements (arr itself if it has it), or NULL with
 * arr untouched. */
static void *grow(void *arr, int *cap, int need, size_t elem) {
    if (arr && need <= *cap) return arr;
    int cap2 = *cap ? *cap * 2 : 32;
    while (cap2 < need) cap2 *= 2;
    void *a = realloc(arr, elem * (size_t)cap2);
    if (a) *cap = cap2;
    return a;
}

static int new_buf(compiler *c, const dnnl_memory_desc_t *md) {
    fn_dnnl_plan *p = c->p;
    pbuf *bufs = grow(p->bufs, &p->cap_bufs, p->n_bufs + 1, sizeof *p->bufs);
    if (!bufs) return -1;
    p->bufs = bufs;
    pbuf *b = &p->bufs[p->n_bufs];
    b->size = (dnnl_memory_desc_get_size(md) + ALIGN - 1) & ~(size_t)(ALIGN - 1);
    b->off = 0;
    b->first = INT_MAX;
    b->last = -1;
    return p->n_bufs++;
}

static int new_mem(compiler *c, const dnnl_memory_desc_t *md, int buf) {
    fn_dnnl_plan *p = c->p;
    pmem *mems = grow(p->mems, &p->cap_mems, p->n_mems + 1, sizeof *p->mems);
    if (!mems) return -1;
    p->mems = mems;
    dnnl_memory_t m = fn_dnnl_memory(c->st, md);
    if (!m) return -1;
    p->mems[p->n_mems].mem = m;
    p->mems[p->n_mems].buf = buf;
    return p->n_mems++;
}

/* A step under construction: add arguments, then commit. */
typedef struct step_args {
    int n;
    dnnl_exec_arg_t a[MAX_ARGS];
    int mem[MAX_ARGS];
} step_args;

static void arg_mem(compiler *c, step_args *s, int kind, int mem) {
    s->a[s->n].arg = kind;
    s->a[s->n].memory = c->p->mems[mem].mem;
    s->mem[s->n++] = mem;
}

static void arg_fixed(step_args *s, int kind, dnnl_memory_t m) {
    s->a[s->n].arg = kind;
    s->a[s->n].memory = m;
    s->mem[s->n++] = -1;
}

/* Commit a step running pd's primitive (pd is consumed). */
static int add_step(compiler *c, dnnl_primitive_desc_t pd, step_args *s) {
    fn_dnnl_plan *p = c->p;
    int rc = -1;
    size_t scratch = fn_dnnl_scratch_size(pd);
    if (scratch > 0) {
        const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        int m = smd ? new_mem(c, smd, BUF_SCRATCH) : -1;
        if (m < 0) goto out;
        arg_mem(c, s, DNNL_ARG_SCRATCHPAD, m);
        if (scratch > p->scratch_size) p->scratch_size = scratch;
    }
    pstep *steps = grow(p->steps, &p->cap_steps, p->n_steps + 1, sizeof *p->steps);
    if (!steps) goto out;
    p->steps = steps;
    pstep *st = &p->steps[p->n_steps];
    memset(st, 0, sizeof *st);
    if (!(st->prim = fn_dnnl_primitive(pd))) goto out;
    st->nargs = s->n;
    memcpy(st->args, s->a, sizeof s->a);
    memcpy(st->arg_mem, s->mem, sizeof s->mem);
    p->n_steps++;
    rc = 0;
out:
    dnnl_primitive_desc_destroy(pd);
    return rc;
}

static int add_zero_step(compiler *c, int buf) {
    fn_dnnl_plan *p = c->p;
    pstep *steps = grow(p->steps, &p->cap_steps, p->n_steps + 1, sizeof *p->steps);
    if (!steps) return -1;
    p->steps = steps;
    pstep *st = &p->steps[p->n_steps++];
    memset(st, 0, sizeof *st);
    st->zero_buf = buf;
    return 0;
}

/* ---- layouts and data types */

static fn_graph_qvalue qv(const compiler *c, int v) {
    static const fn_graph_qvalue none = {0.0f, 0};
    return c->g->q ? c->g->q[v] : none;
}

static dnnl_data_type_t q_type(fn_graph_qvalue q) {
    return q.scale > 0.0f ? (q.is_signed ? dnnl_s8 : dnnl_u8) : dnnl_f32;
}

/* The scale of q's stored values: 1 for float32. */
static float q_scale(fn_graph_qvalue q) { return q.scale > 0.0f ? q.scale : 1.0f; }

static int dims_equal(const dnnl_memory_desc_t *a, const dnnl_memory_desc_t *b) {
    if (a->ndims != b->ndims) return 0;
    for (int i = 0; i < a->ndims; i++)
        if (a->dims[i] != b->dims[i]) return 0;
    return 1;
}

/* The format tag md has, among those a CPU primitive picks for
 * activations; nhwc if none. */
static dnnl_format_tag_t tag_of(const dnnl_memory_desc_t *md) {
    static const dnnl_format_tag_t tags[] = {dnnl_nChw16c, dnnl_nChw8c, dnnl_nhwc, dnnl_nchw};
    for (size_t i = 0; i < sizeof tags / sizeof tags[0]; i++) {
        dnnl_memory_desc_t t;
        if (OK(dnnl_memory_desc_init_by_tag(&t, 4, md->dims, md->data_type, tags[i])) &&
            dnnl_memory_desc_equal(&t, md))
            return tags[i];
    }
    return dnnl_nhwc;
}

/* Copy value v into the sub-block at the origin of buffer buf (layout
 * parent, whose stored values are in units of dst_scale) - accumulating if
 * sum. */
static int place(compiler *c, const value *v, const dnnl_memory_desc_t *parent, int buf, int sum,
                 float dst_scale) {
    const float oscale = v->scale / dst_scale;
    dnnl_memory_desc_t sub;
    dnnl_dims_t offsets = {0, 0, 0, 0};
    if (dims_equal(&v->md, parent)) {
        sub = *parent;
    } else if (!OK(dnnl_memory_desc_init_submemory(&sub, parent, v->md.dims, offsets))) {
        return -1;
    }
    int dst = new_mem(c, &sub, buf);
    if (dst < 0) return -1;
    dnnl_post_ops_t po = NULL;
    if (sum && !OK(dnnl_post_ops_create(&po))) return -1;
    if (po && !OK(dnnl_post_ops_append_sum(po, 1.0f))) {
        dnnl_post_ops_destroy(po);
        return -1;
    }
    dnnl_primitive_attr_t attr = fn_dnnl_attr(po);
    if (po) dnnl_post_ops_destroy(po);
    if (!attr) return -1;
    if (oscale != 1.0f && !OK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &oscale))) {
        dnnl_primitive_attr_destroy(attr);
        return -1;
    }
    dnnl_primitive_desc_t pd = NULL;
    dnnl_status_t s =
        dnnl_reorder_primitive_desc_create(&pd, &v->md, c->st->engine, &sub, c->st->engine, attr);
    dnnl_primitive_attr_destroy(attr);
    if (!OK(s)) return -1;
    step_args a = {0};
    arg_mem(c, &a, DNNL_ARG_FROM, v->mem);
    arg_mem(c, &a, DNNL_ARG_TO, dst);
    return add_step(c, pd, &a);
}

/* A new value of layout md in its own buffer, stored in units of scale. */
static int fresh(compiler *c, const dnnl_memory_desc_t *md, float scale, value *out) {
    out->md = *md;
    out->scale = scale;
    if ((out->buf = new_buf(c, md)) < 0 || (out->mem = new_mem(c, md, out->buf)) < 0) return -1;
    return 0;
}

/* A value in layout md (in a new buffer, units of scale) converted from v. */
static int convert(compiler *c, const value *v, const dnnl_memory_desc_t *md, float scale, value *out) {
    if (fresh(c, md, scale, out)) return -1;
    return place(c, v, md, out->buf, 0, scale);
}

/* v (4-D) as NHWC of data type dt, converted if it is not. */
static int as_nhwc(compiler *c, const value *v, dnnl_data_type_t dt, float scale, value *out) {
    const dnnl_dim_t *d = v->md.dims;
    dnnl_memory_desc_t md;
    if (v->md.ndims != 4 ||
        fn_dnnl_md_tag_dt(&md, (int)d[0], (int)d[2], (int)d[3], (int)d[1], dnnl_nhwc, dt))
        return -1;
    if (dnnl_memory_desc_equal(&md, &v->md)) {
        *out = *v;
        return 0;
    }
    return convert(c, v, &md, scale, out);
}

/* v as float32 (itself if it is). */
static int as_f32(compiler *c, const value *v, value *out) {
    if (v->md.data_type == dnnl_f32) {
        *out = *v;
        return 0;
    }
    return as_nhwc(c, v, dnnl_f32, 1.0f, out);
}

/* Give value v the type the graph's quantization asks for: a float32
 * result of a quantized value (the network's input) is rounded to its int8
 * grid, in NHWC, the layout int8 convolutions take. */
static int settle(compiler *c, int v) {
    const fn_graph_qvalue q = qv(c, v);
    if (q.scale <= 0.0f || c->val[v].md.data_type != dnnl_f32) return 0;
    value out;
    if (as_nhwc(c, &c->val[v], q_type(q), q.scale, &out)) return -1;
    c->val[v] = out;
    return 0;
}

/* ---- ops */

static int covers(const value *v, const dnnl_memory_desc_t *y) { return dims_equal(&v->md, y); }

/* May the add's output be written over value `in` (consumed at op j)? */
static int reusable(const compiler *c, int in, int j, const dnnl_memory_desc_t *y) {
    const value *v = &c->val[in];
    return v->buf >= 0 && c->last_use[in] == j && dnnl_memory_desc_equal(&v->md, y);
}

/* The layout and algorithm policy, measured on the ResNet (docs/
 * performance.md): oneDNN's own choice for "any" layouts is its brgemm
 * kernels on NHWC, but its direct kernels on channel-blocked data are faster
 * on every layer of the ResNet (twice as fast on the 4x4 and 3x3 ones), so
 * activations whose channels divide by the block are asked for in nChw16c
 * (nChw8c with AVX2). 3x3 stride-1 convolutions with an output of at least
 * 8x8 use Winograd F(4x4, 3x3), 25-35% faster there and slower on smaller
 * planes; it rounds differently from a direct convolution (normalized
 * squared error ~1e-12 on the embeddings, see test_backend.c), and
 * FACENET_WINOGRAD=0 turns it off. Whatever is not possible (or possible
 * only for oneDNN's reference kernel) falls back to the next choice: direct,
 * then oneDNN's own layouts. */
static int conv_pd(compiler *c, const fn_conv_desc *d, int h, int w, int oh, int ow, const fn_graph_op *add,
                   dnnl_primitive_desc_t *pd) {
    const int blk = c->st->block;
    dnnl_memory_desc_t smd, dmd;
    const dnnl_format_tag_t tag = blk == 16 ? dnnl_nChw16c : dnnl_nChw8c;
    int src_blocked = blk && d->cin % blk == 0 && fn_dnnl_md_tag(&smd, c->n, h, w, d->cin, tag) == 0;
    int dst_blocked = blk && d->cout % blk == 0 && fn_dnnl_md_tag(&dmd, c->n, oh, ow, d->cout, tag) == 0;
    int wino = c->st->winograd && d->kh == 3 && d->kw == 3 && d->stride == 1 && !d->depthwise && oh >= 8 &&
               ow >= 8 && src_blocked && dst_blocked;
    fn_act act2 = add ? add->act : FN_ACT_NONE;
    float alpha2 = add ? add->alpha : 0.0f;
    /* The choices, best first; one that only oneDNN's reference kernel can
     * do is passed over. */
    for (int choice = wino ? 0 : 1; choice < 3; choice++) {
        if (choice == 1 && !src_blocked && !dst_blocked) continue;
        const dnnl_memory_desc_t *sp = choice < 2 && src_blocked ? &smd : NULL;
        const dnnl_memory_desc_t *dp = choice < 2 && dst_blocked ? &dmd : NULL;
        dnnl_alg_kind_t alg = choice == 0 ? dnnl_convolution_winograd : dnnl_convolution_direct;
        if (fn_dnnl_conv_pd(c->st, d, c->n, h, w, alg, sp, dp, add != NULL, act2, alpha2, NULL, pd) != 0)
            continue;
        if (choice == 2 || !fn_dnnl_is_reference(*pd)) return 0;
        dnnl_primitive_desc_destroy(*pd);
    }
    return -1;
}

/* An int8 convolution (the graph's qconv for op i) from a value of scale
 * in_scale to one of y (the conv's, or the fused add's): NHWC both, s8
 * weights, output scales to y's units; sum_scale on the shortcut. */
static int qconv_pd(compiler *c, int i, float in_scale, dnnl_data_type_t in_type, fn_graph_qvalue y,
                    const fn_graph_op *add, float sum_scale, dnnl_primitive_desc_t *pd) {
    const fn_graph_op *op = &c->g->ops[i];
    const fn_graph_qconv *q = c->g->qconv[i];
    const fn_conv_desc *d = &q->desc;
    int xh, xw, xc;
    fn_graph_shape(c->g, op->in[0], &xh, &xw, &xc);
    dnnl_memory_desc_t smd, dmd;
    float *oscale = malloc(sizeof(float) * (size_t)d->cout);
    if (!oscale) return -1;
    for (int k = 0; k < d->cout; k++) oscale[k] = in_scale * q->w_scale[k] / q_scale(y);
    const fn_dnnl_conv_q cq = {oscale, sum_scale, q_scale(y)};
    int rc = fn_dnnl_md_tag_dt(&smd, c->n, xh, xw, xc, dnnl_nhwc, in_type) ||
                     fn_dnnl_md_tag_dt(&dmd, c->n, op->h, op->w, op->c, dnnl_nhwc, q_type(y)) ||
                     fn_dnnl_conv_pd(c->st, d, c->n, xh, xw, dnnl_convolution_direct, &smd, &dmd, add != NULL,
                                     add ? add->act : FN_ACT_NONE, add ? add->alpha : 0.0f, &cq, pd)
                 ? -1
                 : 0;
    free(oscale);
    return rc;
}

static int compile_conv(compiler *c, int i) {
    const fn_graph *g = c->g;
    const fn_graph_op *op = &g->ops[i];
    const fn_conv_desc *d = op->conv;
    const fn_graph_qconv *qc = g->qconv ? g->qconv[i] : NULL;
    const int o = i + 1;
    int xh, xw, xc;
    fn_graph_shape(g, op->in[0], &xh, &xw, &xc);
    /* Can the next op, an add of this conv's output and something else of
     * this shape, become post-ops? A float32 conv can only write float32,
     * so it takes in only an add of float32 values. */
    int j = i + 1, other = -1;
    if (j < g->n_ops && g->ops[j].kind == FN_OP_ADD && c->uses[o] == 1 &&
        (g->ops[j].in[0] == o || g->ops[j].in[1] == o) && g->ops[j].in[0] != g->ops[j].in[1] &&
        g->ops[j].h == op->h && g->ops[j].w == op->w && g->ops[j].c == op->c)
        other = g->ops[j].in[0] == o ? g->ops[j].in[1] : g->ops[j].in[0];
    if (other >= 0 && !qc && (qv(c, j + 1).scale > 0.0f || c->val[other].md.data_type != dnnl_f32)) other = -1;
    const fn_graph_op *add = other >= 0 ? &g->ops[j] : NULL;
    const fn_graph_qvalue y = qv(c, add ? j + 1 : o);
    /* A float32 conv writes real values (a quantized y is settled onto its
     * grid after it); an int8 one writes y's units. */
    const float ys = qc ? q_scale(y) : 1.0f;
    /* The shortcut keeps its own units in the destination when it has the
     * destination's type (the sum post-op rescales it, exactly); otherwise
     * it is converted to the destination's units when placed there. */
    const int keep = add && c->val[other].md.data_type == q_type(y);
    const float other_units = keep ? c->val[other].scale : ys;
    dnnl_primitive_desc_t pd = NULL;
    if (qc ? qconv_pd(c, i, c->val[op->in[0]].scale, c->val[op->in[0]].md.data_type, y, add, other_units / ys,
                      &pd)
           : conv_pd(c, d, xh, xw, op->h, op->w, add, &pd))
        return -1;
    const dnnl_memory_desc_t *want = dnnl_primitive_desc_query_md(pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    fn_dnnl_weights *w =
        qc ? fn_dnnl_qconv_weights(c->st, qc, c->val[op->in[0]].scale, pd) : fn_dnnl_conv_weights(c->st, d, pd);
    value src = c->val[op->in[0]], out;
    if (!want || !dmd || !w ||
        (!dnnl_memory_desc_equal(want, &src.md) && convert(c, &c->val[op->in[0]], want, src.scale, &src)))
        goto fail;
    if (add && other != op->in[0] && reusable(c, other, j, dmd)) {
        out = c->val[other]; /* accumulate in place over the shortcut */
    } else {
        if (fresh(c, dmd, ys, &out)) goto fail;
        if (add) {
            if (c->val[other].md.ndims != 4) goto fail;
            if (!covers(&c->val[other], dmd) && add_zero_step(c, out.buf)) goto fail;
            if (place(c, &c->val[other], dmd, out.buf, 0, other_units)) goto fail;
        }
    }
    out.scale = ys;
    step_args a = {0};
    arg_mem(c, &a, DNNL_ARG_SRC, src.mem);
    arg_fixed(&a, DNNL_ARG_WEIGHTS, w->w);
    if (w->b) arg_fixed(&a, DNNL_ARG_BIAS, w->b);
    arg_mem(c, &a, DNNL_ARG_DST, out.mem);
    if (add_step(c, pd, &a)) return -1;
    if (add) {
        c->fused[j] = 1;
        c->val[j + 1] = out;
    } else {
        c->val[o] = out;
    }
    return 0;
fail:
    dnnl_primitive_desc_destroy(pd);
    return -1;
}

/* Max or average pooling; the global mean is an average over the whole
 * plane. */
static int compile_pool(compiler *c, int i) {
    const fn_graph_op *op = &c->g->ops[i];
    value xf;
    const value *x = &c->val[op->in[0]];
    /* Pools keep int8 (max and 2x2 average on the grid, as the graph says);
     * the global mean is taken in float32. */
    if (op->kind == FN_OP_GLOBAL_MEAN) {
        if (as_f32(c, x, &xf)) return -1;
        x = &xf;
    }
    int h, w, ch, oh, ow;
    fn_graph_shape(c->g, op->in[0], &h, &w, &ch);
    dnnl_dims_t strides, kernel, pl, pr;
    if (op->kind == FN_OP_GLOBAL_MEAN) {
        strides[0] = strides[1] = 1;
        kernel[0] = h, kernel[1] = w;
        pl[0] = pl[1] = pr[0] = pr[1] = 0;
    } else {
        strides[0] = strides[1] = op->stride;
        kernel[0] = kernel[1] = op->k;
        fn_dnnl_padding(h, op->k, op->stride, op->pad, &oh, &pl[0], &pr[0]);
        fn_dnnl_padding(w, op->k, op->stride, op->pad, &ow, &pl[1], &pr[1]);
    }
    /* Max pooling never picks a padded cell; average divides by the real
     * cells only: both as the reference does. */
    dnnl_alg_kind_t alg = op->kind == FN_OP_MAXPOOL ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding;
    dnnl_dims_t ddims = {c->n, op->c, op->h, op->w};
    dnnl_memory_desc_t any;
    dnnl_pooling_desc_t pdsc;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = fn_dnnl_attr(NULL);
    int ok = attr && x->md.ndims == 4 &&
             OK(dnnl_memory_desc_init_by_tag(&any, 4, ddims, x->md.data_type, dnnl_format_tag_any)) &&
             OK(dnnl_pooling_forward_desc_init(&pdsc, dnnl_forward_inference, alg, &x->md, &any, strides,
                                               kernel, pl, pr)) &&
             OK(dnnl_primitive_desc_create(&pd, &pdsc, attr, c->st->engine, NULL));
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) return -1;
    value out;
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    if (!dmd || fresh(c, dmd, x->scale, &out)) {
        dnnl_primitive_desc_destroy(pd);
        return -1;
    }
    step_args a = {0};
    arg_mem(c, &a, DNNL_ARG_SRC, x->mem);
    arg_mem(c, &a, DNNL_ARG_DST, out.mem);
    c->val[i + 1] = out;
    return add_step(c, pd, &a);
}

/* An activation in place over a whole value. */
static int eltwise_in_place(compiler *c, const value *v, fn_act act, float alpha) {
    dnnl_alg_kind_t alg = act == FN_ACT_RELU6 ? dnnl_eltwise_clip : dnnl_eltwise_relu;
    float a = act == FN_ACT_LEAKY ? alpha : 0.0f, b = act == FN_ACT_RELU6 ? 6.0f : 0.0f;
    dnnl_eltwise_desc_t ed;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = fn_dnnl_attr(NULL);
    int ok = attr && OK(dnnl_eltwise_forward_desc_init(&ed, dnnl_forward_inference, alg, &v->md, a, b)) &&
             OK(dnnl_primitive_desc_create(&pd, &ed, attr, c->st->engine, NULL));
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (!ok) return -1;
    step_args s = {0};
    arg_mem(c, &s, DNNL_ARG_SRC, v->mem);
    arg_mem(c, &s, DNNL_ARG_DST, v->mem);
    return add_step(c, pd, &s);
}

/* out = act(a + b), all of one shape and layout; out may be a's memory. */
static int binary_add(compiler *c, const value *a, const value *b, const value *out, fn_act act, float alpha) {
    dnnl_binary_desc_t bd;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (!OK(dnnl_binary_desc_init(&bd, dnnl_binary_add, &a->md, &b->md, &out->md)) ||
        !OK(dnnl_post_ops_create(&po)))
        return -1;
    dnnl_primitive_attr_t attr = fn_dnnl_append_act(po, act, alpha, 1.0f) ? NULL : fn_dnnl_attr(po);
    dnnl_post_ops_destroy(po);
    if (!attr) return -1;
    dnnl_status_t st = dnnl_primitive_desc_create(&pd, &bd, attr, c->st->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (!OK(st)) return -1;
    step_args s = {0};
    arg_mem(c, &s, DNNL_ARG_SRC_0, a->mem);
    arg_mem(c, &s, DNNL_ARG_SRC_1, b->mem);
    arg_mem(c, &s, DNNL_ARG_DST, out->mem);
    return add_step(c, pd, &s);
}

/* An add that did not fuse into a convolution. */
static int compile_add(compiler *c, int j) {
    const fn_graph_op *op = &c->g->ops[j];
    const value *a = &c->val[op->in[0]], *b = &c->val[op->in[1]];
    if (a->md.ndims != 4 || b->md.ndims != 4) return -1;
    dnnl_dims_t dims = {c->n, op->c, op->h, op->w};
    dnnl_memory_desc_t ymd;
    /* The sum is made in float32 whatever the output's type: placed one
     * after the other into an int8 buffer, a negative first input would
     * saturate at 0 before the second is added. An int8 output is rounded
     * once, after (settle). With int8 inputs, they are placed with their
     * scales (below), never added by the binary primitive. */
    const float ys = 1.0f;
    const int quant = qv(c, j + 1).scale > 0.0f || a->md.data_type != dnnl_f32 || b->md.data_type != dnnl_f32;
    /* Keep the layout of whichever input already has the output's shape. */
    const value *like = dims_equal(&a->md, &b->md) || a->md.dims[1] >= b->md.dims[1] ? a : b;
    if (!OK(dnnl_memory_desc_init_by_tag(&ymd, 4, dims, dnnl_f32, tag_of(&like->md)))) return -1;
    /* Write over an input that dies here and already is the output's shape,
     * layout and units, if there is one; else start from a zeroed buffer. */
    int ia = op->in[0], ib = op->in[1];
    const int ra = reusable(c, ia, j, &ymd) && c->val[ia].scale == ys,
              rb = reusable(c, ib, j, &ymd) && c->val[ib].scale == ys;
    if (ia != ib && !ra && rb) ia = op->in[1], ib = op->in[0];
    const int reuse = ia != ib && (ra || rb);
    a = &c->val[ia];
    b = &c->val[ib];
    value out;
    if (!quant && dnnl_memory_desc_equal(&a->md, &ymd) && dnnl_memory_desc_equal(&b->md, &ymd)) {
        /* Both already are the output's shape and layout: one binary add
         * with the activation as a post-op. */
        if (reuse) {
            out = *a;
        } else if (fresh(c, &ymd, 1.0f, &out)) {
            return -1;
        }
        if (binary_add(c, a, b, &out, op->act, op->alpha)) return -1;
        c->val[j + 1] = out;
        return 0;
    }
    if (reuse) {
        out = *a;
    } else {
        if (fresh(c, &ymd, ys, &out)) return -1;
        if (!covers(a, &ymd) && add_zero_step(c, out.buf)) return -1;
        if (place(c, a, &ymd, out.buf, 0, ys)) return -1;
    }
    if (place(c, b, &ymd, out.buf, 1, ys)) return -1;
    if (op->act != FN_ACT_NONE && eltwise_in_place(c, &out, op->act, op->alpha)) return -1;
    c->val[j + 1] = out;
    return 0;
}

static int compile_dense(compiler *c, int i) {
    const fn_graph_op *op = &c->g->ops[i];
    value xf;
    if (as_f32(c, &c->val[op->in[0]], &xf)) return -1;
    const value *x = &xf;
    /* An output is written straight into the caller's rows. */
    const int k = c->out_of[i + 1], last = k >= 0;
    const dnnl_memory_desc_t *user_out = last ? &c->out_md[k] : NULL;
    dnnl_primitive_desc_t pd = NULL;
    if (fn_dnnl_dense_pd(c->st, &x->md, op->c, op->bias != NULL, user_out, &pd)) return -1;
    fn_dnnl_weights *w = fn_dnnl_dense_weights(c->st, op->weights, op->bias, pd);
    const dnnl_memory_desc_t *dmd = dnnl_primitive_desc_query_md(pd, dnnl_query_dst_md, 0);
    value out;
    if (last) {
        out.md = *user_out;
        out.buf = BUF_OUT - k;
        out.mem = c->out_mem[k];
        out.scale = 1.0f;
    }
    if (!w || !dmd || (!last && fresh(c, dmd, 1.0f, &out))) {
        dnnl_primitive_desc_destroy(pd);
        return -1;
    }
    step_args a = {0};
    arg_mem(c, &a, DNNL_ARG_SRC, x->mem);
    arg_fixed(&a, DNNL_ARG_WEIGHTS, w->w);
    if (w->b) arg_fixed(&a, DNNL_ARG_BIAS, w->b);
    arg_mem(c, &a, DNNL_ARG_DST, out.mem);
    c->val[i + 1] = out;
    return add_step(c, pd, &a);
}

/* First-fit offsets for buffers that are live at the same time. */
static int assign_offsets(fn_dnnl_plan *p) {
    for (int s = 0; s < p->n_steps; s++) {
        const pstep *st = &p->steps[s];
        for (int k = -1; k < st->nargs; k++) {
            int b = k < 0 ? (st->prim ? -1 : st->zero_buf)
                          : (st->arg_mem[k] >= 0 ? p->mems[st->arg_mem[k]].buf : -1);
            if (b < 0) continue;
            if (s < p->bufs[b].first) p->bufs[b].first = s;
            if (s > p->bufs[b].last) p->bufs[b].last = s;
        }
    }
    int *order = malloc(sizeof *order * (size_t)(p->n_bufs ? p->n_bufs : 1));
    if (!order) return -1;
    int placed = 0;
    size_t end = 0;
    for (int i = 0; i < p->n_bufs; i++) order[i] = i;
    /* Largest first (insertion sort: a few dozen buffers). */
    for (int i = 1; i < p->n_bufs; i++)
        for (int k = i; k > 0 && p->bufs[order[k]].size > p->bufs[order[k - 1]].size; k--) {
            int t = order[k];
            order[k] = order[k - 1];
            order[k - 1] = t;
        }
    for (int i = 0; i < p->n_bufs; i++) {
        pbuf *b = &p->bufs[order[i]];
        size_t off = 0;
        for (int moved = 1; moved;) {
            moved = 0;
            for (int k = 0; k < placed; k++) {
                const pbuf *q = &p->bufs[order[k]];
                int in_time = !(q->last < b->first || b->last < q->first);
                if (in_time && off < q->off + q->size && q->off < off + b->size) {
                    off = q->off + q->size;
                    moved = 1;
                }
            }
        }
        b->off = off;
        placed++;
        if (off + b->size > end) end = off + b->size;
    }
    free(order);
    p->scratch_off = end;
    p->total = end + ((p->scratch_size + ALIGN - 1) & ~(size_t)(ALIGN - 1));
    return 0;
}

static void plan_free(fn_dnnl_plan *p) {
    if (!p) return;
    for (int i = 0; i < p->n_steps; i++)
        if (p->steps[i].prim) dnnl_primitive_destroy(p->steps[i].prim);
    for (int i = 0; i < p->n_mems; i++) dnnl_memory_destroy(p->mems[i].mem);
    free(p->steps);
    free(p->mems);
    free(p->bufs);
    free(p->ops);
    free(p->q);
    free(p);
}

/* Copy value v into the caller's output, if it is one (and was not
 * written there directly). */
static int emit_output(compiler *c, int v) {
    const int k = c->out_of[v];
    const value *x = &c->val[v];
    if (k < 0 || x->buf == BUF_OUT - k) return 0;
    if (x->md.ndims != c->out_md[k].ndims) return -1;
    return place(c, x, &c->out_md[k], BUF_OUT - k, 0, 1.0f);
}

static int compile(compiler *c) {
    const fn_graph *g = c->g;
    for (int i = 0; i < g->n_ops; i++)
        for (int k = 0; k < 2; k++) {
            int v = g->ops[i].in[k];
            if (v < 0 || (k == 1 && v == g->ops[i].in[0])) continue;
            c->uses[v]++;
            c->last_use[v] = i;
        }
    /* Being an output counts as a use: an output is never fused away. */
    for (int k = fn_graph_n_outputs(g) - 1; k >= 0; k--) {
        const int v = fn_graph_output_value(g, k);
        c->uses[v]++;
        c->out_of[v] = k;
    }
    value *in = &c->val[0];
    if (fn_dnnl_md_nhwc(&in->md, c->n, g->h, g->w, g->c)) return -1;
    in->buf = BUF_IN;
    in->scale = 1.0f;
    if ((in->mem = new_mem(c, &in->md, BUF_IN)) < 0 || settle(c, 0)) return -1;
    /* The caller's outputs: plain rows after a dense layer, NHWC otherwise. */
    for (int k = 0; k < fn_graph_n_outputs(g); k++) {
        const fn_graph_op *op = &g->ops[fn_graph_output_value(g, k) - 1];
        if ((op->kind == FN_OP_DENSE ? fn_dnnl_md_rows(&c->out_md[k], c->n, op->c)
                                     : fn_dnnl_md_nhwc(&c->out_md[k], c->n, op->h, op->w, op->c)) ||
            (c->out_mem[k] = new_mem(c, &c->out_md[k], BUF_OUT - k)) < 0)
            return -1;
    }
    for (int i = 0; i < g->n_ops; i++) {
        if (!c->fused[i]) {
            int rc = -1;
            switch (g->ops[i].kind) {
            case FN_OP_CONV: rc = compile_conv(c, i); break;
            case FN_OP_MAXPOOL:
            case FN_OP_AVGPOOL:
            case FN_OP_GLOBAL_MEAN: rc = compile_pool(c, i); break;
            case FN_OP_ADD: rc = compile_add(c, i); break;
            case FN_OP_DENSE: rc = compile_dense(c, i); break;
            }
            if (rc) return -1;
        }
        /* A conv that took in the add after it has no value of its own: its
         * add's value is set (and emitted) at the add. */
        if (!(i + 1 < g->n_ops && c->fused[i + 1]) && (settle(c, i + 1) || emit_output(c, i + 1))) return -1;
    }
    return assign_offsets(c->p);
}

static int same_op(const fn_graph_op *a, const fn_graph_op *b) {
    if (a->kind != b->kind || a->in[0] != b->in[0] || a->in[1] != b->in[1] || a->h != b->h || a->w != b->w ||
        a->c != b->c)
        return 0;
    switch (a->kind) {
    case FN_OP_CONV: return a->conv == b->conv && fn_dnnl_same_conv(a->conv, b->conv);
    case FN_OP_MAXPOOL:
    case FN_OP_AVGPOOL: return a->k == b->k && a->stride == b->stride && a->pad == b->pad;
    case FN_OP_ADD: return a->act == b->act && a->alpha == b->alpha;
    case FN_OP_GLOBAL_MEAN: return 1;
    case FN_OP_DENSE: return a->weights == b->weights && a->bias == b->bias;
    }
    return 0;
}

static int plan_matches(const fn_dnnl_plan *p, const fn_graph *g, int n, int threads) {
    if (p->g != g || p->n != n || p->threads != threads || p->n_ops != g->n_ops ||
        p->n_outputs != fn_graph_n_outputs(g) || !p->q != !g->q ||
        (g->q && memcmp(p->q, g->q, sizeof *g->q * (size_t)(g->n_ops + 1)) != 0))
        return 0;
    for (int k = 0; k < p->n_outputs && k < MAX_KEY_OUTPUTS; k++)
        if (p->outputs[k] != fn_graph_output_value(g, k)) return 0;
    for (int i = 0; i < g->n_ops; i++)
        if (!same_op(&p->ops[i], &g->ops[i])) return 0;
    return 1;
}

/* A new plan for (g, n, threads); a failed compile gives a plan marked
 * failed, so that it is not retried on every run. NULL if out of memory. */
static fn_dnnl_plan *plan_new(fn_dnnl_state *st, const fn_graph *g, int n, int threads) {
    fn_dnnl_plan *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->g = g;
    p->n = n;
    p->threads = threads;
    p->n_ops = g->n_ops;
    p->n_outputs = fn_graph_n_outputs(g);
    for (int k = 0; k < p->n_outputs && k < MAX_KEY_OUTPUTS; k++) p->outputs[k] = fn_graph_output_value(g, k);
    p->ops = malloc(sizeof *p->ops * (size_t)g->n_ops);
    const size_t nv = (size_t)g->n_ops + 1;
    if (g->q && (p->q = malloc(sizeof *p->q * nv)) != NULL) memcpy(p->q, g->q, sizeof *p->q * nv);
    const size_t no = (size_t)fn_graph_n_outputs(g);
    compiler c = {st,
                  p,
                  g,
                  n,
                  calloc(nv, sizeof(value)),
                  calloc(nv, sizeof(int)),
                  calloc(nv, sizeof(int)),
                  calloc(nv, sizeof(int)),
                  malloc(nv * sizeof(int)),
                  calloc(no, sizeof(dnnl_memory_desc_t)),
                  calloc(no, sizeof(int))};
    if (c.out_of)
        for (size_t v = 0; v < nv; v++) c.out_of[v] = -1;
    if (!p->ops || (g->q && !p->q) || !c.val || !c.uses || !c.last_use || !c.fused || !c.out_of || !c.out_md ||
        !c.out_mem) {
        free(p->ops);
        free(p->q);
        free(p);
        p = NULL;
    } else {
        memcpy(p->ops, g->ops, sizeof *p->ops * (size_t)g->n_ops);
        if (p->n_outputs > MAX_KEY_OUTPUTS || compile(&c) != 0) {
            /* Keep only the key: the marker that this graph does not compile. */
            fn_dnnl_plan *f = calloc(1, sizeof *f);
            if (f) {
                *f = (fn_dnnl_plan){.g = g,
                                    .ops = p->ops,
                                    .q = p->q,
                                    .n_ops = p->n_ops,
                                    .n_outputs = p->n_outputs,
                                    .n = n,
                                    .threads = threads,
                                    .failed = 1};
                memcpy(f->outputs, p->outputs, sizeof f->outputs);
                p->ops = NULL;
                p->q = NULL;
            }
            plan_free(p);
            p = f;
        }
    }
    free(c.val);
    free(c.uses);
    free(c.last_use);
    free(c.fused);
    free(c.out_of);
    free(c.out_md);
    free(c.out_mem);
    return p;
}

static fn_dnnl_plan *plan_get(fn_dnnl_state *st, const fn_graph *g, int n, int threads) {
    fn_dnnl_plan **pp = &st->plans, *p;
    for (; (p = *pp) != NULL; pp = &p->next)
        if (plan_matches(p, g, n, threads)) {
            *pp = p->next; /* to the front */
            p->next = st->plans;
            st->plans = p;
            return p;
        }
    if (!(p = plan_new(st, g, n, threads))) return NULL;
    p->next = st->plans;
    st->plans = p;
    if (++st->n_plans > MAX_PLANS) {
        fn_dnnl_plan *q = st->plans;
        while (q->next->next) q = q->next;
        plan_free(q->next);
        q->next = NULL;
        st->n_plans--;
    }
    return p;
}

/* Point the plan's memory objects at the workspace and the caller's
 * tensors, and run its steps. */
static int plan_exec(fn_dnnl_state *st, const fn_dnnl_plan *p, unsigned char *base, const fn_tensor *x,
                     fn_tensor *ys) {
    for (int i = 0; i < p->n_mems; i++) {
        const pmem *m = &p->mems[i];
        void *h = m->buf == BUF_IN        ? (void *)x->data
                  : m->buf == BUF_SCRATCH ? (void *)(base + p->scratch_off)
                  : m->buf <= BUF_OUT     ? (void *)ys[BUF_OUT - m->buf].data
                                          : (void *)(base + p->bufs[m->buf].off);
        if (!OK(dnnl_memory_set_data_handle(m->mem, h))) return -1;
    }
    for (int s = 0; s < p->n_steps; s++) {
        const pstep *step = &p->steps[s];
        if (!step->prim) {
            const pbuf *b = &p->bufs[step->zero_buf];
            memset(base + b->off, 0, b->size);
        } else if (!OK(dnnl_primitive_execute(step->prim, st->stream, step->nargs, step->args))) {
            return -1;
        }
    }
    return OK(dnnl_stream_wait(st->stream)) ? 0 : -1;
}

int fn_dnnl_graph_run(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *ys) {
    fn_dnnl_state *st = ex->backend_state;
    if (!st || !ex->arena) return -1;
    fn_dnnl_threads t;
    int threads = fn_dnnl_threads_enter(ex, &t);
    if (threads > 1 && fn_dnnl_machine_busy()) omp_set_num_threads(threads = 1);
    const fn_dnnl_plan *p = plan_get(st, g, x->n, threads);
    unsigned char *base =
        p && !p->failed ? (unsigned char *)fn_arena_floats(ex->arena, p->total / sizeof(float) + 1) : NULL;
    int rc = base ? plan_exec(st, p, base, x, ys) : -1;
    fn_dnnl_threads_leave(&t);
    return rc;
}

void fn_dnnl_plans_free(fn_dnnl_state *st) {
    while (st->plans) {
        fn_dnnl_plan *next = st->plans->next;
        plan_free(st->plans);
        st->plans = next;
    }
    st->n_plans = 0;
}
