/*
 * test_protocol.c - the LFW verification protocol (src/eval/protocol.c) on
 * synthetic distances whose answers are worked out by hand in the comments:
 * threshold choice and its ties, folds and thresholds chosen only on the
 * training folds, VAL/FAR, population standard deviation, AUC and EER, and
 * a brute-force cross-check against a dense grid of thresholds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

#include "eval/protocol.h"

static int sorted_from(const double *d, const int *same, int n, fn_scored *s) {
    for (int i = 0; i < n; i++) {
        s[i].d = d[i];
        s[i].same = same[i];
    }
    fn_scored_sort(s, n);
    return n;
}

static void test_best_threshold(void **state) {
    (void)state;
    /* Separable: the midpoint of the gap, all correct. */
    const double d[] = {0.9, 0.2, 1.1, 0.4};
    const int same[] = {0, 1, 0, 1};
    fn_scored s[4];
    int correct;
    sorted_from(d, same, 4, s);
    assert_close(fn_best_threshold(s, 4, &correct), 0.65, 1e-12);
    assert_int_equal(correct, 4);
}

static void test_ties_take_smallest(void **state) {
    (void)state;
    /* 0.1 s, 0.3 d, 0.5 s, 0.7 d. Correct at each candidate: below all 2,
     * 0.2 -> 3, 0.4 -> 2, 0.6 -> 3, above all 2. The tie 0.2 / 0.6 goes to
     * the smaller. */
    const double d[] = {0.1, 0.3, 0.5, 0.7};
    const int same[] = {1, 0, 1, 0};
    fn_scored s[4];
    int correct;
    sorted_from(d, same, 4, s);
    assert_close(fn_best_threshold(s, 4, &correct), 0.2, 1e-12);
    assert_int_equal(correct, 3);

    /* Equal distances are one group: no threshold splits them. Matched 0.5,
     * mismatched 0.5 and 0.8: accepting none gets the two mismatched right,
     * accepting the 0.5 group gets one of each: 2 both, the tie keeps 0.5. */
    const double d2[] = {0.5, 0.5, 0.8};
    const int same2[] = {1, 0, 0};
    fn_scored s2[3];
    sorted_from(d2, same2, 3, s2);
    assert_close(fn_best_threshold(s2, 3, &correct), 0.5, 1e-12);
    assert_int_equal(correct, 2);

    /* All matched: accept everything, above the largest distance. */
    const double d3[] = {0.3, 0.6};
    const int same3[] = {1, 1};
    fn_scored s3[2];
    sorted_from(d3, same3, 2, s3);
    double t = fn_best_threshold(s3, 2, &correct);
    assert_true(t > 0.6);
    assert_int_equal(correct, 2);
}

/* The case where looking at the test fold would change the answer. Fold 0:
 * matched 0.5, mismatched 0.7. Fold 1: matched 0.1, 0.2, mismatched 0.3, 0.4.
 * Testing fold 1, the threshold comes from fold 0 alone: 0.6, which accepts
 * all of fold 1, so fold 1 scores 50%. Chosen on fold 1 itself (or on all
 * pairs) it would be 0.25 and score 100%. Testing fold 0 with fold 1's 0.25
 * rejects the matched 0.5: 50%. */
static void test_thresholds_from_training_folds_only(void **state) {
    (void)state;
    const float d[] = {0.5f, 0.7f, 0.1f, 0.2f, 0.3f, 0.4f};
    const int same[] = {1, 0, 1, 1, 0, 0};
    const int fold[] = {0, 0, 1, 1, 1, 1};
    facenet_eval_result r;
    fn_error e;
    assert_int_equal(fn_eval_folds(d, same, fold, 6, 1e-3, &r, &e), FACENET_OK);
    assert_int_equal(r.n_folds, 2);
    assert_close(r.fold_threshold[0], 0.25, 1e-6);
    assert_close(r.fold_threshold[1], 0.6, 1e-6);
    assert_close(r.fold_accuracy[0], 0.5, 1e-12);
    assert_close(r.fold_accuracy[1], 0.5, 1e-12);
    assert_close(r.accuracy, 0.5, 1e-12);
    /* The shipped threshold is chosen on all pairs: 0.25, 5 of 6 correct. */
    assert_close(r.threshold, 0.25, 1e-6);
    assert_close(r.threshold_accuracy, 5.0 / 6.0, 1e-12);
    assert_int_equal(r.n_pairs, 6);
    assert_int_equal(r.n_same, 3);
    assert_int_equal(r.n_diff, 3);
}

/* Folds are found by their ids, not by position, and the standard
 * deviation is the population one. Fold 0 (ids interleaved): matched 0.1,
 * mismatched 0.9; fold 1: matched 0.2, 0.6, mismatched 0.4, 0.8. Testing
 * fold 0: fold 1's candidates 0.3 and 0.7 both get 3 of 4, the tie goes to
 * 0.3, and fold 0 is all correct. Testing fold 1: fold 0 gives 0.5, which
 * gets 0.2 and 0.8 right: 50%. Mean 0.75, population std 0.25 (the sample
 * std would be 0.354). */
static void test_folds_and_population_std(void **state) {
    (void)state;
    const float d[] = {0.2f, 0.1f, 0.6f, 0.4f, 0.9f, 0.8f};
    const int same[] = {1, 1, 1, 0, 0, 0};
    const int fold[] = {1, 0, 1, 1, 0, 1};
    facenet_eval_result r;
    fn_error e;
    assert_int_equal(fn_eval_folds(d, same, fold, 6, 1e-3, &r, &e), FACENET_OK);
    assert_close(r.fold_threshold[0], 0.3, 1e-6);
    assert_close(r.fold_accuracy[0], 1.0, 1e-12);
    assert_close(r.fold_threshold[1], 0.5, 1e-6);
    assert_close(r.fold_accuracy[1], 0.5, 1e-12);
    assert_close(r.accuracy, 0.75, 1e-12);
    assert_close(r.accuracy_std, 0.25, 1e-12);
}

/* VAL at a target FAR, per fold. Three folds, each with 4 matched and 4
 * mismatched pairs; target 0.25. Training on two folds has 8 mismatched
 * pairs: k = floor(0.25 * 8) = 2, so the threshold is the 3rd smallest
 * training mismatched distance (2 of 8 below it: FAR 0.25 exactly). */
static void test_val_far(void **state) {
    (void)state;
    /* fold: matched            mismatched
     *   0:  0.1 0.2 0.3 0.9     0.25 0.5 0.6 0.7
     *   1:  0.1 0.2 0.4 0.5     0.35 0.45 0.8 0.9
     *   2:  0.3 0.4 0.5 0.6     0.15 0.55 0.65 1.0  */
    const float d[] = {0.1f,  0.2f,  0.3f, 0.9f, 0.25f, 0.5f, 0.6f, 0.7f, 0.1f,  0.2f,  0.4f,  0.5f,
                       0.35f, 0.45f, 0.8f, 0.9f, 0.3f,  0.4f, 0.5f, 0.6f, 0.15f, 0.55f, 0.65f, 1.0f};
    int same[24], fold[24];
    for (int i = 0; i < 24; i++) {
        same[i] = (i % 8) < 4;
        fold[i] = i / 8;
    }
    facenet_eval_result r;
    fn_error e;
    assert_int_equal(fn_eval_folds(d, same, fold, 24, 0.25, &r, &e), FACENET_OK);
    /* Test fold 0, train mismatched {0.35 0.45 0.8 0.9 0.15 0.55 0.65 1.0}:
     * sorted 0.15 0.35 0.45 ..., threshold 0.45. Fold 0 matched below 0.45:
     * 0.1 0.2 0.3 -> VAL 3/4; mismatched below: 0.25 -> FAR 1/4. */
    assert_close(r.fold_val_threshold[0], 0.45f, 1e-6);
    assert_close(r.fold_val[0], 0.75, 1e-12);
    assert_close(r.fold_far[0], 0.25, 1e-12);
    /* Test fold 1, train {0.25 0.5 0.6 0.7 0.15 0.55 0.65 1.0}: sorted
     * 0.15 0.25 0.5 -> 0.5. Matched below: 0.1 0.2 0.4 -> 3/4; mismatched
     * 0.35 0.45 -> 2/4. */
    assert_close(r.fold_val_threshold[1], 0.5f, 1e-6);
    assert_close(r.fold_val[1], 0.75, 1e-12);
    assert_close(r.fold_far[1], 0.5, 1e-12);
    /* Test fold 2, train {0.25 0.5 0.6 0.7 0.35 0.45 0.8 0.9}: 0.25 0.35
     * 0.45 -> 0.45. Matched 0.3 0.4 -> 2/4; mismatched 0.15 -> 1/4. */
    assert_close(r.fold_val_threshold[2], 0.45f, 1e-6);
    assert_close(r.fold_val[2], 0.5, 1e-12);
    assert_close(r.fold_far[2], 0.25, 1e-12);
    assert_close(r.val, (0.75 + 0.75 + 0.5) / 3, 1e-12);
    assert_close(r.far, (0.25 + 0.5 + 0.25) / 3, 1e-12);
    const double m = (0.75 + 0.75 + 0.5) / 3;
    assert_close(r.val_std, sqrt(((0.75 - m) * (0.75 - m) * 2 + (0.5 - m) * (0.5 - m)) / 3), 1e-12);
    assert_close(r.far_target, 0.25, 0);
}

static void test_far_threshold_counts(void **state) {
    (void)state;
    /* 2700 mismatched (9 LFW folds of 300): k = floor(2.7) = 2, the 3rd
     * smallest. 5400: k = 5. 3000: 1e-3 * 3000 is 3 (floating point gives
     * 3.0000000000000004 or a hair below; either way k = 3, the 4th). */
    const int ns[] = {2700, 5400, 3000, 999, 1};
    const int want_k[] = {2, 5, 3, 0, 0};
    for (int t = 0; t < 5; t++) {
        const int n = ns[t];
        fn_scored *s = malloc(sizeof *s * (size_t)n);
        assert_non_null(s);
        for (int i = 0; i < n; i++) {
            s[i].d = 0.001 * (i + 1);
            s[i].same = 0;
        }
        double thr = fn_far_threshold(s, n, 1e-3);
        assert_close(thr, 0.001 * (want_k[t] + 1), 1e-12);
        int fa;
        fn_counts_at(s, n, thr, NULL, NULL, &fa);
        assert_int_equal(fa, want_k[t]);
        assert_true((double)fa / n <= 1e-3 + 1e-12);
        free(s);
    }
    /* No mismatched pairs: threshold 0, as davidsandberg. */
    fn_scored one = {0.3, 1};
    assert_close(fn_far_threshold(&one, 1, 1e-3), 0.0, 0);
}

static void test_auc(void **state) {
    (void)state;
    enum { N = 20000 };
    float *d = malloc(sizeof *d * N);
    int *same = malloc(sizeof *same * N);
    fn_scored *s = malloc(sizeof *s * N);
    assert_non_null(d);
    assert_non_null(same);
    assert_non_null(s);
    /* Perfect separation: 1. Reversed: 0. */
    for (int i = 0; i < N; i++) {
        same[i] = i % 2;
        s[i].d = same[i] ? 0.1 + 1e-5 * i : 0.9 + 1e-5 * i;
        s[i].same = same[i];
    }
    fn_scored_sort(s, N);
    assert_close(fn_auc(s, N), 1.0, 1e-12);
    double eer, thr;
    fn_eer(s, N, &eer, &thr);
    assert_close(eer, 0.0, 1e-12);
    for (int i = 0; i < N; i++) s[i].same = !s[i].same;
    assert_close(fn_auc(s, N), 0.0, 1e-12);
    /* All distances equal: every comparison a tie, 0.5. */
    for (int i = 0; i < N; i++) s[i].d = 0.5;
    assert_close(fn_auc(s, N), 0.5, 1e-12);
    /* Random labels on random distances: about 0.5 (the std of the AUC
     * of 10000 x 10000 random pairs is about 0.003). */
    test_fill_random(d, N, 7, 0.0f, 2.0f);
    for (int i = 0; i < N; i++) {
        s[i].d = d[i];
        s[i].same = i % 2;
    }
    fn_scored_sort(s, N);
    assert_close(fn_auc(s, N), 0.5, 0.015);
    fn_eer(s, N, &eer, &thr);
    assert_close(eer, 0.5, 0.015);
    free(d);
    free(same);
    free(s);
}

static void test_eer(void **state) {
    (void)state;
    double eer, thr;
    fn_scored s[8];
    /* matched 0.1 0.2 0.3 0.6, mismatched 0.4 0.5 0.7 0.8: at 0.4 one of
     * four of each is wrong: EER 1/4 exactly at a vertex. */
    const double d1[] = {0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8};
    const int s1[] = {1, 1, 1, 1, 0, 0, 0, 0};
    sorted_from(d1, s1, 8, s);
    fn_eer(s, 8, &eer, &thr);
    assert_close(eer, 0.25, 1e-12);
    assert_close(thr, 0.4, 1e-12);
    /* matched 0.1 0.2 0.5, mismatched 0.3 0.4. ROC (0,1/3) (0,2/3)
     * (1/2,2/3): on the last segment the false reject rate stays 1/3 while
     * the false accept rate rises from 0 to 1/2; they meet 2/3 of the way
     * along, at 1/3, at distance 0.2 + 2/3 * 0.1. */
    const double d2[] = {0.1, 0.2, 0.5, 0.3, 0.4};
    const int s2[] = {1, 1, 1, 0, 0};
    sorted_from(d2, s2, 5, s);
    fn_eer(s, 5, &eer, &thr);
    assert_close(eer, 1.0 / 3.0, 1e-12);
    assert_close(thr, 0.2 + 0.1 * 2.0 / 3.0, 1e-12);
}

static void test_train_test(void **state) {
    (void)state;
    /* View 1: threshold from the training pairs only (0.5 here), accuracy on
     * the test pairs, which alone would have chosen 0.25. */
    const float tr[] = {0.3f, 0.4f, 0.6f, 0.7f};
    const int trs[] = {1, 1, 0, 0};
    const float te[] = {0.1f, 0.2f, 0.3f, 0.45f};
    const int tes[] = {1, 1, 0, 0};
    facenet_eval_result r;
    fn_error e;
    assert_int_equal(fn_eval_train_test(tr, trs, 4, te, tes, 4, 1e-3, &r, &e), FACENET_OK);
    assert_int_equal(r.n_folds, 1);
    assert_close(r.threshold, 0.5, 1e-6);
    assert_close(r.threshold_accuracy, 1.0, 1e-12);
    assert_close(r.accuracy, 0.5, 1e-12);
    assert_close(r.accuracy_std, 0.0, 0);
    assert_close(r.auc, 1.0, 1e-12);
    assert_int_equal(r.n_pairs, 4);
    /* VAL threshold: 2 training mismatched, k = 0 -> 0.6: all test pairs
     * accepted. */
    assert_close(r.fold_val_threshold[0], 0.6f, 1e-6);
    assert_close(r.val, 1.0, 1e-12);
    assert_close(r.far, 1.0, 1e-12);
}

/* Ten folds of random, overlapping distances: each fold's threshold must be
 * at least as good on its training folds as any threshold of a fine grid
 * (a grid cannot beat the exact sweep), and the reported accuracy must be
 * the test fold's at that threshold. */
static void test_against_grid(void **state) {
    (void)state;
    enum { F = 10, PER = 60, N = F * PER };
    float d[N];
    int same[N], fold[N];
    test_fill_random(d, N, 42, 0.0f, 1.0f);
    for (int i = 0; i < N; i++) {
        same[i] = (i / (PER / 2)) % 2 == 0;
        fold[i] = i / PER;
        if (same[i])
            d[i] *= 0.8f; /* matched pairs a bit nearer */
        else
            d[i] = 0.3f + 0.9f * d[i];
    }
    facenet_eval_result r;
    fn_error e;
    assert_int_equal(fn_eval_folds(d, same, fold, N, 1e-3, &r, &e), FACENET_OK);
    double sum = 0;
    for (int f = 0; f < F; f++) {
        int best_grid = 0, at_chosen = 0, test_ok = 0;
        for (int g = 0; g <= 40000; g++) {
            const double t = g * 1e-4;
            int c = 0;
            for (int i = 0; i < N; i++)
                if (fold[i] != f) c += ((double)d[i] < t) == same[i];
            if (c > best_grid) best_grid = c;
        }
        for (int i = 0; i < N; i++) {
            const int ok = ((double)d[i] < r.fold_threshold[f]) == same[i];
            if (fold[i] != f)
                at_chosen += ok;
            else
                test_ok += ok;
        }
        assert_true(at_chosen >= best_grid);
        assert_close(r.fold_accuracy[f], (double)test_ok / PER, 1e-12);
        sum += r.fold_accuracy[f];
    }
    assert_close(r.accuracy, sum / F, 1e-12);
    assert_true(r.accuracy > 0.6 && r.accuracy < 1.0);
}

static void test_roc_public(void **state) {
    (void)state;
    const float d[] = {0.2f, 0.2f, 0.5f, 0.9f};
    const int same[] = {1, 0, 1, 0};
    int n = -1;
    assert_int_equal(facenet_eval_roc(NULL, d, same, 4, NULL, NULL, NULL, 0, &n), FACENET_OK);
    assert_int_equal(n, 3); /* three distinct distances */
    double fpr[3], tpr[3], dist[3];
    assert_int_equal(facenet_eval_roc(NULL, d, same, 4, fpr, tpr, dist, 3, &n), FACENET_OK);
    assert_close(fpr[0], 0.5, 0);
    assert_close(tpr[0], 0.5, 0);
    assert_close(dist[0], 0.2f, 0);
    assert_close(fpr[1], 0.5, 0);
    assert_close(tpr[1], 1.0, 0);
    assert_close(fpr[2], 1.0, 0);
    assert_close(tpr[2], 1.0, 0);
}

static void test_bad_input(void **state) {
    (void)state;
    facenet_eval_result r;
    fn_error e;
    const float d[] = {0.1f, 0.9f, 0.2f, 0.8f};
    const int same[] = {1, 0, 1, 0};
    const int one_fold[] = {0, 0, 0, 0};
    const int two[] = {0, 0, 1, 1};
    const int lopsided[] = {0, 1, 0, 1}; /* fold 0 has only matched pairs */
    assert_int_equal(fn_eval_folds(d, same, one_fold, 4, 1e-3, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.msg, "2 folds"));
    assert_int_equal(fn_eval_folds(d, same, lopsided, 4, 1e-3, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.msg, "fold 1 has no mismatched"));
    assert_int_equal(fn_eval_folds(d, same, two, 4, 0.0, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_eval_folds(d, same, two, 4, 1.0, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    const float nan_d[] = {0.1f, NAN, 0.2f, 0.8f};
    assert_int_equal(fn_eval_folds(nan_d, same, two, 4, 1e-3, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.msg, "pair 2"));
    const int bad_same[] = {1, 2, 1, 0};
    assert_int_equal(fn_eval_folds(d, bad_same, two, 4, 1e-3, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    const int neg[] = {0, -1, 1, 1};
    assert_int_equal(fn_eval_folds(d, same, neg, 4, 1e-3, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_eval_folds(d, same, two, 0, 1e-3, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_eval_train_test(d, same, 2, d, same, 1, 1e-3, &r, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_eval_folds(d, same, two, 4, 1e-3, &r, &e), FACENET_OK);
    /* The public calls report into a context. */
    facenet_ctx *ctx;
    assert_int_equal(facenet_ctx_create(NULL, &ctx), FACENET_OK);
    assert_int_equal(facenet_eval_folds(ctx, d, same, one_fold, 4, NULL, &r), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(facenet_ctx_error(ctx), "folds"));
    facenet_eval_params p = facenet_eval_default_params();
    assert_close(p.far_target, 1e-3, 0);
    assert_int_equal(facenet_eval_folds(ctx, d, same, two, 4, &p, &r), FACENET_OK);
    facenet_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_best_threshold),
        cmocka_unit_test(test_ties_take_smallest),
        cmocka_unit_test(test_thresholds_from_training_folds_only),
        cmocka_unit_test(test_folds_and_population_std),
        cmocka_unit_test(test_val_far),
        cmocka_unit_test(test_far_threshold_counts),
        cmocka_unit_test(test_auc),
        cmocka_unit_test(test_eer),
        cmocka_unit_test(test_train_test),
        cmocka_unit_test(test_against_grid),
        cmocka_unit_test(test_roc_public),
        cmocka_unit_test(test_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
