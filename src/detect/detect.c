/*
 * detect.c - the entry point of face detection: check the arguments once,
 * then hand the image to the detector the model's architecture names (SSD
 * MobileNetV1 in ssd.c, the tiny detector in tiny.c). Both follow face-api
 * 1.7.15 to the float so that their boxes can be checked against it.
 */
#include <string.h>

#include "detect/detect.h"

/* The tiny detector's input side: face-api takes any multiple of 32. Above
 * this the first layer alone needs over 64 MB, and faces gain nothing. */
#define TINY_MAX_INPUT 1024

static int is_arch(const facenet_model *m, const char *name) {
    return m && m->arch && m->arch->name && strcmp(m->arch->name, name) == 0;
}

fn_detect_opts fn_detect_default_opts(const facenet_model *m) {
    fn_detect_opts o;
    memset(&o, 0, sizeof o);
    o.min_score = 0.5f;
    if (is_arch(m, "tiny_face_detector")) {
        o.max_results = 0; /* face-api's tiny detector has no cap */
        o.iou = 0.4f;
        o.input_size = m->input_size > 0 ? m->input_size : 416;
    } else {
        o.max_results = 100;
        o.iou = 0.5f;
        o.input_size = 512;
    }
    return o;
}

facenet_status fn_detect(const facenet_model *m, const fn_exec *ex, const facenet_image *img,
                         const fn_detect_opts *opts, fn_face_box *out, int cap, int *n, fn_error *e) {
    if (n) *n = 0;
    if (!m || !ex || !ex->arena || !img || !n || (cap > 0 && !out))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_detect: NULL argument");
    if (!img->data || img->width <= 0 || img->height <= 0 || (img->channels != 1 && img->channels != 3))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "detect: the image must be %s with 1 or 3 channels",
                       img->data ? "non-empty" : "allocated");
    if (img->width > FACENET_MAX_IMAGE_SIDE || img->height > FACENET_MAX_IMAGE_SIDE ||
        (uint64_t)img->width * (uint64_t)img->height > FACENET_MAX_IMAGE_PIXELS)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "detect: a %dx%d image is over the size limit", img->width,
                       img->height);
    fn_detect_opts o = opts ? *opts : fn_detect_default_opts(m);
    if (!(o.min_score == o.min_score) || !(o.iou == o.iou))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "detect: min_score and iou must be numbers");
    const int ssd = is_arch(m, "ssd_mobilenetv1"), tiny = is_arch(m, "tiny_face_detector");
    if (!ssd && !tiny)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "detect: %s is a %s model, not a face detector",
                       m->path, m->arch ? m->arch->name : "unknown");
    if (tiny) {
        if (o.input_size <= 0) o.input_size = m->input_size;
        if (o.input_size % 32 != 0 || o.input_size > TINY_MAX_INPUT)
            return fn_fail(
                e, FACENET_ERR_INVALID_ARGUMENT,
                "detect: the tiny detector's input size must be a multiple of 32 from 32 to %d, not %d",
                TINY_MAX_INPUT, o.input_size);
    }
    if (cap <= 0) return FACENET_OK; /* nothing asked for: no need to run the network */
    return ssd ? fn_detect_ssd(m, ex, img, &o, out, cap, n, e)
               : fn_detect_tiny(m, ex, img, &o, out, cap, n, e);
}
