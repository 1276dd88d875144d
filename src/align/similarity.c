/*
 * similarity.c - the default alignment: a least-squares similarity transform
 * from the landmarks to dlib's mean face shape, then a bilinear warp into a
 * square chip framed like the chips dlib's ResNet was trained on.
 *
 * Framing follows dlib's get_face_chip_details(shape, 150, 0.25) and
 * extract_image_chip (docs/alignment.md gives the numbers' provenance):
 *   - template point k of the unit-square mean face sits at chip coordinate
 *     (padding + t_k) / (2 padding + 1) * size;
 *   - the similarity is fitted from the chip template to the image points
 *     (dlib's direction: the error is measured in image pixels);
 *   - dlib then samples the chip so that its corner pixels 0 and size-1 land
 *     on the corners of a rectangle size*scale - 1 wide centred on the image
 *     of chip point (size/2, size/2). That is the fit stretched by
 *     (size*scale - 1) / ((size - 1) * scale) about the chip centre and
 *     shifted half a pixel; we reproduce it so our chips match dlib's, not
 *     just its template.
 * The fit is Umeyama's least-squares similarity without reflection, which in
 * 2-D has a closed form (no SVD needed): for centred points s, d,
 *   a = sum(s.d), b = sum(s x d), c*cos = a/|s|^2, c*sin = b/|s|^2.
 *
 * The warp samples the source at the inverse map of each chip pixel, with
 * bilinear weights over the four neighbours; neighbours outside the image
 * count as black, so the image fades to black over one pixel at its edge and
 * an identity or 90-degree map copies pixels exactly.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "align/align.h"
#include "engine/engine.h"
#include "image/image.h"

/* dlib's mean face shape for the iBUG 68-point landmarks 17..67 in the unit
 * square (dlib/image_transforms/interpolation.h, get_face_chip_details:
 * mean_face_shape_x / mean_face_shape_y). The jaw (0..16) has no entry. */
#define TEMPLATE_FIRST 17
#define TEMPLATE_COUNT 51
static const double MEAN_FACE_X[TEMPLATE_COUNT] = {
    0.000213256, 0.0752622, 0.18113,  0.29077,  0.393397, 0.586856, 0.689483, 0.799124, 0.904991,
    0.98004,     0.490127,  0.490127, 0.490127, 0.490127, 0.36688,  0.426036, 0.490127, 0.554217,
    0.613373,    0.121737,  0.187122, 0.265825, 0.334606, 0.260918, 0.182743, 0.645647, 0.714428,
    0.793132,    0.858516,  0.79751,  0.719335, 0.254149, 0.340985, 0.428858, 0.490127, 0.551395,
    0.639268,    0.726104,  0.642159, 0.556721, 0.490127, 0.423532, 0.338094, 0.290379, 0.428096,
    0.490127,    0.552157,  0.689874, 0.553364, 0.490127, 0.42689};
static const double MEAN_FACE_Y[TEMPLATE_COUNT] = {
    0.106454, 0.038915, 0.0187482, 0.0344891, 0.0773906, 0.0773906, 0.0344891, 0.0187482, 0.038915,
    0.106454, 0.203352, 0.307009,  0.409805,  0.515625,  0.587326,  0.609345,  0.628106,  0.609345,
    0.587326, 0.216423, 0.178758,  0.179852,  0.231733,  0.245099,  0.244077,  0.231733,  0.179852,
    0.178758, 0.216423, 0.244077,  0.245099,  0.780233,  0.745405,  0.727388,  0.742578,  0.727388,
    0.745405, 0.780233, 0.864805,  0.902192,  0.909281,  0.902192,  0.864805,  0.784792,  0.778746,
    0.785343, 0.778746, 0.784792,  0.824182,  0.831803,  0.824182};

/* THE POINT SET: which landmarks the fit uses. dlib's own 68-point choice:
 * everything the template covers except the eyebrows (17-26, they move with
 * expression) and the lower lip (55-59, 65-67, it moves with the jaw). That
 * keeps the nose, both eyes, the mouth corners and the upper lip: 33 points.
 * docs/alignment.md discusses alternatives; the LFW evaluation may tune it. */
const int fn_align_points[] = {
    27, 28, 29, 30, 31, 32, 33, 34, 35,             /* nose bridge and base */
    36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47, /* eyes */
    48, 49, 50, 51, 52, 53, 54,                     /* outer mouth corners and upper lip */
    60, 61, 62, 63, 64,                             /* inner mouth corners and upper lip */
};
const int fn_align_n_points = (int)(sizeof fn_align_points / sizeof fn_align_points[0]);

#define MAX_POINTS 68

int fn_align_template(int i, double *x, double *y) {
    if (i < TEMPLATE_FIRST || i >= TEMPLATE_FIRST + TEMPLATE_COUNT) return -1;
    *x = MEAN_FACE_X[i - TEMPLATE_FIRST];
    *y = MEAN_FACE_Y[i - TEMPLATE_FIRST];
    return 0;
}

int fn_similarity_fit(const double *src, const double *dst, int n, fn_affine *out) {
    if (n < 2 || !src || !dst || !out) return -1;
    double msx = 0, msy = 0, mdx = 0, mdy = 0;
    for (int i = 0; i < n; i++) {
        if (!isfinite(src[2 * i]) || !isfinite(src[2 * i + 1]) || !isfinite(dst[2 * i]) ||
            !isfinite(dst[2 * i + 1]))
            return -1;
        msx += src[2 * i];
        msy += src[2 * i + 1];
        mdx += dst[2 * i];
        mdy += dst[2 * i + 1];
    }
    msx /= n, msy /= n, mdx /= n, mdy /= n;
    double ss = 0, sd = 0, a = 0, b = 0;
    for (int i = 0; i < n; i++) {
        const double sx = src[2 * i] - msx, sy = src[2 * i + 1] - msy;
        const double dx = dst[2 * i] - mdx, dy = dst[2 * i + 1] - mdy;
        ss += sx * sx + sy * sy;
        sd += dx * dx + dy * dy;
        a += sx * dx + sy * dy;
        b += sx * dy - sy * dx;
    }
    /* Spread relative to the points' magnitude: equal points that differ
     * only by rounding still count as equal. */
    const double eps = 1e-20;
    if (!(ss > eps * n * (1 + msx * msx + msy * msy)) || !(sd > eps * n * (1 + mdx * mdx + mdy * mdy)))
        return -1;
    /* c cos(theta), c sin(theta): the optimum over proper rotations. */
    const double p = a / ss, q = b / ss;
    if (!(p * p + q * q > 0)) return -1;
    out->m[0] = p;
    out->m[1] = -q;
    out->m[3] = q;
    out->m[4] = p;
    out->m[2] = mdx - (p * msx - q * msy);
    out->m[5] = mdy - (q * msx + p * msy);
    return 0;
}

int fn_affine_invert(const fn_affine *a, fn_affine *inv) {
    const double *m = a->m;
    const double det = m[0] * m[4] - m[1] * m[3];
    if (!isfinite(det) || fabs(det) < 1e-300) return -1;
    const double i0 = m[4] / det, i1 = -m[1] / det, i3 = -m[3] / det, i4 = m[0] / det;
    inv->m[0] = i0;
    inv->m[1] = i1;
    inv->m[3] = i3;
    inv->m[4] = i4;
    inv->m[2] = -(i0 * m[2] + i1 * m[5]);
    inv->m[5] = -(i3 * m[2] + i4 * m[5]);
    return 0;
}

void fn_affine_then(const fn_affine *first, const fn_affine *second, fn_affine *out) {
    const double *a = first->m, *b = second->m;
    fn_affine r;
    r.m[0] = b[0] * a[0] + b[1] * a[3];
    r.m[1] = b[0] * a[1] + b[1] * a[4];
    r.m[2] = b[0] * a[2] + b[1] * a[5] + b[2];
    r.m[3] = b[3] * a[0] + b[4] * a[3];
    r.m[4] = b[3] * a[1] + b[4] * a[4];
    r.m[5] = b[3] * a[2] + b[4] * a[5] + b[5];
    *out = r;
}

/* splitmix64: k's perturbation depends on k alone. */
static double jitter_uniform(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0); /* [0, 1) */
}

void fn_align_jitter(int size, int k, fn_affine *out) {
    const fn_affine id = {{1, 0, 0, 0, 1, 0}};
    *out = id;
    if (k <= 0) return;
    uint64_t s = (uint64_t)k;
    const double pi = 3.14159265358979323846;
    const double turn = (2 * jitter_uniform(&s) - 1) * FN_JITTER_DEG * pi / 180;
    /* The jittered chip shows a square of zoom x the side: closer in. */
    const double zoom = 1 - FN_JITTER_ZOOM * jitter_uniform(&s);
    const double tx = (2 * jitter_uniform(&s) - 1) * FN_JITTER_SHIFT * size;
    const double ty = (2 * jitter_uniform(&s) - 1) * FN_JITTER_SHIFT * size;
    /* p' = c + R(turn) (p - c - t) / zoom, c the chip's centre. */
    const double c = (size - 1) / 2.0, co = cos(turn) / zoom, si = sin(turn) / zoom;
    const double ox = -c - tx, oy = -c - ty;
    out->m[0] = co;
    out->m[1] = -si;
    out->m[2] = co * ox - si * oy + c;
    out->m[3] = si;
    out->m[4] = co;
    out->m[5] = si * ox + co * oy + c;
}

int fn_align_similarity_transform_points(const float pts[136], const int *idx, int n, int size,
                                         double padding, fn_affine *out) {
    if (!pts || !idx || !out || n < 2 || n > MAX_POINTS || size < 2 || !(padding >= 0) || !isfinite(padding))
        return -1;
    double chip[2 * MAX_POINTS], img[2 * MAX_POINTS];
    for (int k = 0; k < n; k++) {
        double tx, ty;
        if (fn_align_template(idx[k], &tx, &ty) != 0) return -1;
        chip[2 * k] = (padding + tx) / (2 * padding + 1) * size;
        chip[2 * k + 1] = (padding + ty) / (2 * padding + 1) * size;
        img[2 * k] = pts[2 * idx[k]];
        img[2 * k + 1] = pts[2 * idx[k] + 1];
    }
    fn_affine t; /* chip -> image, as dlib fits it */
    if (fn_similarity_fit(chip, img, n, &t) != 0) return -1;
    /* dlib's chip_details: angle and scale of the fit, and the image of the
     * chip's centre point (size/2, size/2). */
    const double cosv = t.m[0], sinv = t.m[3];
    const double scale = sqrt(cosv * cosv + sinv * sinv);
    const double cx = t.m[0] * size / 2.0 + t.m[1] * size / 2.0 + t.m[2];
    const double cy = t.m[3] * size / 2.0 + t.m[4] * size / 2.0 + t.m[5];
    /* extract_image_chip maps chip pixels 0..size-1 onto a rect size*scale-1
     * wide around (cx, cy): image = c + R * k * (q - (size-1)/2). */
    const double k = (size * scale - 1) / (size - 1);
    if (!(k > 0) || !isfinite(k)) return -1;
    /* Inverse: q = (size-1)/2 + R^T (p - c) / k. */
    const double rc = cosv / scale / k, rs = sinv / scale / k, half = (size - 1) / 2.0;
    out->m[0] = rc;
    out->m[1] = rs;
    out->m[3] = -rs;
    out->m[4] = rc;
    out->m[2] = half - (rc * cx + rs * cy);
    out->m[5] = half - (-rs * cx + rc * cy);
    return 0;
}

int fn_align_similarity_transform(const float pts[136], int size, double padding, fn_affine *out) {
    return fn_align_similarity_transform_points(pts, fn_align_points, fn_align_n_points, size, padding, out);
}

typedef struct warp_job {
    const facenet_image *img;
    fn_affine inv; /* chip -> image */
    int size;
    uint8_t *out;
} warp_job;

/* One chip pixel from the image point (sx, sy), which lies less than a
 * pixel outside the image at most. */
static inline void warp_pixel(const uint8_t *src, int w, int h, int ch, double sx, double sy, uint8_t *out) {
    const size_t stride = (size_t)w * ch;
    const double fx0 = floor(sx), fy0 = floor(sy);
    const int x0 = (int)fx0, y0 = (int)fy0;
    const float fx = (float)(sx - fx0), fy = (float)(sy - fy0);
    /* The four pixels, black where they fall outside the image (only along
     * its border). */
    float q[4][3]; /* tl, tr, bl, br */
    if (x0 >= 0 && y0 >= 0 && x0 + 1 < w && y0 + 1 < h) {
        const uint8_t *p0 = src + (size_t)y0 * stride + (size_t)x0 * ch, *p1 = p0 + stride;
        for (int c = 0; c < ch; c++) q[0][c] = p0[c], q[1][c] = p0[ch + c], q[2][c] = p1[c], q[3][c] = p1[ch + c];
    } else {
        for (int k = 0; k < 4; k++) {
            const int x = x0 + (k & 1), y = y0 + (k >> 1);
            const int in = x >= 0 && y >= 0 && x < w && y < h;
            for (int c = 0; c < ch; c++) q[k][c] = in ? src[(size_t)y * stride + (size_t)x * ch + c] : 0.0f;
        }
    }
    for (int c = 0; c < ch; c++) {
        const float tl = q[0][c], tr = q[1][c], bl = q[2][c], br = q[3][c];
        const float top = tl + (tr - tl) * fx, bot = bl + (br - bl) * fx;
        const float val = top + (bot - top) * fy;
        /* Round to nearest (dlib truncates; rounding is unbiased). */
        const float r = val + 0.5f;
        out[c] = (uint8_t)(r < 0.0f ? 0.0f : (r > 255.0f ? 255.0f : r));
    }
}

#if defined(__AVX512F__)
/* Sixteen RGB chip pixels (u0 .. u0+15 of row v) at once, with the scalar
 * path's operations in its order, so the bytes are the same (test_align
 * checks them against a plain warp): the coordinates in doubles, each tap
 * as a 32-bit gather of the pixel and the next byte. Only when all sixteen
 * are inside with a pixel to spare on the right (that fourth byte); returns
 * 0 and writes nothing otherwise. The scalar path costs about 20 ns a
 * pixel here, most of it in moving single bytes and floats around; this
 * about 3.5. */
static int warp16_rgb(const warp_job *j, int u0, int v, uint8_t *out) {
    const double *m = j->inv.m;
    const int w = j->img->width, h = j->img->height, stride = 3 * w;
    const __m512d ua = _mm512_add_pd(_mm512_set1_pd(u0), _mm512_set_pd(7, 6, 5, 4, 3, 2, 1, 0));
    const __m512d ub = _mm512_add_pd(ua, _mm512_set1_pd(8));
    const __m512d bx = _mm512_set1_pd(m[1] * v), by = _mm512_set1_pd(m[4] * v);
    const __m512d m0 = _mm512_set1_pd(m[0]), m2 = _mm512_set1_pd(m[2]), m3 = _mm512_set1_pd(m[3]),
                  m5 = _mm512_set1_pd(m[5]);
    const __m512d sx[2] = {_mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(m0, ua), bx), m2),
                           _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(m0, ub), bx), m2)};
    const __m512d sy[2] = {_mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(m3, ua), by), m5),
                           _mm512_add_pd(_mm512_add_pd(_mm512_mul_pd(m3, ub), by), m5)};
    __m512d fx0[2], fy0[2];
    for (int k = 0; k < 2; k++) {
        fx0[k] = _mm512_roundscale_pd(sx[k], _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        fy0[k] = _mm512_roundscale_pd(sy[k], _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
        /* 0 <= x0 < w - 2 and 0 <= y0 < h - 1 (false for NaN). */
        const __mmask8 in = _mm512_cmp_pd_mask(fx0[k], _mm512_setzero_pd(), _CMP_GE_OQ) &
                            _mm512_cmp_pd_mask(fx0[k], _mm512_set1_pd(w - 2), _CMP_LT_OQ) &
                            _mm512_cmp_pd_mask(fy0[k], _mm512_setzero_pd(), _CMP_GE_OQ) &
                            _mm512_cmp_pd_mask(fy0[k], _mm512_set1_pd(h - 1), _CMP_LT_OQ);
        if (in != 0xff) return 0;
    }
    const __m512 fx = _mm512_castpd_ps(_mm512_insertf64x4(
        _mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_sub_pd(sx[0], fx0[0])))),
        _mm256_castps_pd(_mm512_cvtpd_ps(_mm512_sub_pd(sx[1], fx0[1]))), 1));
    const __m512 fy = _mm512_castpd_ps(_mm512_insertf64x4(
        _mm512_castps_pd(_mm512_castps256_ps512(_mm512_cvtpd_ps(_mm512_sub_pd(sy[0], fy0[0])))),
        _mm256_castps_pd(_mm512_cvtpd_ps(_mm512_sub_pd(sy[1], fy0[1]))), 1));
    const __m512i x0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(fx0[0])),
                                          _mm512_cvttpd_epi32(fx0[1]), 1);
    const __m512i y0 = _mm512_inserti64x4(_mm512_castsi256_si512(_mm512_cvttpd_epi32(fy0[0])),
                                          _mm512_cvttpd_epi32(fy0[1]), 1);
    /* Byte offsets fit an int: the caller checked the image's size. */
    const __m512i off = _mm512_add_epi32(_mm512_mullo_epi32(y0, _mm512_set1_epi32(stride)),
                                         _mm512_mullo_epi32(x0, _mm512_set1_epi32(3)));
    const uint8_t *src = j->img->data;
    const __m512i g[4] = {_mm512_i32gather_epi32(off, (const void *)src, 1),
                          _mm512_i32gather_epi32(_mm512_add_epi32(off, _mm512_set1_epi32(3)), (const void *)src, 1),
                          _mm512_i32gather_epi32(_mm512_add_epi32(off, _mm512_set1_epi32(stride)), (const void *)src, 1),
                          _mm512_i32gather_epi32(_mm512_add_epi32(off, _mm512_set1_epi32(stride + 3)),
                                                 (const void *)src, 1)};
    const __m512i byte = _mm512_set1_epi32(0xff);
    __m512i rgb = _mm512_setzero_si512();
    for (int c = 0; c < 3; c++) {
        __m512 q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(g[k], 8 * c), byte));
        const __m512 top = _mm512_add_ps(q[0], _mm512_mul_ps(_mm512_sub_ps(q[1], q[0]), fx));
        const __m512 bot = _mm512_add_ps(q[2], _mm512_mul_ps(_mm512_sub_ps(q[3], q[2]), fx));
        __m512 r = _mm512_add_ps(_mm512_add_ps(top, _mm512_mul_ps(_mm512_sub_ps(bot, top), fy)), _mm512_set1_ps(0.5f));
        r = _mm512_min_ps(_mm512_max_ps(r, _mm512_setzero_ps()), _mm512_set1_ps(255.0f));
        rgb = _mm512_or_si512(rgb, _mm512_slli_epi32(_mm512_cvttps_epi32(r), 8 * c));
    }
    uint32_t px[16];
    _mm512_storeu_si512(px, rgb);
    for (int k = 0; k < 16; k++) memcpy(out + 3 * k, &px[k], 3);
    return 1;
}
#endif

/* Chip rows [begin, end). Every pixel's arithmetic depends on its own
 * coordinates only, so any split of the rows gives the same chip. The image
 * fields are read into locals once: the chip's bytes may alias anything, so
 * the compiler would otherwise reload them after every store. */
static void warp_rows(void *vp, int begin, int end) {
    const warp_job *j = vp;
    const fn_affine inv = j->inv;
    const uint8_t *const src = j->img->data;
    const int w = j->img->width, h = j->img->height, ch = j->img->channels, size = j->size;
#if defined(__AVX512F__)
    const int wide = ch == 3 && (size_t)w * h * 3 < (size_t)1 << 30;
#endif
    for (int v = begin; v < end; v++) {
        uint8_t *row = j->out + (size_t)v * size * ch;
        for (int u = 0; u < size; u++) {
#if defined(__AVX512F__)
            if (wide && u % 16 == 0 && u + 16 <= size && warp16_rgb(j, u, v, row + (size_t)u * 3)) {
                u += 15;
                continue;
            }
#endif
            const double sx = inv.m[0] * u + inv.m[1] * v + inv.m[2];
            const double sy = inv.m[3] * u + inv.m[4] * v + inv.m[5];
            /* Entirely outside (or not a number): black, and no int overflow. */
            if (!(sx > -1.0 && sy > -1.0 && sx < w && sy < h)) continue;
            if (ch == 3)
                warp_pixel(src, w, h, 3, sx, sy, row + (size_t)u * 3);
            else
                warp_pixel(src, w, h, 1, sx, sy, row + u);
        }
    }
}

facenet_status fn_warp_affine(const fn_exec *ex, const facenet_image *img, const fn_affine *img_to_chip, int size,
                              facenet_image *chip, fn_error *e) {
    if (!chip) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_warp_affine: no output image");
    memset(chip, 0, sizeof *chip);
    if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
        (img->channels != 1 && img->channels != 3))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "not an image: need 1 or 3 channels of 8-bit pixels");
    if (size < 1 || size > FACENET_MAX_IMAGE_SIDE)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "chip size %d is not in 1..%d", size,
                       FACENET_MAX_IMAGE_SIDE);
    warp_job j = {img, {{0}}, size, NULL};
    if (!img_to_chip || fn_affine_invert(img_to_chip, &j.inv) != 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "the alignment transform is singular");
    facenet_status st = fn_image_alloc(size, size, img->channels, chip, e);
    if (st != FACENET_OK) return st;
    j.out = chip->data;
    if (ex)
        fn_parallel_for(ex, size, 8, warp_rows, &j);
    else
        warp_rows(&j, 0, size);
    return FACENET_OK;
}
