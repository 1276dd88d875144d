/* session.h - a session's internals: the context, the model and scratch memory. */
#ifndef FN_SESSION_H
#define FN_SESSION_H

#include "core/core.h"
#include "engine/engine.h"
#include "model/model.h"

/* Set ex->int8 from the context's precision: each network whose model
 * carries int8 calibration then runs in int8, the others in float32. m is
 * the embedding model (NULL: none), which must carry it when int8 is asked
 * for: an error otherwise. */
facenet_status fn_exec_precision(const facenet_ctx *ctx, const facenet_model *m, fn_exec *ex, fn_error *e);

struct facenet_session {
    facenet_ctx *ctx;
    const facenet_model *model;
    fn_arena arena;
    fn_exec ex;
};

#endif
