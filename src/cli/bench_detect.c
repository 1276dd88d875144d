/*
 * bench_detect.c - `facenet bench detect`: milliseconds per photo for each
 * stage of the photo pipeline (decode, detect, landmarks, align, embed),
 * median over repeated runs of each photo; and, in the same run, the
 * original face-api on tfjs-wasm on the same demo photos, with the ratios.
 *
 * The face-api side is tools/parity/bench.mjs run by Node, when Node and the
 * face-api package (tools/parity/node_modules, from scripts/setup.sh) are
 * there; otherwise the bench says why and times ours alone. Ours is timed
 * in two passes, before and after face-api, and the medians take both, so
 * that a drift of the machine's load during the run weighs on both sides
 * alike: on a shared machine, quote ratios rather than times.
 */
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

#define MAX_RUNS 100

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct own {
    int runs, json, no_faceapi;
    const char *node, *script;
} own;

static int own_option(void *user, int argc, char **argv, int *i) {
    own *o = user;
    if (strcmp(argv[*i], "--json") == 0) return o->json = 1;
    if (strcmp(argv[*i], "--no-faceapi") == 0) return o->no_faceapi = 1;
    if (strcmp(argv[*i], "--node") == 0 || strcmp(argv[*i], "--faceapi-script") == 0) {
        if (*i + 1 >= argc) {
            fprintf(stderr, "facenet bench: %s needs a value\n", argv[*i]);
            return -1;
        }
        if (strcmp(argv[*i], "--node") == 0) o->node = argv[++*i];
        else o->script = argv[++*i];
        return 1;
    }
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

/* ---------------------------------------------------------------- face-api */

static int readable(const char *p) { return access(p, R_OK) == 0; }

/* Run argv and return what it wrote to stdout (malloc'ed, NUL-terminated),
 * or NULL if it could not run or failed. Its stderr goes to ours when
 * verbose, else to /dev/null. */
static char *run_capture(char *const argv[], int verbose) {
    int fd[2];
    if (pipe(fd) != 0) return NULL;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return NULL;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]), close(fd[1]);
        FILE *null = fopen("/dev/null", "r+");
        if (null) {
            dup2(fileno(null), 0);
            if (!verbose) dup2(fileno(null), 2);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    close(fd[1]);
    size_t len = 0, cap = 1 << 16;
    char *out = malloc(cap);
    for (;;) {
        if (out && len + 4096 > cap) {
            char *grown = realloc(out, cap * 2);
            if (!grown) {
                free(out);
                out = NULL;
            } else {
                out = grown, cap *= 2;
            }
        }
        char sink[4096];
        ssize_t r = read(fd[0], out ? out + len : sink, 4096);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        if (out) len += (size_t)r;
    }
    close(fd[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) break;
    if (!out || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        free(out);
        return NULL;
    }
    out[len] = '\0';
    return out;
}

/* In bench.mjs's JSON, the median of `what` ("ssd_ms", "pipeline_ms") for
 * the photo named file; -1 if absent. */
static double faceapi_median(const char *json, const char *file, const char *what) {
    char key[300];
    snprintf(key, sizeof key, "\"file\": \"%.256s\"", file);
    const char *p = strstr(json, key);
    const char *end = p ? strstr(p, "\"file\":") : NULL;
    if (end == p) end = p ? strstr(p + 1, "\"file\":") : NULL;
    snprintf(key, sizeof key, "\"%s\"", what);
    const char *q = p ? strstr(p, key) : NULL;
    if (!q || (end && q > end)) return -1;
    q = strstr(q, "\"median\":");
    return q && (!end || q < end) ? strtod(q + 9, NULL) : -1;
}

/* The face-api script if Node.js and the face-api package are there; NULL
 * after saying why not. */
static const char *faceapi_ready(const own *w, char *sbuf, size_t cap) {
    const char *script = cli_find_tool(w->script, "tools/parity/bench.mjs", sbuf, cap);
    const char *node = w->node ? w->node : "node";
    char *version_argv[] = {(char *)node, "--version", NULL};
    char *version = run_capture(version_argv, 0);
    if (!version) {
        printf("face-api: not timed (no Node.js: `%s --version` did not run)\n", node);
        return NULL;
    }
    free(version);
    if (!script) {
        printf("face-api: not timed (tools/parity/bench.mjs not found; --faceapi-script PATH)\n");
        return NULL;
    }
    char pkg[4400];
    snprintf(pkg, sizeof pkg, "%.*snode_modules/@vladmandic/face-api/package.json",
             (int)(strrchr(script, '/') ? strrchr(script, '/') - script + 1 : 0), script);
    if (!readable(pkg)) {
        printf("face-api: not timed (the face-api package is not installed: %s; scripts/setup.sh installs it)\n",
               pkg);
        return NULL;
    }
    return script;
}

/* bench.mjs's JSON output, or NULL after saying it failed. */
static char *faceapi_run(const own *w, const char *script, const char *faceapi_dir) {
    char runs[16];
    snprintf(runs, sizeof runs, "%d", w->runs);
    char *argv[] = {(char *)(w->node ? w->node : "node"), (char *)script, "--faceapi", (char *)faceapi_dir,
                    "--runs", runs, NULL};
    char *json = run_capture(argv, 0);
    if (!json) printf("face-api: %s failed; run it alone to see why\n", script);
    return json;
}

/* Stage times of one photo over all passes: decode, detect, landmarks,
 * align, embed, total. */
typedef struct photo_times {
    double st[6][2 * MAX_RUNS];
    int samples, faces;
} photo_times;

/* One pass of ours: a warm-up run and `runs` timed runs of each photo. */
static int time_ours(cli_pipe *p, char **files, int nfiles, int runs, photo_times *pt) {
    for (int f = 0; f < nfiles; f++) {
        for (int r = 0; r < runs + 1; r++) {
            facenet_image img = {0};
            double t0 = now_ms();
            facenet_status s = facenet_image_load(p->ctx, files[f], &img);
            double t1 = now_ms();
            if (s == FACENET_OK) s = facenet_pipeline_run(p->pl, &img, p->faces, p->cap, &pt[f].faces);
            double t2 = now_ms();
            facenet_image_free(&img);
            if (s != FACENET_OK) {
                cli_error("bench", p->ctx, s);
                return CLI_FAIL;
            }
            if (r == 0) continue;
            facenet_timings t = facenet_pipeline_timings(p->pl);
            const double v[6] = {t1 - t0, t.detect_ms, t.landmarks_ms, t.align_ms, t.embed_ms, t2 - t0};
            for (int k = 0; k < 6; k++) pt[f].st[k][pt[f].samples] = v[k];
            pt[f].samples++;
        }
    }
    return CLI_OK;
}

int cli_bench_detect(int argc, char **argv) {
    cli_pipe_opts o;
    own w = {3, 0, 0, NULL, NULL};
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
    photo_times *pt = calloc((size_t)nfiles + 1, sizeof *pt);
    if (!pt || cli_pipe_open(&p, &o, 1) != 0) {
        free(pt);
        if (globbed) globfree(&g);
        else free(files);
        return CLI_FAIL;
    }
    /* face-api, on the demo photos only (bench.mjs knows only those). Ours
     * is timed before and after it, so that both sides see the machine's
     * load drift alike. */
    char sbuf[4200], fdir[4200];
    const char *script = NULL;
    if (!w.no_faceapi && !globbed)
        printf("face-api: not timed (it is benched on the demo photos only: name no photo)\n");
    else if (!w.no_faceapi && nfiles > 0 && (script = faceapi_ready(&w, sbuf, sizeof sbuf)) != NULL) {
        snprintf(fdir, sizeof fdir, "%s", files[0]);
        for (int k = 0; k < 2 && strrchr(fdir, '/'); k++) *strrchr(fdir, '/') = '\0'; /* .../demo/x.jpg */
    }
    double load[2] = {-1, -1};
    getloadavg(load, 1);
    if (!w.json && load[0] >= 0 && facenet_ctx_threads(p.ctx) > 1 &&
        strncmp(facenet_backend_name(), "oneDNN", 6) == 0 && load[0] > (double)sysconf(_SC_NPROCESSORS_ONLN) + 0.5)
        printf("load average %.1f on %ld CPUs: the networks run on one thread while the machine is this busy "
               "(FACENET_THREADS_ADAPT=0 to use %d anyway)\n",
               load[0], sysconf(_SC_NPROCESSORS_ONLN), facenet_ctx_threads(p.ctx));
    int status = time_ours(&p, files, nfiles, w.runs, pt);
    char *fa = NULL;
    if (status == CLI_OK && script) {
        if (!w.json)
            printf("face-api: timing face-api 1.7.15 on tfjs-wasm (%s, median of %d runs; decoding not timed), "
                   "between two passes of ours...\n",
                   script, w.runs);
        fflush(stdout);
        fa = faceapi_run(&w, script, fdir);
        if (fa) status = time_ours(&p, files, nfiles, w.runs, pt);
    }
    getloadavg(load + 1, 1);
    double *totals = calloc((size_t)nfiles + 1, sizeof *totals), *nets = calloc((size_t)nfiles + 1, sizeof *nets);
    if (!totals || !nets) status = CLI_FAIL;
    /* With --int8, each network whose model carries a calibration runs in
     * int8 (the embedding must); say which did. */
    char prec[96] = "float32";
    if (o.com.int8) {
        const facenet_model *nets3[3] = {p.det, p.lmk, p.emb};
        static const char *const NAMES[3] = {"detector", "landmarks", "embedding"};
        int len = snprintf(prec, sizeof prec, "int8:");
        for (int k = 0; k < 3; k++)
            if (nets3[k] && facenet_model_meta(nets3[k], "int8_calibration"))
                len += snprintf(prec + len, sizeof prec - (size_t)len, " %s", NAMES[k]);
    }
    if (status == CLI_OK && !w.json)
        printf("pipeline: %s detector, %s landmarks, %s alignment, %s, backend %s, %d threads; median of %d runs; "
               "load average %.1f -> %.1f\n"
               "%-12s %5s %9s %9s %9s %9s %9s %9s\n",
               o.detector, o.landmarks, o.params.align == FACENET_ALIGN_FACEAPI ? "faceapi" : "similarity", prec,
               facenet_backend_name(), facenet_ctx_threads(p.ctx), pt[0].samples, load[0], load[1], "photo",
               "faces", "decode", "detect", "landmarks", "align", "embed", "total");
    double sum_total = 0, sum_net = 0;
    for (int f = 0; f < nfiles && status == CLI_OK; f++) {
        double m[6];
        for (int k = 0; k < 6; k++) m[k] = cli_median(pt[f].st[k], pt[f].samples);
        sum_total += m[5];
        sum_net += m[5] - m[0];
        totals[f] = m[5];
        nets[f] = m[5] - m[0];
        char stem[256];
        cli_stem(files[f], stem, sizeof stem);
        if (w.json)
            printf("{\"bench\": \"detect\", \"photo\": \"%s\", \"faces\": %d, \"decode_ms\": %.2f, "
                   "\"detect_ms\": %.2f, \"landmarks_ms\": %.2f, \"align_ms\": %.2f, \"embed_ms\": %.2f, "
                   "\"total_ms\": %.2f, \"precision\": \"%s\"}\n",
                   stem, pt[f].faces, m[0], m[1], m[2], m[3], m[4], m[5], prec);
        else
            printf("%-12s %5d %9.1f %9.1f %9.1f %9.1f %9.1f %9.1f\n", stem, pt[f].faces, m[0], m[1], m[2], m[3],
                   m[4], m[5]);
    }
    if (status == CLI_OK && !w.json && nfiles > 0)
        printf("mean %.1f ms per photo, %.1f without decoding\n", sum_total / nfiles, sum_net / nfiles);
    cli_pipe_close(&p);
    if (fa && status == CLI_OK) {
        double sfa = 0, sours = 0, snet = 0;
        int counted = 0;
        if (!w.json)
            printf("%-12s %5s %12s %12s %10s %10s %14s\n", "photo", "faces", "face-api ssd", "face-api all",
                   "ours all", "ratio", "ratio no-dec");
        for (int f = 0; f < nfiles; f++) {
            char stem[256], name[300];
            cli_stem(files[f], stem, sizeof stem);
            snprintf(name, sizeof name, "%s", strrchr(files[f], '/') ? strrchr(files[f], '/') + 1 : files[f]);
            const double ssd = faceapi_median(fa, name, "ssd_ms"), all = faceapi_median(fa, name, "pipeline_ms");
            if (all <= 0) continue;
            sfa += all, sours += totals[f], snet += nets[f], counted++;
            if (w.json)
                printf("{\"bench\": \"detect_vs_faceapi\", \"photo\": \"%s\", \"faceapi_ssd_ms\": %.2f, "
                       "\"faceapi_pipeline_ms\": %.2f, \"ours_total_ms\": %.2f, \"ratio\": %.2f, "
                       "\"ratio_without_decode\": %.2f}\n",
                       stem, ssd, all, totals[f], all / totals[f], all / nets[f]);
            else
                printf("%-12s %5d %12.1f %12.1f %10.1f %9.1fx %13.1fx\n", stem, pt[f].faces, ssd, all, totals[f],
                       all / totals[f], all / nets[f]);
        }
        if (counted && !w.json)
            printf("face-api: mean %.1f ms per photo (decoded beforehand); ours %.1f with decoding: %.1fx faster "
                   "(%.1fx without decoding)\n",
                   sfa / counted, sours / counted, sfa / sours, sfa / snet);
    }
    free(fa);
    free(totals);
    free(nets);
    free(pt);
    if (globbed) globfree(&g);
    else free(files);
    return status;
}
