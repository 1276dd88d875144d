/*
 * preprocess.h - pixels to network input, as face-api's toBatchTensor does:
 * pad the image to a square with black (centred, or all at the bottom/right),
 * resize it to size x size with TF's legacy bilinear resize (skipped when it
 * already is that size), then normalise each channel as the network wants.
 */
#ifndef FN_PREPROCESS_H
#define FN_PREPROCESS_H

#include "core/core.h"
#include "engine/engine.h"

typedef struct fn_norm {
    float mean[3]; /* subtracted first */
    float div;     /* then divided by (a true division, as TF does) */
} fn_norm;

/* Fill dst (size*size*3 floats, NHWC for one batch item) from img (1 or 3
 * channels). center: split the padding between both sides, the larger half
 * after the image (face-api's padToSquare(img, true)); otherwise all of it
 * goes after. Uses a little scratch memory from ex->arena (no padded copy of
 * the image is made); 0, or -1 if out of memory. */
int fn_to_input(const fn_exec *ex, const facenet_image *img, int size, int center, const fn_norm *norm,
                float *dst);
/* The same for the rx, ry, rw x rh region of img, as if it had been cut out
 * first (no copy is made). -1 if the region does not lie inside img. */
int fn_to_input_rect(const fn_exec *ex, const facenet_image *img, int rx, int ry, int rw, int rh, int size,
                     int center, const fn_norm *norm, float *dst);

/* Test-time mirroring (FACENET_EMBED_FLIP), shared by the embedding API and
 * the trainer's validation so that both score the same vectors.
 * fn_mirror_inputs: rows nb .. 2nb-1 of x (NHWC, size x size x 3 each)
 * become the mirror images of rows 0 .. nb-1. fn_mirror_merge: out row i =
 * the mean of emb rows i and nb + i (dim floats each), back on the unit
 * sphere unless raw. */
void fn_mirror_inputs(float *x, int nb, int size);
void fn_mirror_merge(const float *emb, int nb, int dim, int raw, float *out);

#endif
