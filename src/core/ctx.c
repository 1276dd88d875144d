/* ctx.c - the context: thread pool, logging, last error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "core/pool.h"

#define FN_MAX_THREADS 256

const char *facenet_version(void) { return FACENET_VERSION_STRING; }

facenet_ctx_params facenet_ctx_default_params(void) {
    facenet_ctx_params p;
    memset(&p, 0, sizeof p);
    p.n_threads = 0;
    p.log_level = FACENET_LOG_WARN;
    return p;
}

facenet_status facenet_ctx_create(const facenet_ctx_params *params, facenet_ctx **out) {
    if (!out) return FACENET_ERR_INVALID_ARGUMENT;
    *out = NULL;
    facenet_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return FACENET_ERR_NO_MEMORY;
    ctx->params = params ? *params : facenet_ctx_default_params();
    int n = ctx->params.n_threads;
    if (n < 0 || (ctx->params.precision != FACENET_PRECISION_F32 && ctx->params.precision != FACENET_PRECISION_INT8)) {
        free(ctx);
        return FACENET_ERR_INVALID_ARGUMENT;
    }
    if (n == 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        n = cores > 0 ? (int)cores : 1;
    }
    if (n > FN_MAX_THREADS) n = FN_MAX_THREADS;
    ctx->pool = fn_pool_create(n);
    ctx->n_threads = fn_pool_threads(ctx->pool);
    *out = ctx;
    return FACENET_OK;
}

void facenet_ctx_free(facenet_ctx *ctx) {
    if (!ctx) return;
    fn_pool_free(ctx->pool);
    free(ctx);
}

const char *facenet_ctx_error(const facenet_ctx *ctx) { return ctx ? ctx->err.msg : ""; }

int facenet_ctx_threads(const facenet_ctx *ctx) { return ctx ? ctx->n_threads : 1; }

facenet_status fn_ctx_report(facenet_ctx *ctx, const fn_error *e) {
    if (!e) return FACENET_OK;
    if (ctx) {
        ctx->err = *e;
        if (e->status != FACENET_OK) fn_log(ctx, FACENET_LOG_DEBUG, "%s", e->msg);
    }
    return e->status;
}

void fn_log(const facenet_ctx *ctx, int level, const char *fmt, ...) {
    if (!ctx || !ctx->params.log || level > ctx->params.log_level) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ctx->params.log(ctx->params.log_user, level, msg);
}
