/*
 * checkpoint.h - training checkpoints: a safetensors file holding every
 * tensor of the network ("param/<name>": weights and batch norm's running
 * statistics) and of the optimizer ("optim/<name>/<slot>"), and metadata
 * that says where the run was:
 *
 *   format              "facenet-checkpoint"
 *   checkpoint_version  "1"
 *   architecture        the network's ("facenet_small", "dlib_resnet29")
 *   input_size          chip side, pixels
 *   embedding_size      128
 *   step                steps done (decimal)
 *   seed                the run's seed (decimal)
 *   rng                 the triplet selection generator: 4 x 16 hex digits, ':'-separated
 *   optimizer           "adagrad", "sgd", "adam"
 *
 * The file is written to a temporary name, fsync'ed and renamed over the
 * previous one (fn_st_write), so a run killed at any moment leaves a whole
 * checkpoint behind. Reading checks every value strictly: a checkpoint is
 * outside data like any file.
 */
#ifndef FN_TRAIN_CHECKPOINT_H
#define FN_TRAIN_CHECKPOINT_H

#include "model/safetensors.h"
#include "train/train.h"

#define FN_CKPT_FORMAT "facenet-checkpoint"
#define FN_CKPT_VERSION "1"
#define FN_CKPT_MAX_STEP ((int64_t)1 << 52)

typedef struct fn_ckpt_meta {
    char architecture[64];
    int input_size, embedding_size;
    int64_t step;
    uint64_t seed;
    fn_rng rng;
    char optimizer[16];
} fn_ckpt_meta;

/* Check and decode a checkpoint's metadata; errors say which key is wrong. */
facenet_status fn_ckpt_meta_read(const fn_st_file *f, fn_ckpt_meta *m, fn_error *e);

/* Write net's and opt's tensors and m to path, atomically. */
facenet_status fn_ckpt_write(const char *path, fn_tnet *net, fn_optim *opt, const fn_ckpt_meta *m, fn_error *e);

/* Copy a checkpoint's tensors back into net and opt by name. Every tensor
 * of both must be in the file, as F32 of the same shape, and the file must
 * hold nothing else. */
facenet_status fn_ckpt_restore(const fn_st_file *f, fn_tnet *net, fn_optim *opt, fn_error *e);

#endif /* FN_TRAIN_CHECKPOINT_H */
