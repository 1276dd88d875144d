/*
 * fuzz_safetensors.c - a model file image of arbitrary bytes: open it from
 * memory, then touch every tensor (lookup by name, conversion to float32
 * into a capped buffer) and every metadata pair, checking that what the
 * reader vouched for really lies inside the input. Tensors named like int8
 * calibration ranges ("int8/NAME") also go through the model loader's
 * check of them, which must accept only a positive finite range, and those
 * named like channel means ("int8/NAME.mean") through its check of a mean,
 * which must accept only finite values of the tensor's own length.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/safetensors.h"

#define CAP 4096 /* floats: bigger tensors must be refused by fn_st_to_f32 */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fn_st_file *f;
    fn_error e;
    if (fn_st_open_memory(data, size, &f, &e) != FACENET_OK) {
        if (!e.msg[0]) abort();
        return 0;
    }
    float *buf = malloc(CAP * sizeof *buf);
    if (!buf) abort();
    size_t total = 0;
    for (size_t i = 0; i < fn_st_count(f); i++) {
        const fn_st_tensor *t = fn_st_at(f, i);
        if (fn_st_find(f, t->name) != t) abort();
        const uint8_t *p = t->data;
        if (p < data || p > data + size || t->nbytes > (size_t)(data + size - p)) abort();
        if (t->nbytes != t->nelem * fn_dtype_size(t->dtype)) abort();
        total += t->nbytes;
        facenet_status st = fn_st_to_f32(t, buf, CAP, &e);
        if ((st == FACENET_OK) != (t->nelem <= CAP)) abort();
        const size_t nl = strlen(t->name), sl = strlen(FN_CALIB_MEAN_SUFFIX);
        if (strncmp(t->name, FN_CALIB_PREFIX, strlen(FN_CALIB_PREFIX)) == 0 && nl > sl &&
            strcmp(t->name + nl - sl, FN_CALIB_MEAN_SUFFIX) == 0 && t->ndim == 1 && t->shape[0] <= CAP) {
            char name[256];
            snprintf(name, sizeof name, "%.*s", (int)(nl - sl - strlen(FN_CALIB_PREFIX)),
                     t->name + strlen(FN_CALIB_PREFIX));
            float *m = NULL;
            int got = fn_calib_mean(f, "fuzz", name, (int)t->shape[0], &m, &e);
            if (strlen(name) + strlen(FN_CALIB_PREFIX) + sl + 1 < 256 &&
                (got == 0 || (got == 1 && !m) || (got < 0 && (m || !e.msg[0]))))
                abort();
            for (int k = 0; got == 1 && k < (int)t->shape[0]; k++)
                if (!(m[k] >= -FN_CALIB_MAX && m[k] <= FN_CALIB_MAX)) abort();
            free(m);
        } else if (strncmp(t->name, FN_CALIB_PREFIX, strlen(FN_CALIB_PREFIX)) == 0) {
            float r = -1.0f;
            int got = fn_calib_range(f, "fuzz", t->name + strlen(FN_CALIB_PREFIX), &r, &e);
            if (got == 0 || (got == 1 && !(r > 0.0f && r <= FN_CALIB_MAX)) || (got < 0 && !e.msg[0])) abort();
        }
    }
    if (total > size) abort();
    for (size_t i = 0; i < fn_st_meta_count(f); i++) {
        const char *k, *v;
        fn_st_meta_at(f, i, &k, &v);
        if (!k || !v || fn_st_meta(f, k) != v) abort();
    }
    free(buf);
    fn_st_close(f);
    return 0;
}
