/*
 * tfjs.h - reading TF.js weights manifests and their binary shards
 * (face-api's *-weights_manifest.json + *.bin), as described in
 * docs/model-format.md.
 *
 * A manifest is a JSON array of groups {paths: [shard files], weights: [spec]}.
 * A group's shards are concatenated in order; the weights sit back to back in
 * the order of the specs, each prod(shape) x stored-size bytes. Quantized
 * weights are dequantized: uint8/uint16 as q*scale+min evaluated in double and
 * stored as float32 (int32 targets: rounded), float16 as IEEE half.
 *
 * Manifests and shards are untrusted: specs whose bytes run past the shard, or
 * a shard with bytes left over, are errors.
 */
#ifndef FN_TFJS_H
#define FN_TFJS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "model/safetensors.h"

/* One decoded weight: float32 or int32 elements, owned by the set. */
typedef struct fn_tfjs_weight {
    char *name;
    fn_dtype dtype; /* FN_DTYPE_F32 or FN_DTYPE_I32 */
    int ndim;
    int64_t shape[FN_ST_MAX_DIMS];
    size_t nelem;
    void *data;
} fn_tfjs_weight;

typedef struct fn_tfjs_weights {
    size_t count;
    fn_tfjs_weight *w;
} fn_tfjs_weights;

/* Decode one manifest held in memory. load_shard is called for each shard
 * path of each group (in order) and must return a malloc'ed buffer (freed by
 * the caller of the callback) or fail. */
typedef facenet_status (*fn_tfjs_load_fn)(void *user, const char *shard_path, uint8_t **data, size_t *len,
                                          fn_error *e);
facenet_status fn_tfjs_decode(const char *manifest_json, size_t len, fn_tfjs_load_fn load, void *user,
                              fn_tfjs_weights *out, fn_error *e);
void fn_tfjs_weights_free(fn_tfjs_weights *w);

#endif /* FN_TFJS_H */
