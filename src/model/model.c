/*
 * model.c - facenet_model_load(): open and validate a safetensors file,
 * check it is one of ours (metadata), and bind its weights to the network
 * named by its "architecture" key.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"
#include "nets/nets.h"

struct fn_owned {
    fn_owned *next;
    float data[];
};

static int meta_int(const fn_st_file *f, const char *key, int lo, int hi, int *out) {
    const char *v = fn_st_meta(f, key);
    if (!v || !*v) return 0;
    char *end;
    long x = strtol(v, &end, 10);
    if (*end || x < lo || x > hi) return 0;
    *out = (int)x;
    return 1;
}

static facenet_status model_open(const char *path, facenet_model **out, fn_error *e) {
    facenet_model *m = calloc(1, sizeof *m);
    if (!m) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory loading %s", path);
    snprintf(m->path, sizeof m->path, "%s", path);
    facenet_status st = fn_st_open(path, &m->file, e);
    if (st != FACENET_OK) {
        free(m);
        return st;
    }
    const char *arch = fn_st_meta(m->file, FN_META_ARCH);
    if (!arch) {
        st = fn_fail(e, FACENET_ERR_MODEL, "%s: no \"%s\" in the metadata; is this a facenet model file?",
                     path, FN_META_ARCH);
        goto fail;
    }
    m->arch = fn_arch_find(arch);
    m->ops = fn_net_ops_find(arch);
    if (!m->arch || !m->ops) {
        st = fn_fail(e, FACENET_ERR_UNSUPPORTED, "%s: architecture \"%s\" is not one this library runs",
                     path, arch);
        goto fail;
    }
    m->input_size = m->arch->input_size;
    if (fn_st_meta(m->file, FN_META_INPUT_SIZE) &&
        !meta_int(m->file, FN_META_INPUT_SIZE, 8, 4096, &m->input_size)) {
        st = fn_fail(e, FACENET_ERR_MODEL, "%s: metadata input_size \"%s\" is not a size from 8 to 4096", path,
                     fn_st_meta(m->file, FN_META_INPUT_SIZE));
        goto fail;
    }
    if (m->arch->kind == FN_ARCH_EMBEDDING) {
        m->embedding_dim = m->arch->embedding_size;
        if (fn_st_meta(m->file, FN_META_EMBEDDING_SIZE) &&
            !meta_int(m->file, FN_META_EMBEDDING_SIZE, 1, 65536, &m->embedding_dim)) {
            st = fn_fail(e, FACENET_ERR_MODEL, "%s: metadata embedding_size \"%s\" is not a valid size", path,
                         fn_st_meta(m->file, FN_META_EMBEDDING_SIZE));
            goto fail;
        }
    }
    st = m->ops->bind(m, &m->net, e);
    if (st != FACENET_OK) goto fail;
    *out = m;
    return FACENET_OK;
fail:
    facenet_model_free(m);
    return st;
}

facenet_status facenet_model_load(facenet_ctx *ctx, const char *path, facenet_model **out) {
    fn_error e;
    fn_error_clear(&e);
    if (!path || !out) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_model_load: NULL argument");
        return fn_ctx_report(ctx, &e);
    }
    *out = NULL;
    model_open(path, out, &e);
    return fn_ctx_report(ctx, &e);
}

void facenet_model_free(facenet_model *m) {
    if (!m) return;
    if (m->net && m->ops) m->ops->free(m->net);
    fn_owned *o = m->owned;
    while (o) {
        fn_owned *next = o->next;
        free(o);
        o = next;
    }
    fn_st_close(m->file);
    free(m);
}

const float *fn_model_weights(facenet_model *m, const char *name, int ndim, const int64_t *shape, fn_error *e) {
    const fn_st_tensor *t = fn_st_find(m->file, name);
    if (!t) {
        fn_fail(e, FACENET_ERR_MODEL, "%s: tensor '%s' is missing", m->path, name);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char want[128] = "", got[128] = "";
        for (int i = 0; i < ndim; i++)
            snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", i ? "," : "", (long long)shape[i]);
        for (int i = 0; i < t->ndim; i++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", i ? "," : "", (long long)t->shape[i]);
        fn_fail(e, FACENET_ERR_MODEL, "%s: tensor '%s' has shape [%s], the network needs [%s]", m->path, name, got,
                want);
        return NULL;
    }
    if (t->dtype == FN_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0) return t->data;
    if (t->nelem > (SIZE_MAX - sizeof(fn_owned)) / sizeof(float)) {
        fn_fail(e, FACENET_ERR_MODEL, "%s: tensor '%s' is too large", m->path, name);
        return NULL;
    }
    fn_owned *o = malloc(sizeof *o + t->nelem * sizeof(float));
    if (!o) {
        fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory converting tensor '%s'", name);
        return NULL;
    }
    if (fn_st_to_f32(t, o->data, t->nelem, e) != FACENET_OK) {
        free(o);
        fn_error_prefix(e, "%s", m->path);
        return NULL;
    }
    o->next = m->owned;
    m->owned = o;
    return o->data;
}

const char *facenet_model_meta(const facenet_model *m, const char *key) {
    return m && key ? fn_st_meta(m->file, key) : NULL;
}

const char *facenet_model_architecture(const facenet_model *m) { return m ? m->arch->name : NULL; }
int facenet_model_input_size(const facenet_model *m) { return m ? m->input_size : 0; }
int facenet_model_embedding_dim(const facenet_model *m) { return m ? m->embedding_dim : 0; }

float facenet_model_threshold(const facenet_model *m) {
    if (!m) return 0.0f;
    const char *v = fn_st_meta(m->file, FN_META_THRESHOLD);
    if (v && *v) {
        char *end;
        double t = strtod(v, &end);
        if (!*end && t > 0.0 && t < 4.0) return (float)t;
    }
    return m->arch->default_threshold;
}
