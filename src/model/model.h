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

#endif
