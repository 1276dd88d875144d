/*
 * json.h - a strict JSON (RFC 8259) reader for model files, manifests,
 * golden files and requests: all untrusted input.
 *
 * It parses into a tree owned by one allocation list and freed at once.
 * Limits guard against hostile input: nesting depth, memory (the tree of a
 * hostile "[0,0,0,..." is dozens of times its text), and the caller caps the text
 * length. Numbers keep their source text so integers can be read
 * exactly (safetensors offsets do not fit a double's 53 bits in general).
 *
 *   fn_error e;
 *   fn_json *root = fn_json_parse(text, len, &e);
 *   const fn_json *v = fn_json_get(root, "dtype");
 *   if (v && v->type == FN_JSON_STRING) puts(v->str);
 *   fn_json_free(root);
 */
#ifndef FN_JSON_H
#define FN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define FN_JSON_MAX_DEPTH 64
/* fn_json_parse() refuses documents whose tree needs more memory (bytes). */
#define FN_JSON_MAX_MEMORY (1024u * 1024u * 1024u)

typedef enum fn_json_type {
    FN_JSON_NULL,
    FN_JSON_BOOL,
    FN_JSON_NUMBER,
    FN_JSON_STRING,
    FN_JSON_ARRAY,
    FN_JSON_OBJECT
} fn_json_type;

typedef struct fn_json fn_json;
struct fn_json {
    fn_json_type type;
    int boolean;          /* FN_JSON_BOOL */
    double number;        /* FN_JSON_NUMBER, as strtod reads it */
    const char *num_text; /* FN_JSON_NUMBER: the literal, NUL-terminated */
    char *str;            /* FN_JSON_STRING: UTF-8, NUL-terminated */
    size_t str_len;       /* bytes, excluding the NUL (strings may hold \u0000) */
    size_t count;         /* FN_JSON_ARRAY / FN_JSON_OBJECT: number of members */
    fn_json *items;       /* members, in document order */
    char **keys;          /* FN_JSON_OBJECT: keys[i] names items[i] */
    size_t line;          /* 1-based line of the value's first character */
};

/* Parse exactly one JSON value (surrounding whitespace allowed). Returns NULL
 * and fills e (with line and column) on malformed input or allocation failure.
 * Strict: no trailing commas, leading zeros, BOM, raw control characters,
 * invalid escapes, invalid UTF-8 or unpaired surrogates, duplicate object
 * keys or trailing garbage. Object keys may not contain \u0000 (they are
 * compared as C strings); string values may. Messages start with
 * "line L, column C: " (C counts bytes); callers prefix the file name. */
fn_json *fn_json_parse(const char *text, size_t len, fn_error *e);
/* The same with a memory budget in bytes instead of FN_JSON_MAX_MEMORY:
 * FACENET_ERR_TOO_LARGE when exceeded. (Tests use it to fail every
 * allocation in turn.) */
fn_json *fn_json_parse_limited(const char *text, size_t len, size_t max_memory, fn_error *e);
/* Frees a tree returned by fn_json_parse(); root must be that pointer. */
void fn_json_free(fn_json *root);

/* Object member by key (keys are unique), or NULL if obj is not an object or
 * lacks key. Linear in the number of members. */
const fn_json *fn_json_get(const fn_json *obj, const char *key);

/* Exact integer value of a number literal with no fraction or exponent.
 * Returns 1 and sets *out, or 0 if v is not such a number or out of range. */
int fn_json_int64(const fn_json *v, int64_t *out);

/* 1 if s[0..n) is valid UTF-8 (RFC 3629: no overlong forms, surrogates or
 * code points above U+10FFFF), else 0. For writers that emit JSON. */
int fn_utf8_valid(const char *s, size_t n);

#endif /* FN_JSON_H */
