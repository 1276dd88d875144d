/*
 * graph.c - building an op list (graph.h) and running it op by op.
 *
 * The op-by-op run is the reference semantics of a graph: each value gets a
 * fresh arena tensor and the fn_* op that the graph op names, in order, so a
 * network built as a graph computes exactly what it computed calling those
 * ops itself. A backend's graph_run is tested against it. For an int8
 * graph it is the reference of the quantized arithmetic (graph.h).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"

fn_graph *fn_graph_new(int h, int w, int c) {
    if (h <= 0 || w <= 0 || c <= 0) return NULL;
    fn_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->h = h;
    g->w = w;
    g->c = c;
    return g;
}

static void qconv_free(fn_graph_qconv *q) {
    if (!q) return;
    free(q->w);
    free(q->w_scale);
    free(q->bias);
    free(q->deq);
    free(q);
}

void fn_graph_free(fn_graph *g) {
    if (!g) return;
    for (int v = 0; g->names && v <= g->cap_names; v++) free(g->names[v]);
    for (int i = 0; g->qconv && i < g->n_ops; i++) qconv_free(g->qconv[i]);
    free(g->names);
    free(g->q);
    free(g->qconv);
    free(g->ops);
    free(g->outputs);
    free(g);
}

int fn_graph_ok(const fn_graph *g) { return g && !g->bad && g->n_ops > 0; }

void fn_graph_shape(const fn_graph *g, int v, int *h, int *w, int *c) {
    if (v == 0) {
        *h = g->h, *w = g->w, *c = g->c;
    } else {
        const fn_graph_op *op = &g->ops[v - 1];
        *h = op->h, *w = op->w, *c = op->c;
    }
}

static int valid_value(const fn_graph *g, int v) { return v >= 0 && v <= g->n_ops; }

int fn_graph_n_outputs(const fn_graph *g) { return g->n_outputs > 0 ? g->n_outputs : 1; }

int fn_graph_output_value(const fn_graph *g, int k) { return g->n_outputs > 0 ? g->outputs[k] : g->n_ops; }

/* Append op (its inputs already checked, its shape set) and return its value. */
static int append(fn_graph *g, const fn_graph_op *op) {
    if (g->bad || g->q) return -1; /* a quantized graph is finished */
    if (op->h <= 0 || op->w <= 0 || op->c <= 0) {
        g->bad = 1;
        return -1;
    }
    if (g->n_ops == g->cap) {
        int cap = g->cap ? g->cap * 2 : 32;
        fn_graph_op *ops = realloc(g->ops, sizeof *ops * (size_t)cap);
        if (!ops) {
            g->bad = 1;
            return -1;
        }
        g->ops = ops;
        g->cap = cap;
    }
    g->ops[g->n_ops++] = *op;
    return g->n_ops;
}

static int fail(fn_graph *g) {
    g->bad = 1;
    return -1;
}

int fn_graph_output(fn_graph *g, int v) {
    if (!g || g->bad || v < 1 || v > g->n_ops) return g ? fail(g) : -1;
    for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v) return fail(g);
    if (g->n_outputs == g->cap_outputs) {
        int cap = g->cap_outputs ? g->cap_outputs * 2 : 8;
        int *o = realloc(g->outputs, sizeof *o * (size_t)cap);
        if (!o) return fail(g);
        g->outputs = o;
        g->cap_outputs = cap;
    }
    g->outputs[g->n_outputs++] = v;
    return v;
}

int fn_graph_conv(fn_graph *g, int x, const fn_conv_desc *d) {
    int h, w, c;
    if (!g || g->bad || !valid_value(g, x) || !d || !d->weights) return g ? fail(g) : -1;
    fn_graph_shape(g, x, &h, &w, &c);
    fn_graph_op op = {.kind = FN_OP_CONV, .in = {x, -1}, .conv = d, .c = d->cout};
    if (c != d->cin || (d->depthwise && d->cout != d->cin) || fn_conv_shape(d, h, w, &op.h, &op.w) != 0)
        return fail(g);
    return append(g, &op);
}

int fn_graph_pool(fn_graph *g, int x, fn_op_kind kind, int k, int stride, fn_padding pad) {
    int h, w, c;
    if (!g || g->bad || !valid_value(g, x) || (kind != FN_OP_MAXPOOL && kind != FN_OP_AVGPOOL))
        return g ? fail(g) : -1;
    fn_graph_shape(g, x, &h, &w, &c);
    fn_graph_op op = {.kind = kind, .in = {x, -1}, .k = k, .stride = stride, .pad = pad, .c = c};
    if (fn_window_out(h, k, stride, pad, &op.h, NULL) || fn_window_out(w, k, stride, pad, &op.w, NULL))
        return fail(g);
    return append(g, &op);
}

int fn_graph_add(fn_graph *g, int a, int b, fn_act act, float alpha) {
    int ha, wa, ca, hb, wb, cb;
    if (!g || g->bad || !valid_value(g, a) || !valid_value(g, b)) return g ? fail(g) : -1;
    fn_graph_shape(g, a, &ha, &wa, &ca);
    fn_graph_shape(g, b, &hb, &wb, &cb);
    fn_graph_op op = {.kind = FN_OP_ADD, .in = {a, b}, .act = act, .alpha = alpha};
    op.h = ha > hb ? ha : hb;
    op.w = wa > wb ? wa : wb;
    op.c = ca > cb ? ca : cb;
    return append(g, &op);
}

int fn_graph_global_mean(fn_graph *g, int x) {
    int h, w, c;
    if (!g || g->bad || !valid_value(g, x)) return g ? fail(g) : -1;
    fn_graph_shape(g, x, &h, &w, &c);
    fn_graph_op op = {.kind = FN_OP_GLOBAL_MEAN, .in = {x, -1}, .h = 1, .w = 1, .c = c};
    return append(g, &op);
}

int fn_graph_dense(fn_graph *g, int x, const float *w, const float *bias, int out) {
    if (!g || g->bad || !valid_value(g, x) || !w || out <= 0) return g ? fail(g) : -1;
    fn_graph_op op = {
        .kind = FN_OP_DENSE, .in = {x, -1}, .weights = w, .bias = bias, .h = 1, .w = 1, .c = out};
    return append(g, &op);
}

int fn_graph_name(fn_graph *g, int v, const char *name) {
    if (!g || !name || !valid_value(g, v)) return -1;
    if (v > g->cap_names || !g->names) {
        int cap = g->n_ops + 32;
        char **n = realloc(g->names, sizeof *n * (size_t)(cap + 1));
        if (!n) return -1;
        for (int k = g->names ? g->cap_names + 1 : 0; k <= cap; k++) n[k] = NULL;
        g->names = n;
        g->cap_names = cap;
    }
    char *copy = strdup(name);
    if (!copy) return -1;
    free(g->names[v]);
    g->names[v] = copy;
    return 0;
}

const char *fn_graph_value_name(const fn_graph *g, int v) {
    return g->names && v >= 0 && v <= g->cap_names ? g->names[v] : NULL;
}

void fn_graph_fake_quant(float *x, size_t count, const fn_graph_qvalue *q) {
    const float lo = q->is_signed ? -128.0f : 0.0f, hi = q->is_signed ? 127.0f : 255.0f, inv = 1.0f / q->scale;
    for (size_t i = 0; i < count; i++) {
        /* rintf rounds half to even, as the vector conversions of an int8
         * backend do in the default rounding mode. */
        float r = rintf(x[i] * inv);
        x[i] = (r < lo ? lo : r > hi ? hi : r) * q->scale;
    }
}

/* Can value v not be negative? */
static int non_negative(const fn_graph *g, int v) {
    if (v == 0) return 0;
    const fn_graph_op *op = &g->ops[v - 1];
    switch (op->kind) {
    case FN_OP_CONV: return op->conv->act == FN_ACT_RELU || op->conv->act == FN_ACT_RELU6;
    case FN_OP_ADD: return op->act == FN_ACT_RELU || op->act == FN_ACT_RELU6;
    case FN_OP_MAXPOOL:
    case FN_OP_AVGPOOL: return non_negative(g, op->in[0]);
    default: return 0;
    }
}

/* The int8 form of conv d: s8 weights, one scale per output channel over
 * the weights with the epilogue's scale folded in; with in_mean (the
 * input's per-channel mean, or NULL) the bias corrected by the rounded
 * weights' mean error. NULL if out of memory. */
static fn_graph_qconv *qconv_new(const fn_conv_desc *d, const float *in_mean) {
    const size_t co = (size_t)d->cout, per_tap = d->depthwise ? co : (size_t)d->cin * co;
    const size_t count = (size_t)d->kh * d->kw * per_tap;
    fn_graph_qconv *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->w = malloc(count);
    q->deq = malloc(sizeof(float) * count);
    q->w_scale = calloc(co, sizeof(float));
    q->bias = malloc(sizeof(float) * co);
    if (!q->w || !q->deq || !q->w_scale || !q->bias) {
        qconv_free(q);
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        const float w = fabsf(fn_conv_folded_weight(d, i));
        if (w > q->w_scale[i % co]) q->w_scale[i % co] = w;
    }
    for (size_t k = 0; k < co; k++) {
        /* An all-zero channel gets scale 1: its weights quantize to 0 anyway. */
        q->w_scale[k] = q->w_scale[k] > 0.0f ? q->w_scale[k] / 127.0f : 1.0f;
        q->bias[k] = fn_conv_folded_bias(d, (int)k);
    }
    for (size_t i = 0; i < count; i++) {
        const float r = rintf(fn_conv_folded_weight(d, i) / q->w_scale[i % co]);
        q->w[i] = (int8_t)(r < -127.0f ? -127.0f : r > 127.0f ? 127.0f : r);
        q->deq[i] = (float)q->w[i] * q->w_scale[i % co];
    }
    if (in_mean) {
        /* Weight i is tap i / per_tap, input channel (i % per_tap) / co
         * (depthwise: its own channel i % co). */
        double *corr = calloc(co, sizeof *corr);
        if (!corr) {
            qconv_free(q);
            return NULL;
        }
        for (size_t i = 0; i < count; i++) {
            const size_t ci = d->depthwise ? i % co : (i % per_tap) / co;
            corr[i % co] += ((double)fn_conv_folded_weight(d, i) - q->deq[i]) * in_mean[ci];
        }
        for (size_t k = 0; k < co; k++) q->bias[k] = (float)(q->bias[k] + corr[k]);
        free(corr);
    }
    q->desc = *d;
    q->desc.weights = q->deq;
    q->desc.bias = q->bias;
    q->desc.scale = q->desc.shift = NULL;
    return q;
}

int fn_graph_quantize(fn_graph *g, const float *range, const float *const *mean) {
    if (!fn_graph_ok(g) || g->q || !range) return -1;
    const int nv = g->n_ops + 1;
    for (int v = 0; v < nv; v++) {
        if (!isfinite(range[v])) return -1;
        int h, w, c;
        fn_graph_shape(g, v, &h, &w, &c);
        for (int k = 0; mean && mean[v] && k < c; k++)
            if (!isfinite(mean[v][k])) return -1;
    }
    g->q = calloc((size_t)nv, sizeof *g->q);
    g->qconv = calloc((size_t)g->n_ops, sizeof *g->qconv);
    if (!g->q || !g->qconv) goto fail;
    for (int v = 0; v < nv; v++) {
        const fn_graph_op *op = v > 0 ? &g->ops[v - 1] : NULL;
        if (op && (op->kind == FN_OP_MAXPOOL || op->kind == FN_OP_AVGPOOL)) {
            g->q[v] = g->q[op->in[0]];
        } else if (fn_graph_value_name(g, v) && range[v] > 0.0f) {
            g->q[v].is_signed = !non_negative(g, v);
            g->q[v].scale = range[v] / (g->q[v].is_signed ? 127.0f : 255.0f);
        }
        if (op && op->kind == FN_OP_CONV && g->q[op->in[0]].scale > 0.0f &&
            !(g->qconv[v - 1] = qconv_new(op->conv, mean ? mean[op->in[0]] : NULL)))
            goto fail;
    }
    return 0;
fail:
    for (int i = 0; g->qconv && i < g->n_ops; i++) qconv_free(g->qconv[i]);
    free(g->q);
    free(g->qconv);
    g->q = NULL;
    g->qconv = NULL;
    return -1;
}

/* Do x and the outputs ys fit the graph? */
static int shapes_fit(const fn_graph *g, const fn_tensor *x, const fn_tensor *ys) {
    int h, w, c;
    if (!fn_graph_ok(g) || !x->data || x->n <= 0) return 0;
    if (x->h != g->h || x->w != g->w || x->c != g->c) return 0;
    for (int k = 0; k < fn_graph_n_outputs(g); k++) {
        const fn_tensor *y = &ys[k];
        fn_graph_shape(g, fn_graph_output_value(g, k), &h, &w, &c);
        if (!y->data || y->n != x->n || y->h != h || y->w != w || y->c != c) return 0;
    }
    return 1;
}

/* An average pool of a quantized value, as an int8 kernel computes it:
 * the mean of the integers, rounded half to even. Averaged as real values
 * (q * scale), a mean that is exactly x.5 in integers comes out a float ulp
 * either side of it and rounds the other way. */
static int avgpool_on_grid(const fn_exec *ex, const fn_graph_op *op, const fn_tensor *a, fn_tensor *out,
                           const fn_graph_qvalue *q) {
    const size_t n = fn_tensor_count(a);
    float *ints = fn_arena_floats(ex->arena, n);
    if (!ints) return -1;
    for (size_t i = 0; i < n; i++) ints[i] = rintf(a->data[i] / q->scale);
    fn_tensor t = fn_tensor_make(a->n, a->h, a->w, a->c, ints);
    fn_avgpool(ex, &t, op->k, op->stride, op->pad, out);
    for (size_t i = 0; i < fn_tensor_count(out); i++) out->data[i] = rintf(out->data[i]) * q->scale;
    return 0;
}

int fn_graph_run_ops(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *ys) {
    if (!shapes_fit(g, x, ys) || !ex->arena) return -1;
    /* The table of value tensors lives in the arena too, so that a session
     * in steady state allocates nothing. */
    size_t need = sizeof(fn_tensor) * (size_t)(g->n_ops + 1);
    fn_tensor *v =
        (fn_tensor *)(void *)fn_arena_floats(ex->arena, (need + sizeof(float) - 1) / sizeof(float));
    if (!v) return -1;
    v[0] = *x;
    if (g->q && g->q[0].scale > 0.0f) {
        /* The input rounded to its grid, in a copy: x is the caller's. */
        float *p = fn_arena_floats(ex->arena, fn_tensor_count(x));
        if (!p) return -1;
        memcpy(p, x->data, sizeof(float) * fn_tensor_count(x));
        v[0].data = p;
        fn_graph_fake_quant(p, fn_tensor_count(x), &g->q[0]);
    }
    if (ex->observe) ex->observe(ex->observe_user, g, 0, &v[0]);
    for (int i = 0; i < g->n_ops; i++) {
        const fn_graph_op *op = &g->ops[i];
        fn_tensor *out = &v[i + 1];
        /* An output is computed straight into the caller's tensor. */
        int k = 0;
        while (k < fn_graph_n_outputs(g) && fn_graph_output_value(g, k) != i + 1) k++;
        if (k < fn_graph_n_outputs(g)) {
            *out = ys[k];
        } else {
            float *p = fn_arena_floats(ex->arena, (size_t)x->n * op->h * op->w * op->c);
            if (!p) return -1;
            *out = fn_tensor_make(x->n, op->h, op->w, op->c, p);
        }
        const fn_tensor *a = &v[op->in[0]];
        switch (op->kind) {
        case FN_OP_CONV: fn_conv2d(ex, a, g->qconv && g->qconv[i] ? &g->qconv[i]->desc : op->conv, out); break;
        case FN_OP_MAXPOOL: fn_maxpool(ex, a, op->k, op->stride, op->pad, out); break;
        case FN_OP_AVGPOOL:
            if (g->q && g->q[op->in[0]].scale > 0.0f) {
                if (avgpool_on_grid(ex, op, a, out, &g->q[op->in[0]])) return -1;
            } else {
                fn_avgpool(ex, a, op->k, op->stride, op->pad, out);
            }
            break;
        case FN_OP_ADD:
            fn_add_zero_extended(a, &v[op->in[1]], out);
            fn_activate(out, op->act, op->alpha);
            break;
        case FN_OP_GLOBAL_MEAN: fn_global_mean(a, out); break;
        case FN_OP_DENSE: fn_dense(ex, a, op->weights, op->bias, out); break;
        }
        if (g->q && g->q[i + 1].scale > 0.0f) fn_graph_fake_quant(out->data, fn_tensor_count(out), &g->q[i + 1]);
        if (ex->observe) ex->observe(ex->observe_user, g, i + 1, out);
    }
    return 0;
}

int fn_graph_run(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *ys) {
    if (!shapes_fit(g, x, ys)) return -1;
    const fn_backend *be = ex->backend;
    if (!ex->observe && be && be->graph_run && be->graph_run(ex, g, x, ys) == 0) return 0;
    return fn_graph_run_ops(ex, g, x, ys);
}
