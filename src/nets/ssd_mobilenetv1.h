/*
 * ssd_mobilenetv1.h - face-api's default face detector: an SSD head on a
 * MobileNetV1 (depth 1.0) backbone, trained on WIDER FACE (face-api's
 * ssd_mobilenetv1_model).
 *
 * 512 x 512 RGB in (x = v/127.5 - 1); out, per image, 5118 anchors' box
 * encodings and class logits. Decoding, NMS and the mapping to image pixels
 * live in src/detect/ssd.c. Layers: the fact sheet, section 3.
 *
 *   float *enc = ..., *logits = ...;   // n * 5118 * 4, n * 5118 * 3
 *   fn_ssd_mobilenetv1_forward(net, ex, &x, enc, logits, &e);
 *   const float *anchors = fn_ssd_mobilenetv1_anchors(net);
 */
#ifndef FN_SSD_MOBILENETV1_H
#define FN_SSD_MOBILENETV1_H

#include "core/core.h"
#include "engine/engine.h"

typedef struct fn_ssd_mobilenetv1 fn_ssd_mobilenetv1;

#define FN_SSD_INPUT 512
#define FN_SSD_ANCHORS 5118
#define FN_SSD_CLASSES 3 /* background, face, unused */

/* The model's anchors, [5118][4] = ymin, xmin, ymax, xmax, normalised to the
 * input and not clipped, in the order of the network's outputs. */
const float *fn_ssd_mobilenetv1_anchors(const fn_ssd_mobilenetv1 *net);

/* The forward pass as a graph (engine/graph.h) with 12 outputs: box
 * encodings and class logits of feature map 0, then of map 1, and so on;
 * for tests and tools. */
const fn_graph *fn_ssd_mobilenetv1_graph(const fn_ssd_mobilenetv1 *net);
/* Its int8 form, or NULL when the model file carries no calibration. The
 * values it names: "input", "conv0", "dwI" and "pwI" (block I = 1..13, the
 * depthwise and the pointwise conv) and "extraK" (K = 0..7); the heads
 * write float32. */
const fn_graph *fn_ssd_mobilenetv1_graph8(const fn_ssd_mobilenetv1 *net);

/* x: [n,512,512,3] normalised input. box_enc: n x 5118 x 4 (ty, tx, th, tw);
 * class_logits: n x 5118 x 3. Anchors are ordered by feature map (32x32,
 * 16x16, 8x8, 4x4, 2x2, 1x1), then row, column and anchor. Scratch comes
 * from ex->arena. With ex->int8 the int8 form runs, if there is one. */
facenet_status fn_ssd_mobilenetv1_forward(const fn_ssd_mobilenetv1 *net, const fn_exec *ex,
                                          const fn_tensor *x, float *box_enc, float *class_logits,
                                          fn_error *e);

#endif
