/*
 * batchnorm.c - batch normalization per channel over N, H and W: the
 * training form (batch statistics, running averages), inference (running
 * averages) and the backward pass.
 *
 * The rows of an NHWC tensor are split into a fixed number of chunks, each
 * summing its channels in double into its own slot, and the slots are then
 * added in order: parallel over the pool, and the same result whatever the
 * number of threads.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backward.h"
#include "engine/engine.h"

#define CHUNKS 32

typedef struct bn_job {
    const fn_tensor *x, *dy;
    fn_tensor *y;
    size_t rows, per_chunk;
    int c;
    double *part; /* [CHUNKS][2][c] */
    const float *mean, *invstd, *gamma, *beta;
    const float *k1, *k2, *k3; /* backward: dx = k1 * dy - k2 - k3 * xhat */
    const float *mask;         /* backward through a ReLU: its output (dy counts where > 0) */
    int relu;                  /* forward: a ReLU after the normalization */
} bn_job;

/* Row sums go into float for ROWS rows, then into double: float adds
 * vectorize twice as wide, and 16 terms lose nothing that matters. */
#define ROWS 16
#define MAXC 1024

static void chunk_range(const bn_job *j, int chunk, size_t *r0, size_t *r1) {
    *r0 = (size_t)chunk * j->per_chunk;
    *r1 = *r0 + j->per_chunk < j->rows ? *r0 + j->per_chunk : j->rows;
    if (*r0 > j->rows) *r0 = j->rows;
}

/* One row's terms, added to f1 and f2: (x, x^2) for the statistics; for
 * the gradient (dy, dy * xhat), dy masked by the ReLU. */
static void row_terms(const bn_job *j, size_t q, float *f1, float *f2) {
    const int c = j->c;
    const float *p = j->x->data + q * (size_t)c;
    if (!j->dy) {
        for (int i = 0; i < c; i++) f1[i] += p[i], f2[i] += p[i] * p[i];
        return;
    }
    const float *g = j->dy->data + q * (size_t)c;
    const float *m = j->mask ? j->mask + q * (size_t)c : NULL;
    for (int i = 0; i < c; i++) {
        const float gv = !m || m[i] > 0.0f ? g[i] : 0.0f;
        f1[i] += gv;
        f2[i] += gv * ((p[i] - j->mean[i]) * j->invstd[i]);
    }
}

/* part[chunk] = the sums of row_terms per channel: the statistics when
 * j->dy is NULL, else the gradient's. */
static void sum_chunks(void *vp, int begin, int end) {
    const bn_job *j = vp;
    const int c = j->c;
    float f1[MAXC], f2[MAXC];
    for (int k = begin; k < end; k++) {
        double *s1 = j->part + (size_t)k * 2 * c, *s2 = s1 + c;
        memset(s1, 0, sizeof(double) * 2 * (size_t)c);
        size_t r0, r1;
        chunk_range(j, k, &r0, &r1);
        for (size_t r = r0; r < r1; r += ROWS) {
            const size_t re = r + ROWS < r1 ? r + ROWS : r1;
            memset(f1, 0, sizeof(float) * (size_t)c);
            memset(f2, 0, sizeof(float) * (size_t)c);
            for (size_t q = r; q < re; q++) row_terms(j, q, f1, f2);
            for (int i = 0; i < c; i++) s1[i] += f1[i], s2[i] += f2[i];
        }
    }
}

/* y = (x - mean) * k1 + k2 with k1 = invstd * gamma, k2 = beta: the mean
 * comes off first, since x * k1 + (beta - mean * k1) would lose the low
 * bits of a channel whose mean is large next to its spread. */
static void apply_chunks(void *vp, int begin, int end) {
    const bn_job *j = vp;
    const int c = j->c;
    for (int k = begin; k < end; k++) {
        size_t r0, r1;
        chunk_range(j, k, &r0, &r1);
        for (size_t r = r0; r < r1; r++) {
            const float *p = j->x->data + r * (size_t)c;
            float *o = j->y->data + r * (size_t)c;
            for (int i = 0; i < c; i++) o[i] = (p[i] - j->mean[i]) * j->k1[i] + j->k2[i];
            if (j->relu)
                for (int i = 0; i < c; i++) o[i] = o[i] > 0.0f ? o[i] : 0.0f;
        }
    }
}

static void dx_chunks(void *vp, int begin, int end) {
    const bn_job *j = vp;
    const int c = j->c;
    for (int k = begin; k < end; k++) {
        size_t r0, r1;
        chunk_range(j, k, &r0, &r1);
        for (size_t r = r0; r < r1; r++) {
            const float *p = j->x->data + r * (size_t)c, *g = j->dy->data + r * (size_t)c;
            const float *m = j->mask ? j->mask + r * (size_t)c : NULL;
            float *o = j->y->data + r * (size_t)c;
            for (int i = 0; i < c; i++) {
                const float xhat = (p[i] - j->mean[i]) * j->invstd[i], gv = !m || m[i] > 0.0f ? g[i] : 0.0f;
                o[i] = j->k1[i] * gv - j->k2[i] - j->k3[i] * xhat;
            }
        }
    }
}

/* Set up a job over x, with the chunks' slots and the totals (part, then
 * [2][c] more) and nk per-channel floats of factors in one block (*mem,
 * freed by the caller). -1 if out of memory. */
static int job_init(bn_job *j, const fn_tensor *x, int nk, double **mem, float **k) {
    memset(j, 0, sizeof *j);
    j->x = x;
    j->c = x->c;
    j->rows = fn_tensor_count(x) / (size_t)x->c;
    j->per_chunk = (j->rows + CHUNKS - 1) / CHUNKS;
    if (j->per_chunk == 0) j->per_chunk = 1;
    const size_t doubles = (size_t)j->c * 2 * (CHUNKS + 1);
    *mem = malloc(sizeof(double) * doubles + sizeof(float) * (size_t)j->c * nk);
    if (!*mem) return -1;
    j->part = *mem;
    *k = (float *)(void *)(*mem + doubles);
    return 0;
}

/* Sum the chunks' slots into out[2][c]. */
static void reduce(const bn_job *j, double *out) {
    const int c = j->c;
    memset(out, 0, sizeof(double) * 2 * (size_t)c);
    for (int k = 0; k < CHUNKS; k++)
        for (int i = 0; i < 2 * c; i++) out[i] += j->part[(size_t)k * 2 * c + i];
}

int fn_batchnorm_train(const fn_exec *ex, const fn_tensor *x, const float *gamma, const float *beta, float eps,
                       float momentum, float *running_mean, float *running_var, float *save_mean,
                       float *save_invstd, fn_act act, fn_tensor *y) {
    bn_job j;
    double *mem;
    float *k;
    if (x->c > MAXC || (act != FN_ACT_NONE && act != FN_ACT_RELU) || job_init(&j, x, 2, &mem, &k)) return -1;
    j.relu = act == FN_ACT_RELU;
    const int c = x->c;
    fn_parallel_for(ex, CHUNKS, 1, sum_chunks, &j);
    double *tot = mem + (size_t)CHUNKS * 2 * c;
    reduce(&j, tot);
    const double m = (double)j.rows;
    for (int i = 0; i < c; i++) {
        double mean = tot[i] / m;
        double var = tot[c + i] / m - mean * mean;
        if (var < 0.0) var = 0.0;
        double invstd = 1.0 / sqrt(var + eps);
        save_mean[i] = (float)mean;
        save_invstd[i] = (float)invstd;
        if (running_mean) running_mean[i] = (1.0f - momentum) * running_mean[i] + momentum * (float)mean;
        if (running_var) {
            double unbiased = m > 1.0 ? var * m / (m - 1.0) : var;
            running_var[i] = (1.0f - momentum) * running_var[i] + momentum * (float)unbiased;
        }
        k[i] = (float)(invstd * gamma[i]);
        k[c + i] = beta[i];
    }
    j.mean = save_mean;
    j.y = y;
    j.k1 = k;
    j.k2 = k + c;
    fn_parallel_for(ex, CHUNKS, 1, apply_chunks, &j);
    free(mem);
    return 0;
}

void fn_batchnorm_infer(const fn_exec *ex, const fn_tensor *x, const float *gamma, const float *beta,
                        const float *mean, const float *var, float eps, fn_tensor *y) {
    bn_job j;
    double *mem;
    float *k;
    const int c = x->c;
    if (job_init(&j, x, 2, &mem, &k)) { /* out of memory: the plain loop */
        const size_t rows = fn_tensor_count(x) / (size_t)c;
        for (size_t r = 0; r < rows; r++)
            for (int i = 0; i < c; i++)
                y->data[r * c + i] = (x->data[r * c + i] - mean[i]) * (gamma[i] / sqrtf(var[i] + eps)) + beta[i];
        return;
    }
    for (int i = 0; i < c; i++) {
        k[i] = (float)(gamma[i] / sqrt((double)var[i] + eps));
        k[c + i] = beta[i];
    }
    j.mean = mean;
    j.y = y;
    j.k1 = k;
    j.k2 = k + c;
    fn_parallel_for(ex, CHUNKS, 1, apply_chunks, &j);
    free(mem);
}

int fn_batchnorm_backward(const fn_exec *ex, const fn_tensor *x, const fn_tensor *relu_y, const fn_tensor *dy,
                          const float *gamma, const float *save_mean, const float *save_invstd, fn_tensor *dx,
                          float *dgamma, float *dbeta) {
    bn_job j;
    double *mem;
    float *k;
    if (x->c > MAXC || job_init(&j, x, 3, &mem, &k)) return -1;
    j.mask = relu_y ? relu_y->data : NULL;
    const int c = x->c;
    j.dy = dy;
    j.mean = save_mean;
    j.invstd = save_invstd;
    fn_parallel_for(ex, CHUNKS, 1, sum_chunks, &j);
    double *tot = mem + (size_t)CHUNKS * 2 * c;
    reduce(&j, tot);
    const double m = (double)j.rows;
    /* dx = gamma * invstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
    for (int i = 0; i < c; i++) {
        double gi = (double)gamma[i] * save_invstd[i];
        k[i] = (float)gi;
        k[c + i] = (float)(gi * tot[i] / m);
        k[2 * c + i] = (float)(gi * tot[c + i] / m);
        if (dbeta) dbeta[i] += (float)tot[i];
        if (dgamma) dgamma[i] += (float)tot[c + i];
    }
    j.y = dx;
    j.k1 = k;
    j.k2 = k + c;
    j.k3 = k + 2 * c;
    fn_parallel_for(ex, CHUNKS, 1, dx_chunks, &j);
    free(mem);
    return 0;
}
