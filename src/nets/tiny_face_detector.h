/*
 * tiny_face_detector.h - face-api's fast face detector (tiny_face_detector
 * model): a Tiny-YOLOv2-style net of depthwise-separable convolutions with
 * 5 anchor boxes per cell of a 32-pixel grid.
 *
 * s x s RGB in (s a multiple of 32, default 416; x = (v - mean) / 255);
 * out, per image, an (s/32) x (s/32) grid of 5 anchors x (tx, ty, tw, th,
 * score logit). Decoding and NMS live in src/detect/tiny.c. Layers: the
 * fact sheet, section 5.
 *
 *   int g = fn_tiny_face_detector_cells(416);          // 13
 *   float *out = ...;                                   // n * g * g * 25
 *   fn_tiny_face_detector_forward(net, ex, &x, out, &e);
 */
#ifndef FN_TINY_FACE_DETECTOR_H
#define FN_TINY_FACE_DETECTOR_H

#include "core/core.h"
#include "engine/engine.h"

typedef struct fn_tiny_face_detector fn_tiny_face_detector;

#define FN_TINY_ANCHORS 5
#define FN_TINY_BOX 5 /* tx, ty, tw, th, score logit */
#define FN_TINY_STRIDE 32

/* The anchors' width and height in grid cells. */
extern const double fn_tiny_face_detector_anchors[FN_TINY_ANCHORS][2];
/* The input normalisation: x = (v - mean[c]) / 255. */
extern const float fn_tiny_face_detector_mean[3];

/* Grid side for an input side (a multiple of 32). */
static inline int fn_tiny_face_detector_cells(int input_size) { return input_size / FN_TINY_STRIDE; }

/* The forward pass for the model's input size as a graph (engine/graph.h),
 * for tests and tools; NULL if that size is not a multiple of 32. */
const fn_graph *fn_tiny_face_detector_graph(const fn_tiny_face_detector *net);

/* x: [n,s,s,3] normalised input, s a positive multiple of 32. out: n x g x g
 * x 25 floats, g = s/32, channel = anchor * 5 + value. Scratch comes from
 * ex->arena. */
facenet_status fn_tiny_face_detector_forward(const fn_tiny_face_detector *net, const fn_exec *ex,
                                             const fn_tensor *x, float *out, fn_error *e);

#endif
