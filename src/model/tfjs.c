/*
 * tfjs.c - decoding TF.js weights manifests and their shards (see tfjs.h;
 * the byte layout is in docs/model-format.md).
 *
 * Three steps, so hostile input costs little before it is checked: every spec
 * of every group is validated first (paths, names, dtypes, shapes,
 * quantization) and its stored size computed; then, group by group, the
 * shards are loaded and their total length compared with the exact byte
 * total of the group's specs; only then is memory for decoded values
 * allocated. Dequantization follows TF.js exactly (see dequant()).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/tfjs.h"
#include "util/bytes.h"
#include "util/json.h"

/* Elements per tensor: 1 GiB of float32, far above any face model. */
#define TFJS_MAX_ELEMS ((size_t)1 << 28)

typedef enum qtype { Q_NONE, Q_U8, Q_U16, Q_F16 } qtype;

typedef struct spec {
    const char *name; /* in the JSON tree */
    size_t group, index;
    fn_dtype dtype; /* FN_DTYPE_F32 or FN_DTYPE_I32 */
    qtype q;
    double scale, min;
    int ndim;
    int64_t shape[FN_ST_MAX_DIMS];
    size_t nelem;
    size_t nbytes; /* as stored in the shard */
} spec;

static const char *const QNAMES[] = {"", "uint8", "uint16", "float16"};

static const char *stored_name(const spec *s) {
    return s->q != Q_NONE ? QNAMES[s->q] : s->dtype == FN_DTYPE_I32 ? "int32" : "float32";
}

static const char *shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

/* ------------------------------------------------------------ validation */

/* Shard paths stay inside the manifest's folder: relative, no "..", no
 * backslashes (a separator on Windows), no NUL. */
static int path_ok(const fn_json *p) {
    if (p->type != FN_JSON_STRING || p->str_len == 0 || strlen(p->str) != p->str_len) return 0;
    if (p->str[0] == '/' || strchr(p->str, '\\')) return 0;
    for (const char *s = p->str; *s;) {
        const char *slash = strchr(s, '/');
        size_t n = slash ? (size_t)(slash - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return 0;
        s += n;
        if (*s) s++;
    }
    return 1;
}

static facenet_status spec_fail(const spec *s, fn_error *e, facenet_status st, const char *what) {
    if (s->name)
        return fn_fail(e, st, "group %zu, weight %zu ('%.200s'): %s", s->group, s->index, s->name, what);
    return fn_fail(e, st, "group %zu, weight %zu: %s", s->group, s->index, what);
}

static facenet_status parse_quant(spec *s, const fn_json *q, fn_error *e) {
    if (q->type != FN_JSON_OBJECT)
        return spec_fail(s, e, FACENET_ERR_FORMAT, "quantization must be an object");
    const fn_json *qd = fn_json_get(q, "dtype");
    if (!qd || qd->type != FN_JSON_STRING)
        return spec_fail(s, e, FACENET_ERR_FORMAT, "quantization needs a \"dtype\" string");
    if (strcmp(qd->str, "uint8") == 0)
        s->q = Q_U8;
    else if (strcmp(qd->str, "uint16") == 0)
        s->q = Q_U16;
    else if (strcmp(qd->str, "float16") == 0)
        s->q = Q_F16;
    else
        return spec_fail(s, e, FACENET_ERR_FORMAT, "quantization dtype must be uint8, uint16 or float16");
    if (s->q == Q_F16) {
        if (s->dtype != FN_DTYPE_F32)
            return spec_fail(s, e, FACENET_ERR_FORMAT, "float16 quantization needs dtype float32");
        return FACENET_OK;
    }
    const fn_json *sc = fn_json_get(q, "scale"), *mn = fn_json_get(q, "min");
    if (!sc || sc->type != FN_JSON_NUMBER || !mn || mn->type != FN_JSON_NUMBER || !isfinite(sc->number) ||
        !isfinite(mn->number))
        return spec_fail(s, e, FACENET_ERR_FORMAT, "quantization needs finite numbers \"scale\" and \"min\"");
    s->scale = sc->number;
    s->min = mn->number;
    return FACENET_OK;
}

static facenet_status parse_spec(spec *s, const fn_json *w, fn_error *e) {
    if (w->type != FN_JSON_OBJECT) return spec_fail(s, e, FACENET_ERR_FORMAT, "a weight must be an object");
    const fn_json *name = fn_json_get(w, "name");
    if (!name || name->type != FN_JSON_STRING || name->str_len == 0 || strlen(name->str) != name->str_len)
        return spec_fail(s, e, FACENET_ERR_FORMAT, "needs a non-empty \"name\" string without \\u0000");
    s->name = name->str;

    const fn_json *dt = fn_json_get(w, "dtype");
    if (!dt || dt->type != FN_JSON_STRING)
        return spec_fail(s, e, FACENET_ERR_FORMAT, "needs a \"dtype\" string");
    if (strcmp(dt->str, "float32") == 0)
        s->dtype = FN_DTYPE_F32;
    else if (strcmp(dt->str, "int32") == 0)
        s->dtype = FN_DTYPE_I32;
    else if (!strcmp(dt->str, "bool") || !strcmp(dt->str, "string") || !strcmp(dt->str, "complex64"))
        return spec_fail(s, e, FACENET_ERR_UNSUPPORTED, "only float32 and int32 weights are supported");
    else
        return spec_fail(s, e, FACENET_ERR_FORMAT, "unknown dtype (expected float32 or int32)");

    const fn_json *shape = fn_json_get(w, "shape");
    if (!shape || shape->type != FN_JSON_ARRAY)
        return spec_fail(s, e, FACENET_ERR_FORMAT, "needs a \"shape\" array");
    if (shape->count > FN_ST_MAX_DIMS)
        return spec_fail(s, e, FACENET_ERR_UNSUPPORTED, "more than 8 dimensions");
    s->ndim = (int)shape->count;
    size_t nelem = 1;
    for (int i = 0; i < s->ndim; i++) {
        int64_t d;
        if (!fn_json_int64(&shape->items[i], &d) || d < 0)
            return spec_fail(s, e, FACENET_ERR_FORMAT, "shape must hold non-negative integers");
        s->shape[i] = d;
        /* Checked per step, so the product can never overflow. */
        if ((uint64_t)d > TFJS_MAX_ELEMS || (nelem && (size_t)d > TFJS_MAX_ELEMS / nelem))
            return spec_fail(s, e, FACENET_ERR_TOO_LARGE, "more than 2^28 elements");
        nelem *= (size_t)d;
    }
    s->nelem = nelem;

    const fn_json *q = fn_json_get(w, "quantization");
    if (q && q->type != FN_JSON_NULL) {
        facenet_status st = parse_quant(s, q, e);
        if (st != FACENET_OK) return st;
    }
    s->nbytes = nelem * (s->q == Q_U8 ? 1 : s->q == Q_NONE ? 4 : 2); /* <= 2^30 */
    return FACENET_OK;
}

static int cmp_spec_name(const void *a, const void *b) {
    return strcmp((*(const spec *const *)a)->name, (*(const spec *const *)b)->name);
}

static facenet_status check_unique(spec *specs, size_t n, fn_error *e) {
    if (n < 2) return FACENET_OK;
    spec **s = malloc(n * sizeof *s); /* n specs exist already: no overflow */
    if (!s) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) s[i] = &specs[i];
    qsort(s, n, sizeof *s, cmp_spec_name);
    facenet_status st = FACENET_OK;
    for (size_t i = 1; i < n && st == FACENET_OK; i++)
        if (strcmp(s[i - 1]->name, s[i]->name) == 0)
            st = fn_fail(e, FACENET_ERR_FORMAT, "two weights are named '%.200s'", s[i]->name);
    free(s);
    return st;
}

/* Checks the manifest's shape and fills specs (NULL: just count them). */
static facenet_status walk_manifest(const fn_json *root, spec *specs, size_t *count, fn_error *e) {
    if (root->type != FN_JSON_ARRAY)
        return fn_fail(e, FACENET_ERR_FORMAT, "a weights manifest must be a JSON array of groups");
    size_t k = 0;
    for (size_t g = 0; g < root->count; g++) {
        const fn_json *grp = &root->items[g];
        if (grp->type != FN_JSON_OBJECT)
            return fn_fail(e, FACENET_ERR_FORMAT, "group %zu is not an object", g);
        const fn_json *paths = fn_json_get(grp, "paths"), *weights = fn_json_get(grp, "weights");
        if (!paths || paths->type != FN_JSON_ARRAY)
            return fn_fail(e, FACENET_ERR_FORMAT, "group %zu needs a \"paths\" array", g);
        if (!weights || weights->type != FN_JSON_ARRAY)
            return fn_fail(e, FACENET_ERR_FORMAT, "group %zu needs a \"weights\" array", g);
        for (size_t i = 0; i < paths->count; i++)
            if (!path_ok(&paths->items[i]))
                return fn_fail(e, FACENET_ERR_FORMAT,
                               "group %zu, path %zu: shard paths must be non-empty "
                               "relative paths inside the manifest's folder (no \"..\", no leading '/')",
                               g, i);
        if (specs) {
            for (size_t i = 0; i < weights->count; i++) {
                spec *s = &specs[k + i];
                s->group = g;
                s->index = i;
                facenet_status st = parse_spec(s, &weights->items[i], e);
                if (st != FACENET_OK) return st;
            }
        }
        k += weights->count;
    }
    *count = k;
    return FACENET_OK;
}

/* ------------------------------------------------------------ decoding */



/* q*scale+min in double, as JavaScript computes it. The product goes through
 * a volatile so no compiler fuses it with the addition into an FMA, whose
 * single rounding would differ from JavaScript's two in the last bit. */
static double dequant(unsigned q, double scale, double min) {
    volatile double prod = (double)q * scale;
    return prod + min;
}

/* Math.round (halves toward +infinity) into int32; 0 if out of range. */
static int js_round_i32(double x, int32_t *out) {
    if (!(x >= -2147483648.5 && x < 2147483647.5)) return 0; /* NaN fails too */
    double r = floor(x);
    if (x - r >= 0.5) r += 1.0; /* x - floor(x) is exact */
    *out = (int32_t)r;
    return 1;
}

static facenet_status decode_one(const spec *s, const uint8_t *p, fn_tfjs_weight *w, fn_error *e) {
    size_t n = s->nelem;
    w->data = n ? malloc(n * 4) : NULL; /* n <= 2^28 */
    if (n && !w->data) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory decoding '%.200s'", s->name);
    if (s->dtype == FN_DTYPE_F32) {
        float *o = w->data;
        switch (s->q) {
        case Q_NONE:
            for (size_t i = 0; i < n; i++) o[i] = fn_f32_bits(fn_le32(p + 4 * i));
            break;
        case Q_F16:
            for (size_t i = 0; i < n; i++) o[i] = fn_half_to_f32(fn_le16(p + 2 * i));
            break;
        case Q_U8: {
            float lut[256];
            for (unsigned q = 0; q < 256; q++) lut[q] = (float)dequant(q, s->scale, s->min);
            for (size_t i = 0; i < n; i++) o[i] = lut[p[i]];
            break;
        }
        case Q_U16:
            for (size_t i = 0; i < n; i++) o[i] = (float)dequant(fn_le16(p + 2 * i), s->scale, s->min);
            break;
        }
        return FACENET_OK;
    }
    int32_t *o = w->data;
    for (size_t i = 0; i < n; i++) {
        if (s->q == Q_NONE) {
            o[i] = (int32_t)fn_le32(p + 4 * i);
            continue;
        }
        unsigned q = s->q == Q_U8 ? p[i] : fn_le16(p + 2 * i);
        double x = dequant(q, s->scale, s->min);
        if (!js_round_i32(x, &o[i]))
            return fn_fail(e, FACENET_ERR_FORMAT,
                           "weight '%.200s': element %zu dequantizes to %g, outside int32", s->name, i, x);
    }
    return FACENET_OK;
}

/* Load and concatenate the shards of one group. */
static facenet_status load_group(const fn_json *paths, fn_tfjs_load_fn load, void *user, uint8_t **out,
                                 size_t *out_len, fn_error *e) {
    *out = NULL;
    *out_len = 0;
    size_t n = paths->count;
    if (n == 0) return FACENET_OK;
    uint8_t **bufs = calloc(n, sizeof *bufs);
    size_t *lens = calloc(n, sizeof *lens);
    facenet_status st = FACENET_OK;
    if (!bufs || !lens) st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    size_t total = 0;
    for (size_t i = 0; i < n && st == FACENET_OK; i++) {
        st = load(user, paths->items[i].str, &bufs[i], &lens[i], e);
        if (st == FACENET_OK && lens[i] && !bufs[i])
            st = fn_fail(e, FACENET_ERR_INTERNAL, "shard loader returned no data for '%s'",
                         paths->items[i].str);
        if (st == FACENET_OK && !fn_add_size(total, lens[i], &total))
            st = fn_fail(e, FACENET_ERR_TOO_LARGE, "the shards add up to more than SIZE_MAX bytes");
    }
    if (st == FACENET_OK && n == 1) {
        *out = bufs[0];
        *out_len = lens[0];
        bufs[0] = NULL;
    } else if (st == FACENET_OK) {
        uint8_t *cat = malloc(total ? total : 1);
        if (!cat) {
            st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory joining %zu shards", n);
        } else {
            size_t off = 0;
            for (size_t i = 0; i < n; i++) {
                if (lens[i]) memcpy(cat + off, bufs[i], lens[i]);
                off += lens[i];
            }
            *out = cat;
            *out_len = total;
        }
    }
    for (size_t i = 0; bufs && i < n; i++) free(bufs[i]);
    free(bufs);
    free(lens);
    return st;
}

static facenet_status decode_group(const spec *specs, size_t n, size_t g, const uint8_t *buf, size_t len,
                                   fn_tfjs_weights *out, fn_error *e) {
    size_t off = 0;
    char sh[160];
    for (size_t i = 0; i < n; i++) {
        if (specs[i].nbytes > len - off)
            return fn_fail(e, FACENET_ERR_FORMAT,
                           "weight '%.200s' (%s %s, %zu bytes at offset %zu) runs past the "
                           "end of the %zu bytes of shard data of group %zu",
                           specs[i].name, stored_name(&specs[i]),
                           shape_str(sh, sizeof sh, specs[i].shape, specs[i].ndim), specs[i].nbytes, off, len,
                           g);
        off += specs[i].nbytes;
    }
    if (off != len)
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "group %zu: the shards hold %zu bytes but the weights use only %zu "
                       "(%zu bytes left over)",
                       g, len, off, len - off);
    off = 0;
    for (size_t i = 0; i < n; i++) {
        const spec *s = &specs[i];
        fn_tfjs_weight *w = &out->w[out->count];
        memset(w, 0, sizeof *w);
        w->name = strdup(s->name);
        if (!w->name) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        out->count++; /* from here on fn_tfjs_weights_free() owns it */
        w->dtype = s->dtype;
        w->ndim = s->ndim;
        memcpy(w->shape, s->shape, sizeof w->shape);
        w->nelem = s->nelem;
        facenet_status st = decode_one(s, buf ? buf + off : buf, w, e); /* no NULL + 0: UB */
        if (st != FACENET_OK) return st;
        off += s->nbytes;
    }
    return FACENET_OK;
}

facenet_status fn_tfjs_decode(const char *manifest_json, size_t len, fn_tfjs_load_fn load, void *user,
                              fn_tfjs_weights *out, fn_error *e) {
    if (!out) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_tfjs_decode: NULL argument");
    out->count = 0;
    out->w = NULL;
    if (!load || (!manifest_json && len))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_tfjs_decode: NULL argument");
    fn_error le; /* local, so the status is known even when e is NULL */
    fn_error_clear(&le);
    spec *specs = NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    facenet_status st;
    fn_json *root = fn_json_parse(manifest_json, len, &le);
    if (!root) {
        fn_error_prefix(&le, "manifest JSON");
        st = le.status;
        goto done;
    }
    st = walk_manifest(root, NULL, &n, &le);
    if (st != FACENET_OK) goto done;
    if (n) {
        /* Each spec came from a JSON value of at least two bytes, so n is
         * small enough for these products. */
        specs = calloc(n, sizeof *specs);
        out->w = calloc(n, sizeof *out->w);
        if (!specs || !out->w) {
            st = fn_fail(&le, FACENET_ERR_NO_MEMORY, "out of memory");
            goto done;
        }
    }
    st = walk_manifest(root, specs, &n, &le);
    if (st == FACENET_OK) st = check_unique(specs, n, &le);
    for (size_t g = 0, k = 0; st == FACENET_OK && g < root->count; g++) {
        const fn_json *grp = &root->items[g];
        size_t nw = fn_json_get(grp, "weights")->count, blen;
        st = load_group(fn_json_get(grp, "paths"), load, user, &buf, &blen, &le);
        if (st == FACENET_OK) st = decode_group(specs ? specs + k : NULL, nw, g, buf, blen, out, &le);
        free(buf);
        buf = NULL;
        k += nw;
    }
done:
    free(specs);
    fn_json_free(root);
    if (st != FACENET_OK) {
        fn_tfjs_weights_free(out);
        if (e) *e = le;
    }
    return st;
}

void fn_tfjs_weights_free(fn_tfjs_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->count; i++) {
        free(w->w[i].name);
        free(w->w[i].data);
    }
    free(w->w);
    w->w = NULL;
    w->count = 0;
}
