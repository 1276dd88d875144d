/*
 * exif.c - the EXIF orientation tag of a JPEG, and applying it to pixels.
 *
 * Cameras store pixels as the sensor saw them and record in EXIF how to turn
 * them for display; a face detector wants them turned. Only one tag is
 * needed (0x0112 Orientation in IFD0), so this is a minimal walk rather than
 * an EXIF library: JPEG markers up to the first APP1 "Exif\0\0" segment,
 * its TIFF header (II or MM byte order), and the entries of IFD0.
 * The input is untrusted: every offset is checked against the segment
 * before it is read, the loops are bounded, and anything unexpected means
 * "no orientation" (1) rather than an error, since the image itself may
 * still be fine.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"

/* A JPEG header has a dozen segments; this only bounds hostile input. */
#define FN_EXIF_MAX_MARKERS 1024

static unsigned rd16(const uint8_t *p, int le) {
    return le ? (unsigned)p[0] | (unsigned)p[1] << 8 : (unsigned)p[0] << 8 | p[1];
}

static uint32_t rd32(const uint8_t *p, int le) {
    return le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
              : (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* The orientation in a TIFF structure of n bytes (offsets are relative to
 * its start), or 1. */
static int tiff_orientation(const uint8_t *t, size_t n) {
    if (n < 8) return 1;
    int le;
    if (t[0] == 'I' && t[1] == 'I')
        le = 1;
    else if (t[0] == 'M' && t[1] == 'M')
        le = 0;
    else
        return 1;
    if (rd16(t + 2, le) != 42) return 1;
    uint32_t ifd = rd32(t + 4, le);
    if (ifd < 8 || ifd > n - 2) return 1;
    unsigned count = rd16(t + ifd, le);
    size_t p = (size_t)ifd + 2;
    for (unsigned k = 0; k < count; k++, p += 12) { /* count <= 65535 and p stays inside t */
        if (n - p < 12) return 1;
        if (rd16(t + p, le) != 0x0112) continue;
        unsigned type = rd16(t + p + 2, le);
        uint32_t values = rd32(t + p + 4, le);
        if (type != 3 || values != 1) return 1; /* must be one SHORT, stored in the entry itself */
        unsigned v = rd16(t + p + 8, le);
        return v >= 1 && v <= 8 ? (int)v : 1;
    }
    return 1;
}

int fn_jpeg_exif_orientation(const uint8_t *data, size_t size) {
    if (!data || size < 4 || data[0] != 0xFF || data[1] != 0xD8) return 1;
    size_t pos = 2;
    for (int k = 0; k < FN_EXIF_MAX_MARKERS; k++) {
        if (pos >= size || data[pos] != 0xFF) return 1;
        while (pos < size && data[pos] == 0xFF) pos++; /* fill bytes */
        if (pos >= size) return 1;
        uint8_t marker = data[pos++];
        if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) continue; /* no length */
        if (marker == 0xDA || marker == 0xD9 || marker == 0x00 || marker == 0xD8)
            return 1; /* EXIF comes before the scan, and anything else is not a header */
        if (size - pos < 2) return 1;
        size_t len = (size_t)data[pos] << 8 | data[pos + 1];
        if (len < 2 || len > size - pos) return 1;
        if (marker == 0xE1 && len >= 2 + 6 && memcmp(data + pos + 2, "Exif\0\0", 6) == 0)
            return tiff_orientation(data + pos + 8, len - 8);
        pos += len;
    }
    return 1;
}

facenet_status fn_image_orient(facenet_image *img, int orientation, fn_error *e) {
    if (!img || !img->data || img->width <= 0 || img->height <= 0 || img->channels <= 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no image to orient");
    if (orientation < 1 || orientation > 8)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "EXIF orientation %d is not in 1..8", orientation);
    if (orientation == 1) return FACENET_OK;

    const ptrdiff_t w = img->width, h = img->height;
    const int c = img->channels;
    size_t n;
    if (!fn_mul_size((size_t)w * (size_t)h, (size_t)c, &n))
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "the image does not fit in memory");
    uint8_t *dst = malloc(n);
    if (!dst) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory orienting a %dx%d image", img->width,
                             img->height);

    /* Output pixel (x, y) comes from source pixel base + x*dx + y*dy. For
     * 5..8 the sides swap. E.g. 6 (rotate 90 degrees clockwise): the output's
     * top row is the source's left column read from the bottom up. */
    ptrdiff_t base, dx, dy;
    switch (orientation) {
    case 2: base = w - 1, dx = -1, dy = w; break;                   /* mirror horizontally */
    case 3: base = (h - 1) * w + w - 1, dx = -1, dy = -w; break;   /* rotate 180 */
    case 4: base = (h - 1) * w, dx = 1, dy = -w; break;             /* mirror vertically */
    case 5: base = 0, dx = w, dy = 1; break;                        /* transpose */
    case 6: base = (h - 1) * w, dx = -w, dy = 1; break;             /* rotate 90 clockwise */
    case 7: base = (h - 1) * w + w - 1, dx = -w, dy = -1; break;    /* transverse */
    default: base = w - 1, dx = w, dy = -1; break;                  /* 8: rotate 90 counter-clockwise */
    }
    const ptrdiff_t ow = orientation >= 5 ? h : w, oh = orientation >= 5 ? w : h;
    const uint8_t *src = img->data;
    uint8_t *o = dst;
    for (ptrdiff_t y = 0; y < oh; y++) {
        ptrdiff_t i = base + y * dy; /* an index, not a pointer: it may step past the end once */
        for (ptrdiff_t x = 0; x < ow; x++, i += dx)
            for (int ch = 0; ch < c; ch++) *o++ = src[i * c + ch];
    }
    free(img->data);
    img->data = dst;
    img->width = (int)ow;
    img->height = (int)oh;
    return FACENET_OK;
}
