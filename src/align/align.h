/*
 * align.h - from 68 landmarks to the face chip the embedding network sees.
 *
 * Two modes:
 *   faceapi     exactly face-api's "dlib alignment": an axis-aligned square
 *               from the eye and mouth centres, clipped at the image border
 *               (fact sheet 1.4). No rotation. For parity.
 *   similarity  a least-squares similarity transform (rotation, uniform
 *               scale, translation) from landmark points to a canonical
 *               template, warped with bilinear sampling into a size x size
 *               chip framed like dlib's face chips (150 px, padding 0.25),
 *               the framing the ResNet was trained on. See docs/alignment.md.
 *
 *   fn_affine a;
 *   facenet_image chip;
 *   if (fn_align_similarity_transform(pts, 150, FN_ALIGN_PADDING, &a) == 0)
 *       fn_warp_affine(ex, img, &a, 150, &chip, &e); // chip: facenet_image_free()
 *
 *   int r[4];                                        // or face-api's crop:
 *   fn_align_faceapi_rect(pts, img->width, img->height, r);
 */
#ifndef FN_ALIGN_H
#define FN_ALIGN_H

#include "core/core.h"

/* dlib's padding for the face recognition ResNet's chips
 * (get_face_chip_details(shape, 150, 0.25)). */
#define FN_ALIGN_PADDING 0.25

/* ---- face-api mode (faceapi.c) */

/* face-api's descriptor crop: an integer rect {x, y, w, h} inside the image
 * (w or h is <= 0 only if the landmarks lie outside it). Leaves out one
 * quirk that needs the landmark crop (see fn_align_faceapi_rect_crop); the
 * two agree unless the face touches the image's left or top border. */
void fn_align_faceapi_rect(const float pts[136], int img_w, int img_h, int rect[4]);

/* Exactly face-api: crop_w, crop_h is the landmark crop the points were found
 * in (fn_landmarks' crop_out), which alignDlib uses to cap the square at
 * min(size, crop_w + x) by min(size, crop_h + y). */
void fn_align_faceapi_rect_crop(const float pts[136], int crop_w, int crop_h, int img_w, int img_h,
                                int rect[4]);

/* face-api's alignDlib rect before clipping at the image (golden
 * "align_rect"); it may extend past the right and bottom edges. */
void fn_align_faceapi_box(const float pts[136], int crop_w, int crop_h, int box[4]);

/* ---- similarity mode (similarity.c) */

/* A 2x3 affine map, dst = A * src + t: x' = m[0]x + m[1]y + m[2], y' = m[3]x + m[4]y + m[5]. */
typedef struct fn_affine {
    double m[6];
} fn_affine;

/* Least-squares similarity transform taking n points src to dst (Umeyama,
 * without reflection). Points are x, y pairs. Returns -1 if the points are
 * degenerate (n < 2, all src points equal, all dst points equal, or a value
 * is not finite). */
int fn_similarity_fit(const double *src, const double *dst, int n, fn_affine *out);

/* The transform from image coordinates to chip coordinates for a face with
 * these 68 landmarks: the template scaled to a size x size chip with the
 * given padding (fraction of the face size added on each side, dlib's 0.25),
 * fitted on the point set fn_align_points. Chip pixel (i, j) is the point
 * (i, j): pixel centres on integers, as in dlib. Returns -1 if the landmarks
 * are degenerate or size < 2. */
int fn_align_similarity_transform(const float pts[136], int size, double padding, fn_affine *out);

/* The same fitted on an explicit set of n landmark indices (each 17..67,
 * the points the template covers), for tuning the point set. */
int fn_align_similarity_transform_points(const float pts[136], const int *idx, int n, int size,
                                         double padding, fn_affine *out);

/* The landmark indices fitted by default, and how many there are. */
extern const int fn_align_points[];
extern const int fn_align_n_points;

/* The template position of landmark i in the unit square (before padding):
 * 0 and *x, *y set, or -1 if the template has no such point (jaw, 0..16). */
int fn_align_template(int i, double *x, double *y);

/* Jitter (test-time augmentation, as dlib's jitter_image does for its face
 * descriptors): the k-th of a fixed sequence of small perturbations of a
 * size x size chip, as a map from chip coordinates to the jittered chip's:
 * a turn of up to FN_JITTER_DEG degrees, a zoom of up to 1 / (1 -
 * FN_JITTER_ZOOM) and a shift of up to FN_JITTER_SHIFT of the side, about
 * the chip's centre. k = 0 is the identity; the sequence is the same in
 * every run. */
#define FN_JITTER_DEG 3.0
#define FN_JITTER_ZOOM 0.03
#define FN_JITTER_SHIFT 0.02
void fn_align_jitter(int size, int k, fn_affine *out);

/* out = second after first (out(p) = second(first(p))). */
void fn_affine_then(const fn_affine *first, const fn_affine *second, fn_affine *out);

/* Invert an affine map; -1 if it is singular. */
int fn_affine_invert(const fn_affine *a, fn_affine *inv);

/* Warp img into a size x size chip (same channels) through the inverse of
 * img_to_chip, bilinear; pixels outside the image are black. The chip is
 * allocated (free it with facenet_image_free). The rows are shared out over
 * ex's threads (fn_parallel_for), or computed on the calling thread if ex is
 * NULL; the chip is the same either way. */
struct fn_exec;
facenet_status fn_warp_affine(const struct fn_exec *ex, const facenet_image *img, const fn_affine *img_to_chip,
                              int size, facenet_image *chip, fn_error *e);

#endif
