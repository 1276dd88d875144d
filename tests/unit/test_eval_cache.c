/*
 * test_eval_cache.c - the evaluator's embedding cache (src/eval/cache.c):
 * records survive a reopen; a torn or corrupted tail is dropped and the file
 * cut back so appends continue cleanly; a cut-short header starts afresh;
 * foreign files, other settings and a second writer are refused.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#include "eval/cache.h"

#define DIM 128

typedef struct fixture {
    facenet_ctx *ctx;
    char dir[64];
    char sub[128];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f || facenet_ctx_create(NULL, &f->ctx) != FACENET_OK) return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/fn_cache_XXXXXX");
    if (!mkdtemp(f->dir)) return -1;
    /* A folder that does not exist yet, two levels down. */
    snprintf(f->sub, sizeof f->sub, "%s/a/b", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    facenet_ctx_free(f->ctx);
    free(f);
    return 0;
}

static void fill(float *v, int k) {
    for (int i = 0; i < DIM; i++) v[i] = (float)(k * 1000 + i) * 0.001f - 0.5f;
}

static facenet_eval_cache *open_ok(fixture *f, const char *key) {
    facenet_eval_cache *c = NULL;
    facenet_status st = facenet_eval_cache_open(f->ctx, f->sub, key, DIM, &c);
    if (st != FACENET_OK) fail_msg("open: %s", facenet_ctx_error(f->ctx));
    return c;
}

static void put3(facenet_eval_cache *c) {
    float v[DIM];
    const char *names[] = {"A/A_0001.jpg", "B/B_0002.jpg", "C/C_0003.jpg"};
    for (int k = 0; k < 3; k++) {
        facenet_eval_entry en = {k == 1 ? FACENET_EVAL_FALLBACK : FACENET_EVAL_FACE, k, {1.5f * k, 2, 3, 4}};
        fill(v, k);
        assert_int_equal(facenet_eval_cache_put(c, names[k], v, &en), FACENET_OK);
    }
}

static long file_size(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static void test_roundtrip(void **state) {
    fixture *f = *state;
    facenet_eval_cache *c = open_ok(f, "model=x; align=similarity");
    assert_int_equal(facenet_eval_cache_loaded(c), 0);
    assert_true(strstr(facenet_eval_cache_path(c), ".fnec") != NULL);
    put3(c);
    float v[DIM], want[DIM];
    facenet_eval_entry en;
    assert_int_equal(facenet_eval_cache_get(c, "B/B_0002.jpg", v, &en), 1); /* visible at once */
    assert_int_equal(facenet_eval_cache_get(c, "D/D_0001.jpg", v, &en), 0);
    facenet_eval_cache_close(c);

    c = open_ok(f, "model=x; align=similarity");
    assert_int_equal(facenet_eval_cache_loaded(c), 3);
    assert_int_equal(facenet_eval_cache_dropped(c), 0);
    for (int k = 0; k < 3; k++) {
        const char *names[] = {"A/A_0001.jpg", "B/B_0002.jpg", "C/C_0003.jpg"};
        assert_int_equal(facenet_eval_cache_get(c, names[k], v, &en), 1);
        fill(want, k);
        assert_memory_equal(v, want, sizeof v);
        assert_int_equal(en.flags, k == 1 ? FACENET_EVAL_FALLBACK : FACENET_EVAL_FACE);
        assert_int_equal(en.n_faces, k);
        assert_close(en.box[0], 1.5 * k, 0);
        assert_close(en.box[3], 4, 0);
    }
    /* A second record for an image replaces the first, now and on reopen. */
    fill(v, 9);
    en.flags = FACENET_EVAL_FACE;
    assert_int_equal(facenet_eval_cache_put(c, "A/A_0001.jpg", v, &en), FACENET_OK);
    facenet_eval_cache_close(c);
    c = open_ok(f, "model=x; align=similarity");
    assert_int_equal(facenet_eval_cache_loaded(c), 3);
    assert_int_equal(facenet_eval_cache_get(c, "A/A_0001.jpg", want, NULL), 1);
    assert_memory_equal(v, want, sizeof v);
    facenet_eval_cache_close(c);
}

static void test_torn_tail(void **state) {
    fixture *f = *state;
    facenet_eval_cache *c = open_ok(f, "k");
    char path[512];
    snprintf(path, sizeof path, "%s", facenet_eval_cache_path(c));
    put3(c);
    facenet_eval_cache_close(c);
    const long full = file_size(path);
    /* A kill in the middle of the last record's write. */
    assert_int_equal(truncate(path, full - 7), 0);
    c = open_ok(f, "k");
    assert_int_equal(facenet_eval_cache_loaded(c), 2);
    const size_t rec = 8 + strlen("C/C_0003.jpg") + 4 * (4 + DIM) + 4;
    assert_int_equal(facenet_eval_cache_dropped(c), rec - 7);
    assert_int_equal(file_size(path), full - (long)rec); /* cut back to whole records */
    assert_int_equal(facenet_eval_cache_get(c, "C/C_0003.jpg", NULL, NULL), 0);
    /* Appending after the cut gives a clean file again. */
    float v[DIM];
    fill(v, 2);
    facenet_eval_entry en = {FACENET_EVAL_FACE, 1, {0, 0, 1, 1}};
    assert_int_equal(facenet_eval_cache_put(c, "C/C_0003.jpg", v, &en), FACENET_OK);
    facenet_eval_cache_close(c);
    c = open_ok(f, "k");
    assert_int_equal(facenet_eval_cache_loaded(c), 3);
    assert_int_equal(facenet_eval_cache_dropped(c), 0);
    facenet_eval_cache_close(c);
    /* Garbage after the records is dropped too. */
    FILE *fp = fopen(path, "ab");
    fputs("garbage", fp);
    fclose(fp);
    c = open_ok(f, "k");
    assert_int_equal(facenet_eval_cache_loaded(c), 3);
    assert_int_equal(facenet_eval_cache_dropped(c), 7);
    facenet_eval_cache_close(c);
    /* A flipped bit in the middle record: it and everything after go. */
    fp = fopen(path, "r+b");
    long header = 20 + 1 + 4;
    fseek(fp, header + (long)rec + 40, SEEK_SET);
    int ch = fgetc(fp);
    fseek(fp, header + (long)rec + 40, SEEK_SET);
    fputc(ch ^ 0x10, fp);
    fclose(fp);
    c = open_ok(f, "k");
    assert_int_equal(facenet_eval_cache_loaded(c), 1);
    facenet_eval_cache_close(c);
}

static void test_header_cases(void **state) {
    fixture *f = *state;
    facenet_eval_cache *c = open_ok(f, "key-one");
    char path[512];
    snprintf(path, sizeof path, "%s", facenet_eval_cache_path(c));
    put3(c);
    /* A second open while the first holds the file. */
    facenet_eval_cache *c2 = NULL;
    assert_int_equal(facenet_eval_cache_open(f->ctx, f->sub, "key-one", DIM, &c2), FACENET_ERR_IO);
    assert_non_null(strstr(facenet_ctx_error(f->ctx), "in use by another run"));
    assert_null(c2);
    facenet_eval_cache_close(c);
    /* The same key with another embedding size. */
    assert_int_equal(facenet_eval_cache_open(f->ctx, f->sub, "key-one", 64, &c2), FACENET_ERR_FORMAT);
    assert_non_null(strstr(facenet_ctx_error(f->ctx), "other settings"));
    /* Another key has another file. */
    c = open_ok(f, "key-two");
    assert_int_equal(facenet_eval_cache_loaded(c), 0);
    char path2[512];
    snprintf(path2, sizeof path2, "%s", facenet_eval_cache_path(c));
    assert_string_not_equal(path, path2);
    facenet_eval_cache_close(c);
    /* A file whose header holds another key (as after a hash collision). */
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cp '%s' '%s'", path, path2);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(facenet_eval_cache_open(f->ctx, f->sub, "key-two", DIM, &c2), FACENET_ERR_FORMAT);
    assert_non_null(strstr(facenet_ctx_error(f->ctx), "key-one"));
    /* A create that was cut short in its header starts afresh. */
    assert_int_equal(truncate(path, 12), 0);
    c = open_ok(f, "key-one");
    assert_int_equal(facenet_eval_cache_loaded(c), 0);
    assert_int_equal(facenet_eval_cache_dropped(c), 12);
    facenet_eval_cache_close(c);
    assert_int_equal(file_size(path), 20 + 7 + 4);
    /* Not our file: refused, not overwritten. */
    FILE *fp = fopen(path, "wb");
    fputs("hello, world", fp);
    fclose(fp);
    assert_int_equal(facenet_eval_cache_open(f->ctx, f->sub, "key-one", DIM, &c2), FACENET_ERR_FORMAT);
    assert_non_null(strstr(facenet_ctx_error(f->ctx), "not a facenet evaluation cache"));
    assert_int_equal(file_size(path), 12);
    /* A damaged header checksum. */
    c = NULL;
    remove(path);
    c = open_ok(f, "key-one");
    facenet_eval_cache_close(c);
    fp = fopen(path, "r+b");
    fseek(fp, 22, SEEK_SET);
    fputc('X', fp);
    fclose(fp);
    assert_int_equal(facenet_eval_cache_open(f->ctx, f->sub, "key-one", DIM, &c2), FACENET_ERR_FORMAT);
    assert_non_null(strstr(facenet_ctx_error(f->ctx), "checksum"));
}

static void test_bad_puts(void **state) {
    fixture *f = *state;
    facenet_eval_cache *c = open_ok(f, "puts");
    float v[DIM];
    fill(v, 1);
    facenet_eval_entry en = {FACENET_EVAL_FACE, 1, {0, 0, 1, 1}};
    assert_int_equal(facenet_eval_cache_put(c, "", v, &en), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_eval_cache_put(c, "tab\there", v, &en), FACENET_ERR_INVALID_ARGUMENT);
    en.flags = FACENET_EVAL_FACE | FACENET_EVAL_FALLBACK;
    assert_int_equal(facenet_eval_cache_put(c, "x", v, &en), FACENET_ERR_INVALID_ARGUMENT);
    en.flags = FACENET_EVAL_FACE;
    v[5] = INFINITY;
    assert_int_equal(facenet_eval_cache_put(c, "x", v, &en), FACENET_ERR_INVALID_ARGUMENT);
    fill(v, 1);
    en.n_faces = 100000; /* clamped to what the file holds */
    assert_int_equal(facenet_eval_cache_put(c, "x", v, &en), FACENET_OK);
    assert_int_equal(facenet_eval_cache_get(c, "x", NULL, &en), 1);
    assert_int_equal(en.n_faces, 65535);
    facenet_eval_cache_close(c);
    facenet_eval_cache *c2 = NULL;
    assert_int_equal(facenet_eval_cache_open(f->ctx, f->sub, "", DIM, &c2), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_eval_cache_open(f->ctx, f->sub, "k", 0, &c2), FACENET_ERR_INVALID_ARGUMENT);
    /* The cache folder is a file. */
    char file[256];
    snprintf(file, sizeof file, "%s/plain", f->dir);
    FILE *fp = fopen(file, "w");
    fclose(fp);
    assert_int_equal(facenet_eval_cache_open(f->ctx, file, "k", DIM, &c2), FACENET_ERR_IO);
}

static void test_crc(void **state) {
    (void)state;
    /* The standard check value of CRC-32. */
    assert_int_equal(fn_crc32(0, "123456789", 9), 0xcbf43926u);
    assert_int_equal(fn_crc32(fn_crc32(0, "1234", 4), "56789", 5), 0xcbf43926u);
}

static facenet_status count_visit(void *user, const fn_cache_record *r) {
    (void)r;
    ++*(int *)user;
    return FACENET_OK;
}

/* The fuzz corpus files were written by a separate script from the format
 * described in cache.h: the reader must agree with that description. */
static void test_corpus_files(void **state) {
    (void)state;
    const char *files[] = {"valid_dim128.fnec", "torn_tail.fnec", "bad_crc_middle.fnec", "valid_dim4.fnec"};
    const int want[] = {3, 1, 1, 2};
    for (int i = 0; i < 4; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/fuzz/corpus/fuzz_eval_cache/%s", files[i]);
        size_t len;
        uint8_t *data = test_read_file(test_source_path(rel), &len);
        assert_non_null(data);
        fn_cache_header h;
        fn_error e;
        size_t end;
        int n = 0;
        assert_int_equal(fn_cache_scan(data, len, &h, count_visit, &n, &end, &e), FACENET_OK);
        assert_int_equal(n, want[i]);
        assert_true(i == 0 || i == 3 ? end == len : end < len);
        free(data);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_roundtrip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_torn_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_header_cases, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_puts, setup, teardown),
        cmocka_unit_test(test_crc),
        cmocka_unit_test(test_corpus_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
