/*
 * landmark68.c - face-api's 68-point landmark networks, full and tiny, as one
 * implementation parameterised by the number of dense blocks.
 *
 *                      full (face_landmark_68)      tiny (face_landmark_68_tiny)
 *   dense blocks       4: 32, 64, 128, 256 ch       3: 32, 64, 128 ch
 *   convs per block    4                            3
 *   spatial            112 -> 56 -> 28 -> 14 -> 7   112 -> 56 -> 28 -> 14
 *   pooling            avg 7x7 / 2 VALID            avg 14x14 / 2 VALID
 *   head               fc 256 -> 136 + bias         fc 128 -> 136 + bias
 *
 * A dense block (fact sheet 4.2) is
 *   o1 = relu(conv0(x))                  conv0 strides 2
 *   o2 = sep(o1)
 *   o3 = sep(relu(o1 + o2))
 *   o4 = sep(relu(o1 + (o2 + o3)))       full net only
 *   out = relu(o1 + (o2 + (o3 [+ o4])))
 * where sep is TF's separableConv2d: depthwise 3x3 SAME, no bias, then a
 * pointwise 1x1 conv with bias, no activation. conv0 of the first block is a
 * plain 3x3 conv with bias; in later blocks it is a strided sep. All 3x3
 * convs use TF's SAME padding (asymmetric at stride 2, handled by the
 * engine). The sums are taken right to left, as face-api writes them, so we
 * round the same way TF does.
 *
 * The layers are laid out once, at bind time, as an fn_graph (engine/
 * graph.h) and a forward pass is one fn_graph_run, so that a fast backend
 * keeps the activations in its own layout from the first conv to the fc.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "model/model.h"
#include "nets/landmark68.h"

#define MAX_BLOCKS 4
#define MAX_CONVS 4

/* One conv of a dense block: a depthwise + pointwise pair, or (first conv
 * of the first block) a plain conv held in pw with dw unused. */
typedef struct sep {
    fn_conv_desc dw, pw;
    int plain;
} sep;

struct fn_landmark68 {
    int n_blocks, n_convs, pool_k;
    sep conv[MAX_BLOCKS][MAX_CONVS];
    int fc_in;
    const float *fc_w; /* [fc_in][136] */
    const float *fc_b; /* [136] */
    fn_graph *graph;   /* the forward pass, over the descriptors above */
};

static const int CHANNELS[MAX_BLOCKS] = {32, 64, 128, 256};

static facenet_status bind_sep(facenet_model *m, int block, int k, int cin, int cout, sep *s, fn_error *e) {
    char name[96];
    const int stride = k == 0 ? 2 : 1;
    const int64_t vshape[1] = {cout};
    memset(s, 0, sizeof *s);
    s->pw.stride = 1;
    s->pw.padding = FN_PAD_SAME;
    s->pw.cin = cin;
    s->pw.cout = cout;
    /* Only conv0's output goes through a ReLU on its own; the others are
     * summed first. */
    s->pw.act = k == 0 ? FN_ACT_RELU : FN_ACT_NONE;
    snprintf(name, sizeof name, "dense%d/conv%d/bias", block, k);
    if (!(s->pw.bias = fn_model_weights(m, name, 1, vshape, e))) return e->status;
    if (block == 0 && k == 0) {
        const int64_t wshape[4] = {3, 3, cin, cout};
        s->plain = 1;
        s->pw.kh = s->pw.kw = 3;
        s->pw.stride = stride;
        snprintf(name, sizeof name, "dense%d/conv%d/filters", block, k);
        if (!(s->pw.weights = fn_model_weights(m, name, 4, wshape, e))) return e->status;
        return FACENET_OK;
    }
    const int64_t dshape[4] = {3, 3, cin, 1}, pshape[4] = {1, 1, cin, cout};
    s->dw.kh = s->dw.kw = 3;
    s->dw.stride = stride;
    s->dw.padding = FN_PAD_SAME;
    s->dw.cin = s->dw.cout = cin;
    s->dw.depthwise = 1;
    s->dw.act = FN_ACT_NONE;
    s->pw.kh = s->pw.kw = 1;
    snprintf(name, sizeof name, "dense%d/conv%d/depthwise_filter", block, k);
    if (!(s->dw.weights = fn_model_weights(m, name, 4, dshape, e))) return e->status;
    snprintf(name, sizeof name, "dense%d/conv%d/pointwise_filter", block, k);
    if (!(s->pw.weights = fn_model_weights(m, name, 4, pshape, e))) return e->status;
    return FACENET_OK;
}

static int graph_sep(fn_graph *g, int x, const sep *s) {
    return s->plain ? fn_graph_conv(g, x, &s->pw) : fn_graph_conv(g, fn_graph_conv(g, x, &s->dw), &s->pw);
}

/* relu(o[0] + (o[1] + (... + o[k-1]))): the association face-api uses. */
static int graph_sum_relu(fn_graph *g, const int *o, int k) {
    int s = o[k - 1];
    for (int j = k - 2; j >= 0; j--) s = fn_graph_add(g, o[j], s, j == 0 ? FN_ACT_RELU : FN_ACT_NONE, 0.0f);
    return s;
}

/* The whole forward pass as a graph; NULL if out of memory. */
static fn_graph *build_graph(const fn_landmark68 *net) {
    fn_graph *g = fn_graph_new(FN_LANDMARK68_INPUT, FN_LANDMARK68_INPUT, 3);
    if (!g) return NULL;
    int v = 0;
    for (int b = 0; b < net->n_blocks; b++) {
        int o[MAX_CONVS];
        o[0] = graph_sep(g, v, &net->conv[b][0]);
        for (int k = 1; k < net->n_convs; k++)
            o[k] = graph_sep(g, k == 1 ? o[0] : graph_sum_relu(g, o, k), &net->conv[b][k]);
        v = graph_sum_relu(g, o, net->n_convs);
    }
    v = fn_graph_pool(g, v, FN_OP_AVGPOOL, net->pool_k, 2, FN_PAD_VALID);
    fn_graph_dense(g, v, net->fc_w, net->fc_b, FN_LANDMARK68_OUTPUTS);
    int h, w, c;
    fn_graph_shape(g, v > 0 ? v : 0, &h, &w, &c);
    if (!fn_graph_ok(g) || h != 1 || w != 1) {
        fn_graph_free(g);
        return NULL;
    }
    return g;
}

static facenet_status bind(facenet_model *m, void **out, int n_blocks, fn_error *e) {
    if (m->input_size != FN_LANDMARK68_INPUT)
        return fn_fail(e, FACENET_ERR_MODEL, "%s: %s takes %d px, not %d", m->path, m->arch->name,
                       FN_LANDMARK68_INPUT, m->input_size);
    fn_landmark68 *net = calloc(1, sizeof *net);
    if (!net) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    net->n_blocks = n_blocks;
    net->n_convs = n_blocks == 4 ? 4 : 3;
    /* The last block's output is 7x7 (full) or 14x14 (tiny): the pool
     * covers it, giving one vector. */
    net->pool_k = FN_LANDMARK68_INPUT >> n_blocks;
    net->fc_in = CHANNELS[n_blocks - 1];
    facenet_status st = FACENET_OK;
    for (int b = 0; b < n_blocks && st == FACENET_OK; b++) {
        const int cout = CHANNELS[b], cin0 = b == 0 ? 3 : CHANNELS[b - 1];
        for (int k = 0; k < net->n_convs && st == FACENET_OK; k++)
            st = bind_sep(m, b, k, k == 0 ? cin0 : cout, cout, &net->conv[b][k], e);
    }
    const int64_t wshape[2] = {net->fc_in, FN_LANDMARK68_OUTPUTS}, bshape[1] = {FN_LANDMARK68_OUTPUTS};
    if (st == FACENET_OK && !(net->fc_w = fn_model_weights(m, "fc/weights", 2, wshape, e))) st = e->status;
    if (st == FACENET_OK && !(net->fc_b = fn_model_weights(m, "fc/bias", 1, bshape, e))) st = e->status;
    if (st == FACENET_OK && !(net->graph = build_graph(net)))
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory laying out the landmark network");
    if (st != FACENET_OK) {
        free(net);
        return st;
    }
    *out = net;
    return FACENET_OK;
}

static facenet_status bind_full(facenet_model *m, void **out, fn_error *e) { return bind(m, out, 4, e); }
static facenet_status bind_tiny(facenet_model *m, void **out, fn_error *e) { return bind(m, out, 3, e); }
static void landmark68_free(void *vp) {
    fn_landmark68 *net = vp;
    if (net) fn_graph_free(net->graph);
    free(net);
}

const fn_net_ops fn_landmark68_ops = {"face_landmark_68", bind_full, landmark68_free};
const fn_net_ops fn_landmark68_tiny_ops = {"face_landmark_68_tiny", bind_tiny, landmark68_free};

int fn_landmark68_is(const facenet_model *m) {
    return m && m->net && (m->ops == &fn_landmark68_ops || m->ops == &fn_landmark68_tiny_ops);
}

const fn_graph *fn_landmark68_graph(const fn_landmark68 *net) { return net->graph; }

facenet_status fn_landmark68_forward(const fn_landmark68 *net, const fn_exec *ex, const fn_tensor *x,
                                     float *out, fn_error *e) {
    if (x->h != FN_LANDMARK68_INPUT || x->w != FN_LANDMARK68_INPUT || x->c != 3)
        return fn_fail(e, FACENET_ERR_INTERNAL, "landmark68: input must be 112x112x3");
    fn_tensor y = fn_tensor_make(x->n, 1, 1, FN_LANDMARK68_OUTPUTS, out);
    if (fn_graph_run(ex, net->graph, x, &y) != 0)
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the landmark network");
    return FACENET_OK;
}
