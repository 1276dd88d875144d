/*
 * bench.c - timing the training step (facenet_train_bench, facenet.h): the
 * same work as a trainer's step on random data, so that the engine's
 * training path can be measured against another framework on the same
 * network (`facenet bench train` runs tools/bench/torch_train_step.py, the
 * same step in PyTorch, in the same run).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/pool.h"
#include "train/train.h"

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAX_STEPS 1000

static int bench(facenet_ctx *ctx, const char *arch, int batch, double seconds, facenet_train_bench_result *r,
                 fn_error *e) {
    fn_tnet *net = fn_tnet_create(arch, 1, e);
    if (!net) return -1;
    const int s = fn_tnet_input_size(net), dim = fn_tnet_dim(net);
    fn_pool *pool = ctx->pool;
    fn_arena arena = {0};
    fn_exec ex;
    fn_exec_init(&ex, fn_backend_default(), pool, &arena);
    const fn_optim_params op = {FN_OPTIM_SGD, 0.9f, 0.9f, 0.999f, 1e-8f, 0.0f, 0.0f, 0.0f};
    fn_optim *opt = fn_optim_create(&op, net, e);
    float *x = malloc(sizeof(float) * (size_t)batch * s * s * 3), *emb = malloc(sizeof(float) * batch * dim),
          *d = malloc(sizeof(float) * batch * dim);
    int *labels = malloc(sizeof(int) * batch);
    double *ms = malloc(sizeof(double) * MAX_STEPS * 4);
    int rc = -1;
    if (!opt || !x || !emb || !d || !labels || !ms) {
        if (opt) fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    fn_rng rng;
    fn_rng_seed(&rng, 2);
    for (size_t i = 0; i < (size_t)batch * s * s * 3; i++) x[i] = 0.25f * fn_rng_normal(&rng);
    for (int i = 0; i < batch; i++) labels[i] = i / 3;
    const fn_triplet_params tp = {0.2f, FN_SELECT_HARDEST, FN_TRIPLET_HINGE, 0};
    double t_end = 0.0;
    int n = 0;
    for (int step = 0; n < MAX_STEPS; step++) {
        fn_triplet_stats st;
        double t0 = now_ms();
        if (fn_tnet_forward(net, &ex, x, batch, emb, 1, e)) goto done;
        double t1 = now_ms();
        fn_triplet_loss(emb, labels, batch, dim, &tp, &rng, d, &st);
        if (fn_tnet_backward(net, &ex, d, e)) goto done;
        double t2 = now_ms();
        fn_optim_step(opt, 1e-3f);
        double t3 = now_ms();
        fn_arena_reset(&arena);
        if (step < 2) continue; /* warm-up: primitives are made, buffers grown */
        if (n == 0) t_end = t0 + seconds * 1e3;
        ms[4 * n] = t3 - t0, ms[4 * n + 1] = t1 - t0, ms[4 * n + 2] = t2 - t1, ms[4 * n + 3] = t3 - t2;
        n++;
        if (n >= 3 && t3 >= t_end) break;
    }
    /* The median step, with its parts. */
    double *tot = malloc(sizeof(double) * n);
    if (!tot) goto done;
    for (int i = 0; i < n; i++) tot[i] = ms[4 * i];
    qsort(tot, n, sizeof(double), cmp_double);
    r->ms_median = tot[n / 2];
    r->ms_min = tot[0];
    r->steps = n;
    for (int i = 0; i < n; i++)
        if (ms[4 * i] == r->ms_median) {
            r->ms_forward = ms[4 * i + 1], r->ms_backward = ms[4 * i + 2], r->ms_update = ms[4 * i + 3];
            break;
        }
    free(tot);
    rc = 0;
done:
    free(x), free(emb), free(d), free(labels), free(ms);
    fn_optim_free(opt);
    fn_exec_release(&ex);
    fn_arena_free(&arena);
    fn_tnet_free(net);
    return rc;
}

facenet_status facenet_train_bench(facenet_ctx *ctx, const char *arch, int batch, double seconds,
                                   facenet_train_bench_result *out) {
    fn_error e;
    fn_error_clear(&e);
    if (!ctx || !out || batch < 2 || batch > 4096 || !(seconds >= 0.0 && seconds <= 3600.0)) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT,
                "facenet_train_bench: a context, an output, a batch of 2 to 4096 and 0 to 3600 seconds");
        return ctx ? fn_ctx_report(ctx, &e) : e.status;
    }
    memset(out, 0, sizeof *out);
    bench(ctx, arch ? arch : "resnet29", batch, seconds, out, &e);
    return fn_ctx_report(ctx, &e);
}
