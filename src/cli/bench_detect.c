/*
 * bench_detect.c - `facenet bench detect`: milliseconds per photo for each
 * stage of the photo pipeline (decode, detect, landmarks, align, embed),
 * median over repeated runs of each photo.
 */
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

#define MAX_RUNS 100

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct own {
    int runs, json;
} own;

static int own_option(void *user, int argc, char **argv, int *i) {
    own *o = user;
    if (strcmp(argv[*i], "--json") == 0) return o->json = 1;
    if (strcmp(argv[*i], "--runs") != 0) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "facenet bench: --runs needs a value\n");
        return -1;
    }
    return cli_parse_int("--runs", argv[++*i], 1, MAX_RUNS, &o->runs) ? -1 : 1;
}

/* The demo photos that come with the models, when no photo is named. */
static int default_photos(glob_t *g) {
    char buf[4096];
    const char *p = cli_find_model(NULL, "face-api-1.7.15/demo/sample1.jpg", buf, sizeof buf);
    if (!p) return -1;
    char pattern[4200];
    snprintf(pattern, sizeof pattern, "%.*ssample*.jpg", (int)(strrchr(p, '/') - p + 1), p);
    return glob(pattern, 0, NULL, g) == 0 ? 0 : -1;
}

int cli_bench_detect(int argc, char **argv) {
    cli_pipe_opts o;
    own w = {3, 0};
    char **files = NULL;
    int nfiles = 0;
    glob_t g;
    int globbed = 0;
    if (cli_pipe_args(&o, argc, argv, "bench detect", own_option, &w, 0, &files, &nfiles) != 0) {
        free(files);
        return CLI_USAGE;
    }
    if (nfiles == 0) {
        free(files);
        files = NULL;
        if (default_photos(&g) != 0) return CLI_FAIL;
        globbed = 1;
        files = g.gl_pathv;
        nfiles = (int)g.gl_pathc;
    }
    cli_pipe p;
    if (cli_pipe_open(&p, &o, 1) != 0) {
        if (globbed) globfree(&g);
        else free(files);
        return CLI_FAIL;
    }
    if (!w.json)
        printf("pipeline: %s detector, %s landmarks, %s alignment, backend %s, %d threads; median of %d runs\n"
               "%-12s %5s %9s %9s %9s %9s %9s %9s\n",
               o.detector, o.landmarks, o.params.align == FACENET_ALIGN_FACEAPI ? "faceapi" : "similarity",
               facenet_backend_name(), facenet_ctx_threads(p.ctx), w.runs, "photo", "faces", "decode",
               "detect", "landmarks", "align", "embed", "total");
    int status = CLI_OK;
    double sum_total = 0;
    for (int f = 0; f < nfiles && status == CLI_OK; f++) {
        double st[6][MAX_RUNS];
        int n = 0;
        for (int r = 0; r < w.runs + 1; r++) { /* the first run warms up */
            facenet_image img = {0};
            double t0 = now_ms();
            facenet_status s = facenet_image_load(p.ctx, files[f], &img);
            double t1 = now_ms();
            if (s == FACENET_OK) s = facenet_pipeline_run(p.pl, &img, p.faces, p.cap, &n);
            double t2 = now_ms();
            facenet_image_free(&img);
            if (s != FACENET_OK) {
                cli_error("bench", p.ctx, s);
                status = CLI_FAIL;
                break;
            }
            if (r == 0) continue;
            facenet_timings t = facenet_pipeline_timings(p.pl);
            st[0][r - 1] = t1 - t0;
            st[1][r - 1] = t.detect_ms;
            st[2][r - 1] = t.landmarks_ms;
            st[3][r - 1] = t.align_ms;
            st[4][r - 1] = t.embed_ms;
            st[5][r - 1] = t2 - t0;
        }
        if (status != CLI_OK) break;
        double m[6];
        for (int k = 0; k < 6; k++) m[k] = median(st[k], w.runs);
        sum_total += m[5];
        char stem[256];
        cli_stem(files[f], stem, sizeof stem);
        if (w.json)
            printf("{\"bench\": \"detect\", \"photo\": \"%s\", \"faces\": %d, \"decode_ms\": %.2f, "
                   "\"detect_ms\": %.2f, \"landmarks_ms\": %.2f, \"align_ms\": %.2f, \"embed_ms\": %.2f, "
                   "\"total_ms\": %.2f}\n",
                   stem, n, m[0], m[1], m[2], m[3], m[4], m[5]);
        else
            printf("%-12s %5d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", stem, n, m[0], m[1], m[2], m[3], m[4], m[5]);
        fflush(stdout);
    }
    if (status == CLI_OK && !w.json && nfiles > 0)
        printf("mean %.1f ms per photo (face-api 1.7.15 on tfjs-wasm: 640-1070 ms per photo on this machine "
               "class)\n",
               sum_total / nfiles);
    cli_pipe_close(&p);
    if (globbed) globfree(&g);
    else free(files);
    return status;
}
