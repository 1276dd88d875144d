/*
 * test_parity.c - our embedding network against the original library.
 *
 * tests/golden/faceapi_demo.json holds what face-api 1.7.15 (tfjs 4.22,
 * wasm) computed for every face of its demo photos (tools/parity/
 * generate.mjs). For each face we cut the same two chips from the same
 * decoded pixels (the photo hash proves they are the same) and require our
 * raw descriptor to match face-api's within 1e-4 per component:
 *   - descriptor_rect: face-api's own descriptor crop, which goes through
 *     the pad-to-square and legacy bilinear resize to 150x150;
 *   - chip150_rect: a 150x150 window, which needs no resize.
 * The photos come with the models (scripts/setup.sh).
 */
#include <math.h>
#include <stdio.h>

#include "golden.h"
#include "testutil.h"

#define TOL 1e-4

typedef struct fixture {
    golden g;
    facenet_ctx *ctx;
    facenet_model *model;
    facenet_session *session;
} fixture;

static fixture F;

/* Embed the face's rect_key rect of img; compare the raw vector with the
 * golden desc_key one. */
static double check_chip(const facenet_image *img, const fn_json *face, const char *rect_key,
                         const char *desc_key, const char *what, double *norm_err) {
    int r[4];
    golden_rect(face, rect_key, r);
    facenet_image chip = {0};
    assert_int_equal(facenet_image_crop(F.ctx, img, r[0], r[1], r[2], r[3], &chip), FACENET_OK);
    float raw[128], unit[128], gold[128];
    assert_int_equal(facenet_embed_chips(F.session, &chip, 1, raw, FACENET_EMBED_RAW), FACENET_OK);
    assert_int_equal(facenet_embed_chips(F.session, &chip, 1, unit, 0), FACENET_OK);
    facenet_image_free(&chip);
    golden_floats(face, desc_key, gold, 128);
    double gnorm = 0;
    for (int i = 0; i < 128; i++) gnorm += (double)gold[i] * gold[i];
    gnorm = sqrt(gnorm);
    double worst = test_max_abs_diff(raw, gold, 128);
    if (worst > TOL) fail_msg("%s: max |ours - face-api| = %.3g > %g", what, worst, TOL);
    /* The normalized embedding is the golden vector scaled to unit length. */
    for (int i = 0; i < 128; i++) gold[i] = (float)(gold[i] / gnorm);
    *norm_err = test_max_abs_diff(unit, gold, 128);
    return worst;
}

static void test_descriptors_match_faceapi(void **state) {
    (void)state;
    assert_int_equal(golden_photo_count(&F.g), 6);
    int faces = 0;
    double worst_crop = 0, worst_150 = 0, worst_unit = 0;
    for (size_t p = 0; p < golden_photo_count(&F.g); p++) {
        const char *file = golden_photo_file(&F.g, p);
        facenet_image img;
        golden_load_photo(&F.g, p, &img);
        const fn_json *ssd = fn_json_get(golden_photo(&F.g, p), "ssd");
        for (size_t f = 0; f < ssd->count; f++) {
            const fn_json *face = &ssd->items[f];
            char what[128];
            double ue;
            snprintf(what, sizeof what, "%s face %zu (face-api crop)", file, f);
            double d1 = check_chip(&img, face, "descriptor_rect", "descriptor", what, &ue);
            worst_unit = fmax(worst_unit, ue);
            snprintf(what, sizeof what, "%s face %zu (150x150 window)", file, f);
            double d2 = check_chip(&img, face, "chip150_rect", "chip150_descriptor", what, &ue);
            worst_unit = fmax(worst_unit, ue);
            worst_crop = fmax(worst_crop, d1);
            worst_150 = fmax(worst_150, d2);
            faces++;
        }
        facenet_image_free(&img);
    }
    printf("parity: %d faces; max |ours - face-api| per component: %.3g (face-api crop, resized), "
           "%.3g (150x150, no resize); normalized: %.3g\n",
           faces, worst_crop, worst_150, worst_unit);
    assert_int_equal(faces, 22);
    assert_true(worst_unit < TOL);
}

/* A batch gives the same vectors as one chip at a time. */
static void test_batch_equals_single(void **state) {
    (void)state;
    facenet_image chips[3];
    for (int i = 0; i < 3; i++) {
        assert_int_equal(facenet_image_alloc(F.ctx, 120 + 30 * i, 150, 3, &chips[i]), FACENET_OK);
        for (size_t k = 0; k < (size_t)chips[i].width * 150 * 3; k++) chips[i].data[k] = (uint8_t)(k * (7 + i));
    }
    float batch[3 * 128], one[128];
    assert_int_equal(facenet_embed_chips(F.session, chips, 3, batch, 0), FACENET_OK);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(facenet_embed_chips(F.session, &chips[i], 1, one, 0), FACENET_OK);
        double d = test_max_abs_diff(one, batch + i * 128, 128);
        if (d > 1e-6) fail_msg("chip %d: batch and single differ by %g", i, d);
        facenet_image_free(&chips[i]);
    }
}

static int setup(void **state) {
    (void)state;
    facenet_ctx_params p = facenet_ctx_default_params();
    p.n_threads = 2;
    if (facenet_ctx_create(&p, &F.ctx) != FACENET_OK) return -1;
    const char *mp = test_model_path("dlib_resnet29.safetensors");
    if (facenet_model_load(F.ctx, mp, &F.model) != FACENET_OK) {
        fprintf(stderr, "%s\n", facenet_ctx_error(F.ctx));
        return -1;
    }
    return facenet_session_create(F.ctx, F.model, &F.session) == FACENET_OK ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    facenet_session_free(F.session);
    facenet_model_free(F.model);
    facenet_ctx_free(F.ctx);
    golden_close(&F.g);
    return 0;
}

int main(void) {
    if (!test_model_path("dlib_resnet29.safetensors")) return TEST_SKIP_CODE;
    if (golden_open(&F.g) != 0) return TEST_SKIP_CODE;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptors_match_faceapi),
        cmocka_unit_test(test_batch_equals_single),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
