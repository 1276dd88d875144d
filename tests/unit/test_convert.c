/*
 * test_convert.c - TF.js manifests to model files: fn_tfjs_decode() on
 * synthetic manifests covering every stored dtype with hand-computed values
 * (including the double-precision dequantization and Math.round), every
 * manifest/shard inconsistency it must refuse, and facenet_convert_tfjs()
 * end to end through files in a scratch folder.
 */
#include "testutil.h"

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "model/tfjs.h"
#include "nets/arch.h"

/* ---------------------------------------------------------------- helpers */

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_f32(uint8_t *p, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    put_le(p, u, 4);
}

/* An in-memory shard store for fn_tfjs_decode(). */
typedef struct shard {
    const char *path;
    const uint8_t *data;
    size_t len;
} shard;
typedef struct store {
    const shard *shards;
    size_t n;
    int calls;
} store;

static facenet_status mem_load(void *user, const char *path, uint8_t **data, size_t *len, fn_error *e) {
    store *s = user;
    s->calls++;
    for (size_t i = 0; i < s->n; i++) {
        if (strcmp(s->shards[i].path, path) != 0) continue;
        *data = malloc(s->shards[i].len ? s->shards[i].len : 1);
        if (!*data) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        if (s->shards[i].len) memcpy(*data, s->shards[i].data, s->shards[i].len);
        *len = s->shards[i].len;
        return FACENET_OK;
    }
    return fn_fail(e, FACENET_ERR_IO, "%s: no such shard", path);
}

static facenet_status decode(const char *manifest, store *s, fn_tfjs_weights *w, fn_error *e) {
    fn_error_clear(e);
    return fn_tfjs_decode(manifest, strlen(manifest), mem_load, s, w, e);
}

static const fn_tfjs_weight *find(const fn_tfjs_weights *w, const char *name) {
    for (size_t i = 0; i < w->count; i++)
        if (strcmp(w->w[i].name, name) == 0) return &w->w[i];
    fail_msg("no weight '%s'", name);
    return NULL;
}

/* ---------------------------------------------------------------- decoding */

static const char MANIFEST[] =
    "[{\"paths\": [\"m.bin\"], \"weights\": [\n"
    " {\"name\": \"f32\", \"shape\": [2], \"dtype\": \"float32\"},\n"
    " {\"name\": \"i32\", \"shape\": [3], \"dtype\": \"int32\"},\n"
    " {\"name\": \"u8\", \"shape\": [2, 2], \"dtype\": \"float32\",\n"
    "  \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -1}},\n"
    " {\"name\": \"u8d\", \"shape\": [3], \"dtype\": \"float32\",\n"
    "  \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.1, \"min\": 0.2}},\n"
    " {\"name\": \"u8r\", \"shape\": [1], \"dtype\": \"float32\", \"quantization\":\n"
    "  {\"dtype\": \"uint8\", \"scale\": 0.0005260649557207145, \"min\": -0.07101876902229645}},\n"
    " {\"name\": \"u16\", \"shape\": [2], \"dtype\": \"float32\",\n"
    "  \"quantization\": {\"dtype\": \"uint16\", \"scale\": 0.25, \"min\": 10}},\n"
    " {\"name\": \"f16\", \"shape\": [3, 3], \"dtype\": \"float32\",\n"
    "  \"quantization\": {\"dtype\": \"float16\", \"original_dtype\": \"float32\"}},\n"
    " {\"name\": \"i32q\", \"shape\": [5], \"dtype\": \"int32\",\n"
    "  \"quantization\": {\"dtype\": \"uint8\", \"scale\": 0.5, \"min\": -2.5}},\n"
    " {\"name\": \"scalar\", \"shape\": [], \"dtype\": \"int32\",\n"
    "  \"quantization\": {\"dtype\": \"uint8\", \"scale\": 1, \"min\": 5118}},\n"
    " {\"name\": \"fscalar\", \"shape\": [], \"dtype\": \"float32\"},\n"
    " {\"name\": \"zero\", \"shape\": [0, 3], \"dtype\": \"float32\"},\n"
    " {\"name\": \"i32q16\", \"shape\": [1], \"dtype\": \"int32\",\n"
    "  \"quantization\": {\"dtype\": \"uint16\", \"scale\": 1, \"min\": -40000}}\n"
    "]},\n"
    "{\"paths\": [\"g1a.bin\", \"sub/g1b.bin\"], \"weights\": [\n"
    " {\"name\": \"split\", \"shape\": [3], \"dtype\": \"float32\", \"group\": \"ignored\"}\n"
    "]}]";

/* The shard of group 0: 8+12+4+3+1+4+18+5+1+4+0+2 = 62 bytes. */
static size_t make_shard(uint8_t *b) {
    size_t o = 0;
    put_f32(b + o, 1.5f), o += 4;
    put_f32(b + o, -2.25f), o += 4;
    put_le(b + o, 7, 4), o += 4;
    put_le(b + o, (uint32_t)-1, 4), o += 4;
    put_le(b + o, 2147483647u, 4), o += 4;
    const uint8_t u8[] = {0, 1, 2, 255, 11, 0, 3, 2};
    memcpy(b + o, u8, sizeof u8), o += sizeof u8; /* u8: 4, u8d: 3, u8r: 1 */
    put_le(b + o, 0, 2), o += 2;
    put_le(b + o, 65535, 2), o += 2;
    const uint16_t h[9] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x3555};
    for (int i = 0; i < 9; i++) put_le(b + o, h[i], 2), o += 2;
    const uint8_t q[] = {0, 1, 2, 6, 5};
    memcpy(b + o, q, sizeof q), o += sizeof q;
    b[o++] = 0;                   /* scalar */
    put_f32(b + o, 3.0f), o += 4; /* fscalar; zero takes nothing */
    put_le(b + o, 65535, 2), o += 2;
    return o;
}

static void test_decode_values(void **state) {
    (void)state;
    uint8_t m[128], g1[12];
    size_t mlen = make_shard(m);
    assert_int_equal(mlen, 62);
    put_f32(g1, 0.25f);
    put_f32(g1 + 4, -8.0f);
    put_f32(g1 + 8, 1e-3f);
    const shard shards[] = {{"m.bin", m, mlen}, {"g1a.bin", g1, 6}, {"sub/g1b.bin", g1 + 6, 6}};
    store s = {shards, 3, 0};
    fn_tfjs_weights w;
    fn_error e;
    if (decode(MANIFEST, &s, &w, &e) != FACENET_OK) fail_msg("%s", e.msg);
    assert_int_equal(s.calls, 3);
    assert_int_equal(w.count, 13);
    static const char *const order[] = {"f32",  "i32",    "u8",      "u8d",  "u8r",    "u16",  "f16",
                                        "i32q", "scalar", "fscalar", "zero", "i32q16", "split"};
    for (size_t i = 0; i < w.count; i++) assert_string_equal(w.w[i].name, order[i]);

    const fn_tfjs_weight *t = find(&w, "f32");
    assert_int_equal(t->dtype, FN_DTYPE_F32);
    assert_int_equal(t->ndim, 1);
    assert_int_equal(t->nelem, 2);
    const float *f = t->data;
    assert_true(f[0] == 1.5f && f[1] == -2.25f);

    t = find(&w, "i32");
    assert_int_equal(t->dtype, FN_DTYPE_I32);
    const int32_t *i = t->data;
    assert_true(i[0] == 7 && i[1] == -1 && i[2] == 2147483647);

    t = find(&w, "u8"); /* q*0.5 - 1 */
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 2);
    f = t->data;
    assert_true(f[0] == -1.0f && f[1] == -0.5f && f[2] == 0.0f && f[3] == 126.5f);

    /* 11*0.1+0.2 is 1.3000000000000003 in double, which rounds to the float
     * nearest 1.3; float arithmetic would give 1.3000000715. */
    f = find(&w, "u8d")->data;
    assert_true(f[0] == 1.3f);
    assert_true(f[1] == 0.2f);
    assert_true(f[2] == (float)(3 * 0.1 + 0.2));
    /* A real face-api constant: q=2 gives bits 0xbd8f4aab in double, not the
     * 0xbd8f4aac float arithmetic would. */
    uint32_t bits;
    memcpy(&bits, find(&w, "u8r")->data, 4);
    assert_int_equal(bits, 0xbd8f4aab);

    f = find(&w, "u16")->data; /* q*0.25 + 10 */
    assert_true(f[0] == 10.0f && f[1] == 16393.75f);

    t = find(&w, "f16");
    f = t->data;
    assert_int_equal(t->nelem, 9);
    assert_true(f[0] == 1.0f && f[1] == -2.0f);
    assert_true(f[2] == ldexpf(1.0f, -24));           /* smallest subnormal */
    assert_true(f[3] == 1023.0f * ldexpf(1.0f, -24)); /* largest subnormal */
    assert_true(f[4] == ldexpf(1.0f, -14));           /* smallest normal */
    assert_true(isinf(f[5]) && f[5] > 0);
    assert_true(isinf(f[6]) && f[6] < 0);
    assert_true(isnan(f[7]));
    assert_true(f[8] == 0.333251953125f);

    /* Math.round(q*0.5 - 2.5): -2.5 -> -2, -2 -> -2, -1.5 -> -1, 0.5 -> 1, 0 -> 0 */
    i = find(&w, "i32q")->data;
    assert_true(i[0] == -2 && i[1] == -2 && i[2] == -1 && i[3] == 1 && i[4] == 0);

    t = find(&w, "scalar");
    assert_int_equal(t->ndim, 0);
    assert_int_equal(t->nelem, 1);
    assert_int_equal(((const int32_t *)t->data)[0], 5118);
    t = find(&w, "fscalar");
    assert_true(((const float *)t->data)[0] == 3.0f);
    t = find(&w, "zero");
    assert_int_equal(t->nelem, 0);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(((const int32_t *)find(&w, "i32q16")->data)[0], 25535);

    /* Two shards of one group are one buffer: "split" straddles them. */
    f = find(&w, "split")->data;
    assert_true(f[0] == 0.25f && f[1] == -8.0f && f[2] == 1e-3f);
    fn_tfjs_weights_free(&w);
    assert_int_equal(w.count, 0);
    fn_tfjs_weights_free(&w); /* idempotent */

    /* An empty manifest is valid and empty. */
    assert_int_equal(decode("[]", &s, &w, &e), FACENET_OK);
    assert_int_equal(w.count, 0);
    fn_tfjs_weights_free(&w);
}

typedef struct bad_manifest {
    const char *json;
    size_t shard_len; /* bytes of zeros served for "s.bin" */
    facenet_status status;
    const char *msg;
    int loads; /* expected loader calls (-1: don't care) */
} bad_manifest;

#define W(x) "[{\"paths\":[\"s.bin\"],\"weights\":[" x "]}]"

static void test_decode_errors(void **state) {
    (void)state;
    static const bad_manifest cases[] = {
        /* shard sizes: the first weight that runs past is named */
        {W("{\"name\":\"a\",\"shape\":[4],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\","
           "\"scale\":1,"
           "\"min\":0}},{\"name\":\"b\",\"shape\":[2],\"dtype\":\"float32\"},{\"name\":\"c\",\"shape\":[1],"
           "\"dtype\":\"float32\"}"),
         8, FACENET_ERR_FORMAT,
         "weight 'b' (float32 [2], 8 bytes at offset 4) runs past the end of the 8 bytes of shard data of "
         "group 0",
         1},
        {W("{\"name\":\"a\",\"shape\":[3],\"dtype\":\"int32\"}"), 13, FACENET_ERR_FORMAT,
         "group 0: the shards hold 13 bytes but the weights use only 12 (1 bytes left over)", 1},
        {W("{\"name\":\"a\",\"shape\":[2],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"float16\"}}"),
         3, FACENET_ERR_FORMAT, "weight 'a' (float16 [2], 4 bytes at offset 0) runs past", 1},
        {"[{\"paths\":[],\"weights\":[{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\"}]}]", 0,
         FACENET_ERR_FORMAT, "runs past the end of the 0 bytes", 0},
        /* paths: checked before anything is loaded */
        {"[{\"paths\":[\"../s.bin\"],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "group 0, path 0: shard paths",
         0},
        {"[{\"paths\":[\"s.bin\",\"a/../../s.bin\"],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "path 1", 0},
        {"[{\"paths\":[\"a/..\"],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "no \"..\"", 0},
        {"[{\"paths\":[\"/etc/s.bin\"],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "no leading '/'", 0},
        {"[{\"paths\":[\"a\\\\..\\\\s.bin\"],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "shard paths", 0},
        {"[{\"paths\":[\"\"],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "shard paths", 0},
        {"[{\"paths\":[\"s.bin\\u0000.x\"],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "shard paths", 0},
        {"[{\"paths\":[7],\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "shard paths", 0},
        {"[{\"paths\":[\"s.bin\"],\"weights\":[]},{\"paths\":[\"..\"],\"weights\":[]}]", 0,
         FACENET_ERR_FORMAT, "group 1, path 0", 0},
        /* structure */
        {"{\"paths\":[],\"weights\":[]}", 0, FACENET_ERR_FORMAT, "must be a JSON array of groups", 0},
        {"[1]", 0, FACENET_ERR_FORMAT, "group 0 is not an object", 0},
        {"[{\"weights\":[]}]", 0, FACENET_ERR_FORMAT, "group 0 needs a \"paths\" array", 0},
        {"[{\"paths\":[]}]", 0, FACENET_ERR_FORMAT, "group 0 needs a \"weights\" array", 0},
        {"[{\"paths\":[],\"weights\":[]},]", 0, FACENET_ERR_FORMAT, "line 1, column 28: trailing comma", 0},
        {W("7"), 0, FACENET_ERR_FORMAT, "group 0, weight 0: a weight must be an object", 0},
        {W("{\"shape\":[1],\"dtype\":\"float32\"}"), 4, FACENET_ERR_FORMAT, "needs a non-empty \"name\"", 0},
        {W("{\"name\":\"\",\"shape\":[1],\"dtype\":\"float32\"}"), 4, FACENET_ERR_FORMAT, "non-empty", 0},
        /* names */
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\"},{\"name\":\"a\",\"shape\":[1],\"dtype\":"
           "\"int32\"}"),
         8, FACENET_ERR_FORMAT, "two weights are named 'a'", 0},
        {"[{\"paths\":[\"s.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\"}]},"
         "{\"paths\":[\"s.bin\"],\"weights\":[{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\"}]}]",
         4, FACENET_ERR_FORMAT, "two weights are named 'a'", 0},
        /* dtypes */
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float64\"}"), 8, FACENET_ERR_FORMAT,
         "group 0, weight 0 ('a'): unknown dtype", 0},
        {W("{\"name\":\"a\",\"shape\":[1]}"), 4, FACENET_ERR_FORMAT, "needs a \"dtype\" string", 0},
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"bool\"}"), 1, FACENET_ERR_UNSUPPORTED,
         "only float32 and int32", 0},
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"int8\","
           "\"scale\":1,"
           "\"min\":0}}"),
         1, FACENET_ERR_FORMAT, "quantization dtype must be uint8, uint16 or float16", 0},
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"int32\",\"quantization\":{\"dtype\":\"float16\"}}"), 2,
         FACENET_ERR_FORMAT, "float16 quantization needs dtype float32", 0},
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\","
           "\"min\":0}}"),
         1, FACENET_ERR_FORMAT, "finite numbers \"scale\" and \"min\"", 0},
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":{\"dtype\":\"uint8\","
           "\"scale\":1e999,\"min\":0}}"),
         1, FACENET_ERR_FORMAT, "finite numbers", 0},
        {W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"float32\",\"quantization\":[]}"), 1, FACENET_ERR_FORMAT,
         "quantization must be an object", 0},
        /* shapes */
        {W("{\"name\":\"a\",\"shape\":[-1],\"dtype\":\"float32\"}"), 0, FACENET_ERR_FORMAT, "non-negative",
         0},
        {W("{\"name\":\"a\",\"shape\":[1.5],\"dtype\":\"float32\"}"), 0, FACENET_ERR_FORMAT, "non-negative",
         0},
        {W("{\"name\":\"a\",\"shape\":3,\"dtype\":\"float32\"}"), 0, FACENET_ERR_FORMAT, "\"shape\" array",
         0},
        {W("{\"name\":\"a\",\"shape\":[1,1,1,1,1,1,1,1,1],\"dtype\":\"float32\"}"), 4,
         FACENET_ERR_UNSUPPORTED, "more than 8 dimensions", 0},
        {W("{\"name\":\"a\",\"shape\":[16384,16385],\"dtype\":\"float32\"}"), 0, FACENET_ERR_TOO_LARGE,
         "more than 2^28 elements", 0},
        {W("{\"name\":\"a\",\"shape\":[0,9223372036854775807],\"dtype\":\"float32\"}"), 0,
         FACENET_ERR_TOO_LARGE, "2^28", 0},
        {W("{\"name\":\"a\",\"shape\":[4294967296,4294967296,4294967296,4294967296],\"dtype\":\"float32\"}"),
         0, FACENET_ERR_TOO_LARGE, "2^28", 0},
        /* values */
        {W("{\"name\":\"a\",\"shape\":[2],\"dtype\":\"int32\",\"quantization\":{\"dtype\":\"uint8\","
           "\"scale\":1,"
           "\"min\":2147483647.5}}"),
         2, FACENET_ERR_FORMAT, "weight 'a': element 0 dequantizes to 2.14748e+09, outside int32", 1},
        /* the loader's own failure comes through */
        {"[{\"paths\":[\"nope.bin\"],\"weights\":[]}]", 0, FACENET_ERR_IO, "nope.bin: no such shard", 1},
    };
    static const uint8_t zeros[64];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_manifest *c = &cases[i];
        const shard sh = {"s.bin", zeros, c->shard_len};
        store s = {&sh, 1, 0};
        fn_tfjs_weights w;
        fn_error e;
        facenet_status st = decode(c->json, &s, &w, &e);
        if (st == FACENET_OK) {
            fn_tfjs_weights_free(&w);
            fail_msg("case %zu was accepted", i);
        }
        assert_int_equal(w.count, 0);
        assert_null(w.w);
        if (st != c->status || e.status != st || !strstr(e.msg, c->msg))
            fail_msg("case %zu: got %d \"%s\", want %d \"...%s...\"", i, st, e.msg, c->status, c->msg);
        if (c->loads >= 0 && s.calls != c->loads)
            fail_msg("case %zu: the loader was called %d times, want %d", i, s.calls, c->loads);
    }
    /* Math.round's upper edge: 2147483647.4999 fits, NaN-free. */
    const uint8_t q1[1] = {0};
    const shard sh = {"s.bin", q1, 1};
    store s = {&sh, 1, 0};
    fn_tfjs_weights w;
    fn_error e;
    assert_int_equal(decode(W("{\"name\":\"a\",\"shape\":[1],\"dtype\":\"int32\",\"quantization\":"
                              "{\"dtype\":\"uint8\",\"scale\":1,\"min\":-2147483648.5}}"),
                            &s, &w, &e),
                     FACENET_OK);
    assert_int_equal(((const int32_t *)w.w[0].data)[0], INT32_MIN);
    fn_tfjs_weights_free(&w);
}

/* ---------------------------------------------------------------- end to end */

static char g_dir[64];

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "cv_test_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d))) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        struct stat sb;
        if (lstat(path, &sb) == 0 && S_ISDIR(sb.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

static int remove_dir(void **state) {
    (void)state;
    remove_tree(g_dir);
    return 0;
}

static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static void write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A two-tensor "dlib_resnet29" (the architecture is recognised from the
 * conv32_down/conv/filters tensor). */
static const char RESNET_MANIFEST[] =
    "[{\"paths\":[\"tiny_model.bin\"],\"weights\":[\n"
    " {\"name\":\"conv32_down/conv/filters\",\"shape\":[1,1,1,2],\"dtype\":\"float32\",\n"
    "  \"quantization\":{\"dtype\":\"uint8\",\"scale\":0.5,\"min\":-1}},\n"
    " {\"name\":\"fc\",\"shape\":[2,2],\"dtype\":\"float32\"},\n"
    " {\"name\":\"steps\",\"shape\":[],\"dtype\":\"int32\"}\n"
    "]}]\n";

static void write_resnet(void) {
    uint8_t bin[2 + 16 + 4] = {0, 4};
    const float fc[4] = {1.0f, -1.0f, 0.5f, 2.0f};
    for (int i = 0; i < 4; i++) put_f32(bin + 2 + 4 * i, fc[i]);
    put_le(bin + 18, 42, 4);
    write_file(tmp_path("tiny_model-weights_manifest.json"), RESNET_MANIFEST, strlen(RESNET_MANIFEST));
    write_file(tmp_path("tiny_model.bin"), bin, sizeof bin);
}

static facenet_ctx *make_ctx(void) {
    facenet_ctx_params cp = facenet_ctx_default_params();
    cp.n_threads = 1;
    facenet_ctx *ctx = NULL;
    assert_int_equal(facenet_ctx_create(&cp, &ctx), FACENET_OK);
    return ctx;
}

static void test_convert_end_to_end(void **state) {
    (void)state;
    write_resnet();
    facenet_ctx *ctx = make_ctx();
    char manifest[256], out[256]; /* tmp_path() reuses its buffers */
    snprintf(manifest, sizeof manifest, "%s", tmp_path("tiny_model-weights_manifest.json"));
    snprintf(out, sizeof out, "%s", tmp_path("tiny.safetensors"));
    if (facenet_convert_tfjs(ctx, manifest, out, NULL) != FACENET_OK) fail_msg("%s", facenet_ctx_error(ctx));

    fn_st_file *f;
    fn_error e;
    if (fn_st_open(out, &f, &e) != FACENET_OK) fail_msg("%s", e.msg);
    assert_int_equal(fn_st_count(f), 3);
    const fn_st_tensor *t = fn_st_at(f, 0);
    assert_string_equal(t->name, "conv32_down/conv/filters");
    assert_int_equal(t->dtype, FN_DTYPE_F32);
    assert_int_equal(t->ndim, 4);
    assert_int_equal(t->shape[3], 2);
    float v[4];
    assert_int_equal(fn_st_to_f32(t, v, 4, &e), FACENET_OK);
    assert_true(v[0] == -1.0f && v[1] == 1.0f);
    t = fn_st_at(f, 1);
    assert_string_equal(t->name, "fc");
    assert_int_equal(fn_st_to_f32(t, v, 4, &e), FACENET_OK);
    assert_true(v[0] == 1.0f && v[1] == -1.0f && v[2] == 0.5f && v[3] == 2.0f);
    t = fn_st_at(f, 2);
    assert_string_equal(t->name, "steps");
    assert_int_equal(t->dtype, FN_DTYPE_I32);
    assert_int_equal(t->ndim, 0);
    assert_int_equal(fn_st_to_f32(t, v, 1, &e), FACENET_OK);
    assert_true(v[0] == 42.0f);

    const fn_arch_info *a = fn_arch_find("dlib_resnet29");
    assert_non_null(a);
    assert_string_equal(fn_st_meta(f, FN_META_FORMAT), "facenet");
    assert_string_equal(fn_st_meta(f, FN_META_FORMAT_VERSION), "1");
    assert_string_equal(fn_st_meta(f, FN_META_ARCH), "dlib_resnet29");
    assert_string_equal(fn_st_meta(f, FN_META_KIND), "embedding");
    assert_string_equal(fn_st_meta(f, FN_META_INPUT_SIZE), "150");
    assert_string_equal(fn_st_meta(f, FN_META_PREPROCESS), a->preprocess);
    assert_string_equal(fn_st_meta(f, FN_META_EMBEDDING_SIZE), "128");
    assert_string_equal(fn_st_meta(f, FN_META_MODEL_ID), "tiny_model");
    assert_string_equal(fn_st_meta(f, FN_META_SOURCE), "tiny_model-weights_manifest.json");
    assert_int_equal(fn_st_meta_count(f), 9);
    fn_st_close(f);

    /* Named architecture and model id; no embedding size for a detector. */
    facenet_convert_params p = facenet_convert_default_params();
    assert_null(p.architecture);
    assert_null(p.model_id);
    p.architecture = "tiny_face_detector";
    p.model_id = "my \"model\"";
    if (facenet_convert_tfjs(ctx, manifest, out, &p) != FACENET_OK) fail_msg("%s", facenet_ctx_error(ctx));
    assert_int_equal(fn_st_open(out, &f, &e), FACENET_OK);
    assert_string_equal(fn_st_meta(f, FN_META_ARCH), "tiny_face_detector");
    assert_string_equal(fn_st_meta(f, FN_META_KIND), "detector");
    assert_string_equal(fn_st_meta(f, FN_META_INPUT_SIZE), "416");
    assert_null(fn_st_meta(f, FN_META_EMBEDDING_SIZE));
    assert_string_equal(fn_st_meta(f, FN_META_MODEL_ID), "my \"model\"");
    fn_st_close(f);
    facenet_ctx_free(ctx);
}

static void test_convert_errors(void **state) {
    (void)state;
    write_resnet();
    facenet_ctx *ctx = make_ctx();
    char manifest[256], out[256]; /* tmp_path() reuses its buffers */
    snprintf(manifest, sizeof manifest, "%s", tmp_path("tiny_model-weights_manifest.json"));
    snprintf(out, sizeof out, "%s", tmp_path("err.safetensors"));
    facenet_convert_params p = facenet_convert_default_params();

    p.architecture = "resnet_9000";
    assert_int_equal(facenet_convert_tfjs(ctx, manifest, out, &p), FACENET_ERR_NOT_FOUND);
    const char *msg = facenet_ctx_error(ctx);
    if (!strstr(msg, "unknown architecture \"resnet_9000\" (known: dlib_resnet29, facenet_small, ssd_mobilenetv1"))
        fail_msg("%s", msg);
    assert_non_null(strstr(msg, "tiny_face_detector)"));

    /* Weights no architecture claims. */
    const char anon[] = "[{\"paths\":[\"anon.bin\"],\"weights\":[{\"name\":\"w\",\"shape\":[1],"
                        "\"dtype\":\"float32\"}]}]";
    write_file(tmp_path("anon.json"), anon, strlen(anon));
    write_file(tmp_path("anon.bin"), "\0\0\0\0", 4);
    assert_int_equal(facenet_convert_tfjs(ctx, tmp_path("anon.json"), out, NULL), FACENET_ERR_UNSUPPORTED);
    assert_non_null(strstr(facenet_ctx_error(ctx), "anon.json: the weights match no known architecture"));
    /* ...which a named architecture overrides; the model id drops ".json". */
    p.architecture = "face_landmark_68";
    assert_int_equal(facenet_convert_tfjs(ctx, tmp_path("anon.json"), out, &p), FACENET_OK);
    fn_st_file *f;
    fn_error e;
    assert_int_equal(fn_st_open(out, &f, &e), FACENET_OK);
    assert_string_equal(fn_st_meta(f, FN_META_MODEL_ID), "anon");
    assert_string_equal(fn_st_meta(f, FN_META_SOURCE), "anon.json");
    fn_st_close(f);

    /* Missing manifest, missing shard: I/O errors naming the file. */
    assert_int_equal(facenet_convert_tfjs(ctx, tmp_path("nope.json"), out, NULL), FACENET_ERR_IO);
    assert_non_null(strstr(facenet_ctx_error(ctx), "nope.json: cannot open"));
    const char lost[] = "[{\"paths\":[\"sub/lost.bin\"],\"weights\":[]}]";
    write_file(tmp_path("lost.json"), lost, strlen(lost));
    assert_int_equal(facenet_convert_tfjs(ctx, tmp_path("lost.json"), out, NULL), FACENET_ERR_IO);
    assert_non_null(strstr(facenet_ctx_error(ctx), "/sub/lost.bin: cannot open"));

    /* Shard paths that leave the folder: the manifest is named, nothing read. */
    const char escape[] = "[{\"paths\":[\"../anon.bin\"],\"weights\":[]}]";
    write_file(tmp_path("escape.json"), escape, strlen(escape));
    assert_int_equal(facenet_convert_tfjs(ctx, tmp_path("escape.json"), out, NULL), FACENET_ERR_FORMAT);
    msg = facenet_ctx_error(ctx);
    if (!strstr(msg, "escape.json: group 0, path 0: shard paths must be")) fail_msg("%s", msg);

    /* A shard one byte short, then one byte long. */
    uint8_t bin[23] = {0};
    write_file(tmp_path("tiny_model.bin"), bin, 21);
    assert_int_equal(facenet_convert_tfjs(ctx, manifest, out, NULL), FACENET_ERR_FORMAT);
    msg = facenet_ctx_error(ctx);
    if (!strstr(
            msg,
            "tiny_model-weights_manifest.json: weight 'steps' (int32 [], 4 bytes at offset 18) runs past"))
        fail_msg("%s", msg);
    write_file(tmp_path("tiny_model.bin"), bin, 23);
    assert_int_equal(facenet_convert_tfjs(ctx, manifest, out, NULL), FACENET_ERR_FORMAT);
    assert_non_null(strstr(facenet_ctx_error(ctx), "(1 bytes left over)"));

    /* Not JSON at all. */
    write_file(tmp_path("bad.json"), "[{]", 3);
    assert_int_equal(facenet_convert_tfjs(ctx, tmp_path("bad.json"), out, NULL), FACENET_ERR_FORMAT);
    assert_non_null(strstr(facenet_ctx_error(ctx), "bad.json: manifest JSON: line 1, column 3:"));

    /* A folder is not a manifest; an output folder that does not exist. */
    assert_int_equal(facenet_convert_tfjs(ctx, g_dir, out, NULL), FACENET_ERR_IO);
    write_resnet();
    assert_int_equal(facenet_convert_tfjs(ctx, manifest, tmp_path("none/x.safetensors"), NULL),
                     FACENET_ERR_IO);
    assert_non_null(strstr(facenet_ctx_error(ctx), "none/x.safetensors: cannot create"));

    assert_int_equal(facenet_convert_tfjs(ctx, NULL, out, NULL), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_convert_tfjs(ctx, manifest, "", NULL), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_convert_tfjs(NULL, manifest, NULL, NULL), FACENET_ERR_INVALID_ARGUMENT);
    facenet_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_values),
        cmocka_unit_test(test_decode_errors),
        cmocka_unit_test(test_convert_end_to_end),
        cmocka_unit_test(test_convert_errors),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
