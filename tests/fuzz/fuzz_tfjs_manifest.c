/*
 * fuzz_tfjs_manifest.c - a TF.js manifest and its shard from arbitrary
 * bytes. Input layout: 2 bytes little-endian manifest length n (clamped to
 * what is there), n bytes of manifest JSON, and the rest is the shard, which
 * the loader returns for every path of every group.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/tfjs.h"

typedef struct blob {
    const uint8_t *p;
    size_t n;
} blob;

static facenet_status load(void *user, const char *path, uint8_t **data, size_t *len, fn_error *e) {
    const blob *b = user;
    if (!path || !*path || path[0] == '/') abort(); /* fn_tfjs_decode vets paths first */
    *data = malloc(b->n ? b->n : 1);
    if (!*data) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    if (b->n) memcpy(*data, b->p, b->n);
    *len = b->n;
    return FACENET_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 2) return 0;
    size_t n = (size_t)data[0] | (size_t)data[1] << 8;
    if (n > size - 2) n = size - 2;
    blob shard = {data + 2 + n, size - 2 - n};
    fn_tfjs_weights w;
    fn_error e;
    if (fn_tfjs_decode((const char *)data + 2, n, load, &shard, &w, &e) == FACENET_OK) {
        volatile uint32_t sink = 0;
        for (size_t i = 0; i < w.count; i++) {
            const fn_tfjs_weight *t = &w.w[i];
            if (!t->name || (t->dtype != FN_DTYPE_F32 && t->dtype != FN_DTYPE_I32)) abort();
            if (t->nelem && !t->data) abort();
            const uint8_t *p = t->data;
            for (size_t k = 0; k < t->nelem * 4; k++) sink += p[k];
        }
        (void)sink;
    } else if (!e.msg[0] || w.count || w.w) {
        abort();
    }
    fn_tfjs_weights_free(&w);
    return 0;
}
