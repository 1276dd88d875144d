/*
 * optim.c - the optimizers: AdaGrad (the FaceNet paper's, lr 0.05), SGD
 * with momentum, Adam; L2 weight decay and global-norm gradient clipping.
 *
 * A step: the global norm of the loss gradient over the parameters that
 * learn (not frozen, not buffers), clipping to clip_norm when it is over,
 * then weight decay (g += decay * w on filters and fc), then the update:
 *   AdaGrad  acc += g^2; w -= lr g / sqrt(acc)      (acc starts at eps, as TF's
 *                                                   initial accumulator 0.1)
 *   SGD      v = momentum v + g; w -= lr v
 *   Adam     m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 *            w -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps)
 * and every gradient (frozen ones too) is zeroed. The state tensors are
 * named "<param>/accum", "<param>/momentum", "<param>/m", "<param>/v", and
 * "optim/step" (the step count, one float).
 *
 * With ema > 0 the optimizer also keeps an exponential moving average of
 * every tensor of the network, batch norm's running statistics included
 * ("<param>/ema"), updated after each step with the decay
 * min(ema, (1 + t) / (10 + t)) (t: steps done) so that the first steps do not
 * drag the initial weights along; fn_optim_swap_ema puts it in the network
 * for validation and export, and back. Being optimizer state, it is saved in
 * checkpoints with the rest.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/train.h"

struct fn_optim {
    fn_optim_params p;
    fn_tnet *net;
    fn_param *state;
    int n_state;
    int *slot; /* per net param: its first state index, or -1 */
    int *ema;  /* per net param: its moving average's state index (ema > 0) */
    float step;
};

static int add_state(fn_optim *o, const fn_param *of, const char *suffix, float init) {
    fn_param *s = &o->state[o->n_state];
    memset(s, 0, sizeof *s);
    char name[192];
    snprintf(name, sizeof name, "%s/%s", of->name, suffix);
    char *nm = strdup(name);
    s->value = malloc(sizeof(float) * (of->size ? of->size : 1));
    if (!nm || !s->value) {
        free(nm);
        free(s->value);
        s->value = NULL;
        return -1;
    }
    s->name = nm;
    s->size = of->size;
    s->rank = of->rank;
    memcpy(s->shape, of->shape, sizeof s->shape);
    for (size_t i = 0; i < s->size; i++) s->value[i] = init;
    return o->n_state++;
}

fn_optim *fn_optim_create(const fn_optim_params *p, fn_tnet *net, fn_error *e) {
    fn_optim *o = calloc(1, sizeof *o);
    const int np = fn_tnet_n_params(net);
    if (!o || !p) {
        free(o);
        fn_fail(e, p ? FACENET_ERR_NO_MEMORY : FACENET_ERR_INVALID_ARGUMENT, "fn_optim_create: %s",
                p ? "out of memory" : "no parameters");
        return NULL;
    }
    o->p = *p;
    o->net = net;
    o->slot = malloc(sizeof(int) * (size_t)(np ? np : 1));
    o->ema = malloc(sizeof(int) * (size_t)(np ? np : 1));
    o->state = calloc((size_t)np * 3 + 1, sizeof *o->state);
    if (!o->slot || !o->ema || !o->state) goto oom;
    for (int i = 0; i < np; i++) {
        const fn_param *q = fn_tnet_param(net, i);
        o->slot[i] = -1;
        if (!q->grad) continue;
        int s = -1;
        switch (p->kind) {
        case FN_OPTIM_ADAGRAD: s = add_state(o, q, "accum", p->eps); break;
        case FN_OPTIM_SGD: s = add_state(o, q, "momentum", 0.0f); break;
        case FN_OPTIM_ADAM:
            s = add_state(o, q, "m", 0.0f);
            if (s >= 0 && add_state(o, q, "v", 0.0f) < 0) s = -1;
            break;
        }
        if (s < 0) goto oom;
        o->slot[i] = s;
    }
    for (int i = 0; i < np && p->ema > 0.0f; i++) {
        const fn_param *q = fn_tnet_param(net, i);
        if ((o->ema[i] = add_state(o, q, "ema", 0.0f)) < 0) goto oom;
        memcpy(o->state[o->ema[i]].value, q->value, sizeof(float) * q->size);
    }
    /* The step count, a one-float tensor. */
    fn_param *st = &o->state[o->n_state++];
    st->name = strdup("optim/step");
    st->value = &o->step;
    st->size = 1;
    st->rank = 1;
    st->shape[0] = 1;
    if (!st->name) goto oom;
    return o;
oom:
    fn_optim_free(o);
    fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for the optimizer's state");
    return NULL;
}

void fn_optim_free(fn_optim *o) {
    if (!o) return;
    for (int i = 0; i < o->n_state; i++) {
        free((char *)o->state[i].name);
        if (o->state[i].value != &o->step) free(o->state[i].value);
    }
    free(o->state);
    free(o->slot);
    free(o->ema);
    free(o);
}

int fn_optim_n_state(const fn_optim *o) { return o->n_state; }
fn_param *fn_optim_state(fn_optim *o, int i) { return i >= 0 && i < o->n_state ? &o->state[i] : NULL; }

/* Sum of squares of n floats: float lanes over blocks, blocks in double. */
static double sum_squares(const float *g, size_t n) {
    double ss = 0.0;
    for (size_t b = 0; b < n; b += 1024) {
        const size_t e = b + 1024 < n ? b + 1024 : n;
        float f = 0.0f;
        for (size_t j = b; j < e; j++) f += g[j] * g[j];
        ss += f;
    }
    return ss;
}

float fn_optim_step(fn_optim *o, float lr) {
    const int np = fn_tnet_n_params(o->net);
    double ss = 0.0;
    for (int i = 0; i < np; i++) {
        const fn_param *q = fn_tnet_param(o->net, i);
        if (q->grad && !q->frozen) ss += sum_squares(q->grad, q->size);
    }
    const double norm = sqrt(ss);
    const float clip = o->p.clip_norm > 0.0f && norm > o->p.clip_norm ? (float)(o->p.clip_norm / norm) : 1.0f;
    o->step += 1.0f;
    const double t = o->step;
    const float b1 = o->p.beta1, b2 = o->p.beta2, mom = o->p.momentum, eps = o->p.eps;
    const float c1 = (float)(1.0 - pow(b1, t)), c2 = (float)(1.0 - pow(b2, t));
    for (int i = 0; i < np; i++) {
        fn_param *q = fn_tnet_param(o->net, i);
        if (!q->grad) continue;
        if (!q->frozen && o->slot[i] >= 0) {
            float *w = q->value, *gr = q->grad, *s0 = o->state[o->slot[i]].value;
            const float wd = q->decay ? o->p.weight_decay : 0.0f;
            const size_t n = q->size;
            /* One loop per kind, so that each vectorizes. */
            switch (o->p.kind) {
            case FN_OPTIM_ADAGRAD:
                for (size_t j = 0; j < n; j++) {
                    const float g = gr[j] * clip + wd * w[j];
                    s0[j] += g * g;
                    if (s0[j] > 0.0f) w[j] -= lr * g / sqrtf(s0[j]);
                }
                break;
            case FN_OPTIM_SGD:
                for (size_t j = 0; j < n; j++) {
                    s0[j] = mom * s0[j] + gr[j] * clip + wd * w[j];
                    w[j] -= lr * s0[j];
                }
                break;
            case FN_OPTIM_ADAM: {
                float *v = o->state[o->slot[i] + 1].value;
                for (size_t j = 0; j < n; j++) {
                    const float g = gr[j] * clip + wd * w[j];
                    s0[j] = b1 * s0[j] + (1.0f - b1) * g;
                    v[j] = b2 * v[j] + (1.0f - b2) * g * g;
                    w[j] -= lr * (s0[j] / c1) / (sqrtf(v[j] / c2) + eps);
                }
                break;
            }
            }
        }
        memset(q->grad, 0, q->size * sizeof(float));
    }
    if (o->p.ema > 0.0f) {
        const float d = fminf(o->p.ema, (float)((1.0 + t) / (10.0 + t)));
        for (int i = 0; i < np; i++) {
            const fn_param *q = fn_tnet_param(o->net, i);
            float *a = o->state[o->ema[i]].value;
            for (size_t j = 0; j < q->size; j++) a[j] = d * a[j] + (1.0f - d) * q->value[j];
        }
    }
    return (float)norm;
}

int fn_optim_swap_ema(fn_optim *o) {
    if (!(o->p.ema > 0.0f)) return 0;
    const int np = fn_tnet_n_params(o->net);
    for (int i = 0; i < np; i++) {
        fn_param *q = fn_tnet_param(o->net, i);
        float *a = o->state[o->ema[i]].value;
        for (size_t j = 0; j < q->size; j++) {
            const float w = q->value[j];
            q->value[j] = a[j];
            a[j] = w;
        }
    }
    return 1;
}
