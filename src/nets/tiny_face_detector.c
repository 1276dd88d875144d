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
 * Activations ping-pong between two arena buffers sized for the largest
 * (the first conv's output).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
    if (st != FACENET_OK) {
        free(net);
        return st;
    }
    *out = net;
    return FACENET_OK;
}

static void tiny_free(void *net) { free(net); }

const fn_net_ops fn_tiny_face_detector_ops = {"tiny_face_detector", tiny_bind, tiny_free};

/* ---------------------------------------------------------------- forward */

/* Two buffers of cap floats; each step reads the one written last. */
typedef struct pingpong {
    float *buf[2];
    size_t cap;
    int next;
} pingpong;

static float *pp_take(pingpong *pp, size_t count) {
    if (count > pp->cap) return NULL;
    float *p = pp->buf[pp->next];
    pp->next ^= 1;
    return p;
}

static facenet_status conv(const fn_exec *ex, pingpong *pp, fn_tensor *t, const fn_conv_desc *d, float *dst,
                           fn_error *e) {
    int oh, ow;
    if (fn_conv_shape(d, t->h, t->w, &oh, &ow) != 0)
        return fn_fail(e, FACENET_ERR_INTERNAL, "tiny_face_detector: a %dx%d map is too small", t->h, t->w);
    float *p = dst ? dst : pp_take(pp, (size_t)t->n * oh * ow * d->cout);
    if (!p) return fn_fail(e, FACENET_ERR_INTERNAL, "tiny_face_detector: a layer outgrew its buffer");
    fn_tensor y = fn_tensor_make(t->n, oh, ow, d->cout, p);
    fn_conv2d(ex, t, d, &y);
    *t = y;
    return FACENET_OK;
}

static facenet_status maxpool(const fn_exec *ex, pingpong *pp, fn_tensor *t, int stride, fn_error *e) {
    int oh, ow;
    fn_window_out(t->h, 2, stride, FN_PAD_SAME, &oh, NULL);
    fn_window_out(t->w, 2, stride, FN_PAD_SAME, &ow, NULL);
    float *p = pp_take(pp, (size_t)t->n * oh * ow * t->c);
    if (!p) return fn_fail(e, FACENET_ERR_INTERNAL, "tiny_face_detector: a layer outgrew its buffer");
    fn_tensor y = fn_tensor_make(t->n, oh, ow, t->c, p);
    fn_maxpool(ex, t, 2, stride, FN_PAD_SAME, &y);
    *t = y;
    return FACENET_OK;
}

facenet_status fn_tiny_face_detector_forward(const fn_tiny_face_detector *net, const fn_exec *ex,
                                             const fn_tensor *x, float *out, fn_error *e) {
    if (x->n < 1 || x->c != 3 || x->h != x->w || x->h < FN_TINY_STRIDE || x->h % FN_TINY_STRIDE != 0)
        return fn_fail(e, FACENET_ERR_INTERNAL,
                       "tiny_face_detector: input must be [n,s,s,3], s a multiple of 32");
    /* The first conv's output, (s-2)^2 x 16, is the largest activation. */
    pingpong pp = {{NULL, NULL}, (size_t)x->n * (x->h - 2) * (x->w - 2) * SEP_COUT[0], 0};
    pp.buf[0] = fn_arena_floats(ex->arena, pp.cap);
    pp.buf[1] = fn_arena_floats(ex->arena, pp.cap);
    if (!pp.buf[0] || !pp.buf[1])
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory running the tiny detector");
    fn_tensor t = *x;
    if (conv(ex, &pp, &t, &net->conv0, NULL, e)) return e->status;
    for (int i = 0; i < N_SEP; i++) {
        if (maxpool(ex, &pp, &t, 2, e) || conv(ex, &pp, &t, &net->dw[i], NULL, e) ||
            conv(ex, &pp, &t, &net->pw[i], NULL, e))
            return e->status;
    }
    if (maxpool(ex, &pp, &t, 1, e)) return e->status;
    const int g = fn_tiny_face_detector_cells(x->h);
    if (t.h != g || t.w != g)
        return fn_fail(e, FACENET_ERR_INTERNAL, "tiny_face_detector: the grid is %dx%d, not %dx%d", t.h, t.w,
                       g, g);
    return conv(ex, &pp, &t, &net->conv8, out, e);
}
