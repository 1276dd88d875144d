/*
 * test_ops.c - the reference engine ops on small hand-computed cases, TF
 * padding edge cases, and the convolution against a second, naive
 * implementation that pads the input explicitly.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/pool.h"
#include "engine/engine.h"
#include "testutil.h"

static fn_exec exec1(void) {
    fn_exec ex = {.backend = &fn_backend_ref};
    return ex;
}

static void test_window_geometry(void **state) {
    (void)state;
    int o, p;
    /* SAME, stride 1: k-1 split evenly. */
    assert_int_equal(fn_window_out(5, 3, 1, FN_PAD_SAME, &o, &p), 0);
    assert_int_equal(o, 5);
    assert_int_equal(p, 1);
    /* SAME, stride 2, even input: 3x3 on 512 -> 256, pad 0 before and 1 after. */
    assert_int_equal(fn_window_out(512, 3, 2, FN_PAD_SAME, &o, &p), 0);
    assert_int_equal(o, 256);
    assert_int_equal(p, 0);
    /* SAME, stride 2, odd input: 3x3 on 5 -> 3, total pad 2 -> 1 before. */
    assert_int_equal(fn_window_out(5, 3, 2, FN_PAD_SAME, &o, &p), 0);
    assert_int_equal(o, 3);
    assert_int_equal(p, 1);
    /* SAME, 1x1 stride 2: no padding at all. */
    assert_int_equal(fn_window_out(7, 1, 2, FN_PAD_SAME, &o, &p), 0);
    assert_int_equal(o, 4);
    assert_int_equal(p, 0);
    /* SAME, 2x2 stride 2 on odd input (max pool in the tiny detector): 13 -> 7, pad after. */
    assert_int_equal(fn_window_out(13, 2, 2, FN_PAD_SAME, &o, &p), 0);
    assert_int_equal(o, 7);
    assert_int_equal(p, 0);
    /* VALID: floor((in-k)/s)+1; the ResNet's sizes. */
    assert_int_equal(fn_window_out(150, 7, 2, FN_PAD_VALID, &o, &p), 0);
    assert_int_equal(o, 72);
    assert_int_equal(fn_window_out(72, 3, 2, FN_PAD_VALID, &o, &p), 0);
    assert_int_equal(o, 35);
    assert_int_equal(fn_window_out(8, 3, 2, FN_PAD_VALID, &o, &p), 0);
    assert_int_equal(o, 3);
    assert_int_equal(fn_window_out(4, 3, 2, FN_PAD_VALID, &o, &p), 0);
    assert_int_equal(o, 1);
    /* VALID on an input smaller than the window is an error. */
    assert_int_equal(fn_window_out(2, 3, 1, FN_PAD_VALID, &o, &p), -1);
    assert_int_equal(fn_window_out(0, 1, 1, FN_PAD_SAME, &o, &p), -1);
}

/* 3x3 input 1..9, 3x3 kernel of ones, SAME stride 1: sums of neighbourhoods. */
static void test_conv_same_stride1(void **state) {
    (void)state;
    float x[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9}, w[9], y[9];
    for (int i = 0; i < 9; i++) w[i] = 1;
    fn_tensor tx = fn_tensor_make(1, 3, 3, 1, x), ty = fn_tensor_make(1, 3, 3, 1, y);
    fn_conv_desc d = {.kh = 3, .kw = 3, .stride = 1, .padding = FN_PAD_SAME, .cin = 1, .cout = 1, .weights = w};
    fn_exec ex = exec1();
    fn_conv2d(&ex, &tx, &d, &ty);
    const float want[9] = {12, 21, 16, 27, 45, 33, 24, 39, 28};
    for (int i = 0; i < 9; i++) assert_close(y[i], want[i], 0);
}

/* 4x4 input, 3x3 ones, SAME stride 2: output 2x2, pad 0 top/left, 1 bottom/right.
 * So output (0,0) sums rows 0-2, cols 0-2 and (1,1) sums rows 2-3, cols 2-3. */
static void test_conv_same_stride2_asymmetric(void **state) {
    (void)state;
    float x[16], w[9], y[4];
    for (int i = 0; i < 16; i++) x[i] = (float)(i + 1);
    for (int i = 0; i < 9; i++) w[i] = 1;
    fn_tensor tx = fn_tensor_make(1, 4, 4, 1, x), ty = fn_tensor_make(1, 2, 2, 1, y);
    fn_conv_desc d = {.kh = 3, .kw = 3, .stride = 2, .padding = FN_PAD_SAME, .cin = 1, .cout = 1, .weights = w};
    fn_exec ex = exec1();
    fn_conv2d(&ex, &tx, &d, &ty);
    /* rows 0-2 x cols 0-2: 1+2+3+5+6+7+9+10+11 = 54; cols 2-3: 3+4+7+8+11+12 = 45;
     * rows 2-3 x cols 0-2: 9+10+11+13+14+15 = 72; x cols 2-3: 11+12+15+16 = 54. */
    assert_close(y[0], 54, 0);
    assert_close(y[1], 45, 0);
    assert_close(y[2], 72, 0);
    assert_close(y[3], 54, 0);
}

/* Two input and two output channels, VALID stride 2, with bias, scale, shift, ReLU. */
static void test_conv_channels_epilogue(void **state) {
    (void)state;
    /* 3x3x2 input: channel 0 = 1..9, channel 1 = all 1. */
    float x[18];
    for (int i = 0; i < 9; i++) {
        x[i * 2] = (float)(i + 1);
        x[i * 2 + 1] = 1;
    }
    /* 2x2 kernel [kh][kw][cin][cout]: cout 0 = sum of channel 0, cout 1 = -sum of channel 1. */
    float w[2 * 2 * 2 * 2];
    for (int k = 0; k < 4; k++) {
        w[k * 4 + 0] = 1;  /* ci 0 -> co 0 */
        w[k * 4 + 1] = 0;  /* ci 0 -> co 1 */
        w[k * 4 + 2] = 0;  /* ci 1 -> co 0 */
        w[k * 4 + 3] = -1; /* ci 1 -> co 1 */
    }
    float bias[2] = {1, 1}, scale[2] = {2, 1}, shift[2] = {-30, 0}, y[8];
    fn_tensor tx = fn_tensor_make(1, 3, 3, 2, x), ty = fn_tensor_make(1, 2, 2, 2, y);
    fn_conv_desc d = {.kh = 2, .kw = 2, .stride = 1, .padding = FN_PAD_VALID, .cin = 2, .cout = 2,
                      .weights = w, .bias = bias, .scale = scale, .shift = shift, .act = FN_ACT_RELU};
    fn_exec ex = exec1();
    fn_conv2d(&ex, &tx, &d, &ty);
    /* window sums of channel 0: 12, 16, 24, 28 -> (s+1)*2-30 = -4 -> 0, 4, 20, 28.
     * channel 1: (-4+1)*1+0 = -3 -> ReLU 0. */
    const float want[8] = {0, 0, 4, 0, 20, 0, 28, 0};
    for (int i = 0; i < 8; i++) assert_close(y[i], want[i], 0);
}

static void test_depthwise(void **state) {
    (void)state;
    /* 3x3x2, depthwise 3x3 SAME: channel 0 kernel = centre 1 (identity),
     * channel 1 kernel = all ones (neighbourhood sums). */
    float x[18], w[18] = {0}, y[18];
    for (int i = 0; i < 9; i++) {
        x[i * 2] = (float)(i + 1);
        x[i * 2 + 1] = (float)(i + 1);
    }
    w[4 * 2 + 0] = 1;
    for (int k = 0; k < 9; k++) w[k * 2 + 1] = 1;
    fn_tensor tx = fn_tensor_make(1, 3, 3, 2, x), ty = fn_tensor_make(1, 3, 3, 2, y);
    fn_conv_desc d = {.kh = 3, .kw = 3, .stride = 1, .padding = FN_PAD_SAME, .cin = 2, .cout = 2,
                      .depthwise = 1, .weights = w, .act = FN_ACT_RELU6};
    fn_exec ex = exec1();
    fn_conv2d(&ex, &tx, &d, &ty);
    for (int i = 0; i < 9; i++) {
        assert_close(y[i * 2], fminf((float)(i + 1), 6), 0);
        assert_close(y[i * 2 + 1], 6, 0); /* every neighbourhood sum is above 6: clipped */
    }
}

static void test_activations(void **state) {
    (void)state;
    float v[5] = {-2, -0.5f, 0, 3, 7};
    fn_tensor t = fn_tensor_make(1, 1, 1, 5, v);
    fn_activate(&t, FN_ACT_LEAKY, 0.1f);
    const float leaky[5] = {-0.2f, -0.05f, 0, 3, 7};
    for (int i = 0; i < 5; i++) assert_close(v[i], leaky[i], 1e-7);
    fn_activate(&t, FN_ACT_RELU6, 0);
    const float r6[5] = {0, 0, 0, 3, 6};
    for (int i = 0; i < 5; i++) assert_close(v[i], r6[i], 0);
    float u[3] = {-1, 0.5f, 2};
    fn_tensor tu = fn_tensor_make(1, 1, 1, 3, u);
    fn_activate(&tu, FN_ACT_RELU, 0);
    assert_close(u[0], 0, 0);
    assert_close(u[1], 0.5, 0);
    float b[4] = {1, 2, 3, 4}, bias[2] = {10, 20}, sc[2] = {2, 3}, sh[2] = {1, -1};
    fn_tensor tb = fn_tensor_make(1, 1, 2, 2, b);
    fn_bias_add(&tb, bias);
    fn_scale_shift(&tb, sc, sh);
    const float want[4] = {23, 65, 27, 71};
    for (int i = 0; i < 4; i++) assert_close(b[i], want[i], 0);
}

static void test_pooling(void **state) {
    (void)state;
    /* 3x3 of negative values, max pool 2x2 stride 2 SAME: output 2x2; the
     * bottom/right windows overlap the padding, which must not count as 0. */
    float x[9] = {-1, -2, -3, -4, -5, -6, -7, -8, -9}, y[4];
    fn_tensor tx = fn_tensor_make(1, 3, 3, 1, x), ty = fn_tensor_make(1, 2, 2, 1, y);
    fn_exec ex = exec1();
    fn_maxpool(&ex, &tx, 2, 2, FN_PAD_SAME, &ty);
    assert_close(y[0], -1, 0);
    assert_close(y[1], -3, 0);
    assert_close(y[2], -7, 0);
    assert_close(y[3], -9, 0);
    /* Average pool 2x2 stride 2 SAME: padded cells are not counted. */
    float x2[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    tx.data = x2;
    fn_avgpool(&ex, &tx, 2, 2, FN_PAD_SAME, &ty);
    assert_close(y[0], 3, 1e-6);   /* (1+2+4+5)/4 */
    assert_close(y[1], 4.5, 1e-6); /* (3+6)/2 */
    assert_close(y[2], 7.5, 1e-6); /* (7+8)/2 */
    assert_close(y[3], 9, 1e-6);
    /* Max pool 3x3 stride 2 VALID (the ResNet's): 5x5 -> 2x2. */
    float x3[25], y3[4];
    for (int i = 0; i < 25; i++) x3[i] = (float)((i * 7) % 11);
    fn_tensor t3 = fn_tensor_make(1, 5, 5, 1, x3), u3 = fn_tensor_make(1, 2, 2, 1, y3);
    fn_maxpool(&ex, &t3, 3, 2, FN_PAD_VALID, &u3);
    for (int oy = 0; oy < 2; oy++)
        for (int ox = 0; ox < 2; ox++) {
            float m = -1e9f;
            for (int ky = 0; ky < 3; ky++)
                for (int kx = 0; kx < 3; kx++) m = fmaxf(m, x3[(oy * 2 + ky) * 5 + ox * 2 + kx]);
            assert_close(y3[oy * 2 + ox], m, 0);
        }
    /* Global mean. */
    float g[4 * 2] = {1, 10, 2, 20, 3, 30, 4, 40}, gm[2];
    fn_tensor tg = fn_tensor_make(1, 2, 2, 2, g), tm = fn_tensor_make(1, 1, 1, 2, gm);
    fn_global_mean(&tg, &tm);
    assert_close(gm[0], 2.5, 1e-6);
    assert_close(gm[1], 25, 1e-6);
}

static void test_dense_and_norm(void **state) {
    (void)state;
    float x[2 * 3] = {1, 2, 3, -1, 0, 1}; /* two rows */
    float w[3 * 2] = {1, 0, 0, 1, 1, 1};  /* [in][out] */
    float b[2] = {0.5f, -0.5f}, y[4];
    fn_tensor tx = fn_tensor_make(2, 1, 1, 3, x), ty = fn_tensor_make(2, 1, 1, 2, y);
    fn_exec ex = exec1();
    fn_dense(&ex, &tx, w, b, &ty);
    assert_close(y[0], 4.5, 0);  /* 1 + 3 + .5 */
    assert_close(y[1], 4.5, 0);  /* 2 + 3 - .5 */
    assert_close(y[2], 0.5, 0);  /* -1 + 1 + .5 */
    assert_close(y[3], 0.5, 0);  /* 0 + 1 - .5 */
    float v[4] = {3, 4, 0, 0};
    fn_l2_normalize(v, 2, 2, 1e-12f);
    assert_close(v[0], 0.6, 1e-7);
    assert_close(v[1], 0.8, 1e-7);
    assert_close(v[2], 0, 0); /* a zero row stays zero, no NaN */
}

static void test_add_zero_extended(void **state) {
    (void)state;
    /* p: 2x2x2 (the shortcut), m: 1x1x3 (main path, smaller spatially, more channels). */
    float p[8] = {1, 2, 3, 4, 5, 6, 7, 8}, m[3] = {10, 20, 30}, y[2 * 2 * 3];
    fn_tensor tp = fn_tensor_make(1, 2, 2, 2, p), tm = fn_tensor_make(1, 1, 1, 3, m);
    fn_tensor ty = fn_tensor_make(1, 2, 2, 3, y);
    fn_add_zero_extended(&tp, &tm, &ty);
    const float want[12] = {11, 22, 30, 3, 4, 0, 5, 6, 0, 7, 8, 0};
    for (int i = 0; i < 12; i++) assert_close(y[i], want[i], 0);
}

static void test_resize_legacy(void **state) {
    (void)state;
    /* 2x2 -> 3x3 upscale: src = dst * 2/3. Row 0: x = 0, .667, 1.333 (clamped ceil). */
    float x[4] = {0, 10, 20, 30}, y[9];
    fn_tensor tx = fn_tensor_make(1, 2, 2, 1, x), ty = fn_tensor_make(1, 3, 3, 1, y);
    fn_resize_bilinear_legacy(&tx, &ty);
    const float s = 2.0f / 3.0f;
    const float want[9] = {0, 10 * s, 10, 20 * s, 20 * s + 10 * s, 20 * s + 10, 20, 20 + 10 * s, 30};
    for (int i = 0; i < 9; i++) assert_close(y[i], want[i], 1e-5);
    /* 4 -> 2 downscale takes pixels 0 and 2 exactly (no antialiasing). */
    float x4[4] = {1, 2, 3, 4}, y2[2];
    fn_tensor a = fn_tensor_make(1, 1, 4, 1, x4), b = fn_tensor_make(1, 1, 2, 1, y2);
    fn_resize_bilinear_legacy(&a, &b);
    assert_close(y2[0], 1, 0);
    assert_close(y2[1], 3, 0);
    /* Padding. */
    float z[2 * 3];
    fn_tensor tz = fn_tensor_make(1, 2, 3, 1, z);
    fn_tensor t1 = fn_tensor_make(1, 1, 1, 1, x4);
    fn_pad_spatial(&t1, 1, 0, 1, 1, &tz);
    const float wz[6] = {0, 0, 0, 0, 1, 0};
    for (int i = 0; i < 6; i++) assert_close(z[i], wz[i], 0);
}

/* Naive convolution: pad the input explicitly (TF's rule), then a plain sum. */
static void naive_conv(const fn_tensor *x, const fn_conv_desc *d, fn_tensor *y) {
    int oh, ow, pt, pl;
    fn_window_out(x->h, d->kh, d->stride, d->padding, &oh, &pt);
    fn_window_out(x->w, d->kw, d->stride, d->padding, &ow, &pl);
    int ph = (oh - 1) * d->stride + d->kh, pw = (ow - 1) * d->stride + d->kw;
    for (int b = 0; b < x->n; b++)
        for (int oy = 0; oy < oh; oy++)
            for (int ox = 0; ox < ow; ox++)
                for (int co = 0; co < d->cout; co++) {
                    double acc = 0;
                    for (int ky = 0; ky < d->kh; ky++)
                        for (int kx = 0; kx < d->kw; kx++) {
                            int py = oy * d->stride + ky, px = ox * d->stride + kx;
                            int iy = py - pt, ix = px - pl;
                            if (py >= ph || px >= pw || iy < 0 || ix < 0 || iy >= x->h || ix >= x->w) continue;
                            if (d->depthwise) {
                                acc += (double)*fn_at(x, b, iy, ix, co) * d->weights[(ky * d->kw + kx) * d->cin + co];
                            } else {
                                for (int ci = 0; ci < d->cin; ci++)
                                    acc += (double)*fn_at(x, b, iy, ix, ci) *
                                           d->weights[((size_t)(ky * d->kw + kx) * d->cin + ci) * d->cout + co];
                            }
                        }
                    if (d->bias) acc += d->bias[co];
                    *fn_at(y, b, oy, ox, co) = (float)acc;
                }
}

static void test_conv_against_naive(void **state) {
    (void)state;
    fn_pool *pool = fn_pool_create(2);
    const struct {
        int h, w, k, s, pad, cin, cout, dw;
    } cases[] = {
        {7, 7, 3, 1, FN_PAD_SAME, 3, 5, 0},  {8, 8, 3, 2, FN_PAD_SAME, 4, 6, 0},
        {9, 6, 3, 2, FN_PAD_SAME, 2, 3, 0},  {9, 9, 7, 2, FN_PAD_VALID, 3, 4, 0},
        {6, 10, 5, 2, FN_PAD_SAME, 3, 2, 0}, {8, 8, 3, 2, FN_PAD_VALID, 5, 7, 0},
        {5, 5, 1, 1, FN_PAD_SAME, 6, 3, 0},  {8, 8, 3, 2, FN_PAD_SAME, 6, 6, 1},
        {7, 9, 3, 1, FN_PAD_SAME, 5, 5, 1},  {4, 4, 3, 2, FN_PAD_VALID, 3, 3, 1},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fn_conv_desc d = {.kh = cases[c].k, .kw = cases[c].k, .stride = cases[c].s,
                          .padding = (fn_padding)cases[c].pad, .cin = cases[c].cin, .cout = cases[c].cout,
                          .depthwise = cases[c].dw};
        size_t nw = (size_t)d.kh * d.kw * d.cin * (d.depthwise ? 1 : d.cout);
        float *w = malloc(nw * sizeof *w), *bias = malloc((size_t)d.cout * sizeof *bias);
        int n = 2, oh, ow;
        float *x = malloc((size_t)n * cases[c].h * cases[c].w * d.cin * sizeof *x);
        test_fill_random(w, nw, c, -1, 1);
        test_fill_random(bias, (size_t)d.cout, c + 100, -1, 1);
        test_fill_random(x, (size_t)n * cases[c].h * cases[c].w * d.cin, c + 200, -1, 1);
        d.weights = w;
        d.bias = bias;
        assert_int_equal(fn_conv_shape(&d, cases[c].h, cases[c].w, &oh, &ow), 0);
        size_t ny = (size_t)n * oh * ow * d.cout;
        float *y1 = malloc(ny * sizeof *y1), *y2 = malloc(ny * sizeof *y2), *y3 = malloc(ny * sizeof *y3);
        fn_tensor tx = fn_tensor_make(n, cases[c].h, cases[c].w, d.cin, x);
        fn_tensor t1 = fn_tensor_make(n, oh, ow, d.cout, y1), t2 = t1, t3 = t1;
        t2.data = y2;
        t3.data = y3;
        fn_exec ex = exec1(), ex2 = {.backend = &fn_backend_ref, .pool = pool};
        fn_conv2d(&ex, &tx, &d, &t1);
        fn_conv2d(&ex2, &tx, &d, &t2);
        naive_conv(&tx, &d, &t3);
        double nse = test_nse(y1, y3, ny);
        if (nse > 1e-12) fail_msg("case %zu: normalized squared error %g against the naive conv", c, nse);
        assert_memory_equal(y1, y2, ny * sizeof *y1); /* threads do not change results */
        free(w);
        free(bias);
        free(x);
        free(y1);
        free(y2);
        free(y3);
    }
    fn_pool_free(pool);
}

typedef struct count_arg {
    int *hits;
} count_arg;

static void count_range(void *vp, int begin, int end) {
    count_arg *a = vp;
    for (int i = begin; i < end; i++) a->hits[i]++;
}

static void test_parallel_for(void **state) {
    (void)state;
    fn_pool *pool = fn_pool_create(3);
    fn_exec ex = {.backend = &fn_backend_ref, .pool = pool};
    for (int n = 0; n < 200; n += 7) {
        int *hits = calloc((size_t)n + 1, sizeof *hits);
        count_arg a = {hits};
        for (int rep = 0; rep < 5; rep++) fn_parallel_for(&ex, n, 1, count_range, &a);
        for (int i = 0; i < n; i++) assert_int_equal(hits[i], 5);
        free(hits);
    }
    fn_pool_free(pool);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_window_geometry),
        cmocka_unit_test(test_conv_same_stride1),
        cmocka_unit_test(test_conv_same_stride2_asymmetric),
        cmocka_unit_test(test_conv_channels_epilogue),
        cmocka_unit_test(test_depthwise),
        cmocka_unit_test(test_activations),
        cmocka_unit_test(test_pooling),
        cmocka_unit_test(test_dense_and_norm),
        cmocka_unit_test(test_add_zero_extended),
        cmocka_unit_test(test_resize_legacy),
        cmocka_unit_test(test_conv_against_naive),
        cmocka_unit_test(test_parallel_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
