/*
 * fuzz_chip_cache.c - the chip cache reader on arbitrary bytes. A scan
 * either fails with a message or visits records that lie inside the data,
 * in order, each with a name of printable bytes and pixels only when it
 * says it has a face; valid_end never passes the end.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct span {
    const uint8_t *lo, *hi, *last;
} span;

static facenet_status visit(void *user, const fn_chipc_record *r) {
    span *s = user;
    const uint8_t *n = (const uint8_t *)r->name;
    if (n < s->lo || n + r->name_len > s->hi || n <= s->last || r->name_len == 0) abort();
    for (size_t i = 0; i < r->name_len; i++)
        if (n[i] < 0x20 || n[i] == 0x7f) abort();
    if ((r->pix != NULL) != ((r->flags & FN_CHIPC_FACE) != 0)) abort();
    s->last = n;
    return FACENET_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    span s = {data, data + size, NULL};
    size_t end = 0;
    int torn = 0;
    fn_error e;
    facenet_status st = fn_chipc_scan(data, size, 0, NULL, visit, &s, &end, &torn, &e);
    if (end > size) abort();
    if (st != FACENET_OK && !e.msg[0]) abort();
    /* With the size and key of the seed files (4 px, "k"): mismatches fail cleanly. */
    st = fn_chipc_scan(data, size, 4, "k", visit, &(span){data, data + size, NULL}, &end, &torn, &e);
    if (end > size || (st != FACENET_OK && !e.msg[0])) abort();
    return 0;
}
