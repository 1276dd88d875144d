/*
 * cmd_quantize.c - `facenet quantize`: calibrate the embedding model (or,
 * with --network detector, the SSD detector) for int8 on real faces and
 * write the calibrated copy.
 *
 * For the embedding model, photos go through the pipeline (detect,
 * landmarks, similarity alignment) and every face found gives a chip, as
 * `facenet embed` makes them; with --chip the images are chips already.
 * For the detector, each photo is run through detection as it is. Folders are searched recursively,
 * in name order, so a run over the same folder calibrates the same way.
 */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet quantize --out OUT.safetensors [OPTIONS] PATH...\n"
    "\n"
    "Calibrate a network for int8: run it in float32 on the faces of the photos (or,\n"
    "with --chip, on face chips), record the range of every activation the int8\n"
    "network stores as 8-bit integers, and write the model with those ranges to OUT.\n"
    "The embedding model (--model) is calibrated by default; --network detector\n"
    "calibrates the SSD detector (--detector-model) on the photos instead. With\n"
    "--int8, `facenet embed/eval/detect` and `facenet bench` then run each\n"
    "calibrated network in int8 (docs/performance.md). PATHs are images or folders\n"
    "(searched recursively for .jpg, .jpeg, .png, .ppm, .pgm). Calibrate on photos\n"
    "like the ones you will use, and measure on others.\n"
    "\n"
    "  --out PATH              the calibrated model to write (may be the model itself)\n"
    "  --network N             embedding (default) or detector\n"
    "  --chip                  the images are face chips: no detection or alignment\n"
    "  --percentile P          a range is this percentile of the magnitudes seen;\n"
    "                          100: the largest (default 99.999)\n"
    "  --float32 LIST          values left in float32, comma-separated, '*' at the end\n"
    "                          matching any ending (\"input,conv256*\")\n"
    "  --max-images N          use at most the first N images (default: all)\n";
static const char TAIL[] =
    "\nExit status: 0 written, 1 an error (an unreadable image is skipped with a warning),\n"
    "2 bad usage.\n";

#define BATCH 16
#define MAX_DEPTH 16

typedef struct qopts {
    const char *out, *float32;
    int chip, max_images, detector;
    double percentile;
} qopts;

typedef struct path_list {
    char **v;
    int n, cap;
} path_list;

static int push(path_list *l, const char *path) {
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 64;
        char **v = realloc(l->v, sizeof *v * (size_t)cap);
        if (!v) return -1;
        l->v = v;
        l->cap = cap;
    }
    return (l->v[l->n] = strdup(path)) ? (l->n++, 0) : -1;
}

static int is_image_name(const char *name) {
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".ppm", ".pgm"};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof EXT / sizeof EXT[0]; i++)
        if (strcasecmp(dot, EXT[i]) == 0) return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* The images under path (a file is itself), in name order. */
static int collect(path_list *l, const char *path, int depth) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "facenet quantize: %s: no such file or folder\n", path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return push(l, path);
    if (depth > MAX_DEPTH) return 0;
    DIR *d = opendir(path);
    if (!d) {
        fprintf(stderr, "facenet quantize: cannot read folder %s\n", path);
        return -1;
    }
    path_list names = {0};
    int rc = 0;
    for (struct dirent *e; rc == 0 && (e = readdir(d)) != NULL;)
        if (e->d_name[0] != '.') rc = push(&names, e->d_name);
    closedir(d);
    if (names.n) qsort(names.v, (size_t)names.n, sizeof *names.v, cmp_str);
    for (int i = 0; rc == 0 && i < names.n; i++) {
        size_t len = strlen(path) + strlen(names.v[i]) + 2;
        char *full = malloc(len);
        if (!full) {
            rc = -1;
            break;
        }
        snprintf(full, len, "%s/%s", path, names.v[i]);
        if (stat(full, &st) == 0 && S_ISDIR(st.st_mode))
            rc = collect(l, full, depth + 1);
        else if (is_image_name(names.v[i]))
            rc = push(l, full);
        free(full);
    }
    for (int i = 0; i < names.n; i++) free(names.v[i]);
    free(names.v);
    return rc;
}

static int own_option(void *user, int argc, char **argv, int *i) {
    qopts *q = user;
    const char *a = argv[*i];
    if (strcmp(a, "--chip") == 0) return q->chip = 1;
    if (strcmp(a, "--out") && strcmp(a, "--percentile") && strcmp(a, "--float32") && strcmp(a, "--max-images") &&
        strcmp(a, "--network"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "facenet quantize: %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    if (strcmp(a, "--out") == 0) {
        q->out = v;
    } else if (strcmp(a, "--network") == 0) {
        if (strcmp(v, "embedding") && strcmp(v, "detector")) {
            fprintf(stderr, "facenet quantize: --network takes embedding or detector, not '%s'\n", v);
            return -1;
        }
        q->detector = strcmp(v, "detector") == 0;
    } else if (strcmp(a, "--float32") == 0) {
        q->float32 = v;
    } else if (strcmp(a, "--max-images") == 0) {
        return cli_parse_int(a, v, 1, 1 << 30, &q->max_images) ? -1 : 1;
    } else {
        char *end;
        q->percentile = strtod(v, &end);
        if (!*v || *end || !(q->percentile > 50.0 && q->percentile <= 100.0)) {
            fprintf(stderr, "facenet quantize: --percentile needs a number above 50 and at most 100, not '%s'\n",
                    v);
            return -1;
        }
    }
    return 1;
}

/* Hand the chips gathered so far to the quantizer and free them. */
static int flush(facenet_quantizer *qz, facenet_ctx *ctx, facenet_image *chips, int *n) {
    facenet_status st = *n ? facenet_quantizer_add(qz, chips, *n) : FACENET_OK;
    for (int i = 0; i < *n; i++) facenet_image_free(&chips[i]);
    *n = 0;
    if (st != FACENET_OK) cli_error("quantize", ctx, st);
    return st == FACENET_OK ? 0 : -1;
}

/* Chips of one image into chips (up to BATCH, flushing as needed): the
 * image itself with --chip, else each face the pipeline finds. 1 if the
 * image was skipped, -1 on a fatal error. */
static int add_image(const qopts *q, cli_pipe *p, facenet_quantizer *qz, const char *path, facenet_image *chips,
                     int *n) {
    facenet_image img;
    int nf = 0;
    if (q->chip || q->detector) {
        memset(&img, 0, sizeof img);
        facenet_status st = facenet_image_load(p->ctx, path, &img);
        if (st != FACENET_OK) {
            cli_error("quantize", p->ctx, st);
            return 1;
        }
        chips[(*n)++] = img;
        return *n == BATCH ? flush(qz, p->ctx, chips, n) : 0;
    }
    if (cli_pipe_photo(p, "quantize", path, &img, &nf) != 0) return 1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < nf; i++) {
        facenet_status st = facenet_pipeline_chip(p->pl, &img, &p->faces[i], &chips[*n]);
        if (st != FACENET_OK) {
            cli_error("quantize", p->ctx, st);
            continue;
        }
        if (++*n == BATCH) rc = flush(qz, p->ctx, chips, n);
    }
    facenet_image_free(&img);
    return rc;
}

static int run(int argc, char **argv) {
    cli_pipe_opts o;
    qopts q = {NULL, NULL, 0, 0, 0, -1.0};
    char **args = NULL;
    int nargs = 0, status = CLI_FAIL;
    path_list files = {0};
    cli_pipe p;
    memset(&p, 0, sizeof p);
    facenet_model *model = NULL;
    facenet_quantizer *qz = NULL;
    facenet_image chips[BATCH];
    int n = 0;
    if (cli_pipe_args(&o, argc, argv, "quantize", own_option, &q, 1, &args, &nargs) != 0 || !q.out) {
        if (args && !q.out) fprintf(stderr, "facenet quantize: --out PATH is required\n");
        cli_usage(&cli_cmd_quantize, stderr);
        free(args);
        return CLI_USAGE;
    }
    if (q.detector && (q.chip || strcmp(o.detector, "ssd") != 0)) {
        fprintf(stderr, "facenet quantize: --network detector calibrates the SSD detector on photos%s\n",
                q.chip ? ", not on chips (--chip)" : " (--detector ssd)");
        status = CLI_USAGE;
        goto done;
    }
    for (int i = 0; i < nargs; i++)
        if (collect(&files, args[i], 0) != 0) goto done;
    if (q.max_images > 0 && files.n > q.max_images) {
        for (int i = q.max_images; i < files.n; i++) free(files.v[i]);
        files.n = q.max_images;
    }
    if (files.n == 0) {
        fprintf(stderr, "facenet quantize: no images found\n");
        goto done;
    }
    /* Calibration runs the float32 network whatever --int8 says. */
    o.com.int8 = 0;
    if (q.chip || q.detector) {
        if (!(p.ctx = cli_ctx(o.com.threads))) goto done;
    } else if (cli_pipe_open(&p, &o, 0) != 0) {
        goto done;
    }
    model = q.detector ? cli_load_model(p.ctx, o.det_model, cli_detector_file(o.detector))
                       : cli_load_model(p.ctx, o.com.model, CLI_EMBEDDING_MODEL);
    if (!model) goto done;
    facenet_quantize_params qp = facenet_quantize_default_params();
    if (q.percentile > 0) qp.percentile = q.percentile;
    qp.float32_values = q.float32;
    facenet_status st = facenet_quantizer_create(p.ctx, model, &qp, &qz);
    if (st != FACENET_OK) {
        cli_error("quantize", p.ctx, st);
        goto done;
    }
    int skipped = 0;
    for (int i = 0; i < files.n; i++) {
        int rc = add_image(&q, &p, qz, files.v[i], chips, &n);
        if (rc < 0) goto done;
        skipped += rc;
        if ((i + 1) % 100 == 0 || i + 1 == files.n)
            fprintf(stderr, "\rfacenet quantize: %d/%d images, %d %s", i + 1, files.n,
                    facenet_quantizer_count(qz) + n, q.detector ? "photos" : "chips");
    }
    fprintf(stderr, "\n");
    if (flush(qz, p.ctx, chips, &n) != 0) goto done;
    st = facenet_quantizer_write(qz, q.out);
    if (st != FACENET_OK) {
        cli_error("quantize", p.ctx, st);
        goto done;
    }
    fprintf(stderr, "facenet quantize: %d %s from %d images (%d skipped); wrote %s\n",
            facenet_quantizer_count(qz), q.detector ? "photos" : "chips", files.n - skipped, skipped, q.out);
    status = CLI_OK;
done:
    for (int i = 0; i < n; i++) facenet_image_free(&chips[i]);
    facenet_quantizer_free(qz);
    facenet_model_free(model);
    if (p.pl)
        cli_pipe_close(&p);
    else
        facenet_ctx_free(p.ctx);
    for (int i = 0; i < files.n; i++) free(files.v[i]);
    free(files.v);
    free(args);
    return status;
}

const cli_command cli_cmd_quantize = {"quantize", "calibrate the embedding model or the detector for int8", USAGE, 1,
                                     TAIL, run};
