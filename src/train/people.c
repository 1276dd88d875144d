/*
 * people.c - LFW-style people lists, read strictly, and the name patterns
 * that choose identities by folder name (dataset.h).
 *
 * A people list is checked against what its header promises, line by line,
 * and every failure names the file and line: a list misread in silence
 * would train on other people than the ones the user named.
 */
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"
#include "util/fields.h"
#include "util/file.h"

int fn_identity_name_ok(const char *name, size_t len) {
    if (len == 0 || len > FN_PEOPLE_MAX_NAME) return 0;
    int dots = 1;
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)name[i];
        if (c <= ' ' || c >= 0x7f || c == '/' || c == '\\') return 0;
        if (c != '.') dots = 0;
    }
    return !dots; /* "." and ".." step out of the dataset */
}

typedef struct reader {
    const char *source, *text;
    size_t len, pos;
    int line;
} reader;

/* The next line without its newline (and a CR before it); 0 at the end. */
static int next_line(reader *r, const char **s, size_t *n, fn_error *e, facenet_status *st) {
    *st = FACENET_OK;
    if (r->pos >= r->len) return 0;
    const char *start = r->text + r->pos;
    const char *nl = memchr(start, '\n', r->len - r->pos);
    size_t l = nl ? (size_t)(nl - start) : r->len - r->pos;
    r->pos += l + (nl ? 1 : 0);
    r->line++;
    if (l && start[l - 1] == '\r') l--;
    if (l > FN_PEOPLE_MAX_LINE) {
        *st = fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: longer than %d bytes", r->source, r->line,
                      FN_PEOPLE_MAX_LINE);
        return 0;
    }
    if (memchr(start, '\0', l)) {
        *st = fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: a NUL byte", r->source, r->line);
        return 0;
    }
    *s = start;
    *n = l;
    return 1;
}

/* Read one line that must be a lone count in [lo, hi]. */
static facenet_status count_line(reader *r, const char *what, long lo, long hi, long *out, fn_error *e) {
    const char *s;
    size_t n;
    facenet_status st;
    if (!next_line(r, &s, &n, e, &st))
        return st ? st : fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: ends before %s", r->source, r->line + 1, what);
    fn_field f[3];
    const int nf = fn_split_fields(s, n, f, 3);
    if (nf != 1 || !fn_parse_count(&f[0], lo, hi, out))
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: expected %s (a number from %ld to %ld), found '%.*s'",
                       r->source, r->line, what, lo, hi, (int)(n > 60 ? 60 : n), s);
    return FACENET_OK;
}

static facenet_status entry_line(reader *r, fn_people *p, int *cap, fn_error *e) {
    const char *s;
    size_t n;
    facenet_status st;
    if (!next_line(r, &s, &n, e, &st))
        return st ? st
                  : fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: ends after %d of the people its header promised",
                            r->source, r->line + 1, p->n);
    fn_field f[3];
    const int nf = fn_split_fields(s, n, f, 3);
    long count = 0;
    if (nf != 2)
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: expected NAME COUNT, found %d fields", r->source,
                       r->line, nf);
    if (!fn_identity_name_ok(f[0].s, f[0].len))
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "%s line %d: '%.*s' is not a folder name (printable, no '/', at most %d bytes)", r->source,
                       r->line, (int)(f[0].len > 60 ? 60 : f[0].len), f[0].s, FN_PEOPLE_MAX_NAME);
    if (!fn_parse_count(&f[1], 1, FN_PEOPLE_MAX_COUNT, &count))
        return fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: '%.*s' is not an image count (1 to %d)", r->source,
                       r->line, (int)(f[1].len > 20 ? 20 : f[1].len), f[1].s, FN_PEOPLE_MAX_COUNT);
    if (p->n == *cap) {
        int nc = *cap ? *cap * 2 : 256;
        fn_people_entry *ne = realloc(p->entries, sizeof *ne * (size_t)nc);
        if (!ne) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", r->source);
        p->entries = ne;
        *cap = nc;
    }
    char *name = malloc(f[0].len + 1);
    if (!name) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", r->source);
    memcpy(name, f[0].s, f[0].len);
    name[f[0].len] = '\0';
    p->entries[p->n++] = (fn_people_entry){name, (int)count, r->line};
    return FACENET_OK;
}

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const fn_people_entry *)a)->name, ((const fn_people_entry *)b)->name);
}

facenet_status fn_people_parse(const char *source, const char *text, size_t len, fn_people **out, fn_error *e) {
    *out = NULL;
    if (len > FN_PEOPLE_MAX_FILE)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%s: over %u bytes, not a people list", source,
                       FN_PEOPLE_MAX_FILE);
    fn_people *p = calloc(1, sizeof *p);
    if (!p) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", source);
    reader r = {source, text, len, 0, 0};
    int cap = 0;
    long first = 0;
    facenet_status st = count_line(&r, "the number of people", 1, FN_PEOPLE_MAX_COUNT, &first, e);
    /* people.txt has sets: its second line is a lone count too. */
    int sets = 0;
    if (st == FACENET_OK) {
        const char *s;
        size_t n;
        reader peek = r;
        fn_field f[3];
        facenet_status pst;
        if (next_line(&peek, &s, &n, e, &pst) && fn_split_fields(s, n, f, 3) == 1) sets = 1;
    }
    if (st == FACENET_OK && sets) {
        if (first > 100) {
            st = fn_fail(e, FACENET_ERR_FORMAT, "%s line 1: %ld sets of people; at most 100", source, first);
        }
        p->n_sets = (int)first;
        for (long k = 0; k < first && st == FACENET_OK; k++) {
            long m = 0;
            st = count_line(&r, "the number of people in the set", 1, FN_PEOPLE_MAX_COUNT, &m, e);
            for (long i = 0; i < m && st == FACENET_OK; i++) {
                if (p->n >= FN_PEOPLE_MAX_COUNT)
                    st = fn_fail(e, FACENET_ERR_TOO_LARGE, "%s line %d: more than %d people", source, r.line + 1,
                                 FN_PEOPLE_MAX_COUNT);
                else
                    st = entry_line(&r, p, &cap, e);
            }
        }
    } else if (st == FACENET_OK) {
        p->n_sets = 1;
        for (long i = 0; i < first && st == FACENET_OK; i++) st = entry_line(&r, p, &cap, e);
    }
    if (st == FACENET_OK) {
        const char *s;
        size_t n;
        facenet_status lst;
        while (next_line(&r, &s, &n, e, &lst)) {
            fn_field f[3];
            if (fn_split_fields(s, n, f, 3) != 0) {
                st = fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: more lines than the header promised (%d people)",
                             source, r.line, p->n);
                break;
            }
        }
        if (st == FACENET_OK && lst != FACENET_OK) st = lst;
    }
    /* A name listed twice: a sorted copy, neighbours compared. */
    if (st == FACENET_OK && p->n > 1) {
        fn_people_entry *sorted = malloc(sizeof *sorted * (size_t)p->n);
        if (!sorted)
            st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", source);
        else {
            memcpy(sorted, p->entries, sizeof *sorted * (size_t)p->n);
            qsort(sorted, (size_t)p->n, sizeof *sorted, cmp_entry_name);
            for (int i = 1; i < p->n && st == FACENET_OK; i++)
                if (strcmp(sorted[i].name, sorted[i - 1].name) == 0) {
                    const int a = sorted[i].line < sorted[i - 1].line ? sorted[i].line : sorted[i - 1].line;
                    const int b = sorted[i].line < sorted[i - 1].line ? sorted[i - 1].line : sorted[i].line;
                    st = fn_fail(e, FACENET_ERR_FORMAT, "%s line %d: '%s' is listed already, on line %d", source,
                                 b, sorted[i].name, a);
                }
            free(sorted);
        }
    }
    if (st != FACENET_OK) {
        fn_people_free(p);
        return st;
    }
    *out = p;
    return FACENET_OK;
}

facenet_status fn_people_load(const char *path, fn_people **out, fn_error *e) {
    uint8_t *data = NULL;
    size_t len = 0;
    *out = NULL;
    facenet_status st = fn_read_file(path, FN_PEOPLE_MAX_FILE, &data, &len, e);
    if (st != FACENET_OK) {
        fn_error_prefix(e, "%s", path);
        return st;
    }
    st = fn_people_parse(path, (const char *)data, len, out, e);
    free(data);
    return st;
}

void fn_people_free(fn_people *p) {
    if (!p) return;
    for (int i = 0; i < p->n; i++) free(p->entries[i].name);
    free(p->entries);
    free(p);
}

/* ------------------------------------------------------------ patterns */

#define MAX_PATTERN 4096

/* "PREFIX<digits>" split: the length of the prefix, and the number (digits
 * only, no leading zero, at most 9 of them); -1 if s is not of that form. */
static int numbered(const char *s, size_t len, size_t *prefix, long *number) {
    size_t d = len;
    while (d > 0 && s[d - 1] >= '0' && s[d - 1] <= '9') d--;
    const size_t nd = len - d;
    if (nd == 0 || nd > 9 || (nd > 1 && s[d] == '0')) return -1;
    long v = 0;
    for (size_t i = d; i < len; i++) v = v * 10 + (s[i] - '0');
    *prefix = d;
    *number = v;
    return 0;
}

/* One comma-free pattern item: check (name NULL) or match. 1 match, 0 no
 * match, -1 malformed. */
static int item(const char *p, size_t len, const char *name) {
    if (len == 0) return -1;
    const char *dots = NULL;
    for (size_t i = 0; i + 1 < len; i++)
        if (p[i] == '.' && p[i + 1] == '.') {
            dots = p + i;
            break;
        }
    if (dots) {
        size_t pa, pb;
        long a, b;
        const size_t la = (size_t)(dots - p), lb = len - la - 2;
        if (numbered(p, la, &pa, &a) || numbered(dots + 2, lb, &pb, &b) || pa != pb ||
            memcmp(p, dots + 2, pa) != 0 || a > b)
            return -1;
        if (!name) return 1;
        size_t pn;
        long v;
        const size_t ln = strlen(name);
        return numbered(name, ln, &pn, &v) == 0 && pn == pa && memcmp(name, p, pa) == 0 && v >= a && v <= b;
    }
    char buf[MAX_PATTERN + 1];
    if (len > MAX_PATTERN) return -1;
    memcpy(buf, p, len);
    buf[len] = '\0';
    if (!name) return 1;
    return fnmatch(buf, name, 0) == 0;
}

facenet_status fn_pattern_check(const char *pattern, fn_error *e) {
    if (!pattern || strlen(pattern) > MAX_PATTERN)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "a name pattern is empty or longer than %d bytes",
                       MAX_PATTERN);
    const char *s = pattern;
    for (;;) {
        const char *c = strchr(s, ',');
        const size_t len = c ? (size_t)(c - s) : strlen(s);
        if (item(s, len, NULL) < 0)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                           "'%.*s' is not a name pattern: a glob (s*, A?b) or a range PREFIX<m>..PREFIX<n> "
                           "(s1..s30) with m <= n",
                           (int)(len > 80 ? 80 : len), s);
        if (!c) break;
        s = c + 1;
    }
    return FACENET_OK;
}

int fn_pattern_match(const char *pattern, const char *name) {
    const char *s = pattern;
    for (;;) {
        const char *c = strchr(s, ',');
        const size_t len = c ? (size_t)(c - s) : strlen(s);
        if (item(s, len, name) == 1) return 1;
        if (!c) return 0;
        s = c + 1;
    }
}
