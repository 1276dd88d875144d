/* session.h - a session's internals: the context, the model and scratch memory. */
#ifndef FN_SESSION_H
#define FN_SESSION_H

#include "core/core.h"
#include "engine/engine.h"
#include "model/model.h"

struct facenet_session {
    facenet_ctx *ctx;
    const facenet_model *model;
    fn_arena arena;
    fn_exec ex;
};

#endif
