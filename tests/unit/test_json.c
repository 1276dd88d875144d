/*
 * test_json.c - the strict JSON reader: what it accepts and the tree it
 * builds, every kind of malformed input it must refuse (with status, line
 * and column), its limits, and its cleanup when memory runs out at each
 * allocation in turn.
 */
#include "testutil.h"

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/json.h"

static fn_json *parse_str(const char *s, fn_error *e) { return fn_json_parse(s, strlen(s), e); }

static void test_scalars(void **state) {
    (void)state;
    fn_error e;
    fn_json *v = parse_str(" true ", &e);
    assert_non_null(v);
    assert_int_equal(v->type, FN_JSON_BOOL);
    assert_int_equal(v->boolean, 1);
    fn_json_free(v);

    v = parse_str("null", &e);
    assert_non_null(v);
    assert_int_equal(v->type, FN_JSON_NULL);
    fn_json_free(v);

    v = parse_str("-12.5e-1", &e);
    assert_non_null(v);
    assert_int_equal(v->type, FN_JSON_NUMBER);
    assert_true(v->number == -1.25);
    assert_string_equal(v->num_text, "-12.5e-1");
    fn_json_free(v);

    /* Overflowing literals are numbers (infinite), as strtod reads them. */
    v = parse_str("1e999", &e);
    assert_non_null(v);
    assert_true(isinf(v->number));
    fn_json_free(v);

    v = parse_str("\"\"", &e);
    assert_non_null(v);
    assert_int_equal(v->type, FN_JSON_STRING);
    assert_int_equal(v->str_len, 0);
    assert_string_equal(v->str, "");
    fn_json_free(v);
}

static void test_tree(void **state) {
    (void)state;
    const char *doc = "{\n"
                      "  \"name\": \"conv/filters\",\n"
                      "  \"shape\": [3, 3, 32, 64],\n"
                      "  \"empty\": {}, \"none\": [],\n"
                      "  \"q\": {\"scale\": 0.5, \"min\": -1}\n"
                      "}\n";
    fn_error e;
    fn_json *root = parse_str(doc, &e);
    assert_non_null(root);
    assert_int_equal(root->type, FN_JSON_OBJECT);
    assert_int_equal(root->count, 5);
    assert_string_equal(root->keys[0], "name");
    assert_string_equal(root->keys[4], "q");
    assert_int_equal(root->line, 1);

    const fn_json *shape = fn_json_get(root, "shape");
    assert_non_null(shape);
    assert_int_equal(shape->type, FN_JSON_ARRAY);
    assert_int_equal(shape->count, 4);
    assert_int_equal(shape->line, 3);
    int64_t d;
    assert_true(fn_json_int64(&shape->items[3], &d));
    assert_int_equal(d, 64);

    const fn_json *empty = fn_json_get(root, "empty");
    assert_int_equal(empty->type, FN_JSON_OBJECT);
    assert_int_equal(empty->count, 0);
    assert_null(fn_json_get(empty, "x"));
    assert_int_equal(fn_json_get(root, "none")->count, 0);

    const fn_json *q = fn_json_get(root, "q");
    assert_true(fn_json_get(q, "scale")->number == 0.5);
    assert_int_equal(fn_json_get(q, "min")->line, 5);

    assert_null(fn_json_get(root, "missing"));
    assert_null(fn_json_get(shape, "name")); /* not an object */
    assert_null(fn_json_get(NULL, "name"));
    fn_json_free(root);
    fn_json_free(NULL);
}

static void test_strings(void **state) {
    (void)state;
    fn_error e;
    /* Escapes, a surrogate pair (U+1F600), raw multi-byte UTF-8, and \u0000
     * inside a value (kept, with str_len counting past it). */
    fn_json *v = parse_str("\"a\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\xe2\x82\xac\\u0000z\"", &e);
    assert_non_null(v);
    const char want[] = "a\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80\xe2\x82\xac\0z";
    assert_int_equal(v->str_len, sizeof want - 1);
    assert_memory_equal(v->str, want, sizeof want);
    fn_json_free(v);

    /* DEL and the largest code point are fine. */
    v = parse_str("\"\x7f\xf4\x8f\xbf\xbf\\udbff\\udfff\"", &e);
    assert_non_null(v);
    assert_int_equal(v->str_len, 9);
    fn_json_free(v);
}

typedef struct bad_case {
    const char *text;
    size_t len; /* 0: strlen */
    facenet_status status;
    const char *msg; /* expected substring */
} bad_case;

static void test_rejects(void **state) {
    (void)state;
    static const bad_case cases[] = {
        {"", 0, FACENET_ERR_FORMAT, "line 1, column 1: unexpected end of input"},
        {"   \n ", 0, FACENET_ERR_FORMAT, "line 2, column 2: unexpected end of input"},
        {"[1,2,]", 0, FACENET_ERR_FORMAT, "column 6: trailing comma"},
        {"{\"a\":1,}", 0, FACENET_ERR_FORMAT, "trailing comma before '}'"},
        {"[,1]", 0, FACENET_ERR_FORMAT, "unexpected ','"},
        {"[1 2]", 0, FACENET_ERR_FORMAT, "expected ',' or ']'"},
        {"[1", 0, FACENET_ERR_FORMAT, "unexpected end of input"},
        {"{\"a\" 1}", 0, FACENET_ERR_FORMAT, "expected ':'"},
        {"{1:2}", 0, FACENET_ERR_FORMAT, "expected a string key"},
        {"{\"a\":1 \"b\":2}", 0, FACENET_ERR_FORMAT, "expected ',' or '}'"},
        {"01", 0, FACENET_ERR_FORMAT, "leading zeros"},
        {"-01", 0, FACENET_ERR_FORMAT, "leading zeros"},
        {"1.", 0, FACENET_ERR_FORMAT, "after the decimal point"},
        {".5", 0, FACENET_ERR_FORMAT, "unexpected '.'"},
        {"+1", 0, FACENET_ERR_FORMAT, "unexpected '+'"},
        {"-", 0, FACENET_ERR_FORMAT, "expected a digit"},
        {"1e", 0, FACENET_ERR_FORMAT, "exponent"},
        {"1e+", 0, FACENET_ERR_FORMAT, "exponent"},
        {"NaN", 0, FACENET_ERR_FORMAT, "unexpected 'N'"},
        {"tru", 0, FACENET_ERR_FORMAT, "invalid literal"},
        {"True", 0, FACENET_ERR_FORMAT, "unexpected 'T'"},
        {"nul", 0, FACENET_ERR_FORMAT, "invalid literal"},
        {"\"abc", 0, FACENET_ERR_FORMAT, "column 1: unterminated string"},
        {"\"abc\\\"", 0, FACENET_ERR_FORMAT, "unterminated string"},
        {"\"a\x01"
         "b\"",
         0, FACENET_ERR_FORMAT, "column 3: control character 0x01"},
        {"\"a\tb\"", 0, FACENET_ERR_FORMAT, "control character 0x09"},
        {"\"\\x\"", 0, FACENET_ERR_FORMAT, "invalid escape"},
        {"\"\\u12\"", 0, FACENET_ERR_FORMAT, "4 hex digits"},
        {"\"\\u12g4\"", 0, FACENET_ERR_FORMAT, "4 hex digits"},
        {"\"\\ud800\"", 0, FACENET_ERR_FORMAT, "unpaired high surrogate"},
        {"\"\\ud800\\u0041\"", 0, FACENET_ERR_FORMAT, "unpaired high surrogate"},
        {"\"\\ud800\\ud800\"", 0, FACENET_ERR_FORMAT, "unpaired high surrogate"},
        {"\"\\udc00\"", 0, FACENET_ERR_FORMAT, "unpaired low surrogate"},
        {"\"\xc0\xaf\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"},         /* overlong '/' */
        {"\"\xe0\x80\xaf\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"},     /* overlong, 3 bytes */
        {"\"\xed\xa0\x80\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"},     /* encoded surrogate */
        {"\"\xf4\x90\x80\x80\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"}, /* above U+10FFFF */
        {"\"\xf5\x80\x80\x80\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"},
        {"\"\x80\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"},     /* stray continuation */
        {"\"\xe2\x82\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"}, /* truncated */
        {"\"\xff\"", 0, FACENET_ERR_FORMAT, "invalid UTF-8"},
        {"{\"a\":1,\"b\":2,\"a\":3}", 0, FACENET_ERR_FORMAT, "column 14: duplicate object key \"a\""},
        {"{\"a\\u0000b\":1}", 0, FACENET_ERR_FORMAT, "object key contains \\u0000"},
        {"[1] x", 0, FACENET_ERR_FORMAT, "unexpected 'x' after the end of the document"},
        {"[1]]", 0, FACENET_ERR_FORMAT, "after the end of the document"},
        {"1 2", 0, FACENET_ERR_FORMAT, "after the end of the document"},
        {"[1]\0", 4, FACENET_ERR_FORMAT, "byte 0x00 after the end"},
        {"[1,\0]", 5, FACENET_ERR_FORMAT, "unexpected byte 0x00"},
        {"\xef\xbb\xbf[]", 0, FACENET_ERR_FORMAT, "byte order mark"},
        {"[1,\n 2,\n ,3]", 0, FACENET_ERR_FORMAT, "line 3, column 2: unexpected ','"},
        {"\f[]", 0, FACENET_ERR_FORMAT, "unexpected byte 0x0c"}, /* not JSON whitespace */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_case *c = &cases[i];
        fn_error e;
        fn_error_clear(&e);
        fn_json *v = fn_json_parse(c->text, c->len ? c->len : strlen(c->text), &e);
        if (v) {
            fn_json_free(v);
            fail_msg("case %zu was accepted", i);
        }
        if (e.status != c->status || !strstr(e.msg, c->msg))
            fail_msg("case %zu: got status %d \"%s\", want %d \"...%s...\"", i, e.status, e.msg, c->status,
                     c->msg);
    }
}

/* Objects large enough to take the sorting path of duplicate detection. */
static void test_duplicate_keys_large(void **state) {
    (void)state;
    char doc[4096];
    size_t n = (size_t)snprintf(doc, sizeof doc, "{");
    for (int i = 0; i < 100; i++) n += (size_t)snprintf(doc + n, sizeof doc - n, "\"k%d\":%d,", i, i);
    snprintf(doc + n, sizeof doc - n, "\"k57\":0,\"k3\":1}");
    fn_error e;
    assert_null(parse_str(doc, &e));
    assert_int_equal(e.status, FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "duplicate object key \"k57\""));

    doc[n - 1] = '}'; /* drop the duplicates */
    doc[n] = '\0';
    fn_json *v = parse_str(doc, &e);
    assert_non_null(v);
    assert_int_equal(v->count, 100);
    assert_int_equal((int)fn_json_get(v, "k99")->number, 99);
    fn_json_free(v);
}

static void test_depth(void **state) {
    (void)state;
    char doc[2 * (FN_JSON_MAX_DEPTH + 1) + 1];
    for (int depth = FN_JSON_MAX_DEPTH; depth <= FN_JSON_MAX_DEPTH + 1; depth++) {
        size_t n = 0;
        for (int i = 0; i < depth; i++) doc[n++] = '[';
        for (int i = 0; i < depth; i++) doc[n++] = ']';
        fn_error e;
        fn_json *v = fn_json_parse(doc, n, &e);
        if (depth <= FN_JSON_MAX_DEPTH) {
            assert_non_null(v);
            fn_json_free(v);
        } else {
            assert_null(v);
            assert_int_equal(e.status, FACENET_ERR_TOO_LARGE);
            assert_non_null(strstr(e.msg, "nesting deeper than"));
        }
    }
    /* Objects count too. */
    char obj[FN_JSON_MAX_DEPTH * 8];
    size_t n = 0;
    for (int i = 0; i <= FN_JSON_MAX_DEPTH; i++) n += (size_t)snprintf(obj + n, sizeof obj - n, "{\"a\":");
    fn_error e;
    assert_null(fn_json_parse(obj, n, &e));
    assert_int_equal(e.status, FACENET_ERR_TOO_LARGE);
}

static void test_int64(void **state) {
    (void)state;
    static const struct {
        const char *text;
        int ok;
        int64_t value;
    } cases[] = {
        {"0", 1, 0},
        {"-0", 1, 0},
        {"42", 1, 42},
        {"9007199254740993", 1, 9007199254740993LL}, /* not a double */
        {"9223372036854775807", 1, INT64_MAX},
        {"-9223372036854775808", 1, INT64_MIN},
        {"9223372036854775808", 0, 0},
        {"-9223372036854775809", 0, 0},
        {"18446744073709551616", 0, 0},
        {"1.0", 0, 0},
        {"1e3", 0, 0},
        {"\"5\"", 0, 0},
        {"true", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fn_error e;
        fn_json *v = parse_str(cases[i].text, &e);
        assert_non_null(v);
        int64_t x = -7;
        int ok = fn_json_int64(v, &x);
        if (ok != cases[i].ok || (ok && x != cases[i].value))
            fail_msg("fn_json_int64(%s) = %d, %lld", cases[i].text, ok, (long long)x);
        fn_json_free(v);
    }
    assert_int_equal(fn_json_int64(NULL, NULL), 0);
}

/* A host program's locale must not change how "0.5" reads. */
static void test_locale(void **state) {
    (void)state;
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "de_DE", "fr_FR"};
    const char *set = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !set; i++) set = setlocale(LC_NUMERIC, names[i]);
    if (!set) printf("note: no comma-decimal locale installed; checking under the C locale only\n");
    fn_error e;
    fn_json *v = parse_str("[0.5, 1.25e1]", &e);
    setlocale(LC_NUMERIC, "C");
    assert_non_null(v);
    assert_true(v->items[0].number == 0.5);
    assert_true(v->items[1].number == 12.5);
    fn_json_free(v);
}

/* Run out of memory at every allocation in turn: each attempt must fail
 * cleanly (LeakSanitizer checks the cleanup) until the budget suffices. */
static void test_memory_budget(void **state) {
    (void)state;
    char doc[8192];
    size_t n = (size_t)snprintf(doc, sizeof doc, "{\"weights\":[");
    for (int i = 0; i < 60; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n,
                              "%s{\"name\":\"layer%d/w\",\"shape\":[%d,3],\"q\":%d.5}", i ? ",\n" : "", i, i,
                              i);
    n += (size_t)snprintf(doc + n, sizeof doc - n, "],\"k\":{");
    for (int i = 0; i < 40; i++)
        n += (size_t)snprintf(doc + n, sizeof doc - n, "%s\"m%d\":null", i ? "," : "", i);
    n += (size_t)snprintf(doc + n, sizeof doc - n, "}}");
    int failures = 0;
    size_t budget;
    for (budget = 0;; budget += 97) {
        fn_error e;
        fn_json *v = fn_json_parse_limited(doc, n, budget, &e);
        if (v) {
            assert_int_equal(fn_json_get(v, "weights")->count, 60);
            fn_json_free(v);
            break;
        }
        assert_int_equal(e.status, FACENET_ERR_TOO_LARGE);
        assert_non_null(strstr(e.msg, "bytes of memory"));
        size_t line, col;
        assert_int_equal(sscanf(e.msg, "line %zu, column %zu", &line, &col), 2);
        if (line < 1 || line > 60 || col < 1 || col > 100) fail_msg("bad position: %s", e.msg);
        failures++;
    }
    assert_true(failures > 10);
    assert_true(budget < 1000 * 1000);

    /* Hostile amplification: many tiny values against a small budget. */
    const size_t count = 1000 * 1000, len = 2 * count + 1;
    char *arr = malloc(len);
    assert_non_null(arr);
    arr[0] = '[';
    for (size_t k = 0; k < count; k++) {
        arr[1 + 2 * k] = '0';
        arr[2 + 2 * k] = k + 1 < count ? ',' : ']';
    }
    fn_error e;
    assert_null(fn_json_parse_limited(arr, len, 8u << 20, &e));
    assert_int_equal(e.status, FACENET_ERR_TOO_LARGE);
    fn_json *v = fn_json_parse(arr, len, &e);
    if (!v) fail_msg("%s", e.msg);
    assert_int_equal(v->count, count);
    fn_json_free(v);
    free(arr);
}

static void test_utf8_valid(void **state) {
    (void)state;
    assert_true(fn_utf8_valid("", 0));
    assert_true(fn_utf8_valid("abc\xc3\xa9\xf0\x9f\x98\x80", 9));
    assert_false(fn_utf8_valid("\xc3", 1));
    assert_false(fn_utf8_valid("\xed\xbf\xbf", 3));
    assert_false(fn_utf8_valid("\xc1\xbf", 2));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_tree),
        cmocka_unit_test(test_strings),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_duplicate_keys_large),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_int64),
        cmocka_unit_test(test_locale),
        cmocka_unit_test(test_memory_budget),
        cmocka_unit_test(test_utf8_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
