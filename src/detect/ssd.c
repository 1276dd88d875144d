/*
 * ssd.c - face detection with the SSD MobileNetV1 model, as face-api's
 * SsdMobilenetv1.locateFaces does it (fact sheet, section 3):
 *
 *   1. pad the image to a square at the bottom/right, resize to 512 x 512
 *      (legacy bilinear), x = v/127.5 - 1;
 *   2. run the network: 5118 box encodings and class logits;
 *   3. score = sigmoid(logit of class 1); keep score > min_score, best first;
 *   4. decode only those candidates against their anchors, greedy NMS;
 *   5. map the normalised boxes back to image pixels.
 *
 * Steps 3-5 repeat TF.js's float32 arithmetic in its order, and face-api's
 * double arithmetic after it, so boxes agree with face-api to ~1e-4 px.
 */
#include <math.h>
#include <stdlib.h>

#include "detect/detect.h"
#include "nets/preprocess.h"
#include "nets/ssd_mobilenetv1.h"

typedef struct cand {
    float score;
    int index; /* anchor */
} cand;

/* Best score first; equal scores keep anchor order, as JavaScript's stable
 * sort leaves them. */
static int cand_cmp(const void *pa, const void *pb) {
    const cand *a = pa, *b = pb;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

void fn_ssd_decode_boxes(const float *anchors, const float *enc, int n, float *corners) {
    for (int i = 0; i < n; i++) {
        const float *a = anchors + 4 * (size_t)i, *t = enc + 4 * (size_t)i;
        /* Each step rounds to float32, as the TF.js graph's tensors do. */
        const float ha = a[2] - a[0], wa = a[3] - a[1];
        const float yc = a[0] + ha / 2.0f, xc = a[1] + wa / 2.0f;
        const float half_h = expf(t[2] / 5.0f) * ha / 2.0f;
        const float cy = t[0] / 10.0f * ha + yc;
        const float half_w = expf(t[3] / 5.0f) * wa / 2.0f;
        const float cx = t[1] / 10.0f * wa + xc;
        float *c = corners + 4 * (size_t)i;
        c[0] = cy - half_h;
        c[1] = cx - half_w;
        c[2] = cy + half_h;
        c[3] = cx + half_w;
    }
}

fn_face_box fn_ssd_box_to_image(const float corners[4], float score, int width, int height) {
    /* face-api's computeReshapedDimensions: the image's size inside the 512
     * square, rounded (JS Math.round); padX/padY undo the square padding.
     * A side that rounds to 0 px (aspect ratio over 1024:1) would divide by
     * zero in face-api; we count it as 1 px. */
    const double s = (double)FN_SSD_INPUT / (width > height ? width : height);
    double rw = floor(width * s + 0.5), rh = floor(height * s + 0.5);
    if (rw < 1.0) rw = 1.0;
    if (rh < 1.0) rh = 1.0;
    const double pad_x = FN_SSD_INPUT / rw, pad_y = FN_SSD_INPUT / rh;
    const double top = fmax(0.0, corners[0]) * pad_y, bottom = fmin(1.0, corners[2]) * pad_y;
    const double left = fmax(0.0, corners[1]) * pad_x, right = fmin(1.0, corners[3]) * pad_x;
    /* new Rect(left, top, right - left, bottom - top).rescale(W, H) */
    fn_face_box b;
    b.x = (float)(left * width);
    b.y = (float)(top * height);
    b.w = (float)((right - left) * width);
    b.h = (float)((bottom - top) * height);
    b.score = score;
    return b;
}

static float sigmoid(float x) { return (float)(1.0 / (1.0 + exp(-(double)x))); }

facenet_status fn_detect_ssd(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                             const fn_detect_opts *o, fn_face_box *out, int cap, int *n, fn_error *e) {
    const fn_ssd_mobilenetv1 *net = m->net;
    const size_t in_count = (size_t)FN_SSD_INPUT * FN_SSD_INPUT * 3;
    float *x = fn_arena_floats(ex->arena, in_count);
    /* v/127.5 first, then - 1: TF.js's two ops, rounded twice. */
    const fn_norm norm = {{0.0f, 0.0f, 0.0f}, 127.5f};
    if (!x || fn_to_input(ex, img, FN_SSD_INPUT, 0, &norm, x) != 0) goto oom;
    for (size_t i = 0; i < in_count; i++) x[i] -= 1.0f;
    fn_tensor input = fn_tensor_make(1, FN_SSD_INPUT, FN_SSD_INPUT, 3, x);

    float *enc = fn_arena_floats(ex->arena, (size_t)FN_SSD_ANCHORS * 4);
    float *logits = fn_arena_floats(ex->arena, (size_t)FN_SSD_ANCHORS * FN_SSD_CLASSES);
    _Static_assert(sizeof(cand) == 2 * sizeof(float), "cand packs into two floats");
    cand *c = (cand *)(void *)fn_arena_floats(ex->arena, (size_t)FN_SSD_ANCHORS * 2);
    float *corners = fn_arena_floats(ex->arena, (size_t)FN_SSD_ANCHORS * 4);
    float *scores = fn_arena_floats(ex->arena, FN_SSD_ANCHORS);
    if (!enc || !logits || !c || !corners || !scores) goto oom;
    facenet_status st = fn_ssd_mobilenetv1_forward(net, ex, &input, enc, logits, e);
    if (st != FACENET_OK) return st;

    int nc = 0;
    for (int a = 0; a < FN_SSD_ANCHORS; a++) {
        const float s = sigmoid(logits[(size_t)a * FN_SSD_CLASSES + 1]);
        if (s > o->min_score) c[nc++] = (cand){s, a};
    }
    qsort(c, (size_t)nc, sizeof *c, cand_cmp);
    const float *anchors = fn_ssd_mobilenetv1_anchors(net);
    for (int k = 0; k < nc; k++) {
        fn_ssd_decode_boxes(anchors + 4 * (size_t)c[k].index, enc + 4 * (size_t)c[k].index, 1,
                            corners + 4 * k);
        scores[k] = c[k].score;
    }
    const int kept = fn_nms(corners, scores, nc, o->iou, o->max_results);
    int written = 0;
    for (int k = 0; k < kept && written < cap; k++) {
        fn_face_box b = fn_ssd_box_to_image(corners + 4 * k, scores[k], img->width, img->height);
        /* A box wholly left of or above the image comes out with a negative
         * size, which face-api's Rect refuses by throwing; we drop it. */
        if (!(b.w >= 0.0f && b.h >= 0.0f)) continue;
        out[written++] = b;
    }
    *n = written;
    return FACENET_OK;
oom:
    return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory preparing a %dx%d image for the SSD detector",
                   img->width, img->height);
}
