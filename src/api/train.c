/*
 * train.c - the public trainer (facenet.h): the training loop that ties the
 * data side (train/dataset.h) to the network, the triplet loss and the
 * optimizer (train/train.h), with validation, checkpoints and export.
 *
 * A step takes the batch the loader thread has prepared, runs the network
 * forward in training mode, forms triplets in the batch, runs it backward
 * and applies the optimizer. Everything random comes from the run's seed:
 * batches from (seed, step) in the loader, triplet selection from a
 * generator whose state goes into every checkpoint, so a resumed run goes
 * on exactly as the uninterrupted one would have.
 *
 * Validation embeds a fixed set of chips without augmentation (batch norm
 * with its running statistics) and runs the evaluator's 10-fold protocol on
 * the pair distances.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "eval/pairs.h"
#include "eval/protocol.h"
#include "nets/preprocess.h"
#include "nets/resnet29.h"
#include "train/checkpoint.h"
#include "train/dataset.h"
#include "train/train.h"

#define VAL_BATCH 32
#define VAL_FOLDS 10
#define CHIPS_KEY_VERSION "facenet-train-chips 2"

typedef struct val_pair {
    int a, b, same, fold;
} val_pair;

struct facenet_trainer {
    facenet_ctx *ctx;
    facenet_train_params p;
    char *checkpoint_path;
    fn_dataset *d;
    fn_chips chips;
    fn_loader *loader;
    fn_loader_params lp;
    fn_tnet *net;
    fn_optim *opt;
    fn_arena arena;
    fn_exec ex;
    fn_rng rng; /* triplet selection */
    int64_t step;
    int dim, size;
    float *emb, *demb;
    /* validation */
    fn_dataset *vd;
    fn_chips vchips;
    val_pair *vp;
    int n_vp, n_vfolds;
    float *vx, *vemb, *vscratch; /* vx, vscratch: a batch of chips and their mirror images */
    facenet_train_info info;
};

facenet_train_params facenet_train_default_params(void) {
    facenet_train_params p;
    memset(&p, 0, sizeof p);
    p.architecture = "small";
    p.min_images = 2;
    p.chips = 1;
    p.augment = 1;
    p.P = 30;
    p.K = 4;
    p.select = FACENET_SELECT_SEMIHARD;
    p.alpha = 0.2f;
    p.loss = FACENET_LOSS_HINGE;
    const fn_augment aug = fn_augment_default();
    p.crop = aug.crop;
    p.brightness = aug.brightness;
    p.contrast = aug.contrast;
    p.optimizer = FACENET_OPTIM_ADAGRAD;
    p.learning_rate = 0.05f;
    p.momentum = 0.9f;
    p.weight_decay = 5e-4f;
    p.schedule = FACENET_LR_CONSTANT;
    p.lr_step_every = 1000;
    p.lr_gamma = 0.5f;
    p.seed = 1;
    p.steps = 1000;
    p.val_max_pairs = 3000;
    return p;
}

/* Both trainable architectures take face-api's preprocessing: (v - mean) / 255. */
static fn_norm input_norm(void) {
    fn_norm n = {{fn_resnet29_mean[0], fn_resnet29_mean[1], fn_resnet29_mean[2]}, 255.0f};
    return n;
}

/* ------------------------------------------------------------ set-up */

static facenet_status check_params(const facenet_train_params *p, fn_error *e) {
    if (!p->data_dir) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "training needs a data folder");
    if (!p->init_model && !p->architecture)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "training needs an architecture or a model to fine-tune");
    if (p->P < 1 || p->K < 2 || (int64_t)p->P * p->K > 4096)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "a batch of P = %d identities x K = %d images: need P >= 1, K >= 2, P x K <= 4096", p->P,
                       p->K);
    if (!(p->alpha > 0 && p->alpha < 4) || !(p->learning_rate > 0 && p->learning_rate < 100) ||
        !(p->momentum >= 0 && p->momentum < 1) || !(p->weight_decay >= 0 && p->weight_decay < 1) ||
        !(p->clip_norm >= 0) || p->steps < 0 || p->steps > FN_CKPT_MAX_STEP || p->warmup_steps < 0 ||
        (p->schedule == FACENET_LR_STEP && (p->lr_step_every < 1 || !(p->lr_gamma > 0 && p->lr_gamma <= 1))))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "training parameters out of range: alpha (0, 4), learning rate (0, 100), momentum [0, 1), "
                       "weight decay [0, 1), clip >= 0, steps >= 0, lr step >= 1 with gamma (0, 1]");
    if ((unsigned)p->select > FACENET_SELECT_ALL || (unsigned)p->optimizer > FACENET_OPTIM_ADAM ||
        (unsigned)p->schedule > FACENET_LR_COSINE || (unsigned)p->loss > FACENET_LOSS_SOFT)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "unknown triplet selection, loss, optimizer or schedule");
    if (!p->chips && (!p->detector_model || !p->landmark_model))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "photos need a detector and a landmark model to be aligned");
    if ((p->val_pairs != NULL) + (p->val_include != NULL || p->val_people != NULL) > 1)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "validate on a pairs file or on held-out identities, not both");
    if (!(p->crop >= 0 && p->crop < 1) || !(p->brightness >= 0 && p->brightness <= 1) ||
        !(p->contrast >= 0 && p->contrast <= 1) || !(p->erase >= 0 && p->erase <= 1) ||
        !(p->pair_margin >= 0 && p->pair_margin < 4) || !(p->ema >= 0 && p->ema < 1))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "out of range: crop [0, 1), brightness, contrast and erase [0, 1], pair margin [0, 4), ema [0, 1)");
    if (p->freeze_stages < 0 || p->val_max_pairs < 0 || p->checkpoint_every < 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "negative freeze_stages, val_max_pairs or checkpoint_every");
    return FACENET_OK;
}

/* "path size mtime" of a model file, for the chip cache key. */
static void file_identity(const char *path, char *buf, size_t cap) {
    char real[PATH_MAX];
    struct stat sb;
    if (!realpath(path, real)) snprintf(real, sizeof real, "%s", path);
    if (stat(path, &sb) == 0)
        snprintf(buf, cap, "%s:%lld:%lld", real, (long long)sb.st_size, (long long)sb.st_mtim.tv_sec);
    else
        snprintf(buf, cap, "%s", real);
}

typedef struct chip_maker {
    facenet_model *det, *lmk;
    facenet_pipeline *pl;
    char key[3 * PATH_MAX + 512];
    const facenet_train_params *p;
    const char *stage;
} chip_maker;

static void chips_progress(void *user, int done, int total, int bad) {
    (void)bad;
    const chip_maker *m = user;
    if (m->p->progress) m->p->progress(m->p->progress_user, m->stage, done, total);
}

static facenet_status maker_open(facenet_ctx *ctx, const facenet_train_params *p, chip_maker *m, fn_error *e) {
    memset(m, 0, sizeof *m);
    m->p = p;
    if (p->chips) return FACENET_OK;
    facenet_status st = facenet_model_load(ctx, p->detector_model, &m->det);
    if (st == FACENET_OK) st = facenet_model_load(ctx, p->landmark_model, &m->lmk);
    facenet_pipeline_params pp = facenet_pipeline_default_params();
    pp.embed = 0;
    if (st == FACENET_OK) st = facenet_pipeline_create(ctx, m->det, m->lmk, NULL, &pp, &m->pl);
    if (st != FACENET_OK) return fn_fail(e, st, "%s", facenet_ctx_error(ctx));
    char det[PATH_MAX + 64], lmk[PATH_MAX + 64];
    file_identity(p->detector_model, det, sizeof det);
    file_identity(p->landmark_model, lmk, sizeof lmk);
    snprintf(m->key, sizeof m->key,
             /* Every pipeline parameter that changes a chip. */
             CHIPS_KEY_VERSION "; det=%s; lmk=%s; min_score=%.6g; max_faces=%d; iou=%.6g; closeup=%d; "
                               "align=similarity; padding=%.4g; subject=centre0.2|largest; "
                               "resize=pad-square-legacy-bilinear",
             det, lmk, (double)pp.min_score, pp.max_faces, (double)pp.iou, pp.closeup, (double)pp.align_padding);
    return FACENET_OK;
}

static void maker_close(chip_maker *m) {
    facenet_pipeline_free(m->pl);
    facenet_model_free(m->lmk);
    facenet_model_free(m->det);
}

/* Chips of every image of d: ready-made, or aligned photos through the cache. */
static facenet_status make_chips(chip_maker *m, fn_dataset *d, int size, fn_chips *c, const char *stage,
                                 fn_error *e) {
    char key[sizeof m->key + PATH_MAX + 32], real[PATH_MAX];
    if (!realpath(d->root, real)) snprintf(real, sizeof real, "%s", d->root);
    snprintf(key, sizeof key, "%s; data=%s", m->key, real);
    fn_chip_source src = {m->pl, m->p->cache_dir, key};
    m->stage = stage;
    return fn_chips_load(d, m->pl ? &src : NULL, size, chips_progress, m, c, e);
}

static facenet_status select_list(const char *root, const char *people, const char *include, const char *exclude,
                                  int min_images, fn_dataset **out, fn_error *e) {
    fn_people *pl = NULL;
    if (people && fn_people_load(people, &pl, e) != FACENET_OK) return e->status;
    fn_ds_select sel = {pl, include, exclude, min_images};
    facenet_status st = fn_dataset_list(root, &sel, out, e);
    fn_people_free(pl);
    return st;
}

/* Matched pairs of held-out identities (all, or val_max_pairs of them at
 * random) and as many mismatched ones, split into folds. */
static facenet_status heldout_pairs(facenet_trainer *t, fn_error *e) {
    const fn_dataset *d = t->vd;
    int64_t n_same = 0;
    for (int i = 0; i < d->n_ids; i++) n_same += (int64_t)d->ids[i].count * (d->ids[i].count - 1) / 2;
    const int cap = t->p.val_max_pairs > 0 ? t->p.val_max_pairs : 3000;
    if (n_same > 50000000) return fn_fail(e, FACENET_ERR_TOO_LARGE, "over 50 million matched validation pairs");
    if (d->n_ids < 2 || n_same < 1)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "validation needs two identities with two images each");
    val_pair *all = malloc(sizeof *all * (size_t)n_same);
    if (!all) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for validation pairs");
    int64_t k = 0;
    for (int i = 0; i < d->n_ids; i++)
        for (int a = d->ids[i].first; a < d->ids[i].first + d->ids[i].count; a++)
            for (int b = a + 1; b < d->ids[i].first + d->ids[i].count; b++) all[k++] = (val_pair){a, b, 1, 0};
    fn_rng r;
    fn_step_rng(&r, t->p.seed, -1, 7);
    const int ns = n_same > cap ? cap : (int)n_same;
    for (int i = 0; i < ns && n_same > cap; i++) {
        const int64_t j = i + (int64_t)(fn_rng_uniform(&r) * (double)(n_same - i));
        const val_pair tmp = all[i];
        all[i] = all[j];
        all[j] = tmp;
    }
    t->vp = malloc(sizeof *t->vp * (size_t)ns * 2);
    if (!t->vp) {
        free(all);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for validation pairs");
    }
    memcpy(t->vp, all, sizeof *all * (size_t)ns);
    free(all);
    for (int i = 0; i < ns; i++) {
        int a, b;
        do {
            a = fn_rng_below(&r, d->n_images);
            b = fn_rng_below(&r, d->n_images);
        } while (d->label[a] == d->label[b]);
        t->vp[ns + i] = (val_pair){a, b, 0, 0};
    }
    t->n_vp = 2 * ns;
    return FACENET_OK;
}

/* Pairs of an LFW-format pairs file over val_dir. */
static facenet_status file_pairs(facenet_trainer *t, chip_maker *m, fn_error *e) {
    const char *dir = t->p.val_dir ? t->p.val_dir : t->p.data_dir;
    facenet_eval_pairs *pf = NULL;
    if (fn_pairs_load(t->p.val_pairs, NULL, 0, &pf, e) != FACENET_OK) return e->status;
    facenet_status st = FACENET_OK;
    fn_dataset *d = calloc(1, sizeof *d);
    if (!d || !(d->root = strdup(dir)) || !(d->files = calloc((size_t)pf->n_images + 1, sizeof *d->files)) ||
        !(d->label = calloc((size_t)pf->n_images + 1, sizeof *d->label)) ||
        !(t->vp = malloc(sizeof *t->vp * (size_t)(pf->n_pairs + 1))))
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for validation pairs");
    for (int i = 0; st == FACENET_OK && i < pf->n_images; i++) {
        if (!(d->files[i] = strdup(pf->names[i])))
            st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for validation pairs");
        else
            d->n_images = i + 1;
    }
    t->vd = d;
    if (st == FACENET_OK) st = make_chips(m, d, t->size, &t->vchips, "validation chips", e);
    if (st == FACENET_OK) {
        for (int i = 0; i < pf->n_pairs; i++) {
            const facenet_eval_pair *q = &pf->pairs[i];
            if (!t->vchips.ok[q->image[0]] || !t->vchips.ok[q->image[1]]) {
                t->info.val_skipped++;
                continue;
            }
            t->vp[t->n_vp++] = (val_pair){q->image[0], q->image[1], q->same, pf->n_folds > 1 ? q->fold : 0};
        }
        t->n_vfolds = pf->n_folds > 1 ? pf->n_folds : 0;
    }
    fn_pairs_free(pf);
    return st;
}

/* Folds for pairs that have none: each kind shuffled and dealt round. */
static void deal_folds(facenet_trainer *t) {
    int ns = 0, nd = 0;
    for (int i = 0; i < t->n_vp; i++) t->vp[i].same ? ns++ : nd++;
    int f = VAL_FOLDS;
    if (ns < f) f = ns;
    if (nd < f) f = nd;
    t->n_vfolds = f;
    fn_rng r;
    fn_step_rng(&r, t->p.seed, -1, 8);
    int ks = 0, kd = 0;
    /* Shuffle once, then deal in order of kind. */
    for (int i = t->n_vp - 1; i > 0; i--) {
        const int j = fn_rng_below(&r, i + 1);
        const val_pair tmp = t->vp[i];
        t->vp[i] = t->vp[j];
        t->vp[j] = tmp;
    }
    for (int i = 0; i < t->n_vp; i++) t->vp[i].fold = f > 0 ? (t->vp[i].same ? ks++ : kd++) % f : 0;
}

static facenet_status setup_validation(facenet_trainer *t, chip_maker *m, fn_error *e) {
    const facenet_train_params *p = &t->p;
    facenet_status st = FACENET_OK;
    if (p->val_pairs) {
        st = file_pairs(t, m, e);
        if (st == FACENET_OK && t->n_vfolds == 0) deal_folds(t);
    } else if (p->val_include || p->val_people) {
        const char *dir = p->val_dir ? p->val_dir : p->data_dir;
        st = select_list(dir, p->val_people, p->val_include, NULL, 2, &t->vd, e);
        if (st == FACENET_OK && strcmp(dir, p->data_dir) == 0) {
            /* Held out means not trained on. */
            for (int i = 0; i < t->vd->n_ids && st == FACENET_OK; i++)
                for (int j = 0; j < t->d->n_ids; j++)
                    if (strcmp(t->vd->ids[i].name, t->d->ids[j].name) == 0) {
                        st = fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                                     "identity %s is both trained on and held out for validation",
                                     t->vd->ids[i].name);
                        break;
                    }
        }
        if (st == FACENET_OK) st = make_chips(m, t->vd, t->size, &t->vchips, "validation chips", e);
        if (st == FACENET_OK) st = fn_dataset_keep_chips(t->vd, &t->vchips, 2, e);
        if (st == FACENET_OK) st = heldout_pairs(t, e);
        if (st == FACENET_OK) deal_folds(t);
    } else {
        return FACENET_OK;
    }
    if (st != FACENET_OK) return st;
    if (t->n_vfolds < 2)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "validation needs at least 2 matched and 2 mismatched pairs with faces (%d pairs)", t->n_vp);
    for (int i = 0; i < t->n_vp; i++) t->vp[i].same ? t->info.val_same++ : t->info.val_diff++;
    t->info.val_pairs = t->n_vp;
    t->vx = malloc(sizeof(float) * (size_t)2 * VAL_BATCH * t->size * t->size * 3);
    t->vscratch = malloc(sizeof(float) * (size_t)2 * VAL_BATCH * t->dim);
    t->vemb = malloc(sizeof(float) * (size_t)(t->vchips.n ? t->vchips.n : 1) * t->dim);
    if (!t->vx || !t->vscratch || !t->vemb) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for validation");
    return FACENET_OK;
}

static facenet_status start_loader(facenet_trainer *t, fn_error *e) {
    fn_loader_free(t->loader);
    t->lp.first_step = t->step;
    t->loader = fn_loader_create(t->d, &t->chips, &t->lp, e);
    return t->loader ? FACENET_OK : e->status;
}

static facenet_status create(facenet_trainer *t, fn_error *e) {
    const facenet_train_params *p = &t->p;
    if (check_params(p, e) != FACENET_OK) return e->status;
    /* The network first: its input size is the chips'. */
    if (p->init_model) {
        facenet_model *m = NULL;
        facenet_status st = facenet_model_load(t->ctx, p->init_model, &m);
        if (st != FACENET_OK) return fn_fail(e, st, "%s", facenet_ctx_error(t->ctx));
        t->net = fn_tnet_from_model(m, e);
        facenet_model_free(m);
    } else {
        t->net = fn_tnet_create_size(p->architecture, p->input_size, p->seed, e);
    }
    if (!t->net) return e->status;
    fn_tnet_freeze_stages(t->net, p->freeze_stages);
    t->size = fn_tnet_input_size(t->net);
    t->dim = fn_tnet_dim(t->net);

    chip_maker m;
    facenet_status st = maker_open(t->ctx, p, &m, e);
    if (st == FACENET_OK) st = select_list(p->data_dir, p->people, p->include, p->exclude, p->min_images, &t->d, e);
    if (st == FACENET_OK)
        st = make_chips(&m, t->d, t->size, &t->chips,
                        p->chips ? "loading chips" : "face chips (aligned, or from the cache)", e);
    if (st == FACENET_OK) {
        t->info.no_face = t->chips.n_noface;
        t->info.unreadable = t->chips.n_unreadable;
        t->info.chips_cached = t->chips.n_cached;
        t->info.chips_made = t->chips.n_made;
        if (t->chips.n_noface + t->chips.n_unreadable)
            fn_log(t->ctx, FACENET_LOG_WARN, "%d photos without a face and %d unreadable left out (e.g. %s)",
                   t->chips.n_noface, t->chips.n_unreadable, t->chips.example_bad);
        st = fn_dataset_keep_chips(t->d, &t->chips, p->min_images > 2 ? p->min_images : 2, e);
    }
    if (st == FACENET_OK) st = setup_validation(t, &m, e);
    maker_close(&m);
    if (st != FACENET_OK) return st;

    fn_optim_params op;
    memset(&op, 0, sizeof op);
    op.kind = p->optimizer == FACENET_OPTIM_SGD ? FN_OPTIM_SGD : p->optimizer == FACENET_OPTIM_ADAM ? FN_OPTIM_ADAM
                                                                                                   : FN_OPTIM_ADAGRAD;
    op.momentum = p->momentum;
    op.beta1 = 0.9f;
    op.beta2 = 0.999f;
    op.eps = op.kind == FN_OPTIM_ADAGRAD ? 0.1f : 1e-8f;
    op.weight_decay = p->weight_decay;
    op.clip_norm = p->clip_norm;
    op.ema = p->ema;
    t->opt = fn_optim_create(&op, t->net, e);
    if (!t->opt) return e->status;

    const size_t rows = (size_t)p->P * p->K;
    t->emb = malloc(sizeof(float) * rows * t->dim);
    t->demb = malloc(sizeof(float) * rows * t->dim);
    if (!t->emb || !t->demb) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for a batch");
    fn_step_rng(&t->rng, p->seed, -1, 3);
    t->lp.P = p->P;
    t->lp.K = p->K;
    t->lp.seed = p->seed;
    const fn_augment none = {0, 0, 0, 0, 0}, aug = {p->crop, 1, p->brightness, p->contrast, p->erase};
    t->lp.augment = p->augment ? aug : none;
    t->lp.norm = input_norm();
    if (fn_exec_init(&t->ex, fn_backend_default(), t->ctx->pool, &t->arena) != 0)
        fn_log(t->ctx, FACENET_LOG_WARN, "the fast backend could not start; training uses the reference");
    if (start_loader(t, e) != FACENET_OK) return e->status;

    facenet_train_info *in = &t->info;
    in->architecture = fn_tnet_arch(t->net);
    in->input_size = t->size;
    in->embedding_dim = t->dim;
    in->n_identities = t->d->n_ids;
    in->n_images = t->d->n_images;
    in->left_out_identities = t->d->left_out_ids;
    for (int i = 0; i < fn_tnet_n_params(t->net); i++) {
        const fn_param *q = fn_tnet_param(t->net, i);
        if (q->grad && !q->frozen) in->n_params += (int)q->size;
    }
    return FACENET_OK;
}

facenet_status facenet_trainer_create(facenet_ctx *ctx, const facenet_train_params *params, facenet_trainer **out) {
    fn_error e;
    fn_error_clear(&e);
    if (!ctx || !out) return FACENET_ERR_INVALID_ARGUMENT;
    *out = NULL;
    facenet_trainer *t = calloc(1, sizeof *t);
    if (!t) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory creating a trainer");
        return fn_ctx_report(ctx, &e);
    }
    t->ctx = ctx;
    t->p = params ? *params : facenet_train_default_params();
    if (t->p.checkpoint_path && !(t->checkpoint_path = strdup(t->p.checkpoint_path)))
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory creating a trainer");
    t->p.checkpoint_path = t->checkpoint_path;
    /* The strings are the caller's: only the checkpoint path is used after create. */
    if (e.status == FACENET_OK && create(t, &e) != FACENET_OK) {
        facenet_trainer_free(t);
        return fn_ctx_report(ctx, &e);
    }
    if (e.status != FACENET_OK) {
        facenet_trainer_free(t);
        return fn_ctx_report(ctx, &e);
    }
    t->p.data_dir = t->p.people = t->p.include = t->p.exclude = NULL;
    t->p.val_pairs = t->p.val_dir = t->p.val_include = t->p.val_people = NULL;
    t->p.init_model = t->p.detector_model = t->p.landmark_model = t->p.cache_dir = NULL;
    t->p.architecture = NULL;
    *out = t;
    return fn_ctx_report(ctx, &e);
}

void facenet_trainer_free(facenet_trainer *t) {
    if (!t) return;
    fn_loader_free(t->loader);
    if (t->ex.backend) fn_exec_release(&t->ex);
    fn_arena_free(&t->arena);
    fn_optim_free(t->opt);
    fn_tnet_free(t->net);
    fn_chips_free(&t->chips);
    fn_chips_free(&t->vchips);
    fn_dataset_free(t->d);
    fn_dataset_free(t->vd);
    free(t->vp);
    free(t->vx);
    free(t->vemb);
    free(t->vscratch);
    free(t->emb);
    free(t->demb);
    free(t->checkpoint_path);
    free(t);
}

facenet_train_info facenet_trainer_info(const facenet_trainer *t) {
    facenet_train_info none;
    memset(&none, 0, sizeof none);
    return t ? t->info : none;
}

int64_t facenet_trainer_steps_done(const facenet_trainer *t) { return t ? t->step : 0; }

/* ------------------------------------------------------------ steps */

static float learning_rate(const facenet_train_params *p, int64_t step) {
    double lr = p->learning_rate;
    if (p->warmup_steps > 0 && step < p->warmup_steps) lr *= (double)(step + 1) / p->warmup_steps;
    if (p->schedule == FACENET_LR_STEP)
        lr *= pow(p->lr_gamma, (double)(step / p->lr_step_every));
    else if (p->schedule == FACENET_LR_COSINE && p->steps > 0)
        lr *= 0.5 * (1.0 + cos(3.14159265358979323846 * (double)(step < p->steps ? step : p->steps) / p->steps));
    return (float)lr;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static facenet_status checkpoint(facenet_trainer *t, const char *path, fn_error *e) {
    fn_ckpt_meta m;
    memset(&m, 0, sizeof m);
    snprintf(m.architecture, sizeof m.architecture, "%s", fn_tnet_arch(t->net));
    m.input_size = t->size;
    m.embedding_size = t->dim;
    m.step = t->step;
    m.seed = t->lp.seed;
    m.rng = t->rng;
    static const char *const OPT[] = {"adagrad", "sgd", "adam"};
    snprintf(m.optimizer, sizeof m.optimizer, "%s", OPT[t->p.optimizer]);
    return fn_ckpt_write(path, t->net, t->opt, &m, e);
}

static facenet_status step(facenet_trainer *t, facenet_train_stats *out, fn_error *e) {
    const double t0 = now_ms();
    const fn_batch *b = fn_loader_next(t->loader);
    fn_arena_reset(&t->arena);
    if (fn_tnet_forward(t->net, &t->ex, b->x, b->n, t->emb, 1, e) != 0) return e->status;
    const fn_triplet_params tp = {t->p.alpha, (fn_triplet_select)t->p.select,
                                  t->p.loss == FACENET_LOSS_SOFT ? FN_TRIPLET_SOFT : FN_TRIPLET_HINGE, t->p.pair_margin};
    fn_triplet_stats ts;
    if (fn_triplet_loss(t->emb, b->labels, b->n, t->dim, &tp, &t->rng, t->demb, &ts) != 0)
        return fn_fail(e, FACENET_ERR_INTERNAL, "batch %lld has no anchor-positive pair", (long long)b->step);
    if (fn_tnet_backward(t->net, &t->ex, t->demb, e) != 0) return e->status;
    const float lr = learning_rate(&t->p, t->step);
    const float norm = fn_optim_step(t->opt, lr);
    fn_arena_reset(&t->arena);
    t->step++;
    facenet_train_stats s;
    memset(&s, 0, sizeof s);
    s.step = t->step;
    s.loss = ts.loss;
    s.n_triplets = ts.n_triplets;
    s.active_fraction = ts.n_triplets ? (float)ts.n_active / (float)ts.n_triplets : 0.0f;
    s.mean_pos = ts.mean_pos;
    s.mean_neg = ts.mean_neg;
    s.grad_norm = norm;
    s.learning_rate = lr;
    if (t->checkpoint_path && t->p.checkpoint_every > 0 && t->step % t->p.checkpoint_every == 0) {
        if (checkpoint(t, t->checkpoint_path, e) != FACENET_OK) return e->status;
        s.checkpointed = 1;
    }
    s.ms = now_ms() - t0;
    if (out) *out = s;
    return FACENET_OK;
}

facenet_status facenet_trainer_step(facenet_trainer *t, facenet_train_stats *stats) {
    if (!t) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    step(t, stats, &e);
    return fn_ctx_report(t->ctx, &e);
}

/* ------------------------------------------------------------ validation */

static facenet_status validate(facenet_trainer *t, facenet_eval_result *out, fn_error *e) {
    if (!t->n_vp) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no validation pairs were given");
    const size_t px = (size_t)t->size * t->size * 3;
    const fn_norm norm = input_norm();
    for (int start = 0; start < t->vchips.n; start += VAL_BATCH) {
        const int nb = t->vchips.n - start < VAL_BATCH ? t->vchips.n - start : VAL_BATCH;
        for (int i = 0; i < nb; i++)
            fn_augment_chip(t->vchips.pix + (size_t)(start + i) * px, t->size, NULL, NULL, &norm,
                            t->vx + (size_t)i * px);
        /* Each chip and its mirror image, merged as FACENET_EMBED_FLIP (the
         * pipeline's default) merges them: the figure is the one `facenet
         * eval` and `compare` will see with the exported model. */
        fn_mirror_inputs(t->vx, nb, t->size);
        fn_arena_reset(&t->arena);
        if (fn_tnet_forward(t->net, &t->ex, t->vx, 2 * nb, t->vscratch, 0, e) != 0) return e->status;
        fn_l2_normalize(t->vscratch, 2 * nb, t->dim, 1e-12f);
        fn_mirror_merge(t->vscratch, nb, t->dim, 0, t->vemb + (size_t)start * t->dim);
    }
    fn_arena_reset(&t->arena);
    float *dist = malloc(sizeof(float) * (size_t)t->n_vp);
    int *same = malloc(sizeof(int) * (size_t)t->n_vp), *fold = malloc(sizeof(int) * (size_t)t->n_vp);
    facenet_status st = FACENET_OK;
    if (!dist || !same || !fold)
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for validation");
    for (int i = 0; st == FACENET_OK && i < t->n_vp; i++) {
        dist[i] = facenet_distance(t->vemb + (size_t)t->vp[i].a * t->dim, t->vemb + (size_t)t->vp[i].b * t->dim, t->dim);
        same[i] = t->vp[i].same;
        fold[i] = t->vp[i].fold;
    }
    if (st == FACENET_OK) st = fn_eval_folds(dist, same, fold, t->n_vp, 1e-3, out, e);
    free(dist);
    free(same);
    free(fold);
    return st;
}

facenet_status facenet_trainer_validate(facenet_trainer *t, facenet_eval_result *out) {
    if (!t) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    if (!out)
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_trainer_validate: NULL result");
    else {
        /* With a moving average of the weights, it is what is validated
         * and exported. */
        const int swapped = fn_optim_swap_ema(t->opt);
        validate(t, out, &e);
        if (swapped) fn_optim_swap_ema(t->opt);
    }
    return fn_ctx_report(t->ctx, &e);
}

/* ------------------------------------------------------------ checkpoints and export */

facenet_status facenet_trainer_checkpoint(facenet_trainer *t, const char *path) {
    if (!t) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    if (!path)
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_trainer_checkpoint: no path");
    else
        checkpoint(t, path, &e);
    return fn_ctx_report(t->ctx, &e);
}

static facenet_status resume(facenet_trainer *t, const char *path, fn_error *e) {
    fn_st_file *f = NULL;
    if (fn_st_open(path, &f, e) != FACENET_OK) return e->status;
    fn_ckpt_meta m;
    static const char *const OPT[] = {"adagrad", "sgd", "adam"};
    facenet_status st = fn_ckpt_meta_read(f, &m, e);
    if (st == FACENET_OK &&
        (strcmp(m.architecture, fn_tnet_arch(t->net)) || m.input_size != t->size || m.embedding_size != t->dim))
        st = fn_fail(e, FACENET_ERR_MODEL, "a checkpoint of %s at %d px, %d-d; this run trains %s at %d px, %d-d",
                     m.architecture, m.input_size, m.embedding_size, fn_tnet_arch(t->net), t->size, t->dim);
    if (st == FACENET_OK && strcmp(m.optimizer, OPT[t->p.optimizer]) != 0)
        st = fn_fail(e, FACENET_ERR_MODEL, "a checkpoint of the %s optimizer; this run uses %s", m.optimizer,
                     OPT[t->p.optimizer]);
    if (st == FACENET_OK) st = fn_ckpt_restore(f, t->net, t->opt, e);
    fn_st_close(f);
    if (st != FACENET_OK) {
        fn_error_prefix(e, "%s", path);
        return st;
    }
    t->step = m.step;
    t->rng = m.rng;
    t->lp.seed = m.seed; /* the run's batches are its seed's */
    return start_loader(t, e);
}

facenet_status facenet_trainer_resume(facenet_trainer *t, const char *path) {
    if (!t) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    if (!path)
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_trainer_resume: no path");
    else
        resume(t, path, &e);
    return fn_ctx_report(t->ctx, &e);
}

facenet_status facenet_trainer_export(facenet_trainer *t, const char *path, float threshold) {
    if (!t) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    char id[96], thr[32], steps[32];
    snprintf(id, sizeof id, "facenet-train %s %dpx step %lld", fn_tnet_arch(t->net), t->size, (long long)t->step);
    snprintf(thr, sizeof thr, "%.6f", (double)threshold);
    snprintf(steps, sizeof steps, "%lld", (long long)t->step);
    const char *meta[] = {"model_id", id, "source", "facenet train", "training_steps", steps,
                          threshold > 0 && threshold < 4 ? "threshold" : NULL, thr, NULL, NULL};
    const int swapped = path ? fn_optim_swap_ema(t->opt) : 0;
    if (!path)
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_trainer_export: no path");
    else if (fn_tnet_save(t->net, path, meta, &e) != 0 && e.status == FACENET_OK)
        fn_fail(&e, FACENET_ERR_IO, "%s: cannot write the model", path);
    if (swapped) fn_optim_swap_ema(t->opt);
    return fn_ctx_report(t->ctx, &e);
}
