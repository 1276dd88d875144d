/*
 * test_grad.c - every op's backward pass against central finite differences,
 * the fast backend's training slots against the reference, and the whole
 * trainable network's gradient for sampled parameters.
 *
 * The measured function is L = sum_i r_i y_i (r fixed and random, the sum in
 * double), so dL/dy = r is what each backward kernel is given. The forward
 * ops compute in float: with the small tensors used here (a few hundred
 * outputs, |L| ~ 10) a forward pass is exact to ~1e-6 absolute, so a central
 * difference with step h = 1e-3 carries ~1e-3 of rounding noise; the
 * tolerance is 3e-3 + 1e-2 |numeric|. A wrong index or a missing term is off
 * by O(1). Inputs are random in [-1, 1], where the kinks (ReLU at 0, a max
 * pool's argmax switching) are rarely within h of a sample; fixed seeds make
 * each run the same.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/pool.h"
#include "engine/backward.h"
#include "engine/engine.h"
#include "model/model.h"
#include "testutil.h"
#include "train/train.h"

#define H 1e-3f
#define MAX_CHECKS 60

typedef void (*fwd_fn)(void *ctx);

typedef struct fd {
    fwd_fn fwd;
    void *ctx;
    const float *y;
    size_t n;
    float *r;
} fd;

static double loss(const fd *f) {
    f->fwd(f->ctx);
    double s = 0.0;
    for (size_t i = 0; i < f->n; i++) s += (double)f->r[i] * f->y[i];
    return s;
}

/* Compare analytic[i] with the central difference of L in p[i], for up to
 * MAX_CHECKS indices spread over [0, n). */
static void check(const char *what, const fd *f, float *p, size_t n, const float *analytic) {
    size_t step = n > MAX_CHECKS ? n / MAX_CHECKS : 1;
    double worst = 0.0;
    for (size_t i = 0; i < n; i += step) {
        const float save = p[i];
        p[i] = save + H;
        double lp = loss(f);
        p[i] = save - H;
        double lm = loss(f);
        p[i] = save;
        double num = (lp - lm) / (2.0 * (double)H);
        double err = fabs(num - analytic[i]), tol = 3e-3 + 1e-2 * fabs(num);
        if (err / tol > worst) worst = err / tol;
        if (err > tol) fail_msg("%s[%zu]: analytic %.6g, numeric %.6g", what, i, (double)analytic[i], num);
    }
    f->fwd(f->ctx); /* leave y as at the unperturbed point */
    printf("  %-28s ok (worst error %.2f of the tolerance)\n", what, worst);
}

static float *rnd(size_t n, uint64_t seed) {
    float *p = malloc(sizeof(float) * (n ? n : 1));
    assert_non_null(p);
    test_fill_random(p, n, seed, -1.0f, 1.0f);
    return p;
}

static float *zeros(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    assert_non_null(p);
    return p;
}

static fn_arena ARENA;
static fn_exec EX;

static int setup(void **state) {
    (void)state;
    memset(&ARENA, 0, sizeof ARENA);
    return fn_exec_init(&EX, &fn_backend_ref, NULL, &ARENA);
}

static int teardown(void **state) {
    (void)state;
    fn_exec_release(&EX);
    fn_arena_free(&ARENA);
    return 0;
}

/* ------------------------------------------------------------ convolution */

typedef struct conv_ctx {
    fn_tensor x, y;
    fn_conv_desc d;
} conv_ctx;

static void conv_fwd(void *vp) {
    conv_ctx *c = vp;
    fn_ref_conv2d(&EX, &c->x, &c->d, &c->y);
}

static void conv_case(int n, int h, int w, int cin, int cout, int k, int stride, fn_padding pad, int depthwise,
                      int epilogue, fn_act act, uint64_t seed) {
    printf("conv %dx%d/%d %s %s, %dx%dx%d -> %d%s\n", k, k, stride, pad == FN_PAD_SAME ? "SAME" : "VALID",
           depthwise ? "depthwise" : "regular", h, w, cin, cout, epilogue ? ", bias/scale/shift" : "");
    conv_ctx c;
    memset(&c, 0, sizeof c);
    c.d.kh = c.d.kw = k;
    c.d.stride = stride;
    c.d.padding = pad;
    c.d.cin = cin;
    c.d.cout = depthwise ? cin : cout;
    c.d.depthwise = depthwise;
    c.d.act = act;
    c.d.alpha = 0.1f;
    const int co = c.d.cout;
    size_t nw = (size_t)k * k * cin * (depthwise ? 1 : co);
    float *wts = rnd(nw, seed + 1), *bias = rnd(co, seed + 2), *scale = rnd(co, seed + 3), *shift = rnd(co, seed + 4);
    for (int i = 0; i < co; i++) scale[i] += scale[i] < 0 ? -0.5f : 0.5f; /* away from 0 */
    c.d.weights = wts;
    if (epilogue) c.d.bias = bias, c.d.scale = scale, c.d.shift = shift;
    int oh, ow;
    assert_int_equal(fn_conv_shape(&c.d, h, w, &oh, &ow), 0);
    c.x = fn_tensor_make(n, h, w, cin, rnd((size_t)n * h * w * cin, seed));
    c.y = fn_tensor_make(n, oh, ow, co, zeros((size_t)n * oh * ow * co));
    fd f = {conv_fwd, &c, c.y.data, fn_tensor_count(&c.y), rnd(fn_tensor_count(&c.y), seed + 5)};
    conv_fwd(&c);
    fn_tensor dy = c.y;
    dy.data = f.r;
    fn_tensor dx = c.x;
    dx.data = zeros(fn_tensor_count(&c.x));
    float *dw = zeros(nw), *db = zeros(co), *ds = zeros(co), *dt = zeros(co);
    fn_arena_reset(&ARENA);
    assert_int_equal(fn_conv2d_backward(&EX, &c.x, &c.d, &c.y, &dy, &dx, dw, epilogue ? db : NULL,
                                        epilogue ? ds : NULL, epilogue ? dt : NULL),
                     0);
    check("dx", &f, c.x.data, fn_tensor_count(&c.x), dx.data);
    check("dw", &f, wts, nw, dw);
    if (epilogue) {
        check("dbias", &f, bias, co, db);
        check("dscale", &f, scale, co, ds);
        check("dshift", &f, shift, co, dt);
    }
    free(c.x.data), free(c.y.data), free(f.r), free(dx.data);
    free(wts), free(bias), free(scale), free(shift), free(dw), free(db), free(ds), free(dt);
}

static void test_conv(void **state) {
    (void)state;
    conv_case(2, 5, 5, 3, 4, 3, 1, FN_PAD_SAME, 0, 0, FN_ACT_NONE, 10);
    conv_case(2, 6, 6, 3, 4, 3, 2, FN_PAD_SAME, 0, 1, FN_ACT_RELU, 20);    /* asymmetric pad */
    conv_case(1, 7, 6, 2, 3, 3, 2, FN_PAD_SAME, 0, 1, FN_ACT_NONE, 30);    /* odd: pad both sides */
    conv_case(2, 7, 7, 3, 4, 3, 2, FN_PAD_VALID, 0, 1, FN_ACT_RELU, 40);   /* ResNet's down conv */
    conv_case(1, 11, 11, 3, 4, 7, 2, FN_PAD_VALID, 0, 1, FN_ACT_RELU, 50); /* ResNet's stem */
    conv_case(1, 5, 5, 3, 2, 2, 2, FN_PAD_SAME, 0, 0, FN_ACT_NONE, 60);    /* even kernel */
    conv_case(2, 6, 6, 4, 4, 3, 2, FN_PAD_SAME, 1, 1, FN_ACT_LEAKY, 70);   /* depthwise */
    conv_case(1, 5, 5, 3, 3, 3, 1, FN_PAD_SAME, 1, 1, FN_ACT_RELU6, 80);
    conv_case(2, 4, 4, 5, 6, 1, 1, FN_PAD_VALID, 0, 1, FN_ACT_NONE, 90);   /* 1x1 */
}

/* ------------------------------------------------------------ pooling */

typedef struct pool_ctx {
    fn_tensor x, y;
    int k, stride, is_max, global;
    fn_padding pad;
} pool_ctx;

static void pool_fwd(void *vp) {
    pool_ctx *c = vp;
    if (c->global)
        fn_global_mean(&c->x, &c->y);
    else if (c->is_max)
        fn_maxpool(&EX, &c->x, c->k, c->stride, c->pad, &c->y);
    else
        fn_avgpool(&EX, &c->x, c->k, c->stride, c->pad, &c->y);
}

static void pool_case(int is_max, int global, int n, int h, int w, int ch, int k, int stride, fn_padding pad,
                      uint64_t seed) {
    printf("%s %dx%d/%d %s on %dx%dx%d\n", global ? "global mean" : is_max ? "max pool" : "avg pool", k, k,
           stride, pad == FN_PAD_SAME ? "SAME" : "VALID", h, w, ch);
    pool_ctx c = {.k = k, .stride = stride, .is_max = is_max, .global = global, .pad = pad};
    int oh = 1, ow = 1;
    if (!global) {
        assert_int_equal(fn_window_out(h, k, stride, pad, &oh, NULL), 0);
        assert_int_equal(fn_window_out(w, k, stride, pad, &ow, NULL), 0);
    }
    c.x = fn_tensor_make(n, h, w, ch, rnd((size_t)n * h * w * ch, seed));
    c.y = fn_tensor_make(n, oh, ow, ch, zeros((size_t)n * oh * ow * ch));
    fd f = {pool_fwd, &c, c.y.data, fn_tensor_count(&c.y), rnd(fn_tensor_count(&c.y), seed + 1)};
    pool_fwd(&c);
    fn_tensor dy = c.y, dx = c.x;
    dy.data = f.r;
    dx.data = zeros(fn_tensor_count(&c.x));
    if (global)
        fn_global_mean_backward(&dy, &dx);
    else if (is_max)
        fn_maxpool_backward(&EX, &c.x, &dy, k, stride, pad, &dx);
    else
        fn_avgpool_backward(&EX, &dy, k, stride, pad, &dx);
    check("dx", &f, c.x.data, fn_tensor_count(&c.x), dx.data);
    free(c.x.data), free(c.y.data), free(f.r), free(dx.data);
}

static void test_pool(void **state) {
    (void)state;
    pool_case(1, 0, 2, 7, 7, 3, 3, 2, FN_PAD_VALID, 100); /* ResNet's max pool */
    pool_case(1, 0, 1, 6, 6, 3, 3, 2, FN_PAD_SAME, 110);
    pool_case(1, 0, 1, 5, 5, 2, 2, 2, FN_PAD_SAME, 120); /* odd: pad after */
    pool_case(1, 0, 1, 5, 5, 2, 3, 1, FN_PAD_SAME, 125);
    pool_case(0, 0, 2, 7, 7, 3, 2, 2, FN_PAD_VALID, 130); /* ResNet's shortcut */
    pool_case(0, 0, 1, 5, 6, 3, 3, 2, FN_PAD_SAME, 140);  /* partial windows */
    pool_case(0, 0, 1, 5, 5, 2, 3, 1, FN_PAD_SAME, 150);
    pool_case(0, 1, 2, 4, 3, 5, 0, 0, FN_PAD_VALID, 160);
}

/* ------------------------------------------------------------ add, dense, l2, per-channel */

typedef struct add_ctx {
    fn_tensor a, b, y;
} add_ctx;

static void add_fwd(void *vp) {
    add_ctx *c = vp;
    fn_add_zero_extended(&c->a, &c->b, &c->y);
}

static void add_case(int ah, int aw, int ac, int bh, int bw, int bc, uint64_t seed) {
    printf("add zero-extended %dx%dx%d + %dx%dx%d\n", ah, aw, ac, bh, bw, bc);
    const int n = 2, h = ah > bh ? ah : bh, w = aw > bw ? aw : bw, ch = ac > bc ? ac : bc;
    add_ctx c;
    c.a = fn_tensor_make(n, ah, aw, ac, rnd((size_t)n * ah * aw * ac, seed));
    c.b = fn_tensor_make(n, bh, bw, bc, rnd((size_t)n * bh * bw * bc, seed + 1));
    c.y = fn_tensor_make(n, h, w, ch, zeros((size_t)n * h * w * ch));
    fd f = {add_fwd, &c, c.y.data, fn_tensor_count(&c.y), rnd(fn_tensor_count(&c.y), seed + 2)};
    add_fwd(&c);
    fn_tensor dy = c.y, da = c.a, db = c.b;
    dy.data = f.r;
    da.data = zeros(fn_tensor_count(&c.a));
    db.data = zeros(fn_tensor_count(&c.b));
    fn_add_zero_extended_backward(&dy, &da, &db);
    check("da", &f, c.a.data, fn_tensor_count(&c.a), da.data);
    check("db", &f, c.b.data, fn_tensor_count(&c.b), db.data);
    free(c.a.data), free(c.b.data), free(c.y.data), free(f.r), free(da.data), free(db.data);
}

static void test_add(void **state) {
    (void)state;
    add_case(3, 3, 4, 3, 3, 4, 200);
    add_case(3, 3, 8, 4, 4, 4, 210); /* a down block: main path one smaller, shortcut fewer channels */
    add_case(2, 4, 3, 3, 2, 5, 220);
}

typedef struct dense_ctx {
    fn_tensor x, y;
    float *w, *bias;
} dense_ctx;

static void dense_fwd(void *vp) {
    dense_ctx *c = vp;
    fn_ref_dense(&EX, &c->x, c->w, c->bias, &c->y);
}

static void test_dense(void **state) {
    (void)state;
    printf("dense 2x2x3 -> 5 with bias\n");
    const int n = 3, in = 12, out = 5;
    dense_ctx c;
    c.x = fn_tensor_make(n, 2, 2, 3, rnd((size_t)n * in, 300));
    c.y = fn_tensor_make(n, 1, 1, out, zeros((size_t)n * out));
    c.w = rnd((size_t)in * out, 301);
    c.bias = rnd(out, 302);
    fd f = {dense_fwd, &c, c.y.data, (size_t)n * out, rnd((size_t)n * out, 303)};
    dense_fwd(&c);
    fn_tensor dy = c.y, dx = c.x;
    dy.data = f.r;
    dx.data = zeros((size_t)n * in);
    float *dw = zeros((size_t)in * out), *db = zeros(out);
    fn_dense_backward(&EX, &c.x, c.w, &dy, &dx, dw, db);
    check("dx", &f, c.x.data, (size_t)n * in, dx.data);
    check("dw", &f, c.w, (size_t)in * out, dw);
    check("dbias", &f, c.bias, out, db);
    free(c.x.data), free(c.y.data), free(c.w), free(c.bias), free(f.r), free(dx.data), free(dw), free(db);
}

typedef struct l2_ctx {
    float *x, *y;
    int rows, dim;
} l2_ctx;

static void l2_fwd(void *vp) {
    l2_ctx *c = vp;
    memcpy(c->y, c->x, sizeof(float) * (size_t)c->rows * c->dim);
    fn_l2_normalize(c->y, c->rows, c->dim, 1e-12f);
}

static void test_l2_normalize(void **state) {
    (void)state;
    printf("l2 normalize 4 x 7\n");
    l2_ctx c = {rnd(28, 400), zeros(28), 4, 7};
    fd f = {l2_fwd, &c, c.y, 28, rnd(28, 401)};
    float *dx = zeros(28);
    fn_l2_normalize_backward(c.x, f.r, 4, 7, 1e-12f, dx);
    check("dx", &f, c.x, 28, dx);
    free(c.x), free(c.y), free(f.r), free(dx);
}

typedef struct chan_ctx {
    fn_tensor x, y;
    float *s, *t;
    fn_act act;
} chan_ctx;

static void chan_fwd(void *vp) {
    chan_ctx *c = vp;
    memcpy(c->y.data, c->x.data, fn_tensor_count(&c->x) * sizeof(float));
    fn_scale_shift(&c->y, c->s, c->t);
    fn_activate(&c->y, c->act, 0.1f);
}

static void test_scale_shift_activation(void **state) {
    (void)state;
    const fn_act acts[3] = {FN_ACT_RELU, FN_ACT_LEAKY, FN_ACT_RELU6};
    for (int a = 0; a < 3; a++) {
        printf("scale, shift and activation %d\n", (int)acts[a]);
        chan_ctx c;
        c.x = fn_tensor_make(2, 3, 3, 4, rnd(72, 500 + a));
        for (int i = 0; i < 72; i++) c.x.data[i] *= 4.0f; /* reach relu6's upper kink too */
        c.y = fn_tensor_make(2, 3, 3, 4, zeros(72));
        c.s = rnd(4, 510 + a);
        c.t = rnd(4, 520 + a);
        c.act = acts[a];
        fd f = {chan_fwd, &c, c.y.data, 72, rnd(72, 530 + a)};
        chan_fwd(&c);
        fn_tensor dy = c.y, g = c.y, dx = c.x;
        dy.data = f.r;
        g.data = zeros(72);
        dx.data = zeros(72);
        float *ds = zeros(4), *dt = zeros(4);
        fn_activate_backward(&c.y, &dy, c.act, 0.1f, &g);
        fn_scale_shift_backward(&c.x, &g, c.s, &dx, ds, dt);
        check("dx", &f, c.x.data, 72, dx.data);
        check("dscale", &f, c.s, 4, ds);
        check("dshift", &f, c.t, 4, dt);
        free(c.x.data), free(c.y.data), free(c.s), free(c.t), free(f.r), free(g.data), free(dx.data), free(ds),
            free(dt);
    }
}

/* ------------------------------------------------------------ batch norm */

typedef struct bn_ctx {
    fn_tensor x, y;
    float *gamma, *beta, mean[8], invstd[8];
    fn_act act;
} bn_ctx;

static void bn_fwd(void *vp) {
    bn_ctx *c = vp;
    assert_int_equal(fn_batchnorm_train(&EX, &c->x, c->gamma, c->beta, 1e-5f, 0.1f, NULL, NULL, c->mean, c->invstd,
                                        c->act, &c->y),
                     0);
}

static void test_batchnorm(void **state) {
    (void)state;
    bn_ctx c;
    const size_t cnt = 3 * 4 * 4 * 5;
    for (int relu = 1; relu >= 0; relu--) {
        printf("batch norm, training form, 3x4x4x5%s\n", relu ? ", with the ReLU after it" : "");
        c.x = fn_tensor_make(3, 4, 4, 5, rnd(cnt, 600));
        for (size_t i = 0; i < cnt; i++) c.x.data[i] = c.x.data[i] * 2.0f + 0.3f * (float)(i % 5);
        c.y = fn_tensor_make(3, 4, 4, 5, zeros(cnt));
        c.gamma = rnd(5, 601);
        c.beta = rnd(5, 602);
        c.act = relu ? FN_ACT_RELU : FN_ACT_NONE;
        fd f = {bn_fwd, &c, c.y.data, cnt, rnd(cnt, 603)};
        bn_fwd(&c);
        fn_tensor dy = c.y, dx = c.x;
        dy.data = f.r;
        dx.data = zeros(cnt);
        float *dg = zeros(5), *db = zeros(5);
        assert_int_equal(
            fn_batchnorm_backward(&EX, &c.x, relu ? &c.y : NULL, &dy, c.gamma, c.mean, c.invstd, &dx, dg, db), 0);
        check("dx", &f, c.x.data, cnt, dx.data);
        check("dgamma", &f, c.gamma, 5, dg);
        check("dbeta", &f, c.beta, 5, db);
        free(f.r), free(dx.data), free(dg), free(db);
        if (!relu) break;
        free(c.x.data), free(c.y.data), free(c.gamma), free(c.beta);
    }

    /* Running averages: with momentum 1 they become the batch's mean and
     * unbiased variance, and inference with them reproduces training's
     * output up to the (m-1)/m of the variance. */
    float rm[5] = {0}, rv[5] = {1, 1, 1, 1, 1};
    assert_int_equal(
        fn_batchnorm_train(&EX, &c.x, c.gamma, c.beta, 1e-5f, 1.0f, rm, rv, c.mean, c.invstd, FN_ACT_NONE, &c.y), 0);
    const double m = 48.0;
    for (int ch = 0; ch < 5; ch++) {
        double s = 0.0, ss = 0.0;
        for (int r = 0; r < 48; r++) s += c.x.data[r * 5 + ch];
        double mean = s / m;
        for (int r = 0; r < 48; r++) ss += (c.x.data[r * 5 + ch] - mean) * (c.x.data[r * 5 + ch] - mean);
        assert_close(rm[ch], mean, 1e-5);
        assert_close(rv[ch], ss / (m - 1.0), 1e-4);
        assert_close(c.mean[ch], mean, 1e-5);
        assert_close(c.invstd[ch], 1.0 / sqrt(ss / m + 1e-5), 1e-4);
        rv[ch] = (float)(ss / m); /* the biased one, to compare outputs */
    }
    fn_tensor yi = c.y;
    yi.data = zeros(cnt);
    fn_batchnorm_infer(&EX, &c.x, c.gamma, c.beta, rm, rv, 1e-5f, &yi);
    assert_true(test_max_abs_diff(yi.data, c.y.data, cnt) < 1e-5);
    /* Momentum 0.1 moves a tenth of the way. */
    float rm2[5] = {1, 1, 1, 1, 1}, rv2[5] = {1, 1, 1, 1, 1};
    assert_int_equal(
        fn_batchnorm_train(&EX, &c.x, c.gamma, c.beta, 1e-5f, 0.1f, rm2, rv2, c.mean, c.invstd, FN_ACT_NONE, &c.y), 0);
    for (int ch = 0; ch < 5; ch++) assert_close(rm2[ch], 0.9 + 0.1 * rm[ch], 1e-5);
    free(c.x.data), free(c.y.data), free(c.gamma), free(c.beta), free(yi.data);
}

/* ------------------------------------------------------------ the fast backend */

/* Whether oneDNN has its f32 Winograd kernels here: AVX-512 (avx512_core),
 * unless its ISA is capped from the environment. */
static int cpu_has_winograd(void) {
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
           !getenv("ONEDNN_MAX_CPU_ISA") && !getenv("DNNL_MAX_CPU_ISA");
#else
    return 0;
#endif
}

/* The fast backend's training slots against the reference, by normalized
 * squared error, on the ResNet's layer shapes and the odd ones. */
static void test_fast_slots(void **state) {
    (void)state;
    const fn_backend *fast = fn_backend_fast();
    if (!fast || !fast->conv2d_train) {
        printf("no fast backend with training slots: nothing to compare\n");
        return;
    }
    fn_pool *pool = fn_pool_create(2);
    fn_arena fa = {0};
    fn_exec fx;
    assert_int_equal(fn_exec_init(&fx, fast, pool, &fa), 0);
    static const struct {
        int n, h, cin, cout, k, s, pad, dw;
    } C[] = {
        {4, 35, 32, 32, 3, 1, FN_PAD_SAME, 0}, {3, 35, 32, 64, 3, 2, FN_PAD_VALID, 0},
        {2, 31, 3, 32, 7, 2, FN_PAD_VALID, 0}, {2, 8, 16, 24, 3, 2, FN_PAD_SAME, 0},
        {2, 9, 16, 16, 3, 2, FN_PAD_SAME, 0},  {2, 5, 12, 12, 3, 1, FN_PAD_SAME, 1},
        {3, 4, 256, 256, 3, 1, FN_PAD_SAME, 0}, {2, 3, 16, 16, 3, 1, FN_PAD_SAME, 0},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        fn_conv_desc d = {.kh = C[i].k, .kw = C[i].k, .stride = C[i].s, .padding = (fn_padding)C[i].pad,
                          .cin = C[i].cin, .cout = C[i].dw ? C[i].cin : C[i].cout, .depthwise = C[i].dw};
        int oh, ow;
        assert_int_equal(fn_conv_shape(&d, C[i].h, C[i].h, &oh, &ow), 0);
        size_t nx = (size_t)C[i].n * C[i].h * C[i].h * C[i].cin, ny = (size_t)C[i].n * oh * ow * d.cout;
        size_t nw = (size_t)d.kh * d.kw * d.cin * (d.depthwise ? 1 : d.cout);
        float *w = rnd(nw, 700 + i);
        d.weights = w;
        fn_tensor x = fn_tensor_make(C[i].n, C[i].h, C[i].h, C[i].cin, rnd(nx, 710 + i));
        fn_tensor y1 = fn_tensor_make(C[i].n, oh, ow, d.cout, zeros(ny)), y2 = y1;
        y2.data = zeros(ny);
        fn_tensor dy = y1;
        dy.data = rnd(ny, 720 + i);
        fn_tensor dx1 = x, dx2 = x;
        dx1.data = zeros(nx);
        dx2.data = zeros(nx);
        float *dw1 = rnd(nw, 730 + i), *dw2 = malloc(nw * sizeof(float)), *dw3 = malloc(nw * sizeof(float));
        memcpy(dw2, dw1, nw * sizeof(float)); /* all add to the same start */
        memcpy(dw3, dw1, nw * sizeof(float));
        /* The slots themselves, so that a silent fall-back to the reference
         * fails rather than passes (depthwise is declined by design). */
        const int want = C[i].dw ? -1 : 0;
        fn_ref_conv2d(&EX, &x, &d, &y1);
        if (fast->conv2d_train(&fx, &x, &d, &y2) != want) fail_msg("conv2d_train declined");
        if (want) fn_conv2d_train(&fx, &x, &d, &y2);
        double e_fwd = test_nse(y2.data, y1.data, ny);
        fn_ref_conv2d_backward_data(&EX, &dy, &d, &dx1);
        if (fast->conv2d_backward_data(&fx, &dy, &d, &dx2) != want) fail_msg("conv2d_backward_data declined");
        if (want) fn_conv2d_backward_data(&fx, &dy, &d, &dx2);
        double e_data = test_nse(dx2.data, dx1.data, nx);
        fn_ref_conv2d_backward_weights(&EX, &x, &dy, &d, dw1, NULL);
        if (fast->conv2d_backward_weights(&fx, &x, &dy, &d, dw2, NULL) != want)
            fail_msg("conv2d_backward_weights declined");
        if (want) fn_conv2d_backward_weights(&fx, &x, &dy, &d, dw2, NULL);
        double e_w = test_nse(dw2, dw1, nw);
        /* Both passes in one call: the backend's slot takes Winograd's
         * layers (3x3 SAME, stride 1, planes of 4x4 and more, channels in
         * 16s; oneDNN has the kernels on AVX-512 only) and declines the
         * rest, which the two slots above then run. */
        fn_tensor dx3 = x;
        dx3.data = zeros(nx);
        const char *wino_env = getenv("FACENET_WINOGRAD");
        const int wino = !(wino_env && strcmp(wino_env, "0") == 0) && C[i].k == 3 && C[i].s == 1 && !C[i].dw &&
                         C[i].pad == FN_PAD_SAME && C[i].h >= 4 && C[i].cin % 16 == 0 && C[i].cout % 16 == 0;
        const int must = wino && cpu_has_winograd();
        if (fast->conv2d_backward_both) {
            const int took = fast->conv2d_backward_both(&fx, &x, &dy, &d, &dx3, dw3) == 0;
            if (took ? !wino : must)
                fail_msg("conv2d_backward_both %s a layer it should %s", took ? "took" : "declined",
                         took ? "decline" : "take");
            if (!took) fn_conv2d_backward_both(&fx, &x, &dy, &d, &dx3, dw3);
        } else {
            fn_conv2d_backward_both(&fx, &x, &dy, &d, &dx3, dw3);
        }
        double e_both = fmax(test_nse(dx3.data, dx1.data, nx), test_nse(dw3, dw1, nw));
        if (must && fast->conv2d_backward_both) { /* one pass alone: a frozen layer's, the first layer's */
            fn_tensor dx4 = x;
            dx4.data = zeros(nx);
            float *dw4 = rnd(nw, 730 + i); /* dw1's start again */
            assert_int_equal(fast->conv2d_backward_both(&fx, &x, &dy, &d, &dx4, NULL), 0);
            assert_int_equal(fast->conv2d_backward_both(&fx, &x, &dy, &d, NULL, dw4), 0);
            e_both = fmax(e_both, fmax(test_nse(dx4.data, dx1.data, nx), test_nse(dw4, dw1, nw)));
            free(dx4.data), free(dw4);
        }
        /* The same weights changed in place must be seen (no stale cache). */
        for (size_t j = 0; j < nw; j++) w[j] *= -0.5f;
        fn_ref_conv2d(&EX, &x, &d, &y1);
        fn_conv2d_train(&fx, &x, &d, &y2);
        double e_fwd2 = test_nse(y2.data, y1.data, ny);
        printf("conv %d %dx%d/%d%s %d->%d%s: nse fwd %.2g data %.2g weights %.2g both %.2g changed %.2g\n", C[i].n,
               C[i].k, C[i].k, C[i].s, C[i].dw ? " dw" : "", C[i].cin, d.cout, must ? " (Winograd)" : "", e_fwd,
               e_data, e_w, e_both, e_fwd2);
        assert_true(e_fwd < 1e-8 && e_data < 1e-8 && e_w < 1e-8 && e_both < 1e-8 && e_fwd2 < 1e-8);
        free(w), free(x.data), free(y1.data), free(y2.data), free(dy.data), free(dx1.data), free(dx2.data);
        free(dw1), free(dw2), free(dw3), free(dx3.data);
    }
    /* Pooling backward, VALID and SAME (odd and even planes): the average
     * through its slot (max pooling's is the reference's, by choice). */
    static const struct {
        int is_max, h, k, s, pad;
    } P[] = {
        {1, 35, 3, 2, FN_PAD_VALID}, {0, 35, 2, 2, FN_PAD_VALID}, {1, 9, 3, 2, FN_PAD_SAME},
        {0, 9, 3, 2, FN_PAD_SAME},   {1, 8, 2, 2, FN_PAD_SAME},   {0, 7, 3, 1, FN_PAD_SAME},
    };
    for (size_t i = 0; i < sizeof P / sizeof P[0]; i++) {
        const int n = 3, h = P[i].h, c = 32, k = P[i].k, s = P[i].s;
        const fn_padding pad = (fn_padding)P[i].pad;
        int oh;
        assert_int_equal(fn_window_out(h, k, s, pad, &oh, NULL), 0);
        fn_tensor x = fn_tensor_make(n, h, h, c, rnd((size_t)n * h * h * c, 800 + i));
        fn_tensor dy = fn_tensor_make(n, oh, oh, c, rnd((size_t)n * oh * oh * c, 810 + i));
        fn_tensor d1 = x, d2 = x;
        d1.data = zeros(fn_tensor_count(&x));
        d2.data = zeros(fn_tensor_count(&x));
        if (P[i].is_max) {
            fn_ref_maxpool_backward(&EX, &x, &dy, k, s, pad, &d1);
            fn_maxpool_backward(&fx, &x, &dy, k, s, pad, &d2);
        } else {
            fn_ref_avgpool_backward(&EX, &dy, k, s, pad, &d1);
            assert_int_equal(fast->avgpool_backward(&fx, &dy, k, s, pad, &d2), 0);
        }
        double err = test_nse(d2.data, d1.data, fn_tensor_count(&x));
        printf("%s pool %dx%d/%d %s on %d: backward nse %.2g\n", P[i].is_max ? "max" : "avg", k, k, s,
               pad == FN_PAD_SAME ? "SAME" : "VALID", h, err);
        assert_true(err < 1e-8);
        free(x.data), free(dy.data), free(d1.data), free(d2.data);
    }
    /* A whole training step's gradients, fast against reference. Batch
     * norm divides by small standard deviations, so rounding differences
     * grow on the way down: the bound is looser than per op. */
    fn_error e;
    fn_tnet *nets[2] = {fn_tnet_create_size("small", 32, 5, &e), fn_tnet_create_size("small", 32, 5, &e)};
    assert_non_null(nets[0]);
    assert_non_null(nets[1]);
    float *x = rnd(4 * 32 * 32 * 3, 850), *dy = rnd(4 * 128, 851), emb[2][4 * 128];
    const fn_exec *execs[2] = {&EX, &fx};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(fn_tnet_forward(nets[k], execs[k], x, 4, emb[k], 1, &e), 0);
        assert_int_equal(fn_tnet_backward(nets[k], execs[k], dy, &e), 0);
    }
    double worst = test_nse(emb[1], emb[0], 4 * 128);
    for (int i = 0; i < fn_tnet_n_params(nets[0]); i++) {
        fn_param *a = fn_tnet_param(nets[0], i), *b = fn_tnet_param(nets[1], i);
        if (!a->grad) continue;
        double err = test_nse(b->grad, a->grad, a->size);
        if (err > worst) worst = err;
    }
    printf("small network, a training step: worst nse of the embeddings and gradients %.2g\n", worst);
    assert_true(worst < 1e-6);
    fn_tnet_free(nets[0]);
    fn_tnet_free(nets[1]);
    free(x), free(dy);
    fn_exec_release(&fx);
    fn_arena_free(&fa);
    fn_pool_free(pool);
}

/* ------------------------------------------------------------ the whole network */

typedef struct net_ctx {
    fn_tnet *net;
    float *x, *emb;
    int n;
} net_ctx;

static void net_fwd(void *vp) {
    net_ctx *c = vp;
    fn_error e;
    assert_int_equal(fn_tnet_forward(c->net, &EX, c->x, c->n, c->emb, 1, &e), 0);
}

/* Probe single entries of the parameters whose names contain one of
 * `which` (NULL: every seventh tensor from the second, and the last), with
 * steps h, h/4 and h/16. */
static void net_case(fn_tnet *net, uint64_t seed, const char *const *which, float h, double rel) {
    const int n = 4, s = fn_tnet_input_size(net), dim = fn_tnet_dim(net);
    net_ctx c = {net, rnd((size_t)n * s * s * 3, seed), zeros((size_t)n * dim), n};
    fd f = {net_fwd, &c, c.emb, (size_t)n * dim, rnd((size_t)n * dim, seed + 1)};
    net_fwd(&c);
    fn_error e;
    assert_int_equal(fn_tnet_backward(net, &EX, f.r, &e), 0);
    const int np = fn_tnet_n_params(net);
    int probed = 0;
    for (int i = 0; i < np; i++) {
        fn_param *p = fn_tnet_param(net, i);
        int want = 0;
        for (int k = 0; which && which[k]; k++) want |= strstr(p->name, which[k]) != NULL;
        if (!p->grad || (which ? !want : (i % 7 != 1 && i != np - 1))) continue;
        float *g = malloc(p->size * sizeof(float));
        memcpy(g, p->grad, p->size * sizeof(float));
        double worst = 0.0;
        for (size_t j = 0; j < 3 && j < p->size; j++) {
            size_t at = (j * 7919u + (size_t)i * 31u) % p->size;
            /* The best of three steps: a kink crossed at one step is
             * rarely crossed at all three; a wrong gradient fails all. */
            double best = INFINITY, num = 0.0, tol = 0.0;
            for (int k = 0; k < 3; k++) {
                const float hk = h / (float)(1 << (2 * k)); /* h, h/4, h/16 */
                float save = p->value[at];
                p->value[at] = save + hk;
                double lp = loss(&f);
                p->value[at] = save - hk;
                double lm = loss(&f);
                p->value[at] = save;
                double nk = (lp - lm) / (2.0 * (double)hk), tk = 1e-2 + rel * fabs(nk);
                if (getenv("GRAD_DEBUG")) /* every estimate, for a failure's post-mortem */
                    printf("    %s[%zu] h %g: %g vs %g\n", p->name, at, (double)hk, nk, (double)g[at]);
                if (fabs(nk - g[at]) / tk < best) best = fabs(nk - g[at]) / tk, num = nk, tol = tk;
            }
            if (best > 1.0) fail_msg("%s[%zu]: analytic %.6g, numeric %.6g (tolerance %.3g)", p->name, at,
                                     (double)g[at], num, tol);
            if (best > worst) worst = best;
        }
        printf("  %-34s ok (worst %.2f of the tolerance)\n", p->name, worst);
        probed++;
        free(g);
    }
    assert_true(probed > 0);
    free(c.x), free(c.emb), free(f.r);
}

/* The whole network. Central differences through a deep network in float
 * are only as good as L is smooth: with batch statistics, one weight moves
 * its channel's mean and variance and so every unit of the channel, and
 * ReLUs downstream switch within any usable h (measured: the estimate
 * wanders by tens of percent from h = 1e-2 to 1e-4), so there the head
 * (the last block's batch norm and the fc) is probed. The network with
 * frozen statistics (the fine-tuning form, a trainable per-channel affine)
 * is piecewise linear, and is probed from the stem's scale to the fc, h =
 * 1e-2 down to 6e-4. Not the stem's filters: one of them moves every unit
 * of its channel over the whole image, and at 16 px with ReLUs after each
 * layer some switch within any usable h (measured: 0.45, 0.31, 0.67 for a
 * gradient of 0.62); the stem's convolution is checked above on its own,
 * as is batch norm's. */
static void test_network(void **state) {
    (void)state;
    fn_error e;
    printf("small network at 16 px, batch norm with batch statistics: the head\n");
    fn_tnet *net = fn_tnet_create_size("small", 16, 42, &e);
    assert_non_null(net);
    static const char *const head[] = {"res256_1/conv2/bn", "fc", NULL};
    net_case(net, 900, head, 1e-3f, 2e-2);

    /* Running averages from a few batches, saved and loaded as a model. */
    float *x = rnd(8 * 16 * 16 * 3, 910), emb[8 * 128];
    for (int k = 0; k < 3; k++) assert_int_equal(fn_tnet_forward(net, &EX, x, 8, emb, 1, &e), 0);
    char path[] = "/tmp/facenet_test_grad_XXXXXX";
    int fdesc = mkstemp(path);
    assert_true(fdesc >= 0);
    close(fdesc);
    assert_int_equal(fn_tnet_save(net, path, NULL, &e), 0);
    facenet_ctx *ctx;
    assert_int_equal(facenet_ctx_create(NULL, &ctx), FACENET_OK);
    facenet_model *m;
    assert_int_equal(facenet_model_load(ctx, path, &m), FACENET_OK);
    fn_tnet *ft = fn_tnet_from_model(m, &e);
    assert_non_null(ft);
    printf("the same network with frozen statistics (fine-tuning): stem to fc\n");
    net_case(ft, 920, NULL, 1e-2f, 5e-2);
    fn_tnet_free(ft);
    facenet_model_free(m);
    facenet_ctx_free(ctx);
    remove(path);
    fn_tnet_free(net);
    free(x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_dense),
        cmocka_unit_test(test_l2_normalize),
        cmocka_unit_test(test_scale_shift_activation),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_fast_slots),
        cmocka_unit_test(test_network),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
