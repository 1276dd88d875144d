/*
 * resnet29.c - dlib's ResNet-29 face embedding network (face-api's
 * face_recognition_model).
 *
 *   conv 7x7/2 VALID 3->32, scale, ReLU            150 -> 72
 *   max pool 3x3/2 VALID                           72 -> 35
 *   3 residual blocks, 32 channels                 35
 *   down 32->64, 3 residual                        17
 *   down 64->128, 2 residual                       8
 *   down 128->256, 2 residual                      4  (main path 3, zero-padded)
 *   down 256->256                                  2  (main path 1, zero-padded)
 *   global mean, fc 256->128 (no bias)
 *
 * A residual block is relu(x + scale(conv(relu(scale(conv(x)))))). A down
 * block's main path starts with a 3x3/2 VALID conv; its shortcut is a 2x2/2
 * average pool with zero channels appended, and where the main path comes
 * out one smaller than the shortcut it is zero-extended at the bottom/right
 * (dlib's add_prev). Every conv has a bias and a per-channel scale layer
 * (folded batch norm): y = (conv(x) + bias) * weights + biases.
 *
 * The layers are laid out once, at bind time, as an fn_graph (engine/
 * graph.h), and a forward pass is one fn_graph_run: that lets a fast backend
 * keep the activations in its own layout from the stem to the fc and fuse
 * each residual add and ReLU into the convolution before it. A down block's
 * shortcut pool is listed before its convolutions so that the add can be
 * fused into the second one.
 *
 * int8: the graph names the input, the stem's output, each block's first
 * ReLU and each block's output (its add) but the last, whose consumer is
 * the float32 mean and fc; a model file that carries calibration ranges for
 * them (model/calibration.c, written by `facenet quantize`) also gets the
 * graph's int8 version, which sessions run when asked (ex->int8). A value
 * without a range stays float32, so a calibration may leave layers out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "model/model.h"
#include "nets/nets.h"
#include "nets/resnet29.h"

const float fn_resnet29_mean[3] = {122.782f, 117.001f, 104.298f};

typedef struct block {
    fn_conv_desc c1, c2;
    int down;
} block;

#define N_BLOCKS FN_RESNET29_BLOCKS

struct fn_resnet29 {
    fn_conv_desc stem;
    block blocks[N_BLOCKS];
    const float *fc; /* [256][128] */
    fn_graph *graph; /* the forward pass, over the descriptors above */
    fn_graph *graph8; /* its int8 version, or NULL: no calibration */
};

const fn_resnet_block fn_resnet29_blocks[N_BLOCKS] = {
    {"conv32_1", 32, 32, 0},        {"conv32_2", 32, 32, 0},     {"conv32_3", 32, 32, 0},
    {"conv64_down", 32, 64, 1},     {"conv64_1", 64, 64, 0},     {"conv64_2", 64, 64, 0},
    {"conv64_3", 64, 64, 0},        {"conv128_down", 64, 128, 1}, {"conv128_1", 128, 128, 0},
    {"conv128_2", 128, 128, 0},     {"conv256_down", 128, 256, 1}, {"conv256_1", 256, 256, 0},
    {"conv256_2", 256, 256, 0},     {"conv256_down_out", 256, 256, 1},
};
#define BLOCKS fn_resnet29_blocks

/* Bind "<prefix>/conv/filters", "/conv/bias", "/scale/weights", "/scale/biases". */
facenet_status fn_resnet_bind_conv(facenet_model *m, const char *prefix, int k, int cin, int cout, int stride,
                                   fn_padding pad, fn_act act, fn_conv_desc *d, fn_error *e) {
    char name[128];
    const int64_t wshape[4] = {k, k, cin, cout}, vshape[1] = {cout};
    memset(d, 0, sizeof *d);
    d->kh = d->kw = k;
    d->stride = stride;
    d->padding = pad;
    d->cin = cin;
    d->cout = cout;
    d->act = act;
    snprintf(name, sizeof name, "%s/conv/filters", prefix);
    if (!(d->weights = fn_model_weights(m, name, 4, wshape, e))) return e->status;
    snprintf(name, sizeof name, "%s/conv/bias", prefix);
    if (!(d->bias = fn_model_weights(m, name, 1, vshape, e))) return e->status;
    snprintf(name, sizeof name, "%s/scale/weights", prefix);
    if (!(d->scale = fn_model_weights(m, name, 1, vshape, e))) return e->status;
    snprintf(name, sizeof name, "%s/scale/biases", prefix);
    if (!(d->shift = fn_model_weights(m, name, 1, vshape, e))) return e->status;
    return FACENET_OK;
}

static void resnet29_free(void *vp) {
    fn_resnet29 *net = vp;
    if (net) {
        fn_graph_free(net->graph);
        fn_graph_free(net->graph8);
    }
    free(net);
}

/* The whole forward pass as a graph, its int8 values named; NULL if out of
 * memory. */
static fn_graph *build_graph(const fn_resnet29 *net) {
    fn_graph *g = fn_graph_new(FN_RESNET29_INPUT, FN_RESNET29_INPUT, 3);
    if (!g) return NULL;
    char name[96];
    int bad = fn_graph_name(g, 0, "input");
    int v = fn_graph_conv(g, 0, &net->stem);
    bad |= fn_graph_name(g, v, "conv32_down");
    v = fn_graph_pool(g, v, FN_OP_MAXPOOL, 3, 2, FN_PAD_VALID);
    for (int i = 0; i < N_BLOCKS; i++) {
        const block *b = &net->blocks[i];
        int shortcut = b->down ? fn_graph_pool(g, v, FN_OP_AVGPOOL, 2, 2, FN_PAD_VALID) : v;
        int c1 = fn_graph_conv(g, v, &b->c1);
        snprintf(name, sizeof name, "%s/conv1", BLOCKS[i].name);
        bad |= fn_graph_name(g, c1, name);
        v = fn_graph_add(g, fn_graph_conv(g, c1, &b->c2), shortcut, FN_ACT_RELU, 0.0f);
        if (i + 1 < N_BLOCKS) bad |= fn_graph_name(g, v, BLOCKS[i].name);
    }
    v = fn_graph_global_mean(g, v);
    fn_graph_dense(g, v, net->fc, NULL, FN_RESNET29_DIM);
    if (bad || !fn_graph_ok(g)) {
        fn_graph_free(g);
        return NULL;
    }
    return g;
}

static fn_graph *build_any(const void *net) { return build_graph(net); }

static facenet_status resnet29_bind(facenet_model *m, void **out, fn_error *e) {
    if (m->embedding_dim != FN_RESNET29_DIM || m->input_size != FN_RESNET29_INPUT)
        return fn_fail(e, FACENET_ERR_MODEL, "%s: dlib_resnet29 takes %d px and gives %d floats, not %d and %d",
                       m->path, FN_RESNET29_INPUT, FN_RESNET29_DIM, m->input_size, m->embedding_dim);
    fn_resnet29 *net = calloc(1, sizeof *net);
    if (!net) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    facenet_status st =
        fn_resnet_bind_conv(m, "conv32_down", 7, 3, 32, 2, FN_PAD_VALID, FN_ACT_RELU, &net->stem, e);
    for (int i = 0; st == FACENET_OK && i < N_BLOCKS; i++) {
        char prefix[96];
        block *b = &net->blocks[i];
        b->down = BLOCKS[i].down;
        snprintf(prefix, sizeof prefix, "%s/conv1", BLOCKS[i].name);
        st = fn_resnet_bind_conv(m, prefix, 3, BLOCKS[i].cin, BLOCKS[i].cout, b->down ? 2 : 1,
                                 b->down ? FN_PAD_VALID : FN_PAD_SAME, FN_ACT_RELU, &b->c1, e);
        if (st != FACENET_OK) break;
        snprintf(prefix, sizeof prefix, "%s/conv2", BLOCKS[i].name);
        st = fn_resnet_bind_conv(m, prefix, 3, BLOCKS[i].cout, BLOCKS[i].cout, 1, FN_PAD_SAME, FN_ACT_NONE,
                                 &b->c2, e);
    }
    const int64_t fshape[2] = {256, FN_RESNET29_DIM};
    if (st == FACENET_OK && !(net->fc = fn_model_weights(m, "fc", 2, fshape, e))) st = e->status;
    if (st == FACENET_OK && !(net->graph = build_graph(net)))
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory laying out the embedding network");
    if (st == FACENET_OK) st = fn_net_int8_graph(m, net->graph, build_any, net, &net->graph8, e);
    if (st != FACENET_OK) {
        resnet29_free(net);
        return st;
    }
    *out = net;
    return FACENET_OK;
}


const fn_net_ops fn_resnet29_ops = {"dlib_resnet29", resnet29_bind, resnet29_free};

const fn_graph *fn_resnet29_graph(const fn_resnet29 *net) { return net->graph; }
const fn_graph *fn_resnet29_graph8(const fn_resnet29 *net) { return net->graph8; }

facenet_status fn_resnet29_forward(const fn_resnet29 *net, const fn_exec *ex, const fn_tensor *x, float *out,
                                   fn_error *e) {
    if (x->h != FN_RESNET29_INPUT || x->w != FN_RESNET29_INPUT || x->c != 3)
        return fn_fail(e, FACENET_ERR_INTERNAL, "resnet29: input must be 150x150x3");
    fn_tensor y = fn_tensor_make(x->n, 1, 1, FN_RESNET29_DIM, out);
    if (ex->int8 && !net->graph8)
        return fn_fail(e, FACENET_ERR_UNSUPPORTED, "resnet29: the model carries no int8 calibration");
    if (fn_graph_run(ex, ex->int8 ? net->graph8 : net->graph, x, &y) != 0)
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the embedding network");
    return FACENET_OK;
}
