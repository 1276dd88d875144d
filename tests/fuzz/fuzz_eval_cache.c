/*
 * fuzz_eval_cache.c - the evaluator's cache reader on arbitrary bytes. It
 * must refuse a bad header with a message, and otherwise keep a prefix of
 * whole records: every record it hands out lies inside the data and holds
 * a valid name, flag and finite numbers, and reading just the prefix it
 * kept gives the same records again (so cutting a file there is safe).
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/cache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct walk {
    const uint8_t *data;
    size_t size;
    const fn_cache_header *h;
    int n;
    uint32_t digest; /* of the records seen, to compare two scans */
} walk;

static facenet_status visit(void *user, const fn_cache_record *r) {
    walk *w = user;
    const uint8_t *name = (const uint8_t *)r->name;
    if (name < w->data || r->name_len < 1 || r->name_len > FN_CACHE_MAX_NAME ||
        name + r->name_len > w->data + w->size)
        abort();
    if (r->embedding < name + r->name_len || r->embedding + 4 * (size_t)w->h->dim > w->data + w->size)
        abort();
    for (size_t i = 0; i < r->name_len; i++)
        if (name[i] < 0x20 || name[i] >= 0x7f) abort();
    if (r->entry.flags != FACENET_EVAL_FACE && r->entry.flags != FACENET_EVAL_FALLBACK) abort();
    if (r->entry.n_faces < 0 || r->entry.n_faces > 65535) abort();
    float v[FN_CACHE_MAX_DIM];
    fn_cache_floats(r->embedding, v, w->h->dim);
    for (uint32_t i = 0; i < w->h->dim; i++)
        if (!isfinite(v[i])) abort();
    for (int i = 0; i < 4; i++)
        if (!isfinite(r->entry.box[i])) abort();
    w->digest = fn_crc32(w->digest, r->name, r->name_len);
    w->digest = fn_crc32(w->digest, v, sizeof(float) * w->h->dim);
    w->n++;
    return FACENET_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fn_cache_header h;
    fn_error e;
    size_t end = 0;
    walk w = {data, size, &h, 0, 0};
    facenet_status st = fn_cache_scan(data, size, &h, visit, &w, &end, &e);
    if (st != FACENET_OK) {
        if (!e.msg[0] || end != 0) abort();
        return 0;
    }
    if (end < h.size || end > size || h.dim < 1 || h.dim > FN_CACHE_MAX_DIM) abort();
    if (h.key != (const char *)data + 20 || h.key_len < 1) abort();
    walk w2 = {data, end, &h, 0, 0};
    fn_cache_header h2;
    size_t end2 = 0;
    if (fn_cache_scan(data, end, &h2, visit, &w2, &end2, &e) != FACENET_OK) abort();
    if (end2 != end || w2.n != w.n || w2.digest != w.digest) abort();
    return 0;
}
