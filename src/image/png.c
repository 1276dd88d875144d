/*
 * png.c - PNG decoding and encoding with libpng, from and to memory.
 *
 * Every PNG variant decodes to 8-bit RGB: palettes are expanded, grey is
 * replicated, 16-bit samples are scaled with rounding (png_set_scale_16),
 * and interlaced images are de-interlaced by libpng. An alpha channel (or a
 * tRNS transparent colour) is dropped: the stored colour values are kept as
 * they are, not composited on any background - the same as TensorFlow's
 * decode_png(channels=3), which the original face-api pipeline used. No
 * gamma or colour-profile correction is applied, for the same reason.
 *
 * libpng reports errors by longjmp to png_jmpbuf. State that changes after
 * setjmp lives in a heap block (struct png_state) or the caller's image, so
 * nothing is left indeterminate by the longjmp. libpng's own limit checks
 * are widened so that our caps, checked right after png_read_info and
 * before any pixel memory exists, give the message the user sees.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>

#include "image/image.h"

struct png_state {
    const uint8_t *in; /* reading: the whole file */
    size_t in_size, in_pos;
    int truncated;
    uint8_t *out; /* writing: a growing buffer */
    size_t out_len, out_cap;
    png_bytep *rows;
    int jumped;
    char msg[256];
};

static void on_png_error(png_structp png, png_const_charp msg) {
    struct png_state *s = png_get_error_ptr(png);
    s->jumped = 1;
    snprintf(s->msg, sizeof s->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

/* A library must not print to stderr, and libpng's warnings (bad CRCs in
 * ancillary chunks, unknown profiles) do not stop decoding. */
static void on_png_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

static void on_png_read(png_structp png, png_bytep buf, size_t n) {
    struct png_state *s = png_get_io_ptr(png);
    if (n > s->in_size - s->in_pos) {
        s->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(buf, s->in + s->in_pos, n);
    s->in_pos += n;
}

static facenet_status decode(png_structp png, png_infop info, struct png_state *s, facenet_image *out,
                             fn_error *e) {
    if (setjmp(png_jmpbuf(png))) return FACENET_ERR_FORMAT; /* the message is in s->msg */

    png_set_read_fn(png, s, on_png_read);
    png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(png, info);

    png_uint_32 width, height;
    int bit_depth, color_type, interlace;
    png_get_IHDR(png, info, &width, &height, &bit_depth, &color_type, &interlace, NULL, NULL);
    facenet_status st = fn_image_check_size(width, height, e);
    if (st != FACENET_OK) return st;

    png_set_palette_to_rgb(png);
    png_set_expand_gray_1_2_4_to_8(png);
    png_set_scale_16(png);
    png_set_strip_alpha(png);
    png_set_gray_to_rgb(png);
    (void)png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
        png_get_rowbytes(png, info) != (size_t)width * 3)
        return fn_fail(e, FACENET_ERR_INTERNAL, "libpng produced %d channels of %d bits for colour type %d",
                       png_get_channels(png, info), png_get_bit_depth(png, info), color_type);

    st = fn_image_alloc((int)width, (int)height, 3, out, e);
    if (st != FACENET_OK) return st;
    s->rows = malloc((size_t)height * sizeof *s->rows);
    if (!s->rows) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory decoding the PNG");
    for (png_uint_32 y = 0; y < height; y++) s->rows[y] = out->data + (size_t)y * width * 3;
    png_read_image(png, s->rows);
    /* No png_read_end: the pixels are complete, and a lost IEND or trailing
     * chunk should not cost the image. */
    return FACENET_OK;
}

facenet_status fn_png_decode(const uint8_t *data, size_t size, facenet_image *out, fn_error *e) {
    memset(out, 0, sizeof *out);
    struct png_state *s = calloc(1, sizeof *s);
    png_structp png = NULL;
    if (s) png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    facenet_status st;
    if (!info) {
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory decoding the PNG");
    } else {
        s->in = data;
        s->in_size = size;
        st = decode(png, info, s, out, e);
        if (st != FACENET_OK && s->jumped) {
            if (s->truncated)
                st = fn_fail(e, FACENET_ERR_FORMAT, "truncated PNG");
            else if (strstr(s->msg, "memory"))
                st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory decoding the PNG (%s)", s->msg);
            else
                st = fn_fail(e, FACENET_ERR_FORMAT, "corrupt PNG (%s)", s->msg);
        }
    }
    if (png) png_destroy_read_struct(&png, info ? &info : NULL, NULL);
    if (s) free(s->rows);
    free(s);
    if (st != FACENET_OK) {
        free(out->data);
        memset(out, 0, sizeof *out);
    }
    return st;
}

/* ---------------------------------------------------------------- writing */

static void on_png_write(png_structp png, png_bytep buf, size_t n) {
    struct png_state *s = png_get_io_ptr(png);
    if (n > s->out_cap - s->out_len) {
        size_t need, cap = s->out_cap ? s->out_cap : 4096;
        if (!fn_add_size(s->out_len, n, &need)) png_error(png, "out of memory");
        while (cap < need)
            if (!fn_mul_size(cap, 2, &cap)) png_error(png, "out of memory");
        uint8_t *nb = realloc(s->out, cap);
        if (!nb) png_error(png, "out of memory");
        s->out = nb;
        s->out_cap = cap;
    }
    memcpy(s->out + s->out_len, buf, n);
    s->out_len += n;
}

static void on_png_flush(png_structp png) { (void)png; }

static void encode(png_structp png, png_infop info, struct png_state *s, const facenet_image *img) {
    if (setjmp(png_jmpbuf(png))) return; /* s->jumped tells */
    png_set_write_fn(png, s, on_png_write, on_png_flush);
    png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
                 img->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t stride = (size_t)img->width * (size_t)img->channels;
    for (int y = 0; y < img->height; y++) png_write_row(png, img->data + (size_t)y * stride);
    png_write_end(png, NULL);
}

facenet_status fn_png_encode(const facenet_image *img, uint8_t **buf, size_t *len, fn_error *e) {
    *buf = NULL;
    *len = 0;
    if (!img || !img->data || (img->channels != 1 && img->channels != 3) || img->width <= 0 ||
        img->height <= 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "cannot write this image as PNG");
    struct png_state *s = calloc(1, sizeof *s);
    png_structp png = NULL;
    if (s) png = png_create_write_struct(PNG_LIBPNG_VER_STRING, s, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    facenet_status st = FACENET_OK;
    if (!info) {
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory encoding the PNG");
    } else {
        encode(png, info, s, img);
        if (s->jumped && strstr(s->msg, "memory"))
            st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory encoding the PNG");
        else if (s->jumped)
            st = fn_fail(e, FACENET_ERR_INTERNAL, "libpng: %s", s->msg);
    }
    if (png) png_destroy_write_struct(&png, info ? &info : NULL);
    if (s) {
        if (st == FACENET_OK) {
            *buf = s->out;
            *len = s->out_len;
        } else {
            free(s->out);
        }
    }
    free(s);
    return st;
}
