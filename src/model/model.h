/*
 * model.h - a loaded model: the validated safetensors file, its architecture
 * and the network bound to its weights.
 *
 * Networks bind their weights by name with fn_model_weights(), which checks
 * the shape and hands out float32 data: straight from the mapped file when
 * it is F32 and aligned, otherwise from a converted copy the model owns.
 */
#ifndef FN_MODEL_H
#define FN_MODEL_H

#include "core/core.h"
#include "model/safetensors.h"
#include "nets/arch.h"

typedef struct fn_owned fn_owned;

struct facenet_model {
    fn_st_file *file;
    const fn_arch_info *arch;
    const struct fn_net_ops *ops;
    void *net;          /* the architecture's own struct */
    fn_owned *owned;    /* converted weight copies */
    char path[512];     /* for messages */
    int input_size;
    int embedding_dim;
};

/* The float32 weights of tensor name, which must have exactly the given
 * shape (ndim dims). NULL with e filled otherwise. */
const float *fn_model_weights(facenet_model *m, const char *name, int ndim, const int64_t *shape, fn_error *e);

/* f's metadata into meta (room for 2 * (fn_st_meta_count(f) + 1)
 * pointers) with key set to value: replaced where it is, or appended.
 * Returns the number of pairs (meta_edit.c). */
size_t fn_meta_with(const fn_st_file *f, const char *key, const char *value, const char **meta);

/* int8 calibration (calibration.c): value NAME's range is the tensor
 * FN_CALIB_PREFIX NAME, F32 [1], in (0, FN_CALIB_MAX]. */
#define FN_CALIB_PREFIX "int8/"
#define FN_CALIB_MAX 1e6f
#define FN_META_INT8 "int8_calibration" /* what was measured, for people */
/* Value NAME's per-channel mean over calibration (for bias correction,
 * engine/graph.h) is the tensor FN_CALIB_PREFIX NAME FN_CALIB_MEAN_SUFFIX,
 * F32 [channels]. */
#define FN_CALIB_MEAN_SUFFIX ".mean"
/* 1 and *range if f has value name's range, 0 if it has none, -1 with e
 * filled (naming path) if the tensor is there but malformed. */
int fn_calib_range(const fn_st_file *f, const char *path, const char *name, float *range, fn_error *e);
/* 1 and the c floats of value name's per-channel mean in out (which the
 * caller frees) if f has them, 0 if it has none, -1 with e filled if the
 * tensor is malformed (not F32 [c], or not finite). */
int fn_calib_mean(const fn_st_file *f, const char *path, const char *name, int c, float **out, fn_error *e);

#endif
