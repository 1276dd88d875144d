/*
 * resnet29.h - the face embedding network: dlib's metric-learning ResNet-29
 * (dlib_face_recognition_resnet_model_v1) as face-api ships it.
 *
 * 150x150 RGB in, 128 floats out. See docs/networks.md for the layer table.
 */
#ifndef FN_RESNET29_H
#define FN_RESNET29_H

#include "core/core.h"
#include "engine/engine.h"

typedef struct fn_resnet29 fn_resnet29;

#define FN_RESNET29_INPUT 150
#define FN_RESNET29_DIM 128

/* A residual block of the layer table: a down block halves the plane with
 * a stride-2 first convolution and a 2x2 average pool on the shortcut. The
 * trainable network (train/net.c) builds the same layers from this table. */
typedef struct fn_resnet_block {
    const char *name;
    int cin, cout, down;
} fn_resnet_block;
#define FN_RESNET29_BLOCKS 14
extern const fn_resnet_block fn_resnet29_blocks[FN_RESNET29_BLOCKS];

/* Bind one k x k convolution with its folded batch norm from a model:
 * "<prefix>/conv/filters", "/conv/bias", "/scale/weights", "/scale/biases"
 * (dlib's layer names, which the small network shares). */
facenet_status fn_resnet_bind_conv(facenet_model *m, const char *prefix, int k, int cin, int cout, int stride,
                                   fn_padding pad, fn_act act, fn_conv_desc *d, fn_error *e);

/* The face-api / dlib input normalisation. */
extern const float fn_resnet29_mean[3];

/* The forward pass as a graph (engine/graph.h), for tests and tools. */
const fn_graph *fn_resnet29_graph(const fn_resnet29 *net);
/* Its int8 version, or NULL if the model file carries no calibration. */
const fn_graph *fn_resnet29_graph8(const fn_resnet29 *net);

/* x: [n,150,150,3] normalised input. out: n x 128 raw outputs (not
 * normalised). Scratch comes from ex->arena. */
facenet_status fn_resnet29_forward(const fn_resnet29 *net, const fn_exec *ex, const fn_tensor *x, float *out,
                                   fn_error *e);

#endif
