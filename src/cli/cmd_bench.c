/*
 * cmd_bench.c - `facenet bench embed`: time the embedding network.
 *
 * For each thread count and batch size, embed a batch of synthetic 150x150
 * chips repeatedly (after one warm-up pass) for at least --seconds, and
 * report the median time per face and the arithmetic rate. Timing is wall
 * clock on a shared machine: compare figures from the same run.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static const char USAGE[] =
    "usage: facenet bench embed [OPTIONS]\n"
    "\n"
    "Time the embedding network: milliseconds per face at each batch size and\n"
    "thread count, median of repeated runs, and GFLOP/s (2 x 270.85 M multiply-adds\n"
    "per face for the ResNet-29).\n"
    "\n"
    "  --threads-list L  thread counts, comma-separated (default 1,2)\n"
    "  --batches L       batch sizes, comma-separated (default 1,16)\n"
    "  --seconds S       minimum time per configuration (default 2)\n"
    "  --model PATH      the embedding model (default: dlib_resnet29.safetensors)\n"
    "  --json            one JSON object per configuration instead of a table\n";

#define MACS_PER_FACE 270886912.0 /* 270,854,144 conv + 32,768 fc */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
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

static int bench_embed(int argc, char **argv) {
    int threads[8] = {1, 2}, nthreads = 2, batches[8] = {1, 16}, nbatches = 2, json = 0;
    double seconds = 2.0;
    const char *model_path = NULL;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = 1;
            continue;
        }
        if (!v) {
            fprintf(stderr, "facenet bench: %s needs a value (or is unknown)\n%s", a, USAGE);
            return CLI_USAGE;
        }
        i++;
        if (strcmp(a, "--threads-list") == 0) {
            if ((nthreads = parse_list(a, v, threads, 8, 256)) <= 0) return CLI_USAGE;
        } else if (strcmp(a, "--batches") == 0) {
            if ((nbatches = parse_list(a, v, batches, 8, 256)) <= 0) return CLI_USAGE;
        } else if (strcmp(a, "--seconds") == 0) {
            int s;
            if (cli_parse_int(a, v, 0, 3600, &s)) return CLI_USAGE;
            seconds = s;
        } else if (strcmp(a, "--model") == 0) {
            model_path = v;
        } else {
            fprintf(stderr, "facenet bench: unknown option %s\n%s", a, USAGE);
            return CLI_USAGE;
        }
    }
    facenet_ctx *ctx0 = cli_ctx(1);
    facenet_model *model = ctx0 ? cli_load_model(ctx0, model_path, CLI_EMBEDDING_MODEL) : NULL;
    if (!model) {
        facenet_ctx_free(ctx0);
        return CLI_FAIL;
    }
    int maxb = 1;
    for (int i = 0; i < nbatches; i++) maxb = batches[i] > maxb ? batches[i] : maxb;
    facenet_image *chips = calloc((size_t)maxb, sizeof *chips);
    float *out = malloc(sizeof(float) * FACENET_EMBEDDING_DIM * (size_t)maxb);
    int status = chips && out ? CLI_OK : CLI_FAIL;
    for (int i = 0; status == CLI_OK && i < maxb; i++) {
        if (facenet_image_alloc(ctx0, 150, 150, 3, &chips[i]) != FACENET_OK) status = CLI_FAIL;
        else synth_chip(&chips[i]);
    }
    if (!json && status == CLI_OK)
        printf("embedding network %s, %s\n%8s %6s %12s %12s %10s\n", facenet_model_architecture(model),
               facenet_model_meta(model, "model_id") ? facenet_model_meta(model, "model_id") : "",
               "threads", "batch", "ms/face", "faces/s", "GFLOP/s");
    for (int ti = 0; status == CLI_OK && ti < nthreads; ti++) {
        facenet_ctx *ctx = cli_ctx(threads[ti]);
        facenet_session *s = NULL;
        if (!ctx || facenet_session_create(ctx, model, &s) != FACENET_OK) {
            status = CLI_FAIL;
            facenet_ctx_free(ctx);
            break;
        }
        for (int bi = 0; status == CLI_OK && bi < nbatches; bi++) {
            int b = batches[bi];
            double times[1000];
            int n = 0;
            if (facenet_embed_chips(s, chips, b, out, 0) != FACENET_OK) { /* warm-up */
                cli_error("bench", ctx, FACENET_ERR_INTERNAL);
                status = CLI_FAIL;
                break;
            }
            double start = now_s();
            while (n < 1000 && (n < 3 || now_s() - start < seconds)) {
                double t0 = now_s();
                facenet_embed_chips(s, chips, b, out, 0);
                times[n++] = (now_s() - t0) / b;
            }
            qsort(times, (size_t)n, sizeof times[0], cmp_double);
            double med = times[n / 2];
            double gflops = 2.0 * MACS_PER_FACE / med * 1e-9;
            if (json)
                printf("{\"bench\": \"embed\", \"threads\": %d, \"batch\": %d, \"ms_per_face\": %.3f, "
                       "\"runs\": %d, \"gflops\": %.1f}\n",
                       facenet_ctx_threads(ctx), b, med * 1e3, n, gflops);
            else
                printf("%8d %6d %12.3f %12.1f %10.1f\n", facenet_ctx_threads(ctx), b, med * 1e3, 1.0 / med, gflops);
            fflush(stdout);
        }
        facenet_session_free(s);
        facenet_ctx_free(ctx);
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
    fprintf(stderr, "facenet bench: unknown benchmark '%s'\n%s", argv[1], USAGE);
    return CLI_USAGE;
}

const cli_command cli_cmd_bench = {"bench", "measure speed (bench embed)", USAGE, 0, NULL, run};
