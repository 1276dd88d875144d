/*
 * preprocess.c - face-api's toBatchTensor and per-network normalisation.
 *
 * face-api pads the image to a square with black, then resizes the square
 * with TF's legacy bilinear resize. Done literally, that materialises the
 * padded square as floats first: 44 MB for a 1920 px photo, written and
 * read once, only for the resize to sample 512 x 512 points of it. Here the
 * resize reads the 8-bit pixels directly: a sample that falls in the
 * padding reads 0, exactly what the padded square holds there, and every
 * other sample reads the pixel the square would hold, converted to float as
 * the square would have it. The arithmetic is fn_resize_bilinear_legacy's,
 * in its order, so the result is the same to the bit (tests/unit/
 * test_preprocess.c checks that against the literal pad + resize): 2.3 ms
 * for a 1920 x 1280 photo to 512 x 512 on one core, against 24 ms for the
 * literal recipe. The rows are shared out with fn_parallel_for, which with
 * the oneDNN backend runs them on the same OpenMP team as the networks (so
 * no second set of threads competes for the cores); each output row is
 * computed alone, so the split does not change a bit.
 */
#include <math.h>
#include <string.h>
#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "nets/preprocess.h"

typedef struct prep_job {
    const uint8_t *px; /* the region's first pixel */
    size_t stride;     /* bytes per image row */
    int channels;      /* 1 or 3 */
    int w, h;          /* the region */
    int top, left;     /* where the region sits in the padded square */
    int side, size;
    const int *x0, *x1; /* per output column: the square's columns, and */
    const float *dx;    /* the weight of x1 */
    const fn_norm *norm;
    float *dst;
} prep_job;

/* The square's pixel (sy, sx) as floats (0 in the padding). */
static inline void sample(const prep_job *j, int sy, int sx, float v[3]) {
    const int y = sy - j->top, x = sx - j->left;
    if (y < 0 || y >= j->h || x < 0 || x >= j->w) {
        v[0] = v[1] = v[2] = 0.0f;
        return;
    }
    const uint8_t *p = j->px + (size_t)y * j->stride + (size_t)x * j->channels;
    if (j->channels == 3) {
        v[0] = (float)p[0], v[1] = (float)p[1], v[2] = (float)p[2];
    } else {
        v[0] = v[1] = v[2] = (float)p[0];
    }
}

#if defined(__AVX512F__)
/* Output pixels ox .. ox+15 of a row whose two source rows y0, y1 (of the
 * square) lie inside the RGB region, with the scalar path's operations in
 * its order (so the same bits): each tap is a 32-bit gather of the pixel and
 * the byte after it. Only when every column lies inside the region with a
 * byte to spare after the bottom-right tap; returns 0 and writes nothing
 * otherwise. */
static int prep16_rgb(const prep_job *j, int y0, int y1, float dy, int ox, float *o) {
    const __m512i x0 = _mm512_sub_epi32(_mm512_loadu_si512(j->x0 + ox), _mm512_set1_epi32(j->left));
    const __m512i x1 = _mm512_sub_epi32(_mm512_loadu_si512(j->x1 + ox), _mm512_set1_epi32(j->left));
    /* Inside: 0 <= x0 and x1 < w, and a spare byte after (y1, x1): x1 < w - 1,
     * or another row after y1. */
    const int last = y1 - j->top < j->h - 1 ? j->w : j->w - 1;
    if (_mm512_cmplt_epi32_mask(x0, _mm512_setzero_si512()) || _mm512_cmpge_epi32_mask(x1, _mm512_set1_epi32(last)))
        return 0;
    const int r0 = (int)((size_t)(y0 - j->top) * j->stride), r1 = (int)((size_t)(y1 - j->top) * j->stride);
    const __m512i c0 = _mm512_mullo_epi32(x0, _mm512_set1_epi32(3)), c1 = _mm512_mullo_epi32(x1, _mm512_set1_epi32(3));
    const __m512i g[4] = {
        _mm512_i32gather_epi32(_mm512_add_epi32(c0, _mm512_set1_epi32(r0)), (const void *)j->px, 1),
        _mm512_i32gather_epi32(_mm512_add_epi32(c1, _mm512_set1_epi32(r0)), (const void *)j->px, 1),
        _mm512_i32gather_epi32(_mm512_add_epi32(c0, _mm512_set1_epi32(r1)), (const void *)j->px, 1),
        _mm512_i32gather_epi32(_mm512_add_epi32(c1, _mm512_set1_epi32(r1)), (const void *)j->px, 1)};
    const __m512 dx = _mm512_loadu_ps(j->dx + ox), dyv = _mm512_set1_ps(dy);
    const __m512i byte = _mm512_set1_epi32(0xff);
    float v[3][16];
    for (int c = 0; c < 3; c++) {
        __m512 q[4];
        for (int k = 0; k < 4; k++) q[k] = _mm512_cvtepi32_ps(_mm512_and_si512(_mm512_srli_epi32(g[k], 8 * c), byte));
        const __m512 top = _mm512_add_ps(q[0], _mm512_mul_ps(_mm512_sub_ps(q[1], q[0]), dx));
        const __m512 bot = _mm512_add_ps(q[2], _mm512_mul_ps(_mm512_sub_ps(q[3], q[2]), dx));
        const __m512 val = _mm512_add_ps(top, _mm512_mul_ps(_mm512_sub_ps(bot, top), dyv));
        _mm512_storeu_ps(v[c], _mm512_div_ps(_mm512_sub_ps(val, _mm512_set1_ps(j->norm->mean[c])),
                                             _mm512_set1_ps(j->norm->div)));
    }
    for (int k = 0; k < 16; k++) o[3 * k] = v[0][k], o[3 * k + 1] = v[1][k], o[3 * k + 2] = v[2][k];
    return 1;
}
#endif

static void prep_rows(void *vp, int begin, int end) {
    const prep_job *j = vp;
    const float sy = (float)j->side / (float)j->size;
#if defined(__AVX512F__)
    /* Gathers take int offsets. */
    const int wide = j->channels == 3 && j->stride * (size_t)j->h < (size_t)1 << 30;
#endif
    for (int oy = begin; oy < end; oy++) {
        const float fy = (float)oy * sy;
        const int y0 = (int)floorf(fy);
        const int y1 = (int)ceilf(fy) < j->side - 1 ? (int)ceilf(fy) : j->side - 1;
        const float dy = fy - (float)y0;
        float *o = j->dst + (size_t)oy * j->size * 3;
#if defined(__AVX512F__)
        const int rows_in = wide && y0 >= j->top && y1 < j->top + j->h;
#endif
        for (int ox = 0; ox < j->size; ox++, o += 3) {
#if defined(__AVX512F__)
            if (rows_in && ox % 16 == 0 && ox + 16 <= j->size && prep16_rgb(j, y0, y1, dy, ox, o)) {
                ox += 15, o += 45;
                continue;
            }
#endif
            float tl[3], tr[3], bl[3], br[3];
            sample(j, y0, j->x0[ox], tl);
            sample(j, y0, j->x1[ox], tr);
            sample(j, y1, j->x0[ox], bl);
            sample(j, y1, j->x1[ox], br);
            const float dx = j->dx[ox];
            for (int c = 0; c < 3; c++) {
                const float top = tl[c] + (tr[c] - tl[c]) * dx;
                const float bot = bl[c] + (br[c] - bl[c]) * dx;
                const float v = top + (bot - top) * dy;
                o[c] = (v - j->norm->mean[c]) / j->norm->div;
            }
        }
    }
}

int fn_to_input_rect(const fn_exec *ex, const facenet_image *img, int rx, int ry, int rw, int rh, int size,
                     int center, const fn_norm *norm, float *dst) {
    if (rx < 0 || ry < 0 || rw <= 0 || rh <= 0 || rx > img->width - rw || ry > img->height - rh || size <= 0)
        return -1;
    const int side = rw > rh ? rw : rh;
    const int diff = side - (rw < rh ? rw : rh);
    /* JS Math.round(diff/2) goes after the image, the rest before it. */
    const int after = center ? (diff + 1) / 2 : diff;
    const int before = diff - after;
    /* The column table: two ints and a float per output column. */
    float *tab = fn_arena_floats(ex->arena, (size_t)size * 3);
    if (!tab) return -1;
    int *x0 = (int *)(void *)tab, *x1 = x0 + size;
    float *dx = tab + 2 * (size_t)size;
    _Static_assert(sizeof(int) == sizeof(float), "an int fits a float slot");
    const float sx = (float)side / (float)size;
    for (int ox = 0; ox < size; ox++) {
        const float fx = (float)ox * sx;
        x0[ox] = (int)floorf(fx);
        x1[ox] = (int)ceilf(fx) < side - 1 ? (int)ceilf(fx) : side - 1;
        dx[ox] = fx - (float)x0[ox];
    }
    prep_job j = {img->data + ((size_t)ry * img->width + rx) * img->channels,
                  (size_t)img->width * img->channels,
                  img->channels,
                  rw,
                  rh,
                  rh < rw ? before : 0,
                  rw < rh ? before : 0,
                  side,
                  size,
                  x0,
                  x1,
                  dx,
                  norm,
                  dst};
    fn_parallel_for(ex, size, 8, prep_rows, &j);
    return 0;
}

int fn_to_input(const fn_exec *ex, const facenet_image *img, int size, int center, const fn_norm *norm,
                float *dst) {
    return fn_to_input_rect(ex, img, 0, 0, img->width, img->height, size, center, norm, dst);
}

void fn_mirror_inputs(float *x, int nb, int size) {
    const size_t plane = (size_t)size * size * 3;
    for (int i = 0; i < nb; i++)
        for (int y = 0; y < size; y++) {
            const float *s = x + (size_t)i * plane + (size_t)y * size * 3;
            float *d = x + (size_t)(nb + i) * plane + (size_t)y * size * 3;
            for (int k = 0; k < size; k++) memcpy(d + (size_t)(size - 1 - k) * 3, s + (size_t)k * 3, 3 * sizeof(float));
        }
}

void fn_mirror_merge(const float *emb, int nb, int dim, int raw, float *out) {
    for (int i = 0; i < nb; i++)
        for (int k = 0; k < dim; k++)
            out[(size_t)i * dim + k] = 0.5f * (emb[(size_t)i * dim + k] + emb[(size_t)(nb + i) * dim + k]);
    if (!raw) fn_l2_normalize(out, nb, dim, 1e-12f);
}
