/* session.c - per-thread sessions: scratch memory and the backend's state
 * (its prepared kernels) bound to a context and a model. */
#include <stdlib.h>

#include "api/session.h"

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
