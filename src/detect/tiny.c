/*
 * tiny.c - face detection with the tiny face detector, as face-api's
 * TinyYolov2Base.detect + TinyFaceDetector.locateFaces do it (fact sheet,
 * section 5):
 *
 *   1. pad the image to a square at the bottom/right, resize to s x s
 *      (legacy bilinear, s = input_size), x = (v - mean) / 255;
 *   2. run the network: a g x g grid (g = s/32) of 5 anchors x 5 values;
 *   3. score = sigmoid(t4); keep score > min_score; decode the box relative
 *      to the unpadded image: centre ((col + sigmoid(tx)) / g, ...) and size
 *      exp(tw) * anchor / g, both stretched by the padding correction;
 *   4. NMS: face-api sorts ascending and pops the best, dropping every box
 *      whose IoU with it is > 0.4, with no cap on the count. Among equal
 *      scores the later cell comes out first, so we sort that way;
 *   5. scale the relative box to image pixels.
 *
 * face-api decodes in JavaScript doubles from the float32 network output;
 * so do we, including its round trips through Box objects, so that boxes
 * agree with it to the last bits the network output allows.
 */
#include <math.h>
#include <stdlib.h>

#include "detect/detect.h"
#include "nets/preprocess.h"
#include "nets/tiny_face_detector.h"

typedef struct cand {
    double score;
    double x, y, w, h; /* relative to the image */
    int index;         /* (row * g + col) * anchors + anchor */
} cand;

static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index < b->index) - (a->index > b->index);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

facenet_status fn_detect_tiny(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                              const fn_detect_opts *o, fn_face_box *out, int cap, int *n, fn_error *e) {
    const fn_tiny_face_detector *net = m->net;
    const int size = o->input_size, g = fn_tiny_face_detector_cells(size);
    const int per_cell = FN_TINY_ANCHORS * FN_TINY_BOX, ncand_max = g * g * FN_TINY_ANCHORS;
    float *x = fn_arena_floats(ex->arena, (size_t)size * size * 3);
    fn_norm norm = {{0.0f, 0.0f, 0.0f}, 255.0f};
    for (int i = 0; i < 3; i++) norm.mean[i] = fn_tiny_face_detector_mean[i];
    if (!x || fn_to_input(ex, img, size, 0, &norm, x) != 0) goto oom;
    fn_tensor input = fn_tensor_make(1, size, size, 3, x);
    float *y = fn_arena_floats(ex->arena, (size_t)g * g * per_cell);
    /* Candidates (doubles and an int) live in float-sized arena slots. */
    const size_t cand_floats = (sizeof(cand) + sizeof(float) - 1) / sizeof(float);
    cand *c = (cand *)(void *)fn_arena_floats(ex->arena, (size_t)ncand_max * cand_floats);
    float *corners = fn_arena_floats(ex->arena, (size_t)ncand_max * 4);
    int *keep = (int *)(void *)fn_arena_floats(ex->arena, (size_t)ncand_max);
    _Static_assert(sizeof(int) == sizeof(float), "an int fits a float slot");
    if (!y || !c || !corners || !keep) goto oom;
    facenet_status st = fn_tiny_face_detector_forward(net, ex, &input, y, e);
    if (st != FACENET_OK) return st;

    /* computeReshapedDimensions: the image's size inside the s x s input;
     * the correction factors stretch boxes from the padded square back to
     * the image. A side that rounds to 0 px counts as 1 (face-api would
     * divide by zero). */
    const double sc = (double)size / (img->width > img->height ? img->width : img->height);
    double rw = floor(img->width * sc + 0.5), rh = floor(img->height * sc + 0.5);
    if (rw < 1.0) rw = 1.0;
    if (rh < 1.0) rh = 1.0;
    const double side = rw > rh ? rw : rh, corr_x = side / rw, corr_y = side / rh;

    int nc = 0;
    for (int row = 0; row < g; row++) {
        for (int col = 0; col < g; col++) {
            for (int a = 0; a < FN_TINY_ANCHORS; a++) {
                const int index = (row * g + col) * FN_TINY_ANCHORS + a;
                const float *t = y + (size_t)index * FN_TINY_BOX;
                const double score = sigmoid(t[4]);
                if (!(score > o->min_score)) continue;
                const double ct_x = ((col + sigmoid(t[0])) / g) * corr_x;
                const double ct_y = ((row + sigmoid(t[1])) / g) * corr_y;
                const double w = ((exp(t[2]) * fn_tiny_face_detector_anchors[a][0]) / g) * corr_x;
                const double h = ((exp(t[3]) * fn_tiny_face_detector_anchors[a][1]) / g) * corr_y;
                if (!isfinite(w) || !isfinite(h)) continue; /* exp overflow: no box to speak of */
                cand *k = &c[nc++];
                k->score = score;
                k->index = index;
                k->x = ct_x - w / 2;
                k->y = ct_y - h / 2;
                /* new BoundingBox(x, y, x + w, y + h) stores right - left. */
                k->w = (k->x + w) - k->x;
                k->h = (k->y + h) - k->y;
            }
        }
    }
    qsort(c, (size_t)nc, sizeof *c, cand_cmp);
    /* NMS runs on the boxes scaled to the input size (box.rescale(s)). */
    for (int k = 0; k < nc; k++) {
        const double bx = c[k].x * size, by = c[k].y * size;
        float *q = corners + 4 * (size_t)k;
        q[0] = (float)by;
        q[1] = (float)bx;
        q[2] = (float)(by + c[k].h * size);
        q[3] = (float)(bx + c[k].w * size);
    }
    const int kept = fn_nms_keep(corners, nc, o->iou, o->max_results, keep);
    const double W = img->width, H = img->height, inv_w = 1.0 / W, inv_h = 1.0 / H;
    int written = 0;
    for (int k = 0; k < kept && written < cap; k++) {
        const cand *b = &c[keep[k]];
        /* ObjectDetection rescales the relative box to the image; FaceDetection
         * takes it back to relative (x * (1/W)) and rescales it again. */
        fn_face_box f;
        f.x = (float)(b->x * W * inv_w * W);
        f.y = (float)(b->y * H * inv_h * H);
        f.w = (float)(b->w * W * inv_w * W);
        f.h = (float)(b->h * H * inv_h * H);
        f.score = (float)b->score;
        out[written++] = f;
    }
    *n = written;
    return FACENET_OK;
oom:
    return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory preparing a %dx%d image for the tiny detector",
                   img->width, img->height);
}
