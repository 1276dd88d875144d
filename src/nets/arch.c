/* arch.c - the table of known architectures (see arch.h). */
#include <string.h>

#include "nets/arch.h"

#define FACEAPI_MEAN "mean_rgb=122.782,117.001,104.298"

/* face-api's FaceMatcher threshold, 0.6 on raw descriptors, scaled by their
 * mean norm (1.45): a provisional value. Model files carry the threshold
 * the LFW evaluation derives, which takes precedence. */
#define RESNET29_THRESHOLD 0.41f

static const fn_arch_info ARCHS[] = {
    {"dlib_resnet29", FN_ARCH_EMBEDDING, "embedding", 150,
     "rgb; pad_square=center; resize=tf_bilinear_legacy; x=(v-" FACEAPI_MEAN ")/255", 128,
     RESNET29_THRESHOLD, "conv32_down/conv/filters", NULL, 0},
    /* Trained by facenet (train/net.c): no TF.js weights to recognise, and
     * no threshold of its own until an evaluation writes one. */
    {"facenet_small", FN_ARCH_EMBEDDING, "embedding", 64,
     "rgb; pad_square=center; resize=tf_bilinear_legacy; x=(v-" FACEAPI_MEAN ")/255", 128, 0.6f,
     "res128_down/conv1/conv/filters", NULL, 0},
    {"ssd_mobilenetv1", FN_ARCH_DETECTOR, "detector", 512,
     "rgb; pad_square=end; resize=tf_bilinear_legacy; x=v/127.5-1", 0, 0.0f, "Output/extra_dim", NULL, 0},
    {"face_landmark_68", FN_ARCH_LANDMARKS, "landmarks", 112,
     "rgb; pad_square=center; resize=tf_bilinear_legacy; x=(v-" FACEAPI_MEAN ")/255", 0, 0.0f,
     "dense3/conv0/depthwise_filter", NULL, 136},
    {"face_landmark_68_tiny", FN_ARCH_LANDMARKS, "landmarks", 112,
     "rgb; pad_square=center; resize=tf_bilinear_legacy; x=(v-" FACEAPI_MEAN ")/255", 0, 0.0f,
     "dense2/conv0/depthwise_filter", "dense3/conv0/depthwise_filter", 136},
    {"tiny_face_detector", FN_ARCH_DETECTOR, "detector", 416,
     "rgb; pad_square=end; resize=tf_bilinear_legacy; x=(v-mean_rgb=117.001,114.697,97.404)/255", 0,
     0.0f, "conv8/filters", NULL, 0},
};

size_t fn_arch_count(void) { return sizeof ARCHS / sizeof ARCHS[0]; }
const fn_arch_info *fn_arch_at(size_t i) { return i < fn_arch_count() ? &ARCHS[i] : NULL; }

const fn_arch_info *fn_arch_find(const char *name) {
    if (!name) return NULL;
    for (size_t i = 0; i < fn_arch_count(); i++)
        if (strcmp(ARCHS[i].name, name) == 0) return &ARCHS[i];
    return NULL;
}

static int has_name(const char *const *names, size_t n, const char *want) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], want) == 0) return 1;
    return 0;
}

const fn_arch_info *fn_arch_detect(const char *const *names, size_t n, int64_t fc_bias_dim) {
    for (size_t i = 0; i < fn_arch_count(); i++) {
        const fn_arch_info *a = &ARCHS[i];
        if (!has_name(names, n, a->has_tensor)) continue;
        if (a->lacks_tensor && has_name(names, n, a->lacks_tensor)) continue;
        if (a->fc_bias_dim && a->fc_bias_dim != fc_bias_dim) continue;
        return a;
    }
    return NULL;
}
