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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (st != FACENET_OK) {
        free(net);
        return st;
    }
    *out = net;
    return FACENET_OK;
}

static facenet_status bind_full(facenet_model *m, void **out, fn_error *e) { return bind(m, out, 4, e); }
static facenet_status bind_tiny(facenet_model *m, void **out, fn_error *e) { return bind(m, out, 3, e); }
static void landmark68_free(void *net) { free(net); }

const fn_net_ops fn_landmark68_ops = {"face_landmark_68", bind_full, landmark68_free};
const fn_net_ops fn_landmark68_tiny_ops = {"face_landmark_68_tiny", bind_tiny, landmark68_free};

int fn_landmark68_is(const facenet_model *m) {
    return m && m->net && (m->ops == &fn_landmark68_ops || m->ops == &fn_landmark68_tiny_ops);
}

/* A new arena tensor of the given shape, or one with no data on failure. */
static fn_tensor alloc_tensor(const fn_exec *ex, int n, int h, int w, int c) {
    float *p = fn_arena_floats(ex->arena, (size_t)n * h * w * c);
    return fn_tensor_make(n, h, w, c, p);
}

static int conv(const fn_exec *ex, const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    int oh, ow;
    if (fn_conv_shape(d, x->h, x->w, &oh, &ow) != 0) return -1;
    *y = alloc_tensor(ex, x->n, oh, ow, d->cout);
    if (!y->data) return -1;
    fn_conv2d(ex, x, d, y);
    return 0;
}

static int run_sep(const fn_exec *ex, const sep *s, const fn_tensor *x, fn_tensor *y) {
    if (s->plain) return conv(ex, x, &s->pw, y);
    fn_tensor t;
    return conv(ex, x, &s->dw, &t) || conv(ex, &t, &s->pw, y) ? -1 : 0;
}

/* y = relu(o[0] + (o[1] + (... + o[k-1]))): the association face-api uses. */
static void sum_relu(const fn_tensor *o, int k, fn_tensor *y) {
    const size_t n = fn_tensor_count(y);
    for (size_t i = 0; i < n; i++) {
        float s = o[k - 1].data[i];
        for (int j = k - 2; j >= 0; j--) s = o[j].data[i] + s;
        y->data[i] = s > 0.0f ? s : 0.0f;
    }
}

static int run_block(const fn_exec *ex, const fn_landmark68 *net, int b, const fn_tensor *x, fn_tensor *y) {
    fn_tensor o[MAX_CONVS];
    if (run_sep(ex, &net->conv[b][0], x, &o[0])) return -1;
    for (int k = 1; k <= net->n_convs; k++) {
        fn_tensor in = o[0];
        if (k >= 2) {
            in = alloc_tensor(ex, o[0].n, o[0].h, o[0].w, o[0].c);
            if (!in.data) return -1;
            sum_relu(o, k, &in);
        }
        if (k == net->n_convs) {
            *y = in;
            return 0;
        }
        if (run_sep(ex, &net->conv[b][k], &in, &o[k])) return -1;
    }
    return -1; /* not reached: n_convs >= 1 */
}

facenet_status fn_landmark68_forward(const fn_landmark68 *net, const fn_exec *ex, const fn_tensor *x,
                                     float *out, fn_error *e) {
    if (x->h != FN_LANDMARK68_INPUT || x->w != FN_LANDMARK68_INPUT || x->c != 3)
        return fn_fail(e, FACENET_ERR_INTERNAL, "landmark68: input must be 112x112x3");
    fn_tensor u = *x, t;
    for (int b = 0; b < net->n_blocks; b++) {
        if (run_block(ex, net, b, &u, &t)) goto oom;
        u = t;
    }
    int ph, pw;
    if (fn_window_out(u.h, net->pool_k, 2, FN_PAD_VALID, &ph, NULL) ||
        fn_window_out(u.w, net->pool_k, 2, FN_PAD_VALID, &pw, NULL) || ph != 1 || pw != 1)
        return fn_fail(e, FACENET_ERR_INTERNAL, "landmark68: last block is %dx%d, not %dx%d", u.h, u.w,
                       net->pool_k, net->pool_k);
    fn_tensor p = alloc_tensor(ex, u.n, 1, 1, u.c);
    if (!p.data) goto oom;
    fn_avgpool(ex, &u, net->pool_k, 2, FN_PAD_VALID, &p);
    fn_tensor yv = fn_tensor_make(u.n, 1, 1, FN_LANDMARK68_OUTPUTS, out);
    fn_dense(ex, &p, net->fc_w, net->fc_b, &yv);
    return FACENET_OK;
oom:
    return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the landmark network");
}
