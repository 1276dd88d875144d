/*
 * api.h - internals shared by the public entry points: sessions, and the
 * batched embedding that both facenet_embed_chips() and the pipeline use.
 */
#ifndef FN_API_H
#define FN_API_H

#include "api/session.h"

/* Embed n chips (any size; padded to a square and resized as face-api does)
 * with an embedding model. Resets ex->arena. */
facenet_status fn_embed_batch(const facenet_model *m, const fn_exec *ex, const facenet_image *chips, int n,
                              float *out, unsigned flags, fn_error *e);

#endif
