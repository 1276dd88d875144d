/*
 * tiny_face_detector.c - face-api's tiny face detector network, from input
 * to the raw 25 values per grid cell.
 *
 *   conv 3x3 VALID 3->16 + bias, leaky 0.1              416 -> 414
 *   5 x [max pool 2x2/2 SAME,
 *        depthwise 3x3 (zero pad 1, VALID), pointwise 1x1 + bias, leaky]
 *        16 -> 32 -> 64 -> 128 -> 256 -> 512             207, 104, 52, 26, 13
 *   max pool 2x2/1 SAME                                  13
 *   conv 1x1 512->25 + bias                              13 x 13 x 25
 *
 * face-api pads by one explicitly and runs the depthwise conv VALID; at
 * stride 1 that is exactly TF SAME, which is what we ask the engine for (the
 * padded taps only ever added zeros). face-api's leaky ReLU is
 * relu(x - 0.1x) + 0.1x: the engine's fused leaky computes the same function
 * (for x > 0 face-api's rounding may differ in the last bit; boxes still
 * agree with face-api's within 1e-4 px, see docs/detection.md).
 *
 * The layers are laid out as an fn_graph (engine/graph.h) once, at bind
 * time, for the model's input size, so that a fast backend runs the whole
 * pass in its own layouts; another input size gets a graph of its own for
 * the call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "model/model.h"
#include "nets/nets.h"
#include "nets/tiny_face_detector.h"

#define N_SEP 5
#define LEAKY_ALPHA 0.1f

const double fn_tiny_face_detector_anchors[FN_TINY_ANCHORS][2] = {
    {1.603231, 2.094468}, {6.041143, 7.080126}, {2.882459, 3.518061},
    {4.266906, 5.178857}, {9.041765, 10.66308},
};

const float fn_tiny_face_detector_mean[3] = {117.001f, 114.697f, 97.404f};

struct fn_tiny_face_detector {
    fn_conv_desc conv0;
    fn_conv_desc dw[N_SEP], pw[N_SEP];
    fn_conv_desc conv8;
    fn_graph *graph; /* for the model's input size */
};

static const int SEP_COUT[N_SEP + 1] = {16, 32, 64, 128, 256, 512};

static void desc_init(fn_conv_desc *d, int k, fn_padding pad, int cin, int cout, int depthwise, fn_act act) {
    memset(d, 0, sizeof *d);
    d->kh = d->kw = k;
    d->stride = 1;
    d->padding = pad;
    d->cin = cin;
    d->cout = cout;
    d->depthwise = depthwise;
    d->act = act;
    d->alpha = LEAKY_ALPHA;
}

/* "<layer>/filters" + "<layer>/bias", a plain conv. */
static facenet_status bind_conv(facenet_model *m, const char *layer, int k, int cin, int cout, fn_act act,
                                fn_conv_desc *d, fn_error *e) {
    char name[64];
    const int64_t wshape[4] = {k, k, cin, cout}, bshape[1] = {cout};
    desc_init(d, k, FN_PAD_VALID, cin, cout, 0, act);
    snprintf(name, sizeof name, "%s/filters", layer);
    if (!(d->weights = fn_model_weights(m, name, 4, wshape, e))) return e->status;
    snprintf(name, sizeof name, "%s/bias", layer);
    if (!(d->bias = fn_model_weights(m, name, 1, bshape, e))) return e->status;
    return FACENET_OK;
}

/* "conv<i>/{depthwise_filter, pointwise_filter, bias}": the bias and the
 * leaky ReLU come after the pointwise conv. */
static facenet_status bind_separable(facenet_model *m, int i, int cin, int cout, fn_conv_desc *dw,
                                     fn_conv_desc *pw, fn_error *e) {
    char name[64];
    const int64_t dshape[4] = {3, 3, cin, 1}, pshape[4] = {1, 1, cin, cout}, bshape[1] = {cout};
    desc_init(dw, 3, FN_PAD_SAME, cin, cin, 1, FN_ACT_NONE);
    desc_init(pw, 1, FN_PAD_VALID, cin, cout, 0, FN_ACT_LEAKY);
    snprintf(name, sizeof name, "conv%d/depthwise_filter", i);
    if (!(dw->weights = fn_model_weights(m, name, 4, dshape, e))) return e->status;
    snprintf(name, sizeof name, "conv%d/pointwise_filter", i);
    if (!(pw->weights = fn_model_weights(m, name, 4, pshape, e))) return e->status;
    snprintf(name, sizeof name, "conv%d/bias", i);
    if (!(pw->bias = fn_model_weights(m, name, 1, bshape, e))) return e->status;
    return FACENET_OK;
}

/* The forward pass for s x s inputs as a graph; NULL if out of memory or s
 * is too small. */
static fn_graph *build_graph(const fn_tiny_face_detector *net, int s) {
    fn_graph *g = fn_graph_new(s, s, 3);
    if (!g) return NULL;
    int v = fn_graph_conv(g, 0, &net->conv0);
    for (int i = 0; i < N_SEP; i++) {
        v = fn_graph_pool(g, v, FN_OP_MAXPOOL, 2, 2, FN_PAD_SAME);
        v = fn_graph_conv(g, fn_graph_conv(g, v, &net->dw[i]), &net->pw[i]);
    }
    v = fn_graph_pool(g, v, FN_OP_MAXPOOL, 2, 1, FN_PAD_SAME);
    fn_graph_conv(g, v, &net->conv8);
    int h, w, c;
    if (fn_graph_ok(g)) fn_graph_shape(g, g->n_ops, &h, &w, &c);
    if (!fn_graph_ok(g) || h != fn_tiny_face_detector_cells(s) || w != h) {
        fn_graph_free(g);
        return NULL;
    }
    return g;
}

static void tiny_free(void *vp) {
    fn_tiny_face_detector *net = vp;
    if (net) fn_graph_free(net->graph);
    free(net);
}

static facenet_status tiny_bind(facenet_model *m, void **out, fn_error *e) {
    if (m->input_size % FN_TINY_STRIDE != 0)
        return fn_fail(e, FACENET_ERR_MODEL,
                       "%s: tiny_face_detector's input size must be a multiple of %d, not %d", m->path,
                       FN_TINY_STRIDE, m->input_size);
    fn_tiny_face_detector *net = calloc(1, sizeof *net);
    if (!net) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory binding %s", m->path);
    facenet_status st = bind_conv(m, "conv0", 3, 3, SEP_COUT[0], FN_ACT_LEAKY, &net->conv0, e);
    for (int i = 1; st == FACENET_OK && i <= N_SEP; i++)
        st = bind_separable(m, i, SEP_COUT[i - 1], SEP_COUT[i], &net->dw[i - 1], &net->pw[i - 1], e);
    if (st == FACENET_OK)
        st = bind_conv(m, "conv8", 1, SEP_COUT[N_SEP], FN_TINY_ANCHORS * FN_TINY_BOX, FN_ACT_NONE,
                       &net->conv8, e);
    if (st == FACENET_OK && m->input_size >= FN_TINY_STRIDE && !(net->graph = build_graph(net, m->input_size)))
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory laying out the tiny detector");
    if (st != FACENET_OK) {
        tiny_free(net);
        return st;
    }
    *out = net;
    return FACENET_OK;
}

const fn_net_ops fn_tiny_face_detector_ops = {"tiny_face_detector", tiny_bind, tiny_free};

/* ---------------------------------------------------------------- forward */

const fn_graph *fn_tiny_face_detector_graph(const fn_tiny_face_detector *net) { return net->graph; }

facenet_status fn_tiny_face_detector_forward(const fn_tiny_face_detector *net, const fn_exec *ex,
                                             const fn_tensor *x, float *out, fn_error *e) {
    if (x->n < 1 || x->c != 3 || x->h != x->w || x->h < FN_TINY_STRIDE || x->h % FN_TINY_STRIDE != 0)
        return fn_fail(e, FACENET_ERR_INTERNAL,
                       "tiny_face_detector: input must be [n,s,s,3], s a multiple of 32");
    fn_graph *own = NULL;
    const fn_graph *g = net->graph;
    if (!g || g->h != x->h) g = own = build_graph(net, x->h);
    if (!g) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory laying out the tiny detector");
    const int cells = fn_tiny_face_detector_cells(x->h);
    fn_tensor y = fn_tensor_make(x->n, cells, cells, FN_TINY_ANCHORS * FN_TINY_BOX, out);
    int rc = fn_graph_run(ex, g, x, &y);
    fn_graph_free(own);
    if (rc != 0) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the tiny detector");
    return FACENET_OK;
}
