/*
 * convert.c - facenet_convert_tfjs(): a TF.js weights manifest and its
 * shards in, one self-describing safetensors model file out.
 *
 * The manifest and every shard are read whole, under size caps, and handed
 * to fn_tfjs_decode(), which validates before it allocates. Weights keep
 * their TF.js names and manifest order; the architecture (named by the
 * caller or recognised from the tensor names) supplies the metadata that
 * lets facenet_model_load() bind the file to a network without guessing.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "model/tfjs.h"
#include "util/file.h"
#include "nets/arch.h"

#define MANIFEST_MAX ((size_t)16 << 20) /* bytes: real manifests are a few KiB */
#define SHARD_MAX ((size_t)1 << 30)     /* bytes: real shards are a few MiB */

static const char MANIFEST_SUFFIX[] = "-weights_manifest.json";

facenet_convert_params facenet_convert_default_params(void) {
    facenet_convert_params p;
    memset(&p, 0, sizeof p);
    return p;
}

/* A whole file of at most cap bytes, malloc'ed; errors name the file. */
static facenet_status read_capped(const char *path, size_t cap, uint8_t **out, size_t *out_len, fn_error *e) {
    facenet_status st = fn_read_file(path, cap, out, out_len, e);
    if (st != FACENET_OK) fn_error_prefix(e, "%s", path);
    return st;
}

typedef struct shard_dir {
    const char *dir; /* "" or a folder ending in '/' */
} shard_dir;

/* fn_tfjs_load_fn: shard paths are relative to the manifest's folder
 * (fn_tfjs_decode has checked that they stay inside it). */
static facenet_status load_shard(void *user, const char *shard_path, uint8_t **data, size_t *len,
                                 fn_error *e) {
    const shard_dir *sd = user;
    size_t dl = strlen(sd->dir), pl = strlen(shard_path);
    char *full = malloc(dl + pl + 1);
    if (!full) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    memcpy(full, sd->dir, dl);
    memcpy(full + dl, shard_path, pl + 1);
    facenet_status st = read_capped(full, SHARD_MAX, data, len, e);
    free(full);
    return st;
}

static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

static void known_archs(char *buf, size_t cap) {
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < fn_arch_count() && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%s", i ? ", " : "", fn_arch_at(i)->name);
}

static facenet_status pick_arch(const fn_tfjs_weights *w, const char *want, const char *manifest,
                                const fn_arch_info **out, fn_error *e) {
    char known[256];
    known_archs(known, sizeof known);
    if (want) {
        *out = fn_arch_find(want);
        if (!*out)
            return fn_fail(e, FACENET_ERR_NOT_FOUND, "unknown architecture \"%.100s\" (known: %s)", want,
                           known);
        return FACENET_OK;
    }
    const char **names = malloc((w->count ? w->count : 1) * sizeof *names);
    if (!names) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    int64_t fc_bias_dim = 0;
    for (size_t i = 0; i < w->count; i++) {
        names[i] = w->w[i].name;
        if (strcmp(w->w[i].name, "fc/bias") == 0 && w->w[i].ndim > 0)
            fc_bias_dim = w->w[i].shape[w->w[i].ndim - 1];
    }
    *out = fn_arch_detect(names, w->count, fc_bias_dim);
    free(names);
    if (!*out)
        return fn_fail(e, FACENET_ERR_UNSUPPORTED,
                       "%s: the weights match no known architecture (known: %s); "
                       "name one explicitly if you are sure",
                       manifest, known);
    return FACENET_OK;
}

static facenet_status convert(const char *manifest_path, const char *out_path,
                              const facenet_convert_params *p, fn_error *e) {
    uint8_t *text = NULL;
    size_t text_len = 0;
    char *dir = NULL, *model_id = NULL;
    fn_st_entry *entries = NULL;
    fn_tfjs_weights w = {0, NULL};
    facenet_status st = read_capped(manifest_path, MANIFEST_MAX, &text, &text_len, e);
    if (st != FACENET_OK) return st;

    const char *base = base_name(manifest_path);
    size_t dir_len = (size_t)(base - manifest_path); /* includes the '/' */
    dir = malloc(dir_len + 1);
    if (!dir) {
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    memcpy(dir, manifest_path, dir_len);
    dir[dir_len] = '\0';
    shard_dir sd = {dir};
    st = fn_tfjs_decode((const char *)text, text_len, load_shard, &sd, &w, e);
    if (st != FACENET_OK) {
        fn_error_prefix(e, "%s", manifest_path);
        goto done;
    }

    const fn_arch_info *arch;
    st = pick_arch(&w, p->architecture, manifest_path, &arch, e);
    if (st != FACENET_OK) goto done;
    if (p->threshold != 0.0f && (arch->kind != FN_ARCH_EMBEDDING || !(p->threshold > 0.0f && p->threshold < 4.0f))) {
        st = fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                     "a threshold (%g) is a distance in (0, 4) and belongs to an embedding model, not %s",
                     (double)p->threshold, arch->name);
        goto done;
    }

    if (p->model_id) {
        model_id = strdup(p->model_id);
    } else {
        size_t bl = strlen(base), sl = strlen(MANIFEST_SUFFIX);
        if (bl > sl && strcmp(base + bl - sl, MANIFEST_SUFFIX) == 0)
            bl -= sl;
        else if (bl > 5 && strcmp(base + bl - 5, ".json") == 0)
            bl -= 5;
        model_id = strndup(base, bl);
    }
    entries = calloc(w.count ? w.count : 1, sizeof *entries);
    if (!model_id || !entries) {
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    for (size_t i = 0; i < w.count; i++) {
        entries[i].name = w.w[i].name;
        entries[i].dtype = w.w[i].dtype;
        entries[i].ndim = w.w[i].ndim;
        entries[i].shape = w.w[i].shape;
        entries[i].data = w.w[i].data;
    }
    char input_size[24], emb_size[24], threshold[32];
    snprintf(threshold, sizeof threshold, "%.4f", (double)p->threshold);
    snprintf(input_size, sizeof input_size, "%d", arch->input_size);
    snprintf(emb_size, sizeof emb_size, "%d", arch->embedding_size);
    const char *meta[18];
    size_t nm = 0;
#define PUT(k, v) (meta[2 * nm] = (k), meta[2 * nm + 1] = (v), nm++)
    PUT(FN_META_FORMAT, "facenet");
    PUT(FN_META_FORMAT_VERSION, "1");
    PUT(FN_META_ARCH, arch->name);
    PUT(FN_META_KIND, arch->kind_name);
    PUT(FN_META_INPUT_SIZE, input_size);
    PUT(FN_META_PREPROCESS, arch->preprocess);
    if (arch->embedding_size) PUT(FN_META_EMBEDDING_SIZE, emb_size);
    PUT(FN_META_MODEL_ID, model_id);
    if (p->threshold > 0.0f) PUT(FN_META_THRESHOLD, threshold);
    PUT(FN_META_SOURCE, base);
#undef PUT
    st = fn_st_write(out_path, entries, w.count, meta, nm, e);
done:
    free(entries);
    free(model_id);
    fn_tfjs_weights_free(&w);
    free(dir);
    free(text);
    return st;
}

facenet_status facenet_convert_tfjs(facenet_ctx *ctx, const char *manifest_path, const char *out_path,
                                    const facenet_convert_params *params) {
    fn_error e;
    fn_error_clear(&e);
    if (!manifest_path || !out_path || !*manifest_path || !*out_path) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_convert_tfjs: missing manifest or output path");
        return fn_ctx_report(ctx, &e);
    }
    facenet_convert_params p = params ? *params : facenet_convert_default_params();
    facenet_status st = convert(manifest_path, out_path, &p, &e);
    if (st != FACENET_OK) return fn_ctx_report(ctx, &e);
    return FACENET_OK;
}
