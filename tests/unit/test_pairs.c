/*
 * test_pairs.c - the LFW pairs file reader (src/eval/pairs.c): both
 * layouts, image paths and their deduplication, the per-fold limit, and a
 * message with the line number for every kind of bad file. The real
 * pairs files are read too when the shared data is present.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "eval/pairs.h"

static facenet_eval_pairs *parse_ok(const char *text, const char *dir, int limit) {
    facenet_eval_pairs *p = NULL;
    fn_error e;
    facenet_status st = fn_pairs_parse("t.txt", text, strlen(text), dir, limit, &p, &e);
    if (st != FACENET_OK) fail_msg("parse failed: %s", e.msg);
    return p;
}

/* Parse must fail with status and a message containing want. */
static void parse_bad(const char *text, facenet_status status, const char *want) {
    facenet_eval_pairs *p = NULL;
    fn_error e;
    facenet_status st = fn_pairs_parse("t.txt", text, strlen(text), "d", 0, &p, &e);
    if (st != status || p || !strstr(e.msg, want))
        fail_msg("input:\n%s\nstatus %d (want %d), message '%s' (want '%s')", text, st, status, e.msg, want);
}

static const char VIEW2[] = "2\t2\n"
                            "Abel_Pacheco\t1\t4\n"
                            "Zico\t1\t2\n"
                            "Abel_Pacheco\t1\tJohn_O'Neil\t3\n"
                            "Zico\t2\tJean-Luc_D.\t1\n"
                            "Zico\t2\t3\n"
                            "Abel_Pacheco\t4\t1\n"
                            "Zico\t3\tAbel_Pacheco\t2\n"
                            "A\t10\tB\t100\n";

static void test_view2(void **state) {
    (void)state;
    facenet_eval_pairs *p = parse_ok(VIEW2, "lfw/", 0);
    assert_int_equal(p->view, 2);
    assert_int_equal(p->n_folds, 2);
    assert_int_equal(p->per_fold, 2);
    assert_int_equal(p->n_pairs, 8);
    const int want_fold[] = {0, 0, 0, 0, 1, 1, 1, 1};
    const int want_same[] = {1, 1, 0, 0, 1, 1, 0, 0};
    for (int i = 0; i < 8; i++) {
        assert_int_equal(p->pairs[i].fold, want_fold[i]);
        assert_int_equal(p->pairs[i].same, want_same[i]);
        assert_int_equal(p->pairs[i].line, i + 2);
    }
    /* Images in order of first use, each once; the trailing slash of the
     * folder is not doubled. */
    const char *want[] = {"Abel_Pacheco/Abel_Pacheco_0001.jpg",
                          "Abel_Pacheco/Abel_Pacheco_0004.jpg",
                          "Zico/Zico_0001.jpg",
                          "Zico/Zico_0002.jpg",
                          "John_O'Neil/John_O'Neil_0003.jpg",
                          "Jean-Luc_D./Jean-Luc_D._0001.jpg",
                          "Zico/Zico_0003.jpg",
                          "Abel_Pacheco/Abel_Pacheco_0002.jpg",
                          "A/A_0010.jpg",
                          "B/B_0100.jpg"};
    assert_int_equal(p->n_images, 10);
    for (int i = 0; i < 10; i++) {
        assert_string_equal(p->names[i], want[i]);
        assert_true(strncmp(p->images[i], "lfw/", 4) == 0);
        assert_string_equal(p->images[i] + 4, want[i]);
    }
    /* Pair 5 (Zico 2 3) reuses image 3, pair 6 (Abel 4 1) reuses 1 and 0. */
    assert_int_equal(p->pairs[4].image[0], 3);
    assert_int_equal(p->pairs[4].image[1], 6);
    assert_int_equal(p->pairs[5].image[0], 1);
    assert_int_equal(p->pairs[5].image[1], 0);
    fn_pairs_free(p);
}

static void test_view1_limit_crlf(void **state) {
    (void)state;
    const char *v1 = "3\r\n"
                     "A 1 2\r\n"
                     "B  1   2\r\n"
                     "C\t1 2\r\n"
                     "A 1 B 1\r\n"
                     "B 2 C 1\r\n"
                     "C 2 A 2"; /* no final newline */
    facenet_eval_pairs *p = parse_ok(v1, NULL, 0);
    assert_int_equal(p->view, 1);
    assert_int_equal(p->n_folds, 1);
    assert_int_equal(p->n_pairs, 6);
    assert_string_equal(p->images[0], "A/A_0001.jpg"); /* no folder: relative paths */
    fn_pairs_free(p);
    /* Limit 1: the first matched and first mismatched of each fold. */
    p = parse_ok(v1, "x", 1);
    assert_int_equal(p->n_pairs, 2);
    assert_int_equal(p->kept_per_fold, 1);
    assert_int_equal(p->pairs[0].same, 1);
    assert_int_equal(p->pairs[0].line, 2);
    assert_int_equal(p->pairs[1].same, 0);
    assert_int_equal(p->pairs[1].line, 5);
    assert_int_equal(p->n_images, 3); /* A1 A2 B1: images of dropped pairs are not listed */
    fn_pairs_free(p);
    p = parse_ok(VIEW2, "d", 1);
    assert_int_equal(p->n_pairs, 4);
    assert_int_equal(p->pairs[2].line, 6);
    assert_int_equal(p->pairs[3].line, 8);
    fn_pairs_free(p);
    /* A limit over the fold size keeps everything. */
    p = parse_ok(VIEW2, "d", 99);
    assert_int_equal(p->n_pairs, 8);
    fn_pairs_free(p);
}

static void test_errors(void **state) {
    (void)state;
    const facenet_status F = FACENET_ERR_FORMAT;
    parse_bad("", F, "t.txt: the file is empty");
    parse_bad("1 1\nA 1 2\nA 1 B 1 C\n", F, "t.txt line 3: expected 3 or 4 fields, found 5");
    parse_bad("1 1\nA 1\nA 1 B 1\n", F, "t.txt line 2: expected 3 or 4 fields, found 2");
    parse_bad("1 1 1\nA 1 2\nA 1 B 1\n", F, "t.txt line 1: expected the header");
    parse_bad("0 1\n", F, "line 1: the number of folds must be 1 to 100");
    parse_bad("101 1\n", F, "line 1: the number of folds");
    parse_bad("1 x\n", F, "line 1: the pairs per fold");
    parse_bad("-3\n", F, "line 1: the number of pairs must be 1 to");
    parse_bad("100 100000\n", FACENET_ERR_TOO_LARGE, "over the limit");
    parse_bad("1 2\nA 1 2\nA 1 B 1\nA 1 B 2\nA 2 B 2\n", F,
              "t.txt line 3: expected a matched pair (NAME N1 N2) in fold 1, found 4 fields");
    parse_bad("2\nA 1 2\nA 1 3\nA 1 B 1\nA 2 3\n", F,
              "t.txt line 5: expected a mismatched pair (NAME1 N1 NAME2 N2), "
              "found 3 fields");
    parse_bad("1 1\nA 1 2\nA 1 B 1\nC 1 2\n", F, "t.txt line 4: more lines than the header's 1 fold of 1");
    parse_bad("2 1\nA 1 2\nA 1 B 1\nC 1 2\n", F,
              "t.txt line 5: the file ends after 3 pairs; the header promises 4");
    parse_bad("1 1\nA 1 2\n\nA 1 B 1\n", F, "t.txt line 3: an empty line");
    parse_bad("1 1\nA 1 2\nA 1 B 1\n\n", F, "t.txt line 4: an empty line after the last pair");
    parse_bad("1 1\nA/x 1 2\nA 1 B 1\n", F, "line 2: 'A/x' is not a name");
    parse_bad("1 1\n.. 1 2\nA 1 B 1\n", F, "line 2: '..' is not a name");
    parse_bad("1 1\nA 1 2\nA 1 . 1\n", F, "line 3: '.' is not a name");
    parse_bad("1 1\nA 0 2\nA 1 B 1\n", F, "line 2: '0' is not an image number (1 to 9999)");
    parse_bad("1 1\nA 1 10000\nA 1 B 1\n", F, "'10000' is not an image number");
    parse_bad("1 1\nA 1 2x\nA 1 B 1\n", F, "'2x' is not an image number");
    parse_bad("1 1\nA 1 +2\nA 1 B 1\n", F, "'+2' is not an image number");
    parse_bad("1 1\nA 3 3\nA 1 B 1\n", F, "line 2: a matched pair of image 3 with itself");
    parse_bad("1 1\nA 1 2\nA 1 A 2\n", F, "line 3: a mismatched pair names the same person twice");
    /* NUL bytes and long lines, which strlen-based callers cannot write. */
    facenet_eval_pairs *p = NULL;
    fn_error e;
    const char nul[] = "1 1\nA\0 1 2\nA 1 B 1\n";
    assert_int_equal(fn_pairs_parse("t.txt", nul, sizeof nul - 1, "d", 0, &p, &e), F);
    assert_non_null(strstr(e.msg, "t.txt line 2: a NUL byte"));
    char *longl = malloc(3000);
    assert_non_null(longl);
    strcpy(longl, "1 1\nA 1 2\n");
    memset(longl + strlen(longl), 'x', 1100);
    strcpy(longl + 10 + 1100, " 1 B 1\n");
    assert_int_equal(fn_pairs_parse("t.txt", longl, strlen(longl), "d", 0, &p, &e), F);
    assert_non_null(strstr(e.msg, "t.txt line 3: longer than 1024 bytes"));
    /* A name over 255 bytes, within the line cap. */
    strcpy(longl, "1 1\nA 1 2\n");
    memset(longl + 10, 'n', 300);
    strcpy(longl + 310, " 1 B 1\n");
    assert_int_equal(fn_pairs_parse("t.txt", longl, strlen(longl), "d", 0, &p, &e), F);
    assert_non_null(strstr(e.msg, "t.txt line 3: a name longer than 255 bytes"));
    free(longl);
    assert_null(p);
}

static void test_load_public(void **state) {
    (void)state;
    facenet_ctx *ctx;
    assert_int_equal(facenet_ctx_create(NULL, &ctx), FACENET_OK);
    facenet_eval_pairs *p = NULL;
    assert_int_equal(facenet_eval_pairs_load(ctx, "/nonexistent/pairs.txt", "d", 0, &p), FACENET_ERR_IO);
    assert_non_null(strstr(facenet_ctx_error(ctx), "/nonexistent/pairs.txt: cannot open"));
    assert_null(p);
    char path[] = "/tmp/fn_pairs_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs(VIEW2, f);
    fclose(f);
    assert_int_equal(facenet_eval_pairs_load(ctx, path, "lfw", 0, &p), FACENET_OK);
    assert_int_equal(facenet_eval_pairs_view(p), 2);
    assert_int_equal(facenet_eval_pairs_folds(p), 2);
    assert_int_equal(facenet_eval_pairs_count(p), 8);
    assert_int_equal(facenet_eval_pairs_image_count(p), 10);
    assert_string_equal(facenet_eval_pairs_image(p, 2), "lfw/Zico/Zico_0001.jpg");
    assert_string_equal(facenet_eval_pairs_image_name(p, 2), "Zico/Zico_0001.jpg");
    assert_null(facenet_eval_pairs_image(p, 10));
    assert_null(facenet_eval_pairs_get(p, -1));
    assert_int_equal(facenet_eval_pairs_get(p, 7)->image[1], 9);
    facenet_eval_pairs_free(p);
    /* The message names the file as given. */
    f = fopen(path, "w");
    fputs("1 1\nA 1 2\nA 1 B 1 x\n", f);
    fclose(f);
    assert_int_equal(facenet_eval_pairs_load(ctx, path, "lfw", 0, &p), FACENET_ERR_FORMAT);
    char want[256];
    snprintf(want, sizeof want, "%s line 3: expected 3 or 4 fields, found 5", path);
    assert_string_equal(facenet_ctx_error(ctx), want);
    remove(path);
    facenet_ctx_free(ctx);
}

/* The real files, when the shared data is there. */
static void test_real_files(void **state) {
    (void)state;
    const char *dir = test_shared_path("data/lfw");
    if (!dir) {
        skip();
        return;
    }
    char d[4096], path[4200];
    snprintf(d, sizeof d, "%s", dir);
    facenet_eval_pairs *p = NULL;
    fn_error e;
    snprintf(path, sizeof path, "%s/pairs.txt", d);
    if (fn_pairs_load(path, d, 0, &p, &e) != FACENET_OK) fail_msg("%s", e.msg);
    assert_int_equal(p->view, 2);
    assert_int_equal(p->n_folds, 10);
    assert_int_equal(p->n_pairs, 6000);
    assert_int_equal(p->n_images, 7701);
    int same = 0;
    for (int i = 0; i < p->n_pairs; i++) same += p->pairs[i].same;
    assert_int_equal(same, 3000);
    assert_int_equal(p->pairs[5999].fold, 9);
    assert_string_equal(p->names[0], "Abel_Pacheco/Abel_Pacheco_0001.jpg");
    for (int i = 0; i < p->n_images; i += 97) assert_int_equal(access(p->images[i], R_OK), 0);
    fn_pairs_free(p);
    assert_int_equal(fn_pairs_load(path, d, 10, &p, &e), FACENET_OK);
    assert_int_equal(p->n_pairs, 200);
    assert_int_equal(p->n_images, 312);
    fn_pairs_free(p);
    snprintf(path, sizeof path, "%s/pairsDevTrain.txt", d);
    assert_int_equal(fn_pairs_load(path, d, 0, &p, &e), FACENET_OK);
    assert_int_equal(p->view, 1);
    assert_int_equal(p->n_pairs, 2200);
    fn_pairs_free(p);
    snprintf(path, sizeof path, "%s/pairsDevTest.txt", d);
    assert_int_equal(fn_pairs_load(path, d, 0, &p, &e), FACENET_OK);
    assert_int_equal(p->n_pairs, 1000);
    fn_pairs_free(p);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_view2),      cmocka_unit_test(test_view1_limit_crlf),
        cmocka_unit_test(test_errors),     cmocka_unit_test(test_load_public),
        cmocka_unit_test(test_real_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
