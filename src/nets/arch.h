/*
 * arch.h - the registry of network architectures the library knows: their
 * names, what they take in and give out, and how to recognise their weights.
 *
 * The converter records an architecture's facts in a model file's metadata;
 * facenet_model_load() reads the "architecture" key back and hands the file
 * to that network's loader.
 */
#ifndef FN_ARCH_H
#define FN_ARCH_H

#include <stddef.h>
#include <stdint.h>

typedef enum fn_arch_kind { FN_ARCH_EMBEDDING, FN_ARCH_DETECTOR, FN_ARCH_LANDMARKS } fn_arch_kind;

typedef struct fn_arch_info {
    const char *name;       /* "dlib_resnet29" */
    fn_arch_kind kind;
    const char *kind_name;  /* "embedding", "detector", "landmarks" */
    int input_size;         /* square input side, pixels */
    const char *preprocess; /* how pixels become the input tensor, for humans and tools */
    int embedding_size;     /* embedding networks only; 0 otherwise */
    /* Same-person distance between unit embeddings when the model file does
     * not carry its own "threshold" metadata (embedding networks only). */
    float default_threshold;
    /* Recognition of TF.js weights: a tensor only this architecture has, one
     * it must not have (or NULL), and the last dimension of "fc/bias" it
     * needs (0: no condition). */
    const char *has_tensor;
    const char *lacks_tensor;
    int64_t fc_bias_dim;
} fn_arch_info;

const fn_arch_info *fn_arch_find(const char *name);
/* The architecture whose weights these are, or NULL. fc_bias_dim is the last
 * dimension of a tensor named "fc/bias", or 0 if there is none. */
const fn_arch_info *fn_arch_detect(const char *const *names, size_t n, int64_t fc_bias_dim);
size_t fn_arch_count(void);
const fn_arch_info *fn_arch_at(size_t i);

/* Metadata keys every model file carries (values are strings). */
#define FN_META_FORMAT "format"                 /* "facenet" */
#define FN_META_FORMAT_VERSION "format_version" /* "1" */
#define FN_META_ARCH "architecture"
#define FN_META_KIND "kind"
#define FN_META_INPUT_SIZE "input_size"
#define FN_META_PREPROCESS "preprocess"
#define FN_META_EMBEDDING_SIZE "embedding_size"
#define FN_META_MODEL_ID "model_id"
#define FN_META_SOURCE "source"
#define FN_META_THRESHOLD "threshold" /* decimal, distance between unit embeddings */

#endif /* FN_ARCH_H */
