/*
 * rng.c - the seeded generator of training runs: xoshiro256** seeded by
 * splitmix64 (so that any 64-bit seed, 0 included, gives a good state).
 * Normals come from the Box-Muller transform, one per call (the second
 * value is dropped so that the state is the generator's words only).
 */
#include <math.h>

#include "train/train.h"

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void fn_rng_seed(fn_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t fn_rng_next(fn_rng *r) {
    uint64_t *s = r->s;
    const uint64_t out = rotl(s[1] * 5, 7) * 9;
    const uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double fn_rng_uniform(fn_rng *r) { return (double)(fn_rng_next(r) >> 11) * 0x1.0p-53; }

int fn_rng_below(fn_rng *r, int n) {
    if (n <= 1) return 0;
    /* Lemire's multiply-shift with rejection: exactly uniform. */
    const uint32_t bound = (uint32_t)n;
    const uint32_t threshold = (uint32_t)(0u - bound) % bound; /* 2^32 mod n */
    for (;;) {
        const uint64_t m = (fn_rng_next(r) >> 32) * (uint64_t)bound;
        if ((uint32_t)m >= threshold) return (int)(m >> 32);
    }
}

float fn_rng_normal(fn_rng *r) {
    double u1 = fn_rng_uniform(r), u2 = fn_rng_uniform(r);
    if (u1 < 1e-300) u1 = 1e-300;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}
