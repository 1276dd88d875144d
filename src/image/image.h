/*
 * image.h - internal image I/O: decoders for JPEG (libjpeg-turbo), PNG
 * (libpng) and binary PPM/PGM (P5/P6), and writers for PNG and PPM/PGM.
 *
 * Every decoder checks the declared size against FACENET_MAX_IMAGE_SIDE and
 * FACENET_MAX_IMAGE_PIXELS before allocating pixels, and turns library errors
 * (libjpeg's error_exit, libpng's longjmp) into fn_error values. Decoded
 * images are always 8-bit RGB; JPEG EXIF orientation is applied.
 * The public facenet_image_* functions are thin wrappers over these.
 */
#ifndef FN_IMAGE_H
#define FN_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

facenet_status fn_image_alloc(int width, int height, int channels, facenet_image *out, fn_error *e);
/* A new image, img mirrored left to right (facenet_image_mirror). */
facenet_status fn_image_mirror(const facenet_image *img, facenet_image *out, fn_error *e);
/* pool: the context's threads, which may share the decoding of a large
 * JPEG (jpeg.c); NULL decodes on the calling thread. */
facenet_status fn_image_decode(const void *data, size_t size, struct fn_pool *pool, facenet_image *out, fn_error *e);
facenet_status fn_image_load(const char *path, struct fn_pool *pool, facenet_image *out, fn_error *e);
facenet_status fn_image_save(const facenet_image *img, const char *path, fn_error *e);

/* Largest file fn_image_load reads (bytes); larger files are refused. */
#define FN_IMAGE_MAX_FILE_BYTES (256u * 1024u * 1024u)

/* Refuse a declared size before anything is allocated: zero sides are
 * FACENET_ERR_FORMAT, sides or areas over the caps FACENET_ERR_TOO_LARGE.
 * Takes 64-bit values so headers can be checked before any narrowing. */
facenet_status fn_image_check_size(uint64_t width, uint64_t height, fn_error *e);

/* The codecs behind fn_image_decode / fn_image_save (jpeg.c, png.c, pnm.c).
 * Decoders produce RGB (channels = 3) and leave *out zeroed on failure;
 * encoders return a malloc'ed buffer in *buf. */
facenet_status fn_jpeg_decode(const uint8_t *data, size_t size, struct fn_pool *pool, facenet_image *out,
                              fn_error *e);
facenet_status fn_png_decode(const uint8_t *data, size_t size, facenet_image *out, fn_error *e);
facenet_status fn_pnm_decode(const uint8_t *data, size_t size, facenet_image *out, fn_error *e);
facenet_status fn_png_encode(const facenet_image *img, uint8_t **buf, size_t *len, fn_error *e);
facenet_status fn_pnm_encode(const facenet_image *img, uint8_t **buf, size_t *len, fn_error *e);

/* The EXIF orientation (1..8) found in a JPEG's APP1 segment, or 1. */
int fn_jpeg_exif_orientation(const uint8_t *data, size_t size);
/* Apply an EXIF orientation (1..8) in place (the buffer may be reallocated). */
facenet_status fn_image_orient(facenet_image *img, int orientation, fn_error *e);

#endif /* FN_IMAGE_H */
