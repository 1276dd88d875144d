/*
 * fields.c - splitting protocol lines into fields (fields.h).
 */
#include "util/fields.h"

int fn_split_fields(const char *line, size_t len, fn_field *f, int max) {
    int n = 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (line[i] == ' ' || line[i] == '\t')) i++;
        if (i == len) break;
        const size_t start = i;
        while (i < len && line[i] != ' ' && line[i] != '\t') i++;
        if (n < max) f[n] = (fn_field){line + start, i - start};
        n++;
    }
    return n;
}

int fn_parse_count(const fn_field *f, long lo, long hi, long *out) {
    if (f->len == 0 || f->len > 9) return 0;
    long v = 0;
    for (size_t i = 0; i < f->len; i++) {
        if (f->s[i] < '0' || f->s[i] > '9') return 0;
        v = v * 10 + (f->s[i] - '0');
    }
    if (v < lo || v > hi) return 0;
    *out = v;
    return 1;
}
