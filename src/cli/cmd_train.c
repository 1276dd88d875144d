/*
 * cmd_train.c - `facenet train`: learn an embedding with the triplet loss
 * on a folder-per-identity dataset, from scratch or by fine-tuning a model
 * (docs/training.md).
 *
 * The command drives the public trainer: it makes the chips (aligning
 * photos once, through a cache), steps, validates every so often, writes a
 * checkpoint every so often (atomically, so a kill -9 loses at most the
 * steps since the last one, and --resume carries on from it with the
 * batches the uninterrupted run would have seen), and keeps a CSV log and
 * an SVG plot of the loss and the validation accuracy. Ctrl-C (or SIGTERM)
 * stops after the current step with a checkpoint. The result is an ordinary
 * model file. Like every command, it uses facenet.h only.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet train --data DIR --out MODEL [OPTIONS]\n"
    "\n"
    "Learn a face embedding with the triplet loss (FaceNet) on DIR/NAME/*.jpg|png|pgm|ppm,\n"
    "one folder per person: a new network from scratch, or a model fine-tuned with --init.\n"
    "\n"
    "network:\n"
    "  --arch small|resnet29   a new network (default small: 64 px chips, fast)\n"
    "  --input-size N          the new network's chip side (small: 16..512, default 64)\n"
    "  --init MODEL            fine-tune this model instead (e.g. dlib_resnet29.safetensors)\n"
    "  --freeze N              fine-tuning: keep the first N stages as they are (default 0)\n"
    "data:\n"
    "  --data DIR              one folder of images per identity\n"
    "  --chips                 the images are face chips already (e.g. the AT&T faces): resized only\n"
    "  --photos                the images are photos: each face found, aligned once and cached\n"
    "                          (the default)\n"
    "  --people FILE           train on the people of a list (LFW peopleDevTrain.txt format)\n"
    "  --include PATTERNS      only folders matching: globs or ranges, comma-separated (s1..s30,x*)\n"
    "  --exclude PATTERNS      leave these folders out\n"
    "  --min-images N          leave out identities with fewer images (default 2)\n"
    "  --cache DIR             where aligned chips are kept (default .cache/facenet-train)\n"
    "  --detector ssd|tiny     photos: the face detector (default ssd)\n"
    "  --detector-model PATH, --landmark-model PATH\n"
    "  --no-augment            no random crop, flip, brightness or contrast\n"
    "  --crop F                a random square of 1-F .. 1 of the side, resized back (default 0.1)\n"
    "  --brightness B          add +-B of the range (default 0.1)\n"
    "  --contrast C            scale around the mean by 1-C .. 1+C (default 0.2)\n"
    "  --erase P               random erasing: with probability P a rectangle of 2-40% of the\n"
    "                          chip becomes noise (default 0)\n"
    "batch and loss:\n"
    "  --P N                   identities per batch (default 30)\n"
    "  --K N                   images per identity (default 4); fewer if an identity has fewer\n"
    "  --select semihard|hardest|random|all   triplet selection (default semihard)\n"
    "  --alpha A               margin on squared distances; soft: the margin's width (default 0.2)\n"
    "  --loss hinge|soft       hinge: max(0, d_ap - d_an + A); soft: A log(1 + exp((d_ap - d_an) / A)),\n"
    "                          never 0, and batch-all takes every triplet (default hinge)\n"
    "  --pair-margin M         add every matched pair of the batch against every mismatched one:\n"
    "                          max(0, d_pos - d_neg + M), one threshold for all (default 0: off)\n"
    "optimizer:\n"
    "  --optimizer adagrad|sgd|adam   (default adagrad)\n"
    "  --lr R                  learning rate (default 0.05)\n"
    "  --momentum M            sgd (default 0.9)\n"
    "  --weight-decay W        L2 on weights (default 0.0005)\n"
    "  --clip N                cap on the gradient norm (default none)\n"
    "  --schedule constant|step|cosine   (default constant)\n"
    "  --lr-step N, --lr-gamma G   step schedule: times G every N steps (1000, 0.5)\n"
    "  --warmup N              linear warm-up over the first N steps\n"
    "  --ema D                 validate and export a moving average of the weights, decay D\n"
    "                          (e.g. 0.99; default 0: the last weights)\n"
    "run:\n"
    "  --out MODEL             the trained model (a model file for embed, compare, eval)\n"
    "  --steps N               batches to train on (default 1000)\n"
    "  --seed N                every random choice; the same seed repeats a run (default 1)\n"
    "  --checkpoint FILE       default MODEL.ckpt\n"
    "  --checkpoint-every N    steps between checkpoints (default 100)\n"
    "  --resume                carry on from the checkpoint, if there is one\n"
    "  --log FILE              CSV of every step (default MODEL.csv)\n"
    "  --plot FILE             SVG of loss and validation accuracy (default MODEL.svg)\n"
    "  --threads N             worker threads (default: all cores)\n"
    "validation (verification accuracy, 10-fold, at the start, every --val-every steps, at the end):\n"
    "  --val-pairs FILE        a pairs file in LFW's format (pairsDevTest.txt) over --val-dir\n"
    "  --val-dir DIR           the images of the pairs or held-out identities (default --data)\n"
    "  --val-include PATTERNS  held-out identities: all their matched pairs, as many mismatched\n"
    "  --val-people FILE       held-out identities from a people list\n"
    "  --val-every N           steps between validations (default 200)\n"
    "  --val-max-pairs N       at most N matched pairs of held-out identities (default 3000)\n";
static const char TAIL[] =
    "\nProgress goes to stderr, a summary to stdout. Exit status: 0 done, 1 a file or the data\n"
    "could not be read or written, 2 bad usage, 130 stopped by a signal (after a checkpoint).\n";

#define DEFAULT_CACHE ".cache/facenet-train"

typedef struct train_opts {
    facenet_train_params tp;
    const char *out, *ckpt, *log, *plot, *detector, *det_model, *lmk_model, *init;
    int threads, resume, val_every, photos;
} train_opts;

static volatile sig_atomic_t g_stop;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------ options */

static int parse_float(const char *opt, const char *s, double lo, double hi, float *out) {
    char *end;
    errno = 0;
    const double v = strtod(s, &end);
    if (!*s || *end || errno || !(v >= lo && v <= hi)) {
        fprintf(stderr, "facenet train: %s needs a number from %g to %g, not '%s'\n", opt, lo, hi, s);
        return -1;
    }
    *out = (float)v;
    return 0;
}

static int pick(const char *opt, const char *v, const char *const *names, int n, int *out) {
    for (int i = 0; i < n; i++)
        if (strcmp(v, names[i]) == 0) {
            *out = i;
            return 0;
        }
    fprintf(stderr, "facenet train: %s is one of", opt);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s %s", i ? "," : "", names[i]);
    fprintf(stderr, "; not '%s'\n", v);
    return -1;
}

static int parse_args(train_opts *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->tp = facenet_train_default_params();
    o->tp.checkpoint_every = 100;
    o->tp.cache_dir = DEFAULT_CACHE;
    o->detector = "ssd";
    o->val_every = 200;
    o->photos = 1;
    static const char *const SEL[] = {"semihard", "hardest", "random", "all"};
    static const char *const OPT[] = {"adagrad", "sgd", "adam"};
    static const char *const SCHED[] = {"constant", "step", "cosine"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--resume") == 0) {
            o->resume = 1;
            continue;
        }
        if (strcmp(a, "--chips") == 0 || strcmp(a, "--photos") == 0) {
            o->photos = strcmp(a, "--photos") == 0;
            continue;
        }
        if (strcmp(a, "--no-augment") == 0) {
            o->tp.augment = 0;
            continue;
        }
        if (a[0] != '-') {
            fprintf(stderr, "facenet train: unexpected argument %s\n", a);
            return -1;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "facenet train: %s needs a value (or is not an option)\n", a);
            return -1;
        }
        const char *v = argv[++i];
        int r = 0, k = 0;
        if (strcmp(a, "--data") == 0) o->tp.data_dir = v;
        else if (strcmp(a, "--out") == 0) o->out = v;
        else if (strcmp(a, "--arch") == 0) {
            static const char *const ARCH[] = {"small", "resnet29"};
            r = pick(a, v, ARCH, 2, &k);
            o->tp.architecture = ARCH[k];
        } else if (strcmp(a, "--input-size") == 0) r = cli_parse_int(a, v, 16, 512, &o->tp.input_size);
        else if (strcmp(a, "--init") == 0) o->init = v;
        else if (strcmp(a, "--freeze") == 0) r = cli_parse_int(a, v, 0, 100, &o->tp.freeze_stages);
        else if (strcmp(a, "--people") == 0) o->tp.people = v;
        else if (strcmp(a, "--include") == 0) o->tp.include = v;
        else if (strcmp(a, "--exclude") == 0) o->tp.exclude = v;
        else if (strcmp(a, "--min-images") == 0) r = cli_parse_int(a, v, 2, 100000, &o->tp.min_images);
        else if (strcmp(a, "--cache") == 0) o->tp.cache_dir = v;
        else if (strcmp(a, "--detector") == 0) {
            static const char *const DET[] = {"ssd", "tiny"};
            r = pick(a, v, DET, 2, &k);
            o->detector = DET[k];
        } else if (strcmp(a, "--detector-model") == 0) o->det_model = v;
        else if (strcmp(a, "--landmark-model") == 0) o->lmk_model = v;
        else if (strcmp(a, "--crop") == 0) r = parse_float(a, v, 0, 0.9, &o->tp.crop);
        else if (strcmp(a, "--brightness") == 0) r = parse_float(a, v, 0, 1, &o->tp.brightness);
        else if (strcmp(a, "--contrast") == 0) r = parse_float(a, v, 0, 1, &o->tp.contrast);
        else if (strcmp(a, "--erase") == 0) r = parse_float(a, v, 0, 1, &o->tp.erase);
        else if (strcmp(a, "--P") == 0) r = cli_parse_int(a, v, 1, 4096, &o->tp.P);
        else if (strcmp(a, "--K") == 0) r = cli_parse_int(a, v, 2, 4096, &o->tp.K);
        else if (strcmp(a, "--select") == 0) {
            r = pick(a, v, SEL, 4, &k);
            o->tp.select = (facenet_triplet_select)k;
        } else if (strcmp(a, "--alpha") == 0) r = parse_float(a, v, 1e-6, 3.99, &o->tp.alpha);
        else if (strcmp(a, "--pair-margin") == 0) r = parse_float(a, v, 0, 3.99, &o->tp.pair_margin);
        else if (strcmp(a, "--loss") == 0) {
            static const char *const LOSS[] = {"hinge", "soft"};
            r = pick(a, v, LOSS, 2, &k);
            o->tp.loss = (facenet_triplet_loss)k;
        }
        else if (strcmp(a, "--optimizer") == 0) {
            r = pick(a, v, OPT, 3, &k);
            o->tp.optimizer = (facenet_optimizer)k;
        } else if (strcmp(a, "--lr") == 0) r = parse_float(a, v, 1e-9, 99, &o->tp.learning_rate);
        else if (strcmp(a, "--momentum") == 0) r = parse_float(a, v, 0, 0.9999, &o->tp.momentum);
        else if (strcmp(a, "--weight-decay") == 0) r = parse_float(a, v, 0, 0.9999, &o->tp.weight_decay);
        else if (strcmp(a, "--clip") == 0) r = parse_float(a, v, 0, 1e9, &o->tp.clip_norm);
        else if (strcmp(a, "--schedule") == 0) {
            r = pick(a, v, SCHED, 3, &k);
            o->tp.schedule = (facenet_lr_schedule)k;
        } else if (strcmp(a, "--lr-step") == 0) r = cli_parse_int(a, v, 1, 1 << 30, &o->tp.lr_step_every);
        else if (strcmp(a, "--lr-gamma") == 0) r = parse_float(a, v, 1e-6, 1, &o->tp.lr_gamma);
        else if (strcmp(a, "--ema") == 0) r = parse_float(a, v, 0, 0.99999, &o->tp.ema);
        else if (strcmp(a, "--warmup") == 0) r = cli_parse_int(a, v, 0, 1 << 30, &o->tp.warmup_steps);
        else if (strcmp(a, "--steps") == 0) {
            int s = 0;
            r = cli_parse_int(a, v, 0, 1 << 30, &s);
            o->tp.steps = s;
        } else if (strcmp(a, "--seed") == 0) {
            int s = 0;
            r = cli_parse_int(a, v, 0, INT_MAX, &s);
            o->tp.seed = (uint64_t)s;
        } else if (strcmp(a, "--checkpoint") == 0) o->ckpt = v;
        else if (strcmp(a, "--checkpoint-every") == 0) r = cli_parse_int(a, v, 1, 1 << 30, &o->tp.checkpoint_every);
        else if (strcmp(a, "--log") == 0) o->log = v;
        else if (strcmp(a, "--plot") == 0) o->plot = v;
        else if (strcmp(a, "--threads") == 0) r = cli_parse_int(a, v, 0, 256, &o->threads);
        else if (strcmp(a, "--val-pairs") == 0) o->tp.val_pairs = v;
        else if (strcmp(a, "--val-dir") == 0) o->tp.val_dir = v;
        else if (strcmp(a, "--val-include") == 0) o->tp.val_include = v;
        else if (strcmp(a, "--val-people") == 0) o->tp.val_people = v;
        else if (strcmp(a, "--val-every") == 0) r = cli_parse_int(a, v, 1, 1 << 30, &o->val_every);
        else if (strcmp(a, "--val-max-pairs") == 0) r = cli_parse_int(a, v, 2, 50000000, &o->tp.val_max_pairs);
        else {
            fprintf(stderr, "facenet train: unknown option %s\n", a);
            return -1;
        }
        if (r) return -1;
    }
    if (!o->tp.data_dir || !o->out) {
        fprintf(stderr, "facenet train: --data DIR and --out MODEL are required\n");
        return -1;
    }
    o->tp.chips = !o->photos;
    return 0;
}

/* ------------------------------------------------------------ the CSV log and the plot */

static const char CSV_HEADER[] =
    "step,loss,active_fraction,triplets,mean_pos_sq,mean_neg_sq,grad_norm,lr,ms,val_accuracy,val_accuracy_std,"
    "val_threshold,val_auc,val_at_far\n";

/* Keep the log's header and the rows of steps <= upto (a resumed run
 * writes the steps after its checkpoint again). */
static int trim_log(const char *path, long long upto) {
    FILE *f = fopen(path, "r");
    if (!f) return errno == ENOENT ? 0 : -1;
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *g = fopen(tmp, "w");
    if (!g) {
        fclose(f);
        return -1;
    }
    char line[1024];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first || strtoll(line, NULL, 10) <= upto) fputs(line, g);
        first = 0;
    }
    fclose(f);
    const int bad = ferror(g);
    if (fclose(g) != 0 || bad || rename(tmp, path) != 0) return -1;
    return 0;
}

typedef struct point {
    double step, loss, acc; /* acc < 0: none */
} point;

/* The plot from the log: the loss (its running mean over a window of steps,
 * and each step faintly) against steps on the left axis, validation
 * accuracy on the right. Written to a temporary file and renamed. */
static int write_plot(const char *csv, const char *svg) {
    FILE *f = fopen(csv, "r");
    if (!f) return -1;
    point *p = NULL;
    size_t n = 0, cap = 0;
    char line[1024];
    int first = 1;
    while (fgets(line, sizeof line, f)) {
        if (first) {
            first = 0;
            continue;
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            point *np = realloc(p, sizeof *p * cap);
            if (!np) break;
            p = np;
        }
        char *fields[16];
        int nf = 0;
        for (char *s = line; nf < 16;) {
            fields[nf++] = s;
            char *c = strchr(s, ',');
            if (!c) break;
            *c = '\0';
            s = c + 1;
        }
        if (nf < 10) continue;
        p[n].step = strtod(fields[0], NULL);
        p[n].loss = strtod(fields[1], NULL);
        p[n].acc = fields[9][0] && fields[9][0] != '\n' ? strtod(fields[9], NULL) : -1;
        n++;
    }
    fclose(f);
    if (n == 0) {
        free(p);
        return 0;
    }
    const double W = 720, H = 360, L = 60, R = 60, T = 30, B = 45;
    double smax = p[n - 1].step > 1 ? p[n - 1].step : 1, lmax = 0;
    for (size_t i = 0; i < n; i++)
        if (p[i].loss > lmax && isfinite(p[i].loss)) lmax = p[i].loss;
    if (lmax <= 0) lmax = 0.2;
    lmax *= 1.05;
    char tmp[PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", svg);
    FILE *g = fopen(tmp, "w");
    if (!g) {
        free(p);
        return -1;
    }
#define X(s) (L + (W - L - R) * (s) / smax)
#define YL(v) (T + (H - T - B) * (1 - (v) / lmax))
#define YA(v) (T + (H - T - B) * (1 - ((v) - 0.5) / 0.5))
    fprintf(g,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" font-family=\"sans-serif\" "
            "font-size=\"11\">\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
            "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"none\" stroke=\"#999\"/>\n",
            W, H, L, T, W - L - R, H - T - B);
    for (int k = 0; k <= 4; k++) {
        const double y = T + (H - T - B) * k / 4.0;
        fprintf(g, "<line x1=\"%.0f\" x2=\"%.0f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n", L, W - R, y, y);
        fprintf(g, "<text x=\"%.0f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#1f5fbf\">%.3g</text>\n", L - 4, y + 4,
                lmax * (1 - k / 4.0));
        fprintf(g, "<text x=\"%.0f\" y=\"%.1f\" fill=\"#c33\">%.0f%%</text>\n", W - R + 4, y + 4,
                100 * (1 - 0.5 * k / 4.0));
        fprintf(g, "<text x=\"%.1f\" y=\"%.0f\" text-anchor=\"middle\">%.0f</text>\n", L + (W - L - R) * k / 4.0,
                H - B + 15, smax * k / 4.0);
    }
    fprintf(g, "<text x=\"%.0f\" y=\"%.0f\" text-anchor=\"middle\">step</text>\n", (L + W - R) / 2, H - 8);
    fprintf(g, "<text x=\"%.0f\" y=\"18\" fill=\"#1f5fbf\">triplet loss (running mean)</text>\n", L);
    fprintf(g, "<text x=\"%.0f\" y=\"18\" text-anchor=\"end\" fill=\"#c33\">validation accuracy</text>\n", W - R);
    /* Every step, faint; then the running mean over ~2% of the run. */
    const size_t stride = n > 2000 ? n / 2000 : 1;
    fprintf(g, "<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-opacity=\"0.2\" points=\"");
    for (size_t i = 0; i < n; i += stride)
        if (isfinite(p[i].loss)) fprintf(g, "%.1f,%.1f ", X(p[i].step), YL(p[i].loss));
    fprintf(g, "\"/>\n<polyline fill=\"none\" stroke=\"#1f5fbf\" stroke-width=\"2\" points=\"");
    const size_t win = n / 50 > 1 ? n / 50 : 1;
    double sum = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(p[i].loss)) sum += p[i].loss, cnt++;
        if (i >= win && isfinite(p[i - win].loss)) sum -= p[i - win].loss, cnt--;
        if (cnt && (i % stride == 0 || i == n - 1)) fprintf(g, "%.1f,%.1f ", X(p[i].step), YL(sum / cnt));
    }
    fprintf(g, "\"/>\n<polyline fill=\"none\" stroke=\"#c33\" stroke-width=\"2\" points=\"");
    for (size_t i = 0; i < n; i++)
        if (p[i].acc >= 0) fprintf(g, "%.1f,%.1f ", X(p[i].step), YA(p[i].acc < 0.5 ? 0.5 : p[i].acc));
    fprintf(g, "\"/>\n");
    for (size_t i = 0; i < n; i++)
        if (p[i].acc >= 0)
            fprintf(g, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"#c33\"><title>step %.0f: %.2f%%</title></circle>\n",
                    X(p[i].step), YA(p[i].acc < 0.5 ? 0.5 : p[i].acc), p[i].step, 100 * p[i].acc);
    fprintf(g, "</svg>\n");
#undef X
#undef YL
#undef YA
    free(p);
    const int bad = ferror(g);
    if (fclose(g) != 0 || bad || rename(tmp, svg) != 0) return -1;
    return 0;
}

/* ------------------------------------------------------------ progress */

typedef struct progress {
    int tty;
    double start, last;
    const char *stage;
} progress;

static void chips_progress(void *user, const char *stage, int done, int total) {
    progress *p = user;
    const double now = now_s();
    const int final = done == total;
    if (!final && now - p->last < (p->tty ? 0.25 : 30.0)) return;
    if (!p->stage || strcmp(p->stage, stage) != 0) p->start = now, p->stage = stage;
    p->last = now;
    if (p->tty)
        fprintf(stderr, "\r%s: %d/%d (%d%%) ", stage, done, total, total ? (int)(100.0 * done / total) : 100);
    else
        fprintf(stderr, "facenet train: %s: %d/%d\n", stage, done, total);
    if (final && p->tty) fputc('\n', stderr);
    fflush(stderr);
}

static void step_progress(progress *p, const facenet_train_stats *s, int64_t first, int64_t total, double acc,
                          int final) {
    const double now = now_s();
    if (!final && now - p->last < (p->tty ? 0.25 : 30.0)) return;
    p->last = now;
    const double rate = now > p->start ? (double)(s->step - first) / (now - p->start) : 0;
    char eta[32], val[32] = "";
    if (rate > 0)
        cli_format_duration((double)(total - s->step) / rate, eta, sizeof eta);
    else
        snprintf(eta, sizeof eta, "--:--");
    if (acc >= 0) snprintf(val, sizeof val, " val %.1f%%", 100 * acc);
    if (p->tty) {
        char bar[26];
        const int fill = total ? (int)(25.0 * (double)s->step / (double)total) : 25;
        for (int i = 0; i < 25; i++) bar[i] = i < fill ? '#' : '-';
        bar[25] = '\0';
        fprintf(stderr, "\rstep %lld/%lld [%s] loss %.4f active %3.0f%%%s %.2f step/s ETA %s   ", (long long)s->step,
                (long long)total, bar, s->loss, 100 * s->active_fraction, val, rate, eta);
        if (final) fputc('\n', stderr);
    } else {
        fprintf(stderr, "facenet train: step %lld/%lld loss %.4f active %.0f%%%s, %.2f steps/s, ETA %s\n",
                (long long)s->step, (long long)total, s->loss, 100 * s->active_fraction, val, rate, eta);
    }
    fflush(stderr);
}

/* ------------------------------------------------------------ the command */

static const char *find_model(const char *given, const char *file_name, char *buf, size_t cap) {
    if (given && access(given, R_OK) == 0) return given;
    return cli_find_model(NULL, given ? given : file_name, buf, cap);
}

static void log_row(FILE *log, const facenet_train_stats *s, const facenet_eval_result *v) {
    fprintf(log, "%lld,%.6g,%.4f,%d,%.6g,%.6g,%.6g,%.6g,%.1f,", (long long)s->step, s->loss, s->active_fraction,
            s->n_triplets, s->mean_pos, s->mean_neg, s->grad_norm, s->learning_rate, s->ms);
    if (v)
        fprintf(log, "%.6f,%.6f,%.6f,%.6f,%.6f\n", v->accuracy, v->accuracy_std, v->threshold, v->auc, v->val);
    else
        fprintf(log, ",,,,\n");
}

static int run(int argc, char **argv) {
    train_opts o;
    if (parse_args(&o, argc, argv) != 0) {
        cli_usage(&cli_cmd_train, stderr);
        return CLI_USAGE;
    }
    char ckpt[PATH_MAX], logp[PATH_MAX], plotp[PATH_MAX];
    snprintf(ckpt, sizeof ckpt, "%s", o.ckpt ? o.ckpt : o.out);
    if (!o.ckpt) snprintf(ckpt, sizeof ckpt, "%s.ckpt", o.out);
    if (o.log) snprintf(logp, sizeof logp, "%s", o.log); else snprintf(logp, sizeof logp, "%s.csv", o.out);
    if (o.plot) snprintf(plotp, sizeof plotp, "%s", o.plot); else snprintf(plotp, sizeof plotp, "%s.svg", o.out);
    o.tp.checkpoint_path = ckpt;

    char init_buf[PATH_MAX + 64], det_buf[PATH_MAX + 64], lmk_buf[PATH_MAX + 64];
    if (o.init && !(o.tp.init_model = find_model(o.init, NULL, init_buf, sizeof init_buf))) return CLI_FAIL;
    if (o.photos) {
        o.tp.detector_model = find_model(o.det_model, cli_detector_file(o.detector), det_buf, sizeof det_buf);
        if (!o.tp.detector_model) return CLI_FAIL;
        o.tp.landmark_model = find_model(o.lmk_model, cli_landmarks_file("full"), lmk_buf, sizeof lmk_buf);
        if (!o.tp.landmark_model) return CLI_FAIL;
    }
    progress pr = {isatty(STDERR_FILENO), now_s(), 0, NULL};
    o.tp.progress = chips_progress;
    o.tp.progress_user = &pr;
    facenet_ctx *ctx = cli_ctx(o.threads);
    if (!ctx) return CLI_FAIL;
    int status = CLI_FAIL;
    facenet_trainer *t = NULL;
    FILE *log = NULL;
    /* The periodic checkpoint is written here, after its step's log row is
     * flushed, not inside facenet_trainer_step: a kill -9 between the two
     * then leaves a log that runs past the checkpoint (trimmed on --resume),
     * never one that stops short of it and loses rows for good. */
    const int ckpt_every = o.tp.checkpoint_every;
    o.tp.checkpoint_every = 0;
    facenet_status st = facenet_trainer_create(ctx, &o.tp, &t);
    if (st != FACENET_OK) {
        cli_error("train", ctx, st);
        status = st == FACENET_ERR_INVALID_ARGUMENT ? CLI_USAGE : CLI_FAIL;
        goto done;
    }
    const facenet_train_info in = facenet_trainer_info(t);
    fprintf(stderr,
            "facenet train: %s at %d px (%d trainable values); %d identities, %d images", in.architecture,
            in.input_size, in.n_params, in.n_identities, in.n_images);
    if (in.left_out_identities) fprintf(stderr, " (%d identities with too few left out)", in.left_out_identities);
    if (!o.tp.chips)
        fprintf(stderr, "; photos: %d aligned now, %d from the cache, %d without a face, %d unreadable", in.chips_made,
                in.chips_cached, in.no_face, in.unreadable);
    fprintf(stderr, "\n");
    if (in.val_pairs)
        fprintf(stderr, "facenet train: validation on %d pairs (%d matched, %d mismatched)%s\n", in.val_pairs,
                in.val_same, in.val_diff, in.val_skipped ? "; pairs with a faceless photo left out" : "");

    int resumed = 0;
    if (o.resume && access(ckpt, F_OK) == 0) {
        st = facenet_trainer_resume(t, ckpt);
        if (st != FACENET_OK) {
            cli_error("train", ctx, st);
            goto done;
        }
        resumed = 1;
        fprintf(stderr, "facenet train: resumed from %s at step %lld\n", ckpt,
                (long long)facenet_trainer_steps_done(t));
        if (trim_log(logp, (long long)facenet_trainer_steps_done(t)) != 0) {
            fprintf(stderr, "facenet train: cannot rewrite the log %s: %s\n", logp, strerror(errno));
            goto done;
        }
    }
    log = fopen(logp, resumed ? "a" : "w");
    if (!log) {
        fprintf(stderr, "facenet train: cannot write the log %s: %s\n", logp, strerror(errno));
        goto done;
    }
    if (!resumed || ftell(log) == 0) fputs(CSV_HEADER, log);
    fflush(log);

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    facenet_eval_result vr;
    double last_acc = -1, threshold = 0;
    const int64_t first = facenet_trainer_steps_done(t), total = o.tp.steps;
    int validated_now = 0;
    if (in.val_pairs && first == 0) {
        /* The starting point: a fine-tuned model's accuracy before training. */
        st = facenet_trainer_validate(t, &vr);
        if (st != FACENET_OK) goto fail;
        last_acc = vr.accuracy;
        threshold = vr.threshold;
        facenet_train_stats s0;
        memset(&s0, 0, sizeof s0);
        s0.loss = NAN;
        log_row(log, &s0, &vr);
        fflush(log);
        fprintf(stderr, "facenet train: step 0: validation accuracy %.2f%% +- %.2f%% (threshold %.4f, AUC %.4f)\n",
                100 * vr.accuracy, 100 * vr.accuracy_std, vr.threshold, vr.auc);
    }
    pr.start = now_s();
    pr.last = 0;
    facenet_train_stats s;
    memset(&s, 0, sizeof s);
    s.step = first;
    while (facenet_trainer_steps_done(t) < total && !g_stop) {
        st = facenet_trainer_step(t, &s);
        if (st != FACENET_OK) goto fail;
        validated_now = 0;
        const int val_due = in.val_pairs && (s.step % o.val_every == 0 || s.step == total);
        if (val_due) {
            st = facenet_trainer_validate(t, &vr);
            if (st != FACENET_OK) goto fail;
            last_acc = vr.accuracy;
            threshold = vr.threshold;
            validated_now = 1;
        }
        log_row(log, &s, val_due ? &vr : NULL);
        const int ckpt_due = ckpt_every > 0 && s.step % ckpt_every == 0;
        if (ckpt_due || val_due) {
            /* What the checkpoint will cover is in the log first, and the
             * plot follows. */
            fflush(log);
            write_plot(logp, plotp);
        }
        if (ckpt_due && (st = facenet_trainer_checkpoint(t, ckpt)) != FACENET_OK) goto fail;
        step_progress(&pr, &s, first, total, last_acc, s.step == total);
    }
    if (fflush(log) != 0) {
        fprintf(stderr, "facenet train: cannot write the log %s\n", logp);
        goto done;
    }
    if (g_stop) {
        st = facenet_trainer_checkpoint(t, ckpt);
        if (st != FACENET_OK) goto fail;
        write_plot(logp, plotp);
        fprintf(stderr, "\nfacenet train: stopped at step %lld; checkpoint %s (--resume carries on)\n",
                (long long)facenet_trainer_steps_done(t), ckpt);
        status = 130;
        goto done;
    }
    if (in.val_pairs && !validated_now) {
        st = facenet_trainer_validate(t, &vr);
        if (st != FACENET_OK) goto fail;
        last_acc = vr.accuracy;
        threshold = vr.threshold;
    }
    st = facenet_trainer_checkpoint(t, ckpt);
    if (st == FACENET_OK) st = facenet_trainer_export(t, o.out, (float)threshold);
    if (st != FACENET_OK) goto fail;
    if (write_plot(logp, plotp) != 0) fprintf(stderr, "facenet train: warning: cannot write the plot %s\n", plotp);
    printf("model           %s (%s, %d px, %d-d)\n", o.out, in.architecture, in.input_size, in.embedding_dim);
    printf("steps           %lld (%lld this run), batches of %d x %d\n", (long long)facenet_trainer_steps_done(t),
           (long long)(facenet_trainer_steps_done(t) - first), o.tp.P, o.tp.K);
    printf("last loss       %.4f (%.0f%% of %d triplets active)\n", s.loss, 100 * s.active_fraction, s.n_triplets);
    if (in.val_pairs)
        printf("validation      %.2f%% +- %.2f%% on %d pairs (10-fold), AUC %.4f, threshold %.4f (recorded in the model)\n",
               100 * vr.accuracy, 100 * vr.accuracy_std, in.val_pairs, vr.auc, vr.threshold);
    printf("log, plot       %s, %s\n", logp, plotp);
    printf("checkpoint      %s\n", ckpt);
    printf("wall time       %.1f s\n", now_s() - pr.start);
    status = fflush(stdout) == 0 ? CLI_OK : CLI_FAIL;
    goto done;
fail:
    if (pr.tty) fputc('\n', stderr);
    cli_error("train", ctx, st);
done:
    if (log) fclose(log);
    facenet_trainer_free(t);
    facenet_ctx_free(ctx);
    return status;
}

const cli_command cli_cmd_train = {
    "train", "learn an embedding with the triplet loss, from scratch or by fine-tuning", USAGE, 0, TAIL, run};
