/*
 * embed.c - facenet_embed_chips(): face chips to embeddings.
 *
 * Chips go through the network in batches (a batch shares one pass over the
 * weights); each batch's activations live in the session arena, which is
 * reset before and after.
 */
#include <math.h>
#include <string.h>

#include "api/api.h"
#include "nets/nets.h"
#include "nets/preprocess.h"
#include "nets/resnet29.h"

#define EMBED_BATCH 16

static facenet_status check_chip(const facenet_image *c, int i, fn_error *e) {
    if (!c->data || c->width <= 0 || c->height <= 0 || (c->channels != 1 && c->channels != 3))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "chip %d: not an image (%dx%d, %d channels); need 1 or 3 channels of 8-bit pixels", i,
                       c->width, c->height, c->channels);
    if (c->width > FACENET_MAX_IMAGE_SIDE || c->height > FACENET_MAX_IMAGE_SIDE)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "chip %d: %dx%d is over the %d px side limit", i, c->width,
                       c->height, FACENET_MAX_IMAGE_SIDE);
    return FACENET_OK;
}

facenet_status fn_embed_batch(const facenet_model *m, const fn_exec *ex, const facenet_image *chips, int n,
                              float *out, unsigned flags, fn_error *e) {
    if (m->arch->kind != FN_ARCH_EMBEDDING)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "%s is a %s model, not an embedding network", m->path,
                       m->arch->kind_name);
    for (int i = 0; i < n; i++)
        if (check_chip(&chips[i], i, e) != FACENET_OK) return e->status;
    const int size = m->input_size, dim = m->embedding_dim, flip = (flags & FACENET_EMBED_FLIP) != 0;
    const int raw = (flags & FACENET_EMBED_RAW) != 0, per_batch = flip ? EMBED_BATCH / 2 : EMBED_BATCH;
    const size_t plane = (size_t)size * size * 3;
    const fn_norm norm = {{fn_resnet29_mean[0], fn_resnet29_mean[1], fn_resnet29_mean[2]}, 255.0f};
    for (int start = 0; start < n; start += per_batch) {
        const int nb = n - start < per_batch ? n - start : per_batch, rows = flip ? 2 * nb : nb;
        fn_arena_reset(ex->arena);
        float *in = fn_arena_floats(ex->arena, (size_t)rows * plane);
        float *o = flip ? fn_arena_floats(ex->arena, (size_t)rows * dim) : out + (size_t)start * dim;
        if (!in || !o) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for %d chips", nb);
        for (int i = 0; i < nb; i++)
            if (fn_to_input(ex, &chips[start + i], size, 1, &norm, in + (size_t)i * plane))
                return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory preparing chip %d", start + i);
        /* The mirror images follow the chips: row nb + i is chip i mirrored. */
        if (flip) fn_mirror_inputs(in, nb, size);
        fn_tensor x = fn_tensor_make(rows, size, size, 3, in);
        facenet_status st = fn_embedding_forward(m, ex, &x, o, e);
        if (st != FACENET_OK) return st;
        if (!raw) fn_l2_normalize(o, rows, dim, 1e-12f);
        if (!flip) continue;
        fn_mirror_merge(o, nb, dim, raw, out + (size_t)start * dim);
    }
    fn_arena_reset(ex->arena);
    return FACENET_OK;
}

facenet_status facenet_embed_chips(facenet_session *s, const facenet_image *chips, int n, float *out,
                                   unsigned flags) {
    fn_error e;
    fn_error_clear(&e);
    if (!s) return FACENET_ERR_INVALID_ARGUMENT;
    if (n < 0 || (n > 0 && (!chips || !out)))
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_embed_chips: bad arguments (n = %d)", n);
    else if (n > 0)
        fn_embed_batch(s->model, &s->ex, chips, n, out, flags, &e);
    return fn_ctx_report(s->ctx, &e);
}

float facenet_distance(const float *a, const float *b, int dim) {
    double ss = 0.0;
    for (int i = 0; i < dim; i++) {
        double d = (double)a[i] - b[i];
        ss += d * d;
    }
    return (float)sqrt(ss);
}
