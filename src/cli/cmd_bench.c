/*
 * cmd_bench.c - `facenet bench embed`: time the embedding network, judge
 * it against the machine's FMA peak and against PyTorch on the same
 * weights.
 *
 * For each thread count and batch size, a batch of synthetic 150x150 chips
 * is embedded repeatedly (after a warm-up pass, which also builds the
 * backend's prepared kernels) and the median time per face is kept. The
 * machines this runs on are shared and noisy, so:
 *   - the measurement is split into rounds, and in each round every
 *     configuration runs ours and then PyTorch's, back to back; the figure
 *     reported is the median of the rounds' medians, and the speed-up is
 *     computed from figures of the same run;
 *   - PyTorch runs in a child process (tools/bench/torch_resnet29.py --serve)
 *     that builds the network from our model file once and answers one
 *     timing request per line; before timing, it checks that its output on
 *     a test chip matches ours.
 * The FMA peak comes from facenet_fma_peak_gflops() (a register-only FMA
 * loop); "of peak" is the arithmetic rate (2 x 270.9 M multiply-adds per
 * face, counted as a direct convolution would do them) over that peak.
 * When the model carries int8 calibration (or --precision asks), each
 * configuration is also timed in int8, in the same rounds, right after
 * float32, and its row gives the ratio to float32 of the same run.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char USAGE[] = "usage: facenet bench embed [OPTIONS]\n"
                            "\n"
                            "Time the embedding network: milliseconds per face at each batch size and\n"
                            "thread count (median of repeated runs), GFLOP/s (2 x 270.9 M multiply-adds\n"
                            "per face for the ResNet-29) and the fraction of this machine's measured FMA\n"
                            "peak; and, in the same run, PyTorch on the same weights when python3 with\n"
                            "torch and numpy is available (tools/bench/torch_resnet29.py).\n"
                            "\n"
                            "  --threads-list L  thread counts, comma-separated (default 1,2)\n"
                            "  --batches L       batch sizes, comma-separated (default 1,16)\n"
                            "  --seconds S       time per configuration and engine (default 2)\n"
                            "  --rounds N        interleaved rounds the time is split into (default 3)\n"
                            "  --model PATH      the embedding model (default: dlib_resnet29.safetensors)\n"
                            "  --precision L     f32, int8 or f32,int8 (default: f32, and int8 too when\n"
                            "                    the model carries int8 calibration: `facenet quantize`)\n"
                            "  --no-torch        do not run PyTorch\n"
                            "  --python PATH     the Python with torch (default: $FACENET_PYTHON, python3,\n"
                            "                    then Debian's /usr/bin/python3)\n"
                            "  --torch-script P  the PyTorch script (default: tools/bench/torch_resnet29.py\n"
                            "                    under the current directory or beside the executable)\n"
                            "  --json            one JSON object per configuration instead of a table\n"
                            "\n"
                            "usage: facenet bench detect [OPTIONS] [PHOTO...]\n"
                            "\n"
                            "Time the photo pipeline (decode, detect, landmarks, align, embed): median\n"
                            "milliseconds per photo and stage, on the demo photos when none is named; and,\n"
                            "in the same run, face-api 1.7.15 on tfjs-wasm on the demo photos when Node.js\n"
                            "and the face-api package are there (tools/parity/bench.mjs), with the ratios.\n"
                            "Takes the options of `facenet detect` (--threads, --detector, --align...) and\n"
                            "  --runs N             timed runs per photo after one warm-up (default 3)\n"
                            "  --no-faceapi         do not run face-api\n"
                            "  --node PATH          the Node.js to run it with (default: node)\n"
                            "  --faceapi-script P   its script (default: tools/parity/bench.mjs under the\n"
                            "                       current directory or beside the executable)\n"
                            "  --json               one JSON object per photo instead of a table\n"
                            "\n"
                            "usage: facenet bench train [OPTIONS]\n"
                            "\n"
                            "Time the training step (forward with batch statistics, triplet loss, backward,\n"
                            "SGD update) on random chips: milliseconds per step and faces per second; and,\n"
                            "in the same run, the same step in PyTorch when python3 with torch and numpy is\n"
                            "available (tools/bench/torch_train_step.py), with the ratio.\n"
                            "\n"
                            "  --arch A           resnet29 (default) or small (PyTorch: resnet29 only)\n"
                            "  --batch N          faces per step (default 48)\n"
                            "  --threads N        threads (default: all cores)\n"
                            "  --seconds S        time per round and engine (default 8)\n"
                            "  --rounds N         rounds, each running ours and then PyTorch (default 3)\n"
                            "  --no-torch, --python PATH, --torch-script P   as for bench embed\n"
                            "  --json             one JSON object instead of a table\n";

#define MACS_PER_FACE 270886912.0 /* 270,854,144 conv + 32,768 fc */
#define MAX_LIST 8
#define MAX_ROUNDS 20
#define MAX_RUNS 1000
#define N_VARIANTS 3
#define MAX_PREC 2 /* float32, int8 */

/* The PyTorch forms the script times (see tools/bench/torch_resnet29.py):
 * TorchScript frozen in channels_last and in NCHW, and channels_last through
 * optimize_for_inference. A speed-up is against the best of them. */
static const char *const VARIANTS[N_VARIANTS] = {"frozen_cl", "frozen", "ofi"};
static const char *const VARIANT_COLUMNS[N_VARIANTS] = {"torch:cl", "torch:nchw", "torch:ofi"};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int parse_list(const char *opt, const char *s, int *out, int cap, int hi) {
    int n = 0;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (n == cap || cli_parse_int(opt, tok, 1, hi, &out[n])) return -1;
        n++;
    }
    return n;
}

static void synth_chip(facenet_image *img) {
    /* A smooth face-sized pattern: the timing does not depend on pixel values. */
    for (int y = 0; y < img->height; y++)
        for (int x = 0; x < img->width; x++)
            for (int c = 0; c < 3; c++)
                img->data[((size_t)y * img->width + x) * 3 + c] = (uint8_t)((x * 3 + y * 5 + c * 40) & 255);
}

/* Median seconds per face over runs of batch b for at least `seconds`
 * (and at least 3 runs); -1 on failure. */
static double time_ours(facenet_session *s, const facenet_image *chips, int b, float *out, double seconds) {
    double times[MAX_RUNS];
    int n = 0;
    double start = now_s();
    while (n < MAX_RUNS && (n < 3 || now_s() - start < seconds)) {
        double t0 = now_s();
        if (facenet_embed_chips(s, chips, b, out, 0) != FACENET_OK) return -1;
        times[n++] = (now_s() - t0) / b;
    }
    return cli_median(times, n);
}

/* ---------------------------------------------------------------- PyTorch */

typedef struct torch_proc {
    pid_t pid;
    FILE *to, *from;
    char python[PATH_MAX];
    char version[64];
    double check_diff; /* max |torch - ours| on the test chip, -1 if unknown */
} torch_proc;

static void torch_stop(torch_proc *tp) {
    if (tp->to) {
        fputs("{\"quit\": true}\n", tp->to);
        fclose(tp->to);
    }
    if (tp->from) fclose(tp->from);
    if (tp->pid > 0) {
        int status;
        while (waitpid(tp->pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    memset(tp, 0, sizeof *tp);
}

/* Start the script in serve mode; 0 when it is ready, else -1 and why in
 * why (the caller goes on without PyTorch). */
static int torch_start(torch_proc *tp, const char *python, const char *script, const char *model,
                       const char *chip_path, const char *ref_path, char *why, size_t why_cap) {
    int to[2], from[2];
    memset(tp, 0, sizeof *tp);
    tp->check_diff = -1;
    /* If the child dies, writing to it must fail, not kill us. */
    signal(SIGPIPE, SIG_IGN);
    if (pipe(to) != 0) return snprintf(why, why_cap, "pipe: %s", strerror(errno)), -1;
    if (pipe(from) != 0) {
        close(to[0]), close(to[1]);
        return snprintf(why, why_cap, "pipe: %s", strerror(errno)), -1;
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        return snprintf(why, why_cap, "fork: %s", strerror(errno)), -1;
    }
    if (pid == 0) {
        dup2(to[0], 0);
        dup2(from[1], 1);
        close(to[0]), close(to[1]), close(from[0]), close(from[1]);
        char *argv[] = {(char *)python,
                        "-u",
                        (char *)script,
                        "--model",
                        (char *)model,
                        "--serve",
                        "--check-chip",
                        (char *)chip_path,
                        "--check-ref",
                        (char *)ref_path,
                        NULL};
        execvp(argv[0], argv);
        _exit(127);
    }
    close(to[0]);
    close(from[1]);
    tp->pid = pid;
    tp->to = fdopen(to[1], "w");
    tp->from = fdopen(from[0], "r");
    snprintf(tp->python, sizeof tp->python, "%s", python);
    char line[4096];
    if (!tp->to || !tp->from || !fgets(line, sizeof line, tp->from) || !strstr(line, "\"ready\": true")) {
        snprintf(why, why_cap, "%s %s did not start (see its messages above)", python, script);
        torch_stop(tp);
        return -1;
    }
    const char *v = strstr(line, "\"torch\": \"");
    if (v) snprintf(tp->version, sizeof tp->version, "%.*s", (int)strcspn(v + 10, "\""), v + 10);
    tp->check_diff = cli_json_number(line, "max_abs_diff");
    return 0;
}

/* PyTorch's median ms per face for each variant; 0 or -1. */
static int torch_time(torch_proc *tp, int threads, int batch, double seconds, double ms[N_VARIANTS]) {
    char line[4096];
    fprintf(tp->to, "{\"threads\": %d, \"batch\": %d, \"seconds\": %.3f}\n", threads, batch, seconds);
    fflush(tp->to);
    if (!fgets(line, sizeof line, tp->from)) return -1;
    for (int v = 0; v < N_VARIANTS; v++) ms[v] = cli_json_number(line, VARIANTS[v]);
    return 0;
}

/* Write the test chip and our raw embedding of it for the script's check. */
static int write_check(const char *dir, const facenet_image *chip, facenet_session *s, char *chip_path,
                       char *ref_path, size_t cap) {
    float raw[FACENET_EMBEDDING_DIM];
    if (facenet_embed_chips(s, chip, 1, raw, FACENET_EMBED_RAW) != FACENET_OK) return -1;
    snprintf(chip_path, cap, "%s/chip.rgb", dir);
    snprintf(ref_path, cap, "%s/ours.f32", dir);
    FILE *f = fopen(chip_path, "wb");
    int ok = f && fwrite(chip->data, 1, (size_t)150 * 150 * 3, f) == (size_t)150 * 150 * 3;
    if (f && fclose(f) != 0) ok = 0;
    f = ok ? fopen(ref_path, "wb") : NULL;
    ok = f && fwrite(raw, sizeof raw[0], FACENET_EMBEDDING_DIM, f) == FACENET_EMBEDDING_DIM;
    if (f && fclose(f) != 0) ok = 0;
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- the benchmark */

typedef struct options {
    int threads[MAX_LIST], nthreads, batches[MAX_LIST], nbatches, rounds, json, torch;
    double seconds;
    const char *model, *python, *script;
    int int8[MAX_PREC], nprec; /* the precisions, f32 (0) first; nprec 0: not given */
} options;

static const char *prec_name(int int8) { return int8 ? "int8" : "f32"; }

static int parse_precisions(const char *v, options *o) {
    int f32 = 0, i8 = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        if (strcmp(tok, "f32") == 0)
            f32 = 1;
        else if (strcmp(tok, "int8") == 0)
            i8 = 1;
        else {
            fprintf(stderr, "facenet bench: --precision takes f32, int8 or f32,int8, not '%s'\n", v);
            return -1;
        }
    }
    o->nprec = 0;
    if (f32) o->int8[o->nprec++] = 0;
    if (i8) o->int8[o->nprec++] = 1;
    return o->nprec ? 0 : -1;
}

static int parse_options(int argc, char **argv, options *o) {
    *o = (options){{1, 2}, 2, {1, 16}, 2, 3, 0, 1, 2.0, NULL, NULL, NULL, {0, 1}, 0};
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            o->json = 1;
            continue;
        }
        if (strcmp(a, "--no-torch") == 0) {
            o->torch = 0;
            continue;
        }
        if (!v) {
            fprintf(stderr, "facenet bench: %s needs a value (or is unknown)\n%s", a, USAGE);
            return -1;
        }
        i++;
        int k;
        if (strcmp(a, "--threads-list") == 0) {
            if ((o->nthreads = parse_list(a, v, o->threads, MAX_LIST, 256)) <= 0) return -1;
        } else if (strcmp(a, "--batches") == 0) {
            if ((o->nbatches = parse_list(a, v, o->batches, MAX_LIST, 256)) <= 0) return -1;
        } else if (strcmp(a, "--seconds") == 0) {
            if (cli_parse_int(a, v, 0, 3600, &k)) return -1;
            o->seconds = k;
        } else if (strcmp(a, "--rounds") == 0) {
            if (cli_parse_int(a, v, 1, MAX_ROUNDS, &o->rounds)) return -1;
        } else if (strcmp(a, "--model") == 0) {
            o->model = v;
        } else if (strcmp(a, "--precision") == 0) {
            if (parse_precisions(v, o)) return -1;
        } else if (strcmp(a, "--python") == 0) {
            o->python = v;
        } else if (strcmp(a, "--torch-script") == 0) {
            o->script = v;
        } else {
            fprintf(stderr, "facenet bench: unknown option %s\n%s", a, USAGE);
            return -1;
        }
    }
    return 0;
}

typedef struct result {
    double ours[MAX_ROUNDS];                /* seconds per face, per round */
    double torch[N_VARIANTS][MAX_ROUNDS];   /* ms per face, per round; < 0 unknown */
    double ours_med, torch_med[N_VARIANTS]; /* ms per face */
} result;

/* PyTorch's best variant for a configuration (index), or -1. */
static int best_variant(const result *r) {
    int best = -1;
    for (int v = 0; v < N_VARIANTS; v++)
        if (r->torch_med[v] > 0 && (best < 0 || r->torch_med[v] < r->torch_med[best])) best = v;
    return best;
}

static void print_results(const options *o, result all[MAX_PREC][MAX_LIST][MAX_LIST], const double *peak,
                          int have_torch) {
    int bt = -1, bb = -1, bp = 0, tt = -1, tb = -1, tv = -1;
    for (int ti = 0; ti < o->nthreads; ti++) {
        for (int bi = 0; bi < o->nbatches; bi++)
            for (int pi = 0; pi < o->nprec; pi++) {
                result(*res)[MAX_LIST] = all[pi];
                result *r = &res[ti][bi];
                /* int8 against float32 of the same run, when both were timed. */
                const double vs_f32 = pi > 0 && !o->int8[0] ? all[0][ti][bi].ours_med / r->ours_med : 0.0;
                double gflops = 2.0 * MACS_PER_FACE / (r->ours_med * 1e-3) * 1e-9;
                int v = have_torch ? best_variant(r) : -1;
                if (bt < 0 || r->ours_med < all[bp][bt][bb].ours_med)
                    bt = ti, bb = bi, bp = pi;
                if (v >= 0 && (tv < 0 || r->torch_med[v] < res[tt][tb].torch_med[tv]))
                    tt = ti, tb = bi, tv = v;
                if (o->json) {
                    printf("{\"bench\": \"embed\", \"backend\": ");
                    cli_json_string(stdout, facenet_backend_name());
                    printf(", \"precision\": \"%s\", \"threads\": %d, \"batch\": %d, \"ms_per_face\": %.3f, "
                           "\"gflops\": %.1f, \"fma_peak_gflops\": %.1f",
                           prec_name(o->int8[pi]), o->threads[ti], o->batches[bi], r->ours_med, gflops, peak[ti]);
                    /* The FMA peak bounds float32 only, as in the table. */
                    if (!o->int8[pi] && peak[ti] > 0) printf(", \"fraction_of_peak\": %.3f", gflops / peak[ti]);
                    if (vs_f32 > 0)
                        printf(", \"speedup_vs_f32\": %.2f", vs_f32);
                    if (v >= 0) {
                        printf(", \"torch_ms_per_face\": {");
                        for (int k = 0; k < N_VARIANTS; k++)
                            printf("%s\"%s\": %.3f", k ? ", " : "", VARIANTS[k], r->torch_med[k]);
                        printf("}, \"speedup_vs_torch_best\": %.2f", r->torch_med[v] / r->ours_med);
                    }
                    printf("}\n");
                } else {
                    /* The FMA peak bounds float32 only: int8 rows get no "of peak". */
                    printf("%5s %8d %6d %9.3f %8.1f %8.1f", prec_name(o->int8[pi]), o->threads[ti], o->batches[bi],
                           r->ours_med, 1e3 / r->ours_med, gflops);
                    if (o->int8[pi] || peak[ti] <= 0)
                        printf(" %8s", "-");
                    else
                        printf(" %7.1f%%", 100.0 * gflops / peak[ti]);
                    if (o->nprec > 1) {
                        if (vs_f32 > 0)
                            printf(" %6.2fx", vs_f32);
                        else
                            printf(" %7s", "");
                    }
                    if (v >= 0) {
                        for (int k = 0; k < N_VARIANTS; k++)
                            printf(" %10.3f", r->torch_med[k]);
                        printf(" %8.2fx", r->torch_med[v] / r->ours_med);
                    }
                    printf("\n");
                }
            }
    }
    if (!o->json && bt >= 0) {
        const result(*res)[MAX_LIST] = all[0];
        printf("best: %.3f ms/face (%s, %d thread%s, batch %d)", all[bp][bt][bb].ours_med, prec_name(o->int8[bp]),
               o->threads[bt], o->threads[bt] == 1 ? "" : "s", o->batches[bb]);
        if (tv >= 0)
            printf("; PyTorch's best %.3f (%s, %d thread%s, batch %d): %.2fx", res[tt][tb].torch_med[tv], VARIANTS[tv],
                   o->threads[tt], o->threads[tt] == 1 ? "" : "s", o->batches[tb],
                   res[tt][tb].torch_med[tv] / all[bp][bt][bb].ours_med);
        printf("\n");
    }
}

static int bench_embed(int argc, char **argv) {
    options o;
    if (parse_options(argc, argv, &o)) return CLI_USAGE;
    char mbuf[PATH_MAX + 64];
    const char *model_path = cli_find_model(o.model, CLI_EMBEDDING_MODEL, mbuf, sizeof mbuf);
    facenet_ctx *ctx0 = model_path ? cli_ctx(1) : NULL;
    facenet_model *model = ctx0 ? cli_load_model(ctx0, model_path, CLI_EMBEDDING_MODEL) : NULL;
    if (!model) {
        facenet_ctx_free(ctx0);
        return CLI_FAIL;
    }
    int maxb = 1;
    for (int i = 0; i < o.nbatches; i++) maxb = o.batches[i] > maxb ? o.batches[i] : maxb;
    facenet_image *chips = calloc((size_t)maxb, sizeof *chips);
    float *out = malloc(sizeof(float) * FACENET_EMBEDDING_DIM * (size_t)maxb);
    facenet_ctx *ctx[MAX_PREC][MAX_LIST] = {{0}};
    facenet_session *sess[MAX_PREC][MAX_LIST] = {{0}};
    static result res[MAX_PREC][MAX_LIST][MAX_LIST];
    const int auto_prec = o.nprec == 0;
    if (auto_prec) o.nprec = 2; /* int8 dropped below if the model has no calibration */
    double peak[MAX_LIST] = {0};
    torch_proc tp = {0};
    int have_torch = 0, status = chips && out ? CLI_OK : CLI_FAIL;
    char tmpdir[] = "/tmp/facenet-bench-XXXXXX", chip_path[PATH_MAX], ref_path[PATH_MAX];
    int have_tmp = 0;
    for (int i = 0; status == CLI_OK && i < maxb; i++) {
        if (facenet_image_alloc(ctx0, 150, 150, 3, &chips[i]) != FACENET_OK)
            status = CLI_FAIL;
        else
            synth_chip(&chips[i]);
    }
    /* One context and session per precision and thread count, kept for all
     * rounds: the backend prepares its kernels once per session and batch
     * size. */
    const char *no_int8 = NULL;
    for (int pi = 0; status == CLI_OK && pi < o.nprec; pi++)
        for (int ti = 0; status == CLI_OK && ti < o.nthreads; ti++) {
            facenet_status st = FACENET_ERR_NO_MEMORY;
            if (!(ctx[pi][ti] = cli_ctx_precision(o.threads[ti], o.int8[pi])) ||
                (st = facenet_session_create(ctx[pi][ti], model, &sess[pi][ti])) == FACENET_OK)
                continue;
            if (auto_prec && o.int8[pi] && st == FACENET_ERR_UNSUPPORTED) {
                no_int8 = "int8: not timed, the model carries no int8 calibration (facenet quantize)";
                for (int k = 0; k <= ti; k++) facenet_ctx_free(ctx[pi][k]), ctx[pi][k] = NULL;
                o.nprec = pi;
                break;
            }
            if (ctx[pi][ti]) cli_error("bench", ctx[pi][ti], st);
            status = CLI_FAIL;
        }
    if (status != CLI_OK) goto done;

    const char *isa = "";
    for (int ti = 0; ti < o.nthreads; ti++) peak[ti] = facenet_fma_peak_gflops(o.threads[ti], 300, &isa);
    if (!o.json) {
        printf("embedding network %s, %s\n", facenet_model_architecture(model),
               facenet_model_meta(model, "model_id") ? facenet_model_meta(model, "model_id") : "");
        printf("backend: %s\n", facenet_backend_name());
        if (no_int8) printf("%s\n", no_int8);
        printf("FMA peak (%s loop, measured):", isa);
        for (int ti = 0; ti < o.nthreads; ti++)
            printf("%s %d thread%s %.1f GFLOP/s", ti ? "," : "", o.threads[ti], o.threads[ti] == 1 ? "" : "s",
                   peak[ti]);
        printf("\n");
    }
    if (o.torch && o.int8[0]) {
        o.torch = 0;
        if (!o.json) printf("PyTorch: skipped (its check compares against float32: add f32 to --precision)\n");
    }
    if (o.torch) {
        char sbuf[PATH_MAX], why[PATH_MAX + 128] = "";
        const char *python = cli_find_python(o.python);
        const char *script = cli_find_tool(o.script, "tools/bench/torch_resnet29.py", sbuf, sizeof sbuf);
        if (!python) {
            snprintf(why, sizeof why,
                     "no python3 that imports torch and numpy (apt-get install python3-torch)");
        } else if (!script) {
            snprintf(why, sizeof why, "tools/bench/torch_resnet29.py not found (--torch-script PATH)");
        } else if (!mkdtemp(tmpdir)) {
            snprintf(why, sizeof why, "mkdtemp: %s", strerror(errno));
        } else {
            have_tmp = 1;
            if (write_check(tmpdir, &chips[0], sess[0][0], chip_path, ref_path, sizeof chip_path))
                snprintf(why, sizeof why, "could not write the check files");
            else if (torch_start(&tp, python, script, model_path, chip_path, ref_path, why, sizeof why) == 0)
                have_torch = 1;
        }
        if (!o.json) {
            if (have_torch)
                printf("PyTorch %s (%s), TorchScript traced and frozen: channels_last (cl), NCHW (nchw), "
                       "channels_last + optimize_for_inference (ofi); its output vs ours on a test chip: "
                       "max |diff| %.2g\n",
                       tp.version, tp.python, tp.check_diff);
            else
                printf("PyTorch: skipped (%s)\n", why);
        }
    }
    if (!o.json) {
        printf("%d round%s, %s; medians of the rounds' medians\n", o.rounds, o.rounds == 1 ? "" : "s",
               have_torch ? "each running ours and then PyTorch per configuration" : "ours only");
        printf("%5s %8s %6s %9s %8s %8s %8s", "prec", "threads", "batch", "ms/face", "faces/s", "GFLOP/s",
               "of peak");
        if (o.nprec > 1) printf(" %7s", "vs f32");
        if (have_torch) {
            for (int v = 0; v < N_VARIANTS; v++) printf(" %10s", VARIANT_COLUMNS[v]);
            printf(" %9s", "speed-up");
        }
        printf("\n");
    }
    fflush(stdout);

    /* Warm up every configuration (kernels are prepared on first use). */
    for (int pi = 0; pi < o.nprec; pi++)
        for (int ti = 0; status == CLI_OK && ti < o.nthreads; ti++)
            for (int bi = 0; status == CLI_OK && bi < o.nbatches; bi++)
                if (facenet_embed_chips(sess[pi][ti], chips, o.batches[bi], out, 0) != FACENET_OK) {
                    cli_error("bench", ctx[pi][ti], FACENET_ERR_INTERNAL);
                    status = CLI_FAIL;
                }
    const double slice = o.seconds / o.rounds;
    for (int r = 0; status == CLI_OK && r < o.rounds; r++)
        for (int ti = 0; status == CLI_OK && ti < o.nthreads; ti++)
            for (int bi = 0; status == CLI_OK && bi < o.nbatches; bi++) {
                for (int pi = 0; status == CLI_OK && pi < o.nprec; pi++)
                    if ((res[pi][ti][bi].ours[r] = time_ours(sess[pi][ti], chips, o.batches[bi], out, slice)) < 0) {
                        cli_error("bench", ctx[pi][ti], FACENET_ERR_INTERNAL);
                        status = CLI_FAIL;
                    }
                double ms[N_VARIANTS];
                for (int v = 0; v < N_VARIANTS; v++) ms[v] = -1;
                if (have_torch && torch_time(&tp, o.threads[ti], o.batches[bi], slice, ms) != 0) {
                    fprintf(stderr, "facenet bench: PyTorch stopped answering; going on without it\n");
                    torch_stop(&tp);
                    have_torch = 0;
                }
                for (int pi = 0; pi < o.nprec; pi++)
                    for (int v = 0; v < N_VARIANTS; v++) res[pi][ti][bi].torch[v][r] = ms[v];
            }
    if (status != CLI_OK)
        goto done;
    for (int pi = 0; pi < o.nprec; pi++)
        for (int ti = 0; ti < o.nthreads; ti++)
            for (int bi = 0; bi < o.nbatches; bi++) {
                result *rs = &res[pi][ti][bi];
                double tmp[MAX_ROUNDS];
                for (int r = 0; r < o.rounds; r++)
                    tmp[r] = rs->ours[r] * 1e3;
                rs->ours_med = cli_median(tmp, o.rounds);
                for (int v = 0; v < N_VARIANTS; v++) {
                    int n = 0;
                    for (int r = 0; r < o.rounds; r++)
                        if (rs->torch[v][r] > 0)
                            tmp[n++] = rs->torch[v][r];
                    rs->torch_med[v] = n ? cli_median(tmp, n) : -1;
                }
            }
    print_results(&o, res, peak, have_torch);

done:
    if (tp.pid > 0)
        torch_stop(&tp);
    if (have_tmp) {
        unlink(chip_path);
        unlink(ref_path);
        rmdir(tmpdir);
    }
    for (int pi = 0; pi < MAX_PREC; pi++)
        for (int ti = 0; ti < o.nthreads; ti++) {
            facenet_session_free(sess[pi][ti]);
            facenet_ctx_free(ctx[pi][ti]);
        }
    for (int i = 0; chips && i < maxb; i++) facenet_image_free(&chips[i]);
    free(chips);
    free(out);
    facenet_model_free(model);
    facenet_ctx_free(ctx0);
    return status;
}

static int run(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "facenet bench: which benchmark?\n%s", USAGE);
        return CLI_USAGE;
    }
    if (strcmp(argv[1], "embed") == 0) return bench_embed(argc, argv);
    if (strcmp(argv[1], "detect") == 0) return cli_bench_detect(argc - 1, argv + 1);
    if (strcmp(argv[1], "train") == 0) return cli_bench_train(argc, argv);
    fprintf(stderr, "facenet bench: unknown benchmark '%s'\n%s", argv[1], USAGE);
    return CLI_USAGE;
}

const cli_command cli_cmd_bench = {"bench", "measure speed (bench embed, detect, train)", USAGE, 0, NULL, run};
