/*
 * fuzz_json.c - the JSON reader on arbitrary bytes: parse, walk the whole
 * tree checking its invariants, and parse again under a small memory budget
 * (chosen by the first byte) so the cleanup after a failed allocation at any
 * point is exercised too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

static void walk(const fn_json *v) {
    int64_t x;
    switch (v->type) {
    case FN_JSON_STRING:
        if (strlen(v->str) > v->str_len || !fn_utf8_valid(v->str, v->str_len)) abort();
        break;
    case FN_JSON_NUMBER:
        if (!v->num_text || !*v->num_text) abort();
        if (fn_json_int64(v, &x) && (double)x != v->number && x > -(1LL << 53) && x < (1LL << 53)) abort();
        break;
    case FN_JSON_ARRAY:
    case FN_JSON_OBJECT:
        if (v->count && !v->items) abort();
        for (size_t i = 0; i < v->count; i++) {
            /* Keys are unique, so lookup finds each member itself (checked
             * for the first few only: fn_json_get is linear). */
            if (v->type == FN_JSON_OBJECT && i < 8 && fn_json_get(v, v->keys[i]) != &v->items[i]) abort();
            if (v->items[i].line < v->line) abort();
            walk(&v->items[i]);
        }
        break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fn_error e;
    fn_json *root = fn_json_parse((const char *)data, size, &e);
    if (root) {
        walk(root);
        fn_json_free(root);
    } else if (e.status == FACENET_OK || !e.msg[0]) {
        abort(); /* every failure explains itself */
    }
    if (size) {
        root = fn_json_parse_limited((const char *)data, size, (size_t)data[0] * 64, &e);
        fn_json_free(root);
    }
    return 0;
}
