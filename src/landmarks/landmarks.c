/*
 * landmarks.c - 68 landmarks for a detected face, the way face-api finds
 * them (fact sheet 0.2, 1.4 step 2 and 4.3):
 *
 *   1. crop = clipAtImageBorders(box): clip the float box at the image,
 *      then floor x, y, w and h separately;
 *   2. toBatchTensor(112, center): pad the crop to a square with black,
 *      the larger half after it, and resize it with TF's legacy bilinear;
 *      normalise (v - mean) / 255;
 *   3. run the landmark network;
 *   4. undo the padding and scaling: rel = (o * 112 - pad) / scaled_size,
 *      in float32 as TF computes it, then absolute = rel * crop size + origin.
 *
 * face-api adds the unclipped, unfloored box origin in step 4 although the
 * crop starts at the clipped, floored one, which puts the points up to a
 * pixel off (more when the box starts outside the image). FN_ORIGIN_FACEAPI
 * reproduces that for parity; FN_ORIGIN_CROP uses the crop's own origin.
 *
 * fn_landmarks_upright() wraps this for the similarity alignment: the
 * network was trained on upright faces, so a rolled face is turned upright
 * about its box centre (using the eye line of the previous pass) and run
 * again, and the points are turned back.
 */
#include <math.h>
#include <string.h>

#include "align/align.h"
#include "landmarks/landmarks.h"
#include "nets/landmark68.h"
#include "nets/preprocess.h"

/* face-api normalises the landmark input with the recognition net's mean. */
static const fn_norm LANDMARK_NORM = {{122.782f, 117.001f, 104.298f}, 255.0f};

int fn_landmarks_crop(const fn_face_box *box, int img_w, int img_h, int crop[4]) {
    const double x = box->x, y = box->y, w = box->w, h = box->h;
    if (!isfinite(x) || !isfinite(y) || !isfinite(w) || !isfinite(h) || img_w <= 0 || img_h <= 0) return -1;
    const double cx = x > 0 ? x : 0, cy = y > 0 ? y : 0;
    /* Decide in double before any conversion to int can overflow. */
    if (cx >= img_w || cy >= img_h) return -1;
    const double cw = fmin(x + w - cx, img_w - cx), ch = fmin(y + h - cy, img_h - cy);
    if (!(cw >= 1.0) || !(ch >= 1.0)) return -1;
    crop[0] = (int)floor(cx);
    crop[1] = (int)floor(cy);
    crop[2] = (int)floor(cw);
    crop[3] = (int)floor(ch);
    return 0;
}

/* Step 4 for one face: raw network outputs to absolute image points. */
static void decode(const float out[FN_LANDMARK68_OUTPUTS], int cw, int ch, double ox, double oy,
                   float pts[2 * FN_LANDMARKS]) {
    /* face-api computes the scaled size and the padding in double and hands
     * them to TF as float32 tensors; the rest is float32 arithmetic. */
    const double side = cw > ch ? cw : ch;
    const double iw_d = cw * (FN_LANDMARK68_INPUT / side), ih_d = ch * (FN_LANDMARK68_INPUT / side);
    const float iw = (float)iw_d, ih = (float)ih_d;
    const float px = (float)(iw_d < ih_d ? fabs(iw_d - ih_d) / 2 : 0.0);
    const float py = (float)(ih_d < iw_d ? fabs(iw_d - ih_d) / 2 : 0.0);
    const float in = (float)FN_LANDMARK68_INPUT;
    for (int i = 0; i < FN_LANDMARKS; i++) {
        const float rx = (out[2 * i] * in - px) / iw;
        const float ry = (out[2 * i + 1] * in - py) / ih;
        pts[2 * i] = (float)((double)rx * cw + ox);
        pts[2 * i + 1] = (float)((double)ry * ch + oy);
    }
}

facenet_status fn_landmarks(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                            const fn_face_box *box, fn_landmark_origin origin, float pts[2 * FN_LANDMARKS],
                            int crop_out[4], fn_error *e) {
    if (!fn_landmark68_is(m))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "%s is a %s model, not a 68-point landmark network",
                       m ? m->path : "(no model)", m && m->arch ? m->arch->kind_name : "unknown");
    if (!ex || !ex->arena || !box || !pts)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_landmarks: NULL argument");
    if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
        (img->channels != 1 && img->channels != 3))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "not an image: need 1 or 3 channels of 8-bit pixels");
    int c[4];
    if (fn_landmarks_crop(box, img->width, img->height, c) != 0)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "face box %gx%g at (%g, %g) leaves less than a pixel inside the %dx%d image", box->w,
                       box->h, box->x, box->y, img->width, img->height);
    if (crop_out) memcpy(crop_out, c, sizeof c);

    /* Cut the crop into scratch memory: fn_to_input wants a dense image. */
    const size_t row = (size_t)c[2] * img->channels, bytes = row * (size_t)c[3];
    uint8_t *buf = (uint8_t *)fn_arena_floats(ex->arena, (bytes + sizeof(float) - 1) / sizeof(float));
    float *in = fn_arena_floats(ex->arena, (size_t)FN_LANDMARK68_INPUT * FN_LANDMARK68_INPUT * 3);
    if (!buf || !in)
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for a %dx%d face crop", c[2], c[3]);
    for (int yy = 0; yy < c[3]; yy++)
        memcpy(buf + (size_t)yy * row, img->data + ((size_t)(c[1] + yy) * img->width + c[0]) * img->channels,
               row);
    const facenet_image crop = {c[2], c[3], img->channels, buf};
    if (fn_to_input(ex, &crop, FN_LANDMARK68_INPUT, 1, &LANDMARK_NORM, in) != 0)
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory preparing the landmark input");

    float out[FN_LANDMARK68_OUTPUTS];
    const fn_tensor x = fn_tensor_make(1, FN_LANDMARK68_INPUT, FN_LANDMARK68_INPUT, 3, in);
    facenet_status st = fn_landmark68_forward(m->net, ex, &x, out, e);
    if (st != FACENET_OK) return st;
    const double ox = origin == FN_ORIGIN_FACEAPI ? (double)box->x : (double)c[0];
    const double oy = origin == FN_ORIGIN_FACEAPI ? (double)box->y : (double)c[1];
    decode(out, c[2], c[3], ox, oy, pts);
    return FACENET_OK;
}

/* Roll of the face: the angle of the line from the left eye's centre to the
 * right eye's (radians; image y points down; 0 when upright). */
static double roll_of(const float pts[2 * FN_LANDMARKS]) {
    double lx = 0, ly = 0, rx = 0, ry = 0;
    for (int i = 0; i < 6; i++) {
        lx += pts[2 * (36 + i)], ly += pts[2 * (36 + i) + 1];
        rx += pts[2 * (42 + i)], ry += pts[2 * (42 + i) + 1];
    }
    return atan2(ry - ly, rx - lx);
}

facenet_status fn_landmarks_upright(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                                    const fn_face_box *box, float pts[2 * FN_LANDMARKS], fn_error *e) {
    facenet_status st = fn_landmarks(m, ex, img, box, FN_ORIGIN_CROP, pts, NULL, e);
    if (st != FACENET_OK) return st;
    /* The box's square, turned about its centre, on a canvas just big enough;
     * the box keeps its size and centre there, as a detector would box the
     * upright face. */
    const double big = fmax(box->w, box->h);
    /* A box far larger than the image (it was accepted because part of it
     * lies inside) would make a huge canvas: keep the first pass. */
    if (!(big <= 2.0 * (img->width > img->height ? img->width : img->height))) return FACENET_OK;
    const double cx = box->x + box->w / 2.0, cy = box->y + box->h / 2.0;
    const int side = (int)ceil(big) + 2;
    const double mid = side / 2.0;
    const fn_face_box cbox = {(float)(mid - box->w / 2.0), (float)(mid - box->h / 2.0), box->w, box->h,
                              box->score};
    const double limit = FN_LANDMARKS_UPRIGHT_DEG * 3.14159265358979323846 / 180;
    double applied = 0; /* rotation of the image the last points came from */
    for (int pass = 0; pass < FN_LANDMARKS_UPRIGHT_PASSES; pass++) {
        /* The roll the network saw in its last input. */
        if (fabs(remainder(roll_of(pts) - applied, 2 * 3.14159265358979323846)) <= limit) break;
        applied = roll_of(pts);
        const double co = cos(-applied), si = sin(-applied);
        const fn_affine to_canvas = {{co, -si, mid - (co * cx - si * cy), si, co, mid - (si * cx + co * cy)}};
        facenet_image canvas;
        st = fn_warp_affine(img, &to_canvas, side, &canvas, e);
        if (st != FACENET_OK) return st;
        float q[2 * FN_LANDMARKS];
        st = fn_landmarks(m, ex, &canvas, &cbox, FN_ORIGIN_CROP, q, NULL, e);
        facenet_image_free(&canvas);
        if (st != FACENET_OK) return st;
        /* Back to the image: p = R(applied) (q - mid) + c. */
        const double bc = cos(applied), bs = sin(applied);
        for (int i = 0; i < FN_LANDMARKS; i++) {
            const double u = q[2 * i] - mid, v = q[2 * i + 1] - mid;
            pts[2 * i] = (float)(bc * u - bs * v + cx);
            pts[2 * i + 1] = (float)(bs * u + bc * v + cy);
        }
    }
    return FACENET_OK;
}
