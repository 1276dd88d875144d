/*
 * bytes.h - little-endian loads and IEEE half-precision decoding, for model
 * files whose bytes may sit at any alignment.
 */
#ifndef FN_BYTES_H
#define FN_BYTES_H

#include <stdint.h>
#include <string.h>

static inline uint16_t fn_le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static inline uint32_t fn_le32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t fn_le64(const uint8_t *p) { return (uint64_t)fn_le32(p) | (uint64_t)fn_le32(p + 4) << 32; }

static inline float fn_f32_bits(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* IEEE binary16 to binary32, exact: subnormals, infinities and NaN payloads
 * included (TF.js's table decoder gives the same bits). */
static inline float fn_half_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = h >> 10 & 0x1fu, mant = h & 0x3ffu;
    if (exp == 0x1f) return fn_f32_bits(sign | 0x7f800000u | mant << 13);
    if (exp == 0) {
        if (mant == 0) return fn_f32_bits(sign);
        /* Subnormal: shift the mantissa up to an implicit 1. */
        int e = 1;
        while (!(mant & 0x400u)) {
            mant <<= 1;
            e--;
        }
        return fn_f32_bits(sign | (uint32_t)(e + 112) << 23 | (mant & 0x3ffu) << 13);
    }
    return fn_f32_bits(sign | (exp + 112) << 23 | mant << 13);
}

#endif
