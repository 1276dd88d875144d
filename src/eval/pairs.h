/*
 * pairs.h - the official LFW pairs files, read strictly.
 *
 * Two layouts exist (docs/evaluation.md):
 *   View 2, pairs.txt:   "F N" then F folds, each N matched lines
 *                        "NAME N1 N2" then N mismatched lines "NAME1 N1 NAME2 N2";
 *   View 1, pairsDev*:   "N" then N matched and N mismatched lines (one fold).
 * Image k of NAME is the file NAME/NAME_%04d.jpg under the image folder.
 *
 * Anything else is refused with the file name and line number
 * ("pairs.txt line 14: expected 3 or 4 fields, found 5"): a silently
 * misread pairs file would change the benchmark figure without a trace.
 *
 *   facenet_eval_pairs *p;
 *   fn_error e;
 *   if (fn_pairs_parse("pairs.txt", text, len, "lfw", 0, &p, &e) != FACENET_OK) puts(e.msg);
 *   for (int i = 0; i < p->n_pairs; i++) ... p->images[p->pairs[i].image[0]] ...
 *   fn_pairs_free(p);
 */
#ifndef FN_EVAL_PAIRS_H
#define FN_EVAL_PAIRS_H

#include <stddef.h>

#include "core/core.h"

/* Caps on what a pairs file may ask for. The official files need 10 folds of
 * 300 and 1100 (View 1); these leave room for other datasets in this format
 * while keeping every allocation bounded before it is made. */
#define FN_PAIRS_MAX_LINE 1024 /* bytes per line, without the newline */
#define FN_PAIRS_MAX_NAME 255 /* bytes per person name */
#define FN_PAIRS_MAX_IMAGE_NO 9999 /* image numbers are written with 4 digits */
#define FN_PAIRS_MAX_PER_FOLD 100000 /* N in the header */
#define FN_PAIRS_MAX_TOTAL 1000000 /* pairs in the whole file */
#define FN_PAIRS_MAX_FILE (64u << 20) /* bytes: a file this large is not a pairs file */

struct facenet_eval_pairs {
    int view; /* 2: "F N" header with folds; 1: "N" header, one fold */
    int n_folds; /* F, or 1 for View 1 */
    int per_fold; /* N: matched (and as many mismatched) pairs per fold in the file */
    int kept_per_fold; /* after the limit: matched (and mismatched) pairs kept per fold */
    int n_pairs; /* pairs kept */
    facenet_eval_pair *pairs;
    int n_images; /* distinct images of the kept pairs, in order of first use */
    char **images; /* DIR/NAME/NAME_0001.jpg (just NAME/... without a folder) */
    const char **names; /* the same strings past "DIR/": NAME/NAME_0001.jpg */
};

/* Parse the text of a pairs file. source names it in messages; image_dir
 * (may be NULL or "") prefixes the image paths. limit > 0 keeps only the
 * first limit matched and first limit mismatched pairs of each fold (the
 * whole file is still checked). */
facenet_status fn_pairs_parse(const char *source, const char *text, size_t len, const char *image_dir,
                              int limit, facenet_eval_pairs **out, fn_error *e);
/* Read and parse a file. */
facenet_status fn_pairs_load(const char *path, const char *image_dir, int limit, facenet_eval_pairs **out,
                             fn_error *e);
void fn_pairs_free(facenet_eval_pairs *p);

#endif /* FN_EVAL_PAIRS_H */
