/*
 * test_landmarks.c - the 68-point landmark networks against face-api.
 *
 * For every SSD face in tests/golden/faceapi_demo.json we feed face-api's own
 * detection box to fn_landmarks (FN_ORIGIN_FACEAPI) on the same decoded
 * pixels (the photo hash proves it) and require
 *   - the crop to equal face-api's landmark_rect exactly, and
 *   - every point to be within 0.5 px of face-api's (in practice ~1e-4: the
 *     only difference is float summation order).
 * The tiny model has no golden output; it must run and land near the full
 * model's points. Skips (77) when the models or photos are absent.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "golden.h"
#include "image/image.h"
#include "landmarks/landmarks.h"
#include "nets/landmark68.h"
#include "testutil.h"

#define N_PHOTOS 6
#define PARITY_TOL 0.5 /* px */

typedef struct fixture {
    golden g;
    facenet_image img[N_PHOTOS];
    facenet_ctx *ctx;
    facenet_model *full, *tiny;
    fn_arena arena;
    fn_exec ex;
} fixture;

static fixture F;

/* The SSD faces face-api found in photo p. */
static const fn_json *ssd_faces(size_t p) { return fn_json_get(golden_photo(&F.g, p), "ssd"); }

static void run(const facenet_model *m, const facenet_image *img, const fn_face_box *box,
                fn_landmark_origin o, float pts[136], int crop[4]) {
    fn_error e;
    fn_error_clear(&e);
    fn_arena_reset(&F.arena);
    facenet_status st = fn_landmarks(m, &F.ex, img, box, o, pts, crop, &e);
    if (st != FACENET_OK) fail_msg("fn_landmarks: %s", e.msg);
}

static void test_full_matches_faceapi(void **state) {
    (void)state;
    int faces = 0;
    double worst = 0, sum = 0;
    const char *worst_at = "";
    static char where[128];
    for (size_t p = 0; p < golden_photo_count(&F.g); p++) {
        const fn_json *ssd = ssd_faces(p);
        for (size_t f = 0; f < ssd->count; f++) {
            const fn_json *face = &ssd->items[f];
            const fn_face_box box = golden_face_box(face);
            float pts[136];
            int crop[4];
            run(F.full, &F.img[p], &box, FN_ORIGIN_FACEAPI, pts, crop);
            int want[4];
            golden_rect(face, "landmark_rect", want);
            if (memcmp(crop, want, sizeof want) != 0)
                fail_msg("photo %zu face %zu: crop %d,%d %dx%d, face-api's %d,%d %dx%d", p + 1, f, crop[0],
                         crop[1], crop[2], crop[3], want[0], want[1], want[2], want[3]);
            double gold[136];
            golden_doubles(face, "landmarks", gold, 136);
            for (int i = 0; i < 136; i++) {
                const double d = fabs(pts[i] - gold[i]);
                sum += d;
                if (d > worst) {
                    worst = d;
                    snprintf(where, sizeof where, "sample%zu face %zu point %d %c", p + 1, f, i / 2,
                             i % 2 ? 'y' : 'x');
                    worst_at = where;
                }
            }
            faces++;
        }
    }
    printf("landmarks: %d faces, crops equal face-api's landmark_rect; |ours - face-api| per coordinate: "
           "worst %.3g px (%s), mean %.3g px\n",
           faces, worst, worst_at, sum / (faces * 136.0));
    assert_int_equal(faces, 22);
    if (worst > PARITY_TOL) fail_msg("worst landmark difference %.3g px > %g px", worst, PARITY_TOL);
}

/* The tiny model: no golden output, but it must agree roughly with the full
 * model (both were trained on the same data). */
static void test_tiny_near_full(void **state) {
    (void)state;
    double sum = 0, sum_rel = 0, worst_face = 0;
    int faces = 0;
    for (size_t p = 0; p < golden_photo_count(&F.g); p++) {
        const fn_json *ssd = ssd_faces(p);
        for (size_t f = 0; f < ssd->count; f++) {
            const fn_face_box box = golden_face_box(&ssd->items[f]);
            float a[136], b[136];
            run(F.full, &F.img[p], &box, FN_ORIGIN_FACEAPI, a, NULL);
            run(F.tiny, &F.img[p], &box, FN_ORIGIN_FACEAPI, b, NULL);
            double s = 0;
            for (int i = 0; i < 68; i++) s += hypot(a[2 * i] - b[2 * i], a[2 * i + 1] - b[2 * i + 1]);
            s /= 68;
            /* As a fraction of the face box, so big and small faces weigh alike. */
            const double rel = s / fmax(box.w, box.h);
            worst_face = fmax(worst_face, rel);
            sum_rel += rel;
            sum += s;
            faces++;
        }
    }
    printf("tiny vs full model: mean point distance %.2f px over %d faces (%.1f%% of the box side); "
           "worst face %.1f%%\n",
           sum / faces, faces, 100 * sum_rel / faces, 100 * worst_face);
    /* Observed: 2.7% on average, 0.6% to 8.7% per face; the tiny net is
     * simply less accurate (face-api says as much). A broken net would be
     * off by tens of percent. */
    assert_true(sum_rel / faces < 0.05);
    assert_true(worst_face < 0.15);
}

/* FN_ORIGIN_CROP differs from FN_ORIGIN_FACEAPI by exactly the offset between
 * the crop's corner and the box's. */
static void test_origin_modes(void **state) {
    (void)state;
    const fn_face_box box = golden_face_box(&ssd_faces(0)->items[0]);
    float a[136], b[136];
    int crop[4];
    run(F.full, &F.img[0], &box, FN_ORIGIN_FACEAPI, a, crop);
    run(F.full, &F.img[0], &box, FN_ORIGIN_CROP, b, NULL);
    for (int i = 0; i < 68; i++) {
        assert_close(a[2 * i] - b[2 * i], box.x - crop[0], 1e-3);
        assert_close(a[2 * i + 1] - b[2 * i + 1], box.y - crop[1], 1e-3);
    }
}

/* A grey image gives the same points as the RGB image with three equal
 * channels (fn_to_input replicates grey). */
static void test_grey_input(void **state) {
    (void)state;
    const facenet_image *src = &F.img[1];
    const fn_face_box box = golden_face_box(&ssd_faces(1)->items[0]);
    facenet_image grey, rgb;
    fn_error e;
    assert_int_equal(fn_image_alloc(src->width, src->height, 1, &grey, &e), FACENET_OK);
    assert_int_equal(fn_image_alloc(src->width, src->height, 3, &rgb, &e), FACENET_OK);
    for (size_t i = 0; i < (size_t)src->width * src->height; i++) {
        const uint8_t *s = src->data + 3 * i;
        const uint8_t g = (uint8_t)((s[0] * 77 + s[1] * 150 + s[2] * 29) >> 8);
        grey.data[i] = g;
        rgb.data[3 * i] = rgb.data[3 * i + 1] = rgb.data[3 * i + 2] = g;
    }
    float a[136], b[136];
    run(F.full, &grey, &box, FN_ORIGIN_CROP, a, NULL);
    run(F.full, &rgb, &box, FN_ORIGIN_CROP, b, NULL);
    assert_true(test_max_abs_diff(a, b, 136) == 0.0);
    facenet_image_free(&grey);
    facenet_image_free(&rgb);
}

/* fn_landmarks_upright on upright faces stays close to the plain network
 * (test_align.c checks what it is for: rolled faces). */
static void test_upright(void **state) {
    (void)state;
    fn_error e;
    double sum = 0;
    int faces = 0;
    for (size_t p = 0; p < golden_photo_count(&F.g); p++) {
        const fn_json *ssd = ssd_faces(p);
        for (size_t f = 0; f < ssd->count; f++) {
            const fn_face_box box = golden_face_box(&ssd->items[f]);
            float a[136], b[136];
            run(F.full, &F.img[p], &box, FN_ORIGIN_CROP, a, NULL);
            fn_arena_reset(&F.arena);
            assert_int_equal(fn_landmarks_upright(F.full, &F.ex, &F.img[p], &box, b, &e), FACENET_OK);
            double s = 0;
            for (int i = 0; i < 68; i++) s += hypot(a[2 * i] - b[2 * i], a[2 * i + 1] - b[2 * i + 1]);
            sum += s / 68 / fmax(box.w, box.h);
            faces++;
        }
    }
    printf("upright pass on the upright demo faces: points move %.2f%% of the box side (mean)\n",
           100 * sum / faces);
    assert_true(sum / faces < 0.02);
    /* A box much larger than the image keeps the first pass. */
    const fn_face_box huge = {-1e6f, -1e6f, 2e6f, 2e6f, 1};
    float a[136], b[136];
    run(F.full, &F.img[0], &huge, FN_ORIGIN_CROP, a, NULL);
    fn_arena_reset(&F.arena);
    assert_int_equal(fn_landmarks_upright(F.full, &F.ex, &F.img[0], &huge, b, &e), FACENET_OK);
    assert_memory_equal(a, b, sizeof a);
    const fn_face_box outside = {5000.0f, 10.0f, 50.0f, 50.0f, 1};
    assert_int_equal(fn_landmarks_upright(F.full, &F.ex, &F.img[0], &outside, b, &e),
                     FACENET_ERR_INVALID_ARGUMENT);
}

static void test_clip_at_image_borders(void **state) {
    (void)state;
    int c[4];
    /* Inside: floors each value separately. */
    fn_face_box b1 = {10.7f, 20.2f, 30.9f, 40.5f, 1};
    assert_int_equal(fn_landmarks_crop(&b1, 100, 100, c), 0);
    assert_int_equal(c[0], 10);
    assert_int_equal(c[1], 20);
    assert_int_equal(c[2], 30);
    assert_int_equal(c[3], 40);
    /* Starting left of / above the image: clipped to 0, width shrinks. */
    fn_face_box b2 = {-5.5f, -2.25f, 20.0f, 10.0f, 1};
    assert_int_equal(fn_landmarks_crop(&b2, 100, 100, c), 0);
    assert_int_equal(c[0], 0);
    assert_int_equal(c[1], 0);
    assert_int_equal(c[2], 14);
    assert_int_equal(c[3], 7);
    /* Past the right / bottom edge: W - x, then floored. */
    fn_face_box b3 = {90.5f, 95.0f, 30.0f, 30.0f, 1};
    assert_int_equal(fn_landmarks_crop(&b3, 100, 100, c), 0);
    assert_int_equal(c[0], 90);
    assert_int_equal(c[1], 95);
    assert_int_equal(c[2], 9);
    assert_int_equal(c[3], 5);
    /* Nothing (or under a pixel) inside, or not a number: refused. */
    fn_face_box b4 = {100.0f, 10.0f, 5.0f, 5.0f, 1}, b5 = {-10.0f, 10.0f, 10.5f, 5.0f, 1};
    fn_face_box b6 = {NAN, 10.0f, 5.0f, 5.0f, 1}, b7 = {1e30f, 1e30f, 1e30f, 1e30f, 1};
    assert_int_equal(fn_landmarks_crop(&b4, 100, 100, c), -1);
    assert_int_equal(fn_landmarks_crop(&b5, 100, 100, c), -1);
    assert_int_equal(fn_landmarks_crop(&b6, 100, 100, c), -1);
    assert_int_equal(fn_landmarks_crop(&b7, 100, 100, c), -1);
}

static void test_bad_arguments(void **state) {
    (void)state;
    float pts[136];
    fn_error e;
    fn_face_box outside = {5000.0f, 10.0f, 50.0f, 50.0f, 1};
    assert_int_equal(fn_landmarks(F.full, &F.ex, &F.img[0], &outside, FN_ORIGIN_CROP, pts, NULL, &e),
                     FACENET_ERR_INVALID_ARGUMENT);
    fn_face_box box = {10.0f, 10.0f, 50.0f, 50.0f, 1};
    assert_int_equal(fn_landmarks(NULL, &F.ex, &F.img[0], &box, FN_ORIGIN_CROP, pts, NULL, &e),
                     FACENET_ERR_INVALID_ARGUMENT);
    facenet_image none = {0};
    assert_int_equal(fn_landmarks(F.full, &F.ex, &none, &box, FN_ORIGIN_CROP, pts, NULL, &e),
                     FACENET_ERR_INVALID_ARGUMENT);
    /* A one-pixel box still runs (pad to square, resize 1 -> 112). */
    fn_face_box tiny = {3.0f, 4.0f, 1.0f, 1.0f, 1};
    int crop[4];
    fn_arena_reset(&F.arena);
    assert_int_equal(fn_landmarks(F.full, &F.ex, &F.img[0], &tiny, FN_ORIGIN_CROP, pts, crop, &e),
                     FACENET_OK);
    assert_int_equal(crop[2], 1);
    for (int i = 0; i < 136; i++) assert_true(isfinite(pts[i]));
}

static int setup(void **state) {
    (void)state;
    if (golden_photo_count(&F.g) != N_PHOTOS) return -1;
    for (size_t p = 0; p < N_PHOTOS; p++) golden_load_photo(&F.g, p, &F.img[p]);
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 2;
    if (facenet_ctx_create(&cp, &F.ctx) != FACENET_OK) return -1;
    if (facenet_model_load(F.ctx, test_model_path("face_landmark_68.safetensors"), &F.full) != FACENET_OK ||
        facenet_model_load(F.ctx, test_model_path("face_landmark_68_tiny.safetensors"), &F.tiny) !=
            FACENET_OK) {
        fprintf(stderr, "%s\n", facenet_ctx_error(F.ctx));
        return -1;
    }
    fn_exec_init(&F.ex, fn_backend_default(), F.ctx->pool, &F.arena);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    for (int p = 0; p < N_PHOTOS; p++) facenet_image_free(&F.img[p]);
    fn_exec_release(&F.ex);
    fn_arena_free(&F.arena);
    facenet_model_free(F.full);
    facenet_model_free(F.tiny);
    facenet_ctx_free(F.ctx);
    golden_close(&F.g);
    return 0;
}

int main(void) {
    if (!test_model_path("face_landmark_68.safetensors") ||
        !test_model_path("face_landmark_68_tiny.safetensors"))
        return TEST_SKIP_CODE;
    if (golden_open(&F.g) != 0) return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_matches_faceapi),
        cmocka_unit_test(test_tiny_near_full),
        cmocka_unit_test(test_origin_modes),
        cmocka_unit_test(test_grey_input),
        cmocka_unit_test(test_upright),
        cmocka_unit_test(test_clip_at_image_borders),
        cmocka_unit_test(test_bad_arguments),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
