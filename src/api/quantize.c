/*
 * quantize.c - int8 calibration: the facenet_quantizer_* calls.
 *
 * The quantizer runs the network the ordinary way with an exec that
 * observes: the float32 graph then runs op by op and shows every value
 * (engine/graph.h). An embedding network embeds chips through the batch
 * path (so they are prepared exactly as facenet_embed_chips prepares them);
 * a detector detects faces in photos, its input made as for detection.
 * For each value the network named for int8, a histogram of magnitudes is
 * kept: NBINS equal bins over [0, top), where top doubles (merging bins
 * pairwise) whenever a larger magnitude arrives, so one pass over any
 * number of images gives any percentile to within top / NBINS.
 * The exact maximum is kept beside it for percentile 100.
 *
 * Beside it, each value's per-channel sum gives its mean over all images,
 * for the bias correction of the convolutions that read it (graph.h).
 *
 * Writing copies the model file's tensors and metadata and adds one F32 [1]
 * tensor "int8/NAME" per range and one F32 [C] "int8/NAME.mean" per mean
 * (model/calibration.c reads them back).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"
#include "detect/detect.h"
#include "engine/graph.h"
#include "model/safetensors.h"
#include "nets/nets.h"

#define NBINS 4096
#define MAX_LIST 1024 /* bytes of float32_values */

typedef struct hist {
    double bins[NBINS];
    double top;  /* bins cover [0, top) */
    double max;  /* the largest magnitude seen */
    double count;
    double *sum; /* per channel, for the means (bias correction) */
    int channels;
    double pixels; /* elements summed per channel */
} hist;

struct facenet_quantizer {
    facenet_ctx *ctx;
    const facenet_model *model;
    facenet_quantize_params p;
    char float32_values[MAX_LIST];
    fn_arena arena;
    fn_exec ex;
    const fn_graph *g; /* the graph seen by the observer */
    hist **h;          /* per value of g: NULL if unnamed */
    int n_values;
    int images; /* chips or photos recorded */
    int failed; /* out of memory inside the observer */
};

facenet_quantize_params facenet_quantize_default_params(void) {
    facenet_quantize_params p;
    memset(&p, 0, sizeof p);
    p.percentile = 99.999;
    return p;
}

/* Double h's span until it covers a. */
static void widen(hist *h, double a) {
    while (a >= h->top) {
        for (int i = 0; i < NBINS / 2; i++) h->bins[i] = h->bins[2 * i] + h->bins[2 * i + 1];
        memset(h->bins + NBINS / 2, 0, sizeof(double) * (NBINS / 2));
        h->top *= 2.0;
    }
}

/* t's values into h: the histogram of magnitudes and, per channel (NHWC:
 * the last index), the sums for the means. -1 if out of memory or t's
 * channels are not those of the earlier calls. */
static int record(hist *h, const fn_tensor *t) {
    const float *x = t->data;
    const size_t n = fn_tensor_count(t), c = (size_t)t->c;
    if (!h->sum) {
        if (!(h->sum = calloc(c, sizeof *h->sum))) return -1;
        h->channels = t->c;
    }
    if (h->channels != t->c) return -1;
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i]));
    if (h->top <= 0.0) h->top = m > 0.0 ? m * 1.0001 : 1e-6;
    widen(h, m);
    if (m > h->max) h->max = m;
    const double per_bin = NBINS / h->top;
    for (size_t i = 0; i < n; i++) {
        int b = (int)(fabs((double)x[i]) * per_bin);
        h->bins[b < NBINS ? b : NBINS - 1] += 1.0;
        h->sum[i % c] += x[i];
    }
    h->count += (double)n;
    h->pixels += (double)(n / c);
    return 0;
}

/* The magnitude below which percentile p of h's values lie. */
static double range_of(const hist *h, double p) {
    if (p >= 100.0 || h->count <= 0.0) return h->max;
    const double want = p / 100.0 * h->count;
    double cum = 0.0;
    for (int b = 0; b < NBINS; b++) {
        cum += h->bins[b];
        if (cum >= want) return fmin(h->max, (b + 1) * (h->top / NBINS));
    }
    return h->max;
}

static void observe(void *user, const fn_graph *g, int v, const fn_tensor *t) {
    facenet_quantizer *q = user;
    if (q->failed || !fn_graph_value_name(g, v)) return;
    if (!q->g) {
        q->h = calloc((size_t)g->n_ops + 1, sizeof *q->h);
        if (!q->h) {
            q->failed = 1;
            return;
        }
        q->g = g;
        q->n_values = g->n_ops + 1;
    }
    if (g != q->g || v >= q->n_values) {
        q->failed = 1;
        return;
    }
    if (!q->h[v] && !(q->h[v] = calloc(1, sizeof *q->h[v]))) {
        q->failed = 1;
        return;
    }
    if (record(q->h[v], t) != 0) q->failed = 1;
}

facenet_status facenet_quantizer_create(facenet_ctx *ctx, const facenet_model *model,
                                        const facenet_quantize_params *params, facenet_quantizer **out) {
    fn_error e;
    fn_error_clear(&e);
    if (!ctx || !model || !out) return FACENET_ERR_INVALID_ARGUMENT;
    *out = NULL;
    facenet_quantize_params p = params ? *params : facenet_quantize_default_params();
    if (model->ops != fn_net_ops_find("dlib_resnet29") && model->ops != fn_net_ops_find("ssd_mobilenetv1")) {
        fn_fail(&e, FACENET_ERR_UNSUPPORTED,
                "%s: only the dlib_resnet29 embedding network and the ssd_mobilenetv1 detector have an int8 form",
                model->path);
        return fn_ctx_report(ctx, &e);
    }
    if (!(p.percentile > 50.0 && p.percentile <= 100.0)) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "percentile %g is not in (50, 100]", p.percentile);
        return fn_ctx_report(ctx, &e);
    }
    if (p.float32_values && strlen(p.float32_values) >= MAX_LIST) {
        fn_fail(&e, FACENET_ERR_TOO_LARGE, "float32_values is over %d bytes", MAX_LIST - 1);
        return fn_ctx_report(ctx, &e);
    }
    facenet_quantizer *q = calloc(1, sizeof *q);
    if (!q) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory creating a quantizer");
        return fn_ctx_report(ctx, &e);
    }
    q->ctx = ctx;
    q->model = model;
    q->p = p;
    snprintf(q->float32_values, sizeof q->float32_values, "%s", p.float32_values ? p.float32_values : "");
    q->p.float32_values = q->float32_values;
    fn_exec_init(&q->ex, fn_backend_default(), ctx->pool, &q->arena);
    q->ex.observe = observe;
    q->ex.observe_user = q;
    *out = q;
    return fn_ctx_report(ctx, &e);
}

void facenet_quantizer_free(facenet_quantizer *q) {
    if (!q) return;
    for (int v = 0; q->h && v < q->n_values; v++) {
        if (q->h[v]) free(q->h[v]->sum);
        free(q->h[v]);
    }
    free(q->h);
    fn_exec_release(&q->ex);
    fn_arena_free(&q->arena);
    free(q);
}

int facenet_quantizer_count(const facenet_quantizer *q) { return q ? q->images : 0; }

/* A detector: each image is a photo, run through detection. */
static facenet_status add_photos(facenet_quantizer *q, const facenet_image *photos, int n, fn_error *e) {
    const fn_detect_opts o = fn_detect_default_opts(q->model);
    fn_face_box box[1];
    for (int i = 0; i < n; i++) {
        int nb = 0;
        facenet_status st = fn_detect(q->model, &q->ex, &photos[i], &o, box, 1, &nb, e);
        fn_arena_reset(&q->arena);
        if (st != FACENET_OK) return st;
        if (q->failed) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory recording the network's values");
        q->images++;
    }
    return FACENET_OK;
}

facenet_status facenet_quantizer_add(facenet_quantizer *q, const facenet_image *images, int n) {
    fn_error e;
    fn_error_clear(&e);
    if (!q) return FACENET_ERR_INVALID_ARGUMENT;
    if (n < 0 || (n > 0 && !images)) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_quantizer_add: bad arguments (n = %d)", n);
        return fn_ctx_report(q->ctx, &e);
    }
    if (n == 0) return fn_ctx_report(q->ctx, &e);
    if (q->model->arch->kind == FN_ARCH_DETECTOR) {
        add_photos(q, images, n, &e);
        return fn_ctx_report(q->ctx, &e);
    }
    size_t count;
    float *out = fn_mul_size((size_t)n, (size_t)q->model->embedding_dim * sizeof(float), &count) ? malloc(count)
                                                                                                : NULL;
    if (!out) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory for %d chips", n);
        return fn_ctx_report(q->ctx, &e);
    }
    if (fn_embed_batch(q->model, &q->ex, images, n, out, FACENET_EMBED_RAW, &e) == FACENET_OK) {
        if (q->failed)
            fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory recording the network's values");
        else
            q->images += n;
    }
    free(out);
    return fn_ctx_report(q->ctx, &e);
}

/* Does name match the comma-separated patterns of list (NAME, or PREFIX*)? */
static int listed(const char *list, const char *name) {
    for (const char *p = list; *p;) {
        size_t len = strcspn(p, ",");
        if (len > 0 && p[len - 1] == '*' ? strncmp(p, name, len - 1) == 0
                                         : len > 0 && strlen(name) == len && strncmp(p, name, len) == 0)
            return 1;
        p += len + (p[len] == ',');
    }
    return 0;
}

/* Does every pattern of list match a named value? If not, e says which. */
static facenet_status check_list(const facenet_quantizer *q, fn_error *e) {
    char pat[MAX_LIST];
    for (const char *p = q->float32_values; *p;) {
        size_t len = strcspn(p, ",");
        snprintf(pat, sizeof pat, "%.*s", (int)len, p);
        int hit = 0;
        for (int v = 0; len > 0 && !hit && v < q->n_values; v++)
            hit = q->h[v] && listed(pat, fn_graph_value_name(q->g, v));
        if (!hit)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "float32 values: '%s' names no int8 value of the network",
                           pat);
        p += len + (p[len] == ',');
    }
    return FACENET_OK;
}

typedef struct calib_tensor {
    char name[128], mean_name[136];
    float value;
    float *mean; /* [channels] */
    int64_t channels;
} calib_tensor;

facenet_status facenet_quantizer_write(facenet_quantizer *q, const char *out_path) {
    fn_error e;
    fn_error_clear(&e);
    if (!q) return FACENET_ERR_INVALID_ARGUMENT;
    if (!out_path || !*out_path) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_quantizer_write: no output path");
        return fn_ctx_report(q->ctx, &e);
    }
    if (q->images == 0 || !q->g) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "no images were recorded: nothing to calibrate on");
        return fn_ctx_report(q->ctx, &e);
    }
    if (check_list(q, &e) != FACENET_OK) return fn_ctx_report(q->ctx, &e);
    const fn_st_file *f = q->model->file;
    const size_t n_old = fn_st_count(f), n_meta = fn_st_meta_count(f);
    fn_st_entry *entries = calloc(n_old + 2 * (size_t)q->n_values + 1, sizeof *entries);
    calib_tensor *ct = calloc((size_t)q->n_values, sizeof *ct);
    const char **meta = calloc(2 * (n_meta + 1), sizeof *meta);
    static const int64_t one[1] = {1};
    char desc[256 + MAX_LIST];
    if (!entries || !ct || !meta) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory writing %s", out_path);
        goto done;
    }
    size_t n = 0, n_cal = 0;
    for (size_t i = 0; i < n_old; i++) {
        const fn_st_tensor *t = fn_st_at(f, i);
        if (strncmp(t->name, FN_CALIB_PREFIX, strlen(FN_CALIB_PREFIX)) == 0) continue; /* replaced */
        entries[n++] = (fn_st_entry){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    for (int v = 0; v < q->n_values; v++) {
        const char *name = q->h[v] ? fn_graph_value_name(q->g, v) : NULL;
        if (!name || listed(q->float32_values, name)) continue;
        calib_tensor *c = &ct[n_cal++];
        snprintf(c->name, sizeof c->name, "%s%s", FN_CALIB_PREFIX, name);
        /* A value that was 0 on every chip still needs a positive range. */
        double r = range_of(q->h[v], q->p.percentile);
        c->value = (float)(r > 1e-6 ? (r < FN_CALIB_MAX ? r : FN_CALIB_MAX) : 1e-6);
        entries[n++] = (fn_st_entry){c->name, FN_DTYPE_F32, 1, one, &c->value};
        const hist *h = q->h[v];
        if (h->sum && h->pixels > 0) {
            if (!(c->mean = malloc(sizeof(float) * (size_t)h->channels))) {
                fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory writing %s", out_path);
                goto done;
            }
            for (int k = 0; k < h->channels; k++) {
                const double m = h->sum[k] / h->pixels;
                c->mean[k] = (float)(m > FN_CALIB_MAX ? FN_CALIB_MAX : m < -FN_CALIB_MAX ? -FN_CALIB_MAX : m);
            }
            c->channels = h->channels;
            snprintf(c->mean_name, sizeof c->mean_name, "%s%s", c->name, FN_CALIB_MEAN_SUFFIX);
            entries[n++] = (fn_st_entry){c->mean_name, FN_DTYPE_F32, 1, &c->channels, c->mean};
        }
    }
    snprintf(desc, sizeof desc, "ranges: percentile %g of |x| over %d %s, with channel means; %zu values int8%s%s",
             q->p.percentile, q->images, q->model->arch->kind == FN_ARCH_DETECTOR ? "photos" : "chips", n_cal,
             q->float32_values[0] ? "; float32: " : "", q->float32_values);
    fn_st_write(out_path, entries, n, meta, fn_meta_with(f, FN_META_INT8, desc, meta), &e);
done:
    for (size_t i = 0; ct && i < (size_t)q->n_values; i++) free(ct[i].mean);
    free(entries);
    free(ct);
    free(meta);
    return fn_ctx_report(q->ctx, &e);
}
