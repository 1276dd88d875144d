/*
 * detect.h - face detection: the face-api detectors (SSD MobileNetV1, the
 * default; the tiny YOLO-style detector, the fast option) run on any image
 * and give boxes in image pixels.
 *
 * Boxes follow face-api's conventions so they can be compared with it
 * directly: floats, left/top clipped at 0, right/bottom not clipped beyond
 * the image on the far side (see the fact sheet, section 3.4).
 */
#ifndef FN_DETECT_H
#define FN_DETECT_H

#include "core/core.h"
#include "engine/engine.h"
#include "model/model.h"

typedef struct fn_face_box {
    float x, y, w, h; /* image pixels */
    float score;      /* 0..1 */
} fn_face_box;

typedef struct fn_detect_opts {
    float min_score;  /* keep boxes with score > min_score (strict), face-api default 0.5 */
    int max_results;  /* at most this many (SSD default 100; <= 0: no cap) */
    float iou;        /* NMS: suppress a box whose IoU with a kept one exceeds this (SSD 0.5, tiny 0.4) */
    int input_size;   /* tiny detector only: a multiple of 32 (default 416); SSD is always 512 */
} fn_detect_opts;

/* face-api's defaults for the model's architecture. */
fn_detect_opts fn_detect_default_opts(const facenet_model *m);

/* Detect faces in img (1 or 3 channels) with a detector model. Writes at most
 * cap boxes, best score first, to out and the number found to *n. Scratch
 * comes from ex->arena. opts NULL: the defaults. *n counts the boxes written
 * (<= cap); opts->max_results caps them too. The options are taken as given:
 * face-api's quirk of turning a min_score of 0 into 0.5 is not copied. */
facenet_status fn_detect(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                         const fn_detect_opts *opts, fn_face_box *out, int cap, int *n, fn_error *e);

/* Greedy non-maximum suppression over boxes sorted by score (descending):
 * keeps a box if its IoU with every kept box is <= iou. Returns the number
 * kept, compacted to the front. Boxes are [ymin, xmin, ymax, xmax] style
 * corner boxes as 4 floats each, scores parallel (or NULL). At most max_keep
 * are kept; max_keep <= 0: no cap. */
int fn_nms(float *corners, float *scores, int n, float iou, int max_keep);

/* The same selection without moving anything: the positions (in [0, n)) of
 * the kept boxes, best first, go to keep (room for n). max_keep <= 0: no cap. */
int fn_nms_keep(const float *corners, int n, float iou, int max_keep, int *keep);

/* Intersection over union of two corner boxes (corners in either order),
 * in double as face-api computes it; 0 if either box has no area. */
double fn_box_iou(const float a[4], const float b[4]);

/* ---- the steps of each detector, exposed for tests */

/* SSD box decoding (fact sheet 3.4): anchors [n][4] = ymin, xmin, ymax, xmax
 * (normalised), enc [n][4] = ty, tx, th, tw with scale factors 10, 10, 5, 5,
 * to corners [n][4] = ymin, xmin, ymax, xmax, in float32 and in the order of
 * operations TF.js uses. */
void fn_ssd_decode_boxes(const float *anchors, const float *enc, int n, float *corners);

/* SSD: a normalised corner box (of the 512 x 512 input) to image pixels for a
 * W x H image, as face-api maps it (left/top clipped at 0, right/bottom at
 * the padded square's edge). */
fn_face_box fn_ssd_box_to_image(const float corners[4], float score, int width, int height);

facenet_status fn_detect_ssd(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                             const fn_detect_opts *opts, fn_face_box *out, int cap, int *n, fn_error *e);
facenet_status fn_detect_tiny(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                              const fn_detect_opts *opts, fn_face_box *out, int cap, int *n, fn_error *e);

#endif
