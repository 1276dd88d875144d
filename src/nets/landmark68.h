/*
 * landmark68.h - face-api's 68-point landmark networks: FaceLandmark68Net
 * ("face_landmark_68") and FaceLandmark68TinyNet ("face_landmark_68_tiny").
 *
 * 112x112 RGB in (face-api's toBatchTensor(112, center) of the face crop,
 * normalised like the embedding network: (v - mean) / 255), 136 floats out:
 * x0, y0, x1, y1, ... relative to the 112x112 padded input (about 0..1).
 * src/landmarks/landmarks.c turns them into image coordinates.
 *
 *   float out[FN_LANDMARK68_OUTPUTS];
 *   fn_tensor x = fn_tensor_make(1, 112, 112, 3, input);
 *   fn_landmark68_forward(m->net, ex, &x, out, &e);
 */
#ifndef FN_LANDMARK68_H
#define FN_LANDMARK68_H

#include "core/core.h"
#include "engine/engine.h"
#include "nets/nets.h"

typedef struct fn_landmark68 fn_landmark68;

#define FN_LANDMARK68_INPUT 112
#define FN_LANDMARK68_OUTPUTS 136

extern const fn_net_ops fn_landmark68_ops;      /* "face_landmark_68" */
extern const fn_net_ops fn_landmark68_tiny_ops; /* "face_landmark_68_tiny" */

/* 1 if m holds one of the two landmark networks. */
int fn_landmark68_is(const facenet_model *m);

/* The forward pass as a graph (engine/graph.h), for tests and tools. */
const fn_graph *fn_landmark68_graph(const fn_landmark68 *net);

/* x: [n,112,112,3] normalised input. out: n x 136 raw outputs. Scratch comes
 * from ex->arena and is left allocated (the caller resets the arena). */
facenet_status fn_landmark68_forward(const fn_landmark68 *net, const fn_exec *ex, const fn_tensor *x,
                                     float *out, fn_error *e);

#endif
