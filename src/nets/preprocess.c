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

static void prep_rows(void *vp, int begin, int end) {
    const prep_job *j = vp;
    const float sy = (float)j->side / (float)j->size;
    for (int oy = begin; oy < end; oy++) {
        const float fy = (float)oy * sy;
        const int y0 = (int)floorf(fy);
        const int y1 = (int)ceilf(fy) < j->side - 1 ? (int)ceilf(fy) : j->side - 1;
        const float dy = fy - (float)y0;
        float *o = j->dst + (size_t)oy * j->size * 3;
        for (int ox = 0; ox < j->size; ox++, o += 3) {
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
