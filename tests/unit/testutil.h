/*
 * testutil.h - helpers shared by the unit tests (cmocka): where the source
 * tree, models and shared data are, skipping with a message when something
 * optional is absent, reading files, and comparing float arrays.
 */
#ifndef FN_TESTUTIL_H
#define FN_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Exit status that CTest reports as "skipped". */
#define TEST_SKIP_CODE 77

/* $FACENET_SOURCE_DIR/rel (or ./rel): a static buffer, copy if kept. */
const char *test_source_path(const char *rel);
/* $FACENET_MODELS_DIR/rel, or NULL after printing why if it does not exist.
 * When FACENET_REQUIRE_MODELS=1, a missing model fails the test instead. */
const char *test_model_path(const char *rel);
/* $FACENET_SHARED_DIR/rel, or NULL after printing why if it does not exist. */
const char *test_shared_path(const char *rel);

/* Read a whole file (malloc'ed, NUL-terminated), or NULL. */
uint8_t *test_read_file(const char *path, size_t *len);

/* max |a-b|, and sum (a-b)^2 / sum b^2 (normalized squared error). */
double test_max_abs_diff(const float *a, const float *b, size_t n);
double test_nse(const float *a, const float *b, size_t n);

/* Deterministic pseudo-random floats in [lo, hi). */
void test_fill_random(float *x, size_t n, uint64_t seed, float lo, float hi);

/* Assert |a-b| <= tol with a readable message. */
#define assert_close(a, b, tol)                                                                        \
    do {                                                                                               \
        double _a = (a), _b = (b), _t = (tol);                                                         \
        if (!(_a - _b <= _t && _b - _a <= _t))                                                         \
            fail_msg("%s = %.9g, %s = %.9g, differ by more than %g", #a, _a, #b, _b, _t);            \
    } while (0)

#endif
