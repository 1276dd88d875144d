/*
 * fuzz_people.c - the people-list reader and the name patterns on arbitrary
 * bytes. A parse either fails with a message naming the file or yields a
 * list whose every invariant holds: sets and entries within their caps,
 * names that are safe folder names, counts >= 1, increasing line numbers.
 * The same bytes, up to the first newline, are tried as a name pattern,
 * and a pattern that checks out is matched against every parsed name.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fn_people *p = NULL;
    fn_error e;
    facenet_status st = fn_people_parse("fuzz.txt", (const char *)data, size, &p, &e);
    if (st == FACENET_OK) {
        if (!p || p->n < 1 || p->n_sets < 1 || p->n_sets > 100 || p->n > FN_PEOPLE_MAX_COUNT) abort();
        for (int i = 0; i < p->n; i++) {
            const fn_people_entry *q = &p->entries[i];
            if (!fn_identity_name_ok(q->name, strlen(q->name)) || q->count < 1) abort();
            if (q->line < 2 || (i && q->line <= p->entries[i - 1].line)) abort();
        }
    } else if (p || !e.msg[0] || strncmp(e.msg, "fuzz.txt", 8) != 0) {
        abort();
    }
    char pat[256];
    size_t n = 0;
    while (n < size && n < sizeof pat - 1 && data[n] != '\n' && data[n] != 0) {
        pat[n] = (char)data[n];
        n++;
    }
    pat[n] = '\0';
    if (fn_pattern_check(pat, &e) == FACENET_OK) {
        for (int i = 0; p && i < p->n; i++) (void)fn_pattern_match(pat, p->entries[i].name);
        (void)fn_pattern_match(pat, "s17");
    }
    fn_people_free(p);
    return 0;
}
