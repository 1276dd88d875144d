/*
 * test_triplet.c - the triplet loss: each selection rule on a hand-worked
 * batch, the statistics, the no-pair case, and the gradient (through the
 * normalization) against central differences; and the seeded generator
 * its random choices come from.
 *
 * The hand-worked batch: four 2-D rows whose directions are
 *   y0 = (1, 0), y1 = (0.8, 0.6), y2 = (0.6, 0.8), y3 = (-1, 0)
 * with labels 0 0 1 1, given at lengths 2, 0.5, 3 and 1 (the loss normalizes
 * them). Squared distances: d01 = 0.4, d02 = 0.8, d03 = 4, d12 = 0.08,
 * d13 = 3.6, d23 = 3.2. The anchor-positive pairs are (0,1) (1,0) (2,3)
 * (3,2).
 *
 * The soft margin, alpha log(1 + exp((d_ap - d_an) / alpha)), is checked on
 * the same batch and its gradient against central differences like the
 * hinge's.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "train/train.h"

static const float EMB[8] = {2.0f, 0.0f, 0.4f, 0.3f, 1.8f, 2.4f, -1.0f, 0.0f};
static const int LABELS[4] = {0, 0, 1, 1};

static fn_triplet_stats run(fn_triplet_select sel, float alpha, float *grad) {
    fn_triplet_params p = {alpha, sel, FN_TRIPLET_HINGE, 0};
    fn_rng r;
    fn_rng_seed(&r, 7);
    fn_triplet_stats st;
    assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, &r, grad, &st), 0);
    return st;
}

/* Hardest negatives: (0,1)->2: 0.4-0.8+0.2 < 0; (1,0)->2: 0.4-0.08+0.2 =
 * 0.52; (2,3)->1: 3.2-0.08+0.2 = 3.32; (3,2)->1: 3.2-3.6+0.2 < 0. */
static void test_hardest(void **state) {
    (void)state;
    fn_triplet_stats st = run(FN_SELECT_HARDEST, 0.2f, NULL);
    assert_int_equal(st.n_triplets, 4);
    assert_int_equal(st.n_active, 2);
    assert_close(st.loss, (0.52 + 3.32) / 4.0, 1e-5);
    assert_close(st.mean_pos, (0.4 + 0.4 + 3.2 + 3.2) / 4.0, 1e-5);
    assert_close(st.mean_neg, (0.8 + 0.08 + 0.08 + 3.6) / 4.0, 1e-5);
}

/* Semi-hard with alpha 0.5 (d_ap < d_an < d_ap + 0.5): (0,1) takes 2
 * (0.8 in (0.4, 0.9)), (3,2) takes 1 (3.6 in (3.2, 3.7)); the other two
 * pairs have none and are skipped. With alpha 0.2 there are none at all. */
static void test_semihard(void **state) {
    (void)state;
    fn_triplet_stats st = run(FN_SELECT_SEMIHARD, 0.5f, NULL);
    assert_int_equal(st.n_triplets, 2);
    assert_int_equal(st.n_active, 2);
    assert_close(st.loss, 0.1, 1e-5);
    assert_close(st.mean_pos, (0.4 + 3.2) / 2.0, 1e-5);
    assert_close(st.mean_neg, (0.8 + 3.6) / 2.0, 1e-5);
    float g[8];
    st = run(FN_SELECT_SEMIHARD, 0.2f, g);
    assert_int_equal(st.n_triplets, 0);
    assert_close(st.loss, 0.0, 0.0);
    for (int i = 0; i < 8; i++) assert_close(g[i], 0.0, 0.0);
}

/* Random violating (d_an < d_ap + 0.2): (1,0) has only 2 (0.52); (2,3)
 * has 0 (2.6) and 1 (3.32), one of them; (0,1) and (3,2) have none. */
static void test_random(void **state) {
    (void)state;
    int seen0 = 0, seen1 = 0;
    for (uint64_t seed = 1; seed < 40; seed++) {
        fn_triplet_params p = {0.2f, FN_SELECT_RANDOM, FN_TRIPLET_HINGE, 0};
        fn_rng r;
        fn_rng_seed(&r, seed);
        fn_triplet_stats st;
        assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, &r, NULL, &st), 0);
        assert_int_equal(st.n_triplets, 2);
        assert_int_equal(st.n_active, 2);
        if (fabs(st.loss - (0.52 + 2.6) / 2.0) < 1e-5)
            seen0++;
        else if (fabs(st.loss - (0.52 + 3.32) / 2.0) < 1e-5)
            seen1++;
        else
            fail_msg("loss %g is neither choice", (double)st.loss);
    }
    assert_true(seen0 > 0 && seen1 > 0);
}

/* Batch-all: (1,0,2) 0.52, (2,3,0) 2.6, (2,3,1) 3.32. */
static void test_all(void **state) {
    (void)state;
    fn_triplet_stats st = run(FN_SELECT_ALL, 0.2f, NULL);
    assert_int_equal(st.n_triplets, 3);
    assert_int_equal(st.n_active, 3);
    assert_close(st.loss, (0.52 + 2.6 + 3.32) / 3.0, 1e-5);
}

static double softplus(double x) { return log1p(exp(x)); }

/* Soft margin, batch-all: every one of the 8 triplets, violating or not,
 * d_ap - d_an: (0,1,2) 0.4-0.8, (0,1,3) 0.4-4, (1,0,2) 0.4-0.08, (1,0,3)
 * 0.4-3.6, (2,3,0) 3.2-0.8, (2,3,1) 3.2-0.08, (3,2,0) 3.2-4, (3,2,1)
 * 3.2-3.6. At width 0.2 the active ones (d_an < d_ap + 0.2) are the three
 * of the hinge's batch-all; at width 1 six (all but (0,1,3) and (1,0,3)).
 * Hardest: (0,1)->2 -0.4, (1,0)->2 0.32, (2,3)->1 3.12, (3,2)->1 -0.4. */
static void test_soft(void **state) {
    (void)state;
    const double x[8] = {-0.4, -3.6, 0.32, -3.2, 2.4, 3.12, -0.8, -0.4};
    const float width[2] = {0.2f, 1.0f};
    const int active[2] = {3, 6};
    fn_triplet_stats st;
    for (int w = 0; w < 2; w++) {
        const double a = width[w];
        fn_triplet_params p = {width[w], FN_SELECT_ALL, FN_TRIPLET_SOFT, 0};
        assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, NULL, NULL, &st), 0);
        assert_int_equal(st.n_triplets, 8);
        assert_int_equal(st.n_active, active[w]);
        double want = 0.0;
        for (int i = 0; i < 8; i++) want += a * softplus(x[i] / a) / 8.0;
        assert_close(st.loss, want, 1e-5);
    }
    fn_triplet_params p = {1.0f, FN_SELECT_HARDEST, FN_TRIPLET_SOFT, 0};
    assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, NULL, NULL, &st), 0);
    assert_int_equal(st.n_triplets, 4);
    assert_int_equal(st.n_active, 4);
    assert_close(st.loss, (softplus(-0.4) + softplus(0.32) + softplus(3.12) + softplus(-0.4)) / 4.0, 1e-5);
    /* Far past any margin the loss and its gradient are small but not 0. */
    const float apart[8] = {1.0f, 0.0f, 1.0f, 0.0f, -1.0f, 0.0f, -1.0f, 0.0f};
    float g[8], gh[8];
    assert_int_equal(fn_triplet_loss(apart, LABELS, 4, 2, &p, NULL, g, &st), 0);
    assert_close(st.loss, softplus(-4.0), 1e-6);
    assert_int_equal(st.n_active, 0);
    /* A narrow soft margin is the hinge without a margin: at width 0.01 the
     * weights are 1 for (1,0,2) and (2,3,1) and 0 for the others, within
     * e^-32, and nothing overflows at (d_ap - d_an) / width = 312. */
    p.alpha = 0.01f;
    assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, NULL, g, &st), 0);
    assert_close(st.loss, (0.32 + 3.12) / 4.0, 1e-6);
    fn_triplet_params h = {0.01f, FN_SELECT_HARDEST, FN_TRIPLET_HINGE, 0};
    assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &h, NULL, gh, &st), 0);
    assert_int_equal(st.n_active, 2);
    double gn = 0.0;
    for (int i = 0; i < 8; i++) {
        assert_close(g[i], gh[i], 1e-6);
        gn += fabs(gh[i]);
    }
    assert_true(gn > 0.1);
}

/* The pair term, margin 0.2, on the unordered pairs: matched d01 0.4, d23
 * 3.2; mismatched d02 0.8, d03 4, d12 0.08, d13 3.6. Violating: (01, 12)
 * 0.52, (23, 02) 2.6, (23, 12) 3.32: 3 of the 2 x 4 combinations. Semi-hard
 * at 0.2 forms no triplet, so the loss is the pair term alone. */
static void test_pair_term(void **state) {
    (void)state;
    fn_triplet_params p = {0.2f, FN_SELECT_SEMIHARD, FN_TRIPLET_HINGE, 0.2f};
    fn_triplet_stats st;
    float g[8];
    assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, NULL, g, &st), 0);
    assert_int_equal(st.n_triplets, 0);
    assert_close(st.pair_loss, (0.52 + 2.6 + 3.32) / 3.0, 1e-5);
    assert_close(st.loss, st.pair_loss, 1e-7);
    assert_close(st.pair_active, 3.0 / 8.0, 1e-7);
    /* With batch-all the two add up. */
    p.select = FN_SELECT_ALL;
    assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, NULL, g, &st), 0);
    assert_close(st.loss, (0.52 + 2.6 + 3.32) / 3.0 * 2.0, 1e-5);
    /* Off: no pair figures. */
    p.pair_margin = 0;
    assert_int_equal(fn_triplet_loss(EMB, LABELS, 4, 2, &p, NULL, g, &st), 0);
    assert_close(st.pair_loss, 0.0, 0.0);
    assert_close(st.pair_active, 0.0, 0.0);
}

static void test_no_pair(void **state) {
    (void)state;
    const int distinct[4] = {0, 1, 2, 3};
    fn_triplet_params p = {0.2f, FN_SELECT_HARDEST, FN_TRIPLET_HINGE, 0};
    fn_triplet_stats st;
    assert_int_equal(fn_triplet_loss(EMB, distinct, 4, 2, &p, NULL, NULL, &st), -1);
    /* Pairs but no negative: no triplet, loss 0, not an error. */
    const int same[4] = {5, 5, 5, 5};
    assert_int_equal(fn_triplet_loss(EMB, same, 4, 2, &p, NULL, NULL, &st), 0);
    assert_int_equal(st.n_triplets, 0);
}

/* The gradient against central differences, on random rows (the sets
 * chosen by hardest and batch-all do not change within h there), in float:
 * the loss is O(1) and exact to ~1e-7, h = 1e-3 leaves ~1e-4 of noise. */
static void fd_case(fn_triplet_select sel, fn_triplet_kind kind, float pair_margin) {
    enum { N = 8, D = 6 };
    float x[N * D], g[N * D];
    const int labels[N] = {0, 0, 1, 1, 2, 2, 3, 3};
    test_fill_random(x, N * D, 11 + (uint64_t)sel, -1.0f, 1.0f);
    fn_triplet_params p = {0.2f, sel, kind, pair_margin};
    fn_triplet_stats st;
    assert_int_equal(fn_triplet_loss(x, labels, N, D, &p, NULL, g, &st), 0);
    assert_true(kind == FN_TRIPLET_SOFT ? st.n_triplets > 0 : st.n_active > 0);
    assert_true(pair_margin == 0 || (st.pair_active > 0 && st.pair_active < 1));
    for (int i = 0; i < N * D; i++) {
        const float h = 1e-3f, save = x[i];
        fn_triplet_stats sp, sm;
        x[i] = save + h;
        fn_triplet_loss(x, labels, N, D, &p, NULL, NULL, &sp);
        x[i] = save - h;
        fn_triplet_loss(x, labels, N, D, &p, NULL, NULL, &sm);
        x[i] = save;
        double num = ((double)sp.loss - sm.loss) / (2.0 * h);
        assert_close(g[i], num, 2e-3 + 1e-2 * fabs(num));
    }
}

static void test_gradient(void **state) {
    (void)state;
    fd_case(FN_SELECT_HARDEST, FN_TRIPLET_HINGE, 0);
    fd_case(FN_SELECT_ALL, FN_TRIPLET_HINGE, 0);
    fd_case(FN_SELECT_HARDEST, FN_TRIPLET_SOFT, 0);
    fd_case(FN_SELECT_ALL, FN_TRIPLET_SOFT, 0);
    fd_case(FN_SELECT_ALL, FN_TRIPLET_HINGE, 0.3f);
}

/* A seed repeats a sequence; ranges hold; the moments are about right. */
static void test_rng(void **state) {
    (void)state;
    fn_rng a, b;
    fn_rng_seed(&a, 0);
    fn_rng_seed(&b, 0);
    for (int i = 0; i < 100; i++) assert_true(fn_rng_next(&a) == fn_rng_next(&b));
    fn_rng_seed(&b, 1);
    assert_true(fn_rng_next(&a) != fn_rng_next(&b));
    int counts[7] = {0};
    double s = 0.0, ss = 0.0, su = 0.0;
    const int n = 70000;
    for (int i = 0; i < n; i++) {
        int k = fn_rng_below(&a, 7);
        assert_true(k >= 0 && k < 7);
        counts[k]++;
        double u = fn_rng_uniform(&a);
        assert_true(u >= 0.0 && u < 1.0);
        su += u;
        double z = fn_rng_normal(&a);
        s += z;
        ss += z * z;
    }
    for (int k = 0; k < 7; k++) assert_true(counts[k] > 9400 && counts[k] < 10600); /* 10000 +- 6 sd */
    assert_close(su / n, 0.5, 0.01);
    assert_close(s / n, 0.0, 0.02);
    assert_close(ss / n, 1.0, 0.03);
    assert_int_equal(fn_rng_below(&a, 1), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hardest), cmocka_unit_test(test_semihard), cmocka_unit_test(test_random),
        cmocka_unit_test(test_all),     cmocka_unit_test(test_soft),     cmocka_unit_test(test_pair_term), cmocka_unit_test(test_no_pair),
        cmocka_unit_test(test_gradient), cmocka_unit_test(test_rng),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
