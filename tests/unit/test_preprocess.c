/*
 * test_preprocess.c - fn_to_input and fn_to_input_rect against the literal
 * recipe they shortcut: pad the image to a square of floats with black,
 * resize it with fn_resize_bilinear_legacy, normalise. The results must be
 * the same to the bit, for wide, tall and square images, grey and RGB,
 * centred and end padding, down- and up-scaling, and sub-rectangles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "engine/engine.h"
#include "nets/preprocess.h"
#include "testutil.h"

/* The literal recipe on the region (rx, ry, rw, rh) of img. */
static void literal(const facenet_image *img, int rx, int ry, int rw, int rh, int size, int center,
                    const fn_norm *norm, float *dst) {
    const int side = rw > rh ? rw : rh, diff = side - (rw < rh ? rw : rh);
    const int after = center ? (diff + 1) / 2 : diff, before = diff - after;
    const int top = rh < rw ? before : 0, left = rw < rh ? before : 0;
    float *sq = calloc((size_t)side * side * 3, sizeof(float));
    assert_non_null(sq);
    for (int y = 0; y < rh; y++)
        for (int x = 0; x < rw; x++)
            for (int c = 0; c < 3; c++) {
                const uint8_t *p = img->data + ((size_t)(ry + y) * img->width + rx + x) * img->channels;
                sq[((size_t)(y + top) * side + x + left) * 3 + c] = (float)p[img->channels == 3 ? c : 0];
            }
    fn_tensor a = fn_tensor_make(1, side, side, 3, sq), b = fn_tensor_make(1, size, size, 3, dst);
    if (side == size)
        memcpy(dst, sq, sizeof(float) * (size_t)size * size * 3);
    else
        fn_resize_bilinear_legacy(&a, &b);
    for (size_t i = 0; i < (size_t)size * size; i++)
        for (int c = 0; c < 3; c++) dst[i * 3 + c] = (dst[i * 3 + c] - norm->mean[c]) / norm->div;
    free(sq);
}

static void test_same_bits_as_pad_and_resize(void **state) {
    (void)state;
    static const int SHAPES[][2] = {{37, 23}, {23, 37}, {64, 64}, {150, 150}, {300, 199}, {7, 640}, {1, 1},
                                    {513, 511}, {112, 90}, {1920, 97}};
    static const int SIZES[] = {150, 112, 512, 64};
    const fn_norm norm = {{122.782f, 117.001f, 104.298f}, 255.0f};
    fn_pool *pool = fn_pool_create(2);
    fn_arena arena = {0};
    fn_exec ex;
    fn_exec_init(&ex, &fn_backend_ref, pool, &arena);
    int cases = 0;
    for (size_t s = 0; s < sizeof SHAPES / sizeof SHAPES[0]; s++) {
        for (int ch = 1; ch <= 3; ch += 2) {
            facenet_image img = {SHAPES[s][0], SHAPES[s][1], ch, NULL};
            size_t n = (size_t)img.width * img.height * ch;
            img.data = malloc(n);
            assert_non_null(img.data);
            uint64_t r = 99 + s * 7 + (uint64_t)ch;
            for (size_t i = 0; i < n; i++) {
                r = r * 6364136223846793005ull + 1442695040888963407ull;
                img.data[i] = (uint8_t)(r >> 56);
            }
            for (size_t k = 0; k < sizeof SIZES / sizeof SIZES[0]; k++) {
                const int size = SIZES[k];
                for (int center = 0; center <= 1; center++) {
                    /* The whole image, and a region inside it. */
                    for (int sub = 0; sub <= 1; sub++) {
                        int rx = 0, ry = 0, rw = img.width, rh = img.height;
                        if (sub) {
                            rx = img.width / 5, ry = img.height / 7;
                            rw = img.width - rx - img.width / 9, rh = img.height - ry - img.height / 3;
                            if (rw < 1 || rh < 1) continue;
                        }
                        float *want = malloc(sizeof(float) * (size_t)size * size * 3);
                        float *got = malloc(sizeof(float) * (size_t)size * size * 3);
                        assert_non_null(want);
                        assert_non_null(got);
                        literal(&img, rx, ry, rw, rh, size, center, &norm, want);
                        fn_arena_reset(&arena);
                        int rc = sub ? fn_to_input_rect(&ex, &img, rx, ry, rw, rh, size, center, &norm, got)
                                     : fn_to_input(&ex, &img, size, center, &norm, got);
                        assert_int_equal(rc, 0);
                        if (memcmp(want, got, sizeof(float) * (size_t)size * size * 3) != 0)
                            fail_msg("%dx%dx%d, region %d,%d %dx%d, to %d, center %d: differs from pad + resize",
                                     img.width, img.height, ch, rx, ry, rw, rh, size, center);
                        free(want);
                        free(got);
                        cases++;
                    }
                }
            }
            free(img.data);
        }
    }
    printf("%d preprocessings match pad + resize to the bit\n", cases);
    /* Regions that do not lie inside the image are refused. */
    uint8_t px[12] = {0};
    facenet_image tiny = {2, 2, 3, px};
    float out[3 * 4];
    assert_int_equal(fn_to_input_rect(&ex, &tiny, 1, 0, 2, 1, 2, 0, &norm, out), -1);
    assert_int_equal(fn_to_input_rect(&ex, &tiny, 0, 0, 0, 1, 2, 0, &norm, out), -1);
    assert_int_equal(fn_to_input_rect(&ex, &tiny, -1, 0, 1, 1, 2, 0, &norm, out), -1);
    fn_exec_release(&ex);
    fn_arena_free(&arena);
    fn_pool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_bits_as_pad_and_resize),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
