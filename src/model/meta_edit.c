/*
 * meta_edit.c - facenet_model_set_meta(): change one metadata entry of a
 * model file, keeping its tensors byte for byte.
 *
 * The file is read, and written anew beside itself and renamed over it
 * (fn_st_write), so a crash leaves either the old file or the new one, and
 * a process that has the old file mapped keeps reading the old contents.
 */
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "model/safetensors.h"
#include "nets/arch.h"

/* Keys that say what the tensors are: changing them would make the file
 * lie about its contents, so only the converter and the trainer write them. */
static int is_structural(const char *key) {
    static const char *const KEYS[] = {FN_META_FORMAT,     FN_META_FORMAT_VERSION, FN_META_ARCH,          FN_META_KIND,
                                       FN_META_INPUT_SIZE, FN_META_PREPROCESS,     FN_META_EMBEDDING_SIZE};
    for (size_t i = 0; i < sizeof KEYS / sizeof KEYS[0]; i++)
        if (strcmp(key, KEYS[i]) == 0) return 1;
    return 0;
}

static facenet_status check_value(const char *key, const char *value, fn_error *e) {
    if (strcmp(key, FN_META_THRESHOLD) == 0) {
        char *end;
        double t = strtod(value, &end);
        if (!*value || *end || !(t > 0.0 && t < 4.0))
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                           "threshold \"%s\" is not a distance between unit vectors (0 to 4)", value);
    }
    return FACENET_OK;
}

size_t fn_meta_with(const fn_st_file *f, const char *key, const char *value, const char **meta) {
    size_t m = 0;
    int replaced = 0;
    for (size_t i = 0; i < fn_st_meta_count(f); i++) {
        const char *k, *v;
        fn_st_meta_at(f, i, &k, &v);
        if (strcmp(k, key) == 0) {
            v = value;
            replaced = 1;
        }
        meta[2 * m] = k;
        meta[2 * m + 1] = v;
        m++;
    }
    if (!replaced) {
        meta[2 * m] = key;
        meta[2 * m + 1] = value;
        m++;
    }
    return m;
}

facenet_status facenet_model_set_meta(facenet_ctx *ctx, const char *path, const char *key, const char *value) {
    fn_error e;
    fn_error_clear(&e);
    fn_st_file *f = NULL;
    fn_st_entry *entries = NULL;
    const char **meta = NULL;
    if (!path || !key || !*key || !value) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_model_set_meta: NULL or empty argument");
        return fn_ctx_report(ctx, &e);
    }
    if (is_structural(key)) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "\"%s\" describes the tensors and cannot be changed", key);
        return fn_ctx_report(ctx, &e);
    }
    if (check_value(key, value, &e) != FACENET_OK) return fn_ctx_report(ctx, &e);
    if (fn_st_open(path, &f, &e) != FACENET_OK) return fn_ctx_report(ctx, &e);
    if (!fn_st_meta(f, FN_META_ARCH)) {
        fn_fail(&e, FACENET_ERR_MODEL, "%s: no \"%s\" in the metadata; is this a facenet model file?", path,
                FN_META_ARCH);
        goto done;
    }
    const size_t n = fn_st_count(f), n_meta = fn_st_meta_count(f);
    entries = calloc(n ? n : 1, sizeof *entries);
    meta = calloc(2 * (n_meta + 1), sizeof *meta);
    if (!entries || !meta) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory rewriting %s", path);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const fn_st_tensor *t = fn_st_at(f, i);
        entries[i] = (fn_st_entry){t->name, t->dtype, t->ndim, t->shape, t->data};
    }
    fn_st_write(path, entries, n, meta, fn_meta_with(f, key, value, meta), &e);
done:
    free(entries);
    free(meta);
    fn_st_close(f);
    return fn_ctx_report(ctx, &e);
}
