/*
 * prims.c - oneDNN primitive descriptors for the engine's ops, and the
 * weights they run with.
 *
 * Convolutions and inner products are created with "any" weight layout, so
 * oneDNN picks the blocking its fastest kernel wants; the model's weights
 * (TF layouts, described to oneDNN by strides, no copy) are then reordered
 * into it once and kept in the state. The per-channel scale and shift of a
 * conv's epilogue are folded into those weights and the bias there:
 * w' = w * scale, b' = b * scale + shift. That changes the rounding of each
 * output by about one float ulp (normalized squared error ~1e-14 on the
 * embeddings) and makes the epilogue free; activations, the residual sum and
 * the activation after it stay as exact oneDNN post-ops.
 */
#include <stdlib.h>
#include <string.h>

#include "engine/dnnl/dnnl_backend.h"

#define OK(call) ((call) == dnnl_success)

void fn_dnnl_padding(int in, int k, int stride, fn_padding pad, int *out, dnnl_dim_t *left,
                     dnnl_dim_t *right) {
    int o = 0, before = 0;
    fn_window_out(in, k, stride, pad, &o, &before);
    /* TF puts the odd cell of SAME padding after; VALID drops the cells that
     * do not fill a window, which oneDNN's floor division does with 0. */
    int total = (o - 1) * stride + k - in;
    if (pad == FN_PAD_VALID || total < 0) total = before = 0;
    *out = o;
    *left = before;
    *right = total - before;
}

int fn_dnnl_md_nhwc(dnnl_memory_desc_t *md, int n, int h, int w, int c) {
    dnnl_dims_t dims = {n, c, h, w};
    return OK(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, dnnl_nhwc)) ? 0 : -1;
}

int fn_dnnl_md_tag_dt(dnnl_memory_desc_t *md, int n, int h, int w, int c, dnnl_format_tag_t tag,
                      dnnl_data_type_t dt) {
    dnnl_dims_t dims = {n, c, h, w};
    return OK(dnnl_memory_desc_init_by_tag(md, 4, dims, dt, tag)) ? 0 : -1;
}

int fn_dnnl_md_tag(dnnl_memory_desc_t *md, int n, int h, int w, int c, dnnl_format_tag_t tag) {
    return fn_dnnl_md_tag_dt(md, n, h, w, c, tag, dnnl_f32);
}

int fn_dnnl_md_rows(dnnl_memory_desc_t *md, int n, int c) {
    dnnl_dims_t dims = {n, c};
    return OK(dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, dnnl_ab)) ? 0 : -1;
}

dnnl_primitive_attr_t fn_dnnl_attr(const_dnnl_post_ops_t po) {
    dnnl_primitive_attr_t attr = NULL;
    if (!OK(dnnl_primitive_attr_create(&attr))) return NULL;
    /* Scratch memory comes from us (the session's arena or the state), so
     * that executing a primitive never allocates. */
    if (!OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user)) ||
        (po && !OK(dnnl_primitive_attr_set_post_ops(attr, po)))) {
        dnnl_primitive_attr_destroy(attr);
        return NULL;
    }
    return attr;
}

int fn_dnnl_append_act(dnnl_post_ops_t po, fn_act act, float alpha, float unit) {
    switch (act) {
    case FN_ACT_NONE: return 0;
    case FN_ACT_RELU:
        return OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f)) ? 0 : -1;
    case FN_ACT_RELU6:
        return OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_clip, 0.0f, 6.0f / unit)) ? 0 : -1;
    case FN_ACT_LEAKY:
        return OK(dnnl_post_ops_append_eltwise(po, 1.0f, dnnl_eltwise_relu, alpha, 0.0f)) ? 0 : -1;
    }
    return -1;
}

static int has_bias(const fn_conv_desc *d) { return d->bias || d->shift; }

int fn_dnnl_conv_pd(fn_dnnl_state *st, const fn_conv_desc *d, int n, int h, int w, dnnl_alg_kind_t alg,
                    const dnnl_memory_desc_t *src_md, const dnnl_memory_desc_t *dst_md, int sum, fn_act act2,
                    float alpha2, const fn_dnnl_conv_q *q, dnnl_primitive_desc_t *pd) {
    int oh, ow;
    dnnl_dims_t strides = {d->stride, d->stride}, pl, pr;
    fn_dnnl_padding(h, d->kh, d->stride, d->padding, &oh, &pl[0], &pr[0]);
    fn_dnnl_padding(w, d->kw, d->stride, d->padding, &ow, &pl[1], &pr[1]);
    dnnl_dims_t sdims = {n, d->cin, h, w}, ddims = {n, d->cout, oh, ow}, bdims = {d->cout};
    dnnl_dims_t wdims = {d->cout, d->cin, d->kh, d->kw}, gdims = {d->cin, 1, 1, d->kh, d->kw};
    dnnl_memory_desc_t s_any, d_any, wmd, bmd;
    const dnnl_data_type_t wdt = q ? dnnl_s8 : dnnl_f32;
    if (q && (!src_md || !dst_md)) return -1;
    if (!src_md) {
        if (!OK(dnnl_memory_desc_init_by_tag(&s_any, 4, sdims, dnnl_f32, dnnl_format_tag_any))) return -1;
        src_md = &s_any;
    }
    if (!dst_md) {
        if (!OK(dnnl_memory_desc_init_by_tag(&d_any, 4, ddims, dnnl_f32, dnnl_format_tag_any))) return -1;
        dst_md = &d_any;
    }
    /* Depthwise is a grouped convolution with one channel per group. */
    if (!OK(d->depthwise ? dnnl_memory_desc_init_by_tag(&wmd, 5, gdims, wdt, dnnl_format_tag_any)
                         : dnnl_memory_desc_init_by_tag(&wmd, 4, wdims, wdt, dnnl_format_tag_any)) ||
        !OK(dnnl_memory_desc_init_by_tag(&bmd, 1, bdims, dnnl_f32, dnnl_a)))
        return -1;
    dnnl_convolution_desc_t cd;
    if (!OK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_inference, alg, src_md, &wmd,
                                               has_bias(d) ? &bmd : NULL, dst_md, strides, pl, pr)))
        return -1;
    dnnl_post_ops_t po = NULL;
    if (!OK(dnnl_post_ops_create(&po))) return -1;
    const float unit = q ? q->dst_unit : 1.0f;
    int bad = fn_dnnl_append_act(po, d->act, d->alpha, unit) ||
              (sum && !OK(dnnl_post_ops_append_sum(po, q ? q->sum_scale : 1.0f))) ||
              fn_dnnl_append_act(po, act2, alpha2, unit);
    dnnl_primitive_attr_t attr = bad ? NULL : fn_dnnl_attr(po);
    dnnl_post_ops_destroy(po);
    if (!attr) return -1;
    /* Mask 1 << 1: one scale per output channel (dim 1 of {n, c, h, w}). */
    if (q && !OK(dnnl_primitive_attr_set_output_scales(attr, d->cout, 1 << 1, q->oscale))) {
        dnnl_primitive_attr_destroy(attr);
        return -1;
    }
    dnnl_status_t s = dnnl_primitive_desc_create(pd, &cd, attr, st->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    return OK(s) ? 0 : -1;
}

int fn_dnnl_dense_pd(fn_dnnl_state *st, const dnnl_memory_desc_t *src_md, int out, int bias,
                     const dnnl_memory_desc_t *dst_md, dnnl_primitive_desc_t *pd) {
    const int nd = src_md->ndims;
    const dnnl_dim_t *sd = src_md->dims;
    dnnl_dims_t wdims = {out, sd[1], nd == 4 ? sd[2] : 1, nd == 4 ? sd[3] : 1}, bdims = {out},
                ddims = {sd[0], out};
    dnnl_memory_desc_t wmd, bmd, d_any;
    if ((nd != 2 && nd != 4) ||
        !OK(dnnl_memory_desc_init_by_tag(&wmd, nd, wdims, dnnl_f32, dnnl_format_tag_any)) ||
        !OK(dnnl_memory_desc_init_by_tag(&bmd, 1, bdims, dnnl_f32, dnnl_a)))
        return -1;
    if (!dst_md) {
        if (!OK(dnnl_memory_desc_init_by_tag(&d_any, 2, ddims, dnnl_f32, dnnl_format_tag_any))) return -1;
        dst_md = &d_any;
    }
    dnnl_inner_product_desc_t ipd;
    if (!OK(dnnl_inner_product_forward_desc_init(&ipd, dnnl_forward_inference, src_md, &wmd,
                                                 bias ? &bmd : NULL, dst_md)))
        return -1;
    dnnl_primitive_attr_t attr = fn_dnnl_attr(NULL);
    if (!attr) return -1;
    dnnl_status_t s = dnnl_primitive_desc_create(pd, &ipd, attr, st->engine, NULL);
    dnnl_primitive_attr_destroy(attr);
    return OK(s) ? 0 : -1;
}

int fn_dnnl_is_reference(const_dnnl_primitive_desc_t pd) {
    const char *impl = NULL;
    if (!OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl)) || !impl) return 1;
    return strncmp(impl, "ref", 3) == 0;
}

dnnl_primitive_t fn_dnnl_primitive(const_dnnl_primitive_desc_t pd) {
    dnnl_primitive_t p = NULL;
    return OK(dnnl_primitive_create(&p, pd)) ? p : NULL;
}

dnnl_memory_t fn_dnnl_memory(fn_dnnl_state *st, const dnnl_memory_desc_t *md) {
    dnnl_memory_t m = NULL;
    return OK(dnnl_memory_create(&m, md, st->engine, DNNL_MEMORY_NONE)) ? m : NULL;
}

size_t fn_dnnl_scratch_size(const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    return md ? dnnl_memory_desc_get_size(md) : 0;
}

int fn_dnnl_same_conv(const fn_conv_desc *a, const fn_conv_desc *b) {
    return a->kh == b->kh && a->kw == b->kw && a->stride == b->stride && a->padding == b->padding &&
           a->cin == b->cin && a->cout == b->cout && a->depthwise == b->depthwise &&
           a->weights == b->weights && a->bias == b->bias && a->scale == b->scale && a->shift == b->shift &&
           a->act == b->act && a->alpha == b->alpha;
}

static void weights_free(fn_dnnl_weights *w) {
    if (!w) return;
    if (w->w) dnnl_memory_destroy(w->w);
    if (w->b) dnnl_memory_destroy(w->b);
    free(w);
}

/* Copy src (described by user_md) into a new memory of md with a reorder
 * (which also computes the compensation an s8 source needs). */
static dnnl_memory_t reordered(fn_dnnl_state *st, const dnnl_memory_desc_t *user_md, const void *src,
                               const dnnl_memory_desc_t *md) {
    dnnl_memory_t user = NULL, dst = NULL;
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_t r = NULL;
    int ok = OK(dnnl_memory_create(&user, user_md, st->engine, (void *)src)) &&
             OK(dnnl_memory_create(&dst, md, st->engine, DNNL_MEMORY_ALLOCATE)) &&
             OK(dnnl_reorder_primitive_desc_create(&pd, user_md, st->engine, md, st->engine, NULL)) &&
             (r = fn_dnnl_primitive(pd)) != NULL;
    if (ok) {
        dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, dst}};
        ok = OK(dnnl_primitive_execute(r, st->stream, 2, args)) && OK(dnnl_stream_wait(st->stream));
    }
    if (r) dnnl_primitive_destroy(r);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (user) dnnl_memory_destroy(user);
    if (!ok && dst) {
        dnnl_memory_destroy(dst);
        dst = NULL;
    }
    return dst;
}

/* A bias memory holding v (n floats). */
static dnnl_memory_t bias_memory(fn_dnnl_state *st, const float *v, int n) {
    dnnl_dims_t dims = {n};
    dnnl_memory_desc_t md;
    dnnl_memory_t m = NULL;
    void *p = NULL;
    if (!OK(dnnl_memory_desc_init_by_tag(&md, 1, dims, dnnl_f32, dnnl_a)) ||
        !OK(dnnl_memory_create(&m, &md, st->engine, DNNL_MEMORY_ALLOCATE)))
        return NULL;
    if (!OK(dnnl_memory_get_data_handle(m, &p)) || !p) {
        dnnl_memory_destroy(m);
        return NULL;
    }
    memcpy(p, v, sizeof(float) * (size_t)n);
    return m;
}

/* Add w to the state's weights (made once, shared by every primitive that
 * wants that layout) and return it. */
static fn_dnnl_weights *weights_keep(fn_dnnl_state *st, fn_dnnl_weights *w) {
    w->next = st->weights;
    st->weights = w;
    return w;
}

/* The conv's weights in TF layout as oneDNN's {o, i, h, w} (or grouped
 * {g, 1, 1, h, w}) by strides, of data type dt. */
static int tf_weights_md(const fn_conv_desc *d, dnnl_data_type_t dt, dnnl_memory_desc_t *umd) {
    const int co = d->cout, ci = d->cin;
    if (d->depthwise) {
        dnnl_dims_t dims = {ci, 1, 1, d->kh, d->kw}, strides = {1, ci, ci, (dnnl_dim_t)d->kw * ci, ci};
        return OK(dnnl_memory_desc_init_by_strides(umd, 5, dims, dt, strides)) ? 0 : -1;
    }
    dnnl_dims_t dims = {co, ci, d->kh, d->kw};
    dnnl_dims_t strides = {1, co, (dnnl_dim_t)d->kw * ci * co, (dnnl_dim_t)ci * co};
    return OK(dnnl_memory_desc_init_by_strides(umd, 4, dims, dt, strides)) ? 0 : -1;
}

fn_dnnl_weights *fn_dnnl_conv_weights(fn_dnnl_state *st, const fn_conv_desc *d,
                                      const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!md) return NULL;
    for (fn_dnnl_weights *f = st->weights; f; f = f->next)
        if (!f->dense_w && !f->q && fn_dnnl_same_conv(&f->conv, d) && dnnl_memory_desc_equal(&f->md, md)) return f;
    const int co = d->cout, ci = d->cin;
    const size_t per_tap = d->depthwise ? (size_t)ci : (size_t)ci * co;
    const size_t count = (size_t)d->kh * d->kw * per_tap;
    fn_dnnl_weights *w = calloc(1, sizeof *w);
    float *folded = malloc(sizeof(float) * (count + (size_t)co));
    if (!w || !folded) goto fail;
    for (size_t i = 0; i < count; i++) folded[i] = fn_conv_folded_weight(d, i);
    dnnl_memory_desc_t umd;
    if (tf_weights_md(d, dnnl_f32, &umd)) goto fail;
    w->conv = *d;
    w->md = *md;
    if (!(w->w = reordered(st, &umd, folded, md))) goto fail;
    if (has_bias(d)) {
        float *b = folded + count;
        for (int i = 0; i < co; i++) b[i] = fn_conv_folded_bias(d, i);
        if (!(w->b = bias_memory(st, b, co))) goto fail;
    }
    free(folded);
    return weights_keep(st, w);
fail:
    free(folded);
    weights_free(w);
    return NULL;
}

fn_dnnl_weights *fn_dnnl_qconv_weights(fn_dnnl_state *st, const fn_graph_qconv *q, float in_scale,
                                       const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!md) return NULL;
    for (fn_dnnl_weights *f = st->weights; f; f = f->next)
        if (f->q == q && f->in_scale == in_scale && fn_dnnl_same_conv(&f->conv, &q->desc) &&
            dnnl_memory_desc_equal(&f->md, md))
            return f;
    const int co = q->desc.cout;
    fn_dnnl_weights *w = calloc(1, sizeof *w);
    float *b = malloc(sizeof(float) * (size_t)co);
    dnnl_memory_desc_t umd;
    if (!w || !b || tf_weights_md(&q->desc, dnnl_s8, &umd)) goto fail;
    w->q = q;
    w->conv = q->desc;
    w->in_scale = in_scale;
    w->md = *md;
    if (!(w->w = reordered(st, &umd, q->w, md))) goto fail;
    for (int k = 0; k < co; k++) b[k] = q->bias[k] / (in_scale * q->w_scale[k]);
    if (!(w->b = bias_memory(st, b, co))) goto fail;
    free(b);
    return weights_keep(st, w);
fail:
    free(b);
    weights_free(w);
    return NULL;
}

fn_dnnl_weights *fn_dnnl_dense_weights(fn_dnnl_state *st, const float *wts, const float *bias,
                                       const_dnnl_primitive_desc_t pd) {
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0);
    if (!md || (md->ndims != 2 && md->ndims != 4)) return NULL;
    for (fn_dnnl_weights *f = st->weights; f; f = f->next)
        if (f->dense_w == wts && f->dense_b == bias && dnnl_memory_desc_equal(&f->md, md)) return f;
    const dnnl_dim_t out = md->dims[0], c = md->dims[1], w = md->ndims == 4 ? md->dims[3] : 1;
    /* w is [in][out] with in in NHWC order (h, w, c). */
    dnnl_dims_t strides = {1, out, w * c * out, c * out};
    dnnl_memory_desc_t umd;
    fn_dnnl_weights *r = calloc(1, sizeof *r);
    if (!r || !OK(dnnl_memory_desc_init_by_strides(&umd, md->ndims, md->dims, dnnl_f32, strides))) goto fail;
    r->dense_w = wts;
    r->dense_b = bias;
    r->md = *md;
    if (!(r->w = reordered(st, &umd, wts, md))) goto fail;
    if (bias && !(r->b = bias_memory(st, bias, (int)out))) goto fail;
    return weights_keep(st, r);
fail:
    weights_free(r);
    return NULL;
}

void fn_dnnl_weights_free_all(fn_dnnl_state *st) {
    while (st->weights) {
        fn_dnnl_weights *next = st->weights->next;
        weights_free(st->weights);
        st->weights = next;
    }
}
