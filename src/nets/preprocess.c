/* preprocess.c - face-api's toBatchTensor and per-network normalisation. */
#include <string.h>

#include "nets/preprocess.h"

int fn_to_input(const fn_exec *ex, const facenet_image *img, int size, int center, const fn_norm *norm,
                float *dst) {
    const int w = img->width, h = img->height;
    const int side = w > h ? w : h;
    const int diff = side - (w < h ? w : h);
    /* JS Math.round(diff/2) goes after the image, the rest before it. */
    const int after = center ? (diff + 1) / 2 : diff;
    const int before = diff - after;
    const int top = h < w ? before : 0, left = w < h ? before : 0;

    float *canvas = fn_arena_floats(ex->arena, (size_t)side * side * 3);
    if (!canvas) return -1;
    fn_tensor sq = fn_tensor_make(1, side, side, 3, canvas);
    memset(canvas, 0, (size_t)side * side * 3 * sizeof(float));
    for (int y = 0; y < h; y++) {
        const uint8_t *src = img->data + (size_t)y * w * img->channels;
        float *row = fn_at(&sq, 0, y + top, left, 0);
        for (int x = 0; x < w; x++) {
            for (int c = 0; c < 3; c++) row[x * 3 + c] = (float)src[x * img->channels + (img->channels == 3 ? c : 0)];
        }
    }
    fn_tensor out = fn_tensor_make(1, size, size, 3, dst);
    if (side == size)
        memcpy(dst, canvas, (size_t)size * size * 3 * sizeof(float));
    else
        fn_resize_bilinear_legacy(&sq, &out);
    const size_t n = (size_t)size * size;
    for (size_t i = 0; i < n; i++)
        for (int c = 0; c < 3; c++) dst[i * 3 + c] = (dst[i * 3 + c] - norm->mean[c]) / norm->div;
    return 0;
}
