/*
 * sampler.c - the P x K batch sampler and augmentation (dataset.h).
 *
 * Each batch draws from its own generator, seeded from the run's seed and
 * the step number: batch k does not depend on batches 0..k-1, so resuming
 * at step k needs nothing but k, and the loader thread can run ahead
 * without its timing changing any draw.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"

void fn_step_rng(fn_rng *r, uint64_t seed, int64_t step, uint64_t stream) {
    /* Distinct (seed, step, stream) give distinct splitmix64 seeds: the
     * step and stream are mixed in with odd multipliers. */
    fn_rng_seed(r, seed ^ ((uint64_t)step * 0xd1342543de82ef95ull) ^ (stream * 0x9e3779b97f4a7c15ull) ^
                       ((uint64_t)step >> 32));
}

/* Partial Fisher-Yates: the first k entries of v become a uniform draw
 * without replacement. */
static void draw(int *v, int n, int k, fn_rng *r) {
    for (int i = 0; i < k && i < n - 1; i++) {
        const int j = i + fn_rng_below(r, n - i);
        const int t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
}

int fn_sample_batch(const fn_dataset *d, int P, int K, uint64_t seed, int64_t step, int *index, int *labels) {
    fn_rng r;
    fn_step_rng(&r, seed, step, 1);
    const int rows = P * K;
    int *ids = malloc(sizeof(int) * (size_t)d->n_ids);
    int *imgs = NULL, img_cap = 0;
    if (!ids) return 0;
    for (int i = 0; i < d->n_ids; i++) ids[i] = i;
    int n = 0;
    /* Identities are drawn one at a time (a lazy Fisher-Yates), so a batch
     * short of rows keeps drawing until it is full or they run out. */
    for (int t = 0; t < d->n_ids && n < rows; t++) {
        draw(ids + t, d->n_ids - t, 1, &r);
        const fn_ds_identity *id = &d->ids[ids[t]];
        int m = id->count < K ? id->count : K;
        if (m > rows - n) m = rows - n;
        /* A last row with no room for a pair still serves as a negative. */
        if (id->count > img_cap) {
            int *ni = realloc(imgs, sizeof(int) * (size_t)id->count);
            if (!ni) break;
            imgs = ni;
            img_cap = id->count;
        }
        for (int i = 0; i < id->count; i++) imgs[i] = id->first + i;
        draw(imgs, id->count, m, &r);
        for (int i = 0; i < m; i++) {
            index[n] = imgs[i];
            labels[n] = ids[t];
            n++;
        }
    }
    free(ids);
    free(imgs);
    return n;
}

fn_augment fn_augment_default(void) {
    fn_augment a = {0.1f, 1, 0.1f, 0.2f, 0};
    return a;
}

static float uniform(fn_rng *r, float lo, float hi) { return lo + (hi - lo) * (float)fn_rng_uniform(r); }

void fn_augment_chip(const uint8_t *src, int size, const fn_augment *a, fn_rng *r, const fn_norm *norm,
                     float *dst) {
    /* The draws happen in a fixed order whatever the settings, so turning
     * one augmentation off does not change what the others draw. */
    float side = (float)size, ox = 0, oy = 0, bright = 0, contrast = 1;
    int flip = 0;
    if (a) {
        const float s = uniform(r, 1.0f - a->crop, 1.0f);
        const float fx = (float)fn_rng_uniform(r), fy = (float)fn_rng_uniform(r);
        const int f = fn_rng_below(r, 2);
        const float b = uniform(r, -1.0f, 1.0f), c = uniform(r, -1.0f, 1.0f);
        if (a->crop > 0) {
            side = s * (float)size;
            ox = fx * ((float)size - side);
            oy = fy * ((float)size - side);
        }
        flip = a->flip && f;
        bright = a->brightness * b * 255.0f;
        contrast = 1.0f + a->contrast * c;
    }
    const size_t n = (size_t)size * size;
    double mean = 0;
    if (contrast != 1.0f) {
        for (size_t i = 0; i < n * 3; i++) mean += src[i];
        mean /= (double)(n * 3);
    }
    const float scale = side / (float)size;
    const int cropped = side != (float)size;
    for (int y = 0; y < size; y++)
        for (int x = 0; x < size; x++) {
            const int xs = flip ? size - 1 - x : x;
            float px[3];
            if (!cropped) {
                const uint8_t *p = src + ((size_t)y * size + (size_t)xs) * 3;
                px[0] = p[0], px[1] = p[1], px[2] = p[2];
            } else {
                /* Bilinear, pixel centres at +0.5, clamped at the border. */
                float sx = ox + ((float)xs + 0.5f) * scale - 0.5f, sy = oy + ((float)y + 0.5f) * scale - 0.5f;
                sx = sx < 0 ? 0 : sx > size - 1 ? (float)(size - 1) : sx;
                sy = sy < 0 ? 0 : sy > size - 1 ? (float)(size - 1) : sy;
                const int x0 = (int)sx, y0 = (int)sy;
                const int x1 = x0 + 1 < size ? x0 + 1 : x0, y1 = y0 + 1 < size ? y0 + 1 : y0;
                const float wx = sx - (float)x0, wy = sy - (float)y0;
                const uint8_t *p00 = src + ((size_t)y0 * size + x0) * 3, *p01 = src + ((size_t)y0 * size + x1) * 3;
                const uint8_t *p10 = src + ((size_t)y1 * size + x0) * 3, *p11 = src + ((size_t)y1 * size + x1) * 3;
                for (int c = 0; c < 3; c++)
                    px[c] = (1 - wy) * ((1 - wx) * p00[c] + wx * p01[c]) + wy * ((1 - wx) * p10[c] + wx * p11[c]);
            }
            float *o = dst + ((size_t)y * size + x) * 3;
            for (int c = 0; c < 3; c++) {
                float v = px[c];
                if (contrast != 1.0f) v = (float)mean + (v - (float)mean) * contrast;
                v += bright;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                o[c] = (v - norm->mean[c]) / norm->div;
            }
        }
    /* Erasing draws after the others and only when it is on, so that runs
     * without it draw exactly what they drew before it existed. */
    if (!a || !(a->erase > 0) || !(fn_rng_uniform(r) < a->erase)) return;
    const double area = (0.02 + 0.38 * fn_rng_uniform(r)) * (double)n;
    const double aspect = exp(log(0.3) + (log(1 / 0.3) - log(0.3)) * fn_rng_uniform(r));
    int h = (int)lround(sqrt(area * aspect)), w = (int)lround(sqrt(area / aspect));
    h = h < 1 ? 1 : h > size ? size : h;
    w = w < 1 ? 1 : w > size ? size : w;
    const int y0 = fn_rng_below(r, size - h + 1), x0 = fn_rng_below(r, size - w + 1);
    for (int y = y0; y < y0 + h; y++)
        for (int x = x0; x < x0 + w; x++) {
            float *o = dst + ((size_t)y * size + x) * 3;
            for (int c = 0; c < 3; c++) o[c] = (255.0f * (float)fn_rng_uniform(r) - norm->mean[c]) / norm->div;
        }
}

void fn_make_batch(const fn_dataset *d, const fn_chips *c, const fn_loader_params *p, int64_t step, fn_batch *b) {
    b->step = step;
    b->n = fn_sample_batch(d, p->P, p->K, p->seed, step, b->index, b->labels);
    fn_rng r;
    fn_step_rng(&r, p->seed, step, 2);
    const size_t px = (size_t)c->size * c->size * 3;
    for (int i = 0; i < b->n; i++)
        fn_augment_chip(c->pix + (size_t)b->index[i] * px, c->size, &p->augment, &r, &p->norm, b->x + (size_t)i * px);
}
