/*
 * test_backend.c - the fast backend (oneDNN when built) against the
 * reference: every op it implements, on random tensors of many shapes, and
 * the whole embedding network on the golden chips.
 *
 * The measure is the normalized squared error sum (fast - ref)^2 / sum ref^2,
 * which must stay below 1e-8 (a few float ulps of disagreement; folding the
 * scale into the weights and a different summation order give ~1e-14).
 * Each op is run through the backend's per-op slot (NHWC) and as a one-op
 * graph (the backend's own layouts); the slots' return values are checked,
 * so a silent fall-back to the reference would fail the test rather than
 * pass it. Graph cases also cover the fusions the backend does: residual
 * adds into the convolution before them (in place or copied, zero-extended
 * in channels), the generic add (zero-extended in space), pools and the
 * global mean between convolutions. Odd cases run on 2 threads.
 *
 * Named outputs, depthwise-separable chains and the landmark net's sums
 * are graph cases too, and the detectors and landmark nets are checked
 * whole, as the graphs they bind, on real photos.
 *
 * Each case gets a fresh exec: the backend's caches assume that weights do
 * not change, which a test reusing freed buffers would break.
 *
 * Skips (77) when the library was built without a fast backend.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "core/pool.h"
#include "engine/engine.h"
#include "engine/graph.h"
#include "image/image.h"
#include "nets/landmark68.h"
#include "nets/preprocess.h"
#include "nets/resnet29.h"
#include "nets/ssd_mobilenetv1.h"
#include "nets/tiny_face_detector.h"
#include "testutil.h"
#include "util/json.h"

#define NSE_MAX 1e-8

static const fn_backend *FAST;
static fn_pool *POOL2;

typedef struct exec_pair {
    fn_exec ref, fast;
    fn_arena ref_arena, fast_arena;
} exec_pair;

/* The reference always runs on 2 threads (it is the slow part of the test);
 * the fast backend on `threads`. */
static void pair_open(exec_pair *p, int threads) {
    memset(p, 0, sizeof *p);
    assert_int_equal(fn_exec_init(&p->ref, &fn_backend_ref, POOL2, &p->ref_arena), 0);
    assert_int_equal(fn_exec_init(&p->fast, FAST, threads == 2 ? POOL2 : NULL, &p->fast_arena), 0);
    assert_non_null(p->fast.backend_state);
}

static void pair_close(exec_pair *p) {
    fn_exec_release(&p->ref);
    fn_exec_release(&p->fast);
    fn_arena_free(&p->ref_arena);
    fn_arena_free(&p->fast_arena);
}

static float *rnd(size_t n, uint64_t seed, float lo, float hi) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    test_fill_random(p, n, seed, lo, hi);
    return p;
}

static float *zeros(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static const char *ACT_NAME[] = {"none", "relu", "relu6", "leaky"};

static double WORST;  /* the largest error seen by the current test */
static int DECLINED; /* per-op convolutions the backend left to the reference */

static void check_nse(const float *fast, const float *ref, size_t n, const char *what) {
    double e = test_nse(fast, ref, n);
    if (!(e <= NSE_MAX)) fail_msg("%s: normalized squared error %.3g > %g", what, e, NSE_MAX);
    if (e > WORST) WORST = e;
}

/* ---------------------------------------------------------------- convolution */

typedef struct conv_case {
    int n, h, w, cin, cout, k, stride, depthwise, epi; /* epi bits: 1 bias, 2 scale, 4 shift */
    fn_padding pad;
    fn_act act;
} conv_case;

static void run_conv_case(const conv_case *cc, int threads, uint64_t seed) {
    char what[256];
    snprintf(what, sizeof what,
             "conv n%d %dx%dx%d -> %d, %dx%d/%d %s%s, bias %d scale %d shift %d, %s, %d thread(s)", cc->n,
             cc->h, cc->w, cc->cin, cc->cout, cc->k, cc->k, cc->stride,
             cc->pad == FN_PAD_SAME ? "SAME" : "VALID", cc->depthwise ? " depthwise" : "", cc->epi & 1,
             (cc->epi >> 1) & 1, (cc->epi >> 2) & 1, ACT_NAME[cc->act], threads);
    const int fan_in = cc->k * cc->k * (cc->depthwise ? 1 : cc->cin);
    const float ws = sqrtf(3.0f / (float)fan_in);
    size_t wn = (size_t)cc->k * cc->k * cc->cin * (cc->depthwise ? 1 : cc->cout);
    float *w = rnd(wn, seed + 1, -ws, ws);
    float *b = rnd((size_t)cc->cout, seed + 2, -0.5f, 0.5f),
          *s = rnd((size_t)cc->cout, seed + 3, -1.5f, 1.5f);
    float *t = rnd((size_t)cc->cout, seed + 4, -0.5f, 0.5f);
    fn_conv_desc d = {.kh = cc->k,
                      .kw = cc->k,
                      .stride = cc->stride,
                      .padding = cc->pad,
                      .cin = cc->cin,
                      .cout = cc->cout,
                      .depthwise = cc->depthwise,
                      .weights = w,
                      .bias = cc->epi & 1 ? b : NULL,
                      .scale = cc->epi & 2 ? s : NULL,
                      .shift = cc->epi & 4 ? t : NULL,
                      .act = cc->act,
                      .alpha = 0.1f};
    int oh, ow;
    assert_int_equal(fn_conv_shape(&d, cc->h, cc->w, &oh, &ow), 0);
    size_t xn = (size_t)cc->n * cc->h * cc->w * cc->cin, yn = (size_t)cc->n * oh * ow * cc->cout;
    /* Inputs up to +-4 so that ReLU6 clips a good share of the outputs. */
    fn_tensor x = fn_tensor_make(cc->n, cc->h, cc->w, cc->cin, rnd(xn, seed, -4.0f, 4.0f));
    fn_tensor yr = fn_tensor_make(cc->n, oh, ow, cc->cout, zeros(yn));
    fn_tensor yf = fn_tensor_make(cc->n, oh, ow, cc->cout, zeros(yn));
    fn_tensor yg = fn_tensor_make(cc->n, oh, ow, cc->cout, zeros(yn));
    exec_pair p;
    pair_open(&p, threads);
    fn_ref_conv2d(&p.ref, &x, &d, &yr);
    /* The per-op slot may decline a case (when oneDNN has only its reference
     * kernel for it on NHWC); the graph must always run. */
    int declined = FAST->conv2d(&p.fast, &x, &d, &yf) != 0;
    DECLINED += declined;
    fn_graph *g = fn_graph_new(cc->h, cc->w, cc->cin);
    assert_true(fn_graph_conv(g, 0, &d) > 0 && fn_graph_ok(g));
    if (FAST->graph_run(&p.fast, g, &x, &yg) != 0)
        fail_msg("%s: the backend refused the one-conv graph", what);
    char w2[300];
    snprintf(w2, sizeof w2, "%s (per op)", what);
    if (!declined) check_nse(yf.data, yr.data, yn, w2);
    snprintf(w2, sizeof w2, "%s (graph)", what);
    check_nse(yg.data, yr.data, yn, w2);
    fn_graph_free(g);
    pair_close(&p);
    free(x.data), free(yr.data), free(yf.data), free(yg.data);
    free(w), free(b), free(s), free(t);
}

static uint64_t lcg(uint64_t *s) {
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return *s >> 33;
}

/* Every kernel size, stride, padding, epilogue and activation, over odd and
 * even sizes, 3 to 1024 channels, batch 1 and 3, depthwise and not. The
 * parameters cycle with different periods so that all 32 combinations of
 * epilogue x activation meet every kernel size; channel counts and sizes
 * are drawn, with the work capped so the reference stays quick. */
static void test_conv_against_reference(void **state) {
    (void)state;
    WORST = 0;
    static const int KS[] = {1, 3, 5, 7};
    static const int CH[] = {3, 4, 8, 16, 24, 32, 40, 64, 96, 128, 256, 512, 1024};
    static const int SZ[] = {1, 2, 3, 4, 5, 7, 8, 13, 16, 17, 35};
    uint64_t r = 12345;
    int cases = 0;
    for (int i = 0; i < 256; i++) {
        conv_case cc = {0};
        cc.epi = i % 8;
        cc.act = (fn_act)((i / 8) % 4);
        cc.k = KS[(i / 32) % 4];
        cc.stride = 1 + i % 2;
        cc.pad = (i / 2) % 2 ? FN_PAD_VALID : FN_PAD_SAME;
        cc.depthwise = i % 5 == 0;
        cc.n = (i / 3) % 2 ? 3 : 1;
        for (int tries = 0;; tries++) {
            cc.cin = CH[lcg(&r) % 13];
            cc.cout = cc.depthwise ? cc.cin : CH[lcg(&r) % 13];
            cc.h = SZ[lcg(&r) % 11];
            cc.w = SZ[lcg(&r) % 11];
            if (cc.pad == FN_PAD_VALID && (cc.h < cc.k || cc.w < cc.k)) continue;
            double macs = (double)cc.n * cc.h * cc.w * cc.cout * cc.k * cc.k * (cc.depthwise ? 1 : cc.cin);
            if (macs <= 2e7 || tries > 50) break;
        }
        if (cc.pad == FN_PAD_VALID && (cc.h < cc.k || cc.w < cc.k)) cc.h = cc.w = cc.k;
        run_conv_case(&cc, 1 + i % 2, 1000 + (uint64_t)i);
        cases++;
    }
    /* The ResNet's own layers and TF's asymmetric stride-2 SAME padding. */
    const conv_case fixed[] = {
        {1, 150, 150, 3, 32, 7, 2, 0, 7, FN_PAD_VALID, FN_ACT_RELU},
        {3, 35, 35, 32, 64, 3, 2, 0, 7, FN_PAD_VALID, FN_ACT_RELU},
        {1, 4, 4, 256, 256, 3, 2, 0, 7, FN_PAD_VALID, FN_ACT_RELU},
        {2, 16, 16, 32, 32, 3, 2, 0, 1, FN_PAD_SAME, FN_ACT_RELU6},
        {2, 16, 16, 32, 32, 3, 2, 1, 6, FN_PAD_SAME, FN_ACT_RELU6},
        {1, 12, 10, 1024, 1024, 3, 2, 1, 7, FN_PAD_SAME, FN_ACT_LEAKY},
        {1, 6, 6, 1024, 64, 1, 1, 0, 3, FN_PAD_SAME, FN_ACT_NONE},
    };
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++, cases++)
        run_conv_case(&fixed[i], 1 + (int)(i % 2), 5000 + i);
    printf("backend %s: %d convolutions match the reference (worst NSE %.2g); the per-op slot declined %d\n",
           FAST->name, cases, WORST, DECLINED);
    assert_true(DECLINED * 10 < cases);
}

/* ---------------------------------------------------------------- dense */

static void test_dense_against_reference(void **state) {
    (void)state;
    WORST = 0;
    static const int INS[] = {1, 7, 128, 256, 1000}, OUTS[] = {1, 5, 128, 300};
    int cases = 0;
    for (int i = 0; i < 5 * 4 * 2 * 2; i++) {
        int in = INS[i % 5], out = OUTS[(i / 5) % 4], n = (i / 20) % 2 ? 3 : 1, with_bias = (i / 40) % 2;
        /* Sometimes a [n, 2, 2, c] input, read as rows of h*w*c (NHWC order). */
        int h = in % 4 == 0 && i % 3 == 0 ? 2 : 1, c = in / (h * h);
        float *w = rnd((size_t)in * out, 77 + i, -0.2f, 0.2f), *b = rnd((size_t)out, 78 + i, -1, 1);
        fn_tensor x = fn_tensor_make(n, h, h, c, rnd((size_t)n * in, 79 + i, -2, 2));
        fn_tensor yr = fn_tensor_make(n, 1, 1, out, zeros((size_t)n * out));
        fn_tensor yf = fn_tensor_make(n, 1, 1, out, zeros((size_t)n * out));
        fn_tensor yg = fn_tensor_make(n, 1, 1, out, zeros((size_t)n * out));
        char what[128];
        snprintf(what, sizeof what, "dense n%d [%dx%dx%d] -> %d, bias %d", n, h, h, c, out, with_bias);
        exec_pair p;
        pair_open(&p, 1 + i % 2);
        const float *bias = with_bias ? b : NULL;
        fn_ref_dense(&p.ref, &x, w, bias, &yr);
        if (FAST->dense(&p.fast, &x, w, bias, &yf) != 0) fail_msg("%s: refused per op", what);
        fn_graph *g = fn_graph_new(h, h, c);
        assert_true(fn_graph_dense(g, 0, w, bias, out) > 0 && fn_graph_ok(g));
        if (FAST->graph_run(&p.fast, g, &x, &yg) != 0) fail_msg("%s: refused as a graph", what);
        check_nse(yf.data, yr.data, (size_t)n * out, what);
        check_nse(yg.data, yr.data, (size_t)n * out, what);
        fn_graph_free(g);
        pair_close(&p);
        free(w), free(b), free(x.data), free(yr.data), free(yf.data), free(yg.data);
        cases++;
    }
    printf("backend %s: %d dense layers match the reference (worst NSE %.2g)\n", FAST->name, cases, WORST);
}

/* ---------------------------------------------------------------- graphs */

/* Run g on a random input with both backends; compare every output. */
static void check_graph(const fn_graph *g, int n, int threads, uint64_t seed, const char *what) {
    assert_true(fn_graph_ok(g));
    const int no = fn_graph_n_outputs(g);
    fn_tensor yr[16], yf[16], ya[16];
    assert_true(no <= 16);
    size_t xn = (size_t)n * g->h * g->w * g->c;
    fn_tensor x = fn_tensor_make(n, g->h, g->w, g->c, rnd(xn, seed, -2.0f, 2.0f));
    for (int k = 0; k < no; k++) {
        int oh, ow, oc;
        fn_graph_shape(g, fn_graph_output_value(g, k), &oh, &ow, &oc);
        size_t yn = (size_t)n * oh * ow * oc;
        yr[k] = fn_tensor_make(n, oh, ow, oc, zeros(yn));
        yf[k] = fn_tensor_make(n, oh, ow, oc, zeros(yn));
        ya[k] = fn_tensor_make(n, oh, ow, oc, zeros(yn));
    }
    exec_pair p;
    pair_open(&p, threads);
    assert_int_equal(fn_graph_run_ops(&p.ref, g, &x, yr), 0);
    if (FAST->graph_run(&p.fast, g, &x, yf) != 0) fail_msg("%s: the backend refused the graph", what);
    /* A second run reuses the compiled plan and must give the same bits. */
    fn_arena_reset(&p.fast_arena);
    assert_int_equal(FAST->graph_run(&p.fast, g, &x, ya), 0);
    for (int k = 0; k < no; k++) {
        char w2[300];
        snprintf(w2, sizeof w2, "%s, output %d of %d", what, k, no);
        check_nse(yf[k].data, yr[k].data, fn_tensor_count(&yr[k]), w2);
        if (memcmp(ya[k].data, yf[k].data, fn_tensor_count(&yf[k]) * sizeof(float)) != 0)
            fail_msg("%s: a second run differs", w2);
        free(yr[k].data), free(yf[k].data), free(ya[k].data);
    }
    pair_close(&p);
    free(x.data);
}

/* Convolution parameters owned by a test graph. */
typedef struct conv_store {
    fn_conv_desc d[32];
    float *mem[128];
    int nd, nm;
} conv_store;

static const fn_conv_desc *make_conv(conv_store *cs, int k, int stride, fn_padding pad, int cin, int cout,
                                     fn_act act, uint64_t seed) {
    float ws = sqrtf(3.0f / (float)(k * k * cin));
    float *w = rnd((size_t)k * k * cin * cout, seed, -ws, ws), *b = rnd((size_t)cout, seed + 1, -0.3f, 0.3f);
    float *s = rnd((size_t)cout, seed + 2, 0.5f, 1.5f), *t = rnd((size_t)cout, seed + 3, -0.3f, 0.3f);
    cs->mem[cs->nm++] = w, cs->mem[cs->nm++] = b, cs->mem[cs->nm++] = s, cs->mem[cs->nm++] = t;
    fn_conv_desc *d = &cs->d[cs->nd++];
    *d = (fn_conv_desc){.kh = k,
                        .kw = k,
                        .stride = stride,
                        .padding = pad,
                        .cin = cin,
                        .cout = cout,
                        .weights = w,
                        .bias = b,
                        .scale = s,
                        .shift = t,
                        .act = act};
    return d;
}

static void store_free(conv_store *cs) {
    for (int i = 0; i < cs->nm; i++) free(cs->mem[i]);
    cs->nm = cs->nd = 0;
}

static void test_graph_pools(void **state) {
    (void)state;
    WORST = 0;
    int cases = 0;
    for (int i = 0; i < 96; i++) {
        int k = 1 + i % 3, s = 1 + (i / 3) % 2, h = 3 + (i * 7) % 9, w = 3 + (i * 5) % 10,
            c = (i % 4 + 1) * 8;
        fn_padding pad = (i / 6) % 2 ? FN_PAD_SAME : FN_PAD_VALID;
        fn_op_kind kind = (i / 12) % 2 ? FN_OP_AVGPOOL : FN_OP_MAXPOOL;
        int after_conv = (i / 24) % 2, n = (i / 48) % 2 ? 3 : 1;
        conv_store cs = {0};
        fn_graph *g = fn_graph_new(h, w, c);
        int v = after_conv
                    ? fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_SAME, c, 32, FN_ACT_NONE, 40 + i))
                    : 0;
        fn_graph_pool(g, v, kind, k, s, pad);
        char what[128];
        snprintf(what, sizeof what, "%s pool %dx%d/%d %s on n%d %dx%dx%d%s",
                 kind == FN_OP_MAXPOOL ? "max" : "avg", k, k, s, pad == FN_PAD_SAME ? "SAME" : "VALID", n, h,
                 w, c, after_conv ? " after a conv" : "");
        check_graph(g, n, 1 + i % 2, 900 + i, what);
        fn_graph_free(g);
        store_free(&cs);
        cases++;
    }
    /* Global mean, alone and between a conv and a dense layer. */
    for (int i = 0; i < 8; i++, cases++) {
        int h = 1 + i, c = 16 * (1 + i % 3);
        conv_store cs = {0};
        float *fc = rnd((size_t)c * 10, 5 + i, -0.3f, 0.3f);
        fn_graph *g = fn_graph_new(h, h + 1, c);
        int v = i % 2 ? fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_SAME, c, c, FN_ACT_RELU, 60 + i)) : 0;
        v = fn_graph_global_mean(g, v);
        if (i % 4 >= 2) fn_graph_dense(g, v, fc, NULL, 10);
        check_graph(g, 1 + 2 * (i % 2), 1 + i % 2, 70 + i, "global mean");
        fn_graph_free(g);
        store_free(&cs);
        free(fc);
    }
    printf("backend %s: %d pooling graphs match the reference (worst NSE %.2g)\n", FAST->name, cases, WORST);
}

/* Residual adds: fused into the conv in place, fused with a copy (the
 * shortcut lives on), zero-extended in channels (a down block), in space
 * (the main path one pixel smaller), with the user's input as the shortcut,
 * and adds that follow no conv; every activation after the add. */
static void test_graph_residual_adds(void **state) {
    (void)state;
    WORST = 0;
    int cases = 0;
    for (int i = 0; i < 4 * 7; i++) {
        fn_act act = (fn_act)(i % 4);
        int variant = i / 4, n = 1 + 2 * (i % 2), h = 9, c = 16;
        conv_store cs = {0};
        fn_graph *g = NULL;
        const char *name = "";
        if (variant == 0) { /* a plain residual block: conv accumulates over its shortcut in place */
            name = "in place";
            g = fn_graph_new(h, h, c);
            int x = fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_SAME, c, 32, FN_ACT_RELU, 100 + i));
            int m = fn_graph_conv(g, x, make_conv(&cs, 3, 1, FN_PAD_SAME, 32, 32, FN_ACT_RELU, 110 + i));
            m = fn_graph_conv(g, m, make_conv(&cs, 3, 1, FN_PAD_SAME, 32, 32, FN_ACT_NONE, 120 + i));
            fn_graph_add(g, m, x, act, 0.1f);
        } else if (variant == 1) { /* the shortcut is used again after the add: copied */
            name = "copied shortcut";
            g = fn_graph_new(h, h, c);
            int x = fn_graph_conv(g, 0, make_conv(&cs, 1, 1, FN_PAD_SAME, c, 32, FN_ACT_RELU, 130 + i));
            int m = fn_graph_conv(g, x, make_conv(&cs, 3, 1, FN_PAD_SAME, 32, 32, FN_ACT_NONE, 140 + i));
            int y = fn_graph_add(g, x, m, act, 0.1f);
            fn_graph_add(g, y, x, act, 0.1f);
        } else if (variant == 2) { /* down block, same size: shortcut zero-extended in channels */
            name = "down block, channels";
            g = fn_graph_new(h, h, c);
            int sc = fn_graph_pool(g, 0, FN_OP_AVGPOOL, 2, 2, FN_PAD_VALID);
            int m = fn_graph_conv(g, 0, make_conv(&cs, 3, 2, FN_PAD_VALID, c, 32, FN_ACT_RELU, 150 + i));
            m = fn_graph_conv(g, m, make_conv(&cs, 3, 1, FN_PAD_SAME, 32, 32, FN_ACT_NONE, 160 + i));
            fn_graph_add(g, m, sc, act, 0.1f);
        } else if (variant == 3) { /* down block, main path one pixel smaller: not fusable */
            name = "down block, space";
            g = fn_graph_new(8, 8, c);
            int x = fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_SAME, c, 32, FN_ACT_RELU, 170 + i));
            int sc = fn_graph_pool(g, x, FN_OP_AVGPOOL, 2, 2, FN_PAD_VALID);
            int m = fn_graph_conv(g, x, make_conv(&cs, 3, 2, FN_PAD_VALID, 32, 64, FN_ACT_RELU, 180 + i));
            m = fn_graph_conv(g, m, make_conv(&cs, 3, 1, FN_PAD_SAME, 64, 64, FN_ACT_NONE, 190 + i));
            fn_graph_add(g, m, sc, act, 0.1f);
        } else if (variant == 4) { /* the graph's input as the shortcut */
            name = "input shortcut";
            g = fn_graph_new(h, h + 2, c);
            int m = fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_SAME, c, c, FN_ACT_NONE, 200 + i));
            fn_graph_add(g, 0, m, act, 0.1f);
        } else if (variant == 6) { /* a conv followed by an add that is not its own: no fusion */
            name = "unrelated add";
            g = fn_graph_new(h, h, c);
            int a = fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_SAME, c, c, FN_ACT_NONE, 230 + i));
            int b = fn_graph_conv(g, 0, make_conv(&cs, 1, 1, FN_PAD_SAME, c, c, FN_ACT_RELU, 240 + i));
            int x = fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_SAME, c, c, FN_ACT_NONE, 250 + i));
            int y = fn_graph_add(g, a, b, act, 0.1f);
            fn_graph_add(g, y, x, FN_ACT_NONE, 0.0f);
        } else { /* two adds of partial shapes: each input covers only part of the output */
            name = "partial shapes";
            g = fn_graph_new(h, h, c);
            int a = fn_graph_conv(g, 0, make_conv(&cs, 3, 1, FN_PAD_VALID, c, 48, FN_ACT_NONE, 210 + i));
            int b = fn_graph_conv(g, 0, make_conv(&cs, 1, 1, FN_PAD_SAME, c, 32, FN_ACT_RELU, 220 + i));
            int y = fn_graph_add(g, a, b, act, 0.1f);
            fn_graph_add(g, y, b, FN_ACT_NONE, 0.0f);
        }
        char what[128];
        snprintf(what, sizeof what, "residual add (%s), %s, n%d", name, ACT_NAME[act], n);
        check_graph(g, n, 1 + (i / 2) % 2, 300 + i, what);
        fn_graph_free(g);
        store_free(&cs);
        cases++;
    }
    printf("backend %s: %d residual graphs match the reference (worst NSE %.2g)\n", FAST->name, cases, WORST);
}

/* A depthwise 3x3 conv (its scale and shift as a folded batch norm). */
static const fn_conv_desc *make_dw(conv_store *cs, int stride, int c, fn_act act, uint64_t seed) {
    float *w = rnd((size_t)9 * c, seed, -0.6f, 0.6f), *s = rnd((size_t)c, seed + 2, 0.5f, 1.5f);
    float *t = rnd((size_t)c, seed + 3, -0.3f, 0.3f);
    cs->mem[cs->nm++] = w, cs->mem[cs->nm++] = s, cs->mem[cs->nm++] = t;
    fn_conv_desc *d = &cs->d[cs->nd++];
    *d = (fn_conv_desc){.kh = 3,
                        .kw = 3,
                        .stride = stride,
                        .padding = FN_PAD_SAME,
                        .cin = c,
                        .cout = c,
                        .depthwise = 1,
                        .weights = w,
                        .scale = s,
                        .shift = t,
                        .act = act,
                        .alpha = 0.1f};
    return d;
}

/* MobileNet-style chains, as the detectors and the landmark net are built:
 * depthwise 3x3 (stride 1 and 2, TF SAME, odd and even planes) then a
 * pointwise 1x1, with every activation, max pools between them (2x2/2 and
 * 2x2/1 SAME, as the tiny detector's), over channel counts that fill the
 * channel block and counts that do not. */
static void test_graph_depthwise_separable(void **state) {
    (void)state;
    WORST = 0;
    static const int CH[] = {32, 16, 64, 24, 48, 8};
    int cases = 0;
    for (int i = 0; i < 24; i++) {
        const int c0 = CH[i % 6], c1 = CH[(i + 1) % 6], h = 7 + (i * 5) % 12, w = 6 + (i * 3) % 13;
        const fn_act act = (fn_act)(i % 4);
        const int n = i % 3 == 0 ? 2 : 1;
        conv_store cs = {0};
        fn_graph *g = fn_graph_new(h, w, 3);
        int v = fn_graph_conv(g, 0, make_conv(&cs, 3, 2, FN_PAD_SAME, 3, c0, act, 500 + i));
        v = fn_graph_conv(g, v, make_dw(&cs, 1, c0, act, 510 + i));
        v = fn_graph_conv(g, v, make_conv(&cs, 1, 1, FN_PAD_SAME, c0, c1, act, 520 + i));
        if (i % 2) v = fn_graph_pool(g, v, FN_OP_MAXPOOL, 2, 1 + (i / 2) % 2, FN_PAD_SAME);
        v = fn_graph_conv(g, v, make_dw(&cs, 2, c1, FN_ACT_NONE, 530 + i));
        v = fn_graph_conv(g, v, make_conv(&cs, 1, 1, FN_PAD_VALID, c1, 2 * c1, FN_ACT_LEAKY, 540 + i));
        char what[160];
        snprintf(what, sizeof what, "separable chain %d -> %d, %s, n%d, %dx%d", c0, c1, ACT_NAME[act], n, h, w);
        check_graph(g, n, 1 + i % 2, 550 + i, what);
        fn_graph_free(g);
        store_free(&cs);
        cases++;
    }
    printf("backend %s: %d depthwise-separable graphs match the reference (worst NSE %.2g)\n", FAST->name,
           cases, WORST);
}

/* Named outputs: heads on several maps (channel counts off the block, as
 * the SSD's), an output that later layers also read, a dense output, an
 * add's output, in an order unlike the values'. */
static void test_graph_outputs(void **state) {
    (void)state;
    WORST = 0;
    int cases = 0;
    for (int i = 0; i < 8; i++) {
        const int n = 1 + 2 * (i % 2), c = 32;
        conv_store cs = {0};
        float *fc = rnd((size_t)64 * 7, 600 + i, -0.3f, 0.3f), *fb = rnd(7, 610 + i, -1, 1);
        fn_graph *g = fn_graph_new(16, 16, 3);
        int a = fn_graph_conv(g, 0, make_conv(&cs, 3, 2, FN_PAD_SAME, 3, c, FN_ACT_RELU6, 620 + i));
        int b = fn_graph_conv(g, a, make_conv(&cs, 3, 2, FN_PAD_SAME, c, 64, FN_ACT_RELU6, 630 + i));
        int m = fn_graph_conv(g, b, make_conv(&cs, 1, 1, FN_PAD_SAME, 64, 64, FN_ACT_NONE, 640 + i));
        int r = fn_graph_add(g, m, b, FN_ACT_RELU, 0.0f);
        int gm = fn_graph_global_mean(g, r);
        int d = fn_graph_dense(g, gm, fc, i % 2 ? fb : NULL, 7);
        int h0 = fn_graph_conv(g, a, make_conv(&cs, 1, 1, FN_PAD_SAME, c, 12, FN_ACT_NONE, 650 + i));
        int h1 = fn_graph_conv(g, a, make_conv(&cs, 1, 1, FN_PAD_SAME, c, 9, FN_ACT_NONE, 660 + i));
        int h2 = fn_graph_conv(g, b, make_conv(&cs, 3, 1, FN_PAD_SAME, 64, 24, FN_ACT_NONE, 670 + i));
        /* Different subsets and orders. */
        switch (i % 4) {
        case 0: fn_graph_output(g, h0), fn_graph_output(g, h1), fn_graph_output(g, h2); break;
        case 1: fn_graph_output(g, d), fn_graph_output(g, h2), fn_graph_output(g, a); break;
        case 2: fn_graph_output(g, r), fn_graph_output(g, h1), fn_graph_output(g, b), fn_graph_output(g, d); break;
        default: fn_graph_output(g, h2), fn_graph_output(g, m), fn_graph_output(g, h0); break;
        }
        assert_int_equal(fn_graph_output(g, fn_graph_output_value(g, 0)), -1); /* named twice */
        g->bad = 0; /* the refusal marked the graph bad; it is otherwise fine */
        char what[64];
        snprintf(what, sizeof what, "outputs, variant %d, n%d", i % 4, n);
        check_graph(g, n, 1 + (i / 2) % 2, 680 + i, what);
        fn_graph_free(g);
        store_free(&cs);
        free(fc), free(fb);
        cases++;
    }
    /* Refused outputs: the input and values that do not exist. */
    fn_graph *g = fn_graph_new(4, 4, 8);
    assert_int_equal(fn_graph_output(g, 0), -1);
    assert_false(fn_graph_ok(g));
    fn_graph_free(g);
    g = fn_graph_new(4, 4, 8);
    assert_int_equal(fn_graph_output(g, 1), -1);
    fn_graph_free(g);
    printf("backend %s: %d graphs with named outputs match the reference (worst NSE %.2g)\n", FAST->name,
           cases, WORST);
}

/* The landmark net's dense blocks: relu(o1 + (o2 + (o3 + o4))) over
 * outputs that are read again by later sums (not fusable into the conv),
 * the last one fusable, at 1 and 2 threads. */
static void test_graph_dense_block_sums(void **state) {
    (void)state;
    WORST = 0;
    int cases = 0;
    for (int i = 0; i < 8; i++) {
        const int c = i % 4 < 2 ? 32 : 24, n = 1 + 2 * (i % 2), convs = 3 + (i / 2) % 2;
        conv_store cs = {0};
        fn_graph *g = fn_graph_new(12, 12, c);
        int o[4];
        o[0] = fn_graph_conv(g, 0, make_conv(&cs, 3, 2, FN_PAD_SAME, c, c, FN_ACT_RELU, 700 + i));
        for (int k = 1; k <= convs; k++) {
            int in = o[0];
            if (k >= 2) {
                in = o[k - 1];
                for (int j = k - 2; j >= 0; j--)
                    in = fn_graph_add(g, o[j], in, j == 0 ? FN_ACT_RELU : FN_ACT_NONE, 0.0f);
            }
            if (k == convs) break;
            in = fn_graph_conv(g, in, make_dw(&cs, 1, c, FN_ACT_NONE, 710 + 10 * i + k));
            o[k] = fn_graph_conv(g, in, make_conv(&cs, 1, 1, FN_PAD_SAME, c, c, FN_ACT_NONE, 750 + 10 * i + k));
        }
        char what[64];
        snprintf(what, sizeof what, "dense block of %d convs, %d channels, n%d", convs, c, n);
        check_graph(g, n, 1 + (i / 4) % 2, 790 + i, what);
        fn_graph_free(g);
        store_free(&cs);
        cases++;
    }
    printf("backend %s: %d dense-block graphs match the reference (worst NSE %.2g)\n", FAST->name, cases,
           WORST);
}

/* ---------------------------------------------------------------- the network */

typedef struct net_fixture {
    facenet_ctx *ctx;
    facenet_model *model;
    facenet_image chips[44];
    int n_chips;
} net_fixture;

static int rect_of(const fn_json *r, int *x, int *y, int *w, int *h) {
    int64_t v[4];
    const char *k[4] = {"x", "y", "w", "h"};
    for (int i = 0; i < 4; i++)
        if (!fn_json_int64(fn_json_get(r, k[i]), &v[i])) return -1;
    *x = (int)v[0], *y = (int)v[1], *w = (int)v[2], *h = (int)v[3];
    return 0;
}

/* The 22 golden faces, each as its 150x150 window and as face-api's crop. */
static int load_chips(net_fixture *f, const char *photo_dir) {
    size_t len;
    char *text = (char *)test_read_file(test_source_path("tests/golden/faceapi_demo.json"), &len);
    fn_error e;
    fn_json *golden = text ? fn_json_parse(text, len, &e) : NULL;
    free(text);
    if (!golden) return -1;
    const fn_json *photos = fn_json_get(golden, "photos");
    for (size_t p = 0; photos && p < photos->count; p++) {
        const fn_json *ph = &photos->items[p];
        char path[4200];
        snprintf(path, sizeof path, "%.4000s/%.100s", photo_dir, fn_json_get(ph, "file")->str);
        facenet_image img = {0};
        if (fn_image_load(path, NULL, &img, &e) != FACENET_OK) break;
        const fn_json *ssd = fn_json_get(ph, "ssd");
        for (size_t i = 0; i < ssd->count && f->n_chips + 2 <= 44; i++) {
            const char *keys[2] = {"chip150_rect", "descriptor_rect"};
            for (int k = 0; k < 2; k++) {
                int x, y, w, h;
                if (rect_of(fn_json_get(&ssd->items[i], keys[k]), &x, &y, &w, &h) == 0 &&
                    facenet_image_crop(f->ctx, &img, x, y, w, h, &f->chips[f->n_chips]) == FACENET_OK)
                    f->n_chips++;
            }
        }
        facenet_image_free(&img);
    }
    fn_json_free(golden);
    return f->n_chips == 44 ? 0 : -1;
}

/* The embedding network on the golden chips: the compiled graph directly
 * (so that a fall-back cannot hide), and the library's whole embedding path
 * (preprocessing, batches of 16 and the rest). */
static void test_resnet29_golden_chips(void **state) {
    (void)state;
    const char *mp = test_model_path("dlib_resnet29.safetensors");
    const char *ph = mp ? test_model_path("face-api-1.7.15/demo/sample1.jpg") : NULL;
    if (!mp || !ph) {
        skip();
        return;
    }
    static char dir[4096];
    snprintf(dir, sizeof dir, "%s", ph);
    *strrchr(dir, '/') = '\0';
    net_fixture f = {0};
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 2;
    assert_int_equal(facenet_ctx_create(&cp, &f.ctx), FACENET_OK);
    assert_int_equal(facenet_model_load(f.ctx, test_model_path("dlib_resnet29.safetensors"), &f.model),
                     FACENET_OK);
    assert_int_equal(load_chips(&f, dir), 0);
    const fn_graph *g = fn_resnet29_graph(f.model->net);
    assert_non_null(g);
    /* The 22 windows (no resize) as one input; the reference once. */
    const fn_norm norm = {{fn_resnet29_mean[0], fn_resnet29_mean[1], fn_resnet29_mean[2]}, 255.0f};
    const size_t chip_floats = (size_t)150 * 150 * 3;
    float *in = zeros(22 * chip_floats), yr[22 * 128], er[44 * 128];
    exec_pair p;
    pair_open(&p, 2);
    for (int i = 0; i < 22; i++)
        assert_int_equal(fn_to_input(&p.ref, &f.chips[2 * i], 150, 1, &norm, in + i * chip_floats), 0);
    fn_tensor xr = fn_tensor_make(22, 150, 150, 3, in), tr = fn_tensor_make(22, 1, 1, 128, yr);
    assert_int_equal(fn_graph_run_ops(&p.ref, g, &xr, &tr), 0);
    fn_error e;
    assert_int_equal(fn_embed_batch(f.model, &p.ref, f.chips, 44, er, FACENET_EMBED_RAW, &e), FACENET_OK);
    pair_close(&p);
    for (int threads = 1; threads <= 2; threads++) {
        pair_open(&p, threads);
        /* The compiled graph in batches of 16, 5 and 1. */
        const int batches[3][2] = {{0, 16}, {16, 5}, {21, 1}};
        double worst = 0;
        for (int b = 0; b < 3; b++) {
            int first = batches[b][0], nb = batches[b][1];
            float yf[16 * 128];
            fn_tensor x = fn_tensor_make(nb, 150, 150, 3, in + first * chip_floats);
            fn_tensor tf = fn_tensor_make(nb, 1, 1, 128, yf);
            fn_arena_reset(&p.fast_arena);
            assert_int_equal(FAST->graph_run(&p.fast, g, &x, &tf), 0);
            for (int i = 0; i < nb; i++) {
                double err = test_nse(yf + i * 128, yr + (first + i) * 128, 128);
                worst = fmax(worst, err);
                if (!(err <= NSE_MAX))
                    fail_msg("chip %d, %d thread(s): NSE %.3g > %g", first + i, threads, err, NSE_MAX);
            }
        }
        /* The whole embedding path, all 44 chips (batches of 16, 16, 12). */
        float ef[44 * 128];
        assert_int_equal(fn_embed_batch(f.model, &p.fast, f.chips, 44, ef, FACENET_EMBED_RAW, &e),
                         FACENET_OK);
        double all = test_nse(ef, er, 44 * 128);
        if (!(all <= NSE_MAX)) fail_msg("embedding path, %d thread(s): NSE %.3g > %g", threads, all, NSE_MAX);
        printf("backend %s, %d thread(s): 22 golden chips, worst NSE per chip %.3g; 44 chips through the "
               "embedding path: NSE %.3g\n",
               FAST->name, threads, worst, all);
        pair_close(&p);
    }
    free(in);
    for (int i = 0; i < f.n_chips; i++) facenet_image_free(&f.chips[i]);
    facenet_model_free(f.model);
    facenet_ctx_free(f.ctx);
}

/* The detectors and the landmark nets as their graphs, on real photos:
 * every output of the fast backend's compiled graph against the reference
 * run op by op, at 1 and 2 threads. The inputs are whole demo photos (and,
 * for the landmark nets, three crops of one in a batch). */
static void run_net_graph(const char *model, int size, const fn_norm *norm, float minus, int batch) {
    static char mp[4096];
    const char *found = test_model_path(model);
    if (found) snprintf(mp, sizeof mp, "%s", found);
    const char *ph = found ? test_model_path("face-api-1.7.15/demo/sample1.jpg") : NULL;
    if (!found || !ph) {
        skip();
        return;
    }
    facenet_ctx *ctx = NULL;
    facenet_model *m = NULL;
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 1;
    assert_int_equal(facenet_ctx_create(&cp, &ctx), FACENET_OK);
    assert_int_equal(facenet_model_load(ctx, mp, &m), FACENET_OK);
    const fn_graph *g = !strcmp(m->arch->name, "ssd_mobilenetv1")      ? fn_ssd_mobilenetv1_graph(m->net)
                        : !strcmp(m->arch->name, "tiny_face_detector") ? fn_tiny_face_detector_graph(m->net)
                                                                       : fn_landmark68_graph(m->net);
    assert_non_null(g);
    assert_int_equal(g->h, size);
    facenet_image img = {0};
    fn_error e;
    assert_int_equal(fn_image_load(ph, NULL, &img, &e), FACENET_OK);
    const size_t per = (size_t)size * size * 3;
    float *in = zeros(per * (size_t)batch);
    exec_pair p;
    pair_open(&p, 2);
    for (int b = 0; b < batch; b++) {
        /* The whole photo, then crops around its faces' region. */
        int x0 = b * img.width / 5, y0 = b * img.height / 9;
        assert_int_equal(fn_to_input_rect(&p.ref, &img, x0, y0, img.width - x0 - b * img.width / 7,
                                          img.height - y0, size, batch > 1, norm, in + per * b),
                         0);
    }
    for (size_t i = 0; i < per * (size_t)batch; i++) in[i] -= minus;
    const int no = fn_graph_n_outputs(g);
    fn_tensor x = fn_tensor_make(batch, size, size, 3, in), yr[12], yf[12];
    assert_true(no <= 12);
    for (int k = 0; k < no; k++) {
        int oh, ow, oc;
        fn_graph_shape(g, fn_graph_output_value(g, k), &oh, &ow, &oc);
        yr[k] = fn_tensor_make(batch, oh, ow, oc, zeros((size_t)batch * oh * ow * oc));
        yf[k] = fn_tensor_make(batch, oh, ow, oc, zeros((size_t)batch * oh * ow * oc));
    }
    assert_int_equal(fn_graph_run_ops(&p.ref, g, &x, yr), 0);
    pair_close(&p);
    for (int threads = 1; threads <= 2; threads++) {
        pair_open(&p, threads);
        if (FAST->graph_run(&p.fast, g, &x, yf) != 0) fail_msg("%s: the backend refused its graph", model);
        double worst = 0;
        for (int k = 0; k < no; k++) {
            double err = test_nse(yf[k].data, yr[k].data, fn_tensor_count(&yr[k]));
            if (!(err <= NSE_MAX)) fail_msg("%s, output %d, %d thread(s): NSE %.3g > %g", model, k, threads, err, NSE_MAX);
            worst = fmax(worst, err);
        }
        printf("backend %s, %d thread(s): %s (%d ops, %d outputs, batch %d) matches the reference, worst NSE "
               "%.3g\n",
               FAST->name, threads, m->arch->name, g->n_ops, no, batch, worst);
        pair_close(&p);
    }
    for (int k = 0; k < no; k++) free(yr[k].data), free(yf[k].data);
    free(in);
    facenet_image_free(&img);
    facenet_model_free(m);
    facenet_ctx_free(ctx);
}

static void test_ssd_graph(void **state) {
    (void)state;
    const fn_norm norm = {{0.0f, 0.0f, 0.0f}, 127.5f};
    run_net_graph("ssd_mobilenetv1.safetensors", 512, &norm, 1.0f, 1);
}

static void test_tiny_detector_graph(void **state) {
    (void)state;
    fn_norm norm = {{0.0f, 0.0f, 0.0f}, 255.0f};
    for (int i = 0; i < 3; i++) norm.mean[i] = fn_tiny_face_detector_mean[i];
    run_net_graph("tiny_face_detector.safetensors", 416, &norm, 0.0f, 1);
}

static void test_landmark_graphs(void **state) {
    (void)state;
    const fn_norm norm = {{fn_resnet29_mean[0], fn_resnet29_mean[1], fn_resnet29_mean[2]}, 255.0f};
    run_net_graph("face_landmark_68.safetensors", 112, &norm, 0.0f, 3);
    run_net_graph("face_landmark_68_tiny.safetensors", 112, &norm, 0.0f, 3);
}

int main(void) {
    FAST = fn_backend_fast();
    if (!FAST) {
        printf("SKIP: this library has no fast backend (built with FACENET_BACKEND=ref or without oneDNN)\n");
        return TEST_SKIP_CODE;
    }
    /* Two threads mean two threads here, however busy the machine is (and
     * a graph's second run must use the same count as its first). */
    setenv("FACENET_THREADS_ADAPT", "0", 1);
    POOL2 = fn_pool_create(2);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_against_reference),
        cmocka_unit_test(test_dense_against_reference),
        cmocka_unit_test(test_graph_pools),
        cmocka_unit_test(test_graph_residual_adds),
        cmocka_unit_test(test_graph_depthwise_separable),
        cmocka_unit_test(test_graph_outputs),
        cmocka_unit_test(test_graph_dense_block_sums),
        cmocka_unit_test(test_ssd_graph),
        cmocka_unit_test(test_tiny_detector_graph),
        cmocka_unit_test(test_landmark_graphs),
        cmocka_unit_test(test_resnet29_golden_chips),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    fn_pool_free(POOL2);
    return rc;
}
