/*
 * test_int8.c - the int8 path (engine/graph.h, "int8"): quantized graphs,
 * calibration ranges in model files, and the ResNet in int8.
 *
 *   - quantization of a graph: which values become u8 / s8 and with what
 *     scale, weights per output channel, pools following their input;
 *   - one int8 convolution (plain with ReLU or ReLU6, depthwise with
 *     ReLU6) against a plain integer computation written out here (s32 sums, per-channel output scales, round half to even,
 *     saturation): both the op-by-op reference (fake quantization in float)
 *     and the fast backend must give it, up to one step where a float sum
 *     lands on a rounding tie;
 *   - a small residual network with every fusion the ResNet uses (input
 *     quantized to s8, stem, max pool, residual adds fused in place, a down
 *     block zero-extended in channels, one whose main path is a pixel
 *     smaller, global mean, dense): the fast backend's compiled int8 plan
 *     against the op-by-op reference of the same arithmetic, and both
 *     against float32;
 *   - calibration tensors: valid ranges and channel means read back,
 *     malformed ones (NaN, <= 0, too large, wrong shape or dtype) refused
 *     with a message naming them;
 *   - bias correction: the corrected bias against its formula, and on an
 *     input at the channel means the int8 weights with it give the float32
 *     output (plain and depthwise);
 *   - a small MobileNet-SSD (depthwise and pointwise convs under ReLU6,
 *     float32 heads on two maps): the compiled plan against the reference;
 *   - with the model (skipped when absent): a calibration written by the
 *     public quantizer on 11 of the 22 golden face windows, read back, and
 *     the int8 embeddings of all 22 against float32 (cosine >= 0.99 each),
 *     the compiled plan against the op-by-op reference, and the errors for
 *     int8 on an uncalibrated model;
 *   - with the SSD detector: calibrated on half of the golden photos (with
 *     channel means, so bias-corrected), the same faces found on all of
 *     them, and the plan against the reference.
 *
 * Tolerances. Storing a value rounds it to its grid: an error of up to half
 * a step. The backend sums exactly in integers, the reference in floats, so
 * where a sum lies within float rounding of a tie (x.5 steps) the two can
 * round apart, by one step in that element, and the step then travels
 * through the later layers like any other rounding error. On the small
 * network (sums of at most 576 products) that never happens: the plan
 * matches the reference to float rounding (NSE 3e-14, bound 1e-8). On the
 * ResNet (sums of up to 2304 products of values up to 255 x 127) it does
 * now and then, and the plan's distance to the reference is measured at
 * 0.22 of the reference's own distance to float32, bounded at 0.5: a wrong
 * scale or rounding rule would be of the full size or more.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "engine/graph.h"
#include "model/model.h"
#include "model/safetensors.h"
#include "nets/preprocess.h"
#include "detect/detect.h"
#include "nets/nets.h"
#include "nets/resnet29.h"
#include "nets/ssd_mobilenetv1.h"
#include "golden.h"
#include "testutil.h"

#define NCHIPS 22 /* the golden faces */

static const fn_backend *FAST; /* NULL: reference only */

static float *rnd(size_t n, uint64_t seed, float lo, float hi) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    test_fill_random(p, n, seed, lo, hi);
    return p;
}

typedef struct store {
    fn_conv_desc d[64];
    float *mem[256];
    int nd, nm;
} store;

static float *keep(store *s, float *p) {
    s->mem[s->nm++] = p;
    return p;
}

static const fn_conv_desc *conv(store *s, int k, int stride, fn_padding pad, int cin, int cout, fn_act act,
                                uint64_t seed) {
    const float ws = sqrtf(3.0f / (float)(k * k * cin));
    fn_conv_desc *d = &s->d[s->nd++];
    *d = (fn_conv_desc){.kh = k,
                        .kw = k,
                        .stride = stride,
                        .padding = pad,
                        .cin = cin,
                        .cout = cout,
                        .weights = keep(s, rnd((size_t)k * k * cin * cout, seed, -ws, ws)),
                        .bias = keep(s, rnd((size_t)cout, seed + 1, -0.2f, 0.2f)),
                        .scale = keep(s, rnd((size_t)cout, seed + 2, 0.5f, 1.5f)),
                        .shift = keep(s, rnd((size_t)cout, seed + 3, -0.1f, 0.1f)),
                        .act = act};
    return d;
}

static void store_free(store *s) {
    for (int i = 0; i < s->nm; i++) free(s->mem[i]);
}

/* Largest magnitude of every named value over a run of g on x. */
static void max_observer(void *user, const fn_graph *g, int v, const fn_tensor *t) {
    float *range = user;
    if (!fn_graph_value_name(g, v)) return;
    for (size_t i = 0; i < fn_tensor_count(t); i++) range[v] = fmaxf(range[v], fabsf(t->data[i]));
}

static void calibrate(const fn_graph *g, const fn_tensor *x, float *range, fn_tensor *y) {
    fn_arena a = {0};
    fn_exec ex;
    fn_exec_init(&ex, &fn_backend_ref, NULL, &a);
    ex.observe = max_observer;
    ex.observe_user = range;
    assert_int_equal(fn_graph_run(&ex, g, x, y), 0);
    fn_exec_release(&ex);
    fn_arena_free(&a);
}

/* Run g on x with backend be (a fresh exec: caches key on addresses). fast:
 * the backend's own graph_run, which must not decline. */
static void run(const fn_backend *be, int fast, const fn_graph *g, const fn_tensor *x, fn_tensor *y) {
    fn_arena a = {0};
    fn_exec ex;
    fn_exec_init(&ex, be, NULL, &a);
    if (fast) {
        if (be->graph_run(&ex, g, x, y) != 0) fail_msg("the backend declined the int8 graph");
    } else {
        assert_int_equal(fn_graph_run_ops(&ex, g, x, y), 0);
    }
    fn_exec_release(&ex);
    fn_arena_free(&a);
}

/* ---------------------------------------------------------------- one conv, by integers */

/* One int8 convolution, input s8, output u8 after its activation: the
 * backend and the op-by-op reference against the integer arithmetic
 * itself. With ReLU6 the output's range (8) lies above 6, so the clip is
 * not the u8 saturation: it must act at 6 in real terms, which in the
 * output's stored units is 6 / scale. */
static void conv_integers(fn_act act, int depthwise, float out_range) {
    enum { N = 2, H = 9, W = 8, CI = 24, K = 3 };
    const int CO = depthwise ? CI : 32;
    store s = {0};
    fn_conv_desc *d = (fn_conv_desc *)conv(&s, K, 1, FN_PAD_SAME, CI, CO, act, 11);
    d->depthwise = depthwise;
    /* Larger gains under ReLU6, so that some outputs pass 6 (a depthwise
     * sum has 9 terms, not 216). */
    for (int k = 0; act == FN_ACT_RELU6 && k < CO; k++) ((float *)d->scale)[k] *= depthwise ? 20.0f : 4.0f;
    fn_graph *g = fn_graph_new(H, W, CI);
    int c = fn_graph_conv(g, 0, d);
    assert_int_equal(fn_graph_name(g, 0, "input"), 0);
    assert_int_equal(fn_graph_name(g, c, "conv"), 0);
    float range[2] = {2.0f, out_range};
    assert_int_equal(fn_graph_quantize(g, range, NULL), 0);
    assert_true(g->q[0].is_signed && !g->q[1].is_signed);
    assert_true(fabsf(g->q[0].scale - 2.0f / 127) < 1e-7f && fabsf(g->q[1].scale - out_range / 255) < 1e-7f);
    const fn_graph_qconv *q = g->qconv[0];
    assert_non_null(q);
    /* The input on its grid already, so only the output rounds. */
    const size_t nx = (size_t)N * H * W * CI, ny = (size_t)N * H * W * CO;
    float *x = rnd(nx, 5, -2.5f, 2.5f);
    int8_t *qx = malloc(nx);
    for (size_t i = 0; i < nx; i++) {
        float r = rintf(x[i] / g->q[0].scale);
        qx[i] = (int8_t)(r < -128 ? -128 : r > 127 ? 127 : r);
        x[i] = qx[i] * g->q[0].scale;
    }
    /* The integer computation: s32 sums, bias in sum units, one scale per
     * output channel to the output's units, the activation, round half
     * even, u8. */
    float *want = calloc(ny, sizeof(float));
    const double top = act == FN_ACT_RELU6 ? 6.0 / g->q[1].scale : INFINITY;
    int clipped = 0;
    for (int n = 0; n < N; n++)
        for (int oy = 0; oy < H; oy++)
            for (int ox = 0; ox < W; ox++)
                for (int co = 0; co < CO; co++) {
                    int32_t acc = 0;
                    for (int ky = 0; ky < K; ky++)
                        for (int kx = 0; kx < K; kx++) {
                            int iy = oy + ky - 1, ix = ox + kx - 1;
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            const size_t at = (((size_t)n * H + iy) * W + ix) * CI;
                            if (depthwise)
                                acc += qx[at + co] * q->w[((size_t)ky * K + kx) * CO + co];
                            else
                                for (int ci = 0; ci < CI; ci++)
                                    acc += qx[at + ci] * q->w[(((size_t)ky * K + kx) * CI + ci) * CO + co];
                        }
                    double sx = g->q[0].scale, sw = q->w_scale[co], sy = g->q[1].scale;
                    double v = (acc + q->bias[co] / (sx * sw)) * (sx * sw / sy);
                    v = v < 0 ? 0 : v;
                    if (v > top) v = top, clipped++;
                    double r = nearbyint(v);
                    want[(((size_t)n * H + oy) * W + ox) * CO + co] = (float)((r > 255 ? 255 : r) * sy);
                }
    if (act == FN_ACT_RELU6 && clipped == 0) fail_msg("no output reached 6: the clip is not tested");
    fn_tensor tx = fn_tensor_make(N, H, W, CI, x);
    float *yr = calloc(ny, sizeof(float)), *yf = calloc(ny, sizeof(float));
    fn_tensor tr = fn_tensor_make(N, H, W, CO, yr), tf = fn_tensor_make(N, H, W, CO, yf);
    run(&fn_backend_ref, 0, g, &tx, &tr);
    const char *names[2] = {"op-by-op reference", FAST ? FAST->name : NULL};
    float *ys[2] = {yr, yf};
    if (FAST) run(FAST, 1, g, &tx, &tf);
    const char *what = depthwise ? "depthwise conv" : "conv";
    const char *act_name = act == FN_ACT_RELU6 ? "ReLU6" : "ReLU";
    for (int k = 0; k < (FAST ? 2 : 1); k++) {
        int off = 0;
        for (size_t i = 0; i < ny; i++) {
            double steps = fabs(ys[k][i] - want[i]) / g->q[1].scale;
            if (steps > 1.001)
                fail_msg("int8 %s + %s, %s: element %zu is %.1f steps from the integer result", what, act_name,
                         names[k], i, steps);
            off += steps > 0.5;
        }
        /* A tie needs the float sum to land within an ulp of x.5. */
        if (off > (int)(ny / 500))
            fail_msg("int8 %s + %s, %s: %d of %zu elements one step off", what, act_name, names[k], off, ny);
        printf("int8 %s + %s: %s matches the integer arithmetic (%d of %zu elements one step off, %d clipped)\n",
               what, act_name, names[k], off, ny, clipped);
    }
    free(x), free(qx), free(want), free(yr), free(yf);
    fn_graph_free(g);
    store_free(&s);
}

static void test_int8_conv_integers(void **state) {
    (void)state;
    conv_integers(FN_ACT_RELU, 0, 3.0f);
    conv_integers(FN_ACT_RELU6, 0, 8.0f);
    conv_integers(FN_ACT_RELU6, 1, 8.0f);
}

/* ---------------------------------------------------------------- bias correction */

/* With its input's channel means, a quantized conv's bias takes in the
 * rounded weights' mean error: the corrected bias is the formula written
 * out, and on an input equal to those means at every pixel (VALID, so no
 * padding) the int8 weights with the corrected bias give the float32
 * output exactly, up to float rounding, where the uncorrected ones miss. */
static void bias_correction(int depthwise) {
    enum { H = 5, W = 5, CI = 16, K = 3 };
    const int CO = depthwise ? CI : 24;
    store s = {0};
    fn_conv_desc *d = (fn_conv_desc *)conv(&s, K, 1, FN_PAD_VALID, CI, CO, FN_ACT_NONE, 77);
    d->depthwise = depthwise;
    float *mean = keep(&s, rnd(CI, 78, 0.0f, 3.0f));
    const float *means[2] = {mean, NULL};
    float range[2] = {4.0f, 8.0f};
    fn_graph *g[2];
    for (int k = 0; k < 2; k++) {
        g[k] = fn_graph_new(H, W, CI);
        int c = fn_graph_conv(g[k], 0, d);
        assert_int_equal(fn_graph_name(g[k], 0, "input"), 0);
        assert_int_equal(fn_graph_name(g[k], c, "conv"), 0);
        assert_int_equal(fn_graph_quantize(g[k], range, k == 0 ? means : NULL), 0);
    }
    const fn_graph_qconv *qc = g[0]->qconv[0], *qu = g[1]->qconv[0];
    const size_t per_tap = depthwise ? (size_t)CO : (size_t)CI * CO, count = (size_t)K * K * per_tap;
    double worst = 0, moved = 0;
    for (int k = 0; k < CO; k++) {
        double want = fn_conv_folded_bias(d, k);
        for (size_t i = (size_t)k; i < count; i += (size_t)CO) {
            const size_t ci = depthwise ? (size_t)k : (i % per_tap) / (size_t)CO;
            want += ((double)fn_conv_folded_weight(d, i) - qc->deq[i]) * mean[ci];
        }
        worst = fmax(worst, fabs(qc->bias[k] - want));
        moved = fmax(moved, fabs(qc->bias[k] - qu->bias[k]));
    }
    if (!(worst < 1e-5)) fail_msg("corrected bias off the formula by %.3g", worst);
    if (!(moved > 1e-4)) fail_msg("the correction moved no bias (largest %.3g)", moved);
    /* One output pixel (5x5 VALID 3x3 gives 3x3; take them all). */
    float *x = malloc(sizeof(float) * H * W * CI);
    for (int p = 0; p < H * W; p++) memcpy(x + (size_t)p * CI, mean, sizeof(float) * CI);
    float y32[3 * 3 * 24], yc[3 * 3 * 24], yu[3 * 3 * 24];
    fn_tensor tx = fn_tensor_make(1, H, W, CI, x);
    fn_tensor t32 = fn_tensor_make(1, 3, 3, CO, y32), tc = fn_tensor_make(1, 3, 3, CO, yc),
              tu = fn_tensor_make(1, 3, 3, CO, yu);
    fn_arena a = {0};
    fn_exec ex;
    fn_exec_init(&ex, &fn_backend_ref, NULL, &a);
    fn_conv2d(&ex, &tx, d, &t32);
    fn_conv2d(&ex, &tx, &qc->desc, &tc);
    fn_conv2d(&ex, &tx, &qu->desc, &tu);
    fn_exec_release(&ex);
    fn_arena_free(&a);
    double ec = 0, eu = 0;
    for (int i = 0; i < 9 * CO; i++) ec = fmax(ec, fabs(yc[i] - y32[i])), eu = fmax(eu, fabs(yu[i] - y32[i]));
    printf("bias correction, %s: on the mean input, largest error %.3g corrected, %.3g uncorrected\n",
           depthwise ? "depthwise" : "plain", ec, eu);
    if (!(ec < 1e-4 && eu > 10 * ec)) fail_msg("corrected %.3g, uncorrected %.3g", ec, eu);
    free(x);
    fn_graph_free(g[0]);
    fn_graph_free(g[1]);
    store_free(&s);
}

static void test_int8_bias_correction(void **state) {
    (void)state;
    bias_correction(0);
    bias_correction(1);
}

/* ---------------------------------------------------------------- a small ResNet */

/* The ResNet's shapes in miniature, every value named that the ResNet
 * names. */
static fn_graph *mini_resnet(store *s, float **fc) {
    fn_graph *g = fn_graph_new(42, 42, 3);
    char name[32];
    int bad = fn_graph_name(g, 0, "input");
    int v = fn_graph_conv(g, 0, conv(s, 5, 2, FN_PAD_VALID, 3, 16, FN_ACT_RELU, 100)); /* 19 */
    bad |= fn_graph_name(g, v, "stem");
    v = fn_graph_pool(g, v, FN_OP_MAXPOOL, 3, 2, FN_PAD_VALID); /* 9 */
    /* Planes 9, 4 (the add fused, zero-extended in channels), 1 against a
     * shortcut of 2 (not fused), then 2. */
    static const int CIN[4] = {16, 16, 32, 64}, COUT[4] = {16, 32, 64, 64}, DOWN[4] = {0, 1, 1, 0};
    for (int i = 0; i < 4; i++) {
        int sc = DOWN[i] ? fn_graph_pool(g, v, FN_OP_AVGPOOL, 2, 2, FN_PAD_VALID) : v;
        int c1 = fn_graph_conv(g, v,
                               conv(s, 3, DOWN[i] ? 2 : 1, DOWN[i] ? FN_PAD_VALID : FN_PAD_SAME, CIN[i], COUT[i],
                                    FN_ACT_RELU, 200 + 10 * i));
        snprintf(name, sizeof name, "b%d/conv1", i);
        bad |= fn_graph_name(g, c1, name);
        int c2 = fn_graph_conv(g, c1, conv(s, 3, 1, FN_PAD_SAME, COUT[i], COUT[i], FN_ACT_NONE, 205 + 10 * i));
        v = fn_graph_add(g, c2, sc, FN_ACT_RELU, 0.0f);
        snprintf(name, sizeof name, "b%d", i);
        if (i < 3) bad |= fn_graph_name(g, v, name);
    }
    v = fn_graph_global_mean(g, v);
    *fc = keep(s, rnd(64 * 16, 300, -0.3f, 0.3f));
    fn_graph_dense(g, v, *fc, NULL, 16);
    assert_false(bad);
    assert_true(fn_graph_ok(g));
    return g;
}

static double cosine(const float *a, const float *b, int n) {
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) ab += (double)a[i] * b[i], aa += (double)a[i] * a[i], bb += (double)b[i] * b[i];
    return ab / sqrt(aa * bb);
}

static void test_int8_mini_resnet(void **state) {
    (void)state;
    enum { N = 5, D = 16 };
    store s = {0};
    float *fc;
    fn_graph *g = mini_resnet(&s, &fc), *g8 = mini_resnet(&s, &fc);
    const size_t nx = (size_t)N * 42 * 42 * 3;
    /* Smooth images, not noise: neighbouring pixels alike, as in photos. */
    float *x = malloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++) {
        size_t p = i / 3, n = p / (42 * 42), yy = p / 42 % 42, xx = p % 42;
        x[i] = 0.45f * sinf(0.3f * (float)xx + 0.7f * (float)n + (float)(i % 3)) * cosf(0.2f * (float)yy);
    }
    float *range = calloc((size_t)g->n_ops + 1, sizeof(float));
    float y32[N * D], yr[N * D], yf[N * D];
    fn_tensor tx = fn_tensor_make(N, 42, 42, 3, x), t32 = fn_tensor_make(N, 1, 1, D, y32);
    calibrate(g, &tx, range, &t32);
    assert_int_equal(fn_graph_quantize(g8, range, NULL), 0);
    assert_int_equal(fn_graph_quantize(g8, range, NULL), -1); /* once only */
    int n_q = 0;
    for (int v = 0; v <= g8->n_ops; v++) {
        const fn_graph_op *op = v ? &g8->ops[v - 1] : NULL;
        if (op && (op->kind == FN_OP_MAXPOOL || op->kind == FN_OP_AVGPOOL))
            assert_memory_equal(&g8->q[v], &g8->q[op->in[0]], sizeof g8->q[v]);
        else
            assert_int_equal(g8->q[v].scale > 0, fn_graph_value_name(g8, v) != NULL);
        n_q += g8->q[v].scale > 0;
    }
    assert_true(n_q > 10);
    fn_tensor tr = fn_tensor_make(N, 1, 1, D, yr), tf = fn_tensor_make(N, 1, 1, D, yf);
    run(&fn_backend_ref, 0, g8, &tx, &tr);
    double ref_vs_f32 = test_nse(yr, y32, N * D);
    printf("int8 mini ResNet: op-by-op reference vs float32 NSE %.3g\n", ref_vs_f32);
    if (!(ref_vs_f32 < 1e-3)) fail_msg("int8 reference vs float32: NSE %.3g", ref_vs_f32);
    if (FAST) {
        for (int threads = 1; threads <= 2; threads++) {
            fn_pool *pool = threads == 2 ? fn_pool_create(2) : NULL;
            fn_arena a = {0};
            fn_exec ex;
            fn_exec_init(&ex, FAST, pool, &a);
            if (FAST->graph_run(&ex, g8, &tx, &tf) != 0) fail_msg("the backend declined the int8 graph");
            fn_exec_release(&ex);
            fn_arena_free(&a);
            fn_pool_free(pool);
            double fast_vs_ref = test_nse(yf, yr, N * D), worst_cos = 1;
            for (int i = 0; i < N; i++) worst_cos = fmin(worst_cos, cosine(yf + i * D, y32 + i * D, D));
            printf("int8 mini ResNet, %s, %d thread(s): vs the op-by-op reference NSE %.3g, vs float32 NSE %.3g, "
                   "worst cosine %.5f\n",
                   FAST->name, threads, fast_vs_ref, test_nse(yf, y32, N * D), worst_cos);
            if (!(fast_vs_ref < 1e-8)) fail_msg("int8 plan vs reference: NSE %.3g", fast_vs_ref);
            if (!(worst_cos > 0.99)) fail_msg("int8 plan vs float32: cosine %.4f", worst_cos);
        }
    }
    free(range), free(x);
    fn_graph_free(g);
    fn_graph_free(g8);
    store_free(&s);
}

/* ---------------------------------------------------------------- a small MobileNet-SSD */

/* The SSD detector's shapes in miniature: s8 input, a strided conv, blocks
 * of depthwise + pointwise convs (one depthwise strided), all ReLU6, and
 * float32 heads (1x1, no activation) on two feature maps: four outputs. */
static fn_graph *mini_ssd(store *s) {
    fn_graph *g = fn_graph_new(34, 34, 3);
    char name[32];
    int bad = fn_graph_name(g, 0, "input");
    int v = fn_graph_conv(g, 0, conv(s, 3, 2, FN_PAD_SAME, 3, 16, FN_ACT_RELU6, 400)); /* 17 */
    bad |= fn_graph_name(g, v, "conv0");
    static const int CIN[3] = {16, 32, 32}, COUT[3] = {32, 32, 48}, STRIDE[3] = {1, 2, 1};
    int fm[2];
    for (int i = 0; i < 3; i++) {
        fn_conv_desc *dw = (fn_conv_desc *)conv(s, 3, STRIDE[i], FN_PAD_SAME, CIN[i], CIN[i], FN_ACT_RELU6, 410 + 10 * i);
        dw->depthwise = 1;
        int d = fn_graph_conv(g, v, dw);
        snprintf(name, sizeof name, "dw%d", i + 1);
        bad |= fn_graph_name(g, d, name);
        v = fn_graph_conv(g, d, conv(s, 1, 1, FN_PAD_SAME, CIN[i], COUT[i], FN_ACT_RELU6, 415 + 10 * i));
        snprintf(name, sizeof name, "pw%d", i + 1);
        bad |= fn_graph_name(g, v, name);
        if (i == 0) fm[0] = v;
    }
    fm[1] = v;
    for (int j = 0; j < 2; j++) {
        const int c = j ? 48 : 32;
        fn_graph_output(g, fn_graph_conv(g, fm[j], conv(s, 1, 1, FN_PAD_SAME, c, 12, FN_ACT_NONE, 450 + j)));
        fn_graph_output(g, fn_graph_conv(g, fm[j], conv(s, 1, 1, FN_PAD_SAME, c, 9, FN_ACT_NONE, 460 + j)));
    }
    assert_false(bad);
    assert_true(fn_graph_ok(g));
    return g;
}

static void test_int8_mini_ssd(void **state) {
    (void)state;
    enum { N = 2, NOUT = 4 };
    static const int SIDE[NOUT] = {17, 17, 9, 9}, CH[NOUT] = {12, 9, 12, 9};
    store s = {0};
    fn_graph *g = mini_ssd(&s), *g8 = mini_ssd(&s);
    const size_t nx = (size_t)N * 34 * 34 * 3;
    float *x = malloc(sizeof(float) * nx);
    for (size_t i = 0; i < nx; i++) {
        size_t p = i / 3, n = p / (34 * 34), yy = p / 34 % 34, xx = p % 34;
        x[i] = 0.9f * sinf(0.25f * (float)xx + 0.7f * (float)n + (float)(i % 3)) * cosf(0.15f * (float)yy);
    }
    fn_tensor tx = fn_tensor_make(N, 34, 34, 3, x);
    float *y[3][NOUT]; /* float32, reference, fast */
    fn_tensor t[3][NOUT];
    size_t total = 0, off[NOUT];
    for (int k = 0; k < NOUT; k++) off[k] = total, total += (size_t)N * SIDE[k] * SIDE[k] * CH[k];
    for (int r = 0; r < 3; r++)
        for (int k = 0; k < NOUT; k++) {
            y[r][k] = calloc((size_t)N * SIDE[k] * SIDE[k] * CH[k], sizeof(float));
            t[r][k] = fn_tensor_make(N, SIDE[k], SIDE[k], CH[k], y[r][k]);
        }
    float *range = calloc((size_t)g->n_ops + 1, sizeof(float));
    calibrate(g, &tx, range, t[0]);
    /* The largest magnitudes: ReLU6 caps them at 6; take ranges below
     * that, as a percentile would, so that some values saturate. */
    for (int v = 1; v <= g->n_ops; v++) range[v] *= 0.9f;
    assert_int_equal(fn_graph_quantize(g8, range, NULL), 0);
    run(&fn_backend_ref, 0, g8, &tx, t[1]);
    float *flat[3];
    for (int r = 0; r < 3; r++) {
        flat[r] = malloc(sizeof(float) * total);
        for (int k = 0; k < NOUT; k++)
            memcpy(flat[r] + off[k], y[r][k], sizeof(float) * (size_t)N * SIDE[k] * SIDE[k] * CH[k]);
    }
    double ref_vs_f32 = test_nse(flat[1], flat[0], total);
    printf("int8 mini SSD: op-by-op reference vs float32 NSE %.3g\n", ref_vs_f32);
    if (!(ref_vs_f32 < 1e-2)) fail_msg("int8 reference vs float32: NSE %.3g", ref_vs_f32);
    if (FAST) {
        run(FAST, 1, g8, &tx, t[2]);
        for (int k = 0; k < NOUT; k++)
            memcpy(flat[2] + off[k], y[2][k], sizeof(float) * (size_t)N * SIDE[k] * SIDE[k] * CH[k]);
        double fast_vs_ref = test_nse(flat[2], flat[1], total);
        printf("int8 mini SSD, %s: vs the op-by-op reference NSE %.3g, vs float32 NSE %.3g\n", FAST->name,
               fast_vs_ref, test_nse(flat[2], flat[0], total));
        if (!(fast_vs_ref < 1e-8)) fail_msg("int8 plan vs reference: NSE %.3g", fast_vs_ref);
    }
    /* Values left in float32 (what `facenet quantize --float32` does): a
     * conv then reads float32 and writes a value that is quantized after
     * it, or reads int8 and writes float32. */
    fn_graph *g8b = mini_ssd(&s);
    for (int v = 0; v <= g->n_ops; v++) {
        const char *name = fn_graph_value_name(g, v);
        if (name && (strcmp(name, "pw1") == 0 || strcmp(name, "pw3") == 0)) range[v] = 0.0f;
    }
    assert_int_equal(fn_graph_quantize(g8b, range, NULL), 0);
    run(&fn_backend_ref, 0, g8b, &tx, t[1]);
    for (int k = 0; k < NOUT; k++)
        memcpy(flat[1] + off[k], y[1][k], sizeof(float) * (size_t)N * SIDE[k] * SIDE[k] * CH[k]);
    printf("int8 mini SSD, pw1 and pw3 float32: reference vs float32 NSE %.3g\n", test_nse(flat[1], flat[0], total));
    if (FAST) {
        run(FAST, 1, g8b, &tx, t[2]);
        for (int k = 0; k < NOUT; k++)
            memcpy(flat[2] + off[k], y[2][k], sizeof(float) * (size_t)N * SIDE[k] * SIDE[k] * CH[k]);
        double fast_vs_ref = test_nse(flat[2], flat[1], total);
        printf("int8 mini SSD, pw1 and pw3 float32, %s: vs the op-by-op reference NSE %.3g\n", FAST->name,
               fast_vs_ref);
        if (!(fast_vs_ref < 1e-8)) fail_msg("int8 plan with float32 values vs reference: NSE %.3g", fast_vs_ref);
    }
    fn_graph_free(g8b);
    for (int r = 0; r < 3; r++) {
        free(flat[r]);
        for (int k = 0; k < NOUT; k++) free(y[r][k]);
    }
    free(range), free(x);
    fn_graph_free(g);
    fn_graph_free(g8);
    store_free(&s);
}

/* ---------------------------------------------------------------- calibration tensors */

static void test_calibration_tensors(void **state) {
    (void)state;
    char path[] = "/tmp/facenet-test-int8-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    const float good = 4.5f, nan_v = NAN, neg = -1.0f, zero = 0.0f, huge = 1e9f, two[2] = {1, 2};
    const int32_t i32 = 3;
    const int64_t one[1] = {1}, s2[1] = {2}, s11[2] = {1, 1};
    const fn_st_entry t[] = {
        {"int8/good", FN_DTYPE_F32, 1, one, &good}, {"int8/nan", FN_DTYPE_F32, 1, one, &nan_v},
        {"int8/neg", FN_DTYPE_F32, 1, one, &neg},   {"int8/zero", FN_DTYPE_F32, 1, one, &zero},
        {"int8/huge", FN_DTYPE_F32, 1, one, &huge}, {"int8/two", FN_DTYPE_F32, 1, s2, two},
        {"int8/rank2", FN_DTYPE_F32, 2, s11, &good}, {"int8/int", FN_DTYPE_I32, 1, one, &i32},
        {"int8/good.mean", FN_DTYPE_F32, 1, s2, two},  {"int8/short.mean", FN_DTYPE_F32, 1, one, &good},
        {"int8/nan.mean", FN_DTYPE_F32, 1, one, &nan_v}, {"int8/huge.mean", FN_DTYPE_F32, 1, one, &huge},
    };
    fn_error e;
    assert_int_equal(fn_st_write(path, t, sizeof t / sizeof t[0], NULL, 0, &e), FACENET_OK);
    fn_st_file *f;
    assert_int_equal(fn_st_open(path, &f, &e), FACENET_OK);
    float r = 0;
    assert_int_equal(fn_calib_range(f, "m.st", "good", &r, &e), 1);
    assert_true(r == good);
    assert_int_equal(fn_calib_range(f, "m.st", "absent", &r, &e), 0);
    static const char *const BAD[] = {"nan", "neg", "zero", "huge", "two", "rank2", "int"};
    for (size_t i = 0; i < sizeof BAD / sizeof BAD[0]; i++) {
        fn_error_clear(&e);
        assert_int_equal(fn_calib_range(f, "m.st", BAD[i], &r, &e), -1);
        assert_int_equal(e.status, FACENET_ERR_MODEL);
        char want[64];
        snprintf(want, sizeof want, "'int8/%s'", BAD[i]);
        if (!strstr(e.msg, want) || !strstr(e.msg, "m.st")) fail_msg("message does not name the tensor: %s", e.msg);
    }
    /* Channel means: read back, or refused when the shape is not the
     * value's channels or a mean is not finite or is huge. */
    float *m = NULL;
    assert_int_equal(fn_calib_mean(f, "m.st", "good", 2, &m, &e), 1);
    assert_non_null(m);
    assert_true(m[0] == 1.0f && m[1] == 2.0f);
    free(m);
    assert_int_equal(fn_calib_mean(f, "m.st", "absent", 2, &m, &e), 0);
    assert_null(m);
    static const char *const BAD_MEAN[] = {"short", "nan", "huge"};
    for (size_t i = 0; i < sizeof BAD_MEAN / sizeof BAD_MEAN[0]; i++) {
        fn_error_clear(&e);
        assert_int_equal(fn_calib_mean(f, "m.st", BAD_MEAN[i], i == 0 ? 2 : 1, &m, &e), -1);
        assert_null(m);
        char want[64];
        snprintf(want, sizeof want, "'int8/%s.mean'", BAD_MEAN[i]);
        if (!strstr(e.msg, want) || !strstr(e.msg, "m.st")) fail_msg("message does not name the tensor: %s", e.msg);
    }
    fn_st_close(f);
    unlink(path);
}

/* ---------------------------------------------------------------- the ResNet */

/* The golden faces' 150x150 windows (face-api's chip150_rect) from the
 * demo photos, up to cap. */
static int face_windows(golden *gd, facenet_ctx *ctx, facenet_image *chips, int cap) {
    int n = 0;
    for (size_t p = 0; p < golden_photo_count(gd) && n < cap; p++) {
        facenet_image img = {0};
        golden_load_photo(gd, p, &img);
        const fn_json *ssd = fn_json_get(golden_photo(gd, p), "ssd");
        for (size_t i = 0; ssd && i < ssd->count && n < cap; i++) {
            int r[4];
            golden_rect(&ssd->items[i], "chip150_rect", r);
            if (facenet_image_crop(ctx, &img, r[0], r[1], r[2], r[3], &chips[n]) == FACENET_OK) n++;
        }
        facenet_image_free(&img);
    }
    return n;
}

/* The cases on a pretrained network: its model file (path copied into mp)
 * and the golden photos (gd), or a skip; out becomes an empty temporary
 * file for the calibrated copy. 0, or -1 after skip(). */
static int open_network_case(const char *model, char mp[4096], golden *gd, char *out) {
    const char *found = test_model_path(model);
    if (found) snprintf(mp, 4096, "%s", found);
    if (!found || golden_open(gd) != 0) {
        skip();
        return -1;
    }
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    return 0;
}

static void test_int8_resnet29(void **state) {
    (void)state;
    static char mp[4096];
    golden gd = {0};
    char out[] = "/tmp/facenet-test-int8-model-XXXXXX";
    if (open_network_case("dlib_resnet29.safetensors", mp, &gd, out) != 0) return;
    facenet_ctx *ctx, *ctx8;
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 2;
    assert_int_equal(facenet_ctx_create(&cp, &ctx), FACENET_OK);
    cp.precision = FACENET_PRECISION_INT8;
    assert_int_equal(facenet_ctx_create(&cp, &ctx8), FACENET_OK);
    cp.precision = (facenet_precision)7;
    facenet_ctx *bad = NULL;
    assert_int_equal(facenet_ctx_create(&cp, &bad), FACENET_ERR_INVALID_ARGUMENT);
    facenet_model *m, *m8;
    facenet_session *s, *s8 = NULL;
    assert_int_equal(facenet_model_load(ctx, mp, &m), FACENET_OK);
    /* No calibration: int8 is refused with a reason. */
    assert_int_equal(facenet_session_create(ctx8, m, &s8), FACENET_ERR_UNSUPPORTED);
    assert_non_null(strstr(facenet_ctx_error(ctx8), "facenet quantize"));
    facenet_image chips[NCHIPS];
    const int n = face_windows(&gd, ctx, chips, NCHIPS);
    golden_close(&gd);
    assert_int_equal(n, NCHIPS);
    /* Calibrate on the first half, measure on all. */
    facenet_quantizer *q;
    facenet_quantize_params qp = facenet_quantize_default_params();
    assert_int_equal(facenet_quantizer_create(ctx, m, &qp, &q), FACENET_OK);
    assert_int_equal(facenet_quantizer_write(q, out), FACENET_ERR_INVALID_ARGUMENT); /* nothing recorded */
    assert_int_equal(facenet_quantizer_add(q, chips, n / 2), FACENET_OK);
    assert_int_equal(facenet_quantizer_count(q), n / 2);
    assert_int_equal(facenet_quantizer_write(q, out), FACENET_OK);
    facenet_quantizer_free(q);
    qp.float32_values = "conv999*";
    assert_int_equal(facenet_quantizer_create(ctx, m, &qp, &q), FACENET_OK);
    assert_int_equal(facenet_quantizer_add(q, chips, 1), FACENET_OK);
    assert_int_equal(facenet_quantizer_write(q, out), FACENET_ERR_INVALID_ARGUMENT); /* names nothing */
    facenet_quantizer_free(q);

    assert_int_equal(facenet_model_load(ctx, out, &m8), FACENET_OK);
    assert_non_null(facenet_model_meta(m8, "int8_calibration"));
    const fn_graph *g8 = fn_resnet29_graph8(m8->net);
    assert_non_null(g8);
    assert_int_equal(facenet_session_create(ctx, m8, &s), FACENET_OK);
    assert_int_equal(facenet_session_create(ctx8, m8, &s8), FACENET_OK);
    float e32[NCHIPS * 128], e8[NCHIPS * 128];
    assert_int_equal(facenet_embed_chips(s, chips, n, e32, 0), FACENET_OK);
    assert_int_equal(facenet_embed_chips(s8, chips, n, e8, 0), FACENET_OK);
    double worst = 1;
    for (int i = 0; i < n; i++) worst = fmin(worst, cosine(e8 + i * 128, e32 + i * 128, 128));
    printf("ResNet-29 int8 (%s): %d face windows, worst cosine to float32 %.5f\n", facenet_backend_name(), n,
           worst);
    if (!(worst >= 0.99)) fail_msg("int8 embedding vs float32: cosine %.4f < 0.99", worst);

    /* The compiled plan against the op-by-op reference of the same int8
     * arithmetic, on the raw outputs. */
    if (FAST) {
        const fn_norm norm = {{fn_resnet29_mean[0], fn_resnet29_mean[1], fn_resnet29_mean[2]}, 255.0f};
        const size_t per = (size_t)150 * 150 * 3;
        float *in = malloc(sizeof(float) * per * (size_t)n), yr[NCHIPS * 128], yf[NCHIPS * 128];
        fn_arena a = {0};
        fn_exec ex;
        fn_exec_init(&ex, &fn_backend_ref, NULL, &a);
        for (int i = 0; i < n; i++) assert_int_equal(fn_to_input(&ex, &chips[i], 150, 1, &norm, in + per * i), 0);
        fn_exec_release(&ex);
        fn_arena_free(&a);
        float y32[NCHIPS * 128];
        fn_tensor x = fn_tensor_make(n, 150, 150, 3, in), tr = fn_tensor_make(n, 1, 1, 128, yr),
                  tf = fn_tensor_make(n, 1, 1, 128, yf), t32 = fn_tensor_make(n, 1, 1, 128, y32);
        run(&fn_backend_ref, 0, g8, &x, &tr);
        run(FAST, 1, g8, &x, &tf);
        run(FAST, 1, fn_resnet29_graph(m8->net), &x, &t32);
        double nse = test_nse(yf, yr, (size_t)n * 128), quant = test_nse(yr, y32, (size_t)n * 128), wc = 1;
        for (int i = 0; i < n; i++) wc = fmin(wc, cosine(yf + i * 128, yr + i * 128, 128));
        printf("ResNet-29 int8 plan vs op-by-op reference: NSE %.3g, worst cosine %.6f (reference vs float32: "
               "NSE %.3g)\n",
               nse, wc, quant);
        /* One-step disagreements at rounding ties, carried through 29
         * layers (see the top). */
        if (!(nse < 0.5 * quant)) fail_msg("int8 plan vs reference: NSE %.3g, not below half of %.3g", nse, quant);
        free(in);
    }
    facenet_session_free(s);
    facenet_session_free(s8);
    for (int i = 0; i < n; i++) facenet_image_free(&chips[i]);
    facenet_model_free(m8);
    facenet_model_free(m);
    facenet_ctx_free(ctx8);
    facenet_ctx_free(ctx);
    unlink(out);
}

/* ---------------------------------------------------------------- the SSD detector */

static double iou(const fn_face_box *a, const fn_face_box *b) {
    const double x0 = fmax(a->x, b->x), y0 = fmax(a->y, b->y);
    const double x1 = fmin(a->x + a->w, b->x + b->w), y1 = fmin(a->y + a->h, b->y + b->h);
    const double in = x1 > x0 && y1 > y0 ? (x1 - x0) * (y1 - y0) : 0.0;
    return in / ((double)a->w * a->h + (double)b->w * b->h - in);
}

/* Calibrated by the public quantizer on half of the golden photos, the
 * int8 detector finds every face the float32 one finds on all of them (IoU
 * >= 0.95, score within 0.1: measured 0.985 and 0.046 with the bias
 * correction, 0.93 and 0.09 without; a face scored near the 0.5 threshold
 * may go either way); its compiled plan matches the op-by-op reference. */
static void test_int8_ssd(void **state) {
    (void)state;
    static char mp[4096];
    golden gd = {0};
    char out[] = "/tmp/facenet-test-int8-ssd-XXXXXX";
    if (open_network_case("ssd_mobilenetv1.safetensors", mp, &gd, out) != 0) return;
    facenet_ctx *ctx;
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 2;
    assert_int_equal(facenet_ctx_create(&cp, &ctx), FACENET_OK);
    facenet_model *m, *m8;
    assert_int_equal(facenet_model_load(ctx, mp, &m), FACENET_OK);
    const int np = (int)golden_photo_count(&gd);
    assert_true(np >= 2);
    facenet_image *photos = calloc((size_t)np, sizeof *photos);
    for (int p = 0; p < np; p++) golden_load_photo(&gd, (size_t)p, &photos[p]);
    golden_close(&gd);
    facenet_quantizer *q;
    facenet_quantize_params qp = facenet_quantize_default_params();
    assert_int_equal(facenet_quantizer_create(ctx, m, &qp, &q), FACENET_OK);
    assert_int_equal(facenet_quantizer_add(q, photos, np / 2), FACENET_OK);
    assert_int_equal(facenet_quantizer_count(q), np / 2);
    assert_int_equal(facenet_quantizer_write(q, out), FACENET_OK);
    facenet_quantizer_free(q);
    assert_int_equal(facenet_model_load(ctx, out, &m8), FACENET_OK);
    assert_true(fn_model_has_int8(m8) && !fn_model_has_int8(m));
    fn_arena a = {0};
    fn_exec ex;
    fn_exec_init(&ex, fn_backend_default(), ctx->pool, &a);
    int faces = 0;
    double worst_iou = 1, worst_score = 0;
    for (int p = 0; p < np; p++) {
        fn_face_box b32[32], b8[32];
        int n32 = 0, n8 = 0;
        fn_error e;
        ex.int8 = 0;
        assert_int_equal(fn_detect(m8, &ex, &photos[p], NULL, b32, 32, &n32, &e), FACENET_OK);
        ex.int8 = 1;
        assert_int_equal(fn_detect(m8, &ex, &photos[p], NULL, b8, 32, &n8, &e), FACENET_OK);
        for (int i = 0; i < n32; i++) {
            int best = -1;
            for (int j = 0; j < n8; j++)
                if (best < 0 || iou(&b32[i], &b8[j]) > iou(&b32[i], &b8[best])) best = j;
            if (best < 0 || iou(&b32[i], &b8[best]) < 0.5) {
                if (b32[i].score < 0.6f) continue; /* near the threshold: either way */
                fail_msg("photo %d: the int8 detector misses the face at (%.0f, %.0f) scored %.3f", p, b32[i].x,
                         b32[i].y, b32[i].score);
            }
            worst_iou = fmin(worst_iou, iou(&b32[i], &b8[best]));
            worst_score = fmax(worst_score, fabs(b32[i].score - b8[best].score));
            faces++;
        }
        for (int j = 0; j < n8; j++) {
            int matched = 0;
            for (int i = 0; i < n32 && !matched; i++) matched = iou(&b32[i], &b8[j]) >= 0.5;
            if (!matched && b8[j].score >= 0.6f)
                fail_msg("photo %d: the int8 detector finds a face the float32 one does not (score %.3f)", p,
                         b8[j].score);
        }
    }
    printf("SSD int8 (%s): %d faces on %d photos, worst IoU to float32 %.3f, worst score difference %.3f\n",
           facenet_backend_name(), faces, np, worst_iou, worst_score);
    if (!(worst_iou >= 0.95 && worst_score <= 0.1))
        fail_msg("int8 detections vs float32: IoU %.3f, score difference %.3f", worst_iou, worst_score);

    /* The compiled plan against the op-by-op reference, on the raw outputs
     * of the first photo. */
    if (FAST) {
        const fn_norm norm = {{127.5f, 127.5f, 127.5f}, 127.5f};
        const size_t per = (size_t)512 * 512 * 3, nb = (size_t)5118 * 4, nc = (size_t)5118 * 3;
        float *in = malloc(sizeof(float) * per), *y[3];
        for (int r = 0; r < 3; r++) y[r] = malloc(sizeof(float) * (nb + nc));
        assert_int_equal(fn_to_input(&ex, &photos[0], 512, 0, &norm, in), 0);
        fn_tensor x = fn_tensor_make(1, 512, 512, 3, in);
        fn_exec e2;
        fn_arena a2 = {0};
        fn_error err;
        const fn_backend *bes[3] = {FAST, &fn_backend_ref, FAST};
        const int int8[3] = {0, 1, 1};
        for (int r = 0; r < 3; r++) {
            fn_exec_init(&e2, bes[r], NULL, &a2);
            e2.int8 = int8[r];
            assert_int_equal(fn_ssd_mobilenetv1_forward(m8->net, &e2, &x, y[r], y[r] + nb, &err), FACENET_OK);
            fn_exec_release(&e2);
            fn_arena_reset(&a2);
        }
        fn_arena_free(&a2);
        const double nse = test_nse(y[2], y[1], nb + nc), quant = test_nse(y[1], y[0], nb + nc);
        printf("SSD int8 plan vs op-by-op reference: NSE %.3g (reference vs float32: NSE %.3g)\n", nse, quant);
        if (!(nse < 0.5 * quant)) fail_msg("int8 plan vs reference: NSE %.3g, not below half of %.3g", nse, quant);
        free(in);
        for (int r = 0; r < 3; r++) free(y[r]);
    }
    fn_exec_release(&ex);
    fn_arena_free(&a);
    for (int p = 0; p < np; p++) facenet_image_free(&photos[p]);
    free(photos);
    facenet_model_free(m8);
    facenet_model_free(m);
    facenet_ctx_free(ctx);
    unlink(out);
}

int main(void) {
    FAST = fn_backend_fast();
    setenv("FACENET_THREADS_ADAPT", "0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int8_conv_integers),
        cmocka_unit_test(test_int8_bias_correction),
        cmocka_unit_test(test_int8_mini_resnet),
        cmocka_unit_test(test_int8_mini_ssd),
        cmocka_unit_test(test_calibration_tensors),
        cmocka_unit_test(test_int8_resnet29),
        cmocka_unit_test(test_int8_ssd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
