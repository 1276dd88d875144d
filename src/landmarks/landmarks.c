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
#include <stdlib.h>
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

/* Check the arguments common to every entry point. */
static facenet_status check(const facenet_model *m, const fn_exec *ex, fn_error *e) {
    if (!fn_landmark68_is(m))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "%s is a %s model, not a 68-point landmark network",
                       m ? m->path : "(no model)", m && m->arch ? m->arch->kind_name : "unknown");
    if (!ex || !ex->arena) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_landmarks: NULL argument");
    return FACENET_OK;
}

/* Steps 1-4 for n faces, FN_LANDMARKS_BATCH at a time through the network.
 * crops: n x 4 ints, or NULL. */
static facenet_status run_many(const facenet_model *m, const fn_exec *ex, const facenet_image *const *imgs,
                               const fn_face_box *boxes, int n, fn_landmark_origin origin, float *pts,
                               int *crops, fn_error *e) {
    const size_t per = (size_t)FN_LANDMARK68_INPUT * FN_LANDMARK68_INPUT * 3;
    const int cap = n < FN_LANDMARKS_BATCH ? n : FN_LANDMARKS_BATCH;
    float *in = fn_arena_floats(ex->arena, per * (size_t)cap);
    if (!in) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory preparing the landmark input");
    for (int first = 0; first < n; first += cap) {
        const int nb = n - first < cap ? n - first : cap;
        int c[FN_LANDMARKS_BATCH][4];
        for (int i = 0; i < nb; i++) {
            const facenet_image *img = imgs[first + i];
            const fn_face_box *box = &boxes[first + i];
            if (!img || !img->data || img->width <= 0 || img->height <= 0 ||
                (img->channels != 1 && img->channels != 3))
                return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                               "not an image: need 1 or 3 channels of 8-bit pixels");
            if (fn_landmarks_crop(box, img->width, img->height, c[i]) != 0)
                return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                               "face box %gx%g at (%g, %g) leaves less than a pixel inside the %dx%d image",
                               box->w, box->h, box->x, box->y, img->width, img->height);
            if (crops) memcpy(crops + 4 * (size_t)(first + i), c[i], sizeof c[i]);
            if (fn_to_input_rect(ex, img, c[i][0], c[i][1], c[i][2], c[i][3], FN_LANDMARK68_INPUT, 1,
                                 &LANDMARK_NORM, in + per * i) != 0)
                return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory preparing the landmark input");
        }
        float out[FN_LANDMARKS_BATCH * FN_LANDMARK68_OUTPUTS];
        const fn_tensor x = fn_tensor_make(nb, FN_LANDMARK68_INPUT, FN_LANDMARK68_INPUT, 3, in);
        facenet_status st = fn_landmark68_forward(m->net, ex, &x, out, e);
        if (st != FACENET_OK) return st;
        for (int i = 0; i < nb; i++) {
            const fn_face_box *box = &boxes[first + i];
            const double ox = origin == FN_ORIGIN_FACEAPI ? (double)box->x : (double)c[i][0];
            const double oy = origin == FN_ORIGIN_FACEAPI ? (double)box->y : (double)c[i][1];
            decode(out + (size_t)i * FN_LANDMARK68_OUTPUTS, c[i][2], c[i][3], ox, oy,
                   pts + (size_t)(first + i) * 2 * FN_LANDMARKS);
        }
    }
    return FACENET_OK;
}

facenet_status fn_landmarks(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                            const fn_face_box *box, fn_landmark_origin origin, float pts[2 * FN_LANDMARKS],
                            int crop_out[4], fn_error *e) {
    facenet_status st = check(m, ex, e);
    if (st != FACENET_OK) return st;
    if (!box || !pts) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_landmarks: NULL argument");
    int c[4];
    st = run_many(m, ex, &img, box, 1, origin, pts, c, e);
    if (st == FACENET_OK && crop_out) memcpy(crop_out, c, sizeof c);
    return st;
}

facenet_status fn_landmarks_many(const facenet_model *m, const fn_exec *ex, const facenet_image *const *imgs,
                                 const fn_face_box *boxes, int n, fn_landmark_origin origin, float *pts,
                                 fn_error *e) {
    facenet_status st = check(m, ex, e);
    if (st != FACENET_OK || n <= 0) return st;
    if (!imgs || !boxes || !pts) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_landmarks_many: NULL argument");
    return run_many(m, ex, imgs, boxes, n, origin, pts, NULL, e);
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
    if (!box || !pts) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_landmarks_upright: NULL argument");
    return fn_landmarks_upright_many(m, ex, &img, box, 1, pts, e);
}

/* Where face i stands in the upright passes. */
typedef struct upright {
    double cx, cy, mid, applied; /* box centre; canvas centre; rotation of the last input */
    double scale;                /* canvas pixels per image pixel */
    int side;                    /* canvas side; 0: the face takes no upright pass */
    fn_face_box cbox;            /* the box on the canvas */
} upright;

/* The largest canvas side, three times the network's input. The network
 * sees the box resized to 112 px anyway, and a canvas of the box's own size
 * (500 px for a large face) made the warp cost several times the network.
 * Three times keeps test_align's figures of the full-size canvas (0.50 px,
 * embedding distance 0.015 at +-20 degrees); twice gave 0.60 px and once
 * 0.75 px (the crop's pixels then meet the resize's grid unevenly). */
#define CANVAS_MAX (3 * FN_LANDMARK68_INPUT)

facenet_status fn_landmarks_upright_many(const facenet_model *m, const fn_exec *ex,
                                         const facenet_image *const *imgs, const fn_face_box *boxes, int n,
                                         float *pts, fn_error *e) {
    facenet_status st = fn_landmarks_many(m, ex, imgs, boxes, n, FN_ORIGIN_CROP, pts, e);
    if (st != FACENET_OK || n <= 0) return st;
    const double pi = 3.14159265358979323846, limit = FN_LANDMARKS_UPRIGHT_DEG * pi / 180;
    upright *u = calloc((size_t)n, sizeof *u);
    facenet_image *canvas = calloc((size_t)n, sizeof *canvas);
    const facenet_image **cimg = calloc((size_t)n, sizeof *cimg);
    fn_face_box *cbox = calloc((size_t)n, sizeof *cbox);
    int *who = calloc((size_t)n, sizeof *who);
    float *q = malloc(sizeof(float) * 2 * FN_LANDMARKS * (size_t)n);
    if (!u || !canvas || !cimg || !cbox || !who || !q) {
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for the upright landmark passes");
        goto out;
    }
    for (int i = 0; i < n; i++) {
        /* The box's square, turned about its centre, on a canvas just big
         * enough (scaled down to CANVAS_MAX); the box keeps its centre and
         * (scaled) size there, as a detector would box the upright face. A box far larger than the image (it
         * was accepted because part of it lies inside) would make a huge
         * canvas: such a face keeps its first pass. */
        const fn_face_box *b = &boxes[i];
        const double big = fmax(b->w, b->h);
        if (!(big <= 2.0 * (imgs[i]->width > imgs[i]->height ? imgs[i]->width : imgs[i]->height))) continue;
        u[i].cx = b->x + b->w / 2.0, u[i].cy = b->y + b->h / 2.0;
        u[i].scale = big > CANVAS_MAX ? CANVAS_MAX / big : 1.0;
        const double w = b->w * u[i].scale, h = b->h * u[i].scale;
        u[i].side = (int)ceil(big * u[i].scale) + 2;
        u[i].mid = u[i].side / 2.0;
        u[i].cbox = (fn_face_box){(float)(u[i].mid - w / 2.0), (float)(u[i].mid - h / 2.0), (float)w, (float)h,
                                  b->score};
    }
    for (int pass = 0; pass < FN_LANDMARKS_UPRIGHT_PASSES; pass++) {
        /* The faces whose last input still showed a roll, each turned by it. */
        int k = 0;
        for (int i = 0; i < n; i++) {
            float *p = pts + (size_t)i * 2 * FN_LANDMARKS;
            if (!u[i].side || fabs(remainder(roll_of(p) - u[i].applied, 2 * pi)) <= limit) continue;
            u[i].applied = roll_of(p);
            const double co = cos(-u[i].applied) * u[i].scale, si = sin(-u[i].applied) * u[i].scale;
            const double mid = u[i].mid;
            const fn_affine to_canvas = {
                {co, -si, mid - (co * u[i].cx - si * u[i].cy), si, co, mid - (si * u[i].cx + co * u[i].cy)}};
            st = fn_warp_affine(ex, imgs[i], &to_canvas, u[i].side, &canvas[k], e);
            if (st != FACENET_OK) goto out;
            cimg[k] = &canvas[k];
            cbox[k] = u[i].cbox;
            who[k++] = i;
        }
        if (k == 0) break;
        st = fn_landmarks_many(m, ex, cimg, cbox, k, FN_ORIGIN_CROP, q, e);
        for (int j = 0; j < k; j++) facenet_image_free(&canvas[j]);
        if (st != FACENET_OK) goto out;
        /* Back to the image: p = R(applied) (q - mid) / scale + c. */
        for (int j = 0; j < k; j++) {
            const upright *w = &u[who[j]];
            const double bc = cos(w->applied) / w->scale, bs = sin(w->applied) / w->scale;
            float *p = pts + (size_t)who[j] * 2 * FN_LANDMARKS;
            const float *r = q + (size_t)j * 2 * FN_LANDMARKS;
            for (int i = 0; i < FN_LANDMARKS; i++) {
                const double du = r[2 * i] - w->mid, dv = r[2 * i + 1] - w->mid;
                p[2 * i] = (float)(bc * du - bs * dv + w->cx);
                p[2 * i + 1] = (float)(bs * du + bc * dv + w->cy);
            }
        }
    }
out:
    free(u), free(canvas), free(cimg), free(cbox), free(who), free(q);
    return st;
}
