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

/* The face-api / dlib input normalisation. */
extern const float fn_resnet29_mean[3];

/* The forward pass as a graph (engine/graph.h), for tests and tools. */
const fn_graph *fn_resnet29_graph(const fn_resnet29 *net);

/* x: [n,150,150,3] normalised input. out: n x 128 raw outputs (not
 * normalised). Scratch comes from ex->arena. */
facenet_status fn_resnet29_forward(const fn_resnet29 *net, const fn_exec *ex, const fn_tensor *x, float *out,
                                   fn_error *e);

#endif
