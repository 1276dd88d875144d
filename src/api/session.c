/* session.c - per-thread sessions: scratch memory and the backend's state
 * (its prepared kernels) bound to a context and a model. */
#include <stdlib.h>

#include "api/session.h"
#include "nets/nets.h"

facenet_status fn_exec_precision(const facenet_ctx *ctx, const facenet_model *m, fn_exec *ex, fn_error *e) {
    ex->int8 = ctx->params.precision == FACENET_PRECISION_INT8;
    /* An embedding asked for in int8 must have its int8 form; detectors and
     * landmark networks without one run in float32. */
    if (ex->int8 && m && m->arch->kind == FN_ARCH_EMBEDDING && !fn_model_has_int8(m)) {
        ex->int8 = 0;
        return fn_fail(e, FACENET_ERR_UNSUPPORTED,
                       "%s carries no int8 calibration; make a calibrated copy with `facenet quantize` "
                       "(docs/performance.md) or use float32",
                       m->path);
    }
    return FACENET_OK;
}

facenet_status facenet_session_create(facenet_ctx *ctx, const facenet_model *model, facenet_session **out) {
    fn_error e;
    fn_error_clear(&e);
    if (!ctx || !model || !out) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_session_create: NULL argument");
        return fn_ctx_report(ctx, &e);
    }
    facenet_session *s = calloc(1, sizeof *s);
    if (!s) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory creating a session");
        return fn_ctx_report(ctx, &e);
    }
    s->ctx = ctx;
    s->model = model;
    /* Without its state (out of memory) the backend still works, through
     * the reference ops, so this is only worth a warning. */
    if (fn_exec_init(&s->ex, fn_backend_default(), ctx->pool, &s->arena) != 0)
        fn_log(ctx, FACENET_LOG_WARN, "backend %s: could not set up, running the reference ops",
               s->ex.backend->name);
    if (fn_exec_precision(ctx, model, &s->ex, &e) != FACENET_OK) {
        facenet_session_free(s);
        return fn_ctx_report(ctx, &e);
    }
    *out = s;
    return fn_ctx_report(ctx, &e);
}

void facenet_session_free(facenet_session *s) {
    if (!s) return;
    fn_exec_release(&s->ex);
    fn_arena_free(&s->arena);
    free(s);
}

const char *facenet_backend_name(void) { return fn_backend_default()->name; }
