/*
 * landmarks.h - 68-point face landmarks (face-api's FaceLandmark68Net and its
 * tiny variant) for a detected face.
 *
 * Points follow the iBUG 300-W order: jaw 0-16, brows 17-26, nose 27-35,
 * left eye 36-41, right eye 42-47, mouth 48-67 ("left" = the subject's
 * right, on the left of the photo).
 */
#ifndef FN_LANDMARKS_H
#define FN_LANDMARKS_H

#include "core/core.h"
#include "detect/detect.h"
#include "engine/engine.h"
#include "model/model.h"

#define FN_LANDMARKS 68

typedef enum fn_landmark_origin {
    /* face-api's quirk, for parity: points are shifted by the unclipped,
     * unfloored detection origin although the crop starts at the clipped,
     * floored one. */
    FN_ORIGIN_FACEAPI,
    /* the crop's own origin: geometrically right. */
    FN_ORIGIN_CROP
} fn_landmark_origin;

/* Landmarks of the face in box: crop clipAtImageBorders(box) from img, run
 * the landmark model (face_landmark_68 or face_landmark_68_tiny) on it, and
 * decode to absolute image coordinates, pts[2*i], pts[2*i+1] = x, y of point
 * i. crop_out (may be NULL) receives the integer crop {x, y, w, h}.
 * Scratch comes from ex->arena and stays allocated: the caller resets the
 * arena between faces. FACENET_ERR_INVALID_ARGUMENT if the box leaves less
 * than one pixel inside the image or m is not a landmark model. */
facenet_status fn_landmarks(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                            const fn_face_box *box, fn_landmark_origin origin, float pts[2 * FN_LANDMARKS],
                            int crop_out[4], fn_error *e);

/* Landmarks that survive an in-plane rotation (roll) of the face, for the
 * similarity alignment. The network was trained on upright faces and loses
 * track of some rolled ones (at 20 degrees a few faces come out tens of
 * pixels off). So: run fn_landmarks (FN_ORIGIN_CROP); if the eye line is
 * rolled by more than FN_LANDMARKS_UPRIGHT_DEG, turn the box region upright
 * about the box centre (bilinear), run the network there and map the points
 * back; repeat while the network still saw a rolled face, at most
 * FN_LANDMARKS_UPRIGHT_PASSES times. Never used for face-api parity.
 * The numbers come from tests/unit/test_align.c (demo faces rotated by
 * +-20 degrees, mean disagreement with the upright face's points): plain
 * network 7.8 px; 10 degrees / 2 passes 2.5 px; 1 degree / 3 passes 0.5 px.
 * 1 degree is above the noise of the roll estimate (~0.4 degrees for half a
 * pixel of eye-centre error at 80 px between the eyes). Scratch comes from
 * ex->arena, as for fn_landmarks; the turned canvas is malloc'ed. */
#define FN_LANDMARKS_UPRIGHT_DEG 1.0
#define FN_LANDMARKS_UPRIGHT_PASSES 3
facenet_status fn_landmarks_upright(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                                    const fn_face_box *box, float pts[2 * FN_LANDMARKS], fn_error *e);

/* The same for n faces, each a box in its own image imgs[i] (the same image
 * for all the faces of a photo, usually): the network runs on up to
 * FN_LANDMARKS_BATCH faces at once, which costs far less than as many runs
 * of one. pts: n x 136 floats. Scratch comes from ex->arena and stays
 * allocated (a few MB per batch and pass): callers with many faces reset
 * the arena between calls of a few batches. */
#define FN_LANDMARKS_BATCH 8
facenet_status fn_landmarks_many(const facenet_model *m, const fn_exec *ex, const facenet_image *const *imgs,
                                 const fn_face_box *boxes, int n, fn_landmark_origin origin, float *pts,
                                 fn_error *e);
facenet_status fn_landmarks_upright_many(const facenet_model *m, const fn_exec *ex,
                                         const facenet_image *const *imgs, const fn_face_box *boxes, int n,
                                         float *pts, fn_error *e);

/* face-api's Box.clipAtImageBorders (fact sheet 0.2): clip the float box at
 * the image, then floor x, y, w and h separately; crop = {x, y, w, h} lies
 * inside the image. -1 if less than one pixel of the box is inside (or a
 * value is not finite). */
int fn_landmarks_crop(const fn_face_box *box, int img_w, int img_h, int crop[4]);

#endif
