/*
 * ssd_mobilenetv1.c - the SSD MobileNetV1 face detector's network (face-api's
 * ssd_mobilenetv1_model), from input to raw box encodings and class logits.
 *
 *   conv 3x3/2 3->32 + offset, ReLU6                      512 -> 256
 *   13 x [depthwise 3x3 (/2 at 2, 4, 6, 12) + BN, ReLU6,
 *         pointwise 1x1 + offset, ReLU6]                  256 -> 16
 *   extra layers: 4 x [1x1, 3x3/2], each + offset, ReLU6   16 -> 1
 *   heads on six feature maps (32, 16, 8, 4, 2, 1): 1x1 convs + bias to
 *   A x 4 box encodings and A x 3 class logits, A = 3 on the first, 6 after.
 *
 * All padding is TF SAME (the odd cell at the bottom/right). The depthwise
 * batch norms are folded at bind time into the conv's per-channel scale and
 * shift, so every layer is one fused fn_conv2d.
 *
 * The layers are laid out once, at bind time, as an fn_graph (engine/
 * graph.h) whose twelve outputs are the heads, box and class for each map in
 * turn; a forward pass is one fn_graph_run, so that a fast backend keeps the
 * activations in its own layout from the first conv to the heads. With one
 * image the heads write straight into the caller's arrays (each head's
 * NHWC output already is in anchor order).
 *
 * int8: the graph names the input and every conv's output but the heads'
 * (the heads read 8-bit values and write float32). A model file that
 * carries their calibration ranges (`facenet quantize --network detector`)
 * also gets the graph's int8 version, which runs when ex->int8; without
 * one the detector runs in float32 whatever ex->int8 says.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/graph.h"
#include "model/model.h"
#include "nets/nets.h"
#include "nets/ssd_mobilenetv1.h"

#define N_BLOCKS 13
#define N_EXTRA 8
#define N_MAPS 6
/* TF's epsilon for these batch norms, as a float32 widened to double. */
#define BN_EPSILON 0.0010000000474974513

typedef struct dw_block {
    fn_conv_desc dw, pw;
} dw_block;

struct fn_ssd_mobilenetv1 {
    fn_conv_desc conv0;
    dw_block blocks[N_BLOCKS];
    fn_conv_desc extra[N_EXTRA];
    fn_conv_desc box_head[N_MAPS], cls_head[N_MAPS];
    const float *anchors; /* [5118][4] */
    float *folded;        /* the depthwise batch norms' scales and shifts, one allocation */
    fn_graph *graph;      /* the forward pass; outputs box 0, class 0, box 1, ... */
    fn_graph *graph8;     /* its int8 version, or NULL: no calibration */
};

/* Channels out of block i (1-based; [0]: out of the first conv), and block i's depthwise stride. */
static const int BLOCK_COUT[N_BLOCKS + 1] = {32,  64,  128, 128, 256, 256,  512,
                                             512, 512, 512, 512, 512, 1024, 1024};
static int block_stride(int i) { return i == 2 || i == 4 || i == 6 || i == 12 ? 2 : 1; }

/* Extra layers: kernel, stride, cin, cout. */
static const int EXTRA[N_EXTRA][4] = {
    {1, 1, 1024, 256}, {3, 2, 256, 512}, {1, 1, 512, 128}, {3, 2, 128, 256},
    {1, 1, 256, 128},  {3, 2, 128, 256}, {1, 1, 256, 64},  {3, 2, 64, 128},
};

/* Feature maps: channels, grid side, anchors per cell. */
static const int MAP_C[N_MAPS] = {512, 1024, 512, 256, 256, 128};
static const int MAP_G[N_MAPS] = {32, 16, 8, 4, 2, 1};
static const int MAP_A[N_MAPS] = {3, 6, 6, 6, 6, 6};

static void desc_init(fn_conv_desc *d, int k, int stride, int cin, int cout, int depthwise, fn_act act) {
    memset(d, 0, sizeof *d);
    d->kh = d->kw = k;
    d->stride = stride;
    d->padding = FN_PAD_SAME;
    d->cin = cin;
    d->cout = cout;
    d->depthwise = depthwise;
    d->act = act;
}

/* A conv with "<prefix>/weights" and "<prefix>/convolution_bn_offset", ReLU6. */
static facenet_status bind_pointwise(facenet_model *m, const char *prefix, int k, int stride, int cin,
                                     int cout, fn_conv_desc *d, fn_error *e) {
    char name[128];
    const int64_t wshape[4] = {k, k, cin, cout}, bshape[1] = {cout};
    desc_init(d, k, stride, cin, cout, 0, FN_ACT_RELU6);
    snprintf(name, sizeof name, "%s/weights", prefix);
    if (!(d->weights = fn_model_weights(m, name, 4, wshape, e))) return e->status;
    snprintf(name, sizeof name, "%s/convolution_bn_offset", prefix);
    if (!(d->bias = fn_model_weights(m, name, 1, bshape, e))) return e->status;
    return FACENET_OK;
}

/* Depthwise 3x3 with its batch norm folded into scale s and shift t:
 * (x - mean) / sqrt(var + eps) * gamma + beta = x * s + t. */
static facenet_status bind_depthwise(facenet_model *m, int i, int c, float *s, float *t, fn_conv_desc *d,
                                     fn_error *e) {
    char name[128];
    const int64_t wshape[4] = {3, 3, c, 1}, vshape[1] = {c};
    const float *bn[4];
    static const char *const BN[4] = {"gamma", "beta", "moving_mean", "moving_variance"};
    desc_init(d, 3, block_stride(i), c, c, 1, FN_ACT_RELU6);
    snprintf(name, sizeof name, "MobilenetV1/Conv2d_%d_depthwise/depthwise_weights", i);
    if (!(d->weights = fn_model_weights(m, name, 4, wshape, e))) return e->status;
    for (int k = 0; k < 4; k++) {
        snprintf(name, sizeof name, "MobilenetV1/Conv2d_%d_depthwise/BatchNorm/%s", i, BN[k]);
        if (!(bn[k] = fn_model_weights(m, name, 1, vshape, e))) return e->status;
    }
    for (int ch = 0; ch < c; ch++) {
        const double var = bn[3][ch];
        if (!(var + BN_EPSILON > 0.0))
            return fn_fail(e, FACENET_ERR_MODEL, "%s: Conv2d_%d_depthwise has a negative batch-norm variance",
                           m->path, i);
        const double scale = bn[0][ch] / sqrt(var + BN_EPSILON);
        s[ch] = (float)scale;
        t[ch] = (float)(bn[1][ch] - bn[2][ch] * scale);
    }
    d->scale = s;
    d->shift = t;
    return FACENET_OK;
}

/* "Prediction/BoxPredictor_j/<what>/{weights,biases}", a 1x1 conv, no activation. */
static facenet_status bind_head(facenet_model *m, int j, const char *what, int cout, fn_conv_desc *d,
                                fn_error *e) {
    char name[128];
    const int64_t wshape[4] = {1, 1, MAP_C[j], cout}, bshape[1] = {cout};
    desc_init(d, 1, 1, MAP_C[j], cout, 0, FN_ACT_NONE);
    snprintf(name, sizeof name, "Prediction/BoxPredictor_%d/%s/weights", j, what);
    if (!(d->weights = fn_model_weights(m, name, 4, wshape, e))) return e->status;
    snprintf(name, sizeof name, "Prediction/BoxPredictor_%d/%s/biases", j, what);
    if (!(d->bias = fn_model_weights(m, name, 1, bshape, e))) return e->status;
    return FACENET_OK;
}

static facenet_status bind_all(facenet_model *m, fn_ssd_mobilenetv1 *net, fn_error *e) {
    facenet_status st = bind_pointwise(m, "MobilenetV1/Conv2d_0_pointwise", 3, 2, 3, 32, &net->conv0, e);
    float *fold = net->folded;
    for (int i = 1; st == FACENET_OK && i <= N_BLOCKS; i++) {
        const int cin = BLOCK_COUT[i - 1], cout = BLOCK_COUT[i];
        char prefix[64];
        st = bind_depthwise(m, i, cin, fold, fold + cin, &net->blocks[i - 1].dw, e);
        fold += 2 * cin;
        snprintf(prefix, sizeof prefix, "MobilenetV1/Conv2d_%d_pointwise", i);
        if (st == FACENET_OK) st = bind_pointwise(m, prefix, 1, 1, cin, cout, &net->blocks[i - 1].pw, e);
    }
    for (int k = 0; st == FACENET_OK && k < N_EXTRA; k++) {
        char prefix[64];
        snprintf(prefix, sizeof prefix, "Prediction/Conv2d_%d_pointwise", k);
        st = bind_pointwise(m, prefix, EXTRA[k][0], EXTRA[k][1], EXTRA[k][2], EXTRA[k][3], &net->extra[k], e);
    }
    for (int j = 0; st == FACENET_OK && j < N_MAPS; j++) {
        st = bind_head(m, j, "BoxEncodingPredictor", MAP_A[j] * 4, &net->box_head[j], e);
        if (st == FACENET_OK)
            st = bind_head(m, j, "ClassPredictor", MAP_A[j] * FN_SSD_CLASSES, &net->cls_head[j], e);
    }
    const int64_t ashape[3] = {1, FN_SSD_ANCHORS, 4};
    if (st == FACENET_OK && !(net->anchors = fn_model_weights(m, "Output/extra_dim", 3, ashape, e)))
        st = e->status;
    return st;
}

/* The whole forward pass as a graph, its int8 values named; NULL if out of
 * memory. */
static fn_graph *build_graph(const void *vp) {
    const fn_ssd_mobilenetv1 *net = vp;
    fn_graph *g = fn_graph_new(FN_SSD_INPUT, FN_SSD_INPUT, 3);
    if (!g) return NULL;
    int fm[N_MAPS];
    char name[32];
    int bad = fn_graph_name(g, 0, "input");
    int v = fn_graph_conv(g, 0, &net->conv0);
    bad |= fn_graph_name(g, v, "conv0");
    for (int i = 1; i <= N_BLOCKS; i++) {
        const int dw = fn_graph_conv(g, v, &net->blocks[i - 1].dw);
        snprintf(name, sizeof name, "dw%d", i);
        bad |= fn_graph_name(g, dw, name);
        v = fn_graph_conv(g, dw, &net->blocks[i - 1].pw);
        snprintf(name, sizeof name, "pw%d", i);
        bad |= fn_graph_name(g, v, name);
        if (i == 11) fm[0] = v;
    }
    fm[1] = v;
    for (int k = 0; k < N_EXTRA; k++) {
        v = fn_graph_conv(g, v, &net->extra[k]);
        snprintf(name, sizeof name, "extra%d", k);
        bad |= fn_graph_name(g, v, name);
        if (k % 2 == 1) fm[2 + k / 2] = v;
    }
    for (int j = 0; j < N_MAPS; j++) {
        int h, w, c;
        fn_graph_shape(g, fm[j] > 0 ? fm[j] : 0, &h, &w, &c);
        if (h != MAP_G[j] || w != MAP_G[j]) g->bad = 1;
        fn_graph_output(g, fn_graph_conv(g, fm[j], &net->box_head[j]));
        fn_graph_output(g, fn_graph_conv(g, fm[j], &net->cls_head[j]));
    }
    if (bad || !fn_graph_ok(g)) {
        fn_graph_free(g);
        return NULL;
    }
    return g;
}

static void ssd_free(void *vp) {
    fn_ssd_mobilenetv1 *net = vp;
    if (!net) return;
    fn_graph_free(net->graph);
    fn_graph_free(net->graph8);
    free(net->folded);
    free(net);
}

static facenet_status ssd_bind(facenet_model *m, void **out, fn_error *e) {
    if (m->input_size != FN_SSD_INPUT)
        return fn_fail(e, FACENET_ERR_MODEL,
                       "%s: ssd_mobilenetv1 takes %d px, not %d (its anchors are fixed)", m->path,
                       FN_SSD_INPUT, m->input_size);
    fn_ssd_mobilenetv1 *net = calloc(1, sizeof *net);
    size_t nfold = 0;
    for (int i = 0; i < N_BLOCKS; i++) nfold += 2 * (size_t)BLOCK_COUT[i];
    if (net) net->folded = malloc(nfold * sizeof(float));
    if (!net || !net->folded) {
        ssd_free(net);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory binding %s", m->path);
    }
    facenet_status st = bind_all(m, net, e);
    if (st == FACENET_OK && !(net->graph = build_graph(net)))
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory laying out %s", m->path);
    if (st == FACENET_OK) st = fn_net_int8_graph(m, net->graph, build_graph, net, &net->graph8, e);
    if (st != FACENET_OK) {
        ssd_free(net);
        return st;
    }
    *out = net;
    return FACENET_OK;
}

const fn_net_ops fn_ssd_mobilenetv1_ops = {"ssd_mobilenetv1", ssd_bind, ssd_free};

const float *fn_ssd_mobilenetv1_anchors(const fn_ssd_mobilenetv1 *net) { return net->anchors; }

/* ---------------------------------------------------------------- forward */

const fn_graph *fn_ssd_mobilenetv1_graph(const fn_ssd_mobilenetv1 *net) { return net->graph; }
const fn_graph *fn_ssd_mobilenetv1_graph8(const fn_ssd_mobilenetv1 *net) { return net->graph8; }

facenet_status fn_ssd_mobilenetv1_forward(const fn_ssd_mobilenetv1 *net, const fn_exec *ex,
                                          const fn_tensor *x, float *box_enc, float *class_logits,
                                          fn_error *e) {
    if (x->h != FN_SSD_INPUT || x->w != FN_SSD_INPUT || x->c != 3 || x->n < 1)
        return fn_fail(e, FACENET_ERR_INTERNAL, "ssd_mobilenetv1: input must be [n,512,512,3]");
    /* Head j of kind t (0 box, 1 class) is output 2j + t. With one image it
     * is its slice of the caller's array; with more, the images' parts
     * interleave there, so it goes to scratch first. */
    fn_tensor ys[2 * N_MAPS];
    const int per[2] = {4, FN_SSD_CLASSES};
    float *dst[2] = {box_enc, class_logits};
    int first = 0;
    for (int j = 0; j < N_MAPS; j++) {
        for (int t = 0; t < 2; t++) {
            const int c = MAP_A[j] * per[t];
            float *p = x->n == 1 ? dst[t] + (size_t)first * per[t]
                                 : fn_arena_floats(ex->arena, (size_t)x->n * MAP_G[j] * MAP_G[j] * c);
            if (!p) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the SSD detector");
            ys[2 * j + t] = fn_tensor_make(x->n, MAP_G[j], MAP_G[j], c, p);
        }
        first += MAP_G[j] * MAP_G[j] * MAP_A[j];
    }
    if (fn_graph_run(ex, ex->int8 && net->graph8 ? net->graph8 : net->graph, x, ys) != 0)
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the SSD detector");
    if (x->n == 1) return FACENET_OK;
    first = 0;
    for (int j = 0; j < N_MAPS; j++) {
        for (int t = 0; t < 2; t++) {
            const fn_tensor *y = &ys[2 * j + t];
            const size_t per_image = (size_t)y->h * y->w * y->c;
            for (int b = 0; b < y->n; b++)
                memcpy(dst[t] + ((size_t)b * FN_SSD_ANCHORS + first) * per[t], y->data + b * per_image,
                       per_image * sizeof(float));
        }
        first += MAP_G[j] * MAP_G[j] * MAP_A[j];
    }
    return FACENET_OK;
}
