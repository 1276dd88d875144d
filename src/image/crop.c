/* crop.c - cutting rectangles out of images. */
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
