/*
 * test_safetensors.c - model files: a write/read round trip of every dtype
 * (scalars and zero-size tensors included) with metadata, the layout the
 * writer promises, every kind of corrupt header the reader must refuse with
 * the right status and a useful message, and the writer's own checks.
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

static char g_dir[64]; /* a scratch folder under the working directory */

static int setup_dir(void **state) {
    (void)state;
    snprintf(g_dir, sizeof g_dir, "st_test_XXXXXX");
    return mkdtemp(g_dir) ? 0 : -1;
}

static int remove_dir(void **state) {
    (void)state;
    DIR *d = opendir(g_dir);
    struct dirent *de;
    char path[512];
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", g_dir, de->d_name);
        unlink(path);
    }
    if (d) closedir(d);
    rmdir(g_dir);
    return 0;
}

/* g_dir/name, in one of four rotating buffers. */
static const char *tmp_path(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", g_dir, name);
    return buf[k];
}

static size_t count_files(void) {
    size_t n = 0;
    DIR *d = opendir(g_dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
        if (de->d_name[0] != '.') n++;
    if (d) closedir(d);
    return n;
}

static void put_le(uint8_t *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* ---------------------------------------------------------------- round trip */

static void test_round_trip(void **state) {
    (void)state;
    float f32[6] = {1.0f, -2.5f, 3.25f, 0.0f, -0.0f, 1e-30f};
    uint8_t f32b[24];
    for (int i = 0; i < 6; i++) {
        uint32_t u;
        memcpy(&u, &f32[i], 4);
        put_le(f32b + 4 * i, u, 4);
    }
    /* F16: 1, -2, smallest subnormal, largest subnormal, smallest normal, inf, -inf, NaN, 1/3 */
    const uint16_t h[9] = {0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x7e00, 0x3555};
    uint8_t f16b[18];
    for (int i = 0; i < 9; i++) put_le(f16b + 2 * i, h[i], 2);
    const uint16_t bf[2] = {0x3f80, 0xc0a0}; /* 1.0, -5.0 */
    uint8_t bf16b[4];
    for (int i = 0; i < 2; i++) put_le(bf16b + 2 * i, bf[i], 2);
    uint8_t f64b[16];
    double dv[2] = {0.125, -1e300};
    for (int i = 0; i < 2; i++) {
        uint64_t u;
        memcpy(&u, &dv[i], 8);
        put_le(f64b + 8 * i, u, 8);
    }
    uint8_t i32b[12];
    put_le(i32b, (uint32_t)-7, 4);
    put_le(i32b + 4, 2147483647u, 4);
    put_le(i32b + 8, 0x80000000u, 4);
    uint8_t i64b[8];
    put_le(i64b, (uint64_t)-3, 8);
    uint8_t i16b[4], u16b[4];
    put_le(i16b, (uint16_t)-300, 2);
    put_le(i16b + 2, 300, 2);
    put_le(u16b, 65535, 2);
    put_le(u16b + 2, 1, 2);
    const uint8_t u8b[1] = {200}, i8b[3] = {0x80, 0x7f, 0xff}, boolb[3] = {0, 1, 1};

    const int64_t s23[] = {2, 3}, s9[] = {9}, s2[] = {2}, s3[] = {3}, s05[] = {0, 5}, s1113[] = {1, 1, 1, 3};
    const fn_st_entry t[] = {
        {"conv/filters", FN_DTYPE_F32, 2, s23, f32b},
        {"half", FN_DTYPE_F16, 1, s9, f16b},
        {"brain", FN_DTYPE_BF16, 1, s2, bf16b},
        {"double", FN_DTYPE_F64, 1, s2, f64b},
        {"scalar", FN_DTYPE_U8, 0, NULL, u8b},
        {"empty", FN_DTYPE_F32, 2, s05, NULL},
        {"ints", FN_DTYPE_I32, 4, s1113, i32b},
        {"long", FN_DTYPE_I64, 0, NULL, i64b},
        {"short", FN_DTYPE_I16, 1, s2, i16b},
        {"ushort", FN_DTYPE_U16, 1, s2, u16b},
        {"bytes", FN_DTYPE_I8, 1, s3, i8b},
        {"flags", FN_DTYPE_BOOL, 1, s3, boolb},
        {"odd \"name\"\\ with\nescapes \xc3\xa9", FN_DTYPE_U8, 0, NULL, u8b},
    };
    const size_t n = sizeof t / sizeof t[0];
    const char *meta[] = {
        "architecture", "dlib_resnet29", "note", "quote \" backslash \\ tab \t done", "empty", ""};
    fn_error e;
    const char *path = tmp_path("model.safetensors");
    assert_int_equal(fn_st_write(path, t, n, meta, 3, &e), FACENET_OK);
    assert_int_equal(count_files(), 1); /* no temporary left behind */

    /* Layout: the data buffer starts on a 64-byte boundary, right after the
     * padded header, and holds exactly the tensors' bytes. */
    size_t flen;
    uint8_t *file = test_read_file(path, &flen);
    assert_non_null(file);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++) hlen |= (uint64_t)file[i] << (8 * i);
    assert_int_equal((8 + hlen) % 64, 0);
    assert_int_equal(file[8], '{');
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t ne = 1;
        for (int d = 0; d < t[i].ndim; d++) ne *= (size_t)t[i].shape[d];
        total += ne * fn_dtype_size(t[i].dtype);
    }
    assert_int_equal(flen, 8 + hlen + total);
    assert_memory_equal(file + 8 + hlen, f32b, sizeof f32b); /* first tensor first */

    fn_st_file *f;
    assert_int_equal(fn_st_open(path, &f, &e), FACENET_OK);
    assert_int_equal(fn_st_count(f), n);
    for (size_t i = 0; i < n; i++) {
        const fn_st_tensor *r = fn_st_at(f, i);
        assert_string_equal(r->name, t[i].name); /* header order = write order */
        assert_int_equal(r->dtype, t[i].dtype);
        assert_int_equal(r->ndim, t[i].ndim);
        size_t ne = 1;
        for (int d = 0; d < r->ndim; d++) {
            assert_int_equal(r->shape[d], t[i].shape[d]);
            ne *= (size_t)t[i].shape[d];
        }
        assert_int_equal(r->nelem, ne);
        assert_int_equal(r->nbytes, ne * fn_dtype_size(r->dtype));
        if (r->nbytes) assert_memory_equal(r->data, t[i].data, r->nbytes);
        assert_ptr_equal(fn_st_find(f, t[i].name), r);
    }
    assert_null(fn_st_find(f, "conv"));
    assert_null(fn_st_find(f, ""));
    assert_null(fn_st_at(f, n));

    float out[16];
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "conv/filters"), out, 16, &e), FACENET_OK);
    assert_memory_equal(out, f32, sizeof f32); /* bit-exact, -0 included */
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "half"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == 1.0f && out[1] == -2.0f);
    assert_true(out[2] == ldexpf(1.0f, -24));
    assert_true(out[3] == 1023.0f * ldexpf(1.0f, -24));
    assert_true(out[4] == ldexpf(1.0f, -14));
    assert_true(isinf(out[5]) && out[5] > 0 && isinf(out[6]) && out[6] < 0 && isnan(out[7]));
    assert_true(out[8] == 0.333251953125f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "brain"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == 1.0f && out[1] == -5.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "double"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == 0.125f && isinf(out[1]) && out[1] < 0);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "ints"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == -7.0f && out[1] == 2147483648.0f && out[2] == -2147483648.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "long"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == -3.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "short"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == -300.0f && out[1] == 300.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "ushort"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == 65535.0f && out[1] == 1.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "bytes"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == -128.0f && out[1] == 127.0f && out[2] == -1.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "flags"), out, 16, &e), FACENET_OK);
    assert_true(out[0] == 0.0f && out[1] == 1.0f && out[2] == 1.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "scalar"), out, 1, &e), FACENET_OK);
    assert_true(out[0] == 200.0f);
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "empty"), NULL, 0, &e), FACENET_OK);

    /* Too small a buffer is the caller's mistake. */
    assert_int_equal(fn_st_to_f32(fn_st_find(f, "half"), out, 8, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.msg, "'half' has 9 elements"));

    assert_int_equal(fn_st_meta_count(f), 3);
    assert_string_equal(fn_st_meta(f, "architecture"), "dlib_resnet29");
    assert_string_equal(fn_st_meta(f, "note"), meta[3]);
    assert_string_equal(fn_st_meta(f, "empty"), "");
    assert_null(fn_st_meta(f, "missing"));
    const char *k, *v;
    fn_st_meta_at(f, 1, &k, &v);
    assert_string_equal(k, "note");
    assert_string_equal(v, meta[3]);
    fn_st_meta_at(f, 3, &k, &v);
    assert_null(k);
    assert_null(v);
    fn_st_close(f);

    /* The same bytes from memory. */
    assert_int_equal(fn_st_open_memory(file, flen, &f, &e), FACENET_OK);
    assert_int_equal(fn_st_count(f), n);
    fn_st_close(f);

    /* Overwriting replaces the file whole. */
    assert_int_equal(fn_st_write(path, t, 1, NULL, 0, &e), FACENET_OK);
    assert_int_equal(fn_st_open(path, &f, &e), FACENET_OK);
    assert_int_equal(fn_st_count(f), 1);
    assert_int_equal(fn_st_meta_count(f), 0);
    fn_st_close(f);
    assert_int_equal(count_files(), 1);
    free(file);
    unlink(path);
}

static void test_empty_file(void **state) {
    (void)state;
    fn_error e;
    const char *path = tmp_path("empty.safetensors");
    assert_int_equal(fn_st_write(path, NULL, 0, NULL, 0, &e), FACENET_OK);
    fn_st_file *f;
    assert_int_equal(fn_st_open(path, &f, &e), FACENET_OK);
    assert_int_equal(fn_st_count(f), 0);
    assert_null(fn_st_find(f, "x"));
    assert_null(fn_st_meta(f, "x"));
    fn_st_close(f);
    unlink(path);
}

/* ---------------------------------------------------------------- corrupt */

/* A file image: 8-byte length, header, data_len zero bytes. */
static uint8_t *image(const char *header, size_t data_len, size_t *len) {
    size_t h = strlen(header);
    *len = 8 + h + data_len;
    uint8_t *b = calloc(1, *len);
    assert_non_null(b);
    put_le(b, h, 8);
    memcpy(b + 8, header, h);
    return b;
}

typedef struct bad_header {
    const char *header;
    size_t data_len;
    facenet_status status;
    const char *msg;
} bad_header;

static void test_corrupt_headers(void **state) {
    (void)state;
    static const bad_header cases[] = {
        /* not JSON, or not an object */
        {"{abc}", 0, FACENET_ERR_FORMAT, "JSON header: line 1, column 2"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},}", 4, FACENET_ERR_FORMAT,
         "trailing comma"},
        {"[1]", 0, FACENET_ERR_FORMAT, "must start with '{'"},
        {" {}", 0, FACENET_ERR_FORMAT, "must start with '{'"},
        /* wrong types */
        {"{\"fc\":1}", 0, FACENET_ERR_FORMAT, "tensor 'fc' must be an object, found a number"},
        {"{\"fc\":{\"dtype\":5,\"shape\":[],\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "needs a \"dtype\" string"},
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":\"x\",\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "needs a \"shape\" array"},
        {"{\"fc\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "needs a \"shape\" array"},
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "non-negative integers"},
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "non-negative integers"},
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4, FACENET_ERR_FORMAT,
         "needs \"data_offsets\""},
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}}", 4, FACENET_ERR_FORMAT,
         "needs \"data_offsets\""},
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, FACENET_ERR_FORMAT,
         "needs \"data_offsets\""},
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"extra\":1}}", 4,
         FACENET_ERR_FORMAT, "unexpected key \"extra\""},
        /* dtypes */
        {"{\"fc\":{\"dtype\":\"F33\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "tensor 'fc' has unknown dtype \"F33\""},
        {"{\"fc\":{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "unknown dtype"},
        {"{\"fc\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4, FACENET_ERR_UNSUPPORTED,
         "dtype F8_E4M3, which is not supported"},
        /* shapes */
        {"{\"fc\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         FACENET_ERR_UNSUPPORTED, "9 dimensions; at most 8"},
        {"{\"fc\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,1]}}", 1,
         FACENET_ERR_FORMAT, "too many elements"},
        {"{\"fc\":{\"dtype\":\"F64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,1]}}", 1,
         FACENET_ERR_FORMAT, "too large"},
        /* offsets against shapes and the buffer */
        {"{\"fc\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, FACENET_ERR_FORMAT,
         "tensor 'fc' of shape [2] and dtype F32 needs 8 bytes, but data_offsets [0, 4] span 4"},
        {"{\"fc\":{\"dtype\":\"U8\",\"shape\":[890],\"data_offsets\":[10,900]}}", 512, FACENET_ERR_FORMAT,
         "tensor 'fc' data_offsets [10, 900] run past the 512-byte data buffer"},
        {"{\"fc\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,9223372036854775807]}}", 1,
         FACENET_ERR_FORMAT, "run past"},
        {"{\"fc\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[8,4]}}", 8, FACENET_ERR_FORMAT,
         "end before they begin"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, FACENET_ERR_FORMAT, "tensors 'a' and 'b' overlap at bytes [4, 8)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
         4, FACENET_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
         "\"z\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,4]}}",
         12, FACENET_ERR_FORMAT, "overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, FACENET_ERR_FORMAT, "bytes [4, 8) of the data buffer (before tensor 'b') belong to no tensor"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, FACENET_ERR_FORMAT,
         "bytes [0, 4)"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 10, FACENET_ERR_FORMAT,
         "the last 6 bytes of the data buffer belong to no tensor"},
        {"{}", 3, FACENET_ERR_FORMAT, "no tensors but the data buffer holds 3 bytes"},
        /* names and metadata */
        {"{\"fc\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]},"
         "\"fc\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[1,2]}}",
         2, FACENET_ERR_FORMAT, "duplicate object key \"fc\""},
        {"{\"__metadata__\":{\"a\":1}}", 0, FACENET_ERR_FORMAT, "metadata value for \"a\" must be a string"},
        {"{\"__metadata__\":{\"a\":\"x\\u0000y\"}}", 0, FACENET_ERR_FORMAT, "contains \\u0000"},
        {"{\"__metadata__\":[\"a\"]}", 0, FACENET_ERR_FORMAT, "must be an object of strings, found an array"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const bad_header *c = &cases[i];
        size_t len;
        uint8_t *img = image(c->header, c->data_len, &len);
        fn_st_file *f = NULL;
        fn_error e;
        fn_error_clear(&e);
        facenet_status st = fn_st_open_memory(img, len, &f, &e);
        free(img);
        if (st == FACENET_OK) {
            fn_st_close(f);
            fail_msg("case %zu was accepted", i);
        }
        assert_null(f);
        if (st != c->status || e.status != st || !strstr(e.msg, c->msg))
            fail_msg("case %zu: got %d \"%s\", want %d \"...%s...\"", i, st, e.msg, c->status, c->msg);
    }
}

/* NUL bytes inside the header count as part of it (and are refused). */
static void test_header_with_nul(void **state) {
    (void)state;
    uint8_t img[8 + 4] = {0};
    put_le(img, 4, 8);
    memcpy(img + 8, "{}\0\0", 4);
    fn_st_file *f;
    fn_error e;
    assert_int_equal(fn_st_open_memory(img, sizeof img, &f, &e), FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "byte 0x00"));
    /* Space padding is fine. */
    memcpy(img + 8, "{}  ", 4);
    assert_int_equal(fn_st_open_memory(img, sizeof img, &f, &e), FACENET_OK);
    fn_st_close(f);
}

static void test_bad_lengths(void **state) {
    (void)state;
    fn_st_file *f = NULL;
    fn_error e;
    uint8_t img[64] = {0};

    /* truncated: not even the length */
    assert_int_equal(fn_st_open_memory(img, 5, &f, &e), FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "file is 5 bytes, too short for the 8-byte header length"));
    assert_int_equal(fn_st_open_memory(NULL, 0, &f, &e), FACENET_ERR_FORMAT);

    /* header length past the end of the file */
    put_le(img, 1000, 8);
    memcpy(img + 8, "{}", 2);
    assert_int_equal(fn_st_open_memory(img, sizeof img, &f, &e), FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "header length 1000 runs past the end of the 64-byte file"));

    /* header length over the cap (and absurd) */
    put_le(img, (uint64_t)1 << 40, 8);
    assert_int_equal(fn_st_open_memory(img, sizeof img, &f, &e), FACENET_ERR_TOO_LARGE);
    assert_non_null(strstr(e.msg, "over the"));
    put_le(img, UINT64_MAX, 8);
    assert_int_equal(fn_st_open_memory(img, sizeof img, &f, &e), FACENET_ERR_TOO_LARGE);

    /* zero-length header */
    put_le(img, 0, 8);
    assert_int_equal(fn_st_open_memory(img, 8, &f, &e), FACENET_ERR_FORMAT);
    assert_null(f);
}

/* Files: the message names the file, and errors from open and stat count. */
static void test_open_errors(void **state) {
    (void)state;
    fn_st_file *f = NULL;
    fn_error e;
    const char *missing = tmp_path("missing.safetensors");
    assert_int_equal(fn_st_open(missing, &f, &e), FACENET_ERR_IO);
    assert_non_null(strstr(e.msg, "missing.safetensors: cannot open"));
    assert_int_equal(fn_st_open(g_dir, &f, &e), FACENET_ERR_IO);
    assert_non_null(strstr(e.msg, "not a regular file"));

    char path[256];
    snprintf(path, sizeof path, "%s", tmp_path("short.safetensors"));
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite("\x02\0\0", 1, 3, fp);
    fclose(fp);
    assert_int_equal(fn_st_open(path, &f, &e), FACENET_ERR_FORMAT);
    assert_non_null(strstr(e.msg, "short.safetensors: file is 3 bytes"));

    size_t len;
    uint8_t *img = image("{\"fc\":{\"dtype\":\"U8\",\"shape\":[890],\"data_offsets\":[10,900]}}", 512, &len);
    fp = fopen(path, "wb");
    assert_non_null(fp);
    fwrite(img, 1, len, fp);
    fclose(fp);
    free(img);
    assert_int_equal(fn_st_open(path, &f, &e), FACENET_ERR_FORMAT);
    if (!strstr(e.msg,
                "short.safetensors: tensor 'fc' data_offsets [10, 900] run past the 512-byte data buffer"))
        fail_msg("%s", e.msg);
    assert_null(f);
    unlink(path);

    /* e may be NULL */
    assert_int_equal(fn_st_open(missing, &f, NULL), FACENET_ERR_IO);
    assert_int_equal(fn_st_open_memory("x", 1, &f, NULL), FACENET_ERR_FORMAT);
    assert_int_equal(fn_st_open(NULL, &f, &e), FACENET_ERR_INVALID_ARGUMENT);
}

static void test_writer_checks(void **state) {
    (void)state;
    const int64_t s1[] = {1}, neg[] = {-1};
    const float one = 1.0f;
    fn_error e;
    const char *path = tmp_path("w.safetensors");
    size_t before = count_files();

    const fn_st_entry dup[] = {{"a", FN_DTYPE_F32, 1, s1, &one}, {"a", FN_DTYPE_F32, 1, s1, &one}};
    assert_int_equal(fn_st_write(path, dup, 2, NULL, 0, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.msg, "two tensors are named 'a'"));

    const fn_st_entry reserved[] = {{"__metadata__", FN_DTYPE_F32, 1, s1, &one}};
    assert_int_equal(fn_st_write(path, reserved, 1, NULL, 0, &e), FACENET_ERR_INVALID_ARGUMENT);
    const fn_st_entry bad_utf8[] = {{"a\xff", FN_DTYPE_F32, 1, s1, &one}};
    assert_int_equal(fn_st_write(path, bad_utf8, 1, NULL, 0, &e), FACENET_ERR_INVALID_ARGUMENT);
    const fn_st_entry bad_shape[] = {{"a", FN_DTYPE_F32, 1, neg, &one}};
    assert_int_equal(fn_st_write(path, bad_shape, 1, NULL, 0, &e), FACENET_ERR_INVALID_ARGUMENT);
    const fn_st_entry bad_rank[] = {{"a", FN_DTYPE_F32, 9, s1, &one}};
    assert_int_equal(fn_st_write(path, bad_rank, 1, NULL, 0, &e), FACENET_ERR_INVALID_ARGUMENT);
    const fn_st_entry no_data[] = {{"a", FN_DTYPE_F32, 1, s1, NULL}};
    assert_int_equal(fn_st_write(path, no_data, 1, NULL, 0, &e), FACENET_ERR_INVALID_ARGUMENT);
    const fn_st_entry bad_dtype[] = {{"a", (fn_dtype)99, 1, s1, &one}};
    assert_int_equal(fn_st_write(path, bad_dtype, 1, NULL, 0, &e), FACENET_ERR_INVALID_ARGUMENT);

    const char *dup_meta[] = {"k", "1", "k", "2"};
    assert_int_equal(fn_st_write(path, NULL, 0, dup_meta, 2, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(e.msg, "metadata key \"k\" appears twice"));
    const char *null_meta[] = {"k", NULL};
    assert_int_equal(fn_st_write(path, NULL, 0, null_meta, 1, &e), FACENET_ERR_INVALID_ARGUMENT);

    /* A folder that does not exist: an I/O error naming the target. */
    const fn_st_entry ok[] = {{"a", FN_DTYPE_F32, 1, s1, &one}};
    assert_int_equal(fn_st_write(tmp_path("no/such/dir.safetensors"), ok, 1, NULL, 0, &e), FACENET_ERR_IO);
    assert_non_null(strstr(e.msg, "no/such/dir.safetensors: cannot create"));
    assert_int_equal(count_files(), before); /* nothing written, nothing left over */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),      cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_corrupt_headers), cmocka_unit_test(test_header_with_nul),
        cmocka_unit_test(test_bad_lengths),     cmocka_unit_test(test_open_errors),
        cmocka_unit_test(test_writer_checks),
    };
    return cmocka_run_group_tests(tests, setup_dir, remove_dir);
}
