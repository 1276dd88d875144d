/*
 * net.c - the trainable network: a residual embedding network as a list of
 * layers with their parameters, gradients and kept activations.
 *
 * Both architectures are dlib's residual design, built from one layer table
 * (nets/resnet29.h, nets/facenet_small.h) so that the layers and tensor
 * names are those of the inference networks: a stem convolution (ResNet-29
 * adds a 3x3/2 max pool), residual blocks relu(x + n(conv(relu(n(conv(x))))))
 * whose down blocks take a 2x2/2 average pool with zero channels appended
 * as the shortcut, the global mean and a 128-wide fc without bias.
 *
 * n() is the normalization after each convolution, one of:
 *   - batch norm (a new network): batch statistics when training, running
 *     averages otherwise; saved folded into the scale layer the inference
 *     networks read: scale = gamma / sqrt(var + eps), shift = beta - mean *
 *     scale (and a zero conv bias);
 *   - a trainable per-channel affine (fine-tuning a model file): the
 *     file's folded batch norm y = (conv + bias) * scale + shift, with the
 *     bias folded into the shift. Its statistics stay frozen, as they were
 *     learned on far more data than a fine-tuning set; scale and shift
 *     still learn. Saved as they are.
 *
 * Values are numbered as in engine/graph.h: 0 is the input, layer i makes
 * value i + 1. A forward pass keeps every value (and each convolution's
 * output before normalization), which the backward pass walks in reverse:
 * a value's gradient is complete when its producer is reached (all its
 * consumers come later), so it is transformed in place there. Frozen
 * stages run batch norm on running averages, get no parameter gradient,
 * and the backward pass stops at the first layer that learns.
 *
 * Convolutions run through fn_conv2d_train and the backward slots (the fast
 * backend when there is one), never the inference slots, which cache
 * weights they assume immutable.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backward.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "nets/arch.h"
#include "nets/facenet_small.h"
#include "nets/resnet29.h"
#include "train/train.h"

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

typedef enum lkind { L_CONV, L_MAXPOOL, L_AVGPOOL, L_ADD, L_MEAN, L_DENSE } lkind;
typedef enum norm_kind { NORM_BN, NORM_AFFINE } norm_kind;

typedef struct layer {
    lkind kind;
    int in[2];   /* value ids; in[1] only for ADD */
    int h, w, c; /* output per batch item */
    int stage;
    int relu;                    /* CONV (after the normalization), ADD (after the sum) */
    fn_conv_desc d;              /* CONV: geometry, no epilogue */
    int p_w, p_a, p_b, p_m, p_v; /* params: weights, gamma|scale, beta|shift, running mean, var */
    int k, stride;               /* pools */
    fn_padding pad;
    char prefix[64];
    float *z;          /* CONV: the convolution's output, before normalization */
    float *out;        /* the layer's value */
    float *bn_k;       /* CONV: batch mean and 1/std (batch statistics) or [c] scale (running) */
    int bn_batch;      /* the last forward normalized with batch statistics */
} layer;

struct fn_tnet {
    char arch[32];
    const char *file_arch;
    int size, dim;
    norm_kind norm;
    layer *layers;
    int n_layers, cap_layers;
    fn_param *params;
    int *param_stage;
    int n_params, cap_params;
    int frozen_stages;
    /* per batch */
    int n_alloc, n;
    int trained; /* the last forward was a training one */
    float *x;    /* a copy of the last input */
    float **dval;
    float *tmp; /* room for the largest value */
    size_t max_value;
};

/* ------------------------------------------------------------ building */

static float *alloc_floats(size_t n) {
    size_t bytes = (n ? n : 1) * sizeof(float);
    bytes = (bytes + 63) & ~(size_t)63;
    return aligned_alloc(64, bytes);
}

/* A new parameter (grad: 0 for a buffer); -1 if out of memory. */
static int add_param(fn_tnet *net, const char *prefix, const char *suffix, int rank, const int64_t *shape,
                     int grad, int decay, int stage) {
    if (net->n_params == net->cap_params) {
        int cap = net->cap_params ? net->cap_params * 2 : 64;
        fn_param *p = realloc(net->params, sizeof *p * (size_t)cap);
        if (!p) return -1;
        net->params = p;
        int *s = realloc(net->param_stage, sizeof *s * (size_t)cap);
        if (!s) return -1;
        net->param_stage = s;
        net->cap_params = cap;
    }
    fn_param *p = &net->params[net->n_params];
    memset(p, 0, sizeof *p);
    size_t size = 1;
    for (int i = 0; i < rank; i++) size *= (size_t)shape[i], p->shape[i] = shape[i];
    char name[160];
    snprintf(name, sizeof name, "%s%s%s", prefix, *prefix ? "/" : "", suffix);
    char *nm = strdup(name);
    p->value = alloc_floats(size);
    p->grad = grad ? alloc_floats(size) : NULL;
    if (!nm || !p->value || (grad && !p->grad)) {
        free(nm);
        free(p->value);
        free(p->grad);
        return -1;
    }
    p->name = nm;
    p->rank = rank;
    p->size = size;
    p->decay = decay;
    memset(p->value, 0, size * sizeof(float));
    if (p->grad) memset(p->grad, 0, size * sizeof(float));
    net->param_stage[net->n_params] = stage;
    return net->n_params++;
}

static layer *add_layer(fn_tnet *net, lkind kind, int in0, int in1, int stage) {
    if (net->n_layers == net->cap_layers) {
        int cap = net->cap_layers ? net->cap_layers * 2 : 64;
        layer *l = realloc(net->layers, sizeof *l * (size_t)cap);
        if (!l) return NULL;
        net->layers = l;
        net->cap_layers = cap;
    }
    layer *l = &net->layers[net->n_layers++];
    memset(l, 0, sizeof *l);
    l->kind = kind;
    l->in[0] = in0;
    l->in[1] = in1;
    l->stage = stage;
    l->p_w = l->p_a = l->p_b = l->p_m = l->p_v = -1;
    return l;
}

static void value_shape(const fn_tnet *net, int v, int *h, int *w, int *c) {
    if (v == 0) {
        *h = *w = net->size, *c = 3;
    } else {
        const layer *l = &net->layers[v - 1];
        *h = l->h, *w = l->w, *c = l->c;
    }
}

/* Builders return the new value, or -1 (out of memory, bad geometry). */
static int b_conv(fn_tnet *net, int x, const char *prefix, int k, int cin, int cout, int stride, fn_padding pad,
                  int relu, int stage) {
    if (x < 0) return -1;
    int h, w, c;
    value_shape(net, x, &h, &w, &c);
    layer *l = add_layer(net, L_CONV, x, -1, stage);
    if (!l || c != cin) return -1;
    l->d.kh = l->d.kw = k;
    l->d.stride = stride;
    l->d.padding = pad;
    l->d.cin = cin;
    l->d.cout = cout;
    l->relu = relu;
    l->c = cout;
    snprintf(l->prefix, sizeof l->prefix, "%s", prefix);
    if (fn_conv_shape(&l->d, h, w, &l->h, &l->w)) return -1;
    const int64_t ws[4] = {k, k, cin, cout}, vs[1] = {cout};
    int ix = net->n_layers - 1;
    int pw = add_param(net, prefix, "conv/filters", 4, ws, 1, 1, stage), pa, pb, pm = -1, pv = -1;
    if (net->norm == NORM_BN) {
        pa = add_param(net, prefix, "bn/gamma", 1, vs, 1, 0, stage);
        pb = add_param(net, prefix, "bn/beta", 1, vs, 1, 0, stage);
        pm = add_param(net, prefix, "bn/mean", 1, vs, 0, 0, stage);
        pv = add_param(net, prefix, "bn/var", 1, vs, 0, 0, stage);
        if (pm < 0 || pv < 0) return -1;
    } else {
        pa = add_param(net, prefix, "scale/weights", 1, vs, 1, 0, stage);
        pb = add_param(net, prefix, "scale/biases", 1, vs, 1, 0, stage);
    }
    if (pw < 0 || pa < 0 || pb < 0) return -1;
    l = &net->layers[ix];
    l->p_w = pw, l->p_a = pa, l->p_b = pb, l->p_m = pm, l->p_v = pv;
    return net->n_layers;
}

static int b_pool(fn_tnet *net, int x, lkind kind, int k, int stride, fn_padding pad, int stage) {
    if (x < 0) return -1;
    int h, w, c;
    value_shape(net, x, &h, &w, &c);
    layer *l = add_layer(net, kind, x, -1, stage);
    if (!l) return -1;
    l->k = k, l->stride = stride, l->pad = pad, l->c = c;
    if (fn_window_out(h, k, stride, pad, &l->h, NULL) || fn_window_out(w, k, stride, pad, &l->w, NULL)) return -1;
    return net->n_layers;
}

static int b_add(fn_tnet *net, int a, int b, int stage) {
    if (a < 0 || b < 0) return -1;
    int ha, wa, ca, hb, wb, cb;
    value_shape(net, a, &ha, &wa, &ca);
    value_shape(net, b, &hb, &wb, &cb);
    layer *l = add_layer(net, L_ADD, a, b, stage);
    if (!l) return -1;
    l->relu = 1;
    l->h = ha > hb ? ha : hb;
    l->w = wa > wb ? wa : wb;
    l->c = ca > cb ? ca : cb;
    return net->n_layers;
}

static int b_head(fn_tnet *net, int x, int fc_in, int dim, int stage) {
    if (x < 0) return -1;
    int h, w, c;
    value_shape(net, x, &h, &w, &c);
    layer *l = add_layer(net, L_MEAN, x, -1, stage);
    if (!l || c != fc_in) return -1;
    l->h = l->w = 1, l->c = c;
    int v = net->n_layers;
    l = add_layer(net, L_DENSE, v, -1, stage);
    if (!l) return -1;
    l->h = l->w = 1, l->c = dim;
    const int64_t fs[2] = {fc_in, dim};
    int p = add_param(net, "", "fc", 2, fs, 1, 1, stage);
    if (p < 0) return -1;
    net->layers[net->n_layers - 1].p_w = p;
    return net->n_layers;
}

/* The residual blocks of a layer table; stages advance with the width. */
static int b_blocks(fn_tnet *net, int v, const fn_resnet_block *blocks, int n, fn_padding down_pad, int *stage) {
    int width = -1;
    for (int i = 0; i < n && v >= 0; i++) {
        const fn_resnet_block *b = &blocks[i];
        if (b->cout != width) (*stage)++, width = b->cout;
        char p1[96], p2[96];
        snprintf(p1, sizeof p1, "%s/conv1", b->name);
        snprintf(p2, sizeof p2, "%s/conv2", b->name);
        int shortcut = b->down ? b_pool(net, v, L_AVGPOOL, 2, 2, FN_PAD_VALID, *stage) : v;
        int m = b_conv(net, v, p1, 3, b->cin, b->cout, b->down ? 2 : 1, b->down ? down_pad : FN_PAD_SAME, 1,
                       *stage);
        m = b_conv(net, m, p2, 3, b->cout, b->cout, 1, FN_PAD_SAME, 0, *stage);
        v = b_add(net, m, shortcut, *stage);
    }
    return v;
}

static int is_resnet29(const char *arch) { return !strcmp(arch, "resnet29") || !strcmp(arch, "dlib_resnet29"); }
static int is_small(const char *arch) { return !strcmp(arch, "small") || !strcmp(arch, FN_SMALL_ARCH); }

/* The layers and parameters (values zero) of an architecture. */
static fn_tnet *build(const char *arch, int size, norm_kind norm, fn_error *e) {
    if (!arch || (!is_resnet29(arch) && !is_small(arch))) {
        fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "unknown architecture \"%.60s\" (known: resnet29, small)",
                arch ? arch : "(null)");
        return NULL;
    }
    fn_tnet *net = calloc(1, sizeof *net);
    if (!net) {
        fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        return NULL;
    }
    net->norm = norm;
    int stage = 0, v;
    if (is_resnet29(arch)) {
        snprintf(net->arch, sizeof net->arch, "resnet29");
        net->file_arch = "dlib_resnet29";
        net->size = FN_RESNET29_INPUT;
        net->dim = FN_RESNET29_DIM;
        v = b_conv(net, 0, "conv32_down", 7, 3, 32, 2, FN_PAD_VALID, 1, stage);
        v = b_pool(net, v, L_MAXPOOL, 3, 2, FN_PAD_VALID, stage);
        v = b_blocks(net, v, fn_resnet29_blocks, FN_RESNET29_BLOCKS, FN_PAD_VALID, &stage);
        v = b_head(net, v, 256, FN_RESNET29_DIM, stage + 1);
    } else {
        snprintf(net->arch, sizeof net->arch, "small");
        net->file_arch = FN_SMALL_ARCH;
        net->size = size > 0 ? size : FN_SMALL_INPUT;
        net->dim = FN_SMALL_DIM;
        v = size > 0 && (size < 16 || size > 512) ? -1
                                                  : b_conv(net, 0, FN_SMALL_STEM, 3, 3, FN_SMALL_STEM_C, 2,
                                                           FN_PAD_SAME, 1, stage);
        v = b_blocks(net, v, fn_small_blocks, FN_SMALL_BLOCKS, FN_PAD_SAME, &stage);
        v = b_head(net, v, FN_SMALL_FC_IN, FN_SMALL_DIM, stage + 1);
    }
    if (v < 0) {
        fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory building the %s network (or a bad input size)", arch);
        fn_tnet_free(net);
        return NULL;
    }
    for (int i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        size_t per = (size_t)l->h * l->w * l->c;
        if (per > net->max_value) net->max_value = per;
    }
    size_t in = (size_t)net->size * net->size * 3;
    if (in > net->max_value) net->max_value = in;
    return net;
}

static void init_weights(fn_tnet *net, uint64_t seed) {
    fn_rng r;
    fn_rng_seed(&r, seed);
    for (int i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        if (l->kind != L_CONV && l->kind != L_DENSE) continue;
        fn_param *w = &net->params[l->p_w];
        /* He normal on the fan-in: filters k*k*cin, fc its input width. */
        double fan = l->kind == L_CONV ? (double)l->d.kh * l->d.kw * l->d.cin : (double)w->shape[0];
        float sd = (float)sqrt((l->kind == L_CONV ? 2.0 : 1.0) / fan);
        for (size_t j = 0; j < w->size; j++) w->value[j] = sd * fn_rng_normal(&r);
        if (l->kind == L_DENSE) continue;
        fn_param *a = &net->params[l->p_a];
        for (size_t j = 0; j < a->size; j++) a->value[j] = 1.0f;
        if (l->p_v >= 0)
            for (size_t j = 0; j < a->size; j++) net->params[l->p_v].value[j] = 1.0f;
    }
}

fn_tnet *fn_tnet_create_size(const char *arch, int input_size, uint64_t seed, fn_error *e) {
    if (input_size > 0 && arch && is_resnet29(arch) && input_size != FN_RESNET29_INPUT) {
        fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "resnet29 takes %d px chips, not %d", FN_RESNET29_INPUT,
                input_size);
        return NULL;
    }
    fn_tnet *net = build(arch, input_size, NORM_BN, e);
    if (net) init_weights(net, seed);
    return net;
}

fn_tnet *fn_tnet_create(const char *arch, uint64_t seed, fn_error *e) {
    return fn_tnet_create_size(arch, 0, seed, e);
}

/* Copy a model's tensor into dst (size floats), checking its element count. */
static int copy_tensor(const facenet_model *m, const char *name, float *dst, size_t size, fn_error *e) {
    const fn_st_tensor *t = fn_st_find(m->file, name);
    if (!t) return fn_fail(e, FACENET_ERR_MODEL, "%s: tensor '%s' is missing", m->path, name), -1;
    if (t->nelem != size)
        return fn_fail(e, FACENET_ERR_MODEL, "%s: tensor '%s' has %zu values, the network needs %zu", m->path,
                       name, t->nelem, size),
               -1;
    return fn_st_to_f32(t, dst, size, e) == FACENET_OK ? 0 : -1;
}

fn_tnet *fn_tnet_from_model(const facenet_model *m, fn_error *e) {
    if (!m || !m->arch || m->arch->kind != FN_ARCH_EMBEDDING ||
        (!is_resnet29(m->arch->name) && !is_small(m->arch->name))) {
        fn_fail(e, FACENET_ERR_UNSUPPORTED, "%s: only dlib_resnet29 and %s models can be fine-tuned",
                m ? m->path : "(null)", FN_SMALL_ARCH);
        return NULL;
    }
    fn_tnet *net = build(m->arch->name, is_small(m->arch->name) ? m->input_size : 0, NORM_AFFINE, e);
    if (!net) return NULL;
    for (int i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        char name[160];
        if (l->kind == L_DENSE) {
            if (copy_tensor(m, "fc", net->params[l->p_w].value, net->params[l->p_w].size, e)) goto fail;
            continue;
        }
        if (l->kind != L_CONV) continue;
        fn_param *w = &net->params[l->p_w], *s = &net->params[l->p_a], *t = &net->params[l->p_b];
        snprintf(name, sizeof name, "%s/conv/filters", l->prefix);
        if (copy_tensor(m, name, w->value, w->size, e)) goto fail;
        snprintf(name, sizeof name, "%s/scale/weights", l->prefix);
        if (copy_tensor(m, name, s->value, s->size, e)) goto fail;
        snprintf(name, sizeof name, "%s/scale/biases", l->prefix);
        if (copy_tensor(m, name, t->value, t->size, e)) goto fail;
        /* (conv + b) * s + t = conv * s + (b * s + t): the bias joins the shift. */
        snprintf(name, sizeof name, "%s/conv/bias", l->prefix);
        if (copy_tensor(m, name, t->grad, t->size, e)) goto fail;
        for (size_t j = 0; j < t->size; j++) t->value[j] += t->grad[j] * s->value[j], t->grad[j] = 0.0f;
    }
    return net;
fail:
    fn_tnet_free(net);
    return NULL;
}

static void free_batch(fn_tnet *net) {
    for (int i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        free(l->z);
        free(l->out);
        free(l->bn_k);
        l->z = l->out = l->bn_k = NULL;
    }
    if (net->dval)
        for (int v = 0; v <= net->n_layers; v++) free(net->dval[v]);
    free(net->dval);
    free(net->x);
    free(net->tmp);
    net->dval = NULL;
    net->x = net->tmp = NULL;
    net->n_alloc = 0;
}

void fn_tnet_free(fn_tnet *net) {
    if (!net) return;
    free_batch(net);
    for (int i = 0; i < net->n_params; i++) {
        free((char *)net->params[i].name);
        free(net->params[i].value);
        free(net->params[i].grad);
    }
    free(net->params);
    free(net->param_stage);
    free(net->layers);
    free(net);
}

const char *fn_tnet_arch(const fn_tnet *net) { return net->arch; }
int fn_tnet_input_size(const fn_tnet *net) { return net->size; }
int fn_tnet_dim(const fn_tnet *net) { return net->dim; }
int fn_tnet_n_params(const fn_tnet *net) { return net->n_params; }
fn_param *fn_tnet_param(fn_tnet *net, int i) { return i >= 0 && i < net->n_params ? &net->params[i] : NULL; }

void fn_tnet_freeze_stages(fn_tnet *net, int n_stages) {
    net->frozen_stages = n_stages < 0 ? 0 : n_stages;
    for (int i = 0; i < net->n_params; i++) net->params[i].frozen = net->param_stage[i] < net->frozen_stages;
}

static int layer_frozen(const fn_tnet *net, const layer *l) { return l->stage < net->frozen_stages; }

/* ------------------------------------------------------------ forward */

/* Buffers for a batch of n (kept for the largest n seen). */
static int ensure_batch(fn_tnet *net, int n) {
    if (n <= net->n_alloc) return 0;
    free_batch(net);
    net->dval = calloc((size_t)net->n_layers + 1, sizeof *net->dval);
    net->x = alloc_floats((size_t)n * net->size * net->size * 3);
    net->tmp = alloc_floats((size_t)n * net->max_value);
    if (!net->dval || !net->x || !net->tmp) goto oom;
    for (int i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        size_t count = (size_t)n * l->h * l->w * l->c;
        if (!(l->out = alloc_floats(count))) goto oom;
        if (l->kind == L_CONV && (!(l->z = alloc_floats(count)) || !(l->bn_k = alloc_floats(2 * (size_t)l->c))))
            goto oom;
    }
    for (int v = 0; v <= net->n_layers; v++) {
        int h, w, c;
        value_shape(net, v, &h, &w, &c);
        if (!(net->dval[v] = alloc_floats((size_t)n * h * w * c))) goto oom;
    }
    net->n_alloc = n;
    return 0;
oom:
    free_batch(net);
    return -1;
}

static fn_tensor value(const fn_tnet *net, int v) {
    int h, w, c;
    value_shape(net, v, &h, &w, &c);
    return fn_tensor_make(net->n, h, w, c, v == 0 ? net->x : net->layers[v - 1].out);
}

static fn_tensor grad_of(const fn_tnet *net, int v) {
    fn_tensor t = value(net, v);
    t.data = net->dval[v];
    return t;
}

/* Elementwise loops over a value, parallel over row chunks. */
typedef struct ew_job {
    const float *a, *b, *s, *t;
    float *o;
    size_t rows;
    int c, relu, mode;
} ew_job;

enum { EW_AFFINE, EW_ADD, EW_ACC, EW_RELU_MASK };

static void ew_rows(void *vp, int begin, int end) {
    const ew_job *j = vp;
    const int c = j->c;
    const size_t r0 = j->rows * (size_t)begin / 64, r1 = j->rows * (size_t)end / 64;
    for (size_t r = r0; r < r1; r++) {
        const size_t off = r * (size_t)c;
        float *o = j->o + off;
        const float *a = j->a + off;
        switch (j->mode) {
        case EW_AFFINE: /* o = relu?(a * s + t) */
            for (int i = 0; i < c; i++) {
                float v = a[i] * j->s[i] + j->t[i];
                o[i] = j->relu && v < 0.0f ? 0.0f : v;
            }
            break;
        case EW_ADD: { /* o = relu?(a + b) */
            const float *b = j->b + off;
            for (int i = 0; i < c; i++) {
                float v = a[i] + b[i];
                o[i] = j->relu && v < 0.0f ? 0.0f : v;
            }
            break;
        }
        case EW_ACC: /* o += a */
            for (int i = 0; i < c; i++) o[i] += a[i];
            break;
        case EW_RELU_MASK: /* o = a > 0 ? o : 0 (a: the ReLU's output) */
            for (int i = 0; i < c; i++) o[i] = a[i] > 0.0f ? o[i] : 0.0f;
            break;
        }
    }
}

static void ew(const fn_exec *ex, int mode, const fn_tensor *shape, float *o, const float *a, const float *b,
               const float *s, const float *t, int relu) {
    ew_job j = {a, b, s, t, o, fn_tensor_count(shape) / (size_t)shape->c, shape->c, relu, mode};
    fn_parallel_for(ex, 64, 1, ew_rows, &j);
}

static int forward_conv(fn_tnet *net, const fn_exec *ex, layer *l, int training) {
    fn_tensor x = value(net, l->in[0]), out = value(net, (int)(l - net->layers) + 1);
    fn_tensor z = out;
    z.data = l->z;
    l->d.weights = net->params[l->p_w].value;
    fn_conv2d_train(ex, &x, &l->d, &z);
    const float *a = net->params[l->p_a].value, *b = net->params[l->p_b].value;
    const int c = l->c;
    l->bn_batch = 0;
    if (net->norm == NORM_AFFINE) {
        ew(ex, EW_AFFINE, &out, out.data, z.data, NULL, a, b, l->relu);
        return 0;
    }
    float *mean = net->params[l->p_m].value, *var = net->params[l->p_v].value;
    if (training && !layer_frozen(net, l)) {
        if (fn_batchnorm_train(ex, &z, a, b, BN_EPS, BN_MOMENTUM, mean, var, l->bn_k, l->bn_k + c,
                               l->relu ? FN_ACT_RELU : FN_ACT_NONE, &out))
            return -1;
        l->bn_batch = 1;
        return 0;
    } else {
        /* Running averages: a per-channel affine, kept for backward in bn_k. */
        float *s = l->bn_k, *t = l->bn_k + c;
        for (int i = 0; i < c; i++) {
            s[i] = (float)(a[i] / sqrt((double)var[i] + BN_EPS));
            t[i] = b[i] - mean[i] * s[i];
        }
        ew(ex, EW_AFFINE, &out, out.data, z.data, NULL, s, t, l->relu);
    }
    return 0;
}

int fn_tnet_forward(fn_tnet *net, const fn_exec *ex, const float *x, int n, float *emb, int training,
                    fn_error *e) {
    if (n <= 0 || !x || !emb) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_tnet_forward: bad arguments"), -1;
    if (ensure_batch(net, n))
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for a batch of %d at %d px", n, net->size), -1;
    net->n = n;
    net->trained = 0;
    memcpy(net->x, x, sizeof(float) * (size_t)n * net->size * net->size * 3);
    for (int i = 0; i < net->n_layers; i++) {
        layer *l = &net->layers[i];
        fn_tensor a = value(net, l->in[0]), out = value(net, i + 1);
        switch (l->kind) {
        case L_CONV:
            if (forward_conv(net, ex, l, training))
                return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory in batch norm"), -1;
            break;
        case L_MAXPOOL: fn_maxpool(ex, &a, l->k, l->stride, l->pad, &out); break;
        case L_AVGPOOL: fn_avgpool(ex, &a, l->k, l->stride, l->pad, &out); break;
        case L_ADD: {
            fn_tensor b = value(net, l->in[1]);
            if (a.h == out.h && a.w == out.w && a.c == out.c && b.h == out.h && b.w == out.w && b.c == out.c) {
                ew(ex, EW_ADD, &out, out.data, a.data, b.data, NULL, NULL, l->relu);
            } else {
                fn_add_zero_extended(&a, &b, &out);
                if (l->relu) fn_activate(&out, FN_ACT_RELU, 0.0f);
            }
            break;
        }
        case L_MEAN: fn_global_mean(&a, &out); break;
        case L_DENSE: fn_ref_dense(ex, &a, net->params[l->p_w].value, NULL, &out); break;
        }
    }
    memcpy(emb, net->layers[net->n_layers - 1].out, sizeof(float) * (size_t)n * net->dim);
    net->trained = training ? 1 : 0;
    return 0;
}

/* ------------------------------------------------------------ backward */

/* Put the gradient g (a tensor of value v's shape) into value v's gradient:
 * copied the first time, added after. */
static void give(fn_tnet *net, const fn_exec *ex, unsigned char *have, int v, const fn_tensor *g) {
    if (!have[v]) {
        if (g->data != net->dval[v]) memcpy(net->dval[v], g->data, fn_tensor_count(g) * sizeof(float));
        have[v] = 1;
        return;
    }
    ew(ex, EW_ACC, g, net->dval[v], g->data, NULL, NULL, NULL, 0);
}

/* Where a backward kernel writes the gradient of value v: straight into it
 * when it has none yet, else into the scratch buffer (then given). */
static fn_tensor target(const fn_tnet *net, const unsigned char *have, int v) {
    fn_tensor t = value(net, v);
    t.data = have[v] ? net->tmp : net->dval[v];
    return t;
}

static int backward_conv(fn_tnet *net, const fn_exec *ex, int i, unsigned char *have, int need_dx) {
    layer *l = &net->layers[i];
    const int frozen = layer_frozen(net, l);
    fn_tensor g = grad_of(net, i + 1), out = value(net, i + 1), x = value(net, l->in[0]);
    fn_tensor z = out;
    z.data = l->z;
    fn_param *pa = &net->params[l->p_a], *pb = &net->params[l->p_b], *pw = &net->params[l->p_w];
    if (l->bn_batch) { /* the ReLU's mask goes in with batch norm's passes */
        if (fn_batchnorm_backward(ex, &z, l->relu ? &out : NULL, &g, pa->value, l->bn_k, l->bn_k + l->c, &g,
                                  pa->grad, pb->grad))
            return -1;
    } else {
        if (l->relu) ew(ex, EW_RELU_MASK, &g, g.data, out.data, NULL, NULL, NULL, 0);
        const float *s = net->norm == NORM_AFFINE ? pa->value : l->bn_k;
        fn_scale_shift_backward(&z, &g, s, &g, frozen || net->norm != NORM_AFFINE ? NULL : pa->grad,
                                frozen || net->norm != NORM_AFFINE ? NULL : pb->grad);
    }
    l->d.weights = pw->value;
    fn_tensor dx = {0};
    if (need_dx) dx = target(net, have, l->in[0]);
    fn_conv2d_backward_both(ex, &x, &g, &l->d, need_dx ? &dx : NULL, frozen ? NULL : pw->grad);
    if (need_dx) give(net, ex, have, l->in[0], &dx);
    return 0;
}

int fn_tnet_backward(fn_tnet *net, const fn_exec *ex, const float *d_emb, fn_error *e) {
    if (!net->trained || !d_emb)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_tnet_backward: no training forward pass before it"), -1;
    unsigned char *have = calloc((size_t)net->n_layers + 1, 1);
    if (!have) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory"), -1;
    /* The first layer that learns: nothing below it needs a gradient. */
    int first = net->n_layers;
    for (int i = 0; i < net->n_layers; i++)
        if ((net->layers[i].kind == L_CONV || net->layers[i].kind == L_DENSE) && !layer_frozen(net, &net->layers[i])) {
            first = i;
            break;
        }
    const int last = net->n_layers;
    memcpy(net->dval[last], d_emb, sizeof(float) * (size_t)net->n * net->dim);
    have[last] = 1;
    int rc = 0;
    for (int i = net->n_layers - 1; i >= first && rc == 0; i--) {
        layer *l = &net->layers[i];
        if (!have[i + 1]) continue;
        const int need_dx = l->in[0] > first; /* value v is made by layer v - 1 */
        fn_tensor g = grad_of(net, i + 1), a = value(net, l->in[0]);
        switch (l->kind) {
        case L_CONV: rc = backward_conv(net, ex, i, have, need_dx); break;
        case L_MAXPOOL:
        case L_AVGPOOL:
            if (need_dx) {
                fn_tensor dx = target(net, have, l->in[0]);
                if (l->kind == L_MAXPOOL)
                    fn_maxpool_backward(ex, &a, &g, l->k, l->stride, l->pad, &dx);
                else
                    fn_avgpool_backward(ex, &g, l->k, l->stride, l->pad, &dx);
                give(net, ex, have, l->in[0], &dx);
            }
            break;
        case L_ADD: {
            fn_tensor out = value(net, i + 1);
            if (l->relu) ew(ex, EW_RELU_MASK, &g, g.data, out.data, NULL, NULL, NULL, 0);
            int moved = 0;
            for (int k = 0; k < 2; k++) {
                int v = l->in[k];
                if (v <= first) continue;
                fn_tensor dv = target(net, have, v);
                const int same = dv.h == g.h && dv.w == g.w && dv.c == g.c;
                if (same && !have[v] && !moved && l->in[0] != l->in[1]) {
                    /* The gradient passes as it is: hand over its buffer
                     * (this value's gradient is not read again). */
                    float *t = net->dval[v];
                    net->dval[v] = net->dval[i + 1];
                    net->dval[i + 1] = t;
                    have[v] = 1;
                    moved = 1;
                    continue;
                }
                if (same)
                    dv.data = g.data;
                else
                    fn_add_zero_extended_backward(&g, &dv, NULL);
                give(net, ex, have, v, &dv);
            }
            break;
        }
        case L_MEAN:
            if (need_dx) {
                fn_tensor dx = target(net, have, l->in[0]);
                fn_global_mean_backward(&g, &dx);
                give(net, ex, have, l->in[0], &dx);
            }
            break;
        case L_DENSE: {
            fn_tensor dx = target(net, have, l->in[0]);
            fn_param *w = &net->params[l->p_w];
            fn_dense_backward(ex, &a, w->value, &g, need_dx ? &dx : NULL, layer_frozen(net, l) ? NULL : w->grad,
                              NULL);
            if (need_dx) give(net, ex, have, l->in[0], &dx);
            break;
        }
        }
    }
    free(have);
    if (rc) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory in batch norm"), -1;
    return 0;
}

/* ------------------------------------------------------------ saving */

int fn_tnet_save(const fn_tnet *net, const char *path, const char *const *meta, fn_error *e) {
    const fn_arch_info *arch = fn_arch_find(net->file_arch);
    int n_conv = 0;
    size_t n_floats = 0;
    for (int i = 0; i < net->n_layers; i++)
        if (net->layers[i].kind == L_CONV) n_conv++, n_floats += 3 * (size_t)net->layers[i].c;
    size_t n_entries = (size_t)n_conv * 4 + 1, n_user = 0;
    while (meta && meta[2 * n_user] && meta[2 * n_user + 1]) n_user++;
    fn_st_entry *ent = calloc(n_entries, sizeof *ent);
    int64_t *shapes = calloc(n_entries * 4, sizeof *shapes);
    char *names = calloc(n_entries, 160);
    float *folded = alloc_floats(n_floats);
    const char **m = calloc(16 + 2 * n_user, sizeof *m);
    int rc = -1;
    if (!arch || !ent || !shapes || !names || !folded || !m) {
        fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory saving the network");
        goto done;
    }
    size_t k = 0;
    float *f = folded;
    for (int i = 0; i < net->n_layers; i++) {
        const layer *l = &net->layers[i];
        if (l->kind == L_DENSE) {
            const fn_param *w = &net->params[l->p_w];
            ent[k] = (fn_st_entry){"fc", FN_DTYPE_F32, 2, w->shape, w->value};
            k++;
            continue;
        }
        if (l->kind != L_CONV) continue;
        const int c = l->c;
        const fn_param *w = &net->params[l->p_w], *a = &net->params[l->p_a], *b = &net->params[l->p_b];
        float *bias = f, *scale = f + c, *shift = f + 2 * c;
        f += 3 * c;
        for (int j = 0; j < c; j++) {
            bias[j] = 0.0f;
            if (net->norm == NORM_AFFINE) {
                scale[j] = a->value[j];
                shift[j] = b->value[j];
            } else {
                const float *mean = net->params[l->p_m].value, *var = net->params[l->p_v].value;
                double s = a->value[j] / sqrt((double)var[j] + BN_EPS);
                scale[j] = (float)s;
                shift[j] = (float)(b->value[j] - mean[j] * s);
            }
        }
        static const char *const SUFFIX[4] = {"conv/filters", "conv/bias", "scale/weights", "scale/biases"};
        const float *data[4] = {w->value, bias, scale, shift};
        for (int t = 0; t < 4; t++, k++) {
            char *nm = names + k * 160;
            snprintf(nm, 160, "%s/%s", l->prefix, SUFFIX[t]);
            int64_t *sh = shapes + k * 4;
            if (t == 0)
                memcpy(sh, w->shape, sizeof(int64_t) * 4);
            else
                sh[0] = c;
            ent[k] = (fn_st_entry){nm, FN_DTYPE_F32, t == 0 ? 4 : 1, sh, data[t]};
        }
    }
    char input_size[24], emb_size[24];
    snprintf(input_size, sizeof input_size, "%d", net->size);
    snprintf(emb_size, sizeof emb_size, "%d", net->dim);
    const char *const ours[14] = {FN_META_FORMAT,     "facenet",       FN_META_FORMAT_VERSION, "1",
                                  FN_META_ARCH,       arch->name,      FN_META_KIND,           arch->kind_name,
                                  FN_META_INPUT_SIZE, input_size,      FN_META_PREPROCESS,     arch->preprocess,
                                  FN_META_EMBEDDING_SIZE, emb_size};
    size_t nm = 7;
    memcpy(m, ours, sizeof ours);
    for (size_t u = 0; u < n_user; u++) {
        /* A caller's key replaces ours of the same name. */
        size_t j = 0;
        while (j < nm && strcmp(m[2 * j], meta[2 * u]) != 0) j++;
        m[2 * j] = meta[2 * u];
        m[2 * j + 1] = meta[2 * u + 1];
        if (j == nm) nm++;
    }
    rc = fn_st_write(path, ent, k, m, nm, e) == FACENET_OK ? 0 : -1;
done:
    free(ent);
    free(shapes);
    free(names);
    free(folded);
    free(m);
    return rc;
}
