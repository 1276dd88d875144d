/*
 * fuzz_pairs.c - the LFW pairs reader on arbitrary bytes. A parse either
 * fails with a message or yields a pair set whose every invariant holds:
 * the header's counts, fold and kind by position, image indices in range,
 * each image listed once with its path built from the folder and its name.
 * The size picks a per-fold limit, so the limited paths are fuzzed too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/pairs.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const facenet_eval_pairs *p) {
    if (p->view != 1 && p->view != 2) abort();
    if (p->n_folds < 1 || p->kept_per_fold < 1 || p->kept_per_fold > p->per_fold) abort();
    if (p->n_pairs != p->n_folds * 2 * p->kept_per_fold) abort();
    for (int i = 0; i < p->n_pairs; i++) {
        const facenet_eval_pair *q = &p->pairs[i];
        const int k = i % (2 * p->kept_per_fold);
        if (q->fold != i / (2 * p->kept_per_fold) || q->same != (k < p->kept_per_fold)) abort();
        if (q->line < 2 || (i && q->line <= p->pairs[i - 1].line)) abort();
        for (int j = 0; j < 2; j++)
            if (q->image[j] < 0 || q->image[j] >= p->n_images) abort();
        if (q->same && q->image[0] == q->image[1]) abort();
    }
    for (int i = 0; i < p->n_images; i++) {
        const size_t n = strlen(p->names[i]), m = strlen(p->images[i]);
        if (m != n + 2 || strncmp(p->images[i], "d/", 2) || strcmp(p->images[i] + 2, p->names[i])) abort();
        if (n < 10 || strcmp(p->names[i] + n - 4, ".jpg") || !strchr(p->names[i], '/')) abort();
        /* The folder part is one name, never "." or "..". */
        const char *slash = strchr(p->names[i], '/');
        if (slash == p->names[i] || strchr(slash + 1, '/') ||
            strspn(p->names[i], ".") == (size_t)(slash - p->names[i]))
            abort();
        /* Listed once (checked pairwise for small sets only: quadratic). */
        for (int j = 0; j < i && p->n_images < 64; j++)
            if (strcmp(p->names[i], p->names[j]) == 0) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    facenet_eval_pairs *p = NULL;
    fn_error e;
    facenet_status st = fn_pairs_parse("fuzz.txt", (const char *)data, size, "d/", (int)(size % 4), &p, &e);
    if (st == FACENET_OK) {
        if (!p) abort();
        check(p);
        fn_pairs_free(p);
    } else if (p || !e.msg[0] || strncmp(e.msg, "fuzz.txt", 8) != 0) {
        abort(); /* every failure names the file */
    }
    return 0;
}
