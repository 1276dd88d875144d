/*
 * test_detect.c - the two face detectors against the original library, and
 * the pieces they are made of.
 *
 * Parity: tests/golden/faceapi_demo.json holds the faces face-api 1.7.15
 * (tfjs 4.22, wasm) found in its six demo photos with each detector at
 * default options. On the same decoded pixels (the hash proves it) we must
 * find the same number of faces, each box overlapping face-api's with IoU
 * >= 0.99 and within a few thousandths of a pixel, scores within 1e-3. The
 * worst differences are printed, with the time per photo.
 *
 * Without models or photos only the model-free tests run (NMS, IoU, anchor
 * decoding, the mapping to pixels), then the test reports itself skipped.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "detect/detect.h"
#include "golden.h"
#include "testutil.h"

/* Box x, y, w, h in pixels: the measured worst is ~1e-4 px for both, about
 * the float32 rounding of a coordinate near 1500 (fn_face_box is float); the
 * bounds leave room for another compiler, libm or backend. */
#define SSD_BOX_TOL 1e-3
#define TINY_BOX_TOL 1e-3
#define SCORE_TOL 1e-3
#define MIN_IOU 0.99

/* ---------------------------------------------------------------- helpers */

static void set_box(float *c, float y0, float x0, float y1, float x1) {
    c[0] = y0;
    c[1] = x0;
    c[2] = y1;
    c[3] = x1;
}

/* IoU of a with the box b = {x, y, w, h}. */
static double face_iou(const fn_face_box *a, const double b[4]) {
    const float ca[4] = {a->y, a->x, a->y + a->h, a->x + a->w};
    const float cb[4] = {(float)b[1], (float)b[0], (float)(b[1] + b[3]), (float)(b[0] + b[2])};
    return fn_box_iou(ca, cb);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---------------------------------------------------------------- no models needed */

static void test_iou(void **state) {
    (void)state;
    float a[4], b[4];
    set_box(a, 0, 0, 2, 2);
    set_box(b, 1, 1, 3, 3);
    assert_close(fn_box_iou(a, b), 1.0 / 7.0, 1e-12);
    set_box(b, 2, 2, 0, 0); /* corners swapped: the same box as a */
    assert_close(fn_box_iou(a, b), 1.0, 1e-12);
    set_box(b, 5, 5, 6, 6); /* disjoint */
    assert_close(fn_box_iou(a, b), 0.0, 0);
    set_box(b, 1, 1, 1, 1); /* zero area, inside a */
    assert_close(fn_box_iou(a, b), 0.0, 0);
    assert_close(fn_box_iou(b, b), 0.0, 0);
}

static void test_nms(void **state) {
    (void)state;
    /* Already sorted by score. Box 1 overlaps box 0 by IoU 0.81 (dropped);
     * box 2 overlaps box 0 by exactly 1/3 (kept at iou 0.5, dropped at 0.3);
     * box 3 is far away; box 4 is box 3 again (dropped, a tie in position). */
    float c[5 * 4], s[5] = {0.9f, 0.8f, 0.7f, 0.6f, 0.6f};
    set_box(c + 0, 0, 0, 10, 10);
    set_box(c + 4, 0, 0, 9, 9);
    set_box(c + 8, 0, 5, 10, 15);
    set_box(c + 12, 50, 50, 60, 60);
    set_box(c + 16, 50, 50, 60, 60);
    int keep[5];
    assert_int_equal(fn_nms_keep(c, 5, 0.5f, 0, keep), 3);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[1], 2);
    assert_int_equal(keep[2], 3);
    assert_int_equal(fn_nms_keep(c, 5, 0.3f, 0, keep), 2);
    assert_int_equal(keep[1], 3);
    /* The cap stops after max_keep boxes. */
    assert_int_equal(fn_nms_keep(c, 5, 0.5f, 2, keep), 2);
    assert_int_equal(keep[1], 2);
    /* IoU exactly at the threshold is kept (<=): [0,0,10,5] is half of box 0. */
    float half[8];
    set_box(half, 0, 0, 10, 10);
    set_box(half + 4, 0, 0, 10, 5);
    assert_close(fn_box_iou(half, half + 4), 0.5, 0);
    assert_int_equal(fn_nms_keep(half, 2, 0.5f, 0, keep), 2);
    assert_int_equal(fn_nms_keep(half, 2, 0.4999f, 0, keep), 1);
    /* Compacting in place keeps scores parallel. */
    assert_int_equal(fn_nms(c, s, 5, 0.5f, 0), 3);
    assert_true(s[0] == 0.9f && s[1] == 0.7f && s[2] == 0.6f);
    assert_true(c[4] == 0.0f && c[5] == 5.0f && c[8] == 50.0f && c[11] == 60.0f);
    /* Nothing in, nothing out; a NULL score array is fine. */
    assert_int_equal(fn_nms(c, NULL, 0, 0.5f, 0), 0);
}

static void test_nms_zero_area_and_ties(void **state) {
    (void)state;
    /* Zero-area boxes overlap nothing (face-api's SSD rule): all kept, even
     * two identical ones, and they suppress nothing. */
    float c[4 * 4];
    set_box(c + 0, 1, 1, 1, 5);
    set_box(c + 4, 1, 1, 1, 5);
    set_box(c + 8, 0, 0, 4, 4);
    set_box(c + 12, 0, 0, 4, 4);
    int keep[4];
    assert_int_equal(fn_nms_keep(c, 4, 0.5f, 0, keep), 3);
    assert_int_equal(keep[2], 2);
    /* Identical boxes: the first in the order wins. */
    assert_int_equal(fn_nms_keep(c + 8, 2, 0.5f, 0, keep), 1);
    assert_int_equal(keep[0], 0);
    /* iou 1 keeps everything; iou 0 drops any overlap at all. */
    assert_int_equal(fn_nms_keep(c + 8, 2, 1.0f, 0, keep), 2);
    set_box(c + 12, 3, 3, 8, 8);
    assert_int_equal(fn_nms_keep(c + 8, 2, 0.0f, 0, keep), 1);
    set_box(c + 12, 4, 4, 8, 8); /* touching corners only: IoU 0 */
    assert_int_equal(fn_nms_keep(c + 8, 2, 0.0f, 0, keep), 2);
}

static void test_ssd_decode(void **state) {
    (void)state;
    /* Anchor centred at (0.5, 0.25), 0.2 high, 0.1 wide. */
    const float anchor[4] = {0.4f, 0.2f, 0.6f, 0.3f};
    float enc[4] = {0, 0, 0, 0}, c[4];
    fn_ssd_decode_boxes(anchor, enc, 1, c);
    for (int i = 0; i < 4; i++) assert_close(c[i], anchor[i], 1e-7);
    /* ty = 10 moves the centre by one anchor height; th = 5 * ln 2 doubles it. */
    enc[0] = 10.0f;
    enc[1] = -5.0f;
    enc[2] = (float)(5.0 * log(2.0));
    enc[3] = 0.0f;
    fn_ssd_decode_boxes(anchor, enc, 1, c);
    assert_close(c[0], 0.7 - 0.2, 1e-6);
    assert_close(c[2], 0.7 + 0.2, 1e-6);
    assert_close(c[1], 0.2 - 0.05, 1e-6);
    assert_close(c[3], 0.2 + 0.05, 1e-6);
    /* Several at once, independent of each other. */
    const float anchors[8] = {0.4f, 0.2f, 0.6f, 0.3f, 0.0f, 0.0f, 1.0f, 1.0f};
    const float encs[8] = {10.0f, -5.0f, (float)(5.0 * log(2.0)), 0.0f, 0, 0, 0, 0};
    float cc[8];
    fn_ssd_decode_boxes(anchors, encs, 2, cc);
    for (int i = 0; i < 4; i++) assert_true(cc[i] == c[i]);
    assert_close(cc[4], 0.0, 0);
    assert_close(cc[7], 1.0, 0);
}

static void test_ssd_box_to_image(void **state) {
    (void)state;
    /* 1920x1280: the image fills the top 341.33.. of 512 rows, round 341, so
     * padY = 512/341; padX = 1. */
    const float c[4] = {0.1f, 0.2f, 0.5f, 0.4f};
    fn_face_box b = fn_ssd_box_to_image(c, 0.75f, 1920, 1280);
    const double pad_y = 512.0 / 341.0;
    assert_close(b.x, 0.2f * 1920.0, 1e-3);
    assert_close(b.w, (0.4f - 0.2f) * 1920.0, 1e-3);
    assert_close(b.y, 0.1f * pad_y * 1280.0, 1e-3);
    assert_close(b.h, (0.5f - 0.1f) * pad_y * 1280.0, 1e-3);
    assert_true(b.score == 0.75f);
    /* Corners beyond the input are clipped to it (0 and 1 before padding). */
    const float out[4] = {-0.5f, -0.5f, 1.5f, 1.5f};
    b = fn_ssd_box_to_image(out, 0.5f, 100, 100);
    assert_close(b.x, 0, 0);
    assert_close(b.y, 0, 0);
    assert_close(b.w, 100, 1e-9);
    assert_close(b.h, 100, 1e-9);
    /* An aspect ratio over 1024:1 rounds a side to 0 px; still finite. */
    b = fn_ssd_box_to_image(c, 0.5f, 3000, 1);
    assert_true(isfinite(b.y) && isfinite(b.h));
}

/* ---------------------------------------------------------------- with models */

typedef struct fixture {
    golden g;
    facenet_ctx *ctx;
    facenet_model *ssd, *tiny;
    fn_arena arena;
    fn_exec ex;
} fixture;

static fixture F;

static facenet_status detect(const facenet_model *m, const facenet_image *img, const fn_detect_opts *o,
                             fn_face_box *out, int cap, int *n) {
    fn_error e;
    fn_error_clear(&e);
    fn_arena_reset(&F.arena);
    facenet_status st = fn_detect(m, &F.ex, img, o, out, cap, n, &e);
    if (st != FACENET_OK) printf("detect: %s\n", e.msg);
    return st;
}

/* Compare one detector's faces on every photo with the golden file's. */
static void check_parity(const facenet_model *m, const char *key, double box_tol) {
    assert_int_equal(golden_photo_count(&F.g), 6);
    double worst_px = 0, worst_score = 0, worst_iou = 1, total_ms = 0;
    int faces = 0;
    for (size_t p = 0; p < golden_photo_count(&F.g); p++) {
        const char *file = golden_photo_file(&F.g, p);
        facenet_image img;
        golden_load_photo(&F.g, p, &img);
        fn_face_box got[128];
        int n = -1;
        double t0 = now_ms();
        assert_int_equal(detect(m, &img, NULL, got, 128, &n), FACENET_OK);
        double ms = now_ms() - t0;
        total_ms += ms;
        const fn_json *want = fn_json_get(golden_photo(&F.g, p), key);
        assert_non_null(want);
        printf("  %s %s: %d faces (face-api %zu), %.0f ms\n", key, file, n, want->count, ms);
        if ((size_t)n != want->count)
            fail_msg("%s %s: %d faces, face-api found %zu", key, file, n, want->count);
        for (size_t f = 0; f < want->count; f++) {
            double g[4];
            golden_box(&want->items[f], "box", g);
            const double gs = golden_num(&want->items[f], "score");
            /* Same order (descending score) is expected, but match by overlap. */
            int best = -1;
            double best_iou = -1;
            for (int i = 0; i < n; i++) {
                double v = face_iou(&got[i], g);
                if (v > best_iou) best_iou = v, best = i;
            }
            if (best_iou < MIN_IOU)
                fail_msg("%s %s face %zu: best IoU with face-api's box is %.4f", key, file, f, best_iou);
            const fn_face_box *b = &got[best];
            const double d[4] = {fabs(b->x - g[0]), fabs(b->y - g[1]), fabs(b->w - g[2]), fabs(b->h - g[3])};
            for (int k = 0; k < 4; k++) worst_px = fmax(worst_px, d[k]);
            worst_score = fmax(worst_score, fabs(b->score - gs));
            worst_iou = fmin(worst_iou, best_iou);
            if (best != (int)f)
                printf("  note: %s %s face %zu came out at position %d\n", key, file, f, best);
            faces++;
        }
        facenet_image_free(&img);
    }
    printf("parity %s: %d faces; worst box difference (x, y, w, h) %.3g px, worst score difference %.3g, "
           "lowest IoU %.7f; %.0f ms per photo (%d threads)\n",
           key, faces, worst_px, worst_score, worst_iou, total_ms / 6, facenet_ctx_threads(F.ctx));
    if (worst_px > box_tol) fail_msg("%s: boxes differ by %.3g px > %g", key, worst_px, box_tol);
    if (worst_score > SCORE_TOL) fail_msg("%s: scores differ by %.3g > %g", key, worst_score, SCORE_TOL);
}

static void test_ssd_parity(void **state) {
    (void)state;
    check_parity(F.ssd, "ssd", SSD_BOX_TOL);
}

static void test_tiny_parity(void **state) {
    (void)state;
    check_parity(F.tiny, "tiny", TINY_BOX_TOL);
}

static void fill(facenet_image *img, int w, int h, int ch, uint8_t v) {
    assert_int_equal(facenet_image_alloc(F.ctx, w, h, ch, img), FACENET_OK);
    memset(img->data, v, (size_t)w * h * ch);
}

static void check_boxes_finite(const fn_face_box *b, int n) {
    for (int i = 0; i < n; i++) {
        assert_true(isfinite(b[i].x) && isfinite(b[i].y) && isfinite(b[i].w) && isfinite(b[i].h));
        assert_true(b[i].w >= 0 && b[i].h >= 0 && b[i].score > 0.5f && b[i].score <= 1.0f);
        if (i) assert_true(b[i].score <= b[i - 1].score);
    }
}

/* Odd shapes run without trouble on both detectors; a flat grey picture has
 * no face. */
static void test_odd_images(void **state) {
    (void)state;
    const facenet_model *models[2] = {F.ssd, F.tiny};
    for (int k = 0; k < 2; k++) {
        fn_face_box b[100];
        int n = -1;
        facenet_image img;
        fill(&img, 1, 1, 3, 200);
        assert_int_equal(detect(models[k], &img, NULL, b, 100, &n), FACENET_OK);
        check_boxes_finite(b, n);
        facenet_image_free(&img);

        fill(&img, 2000, 50, 3, 90);
        for (int x = 0; x < 2000; x++) img.data[(25 * 2000 + x) * 3] = (uint8_t)x; /* some structure */
        assert_int_equal(detect(models[k], &img, NULL, b, 100, &n), FACENET_OK);
        check_boxes_finite(b, n);
        facenet_image_free(&img);

        fill(&img, 50, 2000, 1, 30);
        assert_int_equal(detect(models[k], &img, NULL, b, 100, &n), FACENET_OK);
        check_boxes_finite(b, n);
        facenet_image_free(&img);

        fill(&img, 640, 480, 3, 128);
        assert_int_equal(detect(models[k], &img, NULL, b, 100, &n), FACENET_OK);
        assert_int_equal(n, 0);
        facenet_image_free(&img);
    }
}

/* A grey (1-channel) photo detects exactly like the same photo with three
 * equal channels. */
static void test_grey_photo(void **state) {
    (void)state;
    facenet_image rgb, grey, rgb3;
    golden_load_photo(&F.g, 0, &rgb);
    assert_int_equal(facenet_image_alloc(F.ctx, rgb.width, rgb.height, 1, &grey), FACENET_OK);
    assert_int_equal(facenet_image_alloc(F.ctx, rgb.width, rgb.height, 3, &rgb3), FACENET_OK);
    for (size_t i = 0; i < (size_t)rgb.width * rgb.height; i++) {
        const uint8_t *p = rgb.data + 3 * i;
        grey.data[i] = (uint8_t)((299 * p[0] + 587 * p[1] + 114 * p[2] + 500) / 1000);
        rgb3.data[3 * i] = rgb3.data[3 * i + 1] = rgb3.data[3 * i + 2] = grey.data[i];
    }
    const facenet_model *models[2] = {F.ssd, F.tiny};
    for (int k = 0; k < 2; k++) {
        fn_face_box a[100], b[100];
        int na = -1, nb = -1;
        assert_int_equal(detect(models[k], &grey, NULL, a, 100, &na), FACENET_OK);
        assert_int_equal(detect(models[k], &rgb3, NULL, b, 100, &nb), FACENET_OK);
        printf("  grey sample1.jpg: %d faces (%s)\n", na, k ? "tiny" : "ssd");
        assert_true(na > 0);
        assert_int_equal(na, nb);
        assert_memory_equal(a, b, sizeof(fn_face_box) * (size_t)na);
    }
    facenet_image_free(&rgb);
    facenet_image_free(&grey);
    facenet_image_free(&rgb3);
}

/* cap, max_results, min_score and the tiny input size do what they say;
 * bad arguments are refused. */
static void test_options(void **state) {
    (void)state;
    facenet_image img;
    golden_load_photo(&F.g, 4, &img); /* five faces */
    fn_face_box all[100], b[100];
    int n_all = -1, n = -1;
    fn_detect_opts o = fn_detect_default_opts(F.ssd);
    assert_true(o.min_score == 0.5f && o.max_results == 100 && o.iou == 0.5f);
    assert_int_equal(detect(F.ssd, &img, &o, all, 100, &n_all), FACENET_OK);
    assert_int_equal(n_all, 5);
    /* A smaller cap gives the best boxes. */
    assert_int_equal(detect(F.ssd, &img, &o, b, 2, &n), FACENET_OK);
    assert_int_equal(n, 2);
    assert_memory_equal(b, all, 2 * sizeof *b);
    o.max_results = 3;
    assert_int_equal(detect(F.ssd, &img, &o, b, 100, &n), FACENET_OK);
    assert_int_equal(n, 3);
    /* cap 0 with no array: nothing written. */
    assert_int_equal(detect(F.ssd, &img, &o, NULL, 0, &n), FACENET_OK);
    assert_int_equal(n, 0);
    /* A higher threshold drops the weaker faces (scores 0.90 .. 0.99). */
    o = fn_detect_default_opts(F.ssd);
    o.min_score = 0.95f;
    assert_int_equal(detect(F.ssd, &img, &o, b, 100, &n), FACENET_OK);
    assert_int_equal(n, 2);

    o = fn_detect_default_opts(F.tiny);
    assert_true(o.iou == 0.4f && o.input_size == 416 && o.max_results <= 0);
    for (int size = 128; size <= 608; size += 160) {
        o.input_size = size;
        assert_int_equal(detect(F.tiny, &img, &o, b, 100, &n), FACENET_OK);
        check_boxes_finite(b, n);
        printf("  tiny at %d px: %d faces\n", size, n);
    }
    fn_error e;
    o.input_size = 100;
    fn_arena_reset(&F.arena);
    assert_int_equal(fn_detect(F.tiny, &F.ex, &img, &o, b, 100, &n, &e), FACENET_ERR_INVALID_ARGUMENT);
    facenet_image bad = img;
    bad.channels = 4;
    assert_int_equal(fn_detect(F.ssd, &F.ex, &bad, NULL, b, 100, &n, &e), FACENET_ERR_INVALID_ARGUMENT);
    bad = img;
    bad.width = 0;
    assert_int_equal(fn_detect(F.ssd, &F.ex, &bad, NULL, b, 100, &n, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_detect(F.ssd, &F.ex, NULL, NULL, b, 100, &n, &e), FACENET_ERR_INVALID_ARGUMENT);
    facenet_image_free(&img);
}

static int setup(void **state) {
    (void)state;
    facenet_ctx_params p = facenet_ctx_default_params();
    p.n_threads = 2;
    if (facenet_ctx_create(&p, &F.ctx) != FACENET_OK) return -1;
    const char *names[2] = {"ssd_mobilenetv1.safetensors", "tiny_face_detector.safetensors"};
    facenet_model **dst[2] = {&F.ssd, &F.tiny};
    for (int i = 0; i < 2; i++) {
        if (facenet_model_load(F.ctx, test_model_path(names[i]), dst[i]) != FACENET_OK) {
            fprintf(stderr, "%s\n", facenet_ctx_error(F.ctx));
            return -1;
        }
    }
    fn_exec_init(&F.ex, fn_backend_default(), F.ctx->pool, &F.arena);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    fn_exec_release(&F.ex);
    fn_arena_free(&F.arena);
    facenet_model_free(F.ssd);
    facenet_model_free(F.tiny);
    facenet_ctx_free(F.ctx);
    golden_close(&F.g);
    return 0;
}

int main(void) {
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_iou),
        cmocka_unit_test(test_nms),
        cmocka_unit_test(test_nms_zero_area_and_ties),
        cmocka_unit_test(test_ssd_decode),
        cmocka_unit_test(test_ssd_box_to_image),
    };
    int failed = cmocka_run_group_tests_name("detect_pieces", pure, NULL, NULL);
    if (failed) return 1;
    if (!test_model_path("ssd_mobilenetv1.safetensors") || !test_model_path("tiny_face_detector.safetensors"))
        return TEST_SKIP_CODE;
    if (golden_open(&F.g) != 0) return TEST_SKIP_CODE;
    const struct CMUnitTest with_models[] = {
        cmocka_unit_test(test_ssd_parity),
        cmocka_unit_test(test_tiny_parity),
        cmocka_unit_test(test_odd_images),
        cmocka_unit_test(test_grey_photo),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests_name("detect_models", with_models, setup, teardown) ? 1 : 0;
}
