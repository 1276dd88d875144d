/*
 * core.h - what every module of the library shares: error values with detail
 * text, checked size arithmetic, and the context's internals.
 *
 * Internal code reports failure through an fn_error: a status plus one
 * sentence for the user. Public entry points copy it into their context.
 */
#ifndef FN_CORE_H
#define FN_CORE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "facenet.h"

#define FN_ERROR_MAX 512

typedef struct fn_error {
    facenet_status status;
    char msg[FN_ERROR_MAX];
} fn_error;

/* Record a failure in e (which may be NULL) and return its status. */
facenet_status fn_fail(fn_error *e, facenet_status status, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* Prefix the message already in e with "prefix: ". */
void fn_error_prefix(fn_error *e, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void fn_error_clear(fn_error *e);

/* Overflow-checked size arithmetic: return 0 on overflow, 1 otherwise. */
static inline int fn_mul_size(size_t a, size_t b, size_t *out) {
    if (a != 0 && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}
static inline int fn_add_size(size_t a, size_t b, size_t *out) {
    if (b > SIZE_MAX - a) return 0;
    *out = a + b;
    return 1;
}

struct fn_pool;

struct facenet_ctx {
    facenet_ctx_params params;
    int n_threads;        /* resolved: >= 1 */
    struct fn_pool *pool; /* NULL when n_threads == 1 */
    fn_error err;
};

/* Copy an internal error into the context and return its status. */
facenet_status fn_ctx_report(facenet_ctx *ctx, const fn_error *e);
/* Log through the context's callback, if any. */
void fn_log(const facenet_ctx *ctx, int level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

#endif /* FN_CORE_H */
