/*
 * test_align.c - the two alignment modes.
 *
 *   face-api mode: fed face-api's own landmarks, fn_align_faceapi_* give
 *     face-api's align_rect and descriptor_rect for all 22 golden faces
 *     (needs only the golden file).
 *   similarity mode: the Umeyama fit recovers known transforms and refuses
 *     degenerate input; the template framing is dlib's; the warp copies pixels
 *     exactly under identity and 90-degree maps and is black outside.
 *   rotation robustness: a demo face rotated by +-20 degrees, re-landmarked
 *     on a box derived from the golden one, gives nearly the same similarity
 *     chip as the upright face, while face-api's crop stays rotated (needs the
 *     landmark model and the photos; the embedding model adds distances).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "align/align.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "golden.h"
#include "image/image.h"
#include "landmarks/landmarks.h"
#include "testutil.h"

#define N_PHOTOS 6
#define PI 3.14159265358979323846

typedef struct fixture {
    golden g;
    int have_photos; /* the demo photos and the landmark model are there */
} fixture;

static fixture F;

static void apply(const fn_affine *a, double x, double y, double *u, double *v) {
    *u = a->m[0] * x + a->m[1] * y + a->m[2];
    *v = a->m[3] * x + a->m[4] * y + a->m[5];
}

/* ------------------------------------------------------------ face-api mode */

static void test_faceapi_rect_golden(void **state) {
    (void)state;
    int faces = 0, equal_box = 0, equal_exact = 0, equal_plain = 0;
    for (size_t p = 0; p < golden_photo_count(&F.g); p++) {
        const fn_json *ph = golden_photo(&F.g, p);
        const int W = (int)golden_num(ph, "width"), H = (int)golden_num(ph, "height");
        const fn_json *ssd = fn_json_get(ph, "ssd");
        for (size_t f = 0; f < ssd->count; f++) {
            const fn_json *face = &ssd->items[f];
            float pts[136];
            golden_floats(face, "landmarks", pts, 136);
            int lc[4], want_box[4], want[4], box[4], exact[4], plain[4];
            golden_rect(face, "landmark_rect", lc);
            golden_rect(face, "align_rect", want_box);
            golden_rect(face, "descriptor_rect", want);
            fn_align_faceapi_box(pts, lc[2], lc[3], box);
            fn_align_faceapi_rect_crop(pts, lc[2], lc[3], W, H, exact);
            fn_align_faceapi_rect(pts, W, H, plain);
            equal_box += memcmp(box, want_box, sizeof box) == 0;
            equal_exact += memcmp(exact, want, sizeof exact) == 0;
            equal_plain += memcmp(plain, want, sizeof plain) == 0;
            if (memcmp(exact, want, sizeof exact) != 0)
                fail_msg("sample%zu face %zu: rect %d,%d %dx%d, face-api's %d,%d %dx%d", p + 1, f, exact[0],
                         exact[1], exact[2], exact[3], want[0], want[1], want[2], want[3]);
            faces++;
        }
    }
    printf("face-api rects from face-api's landmarks: align_rect %d/%d, descriptor_rect %d/%d "
           "(without the crop: %d/%d) equal\n",
           equal_box, faces, equal_exact, faces, equal_plain, faces);
    assert_int_equal(faces, 22);
    assert_int_equal(equal_box, 22);
    assert_int_equal(equal_plain, 22);
}

/* The quirk that needs the landmark crop: a face at the left edge whose
 * square is wider than its crop is capped at crop_w + x. */
static void test_faceapi_rect_crop_cap(void **state) {
    (void)state;
    float pts[136] = {0};
    for (int i = 36; i <= 41; i++) pts[2 * i] = 20, pts[2 * i + 1] = 50;
    for (int i = 42; i <= 47; i++) pts[2 * i] = 60, pts[2 * i + 1] = 50;
    for (int i = 48; i <= 67; i++) pts[2 * i] = 40, pts[2 * i + 1] = 90;
    /* eye-to-mouth sqrt(20^2 + 40^2) = 44.72 -> size 99; centre (40, 63.3)
     * -> x = max(0, 40 - 49.5) = 0, y = floor(63.33 - 42.57) = 20. */
    int r[4];
    fn_align_faceapi_box(pts, 80, 60, r);
    assert_int_equal(r[0], 0);
    assert_int_equal(r[1], 20);
    assert_int_equal(r[2], 80); /* min(99, 80 + 0) */
    assert_int_equal(r[3], 80); /* min(99, 60 + 20) */
    fn_align_faceapi_rect(pts, 200, 200, r);
    assert_int_equal(r[2], 99);
    assert_int_equal(r[3], 99);
    /* Clipped at the image's right and bottom. */
    fn_align_faceapi_rect_crop(pts, 80, 60, 70, 90, r);
    assert_int_equal(r[2], 70);
    assert_int_equal(r[3], 70);
    /* Nonsense landmarks give an empty rect, not an overflow. */
    pts[2 * 36] = NAN;
    fn_align_faceapi_rect(pts, 200, 200, r);
    assert_int_equal(r[2], 0);
    assert_int_equal(r[3], 0);
}

/* ------------------------------------------------------------ the fit */

static void make_points(double *src, int n, uint64_t seed) {
    float f[2 * 128];
    test_fill_random(f, (size_t)2 * n, seed, -80.0f, 120.0f);
    for (int i = 0; i < 2 * n; i++) src[i] = f[i];
}

static void similarity(double th, double s, double tx, double ty, fn_affine *a) {
    a->m[0] = s * cos(th), a->m[1] = -s * sin(th), a->m[2] = tx;
    a->m[3] = s * sin(th), a->m[4] = s * cos(th), a->m[5] = ty;
}

static void test_fit_exact(void **state) {
    (void)state;
    double src[20], dst[20];
    fn_affine t, got;
    make_points(src, 10, 1);
    similarity(0.3, 1.7, 5, -3, &t);
    for (int i = 0; i < 10; i++) apply(&t, src[2 * i], src[2 * i + 1], &dst[2 * i], &dst[2 * i + 1]);
    assert_int_equal(fn_similarity_fit(src, dst, 10, &got), 0);
    for (int k = 0; k < 6; k++) assert_close(got.m[k], t.m[k], 1e-9);
    /* Two points determine a similarity. */
    assert_int_equal(fn_similarity_fit(src, dst, 2, &got), 0);
    for (int k = 0; k < 6; k++) assert_close(got.m[k], t.m[k], 1e-9);
    /* Large rotations too (the closed form has no branch cut trouble). */
    similarity(-2.9, 0.25, -100, 40, &t);
    for (int i = 0; i < 10; i++) apply(&t, src[2 * i], src[2 * i + 1], &dst[2 * i], &dst[2 * i + 1]);
    assert_int_equal(fn_similarity_fit(src, dst, 10, &got), 0);
    for (int k = 0; k < 6; k++) assert_close(got.m[k], t.m[k], 1e-9);
}

static void test_fit_noisy(void **state) {
    (void)state;
    enum { N = 60 };
    double src[2 * N], dst[2 * N];
    float noise[2 * N];
    fn_affine t, got;
    make_points(src, N, 7);
    test_fill_random(noise, 2 * N, 8, -0.5f, 0.5f);
    similarity(-0.35, 2.2, 310, 140, &t);
    for (int i = 0; i < N; i++) {
        apply(&t, src[2 * i], src[2 * i + 1], &dst[2 * i], &dst[2 * i + 1]);
        dst[2 * i] += noise[2 * i];
        dst[2 * i + 1] += noise[2 * i + 1];
    }
    assert_int_equal(fn_similarity_fit(src, dst, N, &got), 0);
    const double th = atan2(got.m[3], got.m[0]), s = hypot(got.m[0], got.m[3]);
    printf(
        "noisy fit (+-0.5 px on 60 points): angle off by %.2g rad, scale by %.2g%%, translation by %.2g px\n",
        fabs(th + 0.35), 100 * fabs(s / 2.2 - 1), hypot(got.m[2] - 310, got.m[5] - 140));
    assert_close(th, -0.35, 2e-3);
    assert_close(s, 2.2, 2.2 * 2e-3);
    assert_close(got.m[2], 310, 0.5);
    assert_close(got.m[5], 140, 0.5);
    /* It is a similarity: no shear, equal scales. */
    assert_close(got.m[0], got.m[4], 1e-12);
    assert_close(got.m[1], -got.m[3], 1e-12);
}

static void test_fit_no_reflection(void **state) {
    (void)state;
    double src[16], dst[16];
    fn_affine got;
    make_points(src, 8, 3);
    for (int i = 0; i < 8; i++) dst[2 * i] = -src[2 * i], dst[2 * i + 1] = src[2 * i + 1];
    /* A mirror image cannot be reached; the best proper fit has det > 0. */
    if (fn_similarity_fit(src, dst, 8, &got) == 0) assert_true(got.m[0] * got.m[4] - got.m[1] * got.m[3] > 0);
}

static void test_fit_degenerate(void **state) {
    (void)state;
    double src[10], dst[10], same[10];
    fn_affine got;
    make_points(src, 5, 4);
    make_points(dst, 5, 5);
    for (int i = 0; i < 5; i++) same[2 * i] = 12.5, same[2 * i + 1] = -3;
    assert_int_equal(fn_similarity_fit(src, dst, 1, &got), -1);
    assert_int_equal(fn_similarity_fit(src, dst, 0, &got), -1);
    assert_int_equal(fn_similarity_fit(src, dst, -3, &got), -1);
    assert_int_equal(fn_similarity_fit(same, dst, 5, &got), -1);
    assert_int_equal(fn_similarity_fit(src, same, 5, &got), -1);
    src[3] = NAN;
    assert_int_equal(fn_similarity_fit(src, dst, 5, &got), -1);
    src[3] = INFINITY;
    assert_int_equal(fn_similarity_fit(src, dst, 5, &got), -1);
}

static void test_affine_invert(void **state) {
    (void)state;
    fn_affine a = {{1.3, -0.4, 7, 0.2, 0.9, -11}}, inv, sing = {{1, 2, 0, 2, 4, 0}};
    assert_int_equal(fn_affine_invert(&a, &inv), 0);
    double u, v, x, y;
    apply(&a, 3.5, -8, &u, &v);
    apply(&inv, u, v, &x, &y);
    assert_close(x, 3.5, 1e-12);
    assert_close(y, -8, 1e-12);
    assert_int_equal(fn_affine_invert(&sing, &inv), -1);
}

static void test_affine_then(void **state) {
    (void)state;
    fn_affine a = {{1.3, -0.4, 7, 0.2, 0.9, -11}}, b = {{0.8, 0.3, -2, -0.5, 1.1, 4}}, ab;
    fn_affine_then(&a, &b, &ab);
    double u, v, x, y, p, q;
    apply(&a, 3.5, -8, &u, &v);
    apply(&b, u, v, &x, &y);
    apply(&ab, 3.5, -8, &p, &q);
    assert_close(p, x, 1e-12);
    assert_close(q, y, 1e-12);
}

/* Each jitter is a similarity within dlib's ranges about the chip's centre,
 * the same in every call, and the sequence spans the ranges. */
static void test_jitter(void **state) {
    (void)state;
    const int size = 150;
    const double c = (size - 1) / 2.0, pi = 3.14159265358979323846;
    fn_affine j, again, other;
    fn_align_jitter(size, 0, &j);
    const fn_affine id = {{1, 0, 0, 0, 1, 0}};
    assert_memory_equal(&j, &id, sizeof j);
    double max_turn = 0, max_zoom = 0, max_shift = 0;
    for (int k = 1; k <= 200; k++) {
        fn_align_jitter(size, k, &j);
        fn_align_jitter(size, k, &again);
        fn_align_jitter(size, k + 1, &other);
        assert_memory_equal(&j, &again, sizeof j);
        assert_memory_not_equal(&j, &other, sizeof j);
        assert_close(j.m[0], j.m[4], 1e-12); /* rotation and uniform scale */
        assert_close(j.m[1], -j.m[3], 1e-12);
        const double scale = hypot(j.m[0], j.m[3]), turn = atan2(j.m[3], j.m[0]) * 180 / pi;
        const double zoom = 1 - 1 / scale;
        assert_true(fabs(turn) <= FN_JITTER_DEG + 1e-9);
        assert_true(zoom >= -1e-12 && zoom <= FN_JITTER_ZOOM + 1e-9);
        /* The chip point that lands on the centre: the shift. */
        fn_affine inv;
        assert_int_equal(fn_affine_invert(&j, &inv), 0);
        double x, y;
        apply(&inv, c, c, &x, &y);
        assert_true(fabs(x - c) <= FN_JITTER_SHIFT * size + 1e-9);
        assert_true(fabs(y - c) <= FN_JITTER_SHIFT * size + 1e-9);
        max_turn = fmax(max_turn, fabs(turn));
        max_zoom = fmax(max_zoom, zoom);
        max_shift = fmax(max_shift, fmax(fabs(x - c), fabs(y - c)) / size);
    }
    assert_true(max_turn > 0.8 * FN_JITTER_DEG);
    assert_true(max_zoom > 0.8 * FN_JITTER_ZOOM);
    assert_true(max_shift > 0.8 * FN_JITTER_SHIFT);
}

/* ------------------------------------------------------------ template */

static void test_point_table(void **state) {
    (void)state;
    double x, y;
    assert_int_equal(fn_align_n_points, 33);
    int seen[68] = {0};
    for (int k = 0; k < fn_align_n_points; k++) {
        const int i = fn_align_points[k];
        assert_int_equal(fn_align_template(i, &x, &y), 0);
        assert_int_equal(seen[i]++, 0);
        /* dlib leaves out the eyebrows and the lower lip. */
        assert_false(i <= 26 || (i >= 55 && i <= 59) || i >= 65);
    }
    assert_int_equal(fn_align_template(16, &x, &y), -1);
    assert_int_equal(fn_align_template(68, &x, &y), -1);
    /* A few of dlib's numbers: nose tip, outer eye corners, mouth corners. */
    assert_int_equal(fn_align_template(30, &x, &y), 0);
    assert_close(x, 0.490127, 0);
    assert_close(y, 0.515625, 0);
    assert_int_equal(fn_align_template(36, &x, &y), 0);
    assert_close(x, 0.121737, 0);
    assert_int_equal(fn_align_template(45, &x, &y), 0);
    assert_close(x, 0.858516, 0);
    assert_int_equal(fn_align_template(54, &x, &y), 0);
    assert_close(y, 0.780233, 0);
}

/* Landmarks that are exactly the template under a known similarity map to
 * where dlib's extract_image_chip puts them: chip point t sits at
 * (size-1)/2 + (t - size/2) * (size-1) * s / (size * s - 1). */
static void test_template_framing(void **state) {
    (void)state;
    const int size = 150;
    const double pad = FN_ALIGN_PADDING, s = 2.0, th = 0.2;
    fn_affine chip_to_img;
    similarity(th, s, 300, 200, &chip_to_img);
    float pts[136] = {0};
    double chip[136];
    for (int i = 17; i < 68; i++) {
        double tx, ty;
        assert_int_equal(fn_align_template(i, &tx, &ty), 0);
        chip[2 * i] = (pad + tx) / (2 * pad + 1) * size;
        chip[2 * i + 1] = (pad + ty) / (2 * pad + 1) * size;
        double x, y;
        apply(&chip_to_img, chip[2 * i], chip[2 * i + 1], &x, &y);
        pts[2 * i] = (float)x, pts[2 * i + 1] = (float)y;
    }
    fn_affine a;
    assert_int_equal(fn_align_similarity_transform(pts, size, pad, &a), 0);
    const double k = (size - 1) * s / (size * s - 1);
    for (int i = 17; i < 68; i++) {
        double u, v;
        apply(&a, pts[2 * i], pts[2 * i + 1], &u, &v);
        assert_close(u, (size - 1) / 2.0 + (chip[2 * i] - size / 2.0) * k, 1e-4);
        assert_close(v, (size - 1) / 2.0 + (chip[2 * i + 1] - size / 2.0) * k, 1e-4);
    }
    /* The chip undoes the rotation. */
    assert_close(atan2(a.m[3], a.m[0]), -th, 1e-6); /* float landmarks */
    /* A custom point set (eye corners, nose tip, mouth corners) frames an
     * exact template face identically. */
    const int few[] = {36, 39, 42, 45, 30, 48, 54};
    fn_affine b;
    assert_int_equal(fn_align_similarity_transform_points(pts, few, 7, size, pad, &b), 0);
    for (int j = 0; j < 6; j++) assert_close(b.m[j], a.m[j], 1e-6 * (1 + fabs(a.m[j])));
    /* Degenerate: all landmarks on one spot; bad sizes and indices. */
    float flat[136];
    for (int i = 0; i < 136; i++) flat[i] = 5.0f;
    assert_int_equal(fn_align_similarity_transform(flat, size, pad, &a), -1);
    assert_int_equal(fn_align_similarity_transform(pts, 1, pad, &a), -1);
    const int jaw[] = {3, 36, 45};
    assert_int_equal(fn_align_similarity_transform_points(pts, jaw, 3, size, pad, &a), -1);
}

/* ------------------------------------------------------------ the warp */

static void fill_image(facenet_image *img, int w, int h, int ch, uint64_t seed) {
    fn_error e;
    assert_int_equal(fn_image_alloc(w, h, ch, img, &e), FACENET_OK);
    float *f = malloc(sizeof(float) * (size_t)w * h * ch);
    test_fill_random(f, (size_t)w * h * ch, seed, 0.0f, 256.0f);
    for (size_t i = 0; i < (size_t)w * h * ch; i++) img->data[i] = (uint8_t)f[i];
    free(f);
}

static void test_warp_identity(void **state) {
    (void)state;
    for (int ch = 1; ch <= 3; ch += 2) {
        facenet_image img, out;
        fn_error e;
        fill_image(&img, 41, 41, ch, 11 + ch);
        const fn_affine id = {{1, 0, 0, 0, 1, 0}};
        assert_int_equal(fn_warp_affine(NULL, &img, &id, 41, &out, &e), FACENET_OK);
        assert_int_equal(out.channels, ch);
        assert_memory_equal(out.data, img.data, (size_t)41 * 41 * ch);
        facenet_image_free(&out);
        /* A smaller chip is the top-left corner. */
        assert_int_equal(fn_warp_affine(NULL, &img, &id, 10, &out, &e), FACENET_OK);
        for (int y = 0; y < 10; y++)
            assert_memory_equal(out.data + (size_t)y * 10 * ch, img.data + (size_t)y * 41 * ch,
                                (size_t)10 * ch);
        facenet_image_free(&out);
        facenet_image_free(&img);
    }
}

/* The warp written plainly: each chip pixel from the inverse map, the four
 * neighbours (black outside the image), bilinear weights in float, rounded
 * to nearest. The library's warp takes shortcuts (sixteen pixels at once
 * where the vector unit allows); its bytes must be these. */
static void plain_warp(const facenet_image *img, const fn_affine *inv, int size, uint8_t *out) {
    const int w = img->width, h = img->height, ch = img->channels;
    memset(out, 0, (size_t)size * size * ch);
    for (int v = 0; v < size; v++)
        for (int u = 0; u < size; u++) {
            const double sx = inv->m[0] * u + inv->m[1] * v + inv->m[2];
            const double sy = inv->m[3] * u + inv->m[4] * v + inv->m[5];
            if (!(sx > -1.0 && sy > -1.0 && sx < w && sy < h)) continue;
            const int x0 = (int)floor(sx), y0 = (int)floor(sy);
            const float fx = (float)(sx - floor(sx)), fy = (float)(sy - floor(sy));
            for (int c = 0; c < ch; c++) {
                float q[4];
                for (int k = 0; k < 4; k++) {
                    const int x = x0 + (k & 1), y = y0 + (k >> 1);
                    q[k] = x >= 0 && y >= 0 && x < w && y < h ? img->data[((size_t)y * w + x) * ch + c] : 0.0f;
                }
                const float top = q[0] + (q[1] - q[0]) * fx, bot = q[2] + (q[3] - q[2]) * fx;
                const float r = top + (bot - top) * fy + 0.5f;
                out[((size_t)v * size + u) * ch + c] = (uint8_t)(r < 0.0f ? 0.0f : (r > 255.0f ? 255.0f : r));
            }
        }
}

/* splitmix64's high half: reproducible draws for the random transforms. */
static uint32_t draw(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static void test_warp_plain(void **state) {
    (void)state;
    uint64_t rng = 77;
    for (int t = 0; t < 40; t++) {
        const int ch = t % 4 == 3 ? 1 : 3;
        const int w = 20 + (int)(draw(&rng) % 90), h = 20 + (int)(draw(&rng) % 90);
        const int size = 1 + (int)(draw(&rng) % 70);
        facenet_image img, out;
        fn_error e;
        fill_image(&img, w, h, ch, 100 + (uint64_t)t);
        /* Turned, scaled and shifted so that some chips lie inside, some
         * straddle the border and some miss the image. */
        const double a = (draw(&rng) % 3600) * 3.14159265358979323846 / 1800;
        const double k = 0.3 + (draw(&rng) % 300) / 100.0;
        const double tx = (double)(draw(&rng) % 200) - 80.0 + (draw(&rng) % 100) / 97.0;
        const double ty = (double)(draw(&rng) % 200) - 80.0 + (draw(&rng) % 100) / 89.0;
        const fn_affine m = {{k * cos(a), -k * sin(a), tx, k * sin(a), k * cos(a), ty}};
        fn_affine inv;
        assert_int_equal(fn_affine_invert(&m, &inv), 0);
        uint8_t *want = malloc((size_t)size * size * ch);
        assert_non_null(want);
        plain_warp(&img, &inv, size, want);
        assert_int_equal(fn_warp_affine(NULL, &img, &m, size, &out, &e), FACENET_OK);
        assert_memory_equal(out.data, want, (size_t)size * size * ch);
        free(want);
        facenet_image_free(&out);
        facenet_image_free(&img);
    }
    /* Large chips wholly inside, turned and scaled at random: every
     * sixteen-pixel run takes the fast path. A rounding that differs from
     * the plain warp's (a fused multiply-add on one side only) shows in
     * about one byte in a million, so these are 1.3 million bytes. */
    facenet_image img, out;
    fn_error e;
    fill_image(&img, 500, 400, 3, 9);
    uint8_t *want = malloc((size_t)150 * 150 * 3);
    assert_non_null(want);
    for (int t = 0; t < 20; t++) {
        const double a = (draw(&rng) % 600) * 3.14159265358979323846 / 1800 - 0.5;
        const double k = 0.6 + (draw(&rng) % 400) / 1000.0;
        /* The image's (250, 200) onto the chip's centre (75, 75): the chip
         * covers at most 354 px of the image across, inside its 400. */
        const double c = k * cos(a), sn = k * sin(a);
        const fn_affine m = {{c, -sn, 75 - (c * 250 - sn * 200) + (draw(&rng) % 100) / 101.0, sn, c,
                              75 - (sn * 250 + c * 200) + (draw(&rng) % 100) / 103.0}};
        fn_affine inv;
        assert_int_equal(fn_affine_invert(&m, &inv), 0);
        plain_warp(&img, &inv, 150, want);
        assert_int_equal(fn_warp_affine(NULL, &img, &m, 150, &out, &e), FACENET_OK);
        assert_memory_equal(out.data, want, (size_t)150 * 150 * 3);
        facenet_image_free(&out);
    }
    free(want);
    facenet_image_free(&img);
}

/* Rows shared out over two threads give the serial chip, byte for byte, on
 * both backends (the oneDNN one runs the rows on its OpenMP team). */
static void test_warp_threads(void **state) {
    (void)state;
    fn_pool *pool = fn_pool_create(2);
    assert_non_null(pool);
    const fn_backend *backends[2] = {&fn_backend_ref, fn_backend_default()};
    for (int b = 0; b < 2; b++)
        for (int ch = 1; ch <= 3; ch += 2) {
            facenet_image img, serial, threaded;
            fn_error e;
            fill_image(&img, 97, 83, ch, 5 + ch);
            /* 17 degrees, scale 1.3, shifted so that part of the chip falls outside. */
            const double a = 17 * 3.14159265358979323846 / 180, k = 1.3;
            const fn_affine m = {{k * cos(a), -k * sin(a), -20.5, k * sin(a), k * cos(a), 3.25}};
            fn_arena arena = {0};
            fn_exec ex;
            fn_exec_init(&ex, backends[b], pool, &arena);
            assert_int_equal(fn_warp_affine(NULL, &img, &m, 131, &serial, &e), FACENET_OK);
            assert_int_equal(fn_warp_affine(&ex, &img, &m, 131, &threaded, &e), FACENET_OK);
            assert_memory_equal(threaded.data, serial.data, (size_t)131 * 131 * ch);
            facenet_image_free(&serial);
            facenet_image_free(&threaded);
            facenet_image_free(&img);
            fn_exec_release(&ex);
            fn_arena_free(&arena);
        }
    fn_pool_free(pool);
}

static void test_warp_rot90(void **state) {
    (void)state;
    for (int n = 40; n <= 41; n++) {
        facenet_image img, out;
        fn_error e;
        fill_image(&img, n, n, 3, (uint64_t)n);
        /* 90 degrees about the centre c: (u, v) = (c - (y - c), c + (x - c)). */
        const double c = (n - 1) / 2.0;
        const fn_affine rot = {{0, -1, 2 * c, 1, 0, 0}};
        assert_int_equal(fn_warp_affine(NULL, &img, &rot, n, &out, &e), FACENET_OK);
        for (int y = 0; y < n; y++)
            for (int x = 0; x < n; x++) {
                const int u = n - 1 - y, v = x;
                assert_memory_equal(out.data + ((size_t)v * n + u) * 3, img.data + ((size_t)y * n + x) * 3,
                                    3);
            }
        facenet_image_free(&out);
        facenet_image_free(&img);
    }
}

static void test_warp_outside_black(void **state) {
    (void)state;
    facenet_image img, out;
    fn_error e;
    fill_image(&img, 30, 30, 3, 21);
    for (size_t i = 0; i < (size_t)30 * 30 * 3; i++) img.data[i] |= 1; /* no black pixel inside */
    /* Shift right by 10: chip columns 0..9 see x = -10..-1, outside. */
    const fn_affine shift = {{1, 0, 10, 0, 1, 0}};
    assert_int_equal(fn_warp_affine(NULL, &img, &shift, 30, &out, &e), FACENET_OK);
    for (int v = 0; v < 30; v++)
        for (int u = 0; u < 30; u++)
            for (int c = 0; c < 3; c++) {
                const uint8_t got = out.data[((size_t)v * 30 + u) * 3 + c];
                if (u < 10)
                    assert_int_equal(got, 0);
                else
                    assert_int_equal(got, img.data[((size_t)v * 30 + u - 10) * 3 + c]);
            }
    facenet_image_free(&out);
    /* Far away: all black. */
    const fn_affine away = {{1, 0, -1e6, 0, 1, 3e9}};
    assert_int_equal(fn_warp_affine(NULL, &img, &away, 16, &out, &e), FACENET_OK);
    for (size_t i = 0; i < (size_t)16 * 16 * 3; i++) assert_int_equal(out.data[i], 0);
    facenet_image_free(&out);
    /* Half a pixel off the left edge: half the edge pixel, half black. */
    const fn_affine half = {{1, 0, 0.5, 0, 1, 0}};
    assert_int_equal(fn_warp_affine(NULL, &img, &half, 30, &out, &e), FACENET_OK);
    assert_int_equal(out.data[0], (img.data[0] + 1) / 2);
    assert_int_equal(out.data[3], (img.data[0] + img.data[3] + 1) / 2);
    facenet_image_free(&out);
    facenet_image_free(&img);
}

static void test_warp_errors(void **state) {
    (void)state;
    facenet_image img, out;
    fn_error e;
    fill_image(&img, 8, 8, 3, 5);
    const fn_affine sing = {{1, 1, 0, 1, 1, 0}}, id = {{1, 0, 0, 0, 1, 0}};
    assert_int_equal(fn_warp_affine(NULL, &img, &sing, 8, &out, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_null(out.data);
    assert_int_equal(fn_warp_affine(NULL, &img, &id, 0, &out, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_warp_affine(NULL, &img, NULL, 8, &out, &e), FACENET_ERR_INVALID_ARGUMENT);
    facenet_image bad = {8, 8, 2, img.data};
    assert_int_equal(fn_warp_affine(NULL, &bad, &id, 8, &out, &e), FACENET_ERR_INVALID_ARGUMENT);
    facenet_image_free(&img);
}

/* ------------------------------------------------------------ rotation */

static double mean_abs_diff(const facenet_image *a, const facenet_image *b) {
    const size_t n = (size_t)a->width * a->height * a->channels;
    double s = 0;
    for (size_t i = 0; i < n; i++) s += abs((int)a->data[i] - (int)b->data[i]);
    return s / n;
}

static void similarity_chip(const facenet_image *img, const float pts[136], facenet_image *chip) {
    fn_affine a;
    fn_error e;
    assert_int_equal(fn_align_similarity_transform(pts, 150, FN_ALIGN_PADDING, &a), 0);
    assert_int_equal(fn_warp_affine(NULL, img, &a, 150, chip, &e), FACENET_OK);
}

/* face-api's crop of a face, as a plain crop (for embedding) and scaled to
 * 150x150 (for comparing pixels). */
static void faceapi_chip(const facenet_image *img, const float pts[136], facenet_image *crop,
                         facenet_image *chip) {
    int r[4];
    fn_error e;
    fn_align_faceapi_rect(pts, img->width, img->height, r);
    assert_true(r[2] > 0 && r[3] > 0);
    assert_int_equal(facenet_image_crop(NULL, img, r[0], r[1], r[2], r[3], crop), FACENET_OK);
    const double s = 150.0 / (r[2] > r[3] ? r[2] : r[3]);
    const fn_affine a = {{s, 0, -s * r[0], 0, s, -s * r[1]}};
    assert_int_equal(fn_warp_affine(NULL, img, &a, 150, chip, &e), FACENET_OK);
}

/* Landmarks of a face: the plain network, or with the upright pass. */
static void landmarks_of(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                         const fn_face_box *box, int upright, float pts[136]) {
    fn_error e;
    fn_arena_reset(ex->arena);
    facenet_status st = upright ? fn_landmarks_upright(m, ex, img, box, pts, &e)
                                : fn_landmarks(m, ex, img, box, FN_ORIGIN_CROP, pts, NULL, &e);
    if (st != FACENET_OK) fail_msg("landmarks: %s", e.msg);
}

typedef struct rot_stats {
    double pts, sim, worst_sim, oracle, fa, d_sim, d_fa;
    int runs, embedded;
} rot_stats;

/* The photo rotated by deg about the face's box centre, on a canvas three
 * faces wide with the face in the middle; rot maps the photo onto it. */
static void rotate_photo(const facenet_image *img, const fn_face_box *box, double deg, facenet_image *rimg,
                         fn_affine *rot) {
    fn_error e;
    const double th = deg * PI / 180, side = fmax(box->w, box->h);
    const int S = 2 * (int)ceil(1.5 * side);
    const double cx = box->x + box->w / 2.0, cy = box->y + box->h / 2.0, co = cos(th), si = sin(th);
    const fn_affine r = {{co, -si, S / 2.0 - (co * cx - si * cy), si, co, S / 2.0 - (si * cx + co * cy)}};
    *rot = r;
    assert_int_equal(fn_warp_affine(NULL, img, rot, S, rimg, &e), FACENET_OK);
}

/* One rotated face against the upright one (landmarks p0); variant 0 =
 * fn_landmarks, 1 = fn_landmarks_upright (p0 must come from the same). */
static void rotate_one(const facenet_model *lmk, facenet_session *sess, const fn_exec *ex,
                       const facenet_image *img, const fn_face_box *box, const float p0[136],
                       const facenet_image *rimg, const fn_affine *rot, int upright, int embed,
                       rot_stats *st) {
    float pr[136], ptrue[136];
    const int S = rimg->width;
    /* A detector would box the rotated face at the same place with about the
     * same size: the golden box, moved along. */
    const fn_face_box rbox = {(float)(S / 2.0 - box->w / 2.0), (float)(S / 2.0 - box->h / 2.0), box->w,
                              box->h, 1};
    landmarks_of(lmk, ex, rimg, &rbox, upright, pr);
    double dpts = 0;
    for (int i = 0; i < 68; i++) {
        double u, v;
        apply(rot, p0[2 * i], p0[2 * i + 1], &u, &v);
        ptrue[2 * i] = (float)u, ptrue[2 * i + 1] = (float)v;
        dpts += hypot(u - pr[2 * i], v - pr[2 * i + 1]);
    }
    facenet_image chip0, chip_r, chip_o, fa_crop0, fa0, fa_crop_r, fa_r;
    similarity_chip(img, p0, &chip0);
    similarity_chip(rimg, pr, &chip_r);
    similarity_chip(rimg, ptrue, &chip_o);
    faceapi_chip(img, p0, &fa_crop0, &fa0);
    faceapi_chip(rimg, pr, &fa_crop_r, &fa_r);
    const double d_sim = mean_abs_diff(&chip_r, &chip0);
    st->pts += dpts / 68;
    st->sim += d_sim;
    st->worst_sim = fmax(st->worst_sim, d_sim);
    st->oracle += mean_abs_diff(&chip_o, &chip0);
    st->fa += mean_abs_diff(&fa_r, &fa0);
    st->runs++;
    if (sess && embed) {
        /* Unit embeddings: similarity chips as is, face-api crops through
         * face-api's pad-and-resize. */
        float a[128], b[128];
        assert_int_equal(facenet_embed_chips(sess, &chip0, 1, a, 0), FACENET_OK);
        assert_int_equal(facenet_embed_chips(sess, &chip_r, 1, b, 0), FACENET_OK);
        st->d_sim += facenet_distance(a, b, 128);
        assert_int_equal(facenet_embed_chips(sess, &fa_crop0, 1, a, 0), FACENET_OK);
        assert_int_equal(facenet_embed_chips(sess, &fa_crop_r, 1, b, 0), FACENET_OK);
        st->d_fa += facenet_distance(a, b, 128);
        st->embedded++;
    }
    facenet_image_free(&chip0);
    facenet_image_free(&chip_r);
    facenet_image_free(&chip_o);
    facenet_image_free(&fa_crop0);
    facenet_image_free(&fa0);
    facenet_image_free(&fa_crop_r);
    facenet_image_free(&fa_r);
}

static void test_rotation_robustness(void **state) {
    (void)state;
    if (!F.have_photos) {
        printf("SKIP: rotation robustness needs the landmark model and the demo photos\n");
        skip();
    }
    facenet_ctx *ctx;
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 2;
    assert_int_equal(facenet_ctx_create(&cp, &ctx), FACENET_OK);
    facenet_model *lmk = NULL, *emb = NULL;
    facenet_session *sess = NULL;
    assert_int_equal(facenet_model_load(ctx, test_model_path("face_landmark_68.safetensors"), &lmk),
                     FACENET_OK);
    const char *ep = test_model_path("dlib_resnet29.safetensors");
    if (ep) {
        assert_int_equal(facenet_model_load(ctx, ep, &emb), FACENET_OK);
        assert_int_equal(facenet_session_create(ctx, emb, &sess), FACENET_OK);
    }
    fn_arena arena = {0};
    fn_exec ex;
    fn_exec_init(&ex, fn_backend_default(), ctx->pool, &arena);
    rot_stats st[2];
    memset(st, 0, sizeof st);
    for (size_t p = 0; p < golden_photo_count(&F.g); p++) {
        facenet_image img;
        golden_load_photo(&F.g, p, &img);
        const fn_json *ssd = fn_json_get(golden_photo(&F.g, p), "ssd");
        for (size_t f = 0; f < ssd->count; f++) {
            const fn_face_box box = golden_face_box(&ssd->items[f]);
            float p0[2][136];
            for (int v = 0; v < 2; v++) landmarks_of(lmk, &ex, &img, &box, v, p0[v]);
            for (int sign = -1; sign <= 1; sign += 2) {
                facenet_image rimg;
                fn_affine rot;
                rotate_photo(&img, &box, sign * 20.0, &rimg, &rot);
                for (int v = 0; v < 2; v++)
                    /* Embedding is slow: one face per photo, the upright
                     * landmarks, one direction. */
                    rotate_one(lmk, sess, &ex, &img, &box, p0[v], &rimg, &rot, v,
                               f == 0 && v == 1 && sign == 1, &st[v]);
                facenet_image_free(&rimg);
            }
        }
        facenet_image_free(&img);
    }
    for (int v = 0; v < 2; v++) {
        const rot_stats *s = &st[v];
        printf("rotation +-20 deg, %d faces x 2, %s:\n"
               "  landmarks move %.2f px (mean) from the upright face's, rotated;\n"
               "  chip mean |rotated - upright| per channel: similarity %.2f grey levels (worst face %.2f; "
               "%.2f with exactly rotated landmarks), face-api crop %.2f\n",
               s->runs / 2, v ? "fn_landmarks_upright" : "fn_landmarks", s->pts / s->runs, s->sim / s->runs,
               s->worst_sim, s->oracle / s->runs, s->fa / s->runs);
        if (s->embedded)
            printf("  embedding distance rotated vs upright (unit vectors, %d faces): similarity %.3f, "
                   "face-api crop %.3f\n",
                   s->embedded, s->d_sim / s->embedded, s->d_fa / s->embedded);
        assert_int_equal(s->runs, 44);
        /* Rotation is what the similarity alignment is for: its chips must
         * move much less than face-api's axis-aligned crops. */
        assert_true(s->sim < s->fa / 2);
    }
    /* Observed 1.45 (plain network: 12.0; exact landmarks: 0.41). */
    assert_true(st[1].sim / st[1].runs < 4.0);
    fn_exec_release(&ex);
    fn_arena_free(&arena);
    facenet_session_free(sess);
    facenet_model_free(emb);
    facenet_model_free(lmk);
    facenet_ctx_free(ctx);
}

static int setup(void **state) {
    (void)state;
    golden_load(&F.g);
    return golden_photo_count(&F.g) == N_PHOTOS ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    golden_close(&F.g);
    return 0;
}

int main(void) {
    /* The golden file is loaded in setup, the photos only looked for here:
     * without them the tests that need only face-api's numbers still run. */
    F.have_photos = golden_find_photos(&F.g) == 0 && test_model_path("face_landmark_68.safetensors");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_faceapi_rect_golden),
        cmocka_unit_test(test_faceapi_rect_crop_cap),
        cmocka_unit_test(test_fit_exact),
        cmocka_unit_test(test_fit_noisy),
        cmocka_unit_test(test_fit_no_reflection),
        cmocka_unit_test(test_fit_degenerate),
        cmocka_unit_test(test_affine_invert),
        cmocka_unit_test(test_affine_then),
        cmocka_unit_test(test_jitter),
        cmocka_unit_test(test_point_table),
        cmocka_unit_test(test_template_framing),
        cmocka_unit_test(test_warp_identity),
        cmocka_unit_test(test_warp_plain),
        cmocka_unit_test(test_warp_rot90),
        cmocka_unit_test(test_warp_threads),
        cmocka_unit_test(test_warp_outside_black),
        cmocka_unit_test(test_warp_errors),
        cmocka_unit_test(test_rotation_robustness),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
