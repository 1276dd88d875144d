/*
 * image.c - image allocation, format dispatch and the public facenet_image_*
 * entry points.
 *
 * Formats are recognised by their magic bytes, never by the file name, so a
 * mislabelled photo still loads. Saving is the opposite: the caller names
 * the format by the file's extension (.png, anything else PPM/PGM).
 * Files are read whole into memory (with a size cap) and decoded from there,
 * which keeps one code path for files and buffers and lets the EXIF parser
 * look at the same bytes the JPEG decoder saw.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "image/image.h"
#include "util/file.h"

#define FN_NOT_AN_IMAGE "not a JPEG, PNG or PPM/PGM image"

facenet_status fn_image_check_size(uint64_t width, uint64_t height, fn_error *e) {
    if (width == 0 || height == 0)
        return fn_fail(e, FACENET_ERR_FORMAT, "the image is %llux%llu pixels (zero width or height)",
                       (unsigned long long)width, (unsigned long long)height);
    /* Both sides are below 2^32 in every format we read, so the product
     * cannot overflow 64 bits; larger values fail the side test first. */
    if (width > UINT32_MAX || height > UINT32_MAX || width * height > FACENET_MAX_IMAGE_PIXELS)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%llux%llu pixels is over the %u-pixel limit",
                       (unsigned long long)width, (unsigned long long)height, FACENET_MAX_IMAGE_PIXELS);
    if (width > FACENET_MAX_IMAGE_SIDE || height > FACENET_MAX_IMAGE_SIDE)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%llux%llu pixels: a side is over the %d-pixel limit",
                       (unsigned long long)width, (unsigned long long)height, FACENET_MAX_IMAGE_SIDE);
    return FACENET_OK;
}

facenet_status fn_image_alloc(int width, int height, int channels, facenet_image *out, fn_error *e) {
    if (!out) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no output image given");
    memset(out, 0, sizeof *out);
    if (width < 0 || height < 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "negative image size %dx%d", width, height);
    if (channels != 1 && channels != 3)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "an image has 1 or 3 channels, not %d", channels);
    facenet_status st = fn_image_check_size((uint64_t)width, (uint64_t)height, e);
    if (st == FACENET_ERR_FORMAT)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "cannot allocate a %dx%d image", width, height);
    if (st != FACENET_OK) return st;
    size_t n;
    if (!fn_mul_size((size_t)width, (size_t)height, &n) || !fn_mul_size(n, (size_t)channels, &n))
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%dx%d pixels do not fit in memory", width, height);
    /* calloc: the public contract is a zero-filled image, and the decoders
     * rely on it to never expose uninitialised memory. */
    uint8_t *data = calloc(n, 1);
    if (!data)
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for a %dx%d image (%zu bytes)", width,
                       height, n);
    out->width = width;
    out->height = height;
    out->channels = channels;
    out->data = data;
    return FACENET_OK;
}

static int is_jpeg(const uint8_t *d, size_t n) {
    return n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF;
}

static int is_png(const uint8_t *d, size_t n) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    return n >= 8 && memcmp(d, sig, 8) == 0;
}

facenet_status fn_image_decode(const void *data, size_t size, struct fn_pool *pool, facenet_image *out, fn_error *e) {
    if (!out) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no output image given");
    memset(out, 0, sizeof *out);
    if (!data && size > 0) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no image data given");
    const uint8_t *d = data;
    if (size == 0) return fn_fail(e, FACENET_ERR_FORMAT, "the file is empty, " FN_NOT_AN_IMAGE);
    if (is_jpeg(d, size)) {
        facenet_status st = fn_jpeg_decode(d, size, pool, out, e);
        if (st != FACENET_OK) return st;
        st = fn_image_orient(out, fn_jpeg_exif_orientation(d, size), e);
        if (st != FACENET_OK) {
            free(out->data);
            memset(out, 0, sizeof *out);
        }
        return st;
    }
    if (is_png(d, size)) return fn_png_decode(d, size, out, e);
    if (d[0] == 'P' && size >= 2 && d[1] >= '1' && d[1] <= '7') return fn_pnm_decode(d, size, out, e);
    return fn_fail(e, FACENET_ERR_UNSUPPORTED, FN_NOT_AN_IMAGE);
}


facenet_status fn_image_load(const char *path, struct fn_pool *pool, facenet_image *out, fn_error *e) {
    if (!out) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no output image given");
    memset(out, 0, sizeof *out);
    if (!path) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no file name given");
    uint8_t *buf;
    size_t len;
    facenet_status st = fn_read_file(path, FN_IMAGE_MAX_FILE_BYTES, &buf, &len, e);
    if (st == FACENET_OK) {
        st = fn_image_decode(buf, len, pool, out, e);
        free(buf);
    }
    if (st != FACENET_OK) fn_error_prefix(e, "%s", path);
    return st;
}

static facenet_status check_image(const facenet_image *img, fn_error *e) {
    if (!img || !img->data) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no image given");
    if (img->channels != 1 && img->channels != 3)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "an image has 1 or 3 channels, not %d",
                       img->channels);
    if (img->width <= 0 || img->height <= 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "invalid image size %dx%d", img->width, img->height);
    return fn_image_check_size((uint64_t)img->width, (uint64_t)img->height, e);
}

static int has_png_extension(const char *path) {
    size_t n = strlen(path);
    return n >= 4 && strcasecmp(path + n - 4, ".png") == 0;
}

facenet_status fn_image_save(const facenet_image *img, const char *path, fn_error *e) {
    if (!path) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "no file name given");
    facenet_status st = check_image(img, e);
    uint8_t *buf = NULL;
    size_t len = 0;
    if (st == FACENET_OK)
        st = has_png_extension(path) ? fn_png_encode(img, &buf, &len, e) : fn_pnm_encode(img, &buf, &len, e);
    if (st == FACENET_OK) {
        FILE *f = fopen(path, "wb");
        if (!f) {
            st = fn_fail(e, FACENET_ERR_IO, "cannot create the file (%s)", strerror(errno));
        } else {
            int ok = fwrite(buf, 1, len, f) == len;
            int saved = errno;
            if (fclose(f) != 0 && ok) {
                ok = 0;
                saved = errno;
            }
            if (!ok) {
                st = fn_fail(e, FACENET_ERR_IO, "cannot write the file (%s)", strerror(saved));
                remove(path); /* a half-written image would only fail later, further from the cause */
            }
        }
    }
    free(buf);
    if (st != FACENET_OK) fn_error_prefix(e, "%s", path);
    return st;
}

/* ---------------------------------------------------------------- public API */

facenet_status facenet_image_load(facenet_ctx *ctx, const char *path, facenet_image *out) {
    fn_error err;
    fn_error_clear(&err);
    facenet_status st = fn_image_load(path, ctx ? ctx->pool : NULL, out, &err);
    return st == FACENET_OK ? st : fn_ctx_report(ctx, &err);
}

facenet_status facenet_image_decode(facenet_ctx *ctx, const void *data, size_t size, facenet_image *out) {
    fn_error err;
    fn_error_clear(&err);
    facenet_status st = fn_image_decode(data, size, ctx ? ctx->pool : NULL, out, &err);
    return st == FACENET_OK ? st : fn_ctx_report(ctx, &err);
}

facenet_status facenet_image_save(facenet_ctx *ctx, const facenet_image *img, const char *path) {
    fn_error err;
    fn_error_clear(&err);
    facenet_status st = fn_image_save(img, path, &err);
    return st == FACENET_OK ? st : fn_ctx_report(ctx, &err);
}

facenet_status facenet_image_alloc(facenet_ctx *ctx, int width, int height, int channels,
                                   facenet_image *out) {
    fn_error err;
    fn_error_clear(&err);
    facenet_status st = fn_image_alloc(width, height, channels, out, &err);
    return st == FACENET_OK ? st : fn_ctx_report(ctx, &err);
}

void facenet_image_free(facenet_image *img) {
    if (!img) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}
