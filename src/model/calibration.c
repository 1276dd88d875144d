/*
 * calibration.c - reading a model file's int8 calibration: the range of
 * each value of the network that an int8 run stores as 8-bit integers.
 *
 * Each range is its own tensor, "int8/<value name>" (graph.h names the
 * values), F32 of shape [1]: beside the weights, validated by the same
 * reader, and a file without them is simply a float32-only model. What
 * `facenet quantize` measured is described in the "int8_calibration"
 * metadata, for people; the runtime reads only the tensors.
 */
#include <math.h>
#include <stdio.h>
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
