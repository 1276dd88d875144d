/*
 * pnm.c - binary PGM (P5) and PPM (P6), read and written by hand.
 *
 * The header is "P5" or "P6", then width, height and maxval as decimal
 * numbers separated by whitespace or "#" comments, then exactly one
 * whitespace byte before the samples. Parsing is strict: digits only, no
 * signs, every number checked for overflow, and the declared size checked
 * against the caps before anything is allocated. maxval may be 1..65535;
 * samples are scaled to 0..255 with rounding (two-byte big-endian samples
 * when maxval > 255), and a sample above maxval is clamped to it. Data after
 * the last sample is ignored (a file may hold several images; we read the
 * first). Grey images are replicated to RGB like every decoder's output.
 * The ASCII variants (P1-P3), bitmaps (P4) and PAM (P7) are refused as
 * unsupported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

struct cursor {
    const uint8_t *p;
    size_t n, i;
};

static int is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* Skip whitespace and comments; return how many bytes were skipped, so
 * callers can insist on a separator. */
static size_t skip_separators(struct cursor *c) {
    size_t start = c->i;
    while (c->i < c->n) {
        if (is_space(c->p[c->i])) {
            c->i++;
        } else if (c->p[c->i] == '#') {
            while (c->i < c->n && c->p[c->i] != '\n' && c->p[c->i] != '\r') c->i++;
        } else {
            break;
        }
    }
    return c->i - start;
}

static facenet_status read_number(struct cursor *c, const char *fmt, const char *what, uint64_t *out,
                                  fn_error *e) {
    size_t skipped = skip_separators(c);
    if (c->i >= c->n) return fn_fail(e, FACENET_ERR_FORMAT, "truncated %s header (no %s)", fmt, what);
    if (skipped == 0)
        return fn_fail(e, FACENET_ERR_FORMAT, "corrupt %s header (no space before the %s)", fmt, what);
    if (c->p[c->i] < '0' || c->p[c->i] > '9')
        return fn_fail(e, FACENET_ERR_FORMAT, "corrupt %s header (the %s is not a number)", fmt, what);
    uint64_t v = 0;
    while (c->i < c->n && c->p[c->i] >= '0' && c->p[c->i] <= '9') {
        unsigned digit = (unsigned)(c->p[c->i] - '0');
        if (v > (UINT64_MAX - digit) / 10)
            return fn_fail(e, FACENET_ERR_FORMAT, "corrupt %s header (the %s is out of range)", fmt, what);
        v = v * 10 + digit;
        c->i++;
    }
    /* "12x" is not a number followed by junk we may skip */
    if (c->i < c->n && !is_space(c->p[c->i]) && c->p[c->i] != '#')
        return fn_fail(e, FACENET_ERR_FORMAT, "corrupt %s header (the %s is not a number)", fmt, what);
    *out = v;
    return FACENET_OK;
}

facenet_status fn_pnm_decode(const uint8_t *data, size_t size, facenet_image *out, fn_error *e) {
    memset(out, 0, sizeof *out);
    if (size < 2 || data[0] != 'P')
        return fn_fail(e, FACENET_ERR_FORMAT, "not a PPM/PGM image");
    const char *fmt;
    int channels;
    switch (data[1]) {
    case '5': fmt = "PGM", channels = 1; break;
    case '6': fmt = "PPM", channels = 3; break;
    case '1': case '2': case '3':
        return fn_fail(e, FACENET_ERR_UNSUPPORTED,
                       "plain (ASCII) PBM/PGM/PPM is not supported; use binary P5/P6");
    case '4': return fn_fail(e, FACENET_ERR_UNSUPPORTED, "PBM bitmaps (P4) are not supported");
    case '7': return fn_fail(e, FACENET_ERR_UNSUPPORTED, "PAM images (P7) are not supported");
    default: return fn_fail(e, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");
    }
    struct cursor c = {data, size, 2};
    uint64_t width, height, maxval;
    facenet_status st;
    if ((st = read_number(&c, fmt, "width", &width, e)) != FACENET_OK) return st;
    if ((st = read_number(&c, fmt, "height", &height, e)) != FACENET_OK) return st;
    if ((st = read_number(&c, fmt, "maxval", &maxval, e)) != FACENET_OK) return st;
    if (maxval < 1 || maxval > 65535)
        return fn_fail(e, FACENET_ERR_FORMAT, "corrupt %s header (maxval %llu is not in 1..65535)", fmt,
                       (unsigned long long)maxval);
    /* Exactly one whitespace byte: the next one may already be a sample. */
    if (c.i >= c.n || !is_space(c.p[c.i]))
        return fn_fail(e, FACENET_ERR_FORMAT, "%s %s header (no whitespace after maxval)",
                       c.i >= c.n ? "truncated" : "corrupt", fmt);
    c.i++;
    if ((st = fn_image_check_size(width, height, e)) != FACENET_OK) return st;

    size_t bps = maxval > 255 ? 2 : 1, need;
    if (!fn_mul_size((size_t)width * (size_t)height, (size_t)channels * bps, &need))
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "the %s image does not fit in memory", fmt);
    if (c.n - c.i < need)
        return fn_fail(e, FACENET_ERR_FORMAT, "truncated %s (%zu of %zu bytes of pixel data)", fmt, c.n - c.i,
                       need);
    if ((st = fn_image_alloc((int)width, (int)height, 3, out, e)) != FACENET_OK) return st;

    const uint8_t *src = data + c.i;
    uint8_t *dst = out->data;
    size_t npix = (size_t)width * (size_t)height;
    unsigned mv = (unsigned)maxval;
    if (bps == 1) {
        uint8_t lut[256];
        for (unsigned v = 0; v < 256; v++) lut[v] = (uint8_t)(((v < mv ? v : mv) * 255 + mv / 2) / mv);
        for (size_t i = 0; i < npix; i++) {
            for (int ch = 0; ch < 3; ch++) dst[3 * i + ch] = lut[src[channels == 3 ? 3 * i + ch : i]];
        }
    } else {
        for (size_t i = 0; i < npix; i++) {
            for (int ch = 0; ch < 3; ch++) {
                const uint8_t *s = src + 2 * (channels == 3 ? 3 * i + ch : i);
                unsigned v = (unsigned)s[0] << 8 | s[1];
                if (v > mv) v = mv;
                dst[3 * i + ch] = (uint8_t)((v * 255u + mv / 2) / mv);
            }
        }
    }
    return FACENET_OK;
}

facenet_status fn_pnm_encode(const facenet_image *img, uint8_t **buf, size_t *len, fn_error *e) {
    *buf = NULL;
    *len = 0;
    if (!img || !img->data || (img->channels != 1 && img->channels != 3) || img->width <= 0 ||
        img->height <= 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "cannot write this image as PPM/PGM");
    char header[64];
    int hn = snprintf(header, sizeof header, "P%c\n%d %d\n255\n", img->channels == 1 ? '5' : '6', img->width,
                      img->height);
    size_t n, total;
    if (!fn_mul_size((size_t)img->width * (size_t)img->height, (size_t)img->channels, &n) ||
        !fn_add_size(n, (size_t)hn, &total))
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "the image does not fit in memory");
    uint8_t *b = malloc(total);
    if (!b) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory encoding the image");
    memcpy(b, header, (size_t)hn);
    memcpy(b + hn, img->data, n);
    *buf = b;
    *len = total;
    return FACENET_OK;
}
