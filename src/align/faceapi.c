/*
 * faceapi.c - face-api's "dlib alignment" (FaceLandmarks.alignDlib, fact
 * sheet 1.4 steps 3-4), kept exactly for parity with the original library.
 *
 * It is not dlib's alignment: no rotation, just an axis-aligned square
 * around the centres of the eyes and the mouth, sized from the eye-to-mouth
 * distance, then clipped at the image. Every floor is face-api's, and the
 * arithmetic is in double as JavaScript does it, so the integer rect comes
 * out the same.
 *
 * One quirk needs the landmark crop: face-api's landmarks object remembers
 * the size of the crop they were found in, and alignDlib limits the width
 * to min(size, crop_w + x) (the height likewise). That limit only bites
 * when the square's left (top) edge was clamped to 0 and the face is wider
 * (taller) than its crop, i.e. at the image's left or top border.
 * fn_align_faceapi_rect_crop() reproduces it; fn_align_faceapi_rect(),
 * which does not know the crop, leaves it out.
 */
#include <math.h>

#include "align/align.h"

/* face-api's constants: the square is eye-to-mouth distance / 0.45 wide,
 * with the centre of the three reference points at 50% across, 43% down. */
#define REL_SCALE 0.45
#define REL_X 0.5
#define REL_Y 0.43
/* Coordinates beyond this are not a face in an image we accept. */
#define BIG 1e8

/* Mean of points [first, last], summed in order as face-api's reduce does. */
static void centre(const float pts[136], int first, int last, double *x, double *y) {
    double sx = 0, sy = 0;
    for (int i = first; i <= last; i++) {
        sx += pts[2 * i];
        sy += pts[2 * i + 1];
    }
    const int n = last - first + 1;
    *x = sx / n;
    *y = sy / n;
}

void fn_align_faceapi_box(const float pts[136], int crop_w, int crop_h, int box[4]) {
    double lx, ly, rx, ry, mx, my;
    centre(pts, 36, 41, &lx, &ly); /* left eye */
    centre(pts, 42, 47, &rx, &ry); /* right eye */
    centre(pts, 48, 67, &mx, &my); /* mouth */
    /* Point.magnitude() is sqrt(x*x + y*y), not hypot(). */
    const double dl = sqrt((mx - lx) * (mx - lx) + (my - ly) * (my - ly));
    const double dr = sqrt((mx - rx) * (mx - rx) + (my - ry) * (my - ry));
    const double size = floor((dl + dr) / 2 / REL_SCALE);
    /* getCenterPoint of the three centres, again as a sum then a division. */
    const double cx = (lx + rx + mx) / 3, cy = (ly + ry + my) / 3;
    const double x = floor(fmax(0, cx - REL_X * size)), y = floor(fmax(0, cy - REL_Y * size));
    if (!(fabs(size) < BIG && fabs(x) < BIG && fabs(y) < BIG)) {
        /* NaN or absurd landmarks: an empty rect rather than an overflow. */
        box[0] = box[1] = box[2] = box[3] = 0;
        return;
    }
    box[0] = (int)x;
    box[1] = (int)y;
    box[2] = (int)fmin(size, crop_w + x);
    box[3] = (int)fmin(size, crop_h + y);
}

void fn_align_faceapi_rect_crop(const float pts[136], int crop_w, int crop_h, int img_w, int img_h,
                                int rect[4]) {
    int b[4];
    fn_align_faceapi_box(pts, crop_w, crop_h, b);
    /* clipAtImageBorders of an integer rect: x and y are already >= 0. */
    const int w = img_w - b[0] < b[2] ? img_w - b[0] : b[2];
    const int h = img_h - b[1] < b[3] ? img_h - b[1] : b[3];
    rect[0] = b[0];
    rect[1] = b[1];
    rect[2] = w;
    rect[3] = h;
}

void fn_align_faceapi_rect(const float pts[136], int img_w, int img_h, int rect[4]) {
    /* Without the crop, let the crop-size limit be one that never bites. */
    fn_align_faceapi_rect_crop(pts, img_w, img_h, img_w, img_h, rect);
}
