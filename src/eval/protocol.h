/*
 * protocol.h - the verification protocol of FaceNet and davidsandberg/facenet
 * (validate_on_lfw.py, lfw.evaluate) on pair distances, computed exactly.
 *
 * A pair is judged "same" when its distance is below (<) a threshold. The
 * thresholds are never taken from a grid: the accuracy of a set of pairs
 * only changes at their distances, so the candidates are the midpoints
 * between consecutive distinct distances, plus one below all and one above
 * all (docs/evaluation.md states every rule). The public entry points are
 * facenet_eval_folds(), facenet_eval_train_test() and facenet_eval_roc().
 *
 *   fn_scored s[4] = {{0.2, 1}, {0.9, 0}, {0.4, 1}, {1.1, 0}};
 *   fn_scored_sort(s, 4);
 *   int correct;
 *   double t = fn_best_threshold(s, 4, &correct);   // 0.65, correct = 4
 */
#ifndef FN_EVAL_PROTOCOL_H
#define FN_EVAL_PROTOCOL_H

#include "core/core.h"

/* One pair: its distance and whether it is a matched pair. */
typedef struct fn_scored {
    double d;
    int same;
} fn_scored;

/* Sort by distance, ascending (equal distances: mismatched first, then by
 * nothing else; the sweeps below treat equal distances as one group). */
void fn_scored_sort(fn_scored *s, int n);

/* The threshold with the most correct judgements on sorted pairs; among
 * equally good candidates the smallest (davidsandberg's np.argmax over an
 * ascending grid also takes the first). *correct gets the count. */
double fn_best_threshold(const fn_scored *s, int n, int *correct);

/* The largest threshold whose false accept rate on the mismatched pairs of
 * sorted s does not exceed far_target: the (k+1)-th smallest mismatched
 * distance, k = floor(far_target * mismatched). 0 if there are none. */
double fn_far_threshold(const fn_scored *s, int n, double far_target);

/* Counts at threshold t: correct judgements, true accepts (matched below t)
 * and false accepts (mismatched below t); any pointer may be NULL. */
void fn_counts_at(const fn_scored *s, int n, double t, int *correct, int *true_acc, int *false_acc);

/* Area under the ROC of sorted pairs (Mann-Whitney: the chance that a random
 * matched pair is nearer than a random mismatched one, ties counting half). */
double fn_auc(const fn_scored *s, int n);

/* Equal error rate on the ROC of sorted pairs, linearly interpolated between
 * the ROC's vertices, and the distance there. */
void fn_eer(const fn_scored *s, int n, double *eer, double *threshold);

/* The protocol entry points behind the public calls. */
facenet_status fn_eval_folds(const float *dist, const int *same, const int *fold, int n, double far_target,
                             facenet_eval_result *r, fn_error *e);
facenet_status fn_eval_train_test(const float *train_dist, const int *train_same, int n_train,
                                  const float *test_dist, const int *test_same, int n_test, double far_target,
                                  facenet_eval_result *r, fn_error *e);

#endif /* FN_EVAL_PROTOCOL_H */
