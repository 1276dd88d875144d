/*
 * calibration.c - reading a model file's int8 calibration: the range of
 * each value of the network that an int8 run stores as 8-bit integers.
 *
 * Each range is its own tensor, "int8/<value name>" (graph.h names the
 * values), F32 of shape [1]: beside the weights, validated by the same
 * reader, and a file without them is simply a float32-only model. A
 * value's per-channel mean, for bias correction, is "int8/<name>.mean",
 * F32 [channels]; a calibration written before there were means has none,
 * and its convolutions run uncorrected. What `facenet quantize` measured
 * is described in the "int8_calibration" metadata, for people; the runtime
 * reads only the tensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

int fn_calib_range(const fn_st_file *f, const char *path, const char *name, float *range, fn_error *e) {
    char tname[256];
    int n = snprintf(tname, sizeof tname, "%s%s", FN_CALIB_PREFIX, name);
    if (n < 0 || (size_t)n >= sizeof tname) {
        fn_fail(e, FACENET_ERR_INTERNAL, "int8 calibration name '%.64s...' is too long", name);
        return -1;
    }
    const fn_st_tensor *t = fn_st_find(f, tname);
    if (!t) return 0;
    if (t->dtype != FN_DTYPE_F32 || t->ndim != 1 || t->shape[0] != 1) {
        fn_fail(e, FACENET_ERR_MODEL, "%s: int8 calibration tensor '%s' must be F32 of shape [1], not %s of %d dims",
                path, tname, fn_dtype_name(t->dtype), t->ndim);
        return -1;
    }
    float v;
    if (fn_st_to_f32(t, &v, 1, e) != FACENET_OK) {
        fn_error_prefix(e, "%s", path);
        return -1;
    }
    if (!isfinite(v) || !(v > 0.0f) || v > FN_CALIB_MAX) {
        fn_fail(e, FACENET_ERR_MODEL, "%s: int8 calibration tensor '%s' holds %g, not a range in (0, %g]", path,
                tname, (double)v, (double)FN_CALIB_MAX);
        return -1;
    }
    *range = v;
    return 1;
}

int fn_calib_mean(const fn_st_file *f, const char *path, const char *name, int c, float **out, fn_error *e) {
    char tname[256];
    *out = NULL;
    int n = snprintf(tname, sizeof tname, "%s%s%s", FN_CALIB_PREFIX, name, FN_CALIB_MEAN_SUFFIX);
    if (n < 0 || (size_t)n >= sizeof tname) {
        fn_fail(e, FACENET_ERR_INTERNAL, "int8 calibration name '%.64s...' is too long", name);
        return -1;
    }
    const fn_st_tensor *t = fn_st_find(f, tname);
    if (!t) return 0;
    if (t->dtype != FN_DTYPE_F32 || t->ndim != 1 || t->shape[0] != c) {
        fn_fail(e, FACENET_ERR_MODEL, "%s: int8 calibration tensor '%s' must be F32 of shape [%d], not %s of %d dims",
                path, tname, c, fn_dtype_name(t->dtype), t->ndim);
        return -1;
    }
    float *m = malloc(sizeof(float) * (size_t)(c > 0 ? c : 1));
    if (!m) {
        fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", tname);
        return -1;
    }
    if (fn_st_to_f32(t, m, (size_t)c, e) != FACENET_OK) {
        fn_error_prefix(e, "%s", path);
        free(m);
        return -1;
    }
    for (int k = 0; k < c; k++)
        if (!isfinite(m[k]) || fabsf(m[k]) > FN_CALIB_MAX) {
            fn_fail(e, FACENET_ERR_MODEL, "%s: int8 calibration tensor '%s' holds %g at %d, not a mean in [-%g, %g]",
                    path, tname, (double)m[k], k, (double)FN_CALIB_MAX, (double)FN_CALIB_MAX);
            free(m);
            return -1;
        }
    *out = m;
    return 1;
}
