/* crop.c - cutting rectangles out of images, and mirroring them. */
#include <string.h>

#include "image/image.h"

facenet_status facenet_image_crop(facenet_ctx *ctx, const facenet_image *img, int x, int y, int w, int h,
                                  facenet_image *out) {
    fn_error e;
    fn_error_clear(&e);
    if (!img || !out || !img->data || img->channels < 1) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_image_crop: no image");
        return fn_ctx_report(ctx, &e);
    }
    if (w <= 0 || h <= 0 || x < 0 || y < 0 || x > img->width - w || y > img->height - h) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "crop %dx%d at (%d, %d) does not lie inside the %dx%d image", w,
                h, x, y, img->width, img->height);
        return fn_ctx_report(ctx, &e);
    }
    if (fn_image_alloc(w, h, img->channels, out, &e) != FACENET_OK) return fn_ctx_report(ctx, &e);
    const size_t row = (size_t)w * img->channels;
    for (int i = 0; i < h; i++)
        memcpy(out->data + (size_t)i * row, img->data + (((size_t)(y + i) * img->width) + x) * img->channels, row);
    return fn_ctx_report(ctx, &e);
}

facenet_status fn_image_mirror(const facenet_image *img, facenet_image *out, fn_error *e) {
    if (!img || !out || !img->data || img->channels < 1 || img->width < 1 || img->height < 1)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "facenet_image_mirror: no image");
    facenet_status st = fn_image_alloc(img->width, img->height, img->channels, out, e);
    if (st != FACENET_OK) return st;
    const int c = img->channels;
    for (int y = 0; y < img->height; y++) {
        const uint8_t *s = img->data + (size_t)y * img->width * c;
        uint8_t *d = out->data + (size_t)y * img->width * c;
        for (int x = 0; x < img->width; x++) memcpy(d + (size_t)(img->width - 1 - x) * c, s + (size_t)x * c, c);
    }
    return FACENET_OK;
}

facenet_status facenet_image_mirror(facenet_ctx *ctx, const facenet_image *img, facenet_image *out) {
    fn_error e;
    fn_error_clear(&e);
    fn_image_mirror(img, out, &e);
    return fn_ctx_report(ctx, &e);
}
