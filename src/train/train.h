/*
 * train.h - learning an embedding with the triplet loss: the trainable
 * network, the loss with online triplet selection, and the optimizers.
 *
 * The pieces, each in its own file of src/train/:
 *   net.c     a trainable network: its layers, parameters, gradients and
 *             the activations kept for the backward pass (the backward
 *             kernels of each op live beside the forward ones, in
 *             src/engine/ref/, declared in engine/backward.h);
 *   triplet.c the triplet loss on L2-normalized embeddings with selection
 *             inside the mini-batch (semi-hard, hardest, random violating,
 *             batch-all);
 *   optim.c   AdaGrad, SGD with momentum, Adam; weight decay, clipping.
 * The data side (folder-per-identity datasets, the P x K sampler, the chip
 * cache, augmentation, the loader thread) is dataset.h; the loop that ties
 * them together with checkpoints and validation is the public trainer API
 * (src/api/train.c, facenet.h).
 *
 *   fn_tnet *net = fn_tnet_create("small", seed, &e);          // or _from_model
 *   fn_optim *opt = fn_optim_create(&op, net, &e);
 *   for (;;) {
 *       fn_tnet_forward(net, &ex, x, n, emb, 1);               // raw, n x dim
 *       fn_triplet_loss(emb, labels, n, dim, &tp, &rng, grad, &stats);
 *       fn_tnet_backward(net, &ex, grad);                      // fills param grads
 *       fn_optim_step(opt, lr);                                // and zeroes them
 *   }
 *   fn_tnet_save(net, "out.safetensors", &meta, &e);           // a facenet model
 */
#ifndef FN_TRAIN_H
#define FN_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "engine/engine.h"

/* ------------------------------------------------------------ random numbers */

/* A small seeded generator (splitmix64 / xoshiro-class): every random choice
 * of a training run draws from one of these, so a seed reproduces a run. */
typedef struct fn_rng {
    uint64_t s[4];
} fn_rng;
void fn_rng_seed(fn_rng *r, uint64_t seed);
uint64_t fn_rng_next(fn_rng *r);
double fn_rng_uniform(fn_rng *r);         /* [0, 1) */
int fn_rng_below(fn_rng *r, int n);       /* [0, n), n > 0 */
float fn_rng_normal(fn_rng *r);           /* N(0, 1) */

/* ------------------------------------------------------------ the network */

typedef struct fn_tnet fn_tnet;

/* One tensor of the network's state: the values, their gradient (same
 * size), a name ("conv32_1/conv/filters", "conv32_1/bn/gamma"), its shape,
 * and whether it is frozen (fine-tuning early stages: no gradient is
 * applied). grad is NULL for a buffer: batch norm's running mean and
 * variance, saved in checkpoints but never optimized. A checkpoint is every
 * fn_tnet_param and every fn_optim_state by name; resuming copies them back
 * by name. */
typedef struct fn_param {
    const char *name;
    float *value, *grad;
    size_t size;
    int rank;
    int64_t shape[4];
    int frozen;
    int decay; /* 1 if weight decay applies (filters, fc), 0 for biases, BN */
} fn_param;

/* A new network of a named architecture ("resnet29", "small"), weights
 * initialised (He normal for convolutions, BN gamma 1 beta 0) from seed. */
fn_tnet *fn_tnet_create(const char *arch, uint64_t seed, fn_error *e);
/* The same at another input size (0: the architecture's; "small" takes 16
 * to 512 px, 64 by default; "resnet29" only 150). */
fn_tnet *fn_tnet_create_size(const char *arch, int input_size, uint64_t seed, fn_error *e);
/* A network initialised from a loaded model of a known architecture
 * (fine-tuning). */
fn_tnet *fn_tnet_from_model(const facenet_model *m, fn_error *e);
void fn_tnet_free(fn_tnet *net);

const char *fn_tnet_arch(const fn_tnet *net);
int fn_tnet_input_size(const fn_tnet *net); /* square chips, RGB */
int fn_tnet_dim(const fn_tnet *net);        /* embedding size */
int fn_tnet_n_params(const fn_tnet *net);
fn_param *fn_tnet_param(fn_tnet *net, int i);
/* Freeze every parameter of the first n_stages stages (0: none). */
void fn_tnet_freeze_stages(fn_tnet *net, int n_stages);

/* x: n chips, NHWC [n][size][size][3], already preprocessed the way the
 * architecture's inference path does it (the same fn_to_input). emb: n x dim
 * raw (not normalized) embeddings. training = 1 uses batch statistics for
 * batch norm, updates its running averages and keeps what backward needs;
 * 0 is inference (running averages). Returns 0, or -1 with e set. */
int fn_tnet_forward(fn_tnet *net, const fn_exec *ex, const float *x, int n, float *emb, int training,
                    fn_error *e);
/* d_emb: n x dim, the loss gradient with respect to the raw embeddings of
 * the last training forward. Adds into every param's grad. */
int fn_tnet_backward(fn_tnet *net, const fn_exec *ex, const float *d_emb, fn_error *e);

/* Write the network as a facenet model file (batch norm folded into the
 * scale/shift the inference networks read), loadable at once by
 * facenet_model_load; meta are extra "key", "value" pairs, NULL-terminated. */
int fn_tnet_save(const fn_tnet *net, const char *path, const char *const *meta, fn_error *e);

/* ------------------------------------------------------------ triplet loss */

typedef enum fn_triplet_select {
    FN_SELECT_SEMIHARD, /* the paper's: d(a,p) < d(a,n) < d(a,p) + alpha, at random
                           among them; none -> the anchor-positive pair is skipped */
    FN_SELECT_HARDEST,  /* the negative nearest to the anchor */
    FN_SELECT_RANDOM,   /* at random among those violating the margin */
    FN_SELECT_ALL       /* batch-all: every violating triplet, averaged */
} fn_triplet_select;

typedef enum fn_triplet_kind {
    FN_TRIPLET_HINGE, /* max(0, d_ap - d_an + alpha): FaceNet's */
    FN_TRIPLET_SOFT   /* alpha log(1 + exp((d_ap - d_an) / alpha)): the soft
                         margin of Hermans, Beyer and Leibe (2017), never
                         exactly 0, its width alpha; batch-all then takes
                         every triplet, not only the violating ones */
} fn_triplet_kind;

typedef struct fn_triplet_params {
    float alpha; /* 0.2: the hinge's margin, the soft margin's width */
    fn_triplet_select select;
    fn_triplet_kind kind;
    /* > 0: add the pair term, every matched pair of the batch against every
     * mismatched one, max(0, d_pos - d_neg + pair_margin), averaged over the
     * violating combinations: one threshold for all identities, as
     * verification uses (the second term of Chen et al.'s quadruplet loss,
     * 2017). 0: off. */
    float pair_margin;
} fn_triplet_params;

typedef struct fn_triplet_stats {
    float loss;          /* mean over the triplets formed */
    int n_triplets;      /* formed */
    int n_active;        /* hinge: with loss > 0; soft: with d_an < d_ap + alpha */
    float mean_pos, mean_neg; /* mean squared distances of the triplets' pairs */
    float pair_loss;     /* the pair term (included in loss) */
    float pair_active;   /* fraction of (matched, mismatched) combinations violating its margin */
} fn_triplet_stats;

/* emb: n x dim raw embeddings, labels: identity of each row. Normalizes the
 * rows, forms triplets from every anchor-positive pair of the batch, and
 * writes d_emb (n x dim) = dL/d(raw emb) through the normalization.
 * Returns 0, or -1 if no anchor-positive pair exists. */
int fn_triplet_loss(const float *emb, const int *labels, int n, int dim, const fn_triplet_params *p,
                    fn_rng *rng, float *d_emb, fn_triplet_stats *st);

/* ------------------------------------------------------------ optimizers */

typedef enum fn_optim_kind { FN_OPTIM_ADAGRAD, FN_OPTIM_SGD, FN_OPTIM_ADAM } fn_optim_kind;

typedef struct fn_optim_params {
    fn_optim_kind kind;
    float momentum;     /* SGD, 0.9 */
    float beta1, beta2; /* Adam, 0.9 0.999 */
    float eps;          /* AdaGrad 1e-1 (TF's initial accumulator), Adam 1e-8 */
    float weight_decay; /* L2, on params with decay = 1 */
    float clip_norm;    /* global gradient norm cap; 0: none */
    float ema;          /* decay of the weights' moving average, e.g. 0.99; 0: none */
} fn_optim_params;

typedef struct fn_optim fn_optim;
fn_optim *fn_optim_create(const fn_optim_params *p, fn_tnet *net, fn_error *e);
void fn_optim_free(fn_optim *o);
/* Apply the gradients with learning rate lr, then zero them. Returns the
 * global gradient norm before clipping. */
float fn_optim_step(fn_optim *o, float lr);
/* The optimizer's state tensors (accumulators, moments, step count), named
 * "<param>/<slot>", for checkpoints. */
int fn_optim_n_state(const fn_optim *o);
fn_param *fn_optim_state(fn_optim *o, int i);
/* Exchange the network's tensors with their moving average (ema > 0):
 * call it once before validating or saving and once after. Returns 1 if
 * it swapped, 0 without a moving average. */
int fn_optim_swap_ema(fn_optim *o);

#endif /* FN_TRAIN_H */
