/*
 * cmd_eval.c - `facenet eval lfw`: face verification accuracy on Labeled
 * Faces in the Wild, by the protocol of FaceNet and davidsandberg/facenet
 * (docs/evaluation.md).
 *
 * The run has three parts. (1) Every image the pairs name is embedded once:
 * the face nearest the photo's centre is the subject (LFW photos often show
 * several people, and the named one is the one LFW centred); a photo where
 * the detector finds nothing falls back to a fixed central crop, counted and
 * reported. Worker threads, each with its own context, models and pipeline
 * (a pipeline is one thread's scratch memory), take images from a shared
 * queue; the main thread appends their results to the on-disk cache and
 * draws the progress, so the cache and its context stay on one thread. (2)
 * Pair distances go through the protocol (facenet_eval_folds or, for View 1,
 * facenet_eval_train_test). (3) The figures are printed, as text or JSON,
 * and optionally written as an HTML report with inline SVG charts and
 * thumbnails of the worst-scored pairs.
 *
 * Like every command, it uses facenet.h only.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet eval lfw --dir DIR [--pairs FILE] [--train-pairs FILE] [OPTIONS]\n"
    "\n"
    "Face verification accuracy on LFW: embed every image the pairs name (each once),\n"
    "then 10-fold cross-validation over pairs.txt (View 2), or with --train-pairs a\n"
    "threshold chosen on those pairs and tested on --pairs (View 1). Prints accuracy\n"
    "(mean +- std over folds), VAL at FAR=1e-3, ROC AUC, EER and the best threshold.\n"
    "\n"
    "  --dir DIR               the LFW images: DIR/NAME/NAME_0001.jpg\n"
    "  --pairs FILE            the pairs to test (default DIR/pairs.txt)\n"
    "  --train-pairs FILE      View 1: choose the thresholds on FILE (pairsDevTrain.txt)\n"
    "                          and test them on --pairs (pairsDevTest.txt)\n"
    "  --limit N               only the first N matched and N mismatched pairs of each\n"
    "                          fold, for quick runs (--limit 10: 200 pairs of View 2)\n"
    "  --raw                   distances between the network's raw vectors (face-api's\n"
    "                          descriptors) instead of unit embeddings\n"
    "  --cache DIR             where embeddings are kept between runs, so an interrupted run\n"
    "                          resumes (default .cache/facenet-eval)\n"
    "  --no-cache              embed everything afresh and keep nothing\n"
    "  --write-threshold       record the best threshold in the embedding model file's\n"
    "                          metadata, where compare and identification read it\n"
    "  --json                  the figures as one JSON object instead of text\n"
    "  --report DIR            also write DIR/index.html: ROC curve, distance histograms,\n"
    "                          the worst-scored pairs as thumbnails (DIR/thumbs/)\n";
static const char TAIL[] =
    "\nLFW photos are portraits, so eval's defaults differ from the other photo commands':\n"
    "--closeup always and --min-score 0.2 (the face nearest the centre is the subject).\n"
    "\nEach of the --threads workers has its own models and pipeline and embeds whole\n"
    "images. Progress goes to stderr. Exit status: 0 done, 1 an image or file could not\n"
    "be read, 2 bad usage.\n";

/* A photo without a subject is embedded from its central square of this
 * fraction of the shorter side, 115x115 of LFW's 250x250 (LFW centred the
 * face): on 89 LFW photos where a face was found, the central crop of
 * 110-120 px gave the embedding nearest the aligned chip's (mean distance
 * 0.28, against 0.36 at 150 px and 0.55 to another person's chip), see
 * docs/evaluation.md. */
#define FALLBACK_FRACTION 0.46
/* The subject is the face whose box centre is nearest the photo's centre,
 * if that is within this fraction of the shorter side: LFW centred every
 * subject, and a face found only off centre is somebody else (on the first
 * 312 images, subjects lay 2-31 px off centre, the others 72-97 px). */
#define SUBJECT_MAX_OFFSET 0.2
/* The key's first word: bump when what an embedding means changes. */
#define CACHE_KEY_VERSION "facenet-eval-lfw 2"
#define WORST_SHOWN 12
/* --jitters: chips embedded per call (each with its mirror image: a batch
 * of 16, where the network's batched rate is reached). */
#define JITTER_GROUP 8

typedef struct eval_opts {
    cli_pipe_opts pipe;
    const char *dir, *pairs, *train_pairs, *cache_dir, *report_dir;
    int write_threshold;
    int json, limit, flip, raw, no_cache;
} eval_opts;

/* One image to embed, shared by every pair that names it. */
typedef struct image_job {
    const char *name; /* NAME/NAME_0001.jpg */
    const char *path; /* DIR/NAME/NAME_0001.jpg */
    facenet_eval_entry entry;
    int cached;
} image_job;

struct run;

typedef struct worker {
    struct run *run;
    cli_pipe pipe; /* context, detector, landmarks, pipeline */
    facenet_model *emb;
    facenet_session *sess;
    pthread_t thread;
    int started;
} worker;

typedef struct run {
    const eval_opts *o;
    image_job *jobs;
    /* n_jobs records of rec = 2 dim floats: the raw vectors of the chip and
     * of its mirror image. --raw and --no-flip only choose how they are
     * combined, so one embedding run (and one cache) serves all four. */
    float *emb;
    int n_jobs, dim, rec;
    int *todo, n_todo;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int next; /* next todo slot to hand out */
    int *finished; /* job indices in the order they were done */
    int n_finished;
    int active; /* workers still running */
    int failed;
    char err[1024];
} run_t;

/* A set of pairs with its images mapped onto the run's jobs. */
typedef struct pair_set {
    const char *file;
    facenet_eval_pairs *pairs;
    int *job; /* image index -> job index */
    int n;
    float *dist;
    int *same, *fold;
} pair_set;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ embedding */

/* The face whose box centre is nearest the photo's centre (on a tie, the
 * better scored: the pipeline lists faces best first), or -1 if even that
 * one is off centre. */
static int subject(const facenet_face *f, int n, int width, int height) {
    int best = -1;
    double best_d = INFINITY;
    for (int i = 0; i < n; i++) {
        const double dx = f[i].x + 0.5 * f[i].width - 0.5 * width,
                     dy = f[i].y + 0.5 * f[i].height - 0.5 * height;
        if (dx * dx + dy * dy < best_d) {
            best_d = dx * dx + dy * dy;
            best = i;
        }
    }
    const double cap = SUBJECT_MAX_OFFSET * (width < height ? width : height);
    return best_d <= cap * cap ? best : -1;
}

/* Embed one image into out (2 dim floats: the raw vectors of the chip and
 * of its mirror); returns 0, or -1 with err set. */
static int embed_image(worker *w, image_job *j, float *out, char *err, size_t errcap) {
    const int dim = w->run->dim;
    facenet_ctx *ctx = w->pipe.ctx;
    /* chips[2c] a chip, chips[2c + 1] its mirror image; with --jitters up to
     * JITTER_GROUP chips and their mirrors go to the network in one call. */
    facenet_image img, chips[2 * JITTER_GROUP];
    memset(&img, 0, sizeof img);
    memset(chips, 0, sizeof chips);
    float v[2 * JITTER_GROUP * FACENET_EMBEDDING_DIM];
    int n = 0, rc = -1;
    /* An unreadable photo stops the run: the data set is broken. */
    facenet_status st = facenet_image_load(ctx, j->path, &img);
    if (st != FACENET_OK) goto fail;
    /* A photo the pipeline fails on gets the fallback instead: otherwise
     * every resumed run would stop at the same photo. */
    st = facenet_pipeline_run(w->pipe.pl, &img, w->pipe.faces, w->pipe.cap, &n);
    if (st == FACENET_ERR_NO_MEMORY) goto fail;
    if (st != FACENET_OK) {
        fprintf(stderr, "\nfacenet eval: warning: %s: %s; using the central crop\n", j->path,
                facenet_ctx_error(ctx));
        n = 0;
    }
    j->entry.n_faces = n;
    int subj = subject(w->pipe.faces, n, img.width, img.height);
    if (subj >= 0) {
        const facenet_face *f = &w->pipe.faces[subj];
        j->entry.flags = FACENET_EVAL_FACE;
        j->entry.box[0] = f->x;
        j->entry.box[1] = f->y;
        j->entry.box[2] = f->width;
        j->entry.box[3] = f->height;
        st = facenet_pipeline_chip(w->pipe.pl, &img, f, &chips[0]);
        if (st == FACENET_ERR_NO_MEMORY) goto fail;
        if (st != FACENET_OK) {
            fprintf(stderr, "\nfacenet eval: warning: %s: %s; using the central crop\n", j->path,
                    facenet_ctx_error(ctx));
            subj = -1;
        }
    }
    if (subj < 0) {
        const int shorter = img.width < img.height ? img.width : img.height;
        int side = (int)lround(FALLBACK_FRACTION * shorter);
        if (side < 1) side = 1;
        const int x = (img.width - side) / 2, y = (img.height - side) / 2;
        j->entry.flags = FACENET_EVAL_FALLBACK;
        j->entry.box[0] = (float)x;
        j->entry.box[1] = (float)y;
        j->entry.box[2] = j->entry.box[3] = (float)side;
        st = facenet_image_crop(ctx, &img, x, y, side, side, &chips[0]);
    }
    /* With --jitters, the raw vectors are the means over the subject's
     * jittered chips (and over their mirrors), as the pipeline computes
     * them; the central crop has no landmarks to jitter about. */
    const int nj = subj >= 0 ? w->run->o->pipe.params.jitters : 1;
    double sum[2 * FACENET_EMBEDDING_DIM] = {0};
    for (int k0 = 0; k0 < nj && st == FACENET_OK; k0 += JITTER_GROUP) {
        const int g = nj - k0 < JITTER_GROUP ? nj - k0 : JITTER_GROUP;
        for (int c = 0; c < g && st == FACENET_OK; c++) {
            if (k0 + c > 0) {
                facenet_image_free(&chips[2 * c]);
                facenet_image_free(&chips[2 * c + 1]);
                st = facenet_pipeline_jitter_chip(w->pipe.pl, &img, &w->pipe.faces[subj], k0 + c, &chips[2 * c]);
            }
            if (st == FACENET_OK) st = facenet_image_mirror(ctx, &chips[2 * c], &chips[2 * c + 1]);
        }
        if (st == FACENET_OK) st = facenet_embed_chips(w->sess, chips, 2 * g, v, FACENET_EMBED_RAW);
        /* In order of k, as one chip at a time would add them. */
        for (int c = 0; st == FACENET_OK && c < g; c++)
            for (int i = 0; i < 2 * dim; i++) sum[i] += v[(size_t)2 * c * dim + i];
    }
    if (st != FACENET_OK) goto fail;
    for (int i = 0; i < 2 * dim; i++) out[i] = (float)(sum[i] / nj);
    rc = 0;
    goto done;
fail: {
    /* The library's messages about a file may already name it. */
    const char *msg = facenet_ctx_error(ctx)[0] ? facenet_ctx_error(ctx) : facenet_status_str(st);
    if (strstr(msg, j->path))
        snprintf(err, errcap, "%s", msg);
    else
        snprintf(err, errcap, "%s: %s", j->path, msg);
}
done:
    for (int c = 0; c < 2 * JITTER_GROUP; c++) facenet_image_free(&chips[c]);
    facenet_image_free(&img);
    return rc;
}

static void *worker_main(void *arg) {
    worker *w = arg;
    run_t *r = w->run;
    for (;;) {
        pthread_mutex_lock(&r->mu);
        if (r->failed || r->next >= r->n_todo) {
            pthread_mutex_unlock(&r->mu);
            break;
        }
        const int j = r->todo[r->next++];
        pthread_mutex_unlock(&r->mu);
        char err[1024];
        const int rc = embed_image(w, &r->jobs[j], r->emb + (size_t)j * r->rec, err, sizeof err);
        pthread_mutex_lock(&r->mu);
        if (rc == 0) {
            r->finished[r->n_finished++] = j;
        } else if (!r->failed) {
            r->failed = 1;
            snprintf(r->err, sizeof r->err, "%s", err);
        }
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
    pthread_mutex_lock(&r->mu);
    r->active--;
    pthread_cond_signal(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Models and pipeline for one worker. The pipeline does not embed: the
 * worker embeds only the subject's chip (and its mirror) itself. */
static int worker_open(worker *w, run_t *r) {
    memset(w, 0, sizeof *w);
    w->run = r;
    cli_pipe_opts po = r->o->pipe;
    po.com.threads = 1; /* the workers are the parallelism */
    if (cli_pipe_open(&w->pipe, &po, 0) != 0) return -1;
    w->emb = cli_load_model(w->pipe.ctx, po.com.model, CLI_EMBEDDING_MODEL);
    if (!w->emb) return -1;
    if (facenet_model_embedding_dim(w->emb) != FACENET_EMBEDDING_DIM) {
        fprintf(stderr, "facenet eval: the model's embeddings have %d floats, not %d\n",
                facenet_model_embedding_dim(w->emb), FACENET_EMBEDDING_DIM);
        return -1;
    }
    facenet_status st = facenet_session_create(w->pipe.ctx, w->emb, &w->sess);
    if (st != FACENET_OK) {
        cli_error("eval", w->pipe.ctx, st);
        return -1;
    }
    return 0;
}

static void worker_close(worker *w) {
    facenet_session_free(w->sess);
    facenet_model_free(w->emb);
    cli_pipe_close(&w->pipe);
}

/* ------------------------------------------------------------ progress */

typedef struct progress {
    int tty;
    double start, last;
    int total;
} progress;

static void progress_show(progress *p, int done, int final) {
    const double now = now_s(), el = now - p->start;
    if (!final && now - p->last < (p->tty ? 0.25 : 30.0)) return;
    p->last = now;
    const double rate = el > 0 ? done / el : 0;
    char eta[32], spent[32];
    if (rate > 0)
        cli_format_duration((p->total - done) / rate, eta, sizeof eta);
    else
        snprintf(eta, sizeof eta, "--:--");
    cli_format_duration(el, spent, sizeof spent);
    const int pct = p->total ? (int)(100.0 * done / p->total) : 100;
    if (p->tty) {
        char bar[31];
        const int fill = p->total ? (int)(30.0 * done / p->total) : 30;
        for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        fprintf(stderr, "\rembedding [%s] %d/%d %3d%% %5.1f img/s %s %s ", bar, done, p->total, pct, rate,
                final ? "took" : "ETA", final ? spent : eta);
        if (final) fputc('\n', stderr);
    } else if (final) {
        fprintf(stderr, "facenet eval: embedded %d images in %s (%.1f images/s)\n", done, spent, rate);
    } else {
        fprintf(stderr, "facenet eval: %d/%d images embedded (%d%%), %.1f images/s, ETA %s\n", done, p->total,
                pct, rate, eta);
    }
    fflush(stderr);
}

/* ------------------------------------------------------------ the cache key */

/* A model's identity: the size and FNV-1a hash of its safetensors data
 * (what follows the 8-byte length and the JSON header), so a retrained
 * model with the same model_id does not reuse embeddings of the old one,
 * while a change of metadata alone (the threshold written by
 * --write-threshold) keeps the cache. */
static int file_digest(const char *path, char *buf, size_t cap) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    uint64_t h = 1469598103934665603ull, size = 0;
    unsigned char chunk[1 << 16];
    size_t n;
    if (fread(chunk, 1, 8, f) != 8) {
        fclose(f);
        return -1;
    }
    uint64_t header = 0;
    for (int i = 7; i >= 0; i--) header = header << 8 | chunk[i];
    if (header > (1ull << 40) || fseeko(f, (off_t)header, SEEK_CUR) != 0) {
        fclose(f);
        return -1;
    }
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        for (size_t i = 0; i < n; i++) {
            h ^= chunk[i];
            h *= 1099511628211ull;
        }
        size += n;
    }
    fclose(f);
    snprintf(buf, cap, "%llu:%016llx", (unsigned long long)size, (unsigned long long)h);
    return 0;
}

static int model_identity(const facenet_model *m, const char *explicit_path, const char *file_name, char *buf,
                          size_t cap) {
    char pathbuf[PATH_MAX + 64], digest[64];
    const char *path = cli_find_model(explicit_path, file_name, pathbuf, sizeof pathbuf);
    if (!path || file_digest(path, digest, sizeof digest) != 0) return -1;
    const char *id = facenet_model_meta(m, "model_id");
    snprintf(buf, cap, "%s %s", id ? id : facenet_model_architecture(m), digest);
    return 0;
}

static int cache_key(const eval_opts *o, const worker *w, char *key, size_t cap) {
    const cli_pipe_opts *po = &o->pipe;
    char emb[512], det[512], lmk[512], real[PATH_MAX];
    if (model_identity(w->emb, po->com.model, CLI_EMBEDDING_MODEL, emb, sizeof emb) ||
        model_identity(w->pipe.det, po->det_model, cli_detector_file(po->detector), det, sizeof det) ||
        model_identity(w->pipe.lmk, po->lmk_model, cli_landmarks_file(po->landmarks), lmk, sizeof lmk))
        return -1;
    /* The images are named relative to the folder, so the folder itself
     * is part of the key: LFW and its deep-funneled copy share names. */
    if (!realpath(o->dir, real)) snprintf(real, sizeof real, "%s", o->dir);
    const facenet_pipeline_params *p = &po->params;
    char jit[32] = "";
    if (p->jitters > 1) snprintf(jit, sizeof jit, "; jitters=%d", p->jitters);
    int n = snprintf(key, cap,
                     CACHE_KEY_VERSION
                     "; data=%s; emb=%s; det=%s; lmk=%s; min_score=%.6g; max_faces=%d; iou=%.6g; "
                     "tiny_size=%d; closeup=%d; align=%s; padding=%.4g; vectors=raw+mirror; subject=nearest<%.2f; "
                     "fallback=center%.2f%s%s",
                     real, emb, det, lmk, (double)p->min_score, p->max_faces, (double)p->iou,
                     p->tiny_input_size, p->closeup, p->align == FACENET_ALIGN_FACEAPI ? "faceapi" : "similarity",
                     p->align == FACENET_ALIGN_FACEAPI ? 0.0 : (double)p->align_padding, SUBJECT_MAX_OFFSET, FALLBACK_FRACTION,
                     /* int8 embeddings differ from float32 ones of the same file (whose
                      * digest, in emb, covers the calibration): a key of their own. The
                      * float32 key is unchanged, so existing caches stay valid. */
                     po->com.int8 ? "; precision=int8" : "", jit);
    return n > 0 && (size_t)n < cap ? 0 : -1;
}

/* ------------------------------------------------------------ images and pairs */

typedef struct name_ref {
    const char *name, *path;
    int set, image;
} name_ref;

static int cmp_ref(const void *a, const void *b) {
    const name_ref *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    return x->set != y->set ? x->set - y->set : x->image - y->image;
}

/* One job per distinct image over all pair sets, in a stable order. */
static int build_jobs(run_t *r, pair_set *sets, int n_sets) {
    int total = 0;
    for (int s = 0; s < n_sets; s++) total += facenet_eval_pairs_image_count(sets[s].pairs);
    name_ref *refs = malloc(sizeof *refs * (size_t)(total ? total : 1));
    r->jobs = calloc((size_t)(total ? total : 1), sizeof *r->jobs);
    if (!refs || !r->jobs) {
        free(refs);
        return -1;
    }
    int k = 0;
    for (int s = 0; s < n_sets; s++) {
        const int m = facenet_eval_pairs_image_count(sets[s].pairs);
        sets[s].job = malloc(sizeof(int) * (size_t)(m ? m : 1));
        if (!sets[s].job) {
            free(refs);
            return -1;
        }
        for (int i = 0; i < m; i++) {
            refs[k].name = facenet_eval_pairs_image_name(sets[s].pairs, i);
            refs[k].path = facenet_eval_pairs_image(sets[s].pairs, i);
            refs[k].set = s;
            refs[k].image = i;
            k++;
        }
    }
    qsort(refs, (size_t)total, sizeof *refs, cmp_ref);
    r->n_jobs = 0;
    for (int i = 0; i < total; i++) {
        if (i == 0 || strcmp(refs[i].name, refs[i - 1].name) != 0) {
            r->jobs[r->n_jobs].name = refs[i].name;
            r->jobs[r->n_jobs].path = refs[i].path;
            r->n_jobs++;
        }
        sets[refs[i].set].job[refs[i].image] = r->n_jobs - 1;
    }
    free(refs);
    return 0;
}

static void unit(float *v, int dim) {
    double norm = 0;
    for (int i = 0; i < dim; i++) norm += (double)v[i] * v[i];
    if (norm > 0)
        for (int i = 0; i < dim; i++) v[i] = (float)(v[i] / sqrt(norm));
}

/* The vector a job is compared by: the mean of the unit embeddings of its
 * chip and the chip's mirror, back on the sphere (as FACENET_EMBED_FLIP),
 * or with --no-flip the chip's alone; with --raw the same from the
 * network's raw vectors, as they are. */
static void final_vector(const run_t *r, int job, float *out) {
    const int dim = r->dim;
    const float *chip = r->emb + (size_t)job * r->rec, *mirrored = chip + dim;
    float m[FACENET_EMBEDDING_DIM];
    memcpy(out, chip, sizeof(float) * (size_t)dim);
    if (!r->o->raw) unit(out, dim);
    if (!r->o->flip) return;
    memcpy(m, mirrored, sizeof(float) * (size_t)dim);
    if (!r->o->raw) unit(m, dim);
    for (int i = 0; i < dim; i++) out[i] = 0.5f * (out[i] + m[i]);
    if (!r->o->raw) unit(out, dim);
}

static int set_distances(pair_set *ps, const run_t *r) {
    ps->n = facenet_eval_pairs_count(ps->pairs);
    ps->dist = malloc(sizeof(float) * (size_t)ps->n);
    ps->same = malloc(sizeof(int) * (size_t)ps->n);
    ps->fold = malloc(sizeof(int) * (size_t)ps->n);
    if (!ps->dist || !ps->same || !ps->fold) return -1;
    for (int i = 0; i < ps->n; i++) {
        const facenet_eval_pair *p = facenet_eval_pairs_get(ps->pairs, i);
        float a[FACENET_EMBEDDING_DIM], b[FACENET_EMBEDDING_DIM];
        final_vector(r, ps->job[p->image[0]], a);
        final_vector(r, ps->job[p->image[1]], b);
        ps->dist[i] = facenet_distance(a, b, r->dim);
        ps->same[i] = p->same;
        ps->fold[i] = p->fold;
    }
    return 0;
}

static void set_free(pair_set *ps) {
    facenet_eval_pairs_free(ps->pairs);
    free(ps->job);
    free(ps->dist);
    free(ps->same);
    free(ps->fold);
}

/* ------------------------------------------------------------ the embedding stage */

/* Embed every job not in the cache; returns 0 or -1 (message printed). */
static int embed_all(run_t *r, facenet_ctx *ctx, facenet_eval_cache *cache, worker *workers, int n_workers,
                     int *embedded) {
    *embedded = 0;
    if (r->n_todo == 0) return 0;
    if (n_workers > r->n_todo) n_workers = r->n_todo;
    for (int i = 1; i < n_workers; i++)
        if (worker_open(&workers[i], r) != 0) return -1;
    /* Counted before the threads start: a fast worker may finish first. */
    r->active = n_workers;
    for (int i = 0; i < n_workers; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) == 0) {
            workers[i].started = 1;
            continue;
        }
        fprintf(stderr, "facenet eval: cannot start a worker thread\n");
        pthread_mutex_lock(&r->mu);
        r->active -= n_workers - i;
        pthread_mutex_unlock(&r->mu);
        break;
    }
    progress pr = {isatty(STDERR_FILENO), now_s(), now_s(), r->n_todo};
    int saved = 0, cache_ok = cache != NULL;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        const int running = r->active > 0;
        const int upto = r->n_finished;
        pthread_mutex_unlock(&r->mu);
        /* Store what the workers finished; they only append to finished[],
         * and the mutex has published the embeddings before the indices. */
        for (; saved < upto; saved++) {
            const image_job *j = &r->jobs[r->finished[saved]];
            if (cache_ok && facenet_eval_cache_put(cache, j->name,
                                                   r->emb + (size_t)r->finished[saved] * r->rec, &j->entry)) {
                fprintf(stderr, "\nfacenet eval: warning: %s; going on without the cache\n",
                        facenet_ctx_error(ctx));
                cache_ok = 0;
            }
        }
        if (!running) break;
        progress_show(&pr, upto, 0);
        pthread_mutex_lock(&r->mu);
        if (r->active > 0 && r->n_finished == upto) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 250 * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&r->cv, &r->mu, &ts);
        }
    }
    for (int i = 0; i < n_workers; i++)
        if (workers[i].started) pthread_join(workers[i].thread, NULL);
    *embedded = r->n_finished;
    progress_show(&pr, r->n_finished, 1);
    if (r->failed || r->n_finished < r->n_todo) {
        fprintf(stderr, "facenet eval: %s\n", r->failed ? r->err : "the workers stopped early");
        if (cache_ok && r->n_finished > 0)
            fprintf(stderr,
                    "facenet eval: the %d images embedded so far are cached; a rerun resumes from there\n",
                    r->n_finished);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ output */

/* "1e-3" for a power of ten, else the plain number. */
static const char *far_label(double far, char *buf, size_t cap) {
    const double e = log10(far);
    if (fabs(e - round(e)) < 1e-9)
        snprintf(buf, cap, "1e%d", (int)round(e));
    else
        snprintf(buf, cap, "%g", far);
    return buf;
}

typedef struct summary {
    const char *view_desc;
    int view, n_images, embedded, from_cache, multi_face;
    int no_face; /* fallbacks, of which... */
    int off_centre; /* ...photos whose faces were all away from the centre */
    double wall;
    const char *cache_path;
    const char *model_id;
} summary;

static void print_text(const eval_opts *o, const summary *s, const pair_set *test, const pair_set *train,
                       const facenet_eval_result *r, const run_t *run) {
    printf("LFW View %d: %s\n", s->view, s->view_desc);
    if (s->view == 2)
        printf("accuracy        %.2f%% +- %.2f%%   (%d-fold cross-validation: each fold's threshold chosen "
               "on the other %d; population std)\n",
               100 * r->accuracy, 100 * r->accuracy_std, r->n_folds, r->n_folds - 1);
    else
        printf("accuracy        %.2f%%   (on %s at the threshold chosen on %s)\n", 100 * r->accuracy,
               test->file, train->file);
    char far[32], label[48];
    snprintf(label, sizeof label, "VAL@FAR=%s", far_label(r->far_target, far, sizeof far));
    if (s->view == 2)
        printf("%-15s %.2f%% +- %.2f%%   (at FAR %.3f%% +- %.3f%% on the test folds)\n", label, 100 * r->val,
               100 * r->val_std, 100 * r->far, 100 * r->far_std);
    else
        printf("%-15s %.2f%%   (at FAR %.3f%% on the test pairs)\n", label, 100 * r->val, 100 * r->far);
    printf("ROC AUC         %.4f\n", r->auc);
    printf("EER             %.2f%%   (at distance %.4f)\n", 100 * r->eer, r->eer_threshold);
    printf("threshold       %.4f   (best accuracy on %s: %.2f%%)\n", r->threshold,
           s->view == 2 ? "all pairs" : "the training pairs", 100 * r->threshold_accuracy);
    printf("pairs           %d (%d matched, %d mismatched)%s\n", r->n_pairs, r->n_same, r->n_diff,
           o->limit ? "   [--limit: a subset]" : "");
    printf(
        "images          %d: %d with a face (%d with several: the one nearest the centre is the subject)\n",
        s->n_images, s->n_images - s->no_face, s->multi_face);
    printf("no face         %d (%.2f%%; %d with faces only off centre): embedded the central %.0f%% square "
           "instead (%ldx%ld of 250x250)\n",
           s->no_face, s->n_images ? 100.0 * s->no_face / s->n_images : 0.0, s->off_centre,
           100 * FALLBACK_FRACTION, lround(FALLBACK_FRACTION * 250), lround(FALLBACK_FRACTION * 250));
    int shown = 0;
    for (int i = 0; i < run->n_jobs && shown < 5; i++)
        if (run->jobs[i].entry.flags == FACENET_EVAL_FALLBACK)
            printf("%s%s", shown++ ? ", " : "                ", run->jobs[i].name);
    if (shown) printf("%s\n", s->no_face > shown ? ", ..." : "");
    char jit[32] = "";
    if (o->pipe.params.jitters > 1) snprintf(jit, sizeof jit, " + %d jitters", o->pipe.params.jitters);
    printf("embedding       %s%s%s%s%s, %s detector, %s landmarks, %s alignment\n", s->model_id,
           o->pipe.com.int8 ? " int8" : "", o->flip ? " + flip" : "", jit, o->raw ? " (raw vectors)" : "",
           o->pipe.detector, o->pipe.landmarks,
           o->pipe.params.align == FACENET_ALIGN_FACEAPI ? "face-api" : "similarity");
    if (s->cache_path)
        printf("cache           %s: %d images from the cache, %d embedded now\n", s->cache_path,
               s->from_cache, s->embedded);
    else
        printf("cache           none: %d images embedded\n", s->embedded);
    printf("wall time       %.1f s\n", s->wall);
}

static void json_num(const char *key, double v, int last) {
    printf("  \"%s\": %.6g%s\n", key, v, last ? "" : ",");
}

static void print_json(const eval_opts *o, const summary *s, const pair_set *test, const pair_set *train,
                       const facenet_eval_result *r, const run_t *run) {
    printf("{\n  \"benchmark\": \"lfw\",\n  \"view\": %d,\n  \"pairs_file\": ", s->view);
    cli_json_string(stdout, test->file);
    if (train) {
        printf(",\n  \"train_pairs_file\": ");
        cli_json_string(stdout, train->file);
    }
    printf(",\n  \"limit\": %d,\n  \"folds\": %d,\n  \"pairs\": %d,\n  \"matched\": %d,\n"
           "  \"mismatched\": %d,\n",
           o->limit, r->n_folds, r->n_pairs, r->n_same, r->n_diff);
    json_num("accuracy", r->accuracy, 0);
    json_num("accuracy_std", r->accuracy_std, 0);
    printf("  \"std\": \"population\",\n");
    json_num("far_target", r->far_target, 0);
    json_num("val", r->val, 0);
    json_num("val_std", r->val_std, 0);
    json_num("far", r->far, 0);
    json_num("far_std", r->far_std, 0);
    json_num("auc", r->auc, 0);
    json_num("eer", r->eer, 0);
    json_num("eer_threshold", r->eer_threshold, 0);
    json_num("threshold", r->threshold, 0);
    json_num("threshold_accuracy", r->threshold_accuracy, 0);
    printf("  \"per_fold\": [");
    for (int f = 0; f < r->n_folds; f++)
        printf(
            "%s\n    {\"fold\": %d, \"accuracy\": %.6g, \"threshold\": %.6g, \"val\": %.6g, \"far\": %.6g, "
            "\"val_threshold\": %.6g}",
            f ? "," : "", f + 1, r->fold_accuracy[f], r->fold_threshold[f], r->fold_val[f], r->fold_far[f],
            r->fold_val_threshold[f]);
    printf("\n  ],\n  \"images\": %d,\n  \"multi_face\": %d,\n  \"no_face\": %d,\n", s->n_images,
           s->multi_face, s->no_face);
    printf("  \"no_face_fallback\": \"central %.0f%% square of the photo\",\n  \"no_face_images\": [",
           100 * FALLBACK_FRACTION);
    int k = 0;
    for (int i = 0; i < run->n_jobs; i++)
        if (run->jobs[i].entry.flags == FACENET_EVAL_FALLBACK) {
            printf("%s", k++ ? ", " : "");
            cli_json_string(stdout, run->jobs[i].name);
        }
    printf(
        "],\n  \"no_face_off_centre\": %d,\n  \"embedded\": %d,\n  \"from_cache\": %d,\n  \"cache_file\": ",
        s->off_centre, s->embedded, s->from_cache);
    if (s->cache_path)
        cli_json_string(stdout, s->cache_path);
    else
        printf("null");
    printf(",\n  \"model\": ");
    cli_json_string(stdout, s->model_id);
    printf(",\n  \"detector\": \"%s\",\n  \"landmarks\": \"%s\",\n  \"align\": \"%s\",\n", o->pipe.detector,
           o->pipe.landmarks, o->pipe.params.align == FACENET_ALIGN_FACEAPI ? "faceapi" : "similarity");
    printf("  \"flip\": %s,\n  \"jitters\": %d,\n  \"raw\": %s,\n", o->flip ? "true" : "false",
           o->pipe.params.jitters, o->raw ? "true" : "false");
    json_num("wall_seconds", s->wall, 1);
    printf("}\n");
}

/* ------------------------------------------------------------ the HTML report */

static void html_text(FILE *f, const char *s) {
    for (; *s; s++) {
        if (*s == '<')
            fputs("&lt;", f);
        else if (*s == '>')
            fputs("&gt;", f);
        else if (*s == '&')
            fputs("&amp;", f);
        else if (*s == '"')
            fputs("&quot;", f);
        else if (*s == '\'')
            fputs("&#39;", f);
        else
            fputc(*s, f);
    }
}

/* The photo shrunk by a whole factor to at most 128 pixels a side, by
 * averaging blocks (no aliasing), saved as PNG. */
static int save_thumb(facenet_ctx *ctx, const char *src, const char *dst, int *width, int *height) {
    facenet_image img, th;
    memset(&img, 0, sizeof img);
    memset(&th, 0, sizeof th);
    if (facenet_image_load(ctx, src, &img) != FACENET_OK) return -1;
    const int big = img.width > img.height ? img.width : img.height;
    const int k = (big + 127) / 128;
    const int w = img.width / k > 0 ? img.width / k : 1, h = img.height / k > 0 ? img.height / k : 1;
    int rc = -1;
    if (facenet_image_alloc(ctx, w, h, img.channels, &th) == FACENET_OK) {
        const int c = img.channels;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++) {
                    unsigned sum = 0, cnt = 0;
                    for (int dy = 0; dy < k && y * k + dy < img.height; dy++)
                        for (int dx = 0; dx < k && x * k + dx < img.width; dx++, cnt++)
                            sum +=
                                img.data[((size_t)(y * k + dy) * img.width + (size_t)(x * k + dx)) * c + ch];
                    th.data[((size_t)y * w + x) * c + ch] = (uint8_t)((sum + cnt / 2) / (cnt ? cnt : 1));
                }
        rc = facenet_image_save(ctx, &th, dst) == FACENET_OK ? 0 : -1;
    }
    *width = img.width;
    *height = img.height;
    facenet_image_free(&th);
    facenet_image_free(&img);
    return rc;
}

typedef struct ranked {
    int pair;
    float d;
} ranked;

static int cmp_far(const void *a, const void *b) { /* largest distance first */
    const ranked *x = a, *y = b;
    return (x->d < y->d) - (x->d > y->d);
}
static int cmp_near(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    return (x->d > y->d) - (x->d < y->d);
}

/* The ROC on a log FAR axis, where the operating points of a face verifier
 * live (a linear ROC at 99% is a corner). */
static void svg_roc(FILE *f, const double *fpr, const double *tpr, int m, const facenet_eval_result *r,
                    int n_diff) {
    const double X0 = 60, X1 = 470, Y0 = 20, Y1 = 300;
    int lo = (int)floor(log10(1.0 / (n_diff > 0 ? n_diff : 1)));
    if (lo > -1) lo = -1;
    double ymin = 0;
    for (int i = 0; i < m; i++)
        if (fpr[i] > 0) {
            ymin = i > 0 ? tpr[i - 1] : 0;
            break;
        }
    ymin = floor(ymin * 10) / 10;
    if (ymin > 0.9) ymin = 0.9;
#define RX(v) (X0 + ((v) > 0 ? (log10(v) - lo) / (0 - lo) : 0) * (X1 - X0))
#define RY(v) (Y1 - ((v)-ymin) / (1 - ymin) * (Y1 - Y0))
    fprintf(
        f,
        "<svg width=\"500\" height=\"350\" viewBox=\"0 0 500 350\" role=\"img\" "
        "aria-label=\"ROC curve\">\n<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" class=\"plot\"/>\n",
        X0, Y0, X1 - X0, Y1 - Y0);
    for (int e = lo; e <= 0; e++) {
        const double x = RX(pow(10, e));
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" class=\"grid\"/>"
                "<text x=\"%.1f\" y=\"%g\" class=\"tick\" text-anchor=\"middle\">1e%d</text>\n",
                x, Y0, x, Y1, x, Y1 + 16, e);
    }
    for (int k = 0; k <= 10; k++) {
        const double v = ymin + (1 - ymin) * k / 10, y = RY(v);
        fprintf(f,
                "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" class=\"grid\"/>"
                "<text x=\"%g\" y=\"%.1f\" class=\"tick\" text-anchor=\"end\">%.2f</text>\n",
                X0, y, X1, y, X0 - 6, y + 4, v);
    }
    fprintf(
        f,
        "<text x=\"%g\" y=\"340\" text-anchor=\"middle\">false accept rate (log scale; 0 drawn at the "
        "left edge)</text>\n<text x=\"16\" y=\"%g\" text-anchor=\"middle\" transform=\"rotate(-90 16 %g)\">"
        "true accept rate</text>\n",
        (X0 + X1) / 2, (Y0 + Y1) / 2, (Y0 + Y1) / 2);
    fprintf(f, "<polyline class=\"roc\" points=\"%.1f,%.1f", RX(0), RY(ymin > 0 ? ymin : 0));
    for (int i = 0; i < m; i++) {
        double y = tpr[i] < ymin ? ymin : tpr[i];
        fprintf(f, " %.1f,%.1f", RX(fpr[i]), RY(y));
    }
    fprintf(f, "\"/>\n");
    const double xv = RX(r->far_target);
    char far[32];
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" class=\"mark\"/>"
            "<text x=\"%.1f\" y=\"%g\" class=\"tick\">FAR %s: VAL %.2f%%</text>\n",
            xv, Y0, xv, Y1, xv + 4, Y1 - 8, far_label(r->far_target, far, sizeof far), 100 * r->val);
    if (r->eer > 0)
        fprintf(f,
                "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" class=\"eer\"/><text x=\"%.1f\" y=\"%.1f\" "
                "class=\"tick\">EER %.2f%%</text>\n",
                RX(r->eer), RY(1 - r->eer < ymin ? ymin : 1 - r->eer), RX(r->eer) - 60, RY(1 - r->eer) + 16,
                100 * r->eer);
    fprintf(f, "</svg>\n");
#undef RX
#undef RY
}

/* Histograms of matched and mismatched distances, each as a share of its
 * own pairs so the two are comparable. */
static void svg_hist(FILE *f, const pair_set *ps, double threshold) {
    enum { BINS = 60 };
    const double X0 = 60, X1 = 470, Y0 = 20, Y1 = 280;
    double xmax = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->dist[i] > xmax) xmax = ps->dist[i];
    xmax = ceil(xmax * 10 + 1e-9) / 10;
    if (xmax <= 0) xmax = 1;
    double h[2][BINS];
    int cnt[2] = {0, 0};
    memset(h, 0, sizeof h);
    for (int i = 0; i < ps->n; i++) {
        int b = (int)(ps->dist[i] / xmax * BINS);
        if (b >= BINS) b = BINS - 1;
        if (b < 0) b = 0;
        h[ps->same[i]][b]++;
        cnt[ps->same[i]]++;
    }
    double ymax = 0;
    for (int c = 0; c < 2; c++)
        for (int b = 0; b < BINS; b++) {
            h[c][b] /= cnt[c] ? cnt[c] : 1;
            if (h[c][b] > ymax) ymax = h[c][b];
        }
    if (ymax <= 0) ymax = 1;
    fprintf(f,
            "<svg width=\"500\" height=\"330\" viewBox=\"0 0 500 330\" role=\"img\" "
            "aria-label=\"distance histograms\">\n<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" "
            "class=\"plot\"/>\n",
            X0, Y0, X1 - X0, Y1 - Y0);
    const double step = xmax > 2 ? 0.5 : xmax > 1 ? 0.2 : 0.1;
    for (double v = 0; v <= xmax + 1e-9; v += step) {
        const double x = X0 + v / xmax * (X1 - X0);
        fprintf(f,
                "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" class=\"grid\"/>"
                "<text x=\"%.1f\" y=\"%g\" class=\"tick\" text-anchor=\"middle\">%.1f</text>\n",
                x, Y0, x, Y1, x, Y1 + 16, v);
    }
    const char *cls[2] = {"diff", "same"};
    for (int c = 1; c >= 0; c--) {
        fprintf(f, "<polygon class=\"%s\" points=\"%g,%g", cls[c], X0, Y1);
        for (int b = 0; b < BINS; b++) {
            const double xa = X0 + (X1 - X0) * b / BINS, xb = X0 + (X1 - X0) * (b + 1) / BINS;
            const double y = Y1 - h[c][b] / ymax * (Y1 - Y0);
            fprintf(f, " %.1f,%.1f %.1f,%.1f", xa, y, xb, y);
        }
        fprintf(f, " %g,%g\"/>\n", X1, Y1);
    }
    const double xt = X0 + threshold / xmax * (X1 - X0);
    fprintf(f,
            "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" class=\"mark\"/>"
            "<text x=\"%.1f\" y=\"%g\" class=\"tick\">threshold %.3f</text>\n",
            xt, Y0, xt, Y1, xt + 4, Y0 + 14, threshold);
    fprintf(f,
            "<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"12\" class=\"same\"/><text x=\"%g\" y=\"%g\">"
            "matched (%d)</text>\n<rect x=\"%g\" y=\"%g\" width=\"12\" height=\"12\" class=\"diff\"/>"
            "<text x=\"%g\" y=\"%g\">mismatched (%d)</text>\n",
            X1 - 150, Y0 + 30, X1 - 132, Y0 + 41, cnt[1], X1 - 150, Y0 + 50, X1 - 132, Y0 + 61, cnt[0]);
    fprintf(f,
            "<text x=\"%g\" y=\"320\" text-anchor=\"middle\">distance between the two embeddings</text>\n"
            "</svg>\n",
            (X0 + X1) / 2);
}

/* One thumbnail with the subject's box (or the fallback crop) drawn over
 * it, in the photo's own pixel coordinates. */
static void html_thumb(FILE *f, facenet_ctx *ctx, const eval_opts *o, const image_job *j) {
    const char *base = strrchr(j->name, '/');
    base = base ? base + 1 : j->name;
    size_t bl = strlen(base);
    if (bl > 4 && strcmp(base + bl - 4, ".jpg") == 0) bl -= 4;
    char file[512], path[PATH_MAX + 600];
    snprintf(file, sizeof file, "thumbs/%.*s.png", (int)bl, base);
    snprintf(path, sizeof path, "%s/%s", o->report_dir, file);
    int w = 0, h = 0;
    if (save_thumb(ctx, j->path, path, &w, &h) != 0) {
        fprintf(f, "<div class=\"thumb missing\">");
        html_text(f, facenet_ctx_error(ctx));
        fprintf(f, "</div>");
        return;
    }
    fprintf(f, "<svg class=\"thumb\" width=\"125\" height=\"%d\" viewBox=\"0 0 %d %d\"><image href=\"",
            (int)(125.0 * h / w + 0.5), w, h);
    html_text(f, file);
    fprintf(f,
            "\" width=\"%d\" height=\"%d\" preserveAspectRatio=\"none\"/><rect x=\"%.1f\" y=\"%.1f\" "
            "width=\"%.1f\" height=\"%.1f\" class=\"%s\"/></svg>",
            w, h, j->entry.box[0], j->entry.box[1], j->entry.box[2], j->entry.box[3],
            j->entry.flags == FACENET_EVAL_FALLBACK ? "fbbox" : "box");
}

static void html_pairs(FILE *f, facenet_ctx *ctx, const eval_opts *o, const run_t *run, const pair_set *ps,
                       const facenet_eval_result *r, int same) {
    ranked *rk = malloc(sizeof *rk * (size_t)(ps->n ? ps->n : 1));
    if (!rk) return;
    int m = 0;
    for (int i = 0; i < ps->n; i++)
        if (ps->same[i] == same) rk[m++] = (ranked){i, ps->dist[i]};
    qsort(rk, (size_t)m, sizeof *rk, same ? cmp_far : cmp_near);
    fprintf(f, "<div class=\"pairs\">\n");
    for (int i = 0; i < m && i < WORST_SHOWN; i++) {
        const facenet_eval_pair *p = facenet_eval_pairs_get(ps->pairs, rk[i].pair);
        const double t = r->n_folds > 1 ? r->fold_threshold[p->fold] : r->threshold;
        const int wrong = (rk[i].d < t) != same;
        const image_job *a = &run->jobs[ps->job[p->image[0]]], *b = &run->jobs[ps->job[p->image[1]]];
        fprintf(f, "<figure class=\"%s\">", wrong ? "wrong" : "right");
        html_thumb(f, ctx, o, a);
        html_thumb(f, ctx, o, b);
        fprintf(f, "<figcaption>");
        html_text(f, a->name);
        fprintf(f, "<br>");
        html_text(f, b->name);
        fprintf(f, "<br>distance <b>%.3f</b>, threshold %.3f%s: %s<br>line %d</figcaption></figure>\n",
                rk[i].d, t, r->n_folds > 1 ? " (its fold's)" : "", wrong ? "misjudged" : "right", p->line);
    }
    fprintf(f, "</div>\n");
    free(rk);
}

static int write_report(const eval_opts *o, const summary *s, const pair_set *test,
                        const facenet_eval_result *r, const run_t *run, facenet_ctx *ctx) {
    char path[PATH_MAX + 64];
    if (mkdir(o->report_dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "facenet eval: cannot create %s: %s\n", o->report_dir, strerror(errno));
        return -1;
    }
    snprintf(path, sizeof path, "%s/thumbs", o->report_dir);
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "facenet eval: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    int m = 0;
    facenet_eval_roc(ctx, test->dist, test->same, test->n, NULL, NULL, NULL, 0, &m);
    double *fpr = malloc(sizeof(double) * (size_t)(m ? m : 1)),
           *tpr = malloc(sizeof(double) * (size_t)(m ? m : 1));
    double *dd = malloc(sizeof(double) * (size_t)(m ? m : 1));
    snprintf(path, sizeof path, "%s/index.html", o->report_dir);
    FILE *f = fpr && tpr && dd ? fopen(path, "w") : NULL;
    if (!f) {
        fprintf(stderr, "facenet eval: cannot write %s: %s\n", path, strerror(errno));
        free(fpr);
        free(tpr);
        free(dd);
        return -1;
    }
    facenet_eval_roc(ctx, test->dist, test->same, test->n, fpr, tpr, dd, m, &m);
    fprintf(f,
            "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>facenet eval lfw</title>\n<style>\n"
            "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1100px}\n"
            "h1{font-size:22px}h2{font-size:17px;margin-top:28px}\n"
            "table{border-collapse:collapse}td,th{padding:2px 10px;text-align:left}\n"
            "td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
            "tr:nth-child(even){background:#f3f3f3}\n"
            ".charts{display:flex;flex-wrap:wrap;gap:16px}\n"
            ".plot{fill:#fff;stroke:#999}.grid{stroke:#e4e4e4}.tick{font-size:11px;fill:#555}\n"
            ".roc{fill:none;stroke:#1f5fbf;stroke-width:2}.mark{stroke:#c33;stroke-dasharray:4 3}\n"
            ".eer{fill:#c33}.same{fill:#2a9d4b;fill-opacity:.45;stroke:#2a9d4b}\n"
            ".diff{fill:#d0453a;fill-opacity:.45;stroke:#d0453a}\n"
            ".pairs{display:flex;flex-wrap:wrap;gap:10px}\n"
            "figure{margin:0;padding:6px;border:2px solid #ccc;border-radius:4px;width:262px;font-size:12px;"
            "overflow-wrap:anywhere}\n"
            "figure.wrong{border-color:#d0453a}figure svg{margin-right:4px}\n"
            ".box{fill:none;stroke:#2f2;stroke-width:4}.fbbox{fill:none;stroke:#fc0;stroke-width:4;"
            "stroke-dasharray:10 6}\n"
            "</style>\n</head>\n<body>\n<h1>LFW View %d</h1>\n<p>",
            s->view);
    html_text(f, s->view_desc);
    fprintf(f, "</p>\n<table>\n");
    fprintf(f, "<tr><th>accuracy</th><td class=\"n\">%.2f%% &plusmn; %.2f%%</td><td>%s</td></tr>\n",
            100 * r->accuracy, 100 * r->accuracy_std,
            s->view == 2
                ? "mean and population std over the folds; each fold's threshold chosen on the others"
                : "on the test pairs, threshold chosen on the training pairs");
    char far[32];
    fprintf(f,
            "<tr><th>VAL @ FAR=%s</th><td class=\"n\">%.2f%% &plusmn; %.2f%%</td><td>at FAR %.3f%% &plusmn; "
            "%.3f%%</td></tr>\n",
            far_label(r->far_target, far, sizeof far), 100 * r->val, 100 * r->val_std, 100 * r->far,
            100 * r->far_std);
    fprintf(f, "<tr><th>ROC AUC</th><td class=\"n\">%.4f</td><td></td></tr>\n", r->auc);
    fprintf(f, "<tr><th>EER</th><td class=\"n\">%.2f%%</td><td>at distance %.4f</td></tr>\n", 100 * r->eer,
            r->eer_threshold);
    fprintf(f, "<tr><th>threshold</th><td class=\"n\">%.4f</td><td>best accuracy (%.2f%%) on %s</td></tr>\n",
            r->threshold, 100 * r->threshold_accuracy, s->view == 2 ? "all pairs" : "the training pairs");
    fprintf(f, "<tr><th>pairs</th><td class=\"n\">%d</td><td>%d matched, %d mismatched%s</td></tr>\n",
            r->n_pairs, r->n_same, r->n_diff, o->limit ? " (a subset: --limit)" : "");
    fprintf(f,
            "<tr><th>images</th><td class=\"n\">%d</td><td>%d with several faces (the subject is the one "
            "nearest the centre)</td></tr>\n",
            s->n_images, s->multi_face);
    fprintf(f,
            "<tr><th>no face found</th><td class=\"n\">%d</td><td>%d of them with faces only off centre; "
            "embedded the central %.0f%% square instead (dashed yellow box)</td></tr>\n",
            s->no_face, s->off_centre, 100 * FALLBACK_FRACTION);
    char jit[32] = "";
    if (o->pipe.params.jitters > 1) snprintf(jit, sizeof jit, " + %d jitters", o->pipe.params.jitters);
    fprintf(f, "<tr><th>embedding</th><td colspan=\"2\">");
    html_text(f, s->model_id);
    fprintf(f, "%s%s%s; %s detector, %s landmarks, %s alignment</td></tr>\n", o->flip ? " + flip" : "",
            jit, o->raw ? " (raw vectors)" : "", o->pipe.detector, o->pipe.landmarks,
            o->pipe.params.align == FACENET_ALIGN_FACEAPI ? "face-api" : "similarity");
    fprintf(f,
            "<tr><th>wall time</th><td class=\"n\">%.1f s</td><td>%d images embedded, %d from the cache</td>"
            "</tr>\n</table>\n",
            s->wall, s->embedded, s->from_cache);
    if (r->n_folds > 1) {
        fprintf(f, "<h2>Folds</h2>\n<table>\n<tr><th>fold</th><th>accuracy</th><th>threshold</th><th>VAL</th>"
                   "<th>FAR</th><th>VAL threshold</th></tr>\n");
        for (int k = 0; k < r->n_folds; k++)
            fprintf(
                f,
                "<tr><td>%d</td><td class=\"n\">%.2f%%</td><td class=\"n\">%.4f</td><td class=\"n\">%.2f%%"
                "</td><td class=\"n\">%.3f%%</td><td class=\"n\">%.4f</td></tr>\n",
                k + 1, 100 * r->fold_accuracy[k], r->fold_threshold[k], 100 * r->fold_val[k],
                100 * r->fold_far[k], r->fold_val_threshold[k]);
        fprintf(f, "</table>\n");
    }
    fprintf(f, "<h2>ROC and distances</h2>\n<div class=\"charts\">\n");
    svg_roc(f, fpr, tpr, m, r, r->n_diff);
    svg_hist(f, test, r->threshold);
    fprintf(f, "</div>\n<h2>Matched pairs scored worst (largest distance)</h2>\n"
               "<p>Green box: the face used; red frame: misjudged at the threshold.</p>\n");
    html_pairs(f, ctx, o, run, test, r, 1);
    fprintf(f, "<h2>Mismatched pairs scored worst (smallest distance)</h2>\n");
    html_pairs(f, ctx, o, run, test, r, 0);
    if (s->no_face) {
        fprintf(f, "<h2>Images without a detected face</h2>\n<p>");
        int k = 0;
        for (int i = 0; i < run->n_jobs; i++)
            if (run->jobs[i].entry.flags == FACENET_EVAL_FALLBACK) {
                fprintf(f, "%s", k++ ? ", " : "");
                html_text(f, run->jobs[i].name);
            }
        fprintf(f, "</p>\n");
    }
    fprintf(f,
            "<p><small>facenet %s, <code>facenet eval lfw</code>; see docs/evaluation.md.</small></p>\n"
            "</body>\n</html>\n",
            facenet_version());
    const int bad = ferror(f);
    if (fclose(f) != 0 || bad) {
        fprintf(stderr, "facenet eval: cannot write %s\n", path);
        return -1;
    }
    free(fpr);
    free(tpr);
    free(dd);
    return 0;
}

/* ------------------------------------------------------------ the command */

static int parse_args(eval_opts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    cli_pipe_defaults(&o->pipe);
    /* LFW photos are portraits: every one is a close-up (--closeup), and
     * the subject rule (nearest the centre) discards the extra boxes a low
     * minimum score lets through (docs/evaluation.md). */
    o->pipe.params.closeup = FACENET_CLOSEUP_ALWAYS;
    o->pipe.params.min_score = 0.2f;
    o->cache_dir = ".cache/facenet-eval";
    if (argc < 2 || strcmp(argv[1], "lfw") != 0) {
        fprintf(stderr, "facenet eval: name the benchmark: `facenet eval lfw --dir DIR`\n");
        return -1;
    }
    for (int i = 2; i < argc; i++) {
        int r = cli_pipe_option(&o->pipe, argc, argv, &i);
        if (r < 0) return -1;
        if (r > 0) continue;
        const char *a = argv[i];
        const char **value = strcmp(a, "--dir") == 0           ? &o->dir
                             : strcmp(a, "--pairs") == 0       ? &o->pairs
                             : strcmp(a, "--train-pairs") == 0 ? &o->train_pairs
                             : strcmp(a, "--cache") == 0       ? &o->cache_dir
                             : strcmp(a, "--report") == 0      ? &o->report_dir
                                                               : NULL;
        if (value || strcmp(a, "--limit") == 0) {
            if (i + 1 >= argc) {
                fprintf(stderr, "facenet eval: %s needs a value\n", a);
                return -1;
            }
            if (value)
                *value = argv[++i];
            else if (cli_parse_int("--limit", argv[++i], 1, 1000000, &o->limit))
                return -1;
        } else if (strcmp(a, "--json") == 0) {
            o->json = 1;
        } else if (strcmp(a, "--raw") == 0) {
            o->raw = 1;
        } else if (strcmp(a, "--no-cache") == 0) {
            o->no_cache = 1;
        } else if (strcmp(a, "--write-threshold") == 0) {
            o->write_threshold = 1;
        } else {
            fprintf(stderr, "facenet eval: unknown %s %s\n", a[0] == '-' ? "option" : "argument", a);
            return -1;
        }
    }
    if (!o->dir) {
        fprintf(stderr, "facenet eval: --dir DIR (the LFW images) is required\n");
        return -1;
    }
    o->flip = (o->pipe.params.embed_flags & FACENET_EMBED_FLIP) != 0;
    if (o->write_threshold && (o->raw || o->limit)) {
        fprintf(stderr, "facenet eval: --write-threshold needs the unit embeddings (no --raw) of every pair "
                        "(no --limit)\n");
        return -1;
    }
    return 0;
}

/* Record the best threshold in the embedding model's file, where compare
 * and identification read it (facenet_model_threshold). */
static int write_threshold(const eval_opts *o, double threshold, facenet_ctx *ctx) {
    char pathbuf[PATH_MAX + 64], value[32];
    const char *path = cli_find_model(o->pipe.com.model, CLI_EMBEDDING_MODEL, pathbuf, sizeof pathbuf);
    if (!path) {
        fprintf(stderr, "facenet eval: cannot find the embedding model file to write the threshold to\n");
        return -1;
    }
    snprintf(value, sizeof value, "%.4f", threshold);
    facenet_status st = facenet_model_set_meta(ctx, path, "threshold", value);
    if (st != FACENET_OK) {
        cli_error("eval", ctx, st);
        return -1;
    }
    fprintf(stderr, "facenet eval: threshold %s written to %s\n", value, path);
    return 0;
}

static int run(int argc, char **argv) {
    const double t0 = now_s();
    eval_opts o;
    if (parse_args(&o, argc, argv) != 0) {
        cli_usage(&cli_cmd_eval, stderr);
        return CLI_USAGE;
    }
    char default_pairs[PATH_MAX];
    if (!o.pairs) {
        snprintf(default_pairs, sizeof default_pairs, "%s/pairs.txt", o.dir);
        o.pairs = default_pairs;
    }
    int status = CLI_FAIL, n_workers = o.pipe.com.threads;
    if (n_workers <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n_workers = cores > 0 ? (int)cores : 1;
    }
    run_t r;
    memset(&r, 0, sizeof r);
    r.o = &o;
    r.dim = FACENET_EMBEDDING_DIM;
    r.rec = 2 * r.dim;
    pthread_mutex_init(&r.mu, NULL);
    pthread_cond_init(&r.cv, NULL);
    pair_set sets[2];
    memset(sets, 0, sizeof sets);
    worker *workers = calloc((size_t)n_workers, sizeof *workers);
    facenet_eval_cache *cache = NULL;
    /* The main thread's own context: pairs, cache, protocol and report,
     * while the workers use theirs. */
    facenet_ctx *ctx = cli_ctx(1);
    if (!workers || !ctx) goto done;

    /* The pairs: the test set, and for View 1 the training set. */
    const int n_sets = o.train_pairs ? 2 : 1;
    for (int s = 0; s < n_sets; s++) {
        sets[s].file = s == 0 ? o.pairs : o.train_pairs;
        facenet_status st = facenet_eval_pairs_load(ctx, sets[s].file, o.dir, o.limit, &sets[s].pairs);
        if (st != FACENET_OK) {
            cli_error("eval", ctx, st);
            goto done;
        }
    }
    const int view = o.train_pairs ? 1 : 2;
    if (!o.train_pairs && facenet_eval_pairs_view(sets[0].pairs) == 1) {
        fprintf(stderr,
                "facenet eval: %s has no folds (View 1); give the pairs to choose the threshold on with "
                "--train-pairs (pairsDevTrain.txt)\n",
                o.pairs);
        status = CLI_USAGE;
        goto done;
    }
    if (build_jobs(&r, sets, n_sets) != 0) goto done;
    r.emb = calloc((size_t)r.n_jobs * r.rec, sizeof(float));
    r.todo = malloc(sizeof(int) * (size_t)r.n_jobs);
    r.finished = malloc(sizeof(int) * (size_t)r.n_jobs);
    if (!r.emb || !r.todo || !r.finished) goto done;

    /* Worker 0's models name the cache; the other workers open only if
     * there is work. */
    if (worker_open(&workers[0], &r) != 0) goto done;
    if (!o.no_cache) {
        char key[4096];
        if (cache_key(&o, &workers[0], key, sizeof key) != 0) {
            fprintf(stderr, "facenet eval: cannot identify the model files for the cache\n");
            goto done;
        }
        facenet_status st = facenet_eval_cache_open(ctx, o.cache_dir, key, r.rec, &cache);
        if (st != FACENET_OK) {
            cli_error("eval", ctx, st);
            fprintf(stderr, "facenet eval: (--no-cache runs without it)\n");
            goto done;
        }
        if (facenet_eval_cache_dropped(cache))
            fprintf(stderr, "facenet eval: dropped %zu bytes of an interrupted write at the end of %s\n",
                    facenet_eval_cache_dropped(cache), facenet_eval_cache_path(cache));
    }
    for (int j = 0; j < r.n_jobs; j++) {
        if (cache &&
            facenet_eval_cache_get(cache, r.jobs[j].name, r.emb + (size_t)j * r.rec, &r.jobs[j].entry))
            r.jobs[j].cached = 1;
        else
            r.todo[r.n_todo++] = j;
    }
    if (r.n_todo < r.n_jobs)
        fprintf(stderr, "facenet eval: %d of %d images are in the cache%s\n", r.n_jobs - r.n_todo, r.n_jobs,
                r.n_todo ? "; embedding the rest" : "");
    int embedded = 0;
    if (embed_all(&r, ctx, cache, workers, n_workers, &embedded) != 0) goto done;

    for (int s = 0; s < n_sets; s++)
        if (set_distances(&sets[s], &r) != 0) goto done;
    facenet_eval_result res;
    facenet_eval_params ep = facenet_eval_default_params();
    facenet_status st =
        view == 2 ? facenet_eval_folds(ctx, sets[0].dist, sets[0].same, sets[0].fold, sets[0].n, &ep, &res)
                  : facenet_eval_train_test(ctx, sets[1].dist, sets[1].same, sets[1].n, sets[0].dist,
                                            sets[0].same, sets[0].n, &ep, &res);
    if (st != FACENET_OK) {
        cli_error("eval", ctx, st);
        goto done;
    }

    summary s;
    memset(&s, 0, sizeof s);
    char desc[2 * PATH_MAX + 200];
    if (view == 2)
        snprintf(desc, sizeof desc, "%s, %d folds of %d matched + %d mismatched pairs%s", o.pairs,
                 res.n_folds, res.n_same / res.n_folds, res.n_diff / res.n_folds,
                 o.limit ? " (--limit)" : "");
    else
        snprintf(desc, sizeof desc, "threshold chosen on %s (%d pairs), tested on %s (%d pairs)%s",
                 o.train_pairs, sets[1].n, o.pairs, sets[0].n, o.limit ? " (--limit)" : "");
    s.view_desc = desc;
    s.view = view;
    s.n_images = r.n_jobs;
    s.embedded = embedded;
    s.from_cache = r.n_jobs - r.n_todo;
    for (int j = 0; j < r.n_jobs; j++) {
        s.no_face += r.jobs[j].entry.flags == FACENET_EVAL_FALLBACK;
        s.off_centre += r.jobs[j].entry.flags == FACENET_EVAL_FALLBACK && r.jobs[j].entry.n_faces > 0;
        s.multi_face += r.jobs[j].entry.n_faces > 1;
    }
    s.cache_path = cache ? facenet_eval_cache_path(cache) : NULL;
    s.model_id = facenet_model_meta(workers[0].emb, "model_id");
    if (!s.model_id) s.model_id = facenet_model_architecture(workers[0].emb);
    s.wall = now_s() - t0; /* the report's own writing aside */
    if (o.report_dir && write_report(&o, &s, &sets[0], &res, &r, ctx) != 0) goto done;
    if (o.json)
        print_json(&o, &s, &sets[0], n_sets > 1 ? &sets[1] : NULL, &res, &r);
    else
        print_text(&o, &s, &sets[0], n_sets > 1 ? &sets[1] : NULL, &res, &r);
    if (o.report_dir) fprintf(stderr, "facenet eval: report written to %s/index.html\n", o.report_dir);
    if (o.write_threshold && write_threshold(&o, res.threshold, ctx) != 0) goto done;
    status = fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;

done:
    facenet_eval_cache_close(cache);
    for (int i = 0; workers && i < n_workers; i++) worker_close(&workers[i]);
    free(workers);
    facenet_ctx_free(ctx);
    for (int s2 = 0; s2 < 2; s2++) set_free(&sets[s2]);
    free(r.jobs);
    free(r.emb);
    free(r.todo);
    free(r.finished);
    pthread_mutex_destroy(&r.mu);
    pthread_cond_destroy(&r.cv);
    return status;
}

const cli_command cli_cmd_eval = {
    "eval", "face verification accuracy on LFW (10-fold, VAL@FAR, ROC AUC, EER)", USAGE, 1, TAIL, run};
