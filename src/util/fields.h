/*
 * fields.h - the words of a line of a text protocol file (LFW's pairs.txt
 * and people.txt): runs of spaces and tabs separate them, and counts are
 * plain digits. Both readers use these so that they accept the same
 * spelling of a line.
 *
 *   fn_field f[4];
 *   int n = fn_split_fields(line, len, f, 4);   // n counts them all
 *   long count;
 *   if (n == 2 && fn_parse_count(&f[1], 1, 1000, &count)) ...
 */
#ifndef FN_FIELDS_H
#define FN_FIELDS_H

#include <stddef.h>

typedef struct fn_field {
    const char *s; /* not NUL-terminated */
    size_t len;
} fn_field;

/* Split line[0..len) on runs of spaces and tabs; the first max fields go
 * into f, and the return value counts every field. */
int fn_split_fields(const char *line, size_t len, fn_field *f, int max);

/* A whole number in [lo, hi] written with digits only (no sign, at most 9
 * digits): 1 and *out set, or 0. */
int fn_parse_count(const fn_field *f, long lo, long hi, long *out);

#endif
