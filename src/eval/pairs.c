/*
 * pairs.c - the strict reader of LFW pairs files (pairs.h).
 *
 * The file is read line by line against what the header promises: folds
 * of N matched then N mismatched lines, nothing more, nothing less. Every
 * check fails with "FILE line L: what was expected, what was found", since
 * the person who meets the message has the file open in an editor.
 *
 * Images are numbered in order of first use and listed once, so that an
 * evaluator embeds each image once however many pairs it appears in; a
 * small open-addressing hash table on the relative path finds repeats.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pairs.h"
#include "util/fields.h"
#include "util/file.h"

#define MAX_FIELDS 4 /* fields stored; more are only counted */

typedef struct builder {
    const char *source;
    const char *dir;
    size_t dir_len;
    facenet_eval_pairs *p;
    int pair_cap, image_cap;
    int *table; /* image index + 1, 0 = empty; size table_cap, a power of two */
    size_t table_cap;
} builder;

static uint64_t hash_str(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int name_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '\'' || c == '-';
}

static facenet_status check_name(const builder *b, int line, const fn_field *f, fn_error *e) {
    if (f->len > FN_PAIRS_MAX_NAME)
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: a name longer than %d bytes", b->source, line,
                       FN_PAIRS_MAX_NAME);
    int dots = 1;
    for (size_t i = 0; i < f->len; i++) {
        if (!name_char(f->s[i]))
            return fn_fail(e, FACENET_ERR_FORMAT,
                           "%s line %d: '%.*s' is not a name (letters, digits and _ . ' - only)", b->source,
                           line, (int)f->len, f->s);
        if (f->s[i] != '.') dots = 0;
    }
    /* "." and ".." would step out of the person's folder. */
    if (dots)
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: '%.*s' is not a name", b->source, line,
                       (int)f->len, f->s);
    return FACENET_OK;
}

static facenet_status image_number(const builder *b, int line, const fn_field *f, long *out, fn_error *e) {
    if (!fn_parse_count(f, 1, FN_PAIRS_MAX_IMAGE_NO, out))
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: '%.*s' is not an image number (1 to %d)",
                       b->source, line, (int)(f->len > 40 ? 40 : f->len), f->s, FN_PAIRS_MAX_IMAGE_NO);
    return FACENET_OK;
}

static facenet_status grow_table(builder *b, fn_error *e) {
    size_t cap = b->table_cap ? b->table_cap * 2 : 1024;
    int *t = calloc(cap, sizeof *t);
    if (!t) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", b->source);
    for (int i = 0; i < b->p->n_images; i++) {
        const char *s = b->p->names[i];
        size_t h = (size_t)hash_str(s, strlen(s)) & (cap - 1);
        while (t[h]) h = (h + 1) & (cap - 1);
        t[h] = i + 1;
    }
    free(b->table);
    b->table = t;
    b->table_cap = cap;
    return FACENET_OK;
}

/* The index of image NAME/NAME_%04d.jpg, added if new. */
static facenet_status image_index(builder *b, const fn_field *name, long number, int *out, fn_error *e) {
    facenet_eval_pairs *p = b->p;
    char rel[2 * FN_PAIRS_MAX_NAME + 16];
    int rl = snprintf(rel, sizeof rel, "%.*s/%.*s_%04ld.jpg", (int)name->len, name->s, (int)name->len,
                      name->s, number);
    if (rl < 0 || (size_t)rl >= sizeof rel) return fn_fail(e, FACENET_ERR_INTERNAL, "image name too long");
    /* Keep the table at most half full. */
    if ((size_t)(p->n_images + 1) * 2 > b->table_cap && grow_table(b, e) != FACENET_OK) return e->status;
    size_t h = (size_t)hash_str(rel, (size_t)rl) & (b->table_cap - 1);
    while (b->table[h]) {
        int i = b->table[h] - 1;
        if (strcmp(p->names[i], rel) == 0) {
            *out = i;
            return FACENET_OK;
        }
        h = (h + 1) & (b->table_cap - 1);
    }
    if (p->n_images == b->image_cap) {
        int cap = b->image_cap ? b->image_cap * 2 : 256;
        char **ni = realloc(p->images, sizeof *ni * (size_t)cap);
        if (ni) p->images = ni;
        const char **nn = ni ? realloc(p->names, sizeof *nn * (size_t)cap) : NULL;
        if (nn) p->names = nn;
        if (!ni || !nn) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", b->source);
        b->image_cap = cap;
    }
    size_t full_len = b->dir_len + (b->dir_len ? 1 : 0) + (size_t)rl;
    char *full = malloc(full_len + 1);
    if (!full) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", b->source);
    if (b->dir_len) {
        memcpy(full, b->dir, b->dir_len);
        full[b->dir_len] = '/';
    }
    memcpy(full + full_len - (size_t)rl, rel, (size_t)rl + 1);
    p->images[p->n_images] = full;
    p->names[p->n_images] = full + full_len - (size_t)rl;
    b->table[h] = p->n_images + 1;
    *out = p->n_images++;
    return FACENET_OK;
}

/* One pair line. keep: store it (within the limit) or only check it. */
static facenet_status pair_line(builder *b, int line, const fn_field *f, int nf, int want_same, int fold,
                                int keep, fn_error *e) {
    if (nf != 3 && nf != 4)
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: expected 3 or 4 fields, found %d", b->source, line,
                       nf);
    if ((nf == 3) != want_same) {
        char where[32] = "";
        if (b->p->view == 2) snprintf(where, sizeof where, " in fold %d", fold + 1);
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: expected a %s pair (%s)%s, found %d fields",
                       b->source, line, want_same ? "matched" : "mismatched",
                       want_same ? "NAME N1 N2" : "NAME1 N1 NAME2 N2", where, nf);
    }
    long n1 = 0, n2 = 0;
    const fn_field *name2 = nf == 3 ? &f[0] : &f[2];
    if (check_name(b, line, &f[0], e) || image_number(b, line, &f[1], &n1, e) ||
        check_name(b, line, name2, e) || image_number(b, line, &f[nf - 1], &n2, e))
        return e->status;
    if (nf == 3 && n1 == n2)
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: a matched pair of image %ld with itself",
                       b->source, line, n1);
    if (nf == 4 && f[0].len == f[2].len && memcmp(f[0].s, f[2].s, f[0].len) == 0)
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: a mismatched pair names the same person twice",
                       b->source, line);
    if (!keep) return FACENET_OK;
    facenet_eval_pairs *p = b->p;
    if (p->n_pairs == b->pair_cap) {
        int cap = b->pair_cap ? b->pair_cap * 2 : 1024;
        facenet_eval_pair *np = realloc(p->pairs, sizeof *np * (size_t)cap);
        if (!np) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", b->source);
        p->pairs = np;
        b->pair_cap = cap;
    }
    facenet_eval_pair *pr = &p->pairs[p->n_pairs];
    pr->fold = fold;
    pr->same = want_same;
    pr->line = line;
    if (image_index(b, &f[0], n1, &pr->image[0], e) || image_index(b, name2, n2, &pr->image[1], e))
        return e->status;
    p->n_pairs++;
    return FACENET_OK;
}

static facenet_status header_line(builder *b, const fn_field *f, int nf, fn_error *e) {
    facenet_eval_pairs *p = b->p;
    long a = 0, c = 0;
    if (nf == 2) {
        if (!fn_parse_count(&f[0], 1, FACENET_EVAL_MAX_FOLDS, &a))
            return fn_fail(e, FACENET_ERR_FORMAT, "%s line 1: the number of folds must be 1 to %d", b->source,
                           FACENET_EVAL_MAX_FOLDS);
        if (!fn_parse_count(&f[1], 1, FN_PAIRS_MAX_PER_FOLD, &c))
            return fn_fail(e, FACENET_ERR_FORMAT, "%s line 1: the pairs per fold must be 1 to %d", b->source,
                           FN_PAIRS_MAX_PER_FOLD);
        p->view = 2;
    } else if (nf == 1) {
        if (!fn_parse_count(&f[0], 1, FN_PAIRS_MAX_PER_FOLD, &c))
            return fn_fail(e, FACENET_ERR_FORMAT, "%s line 1: the number of pairs must be 1 to %d", b->source,
                           FN_PAIRS_MAX_PER_FOLD);
        a = 1;
        p->view = 1;
    } else {
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "%s line 1: expected the header \"FOLDS PAIRS\" (View 2) or \"PAIRS\" (View 1), "
                       "found %d fields",
                       b->source, nf);
    }
    if (a * 2 * c > FN_PAIRS_MAX_TOTAL)
        return fn_fail(e, FACENET_ERR_TOO_LARGE,
                       "%s line 1: %ld folds of 2 x %ld pairs is over the limit of %d", b->source, a, c,
                       FN_PAIRS_MAX_TOTAL);
    p->n_folds = (int)a;
    p->per_fold = (int)c;
    return FACENET_OK;
}

facenet_status fn_pairs_parse(const char *source, const char *text, size_t len, const char *image_dir,
                              int limit, facenet_eval_pairs **out, fn_error *e) {
    fn_error_clear(e);
    if (!out || (!text && len))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_pairs_parse: bad arguments");
    *out = NULL;
    if (!source) source = "pairs";
    if (limit < 0) limit = 0;
    builder b;
    memset(&b, 0, sizeof b);
    b.source = source;
    b.dir = image_dir ? image_dir : "";
    b.dir_len = strlen(b.dir);
    /* A trailing slash on the folder would double up in the paths. */
    while (b.dir_len > 1 && b.dir[b.dir_len - 1] == '/') b.dir_len--;
    b.p = calloc(1, sizeof *b.p);
    if (!b.p) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", source);
    if (len > FN_PAIRS_MAX_FILE) {
        fn_fail(e, FACENET_ERR_TOO_LARGE, "%s: %zu bytes is too large for a pairs file", source, len);
        goto fail;
    }
    if (len == 0) {
        fn_fail(e, FACENET_ERR_FORMAT, "%s: the file is empty", source);
        goto fail;
    }

    long expected = -1; /* pair lines the header promises */
    long seen = 0;
    int line = 0;
    size_t pos = 0;
    while (pos < len) {
        line++;
        const char *s = text + pos;
        const char *nl = memchr(s, '\n', len - pos);
        size_t ll = nl ? (size_t)(nl - s) : len - pos;
        pos += ll + (nl ? 1 : 0);
        if (ll && s[ll - 1] == '\r') ll--; /* CRLF files */
        if (ll > FN_PAIRS_MAX_LINE) {
            fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: longer than %d bytes", source, line,
                    FN_PAIRS_MAX_LINE);
            goto fail;
        }
        if (memchr(s, '\0', ll)) {
            fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: a NUL byte; this is not a text file", source, line);
            goto fail;
        }
        fn_field f[MAX_FIELDS];
        int nf = fn_split_fields(s, ll, f, MAX_FIELDS);
        if (line == 1) {
            if (header_line(&b, f, nf, e) != FACENET_OK) goto fail;
            expected = (long)b.p->n_folds * 2 * b.p->per_fold;
            b.p->kept_per_fold = limit && limit < b.p->per_fold ? limit : b.p->per_fold;
            continue;
        }
        if (nf == 0) {
            fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: an empty line%s", source, line,
                    seen == expected ? " after the last pair" : "");
            goto fail;
        }
        if (seen == expected) {
            fn_fail(e, FACENET_ERR_FORMAT,
                    "%s line %d: more lines than the header's %d fold%s of %d matched + %d "
                    "mismatched pairs",
                    source, line, b.p->n_folds, b.p->n_folds == 1 ? "" : "s", b.p->per_fold, b.p->per_fold);
            goto fail;
        }
        const int fold = (int)(seen / (2 * b.p->per_fold));
        const int k = (int)(seen % (2 * b.p->per_fold)); /* position in the fold */
        const int same = k < b.p->per_fold;
        const int keep = (same ? k : k - b.p->per_fold) < b.p->kept_per_fold;
        if (pair_line(&b, line, f, nf, same, fold, keep, e) != FACENET_OK) goto fail;
        seen++;
    }
    if (seen != expected) {
        fn_fail(e, FACENET_ERR_FORMAT,
                "%s line %d: the file ends after %ld pairs; the header promises %ld (%d fold%s "
                "of %d matched + %d mismatched)",
                source, line + 1, seen, expected, b.p->n_folds, b.p->n_folds == 1 ? "" : "s", b.p->per_fold,
                b.p->per_fold);
        goto fail;
    }
    free(b.table);
    *out = b.p;
    return FACENET_OK;
fail:
    free(b.table);
    fn_pairs_free(b.p);
    return e->status;
}

facenet_status fn_pairs_load(const char *path, const char *image_dir, int limit, facenet_eval_pairs **out,
                             fn_error *e) {
    fn_error_clear(e);
    if (!path || !out) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_pairs_load: bad arguments");
    *out = NULL;
    uint8_t *buf = NULL;
    size_t n = 0;
    facenet_status st = fn_read_file(path, FN_PAIRS_MAX_FILE, &buf, &n, e);
    if (st != FACENET_OK) {
        fn_error_prefix(e, "%s", path);
        return st;
    }
    st = fn_pairs_parse(path, (const char *)buf, n, image_dir, limit, out, e);
    free(buf);
    return st;
}

void fn_pairs_free(facenet_eval_pairs *p) {
    if (!p) return;
    for (int i = 0; i < p->n_images; i++) free(p->images[i]);
    free(p->images);
    free(p->names);
    free(p->pairs);
    free(p);
}

/* ---- the public face */

facenet_status facenet_eval_pairs_load(facenet_ctx *ctx, const char *path, const char *image_dir, int limit,
                                       facenet_eval_pairs **out) {
    fn_error e;
    fn_pairs_load(path, image_dir, limit, out, &e);
    return fn_ctx_report(ctx, &e);
}

void facenet_eval_pairs_free(facenet_eval_pairs *pairs) { fn_pairs_free(pairs); }
int facenet_eval_pairs_view(const facenet_eval_pairs *p) { return p ? p->view : 0; }
int facenet_eval_pairs_folds(const facenet_eval_pairs *p) { return p ? p->n_folds : 0; }
int facenet_eval_pairs_count(const facenet_eval_pairs *p) { return p ? p->n_pairs : 0; }
int facenet_eval_pairs_image_count(const facenet_eval_pairs *p) { return p ? p->n_images : 0; }

const facenet_eval_pair *facenet_eval_pairs_get(const facenet_eval_pairs *p, int i) {
    return p && i >= 0 && i < p->n_pairs ? &p->pairs[i] : NULL;
}

const char *facenet_eval_pairs_image(const facenet_eval_pairs *p, int i) {
    return p && i >= 0 && i < p->n_images ? p->images[i] : NULL;
}

const char *facenet_eval_pairs_image_name(const facenet_eval_pairs *p, int i) {
    return p && i >= 0 && i < p->n_images ? p->names[i] : NULL;
}
