/*
 * nms.c - greedy non-maximum suppression, shared by both detectors.
 *
 * face-api's SSD accepts a candidate (taken in descending score order) when
 * its IoU with every box accepted so far is <= the threshold; its tiny
 * detector pops the best box and drops every remaining box whose IoU with it
 * exceeds the threshold. Both give the same set: a box survives exactly when
 * no better, surviving box overlaps it by more than the threshold. So one
 * loop serves both; only the sort order of ties differs, and the callers sort.
 *
 * The IoU is computed in double from the float corners, as face-api does in
 * JavaScript; a box of zero or negative area overlaps nothing (face-api SSD).
 * No scratch memory: kept boxes are compacted in place, or listed by index.
 */
#include "detect/detect.h"

static double iou(const float *a, const float *b) {
    /* Corners may come in either order (face-api orders them first). */
    const double ay0 = a[0] < a[2] ? a[0] : a[2], ay1 = a[0] < a[2] ? a[2] : a[0];
    const double ax0 = a[1] < a[3] ? a[1] : a[3], ax1 = a[1] < a[3] ? a[3] : a[1];
    const double by0 = b[0] < b[2] ? b[0] : b[2], by1 = b[0] < b[2] ? b[2] : b[0];
    const double bx0 = b[1] < b[3] ? b[1] : b[3], bx1 = b[1] < b[3] ? b[3] : b[1];
    const double area_a = (ay1 - ay0) * (ax1 - ax0), area_b = (by1 - by0) * (bx1 - bx0);
    /* The negated test also treats NaN areas as empty. */
    if (!(area_a > 0.0) || !(area_b > 0.0)) return 0.0;
    const double ih = (ay1 < by1 ? ay1 : by1) - (ay0 > by0 ? ay0 : by0);
    const double iw = (ax1 < bx1 ? ax1 : bx1) - (ax0 > bx0 ? ax0 : bx0);
    const double inter = (ih > 0.0 ? ih : 0.0) * (iw > 0.0 ? iw : 0.0);
    return inter / (area_a + area_b - inter);
}

double fn_box_iou(const float a[4], const float b[4]) { return iou(a, b); }

int fn_nms_keep(const float *corners, int n, float iou_max, int max_keep, int *keep) {
    int k = 0;
    for (int i = 0; i < n && (max_keep <= 0 || k < max_keep); i++) {
        int ok = 1;
        for (int j = k - 1; j >= 0 && ok; j--)
            ok = iou(corners + 4 * (size_t)i, corners + 4 * (size_t)keep[j]) <= iou_max;
        if (ok) keep[k++] = i;
    }
    return k;
}

int fn_nms(float *corners, float *scores, int n, float iou_max, int max_keep) {
    int k = 0;
    for (int i = 0; i < n && (max_keep <= 0 || k < max_keep); i++) {
        const float *c = corners + 4 * (size_t)i;
        int ok = 1;
        /* Kept boxes sit compacted at [0, k), and k <= i, so moving box i
         * down never overwrites a box not yet visited. */
        for (int j = k - 1; j >= 0 && ok; j--) ok = iou(c, corners + 4 * (size_t)j) <= iou_max;
        if (!ok) continue;
        if (k != i) {
            for (int t = 0; t < 4; t++) corners[4 * (size_t)k + t] = c[t];
            if (scores) scores[k] = scores[i];
        }
        k++;
    }
    return k;
}
