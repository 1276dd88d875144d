/*
 * protocol.c - accuracy, VAL@FAR, AUC and EER of pair distances (protocol.h).
 *
 * Everything works on pairs sorted by distance and sweeps them once, in
 * groups of equal distance: a threshold between two groups accepts exactly
 * the groups below it, so the counts at every candidate threshold come from
 * running sums. All rates are computed from integer counts; the doubles only
 * hold distances and the final ratios, so ties between candidates are exact.
 *
 * Cross-validation follows davidsandberg/facenet's lfw.evaluate: for each
 * fold, the thresholds are chosen on the pairs of all other folds and the
 * rates measured on the fold itself; the figures are the mean and the
 * population standard deviation (np.std) over folds.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/protocol.h"

static int cmp_scored(const void *pa, const void *pb) {
    const fn_scored *a = pa, *b = pb;
    if (a->d < b->d) return -1;
    if (a->d > b->d) return 1;
    return (a->same > b->same) - (a->same < b->same);
}

void fn_scored_sort(fn_scored *s, int n) {
    if (n > 1) qsort(s, (size_t)n, sizeof *s, cmp_scored);
}

/* The end of the group of equal distances that starts at i. */
static int group_end(const fn_scored *s, int n, int i) {
    int j = i;
    while (j < n && s[j].d == s[i].d) j++;
    return j;
}

/* Add the matched and mismatched pairs of s[i..j) to *same and *diff. */
static void count_group(const fn_scored *s, int i, int j, int *same, int *diff) {
    for (int k = i; k < j; k++) {
        if (s[k].same)
            (*same)++;
        else
            (*diff)++;
    }
}

double fn_best_threshold(const fn_scored *s, int n, int *correct) {
    if (n <= 0) {
        if (correct) *correct = 0;
        return 0.0;
    }
    int n_diff = 0;
    for (int i = 0; i < n; i++) n_diff += !s[i].same;
    /* Below everything: all judged different. */
    int best = n_diff, tp = 0, fp = 0;
    double best_t = s[0].d;
    for (int i = 0; i < n;) {
        int j = group_end(s, n, i);
        count_group(s, i, j, &tp, &fp);
        const int c = tp + (n_diff - fp);
        if (c > best) { /* strictly better: ties keep the smaller threshold */
            best = c;
            best_t = j < n ? 0.5 * (s[i].d + s[j].d) : s[i].d + 1.0;
        }
        i = j;
    }
    if (correct) *correct = best;
    return best_t;
}

double fn_far_threshold(const fn_scored *s, int n, double far_target) {
    int n_diff = 0;
    for (int i = 0; i < n; i++) n_diff += !s[i].same;
    if (n_diff == 0) return 0.0; /* as davidsandberg: no mismatched pairs, threshold 0 */
    /* The small epsilon keeps k exact when far_target * n_diff is a whole
     * number that floating point lands just below (1e-3 * 3000). */
    double kf = floor(far_target * n_diff + 1e-9);
    if (kf < 0) kf = 0;
    if (kf >= n_diff) { /* every mismatched pair may be accepted */
        double mx = 0;
        for (int i = 0; i < n; i++)
            if (!s[i].same) mx = s[i].d;
        return mx + 1.0;
    }
    const int k = (int)kf;
    int seen = 0;
    for (int i = 0; i < n; i++) {
        if (s[i].same) continue;
        if (seen == k) return s[i].d;
        seen++;
    }
    return 0.0; /* not reached */
}

void fn_counts_at(const fn_scored *s, int n, double t, int *correct, int *true_acc, int *false_acc) {
    int c = 0, ta = 0, fa = 0;
    for (int i = 0; i < n; i++) {
        const int accept = s[i].d < t;
        if (accept && s[i].same) ta++;
        if (accept && !s[i].same) fa++;
        c += accept == (s[i].same != 0);
    }
    if (correct) *correct = c;
    if (true_acc) *true_acc = ta;
    if (false_acc) *false_acc = fa;
}

double fn_auc(const fn_scored *s, int n) {
    int n_same = 0;
    for (int i = 0; i < n; i++) n_same += s[i].same != 0;
    const int n_diff = n - n_same;
    if (n_same == 0 || n_diff == 0) return 0.0;
    double wins = 0; /* matched-mismatched combinations in the right order, ties half */
    int diff_seen = 0;
    for (int i = 0; i < n;) {
        int j = group_end(s, n, i), gs = 0, gd = 0;
        count_group(s, i, j, &gs, &gd);
        diff_seen += gd;
        wins += (double)gs * (double)(n_diff - diff_seen) + 0.5 * (double)gs * (double)gd;
        i = j;
    }
    return wins / ((double)n_same * (double)n_diff);
}

void fn_eer(const fn_scored *s, int n, double *eer, double *threshold) {
    int n_same = 0;
    for (int i = 0; i < n; i++) n_same += s[i].same != 0;
    const int n_diff = n - n_same;
    *eer = 0.0;
    *threshold = n > 0 ? s[0].d : 0.0;
    if (n_same == 0 || n_diff == 0) return;
    /* Walk the ROC from (0, 0); g = false reject rate - false accept rate
     * falls from 1 to -1 and the EER is where it crosses 0. */
    double fpr0 = 0, g0 = 1, d0 = s[0].d;
    int tp = 0, fp = 0;
    for (int i = 0; i < n;) {
        int j = group_end(s, n, i);
        count_group(s, i, j, &tp, &fp);
        const double fpr1 = (double)fp / n_diff, tpr1 = (double)tp / n_same, d1 = s[i].d;
        const double g1 = 1.0 - tpr1 - fpr1;
        if (g1 <= 0) {
            const double lam = g0 / (g0 - g1);
            *eer = fpr0 + lam * (fpr1 - fpr0);
            *threshold = d0 + lam * (d1 - d0);
            return;
        }
        fpr0 = fpr1;
        g0 = g1;
        d0 = d1;
        i = j;
    }
}

/* ---- the protocol */

static void mean_std(const double *x, int n, double *mean, double *std) {
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) m += x[i];
    m /= n;
    for (int i = 0; i < n; i++) v += (x[i] - m) * (x[i] - m);
    *mean = m;
    *std = sqrt(v / n); /* population form, as np.std */
}

static facenet_status check_inputs(const char *what, const float *dist, const int *same, int n, fn_error *e) {
    if (n <= 0 || !dist || !same)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "%s: no pairs to evaluate", what);
    for (int i = 0; i < n; i++) {
        if (!isfinite(dist[i]))
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                           "%s: the distance of pair %d is not a finite number", what, i + 1);
        if (same[i] != 0 && same[i] != 1)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                           "%s: pair %d is neither matched (1) nor mismatched (0)", what, i + 1);
    }
    return FACENET_OK;
}

/* Copy the pairs (of fold f, of all folds but f, or all with f < 0) and sort. */
static int gather(const float *dist, const int *same, const int *fold, int n, int f, int in_fold,
                  fn_scored *out) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (f >= 0 && (fold[i] == f) != in_fold) continue;
        out[m].d = dist[i];
        out[m].same = same[i];
        m++;
    }
    fn_scored_sort(out, m);
    return m;
}

/* Choose both thresholds on train and measure the test pairs with them. */
static void run_fold(const fn_scored *train, int n_train, const fn_scored *test, int n_test,
                     double far_target, facenet_eval_result *r, int k) {
    int correct, ta, fa, n_same = 0;
    r->fold_threshold[k] = fn_best_threshold(train, n_train, NULL);
    fn_counts_at(test, n_test, r->fold_threshold[k], &correct, NULL, NULL);
    r->fold_accuracy[k] = (double)correct / n_test;
    r->fold_val_threshold[k] = fn_far_threshold(train, n_train, far_target);
    fn_counts_at(test, n_test, r->fold_val_threshold[k], NULL, &ta, &fa);
    for (int i = 0; i < n_test; i++) n_same += test[i].same;
    r->fold_val[k] = (double)ta / n_same;
    r->fold_far[k] = (double)fa / (n_test - n_same);
}

static void summarize(facenet_eval_result *r) {
    mean_std(r->fold_accuracy, r->n_folds, &r->accuracy, &r->accuracy_std);
    mean_std(r->fold_val, r->n_folds, &r->val, &r->val_std);
    mean_std(r->fold_far, r->n_folds, &r->far, &r->far_std);
}

static facenet_status check_far(double far_target, fn_error *e) {
    if (!(far_target > 0.0 && far_target < 1.0))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "the target false accept rate must lie in (0, 1), not %g", far_target);
    return FACENET_OK;
}

facenet_status fn_eval_folds(const float *dist, const int *same, const int *fold, int n, double far_target,
                             facenet_eval_result *r, fn_error *e) {
    fn_error_clear(e);
    if (!r) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "facenet_eval_folds: no result");
    memset(r, 0, sizeof *r);
    if (check_far(far_target, e) || check_inputs("facenet_eval_folds", dist, same, n, e)) return e->status;
    if (!fold) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "facenet_eval_folds: no folds given");
    int n_folds = 0;
    for (int i = 0; i < n; i++) {
        if (fold[i] < 0 || fold[i] >= FACENET_EVAL_MAX_FOLDS)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                           "facenet_eval_folds: pair %d is in fold %d, not 0 to %d", i + 1, fold[i],
                           FACENET_EVAL_MAX_FOLDS - 1);
        if (fold[i] + 1 > n_folds) n_folds = fold[i] + 1;
    }
    if (n_folds < 2)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "cross-validation needs at least 2 folds; these pairs have one (View 1 files are "
                       "evaluated with training pairs for the threshold instead)");
    int counts[FACENET_EVAL_MAX_FOLDS][2];
    memset(counts, 0, sizeof counts);
    for (int i = 0; i < n; i++) counts[fold[i]][same[i]]++;
    for (int f = 0; f < n_folds; f++)
        if (!counts[f][0] || !counts[f][1])
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fold %d has no %s pairs", f + 1,
                           counts[f][1] ? "mismatched" : "matched");
    fn_scored *train = malloc(sizeof *train * (size_t)n), *test = malloc(sizeof *test * (size_t)n);
    if (!train || !test) {
        free(train);
        free(test);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory evaluating %d pairs", n);
    }
    r->n_folds = n_folds;
    r->far_target = far_target;
    for (int f = 0; f < n_folds; f++) {
        int n_train = gather(dist, same, fold, n, f, 0, train);
        int n_test = gather(dist, same, fold, n, f, 1, test);
        run_fold(train, n_train, test, n_test, far_target, r, f);
    }
    summarize(r);
    /* Over all pairs: the threshold to ship, AUC and EER. */
    gather(dist, same, fold, n, -1, 0, train);
    int correct;
    r->threshold = fn_best_threshold(train, n, &correct);
    r->threshold_accuracy = (double)correct / n;
    r->auc = fn_auc(train, n);
    fn_eer(train, n, &r->eer, &r->eer_threshold);
    r->n_pairs = n;
    for (int i = 0; i < n; i++) r->n_same += same[i];
    r->n_diff = n - r->n_same;
    free(train);
    free(test);
    return FACENET_OK;
}

facenet_status fn_eval_train_test(const float *train_dist, const int *train_same, int n_train,
                                  const float *test_dist, const int *test_same, int n_test, double far_target,
                                  facenet_eval_result *r, fn_error *e) {
    fn_error_clear(e);
    if (!r) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "facenet_eval_train_test: no result");
    memset(r, 0, sizeof *r);
    if (check_far(far_target, e) || check_inputs("training pairs", train_dist, train_same, n_train, e) ||
        check_inputs("test pairs", test_dist, test_same, n_test, e))
        return e->status;
    int ts = 0, es = 0;
    for (int i = 0; i < n_train; i++) ts += train_same[i];
    for (int i = 0; i < n_test; i++) es += test_same[i];
    if (ts == 0 || ts == n_train || es == 0 || es == n_test)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "the %s pairs need both matched and mismatched pairs",
                       ts == 0 || ts == n_train ? "training" : "test");
    fn_scored *train = malloc(sizeof *train * (size_t)n_train), *test = malloc(sizeof *test * (size_t)n_test);
    if (!train || !test) {
        free(train);
        free(test);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory evaluating %d pairs", n_train + n_test);
    }
    gather(train_dist, train_same, NULL, n_train, -1, 0, train);
    gather(test_dist, test_same, NULL, n_test, -1, 0, test);
    r->n_folds = 1;
    r->far_target = far_target;
    run_fold(train, n_train, test, n_test, far_target, r, 0);
    summarize(r);
    int correct;
    r->threshold = r->fold_threshold[0];
    fn_counts_at(train, n_train, r->threshold, &correct, NULL, NULL);
    r->threshold_accuracy = (double)correct / n_train;
    r->auc = fn_auc(test, n_test);
    fn_eer(test, n_test, &r->eer, &r->eer_threshold);
    r->n_pairs = n_test;
    r->n_same = es;
    r->n_diff = n_test - es;
    free(train);
    free(test);
    return FACENET_OK;
}

/* ---- the public face */

facenet_eval_params facenet_eval_default_params(void) {
    facenet_eval_params p;
    memset(&p, 0, sizeof p);
    p.far_target = 1e-3;
    return p;
}

facenet_status facenet_eval_folds(facenet_ctx *ctx, const float *dist, const int *same, const int *fold,
                                  int n, const facenet_eval_params *params, facenet_eval_result *out) {
    fn_error e;
    facenet_eval_params p = params ? *params : facenet_eval_default_params();
    fn_eval_folds(dist, same, fold, n, p.far_target, out, &e);
    return fn_ctx_report(ctx, &e);
}

facenet_status facenet_eval_train_test(facenet_ctx *ctx, const float *train_dist, const int *train_same,
                                       int n_train, const float *test_dist, const int *test_same, int n_test,
                                       const facenet_eval_params *params, facenet_eval_result *out) {
    fn_error e;
    facenet_eval_params p = params ? *params : facenet_eval_default_params();
    fn_eval_train_test(train_dist, train_same, n_train, test_dist, test_same, n_test, p.far_target, out, &e);
    return fn_ctx_report(ctx, &e);
}

facenet_status facenet_eval_roc(facenet_ctx *ctx, const float *dist, const int *same, int n, double *fpr,
                                double *tpr, double *distance, int cap, int *n_points) {
    fn_error e;
    fn_error_clear(&e);
    if (!n_points || cap < 0 || (cap > 0 && (!fpr || !tpr || !distance))) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_eval_roc: bad arguments");
        return fn_ctx_report(ctx, &e);
    }
    *n_points = 0;
    if (check_inputs("facenet_eval_roc", dist, same, n, &e) != FACENET_OK) return fn_ctx_report(ctx, &e);
    fn_scored *s = malloc(sizeof *s * (size_t)n);
    if (!s) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory for the ROC of %d pairs", n);
        return fn_ctx_report(ctx, &e);
    }
    gather(dist, same, NULL, n, -1, 0, s);
    int n_same = 0;
    for (int i = 0; i < n; i++) n_same += s[i].same;
    const int n_diff = n - n_same;
    int tp = 0, fp = 0, m = 0;
    for (int i = 0; i < n;) {
        int j = group_end(s, n, i);
        count_group(s, i, j, &tp, &fp);
        if (m < cap) {
            fpr[m] = n_diff ? (double)fp / n_diff : 0.0;
            tpr[m] = n_same ? (double)tp / n_same : 0.0;
            distance[m] = s[i].d;
        }
        m++;
        i = j;
    }
    *n_points = m;
    free(s);
    return fn_ctx_report(ctx, &e);
}
