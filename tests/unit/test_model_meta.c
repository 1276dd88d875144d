/*
 * test_model_meta.c - facenet_model_set_meta(): a metadata entry changes,
 * the tensors do not, structural keys and bad thresholds are refused, and
 * facenet_model_threshold() reads what was written.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "facenet.h"
#include "testutil.h"

static char path[64];
static facenet_ctx *ctx;

/* Bytes from the end of the safetensors header (the tensor data). */
static uint8_t *data_section(const char *p, size_t *len) {
    size_t n;
    uint8_t *b = test_read_file(p, &n);
    assert_non_null(b);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | b[i];
    assert_true(8 + h <= n);
    *len = n - 8 - (size_t)h;
    uint8_t *d = malloc(*len ? *len : 1);
    memcpy(d, b + 8 + h, *len);
    free(b);
    return d;
}

static void test_threshold_round_trip(void **state) {
    (void)state;
    size_t before_len, after_len;
    uint8_t *before = data_section(path, &before_len);
    facenet_model *m = NULL;
    assert_int_equal(facenet_model_load(ctx, path, &m), FACENET_OK);
    const float old = facenet_model_threshold(m);
    assert_int_equal(facenet_model_set_meta(ctx, path, "threshold", "0.4321"), FACENET_OK);
    /* The model loaded before keeps its values (and its mapping). */
    assert_true(facenet_model_threshold(m) == old);
    facenet_model_free(m);
    assert_int_equal(facenet_model_load(ctx, path, &m), FACENET_OK);
    assert_close(facenet_model_threshold(m), 0.4321, 1e-6);
    assert_string_equal(facenet_model_meta(m, "threshold"), "0.4321");
    facenet_model_free(m);
    /* Replacing keeps one entry; a new key is added beside the others. */
    assert_int_equal(facenet_model_set_meta(ctx, path, "threshold", "0.5"), FACENET_OK);
    assert_int_equal(facenet_model_set_meta(ctx, path, "note", "tuned on LFW"), FACENET_OK);
    assert_int_equal(facenet_model_load(ctx, path, &m), FACENET_OK);
    assert_close(facenet_model_threshold(m), 0.5, 1e-6);
    assert_string_equal(facenet_model_meta(m, "note"), "tuned on LFW");
    assert_string_equal(facenet_model_architecture(m), "dlib_resnet29");
    facenet_model_free(m);
    uint8_t *after = data_section(path, &after_len);
    assert_int_equal(before_len, after_len);
    assert_memory_equal(before, after, before_len);
    free(before);
    free(after);
}

static void test_refusals(void **state) {
    (void)state;
    const char *bad[][2] = {{"architecture", "ssd_mobilenetv1"}, {"input_size", "64"},  {"embedding_size", "64"},
                            {"kind", "detector"},               {"threshold", "0"},    {"threshold", "-1"},
                            {"threshold", "4.5"},               {"threshold", "0.4x"}, {"threshold", ""},
                            {"", "x"}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        facenet_status st = facenet_model_set_meta(ctx, path, bad[i][0], bad[i][1]);
        if (st != FACENET_ERR_INVALID_ARGUMENT)
            fail_msg("key \"%s\" value \"%s\": status %d, want INVALID_ARGUMENT", bad[i][0], bad[i][1], (int)st);
        assert_true(strlen(facenet_ctx_error(ctx)) > 0);
    }
    assert_int_equal(facenet_model_set_meta(ctx, "/nonexistent/model.safetensors", "threshold", "0.4"),
                     FACENET_ERR_IO);
    assert_int_equal(facenet_model_set_meta(ctx, NULL, "threshold", "0.4"), FACENET_ERR_INVALID_ARGUMENT);
    /* A file that is not a model is left alone. */
    char junk[64] = "/tmp/facenet-meta-junk-XXXXXX";
    int fd = mkstemp(junk);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "not a model", 11), 11);
    close(fd);
    assert_int_not_equal(facenet_model_set_meta(ctx, junk, "threshold", "0.4"), FACENET_OK);
    size_t n;
    uint8_t *b = test_read_file(junk, &n);
    assert_int_equal(n, 11);
    free(b);
    unlink(junk);
}

int main(void) {
    const char *src = test_model_path("dlib_resnet29.safetensors");
    if (!src) return TEST_SKIP_CODE;
    snprintf(path, sizeof path, "/tmp/facenet-meta-XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return 1;
    size_t n;
    uint8_t *b = test_read_file(src, &n);
    if (!b || write(fd, b, n) != (ssize_t)n) return 1;
    close(fd);
    free(b);
    if (facenet_ctx_create(NULL, &ctx) != FACENET_OK) return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_round_trip),
        cmocka_unit_test(test_refusals),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    facenet_ctx_free(ctx);
    unlink(path);
    return rc;
}
