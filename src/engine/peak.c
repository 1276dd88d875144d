/*
 * peak.c - this machine's peak float32 multiply-add rate, measured, for
 * judging how close a network's speed is to what the hardware can do.
 *
 * Each thread runs independent chains of vector FMAs on registers only
 * (acc = acc * a + b, a and b read from volatile memory so the compiler
 * cannot fold anything): with more chains than FMA latency x FMA units,
 * the core issues an FMA on every port every cycle. The widest instruction
 * set the CPU has is picked at run time (__builtin_cpu_supports), the code
 * for it compiled with a target attribute, so the library does not need
 * -march flags for this. Threads start together (a gate opened once all
 * exist); the rate is the sum of each thread's own rate.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include <immintrin.h>

#include "facenet.h"

#define REPS 4096 /* between clock reads: ~10 us */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static volatile float g_ab[2] = {0.999999f, 1e-6f};
static volatile float g_sink;

/* 16 chains: two FMA units x four cycles of latency, twice over. */
#define CHAINS 16
#define FMA16(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11) F(12) F(13) F(14) F(15)

__attribute__((target("avx512f"))) static double run_avx512(double seconds, uint64_t *flops) {
    const __m512 a = _mm512_set1_ps(g_ab[0]), b = _mm512_set1_ps(g_ab[1]);
#define DECL(i) __m512 acc##i = _mm512_set1_ps((float)(i));
    FMA16(DECL)
#undef DECL
    uint64_t iters = 0;
    double t0 = now_s(), t;
    do {
        for (int r = 0; r < REPS; r++) {
#define STEP(i) acc##i = _mm512_fmadd_ps(acc##i, a, b);
            FMA16(STEP)
#undef STEP
        }
        iters += REPS;
    } while ((t = now_s() - t0) < seconds);
    __m512 s = acc0;
#define SUM(i) s = _mm512_add_ps(s, acc##i);
    FMA16(SUM)
#undef SUM
    g_sink = _mm512_reduce_add_ps(s);
    *flops = iters * CHAINS * 16 * 2;
    return t;
}

__attribute__((target("avx2,fma"))) static double run_avx2(double seconds, uint64_t *flops) {
    const __m256 a = _mm256_set1_ps(g_ab[0]), b = _mm256_set1_ps(g_ab[1]);
    /* 12 chains: there are only 16 ymm registers. */
#define FMA12(F) F(0) F(1) F(2) F(3) F(4) F(5) F(6) F(7) F(8) F(9) F(10) F(11)
#define DECL(i) __m256 acc##i = _mm256_set1_ps((float)(i));
    FMA12(DECL)
#undef DECL
    uint64_t iters = 0;
    double t0 = now_s(), t;
    do {
        for (int r = 0; r < REPS; r++) {
#define STEP(i) acc##i = _mm256_fmadd_ps(acc##i, a, b);
            FMA12(STEP)
#undef STEP
        }
        iters += REPS;
    } while ((t = now_s() - t0) < seconds);
    __m256 s = acc0;
#define SUM(i) s = _mm256_add_ps(s, acc##i);
    FMA12(SUM)
#undef SUM
    float v[8];
    _mm256_storeu_ps(v, s);
    g_sink = v[0] + v[7];
    *flops = iters * 12 * 8 * 2;
    return t;
}

static double run_scalar(double seconds, uint64_t *flops) {
    const float a = g_ab[0], b = g_ab[1];
    float acc[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    uint64_t iters = 0;
    double t0 = now_s(), t;
    do {
        for (int r = 0; r < REPS; r++)
            for (int i = 0; i < 8; i++) acc[i] = acc[i] * a + b;
        iters += REPS;
    } while ((t = now_s() - t0) < seconds);
    g_sink = acc[0] + acc[7];
    *flops = iters * 8 * 2;
    return t;
}

typedef struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;
} gate;

typedef struct peak_job {
    gate *start;
    double seconds, gflops;
    int isa; /* 2 avx512, 1 avx2, 0 scalar */
} peak_job;

static void *peak_thread(void *vp) {
    peak_job *j = vp;
    uint64_t flops = 0;
    double t;
    pthread_mutex_lock(&j->start->mu);
    while (!j->start->open) pthread_cond_wait(&j->start->cv, &j->start->mu);
    pthread_mutex_unlock(&j->start->mu);
    if (j->isa == 2)
        t = run_avx512(j->seconds, &flops);
    else if (j->isa == 1)
        t = run_avx2(j->seconds, &flops);
    else
        t = run_scalar(j->seconds, &flops);
    j->gflops = t > 0 ? (double)flops / t * 1e-9 : 0.0;
    return NULL;
}

#define MAX_PEAK_THREADS 256

double facenet_fma_peak_gflops(int n_threads, int ms, const char **isa) {
    static const char *names[] = {"scalar", "avx2+fma", "avx512f"};
    __builtin_cpu_init();
    int level = __builtin_cpu_supports("avx512f")                                 ? 2
                : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? 1
                                                                                  : 0;
    if (isa) *isa = names[level];
    if (n_threads < 1) n_threads = 1;
    if (n_threads > MAX_PEAK_THREADS) n_threads = MAX_PEAK_THREADS;
    if (ms < 1) ms = 1;
    gate start = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    peak_job jobs[MAX_PEAK_THREADS];
    pthread_t tid[MAX_PEAK_THREADS];
    for (int i = 0; i < n_threads; i++) jobs[i] = (peak_job){&start, ms * 1e-3, 0.0, level};
    /* The caller is thread 0. If a thread cannot be started, the others
     * still run: the figure is then for fewer threads. */
    int started = 1;
    while (started < n_threads && pthread_create(&tid[started], NULL, peak_thread, &jobs[started]) == 0)
        started++;
    pthread_mutex_lock(&start.mu);
    start.open = 1;
    pthread_cond_broadcast(&start.cv);
    pthread_mutex_unlock(&start.mu);
    peak_thread(&jobs[0]);
    double total = jobs[0].gflops;
    for (int i = 1; i < started; i++) {
        pthread_join(tid[i], NULL);
        total += jobs[i].gflops;
    }
    return total;
}
