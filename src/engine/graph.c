/*
 * graph.c - building an op list (graph.h) and running it op by op.
 *
 * The op-by-op run is the reference semantics of a graph: each value gets a
 * fresh arena tensor and the fn_* op that the graph op names, in order, so a
 * network built as a graph computes exactly what it computed calling those
 * ops itself. A backend's graph_run is tested against it.
 */
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

void fn_graph_free(fn_graph *g) {
    if (!g) return;
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
    if (g->bad) return -1;
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

int fn_graph_run_ops(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *ys) {
    if (!shapes_fit(g, x, ys) || !ex->arena) return -1;
    /* The table of value tensors lives in the arena too, so that a session
     * in steady state allocates nothing. */
    size_t need = sizeof(fn_tensor) * (size_t)(g->n_ops + 1);
    fn_tensor *v =
        (fn_tensor *)(void *)fn_arena_floats(ex->arena, (need + sizeof(float) - 1) / sizeof(float));
    if (!v) return -1;
    v[0] = *x;
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
        case FN_OP_CONV: fn_conv2d(ex, a, op->conv, out); break;
        case FN_OP_MAXPOOL: fn_maxpool(ex, a, op->k, op->stride, op->pad, out); break;
        case FN_OP_AVGPOOL: fn_avgpool(ex, a, op->k, op->stride, op->pad, out); break;
        case FN_OP_ADD:
            fn_add_zero_extended(a, &v[op->in[1]], out);
            fn_activate(out, op->act, op->alpha);
            break;
        case FN_OP_GLOBAL_MEAN: fn_global_mean(a, out); break;
        case FN_OP_DENSE: fn_dense(ex, a, op->weights, op->bias, out); break;
        }
    }
    return 0;
}

int fn_graph_run(const fn_exec *ex, const fn_graph *g, const fn_tensor *x, fn_tensor *ys) {
    if (!shapes_fit(g, x, ys)) return -1;
    const fn_backend *be = ex->backend;
    if (be && be->graph_run && be->graph_run(ex, g, x, ys) == 0) return 0;
    return fn_graph_run_ops(ex, g, x, ys);
}
