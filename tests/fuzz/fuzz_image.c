/*
 * fuzz_image.c - libFuzzer target for the image decoders (JPEG, PNG,
 * PPM/PGM) and the EXIF orientation parser.
 *
 * Besides "no crash, no leak", it checks two properties on what decodes:
 * the result is a well-formed RGB image within the caps, and small images
 * survive a PNG and a PPM round trip bit for bit (which exercises the
 * writers and the orientation code on arbitrary shapes). Each input is
 * decoded a second time with two threads, which split a large JPEG into
 * halves (a small file may declare a large one): the same status, and the
 * same pixels.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "image/image.h"

static void check_round_trip(const facenet_image *img, int png) {
    uint8_t *buf;
    size_t len;
    fn_error e;
    facenet_status st = png ? fn_png_encode(img, &buf, &len, &e) : fn_pnm_encode(img, &buf, &len, &e);
    if (st != FACENET_OK) abort();
    facenet_image back;
    if (fn_image_decode(buf, len, NULL, &back, &e) != FACENET_OK) abort();
    if (back.width != img->width || back.height != img->height || back.channels != 3 ||
        memcmp(back.data, img->data, (size_t)img->width * img->height * 3) != 0)
        abort();
    facenet_image_free(&back);
    free(buf);
}

/* Kept for the whole run; still reachable at exit, so not a leak. */
static fn_pool *two_threads(void) {
    static fn_pool *pool;
    if (!pool && !(pool = fn_pool_create(2))) abort();
    return pool;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int orientation = fn_jpeg_exif_orientation(data, size);
    if (orientation < 1 || orientation > 8) abort();

    facenet_image img;
    fn_error e;
    fn_error_clear(&e);
    facenet_status st = fn_image_decode(data, size, NULL, &img, &e);
    facenet_image split;
    fn_error e2;
    fn_error_clear(&e2);
    if (fn_image_decode(data, size, two_threads(), &split, &e2) != st) abort();
    if (st == FACENET_OK) {
        if (split.width != img.width || split.height != img.height ||
            memcmp(split.data, img.data, (size_t)img.width * img.height * 3) != 0)
            abort();
        facenet_image_free(&split);
    } else if (split.data || e2.msg[0] == '\0') {
        abort();
    }
    if (st != FACENET_OK) {
        if (img.data || e.msg[0] == '\0') abort(); /* failures leave no pixels and say why */
        return 0;
    }
    if (!img.data || img.channels != 3 || img.width <= 0 || img.height <= 0 ||
        img.width > FACENET_MAX_IMAGE_SIDE || img.height > FACENET_MAX_IMAGE_SIDE ||
        (uint64_t)img.width * (uint64_t)img.height > FACENET_MAX_IMAGE_PIXELS)
        abort();
    if ((size_t)img.width * img.height <= 4096) {
        check_round_trip(&img, 1);
        check_round_trip(&img, 0);
        /* every orientation on a shape the decoders produced; 6 then 8 undoes */
        facenet_image copy = img;
        size_t n = (size_t)img.width * img.height * 3;
        copy.data = malloc(n);
        if (!copy.data) abort();
        memcpy(copy.data, img.data, n);
        if (fn_image_orient(&copy, 6, &e) != FACENET_OK || fn_image_orient(&copy, 8, &e) != FACENET_OK ||
            copy.width != img.width || memcmp(copy.data, img.data, n) != 0)
            abort();
        facenet_image_free(&copy);
    }
    facenet_image_free(&img);
    return 0;
}
