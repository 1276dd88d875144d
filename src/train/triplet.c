/*
 * triplet.c - the triplet loss of FaceNet on L2-normalized embeddings, with
 * the triplets chosen inside the mini-batch.
 *
 * Every ordered anchor-positive pair (a, p) of the batch (same label, a !=
 * p) gets negatives n (another label) by the selection rule; a triplet's
 * loss is max(0, d(a,p) - d(a,n) + alpha) with d the squared distance
 * between unit vectors, and the loss is the mean over the triplets formed.
 * The soft margin, alpha log(1 + exp((d(a,p) - d(a,n)) / alpha)), keeps a
 * gradient on triplets that already meet any margin: on a small training
 * set the hinge reaches exactly 0 and learning stops, the soft margin keeps
 * pulling the classes apart, more weakly the farther apart they are.
 * Batch-all takes every triplet under it, since every one has a loss. The
 * width alpha stands for the embedding's length, which Hermans et al. leave
 * free and we fix at 1: on the unit sphere d(a,p) - d(a,n) spans only
 * [-4, 4], and with width 1 every triplet would weigh about the same.
 * Distances are computed in double from the normalized rows. The gradient
 * with respect to the unit vectors is then taken back through the
 * normalization (fn_l2_normalize_backward), so the network's raw output
 * gets it.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "engine/backward.h"
#include "train/train.h"

#define NORM_EPS 1e-12f

typedef struct trip {
    int a, p, n;
} trip;

/* Add triplet (a, p, n) with weight w to the gradient g over unit rows y. */
static void add_grad(const float *y, int dim, int a, int p, int n, double w, double *g) {
    const float *ya = y + (size_t)a * dim, *yp = y + (size_t)p * dim, *yn = y + (size_t)n * dim;
    double *ga = g + (size_t)a * dim, *gp = g + (size_t)p * dim, *gn = g + (size_t)n * dim;
    /* d(a,p) - d(a,n) = |a-p|^2 - |a-n|^2. */
    for (int i = 0; i < dim; i++) {
        ga[i] += w * 2.0 * ((double)yn[i] - yp[i]);
        gp[i] += w * 2.0 * ((double)yp[i] - ya[i]);
        gn[i] += w * 2.0 * ((double)ya[i] - yn[i]);
    }
}

static int cmp_double(const void *a, const void *b) {
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The pair term: mean over the violating (matched, mismatched) pair
 * combinations of max(0, d_pos - d_neg + margin), added to g with weight
 * 1; each pair's count of violating partners comes from the other kind's
 * sorted distances, so the cost is O(pairs log pairs), not their product.
 * Returns -1 out of memory. */
static int pair_term(const float *y, const double *dist, const int *labels, int n, int dim, double margin,
                     double *g, double *loss_out, double *active_out) {
    size_t np = 0, nn = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) labels[i] == labels[j] ? np++ : nn++;
    *loss_out = 0.0;
    *active_out = 0.0;
    if (np == 0 || nn == 0) return 0;
    double *dp = malloc(sizeof(double) * np), *dn = malloc(sizeof(double) * nn);
    double *cum = malloc(sizeof(double) * (nn + 1)); /* cum[k]: the sum of the k smallest dn */
    if (!dp || !dn || !cum) {
        free(dp), free(dn), free(cum);
        return -1;
    }
    size_t ip = 0, in = 0;
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            const double d = dist[(size_t)i * n + j];
            if (labels[i] == labels[j])
                dp[ip++] = d;
            else
                dn[in++] = d;
        }
    qsort(dp, np, sizeof(double), cmp_double);
    qsort(dn, nn, sizeof(double), cmp_double);
    cum[0] = 0.0;
    for (size_t k = 0; k < nn; k++) cum[k + 1] = cum[k] + dn[k];
    /* Mismatched pairs closer than d + margin (count_below) and matched
     * pairs farther than d - margin (np - count_at_or_below). */
    double total = 0.0, loss = 0.0;
    for (size_t k = 0; k < np; k++) {
        size_t lo = 0, hi = nn;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if (dn[mid] < dp[k] + margin) lo = mid + 1; else hi = mid;
        }
        total += (double)lo;
        loss += (double)lo * (dp[k] + margin) - cum[lo];
    }
    if (total > 0.0) {
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++) {
                const double d = dist[(size_t)i * n + j];
                double c;
                size_t lo = 0, hi;
                if (labels[i] == labels[j]) {
                    hi = nn;
                    while (lo < hi) {
                        size_t mid = (lo + hi) / 2;
                        if (dn[mid] < d + margin) lo = mid + 1; else hi = mid;
                    }
                    c = (double)lo; /* d(i,j) pulled in */
                } else {
                    hi = np;
                    while (lo < hi) {
                        size_t mid = (lo + hi) / 2;
                        if (dp[mid] <= d - margin) lo = mid + 1; else hi = mid;
                    }
                    c = -(double)(np - lo); /* d(i,j) pushed out */
                }
                if (c == 0.0) continue;
                const double w = 2.0 * c / total;
                const float *yi = y + (size_t)i * dim, *yj = y + (size_t)j * dim;
                double *gi = g + (size_t)i * dim, *gj = g + (size_t)j * dim;
                for (int t = 0; t < dim; t++) {
                    const double diff = (double)yi[t] - yj[t];
                    gi[t] += w * diff;
                    gj[t] -= w * diff;
                }
            }
        *loss_out = loss / total;
    }
    *active_out = total / ((double)np * (double)nn);
    free(dp), free(dn), free(cum);
    return 0;
}

int fn_triplet_loss(const float *emb, const int *labels, int n, int dim, const fn_triplet_params *p,
                    fn_rng *rng, float *d_emb, fn_triplet_stats *st) {
    fn_triplet_stats s = {0};
    if (st) *st = s;
    if (n < 2 || dim <= 0) return -1;
    const double alpha = p ? p->alpha : 0.2;
    const fn_triplet_select sel = p ? p->select : FN_SELECT_SEMIHARD;
    const int soft = p && p->kind == FN_TRIPLET_SOFT;
    float *y = malloc(sizeof(float) * (size_t)n * dim);
    double *dist = malloc(sizeof(double) * (size_t)n * n);
    double *g = calloc((size_t)n * dim, sizeof(double));
    int *cand = malloc(sizeof(int) * (size_t)n);
    size_t cap = 256, nt = 0;
    trip *t = malloc(sizeof(trip) * cap);
    int rc = -1, pairs = 0;
    if (!y || !dist || !g || !cand || !t) goto done;
    memcpy(y, emb, sizeof(float) * (size_t)n * dim);
    fn_l2_normalize(y, n, dim, NORM_EPS);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0.0;
            for (int k = 0; k < dim; k++) {
                double d = (double)y[(size_t)i * dim + k] - y[(size_t)j * dim + k];
                acc += d * d;
            }
            dist[(size_t)i * n + j] = acc;
        }
    for (int a = 0; a < n; a++)
        for (int q = 0; q < n; q++) {
            if (q == a || labels[q] != labels[a]) continue;
            pairs++;
            const double dap = dist[(size_t)a * n + q];
            int nc = 0, best = -1;
            for (int m = 0; m < n; m++) {
                if (labels[m] == labels[a]) continue;
                const double dan = dist[(size_t)a * n + m];
                int take = 0;
                switch (sel) {
                case FN_SELECT_SEMIHARD: take = dap < dan && dan < dap + alpha; break;
                case FN_SELECT_RANDOM:
                case FN_SELECT_ALL: take = soft || dan < dap + alpha; break;
                case FN_SELECT_HARDEST: take = best < 0 || dan < dist[(size_t)a * n + best]; break;
                }
                if (!take) continue;
                if (sel == FN_SELECT_HARDEST)
                    best = m;
                else
                    cand[nc++] = m;
            }
            if (sel == FN_SELECT_HARDEST && best >= 0) cand[nc++] = best;
            if (nc == 0) continue;
            int from = 0, to = nc; /* the candidates that become triplets */
            if (sel == FN_SELECT_SEMIHARD || sel == FN_SELECT_RANDOM) {
                from = rng ? fn_rng_below(rng, nc) : 0;
                to = from + 1;
            }
            for (int c = from; c < to; c++) {
                if (nt == cap) {
                    trip *bigger = realloc(t, sizeof(trip) * cap * 2);
                    if (!bigger) goto done;
                    t = bigger;
                    cap *= 2;
                }
                t[nt++] = (trip){a, q, cand[c]};
            }
        }
    if (pairs == 0) goto done;
    double loss = 0.0, pos = 0.0, neg = 0.0;
    int active = 0;
    for (size_t i = 0; i < nt; i++) {
        const double dap = dist[(size_t)t[i].a * n + t[i].p], dan = dist[(size_t)t[i].a * n + t[i].n];
        pos += dap;
        neg += dan;
        if (soft) {
            /* softplus(x) and its derivative, the logistic, without overflow. */
            const double x = (dap - dan) / alpha, ex = exp(-fabs(x));
            loss += alpha * ((x > 0.0 ? x : 0.0) + log1p(ex));
            const double sig = x >= 0.0 ? 1.0 / (1.0 + ex) : ex / (1.0 + ex);
            active += dan < dap + alpha;
            add_grad(y, dim, t[i].a, t[i].p, t[i].n, sig / (double)nt, g);
            continue;
        }
        const double l = dap - dan + alpha;
        if (l > 0.0) {
            loss += l;
            active++;
            add_grad(y, dim, t[i].a, t[i].p, t[i].n, 1.0 / (double)nt, g);
        }
    }
    if (nt > 0) {
        s.loss = (float)(loss / (double)nt);
        s.mean_pos = (float)(pos / (double)nt);
        s.mean_neg = (float)(neg / (double)nt);
    }
    s.n_triplets = (int)nt;
    s.n_active = active;
    if (p && p->pair_margin > 0) {
        double pl, pa;
        if (pair_term(y, dist, labels, n, dim, p->pair_margin, g, &pl, &pa) != 0) goto done;
        s.pair_loss = (float)pl;
        s.pair_active = (float)pa;
        s.loss += (float)pl;
    }
    if (d_emb) {
        /* dL/dy, then through y = x / |x|. */
        float *gf = malloc(sizeof(float) * (size_t)n * dim);
        if (!gf) goto done;
        for (size_t i = 0; i < (size_t)n * dim; i++) gf[i] = (float)g[i];
        fn_l2_normalize_backward(emb, gf, n, dim, NORM_EPS, d_emb);
        free(gf);
    }
    if (st) *st = s;
    rc = 0;
done:
    free(y);
    free(dist);
    free(g);
    free(cand);
    free(t);
    return rc;
}
