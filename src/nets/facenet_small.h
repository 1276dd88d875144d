/*
 * facenet_small.h - a small residual embedding network for small chips and
 * small data sets (a few thousand faces), trained by facenet itself.
 *
 *   conv 3x3/2 SAME 3->32, BN, ReLU           64 -> 32
 *   residual block, 32                        32
 *   down 32->64, residual block               16
 *   down 64->128, residual block              8
 *   down 128->256, residual block             4
 *   global mean, fc 256->128 (no bias)
 *
 * The blocks are ResNet-29's (resnet29.h): relu(x + bn(conv(relu(bn(conv(x))))))
 * with the same zero-extended average-pool shortcut, but a down block's
 * stride-2 convolution pads SAME, so any input size works (the global mean
 * takes whatever plane is left); 64 is the default, a model file's
 * input_size says which one it was trained for. Preprocessing is face-api's,
 * as for ResNet-29: centred square padding, TF's legacy bilinear resize,
 * (v - mean_rgb) / 255. Tensor names follow dlib's ("stem/conv/filters",
 * "res64_down/conv1/scale/weights", ..., "fc").
 */
#ifndef FN_FACENET_SMALL_H
#define FN_FACENET_SMALL_H

#include "core/core.h"
#include "engine/engine.h"
#include "nets/resnet29.h"

#define FN_SMALL_ARCH "facenet_small"
#define FN_SMALL_INPUT 64
#define FN_SMALL_DIM 128
#define FN_SMALL_STEM "stem"
#define FN_SMALL_STEM_C 32
#define FN_SMALL_FC_IN 256
#define FN_SMALL_BLOCKS 7
extern const fn_resnet_block fn_small_blocks[FN_SMALL_BLOCKS];

typedef struct fn_small fn_small;

/* x: [n, s, s, 3] normalised input (s: the model's input size); out: n x 128
 * raw outputs. */
facenet_status fn_small_forward(const fn_small *net, const fn_exec *ex, const fn_tensor *x, float *out,
                                fn_error *e);

#endif
