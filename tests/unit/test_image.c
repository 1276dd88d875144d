/*
 * test_image.c - image I/O: PNG and PPM/PGM round trips, every PNG colour
 * type, JPEG decoding (checked against djpeg byte for byte when it is on
 * PATH), the eight EXIF orientations, and corrupt, truncated, oversized and
 * missing input, each of which must fail with the right status and a
 * message rather than crash or allocate.
 *
 * The JPEGs under tests/data/image are synthetic; tests/data/image/make.sh
 * regenerates them. PNG variants and broken files are built in memory here.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <png.h>
#include <zlib.h>

#include "core/pool.h"
#include "image/image.h"
#include "testutil.h"

/* ---------------------------------------------------------------- helpers */

typedef struct {
    uint8_t *data;
    size_t len;
} blob;

static blob data_file(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "tests/data/image/%s", name);
    blob b;
    b.data = test_read_file(test_source_path(rel), &b.len);
    if (!b.data) fail_msg("cannot read %s", test_source_path(rel));
    return b;
}

static char tmp_dir[4096];

static const char *tmp_path(const char *name) {
    static char buf[4200];
    if (!tmp_dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(tmp_dir, sizeof tmp_dir, "%s/facenet_test_image_XXXXXX", base && *base ? base : P_tmpdir);
        if (!mkdtemp(tmp_dir)) fail_msg("mkdtemp: %s", strerror(errno));
    }
    snprintf(buf, sizeof buf, "%s/%s", tmp_dir, name);
    return buf;
}

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Decode and require failure with this status and a message containing needle. */
static void expect_fail(const void *data, size_t n, facenet_status want, const char *needle) {
    facenet_image img;
    fn_error e;
    fn_error_clear(&e);
    facenet_status st = fn_image_decode(data, n, NULL, &img, &e);
    if (st != want || !strstr(e.msg, needle))
        fail_msg("expected status %d with \"%s\", got %d: \"%s\"", want, needle, st, e.msg);
    assert_int_equal(e.status, want);
    assert_null(img.data);
    assert_int_equal(img.width, 0);
}

static facenet_image decode_ok(const void *data, size_t n) {
    facenet_image img;
    fn_error e;
    fn_error_clear(&e);
    facenet_status st = fn_image_decode(data, n, NULL, &img, &e);
    if (st != FACENET_OK) fail_msg("decode failed (%d): %s", st, e.msg);
    assert_int_equal(img.channels, 3);
    return img;
}

static uint64_t rng_state = 12345;
static uint8_t rnd8(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint8_t)(rng_state >> 32);
}

static facenet_image random_image(int w, int h, int c) {
    facenet_image img;
    assert_int_equal(facenet_image_alloc(NULL, w, h, c, &img), FACENET_OK);
    for (size_t i = 0; i < (size_t)w * h * c; i++) img.data[i] = rnd8();
    return img;
}

/* a decoded RGB image equals img (grey replicated) */
static void assert_same_pixels(const facenet_image *rgb, const facenet_image *img) {
    assert_int_equal(rgb->width, img->width);
    assert_int_equal(rgb->height, img->height);
    assert_int_equal(rgb->channels, 3);
    for (size_t i = 0; i < (size_t)img->width * img->height; i++)
        for (int ch = 0; ch < 3; ch++) {
            uint8_t want = img->data[i * img->channels + (img->channels == 3 ? ch : 0)];
            if (rgb->data[3 * i + ch] != want)
                fail_msg("pixel %zu channel %d: %d, expected %d", i, ch, rgb->data[3 * i + ch], want);
        }
}

/* ---------------------------------------------------------------- alloc */

static void test_alloc(void **state) {
    (void)state;
    facenet_image img;
    assert_int_equal(facenet_image_alloc(NULL, 5, 4, 3, &img), FACENET_OK);
    assert_int_equal(img.width, 5);
    assert_int_equal(img.height, 4);
    assert_int_equal(img.channels, 3);
    for (int i = 0; i < 60; i++) assert_int_equal(img.data[i], 0);
    facenet_image_free(&img);
    assert_null(img.data);
    assert_int_equal(img.width, 0);
    facenet_image_free(&img); /* zeroed struct */
    facenet_image_free(NULL);

    assert_int_equal(facenet_image_alloc(NULL, 5, 4, 2, &img), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_image_alloc(NULL, -1, 4, 3, &img), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_image_alloc(NULL, 0, 4, 3, &img), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_image_alloc(NULL, 4, 4, 3, NULL), FACENET_ERR_INVALID_ARGUMENT);
    /* over the caps: refused, not attempted */
    assert_int_equal(facenet_image_alloc(NULL, 40000, 40000, 3, &img), FACENET_ERR_TOO_LARGE);
    assert_null(img.data);
    assert_int_equal(facenet_image_alloc(NULL, FACENET_MAX_IMAGE_SIDE + 1, 1, 1, &img),
                     FACENET_ERR_TOO_LARGE);

    facenet_ctx *ctx;
    assert_int_equal(facenet_ctx_create(NULL, &ctx), FACENET_OK);
    assert_int_equal(facenet_image_alloc(ctx, 40000, 40000, 3, &img), FACENET_ERR_TOO_LARGE);
    assert_string_equal(facenet_ctx_error(ctx), "40000x40000 pixels is over the 67108864-pixel limit");
    assert_int_equal(facenet_image_alloc(ctx, 40000, 10, 3, &img), FACENET_ERR_TOO_LARGE);
    assert_string_equal(facenet_ctx_error(ctx), "40000x10 pixels: a side is over the 32768-pixel limit");
    facenet_ctx_free(ctx);
}

static void test_mirror(void **state) {
    (void)state;
    for (int c = 1; c <= 3; c += 2) {
        facenet_image img = random_image(7, 5, c), m, back;
        assert_int_equal(facenet_image_mirror(NULL, &img, &m), FACENET_OK);
        assert_int_equal(m.width, 7);
        assert_int_equal(m.height, 5);
        for (int y = 0; y < 5; y++)
            for (int x = 0; x < 7; x++)
                assert_memory_equal(m.data + ((size_t)y * 7 + x) * c, img.data + ((size_t)y * 7 + 6 - x) * c, c);
        assert_int_equal(facenet_image_mirror(NULL, &m, &back), FACENET_OK);
        assert_int_equal(back.channels, c);
        assert_memory_equal(back.data, img.data, (size_t)7 * 5 * c);
        facenet_image_free(&img);
        facenet_image_free(&m);
        facenet_image_free(&back);
    }
    facenet_image none = {0}, out;
    assert_int_equal(facenet_image_mirror(NULL, &none, &out), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_image_mirror(NULL, NULL, &out), FACENET_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------- round trips */

static void round_trip(const char *name, int w, int h, int c) {
    facenet_image img = random_image(w, h, c), back;
    const char *path = tmp_path(name);
    assert_int_equal(facenet_image_save(NULL, &img, path), FACENET_OK);
    assert_int_equal(facenet_image_load(NULL, path, &back), FACENET_OK);
    assert_same_pixels(&back, &img);
    facenet_image_free(&back);
    facenet_image_free(&img);
    remove(path);
}

static void test_png_round_trip(void **state) {
    (void)state;
    round_trip("rgb.png", 31, 17, 3);
    round_trip("grey.png", 17, 31, 1);
    round_trip("upper.PNG", 1, 1, 3);
    round_trip("wide.png", 300, 2, 1);
    /* the file really is a PNG */
    facenet_image img = random_image(4, 4, 3);
    assert_int_equal(facenet_image_save(NULL, &img, tmp_path("x.png")), FACENET_OK);
    size_t n;
    uint8_t *b = test_read_file(tmp_path("x.png"), &n);
    assert_non_null(b);
    assert_memory_equal(b, "\x89PNG\r\n\x1a\n", 8);
    free(b);
    remove(tmp_path("x.png"));
    facenet_image_free(&img);
}

static void test_pnm_round_trip(void **state) {
    (void)state;
    round_trip("rgb.ppm", 31, 17, 3);
    round_trip("grey.pgm", 17, 31, 1);
    round_trip("other_name.img", 2, 3, 3); /* any other name is PPM/PGM */
    facenet_image img = random_image(7, 5, 1);
    assert_int_equal(facenet_image_save(NULL, &img, tmp_path("g.pgm")), FACENET_OK);
    size_t n;
    uint8_t *b = test_read_file(tmp_path("g.pgm"), &n);
    assert_non_null(b);
    assert_int_equal(n, 11 + 35);
    assert_memory_equal(b, "P5\n7 5\n255\n", 11);
    assert_memory_equal(b + 11, img.data, 35);
    free(b);
    remove(tmp_path("g.pgm"));
    facenet_image_free(&img);
}

static void test_save_errors(void **state) {
    (void)state;
    facenet_image img = random_image(3, 3, 3);
    fn_error e;
    fn_error_clear(&e);
    assert_int_equal(fn_image_save(&img, tmp_path("no/such/dir/x.png"), &e), FACENET_ERR_IO);
    assert_non_null(strstr(e.msg, "no/such/dir/x.png: cannot create the file"));
    img.channels = 2;
    assert_int_equal(fn_image_save(&img, tmp_path("x.ppm"), &e), FACENET_ERR_INVALID_ARGUMENT);
    img.channels = 3;
    assert_int_equal(facenet_image_save(NULL, NULL, tmp_path("x.ppm")), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_image_save(NULL, &img, NULL), FACENET_ERR_INVALID_ARGUMENT);
    facenet_image_free(&img);
    assert_int_equal(facenet_image_save(NULL, &img, tmp_path("x.ppm")), FACENET_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------- PPM/PGM */

static void test_pnm_parse(void **state) {
    (void)state;
    /* comments, odd whitespace, maxval 1 */
    static const char a[] = "P5 #c1\n#c2\r2\t#c3\n 1\n1\n\x00\x01";
    facenet_image img = decode_ok(a, sizeof a - 1);
    assert_int_equal(img.width, 2);
    assert_int_equal(img.height, 1);
    static const uint8_t want_a[6] = {0, 0, 0, 255, 255, 255};
    assert_memory_equal(img.data, want_a, 6);
    facenet_image_free(&img);

    /* 16-bit with maxval 1000: rounding, and a sample over maxval clamps */
    static const char b[] = "P6 1 2 1000\n\x00\x00\x01\xF4\x03\xE8\x00\x02\x00\x01\xFF\xFF";
    img = decode_ok(b, sizeof b - 1);
    static const uint8_t want_b[6] = {0, 128, 255, 1, 0, 255}; /* 500 -> 127.5 -> 128; 2 -> .51 -> 1 */
    assert_memory_equal(img.data, want_b, 6);
    facenet_image_free(&img);

    /* maxval 65535 matches libpng's 16-to-8 scaling: v*255/65535 rounded */
    static const char c[] = "P5 3 1 65535\n\x00\x80\x80\x80\xFF\xFF";
    img = decode_ok(c, sizeof c - 1);
    assert_int_equal(img.data[0], 0);
    assert_int_equal(img.data[3], 128);
    assert_int_equal(img.data[6], 255);
    facenet_image_free(&img);

    /* maxval 100, 8-bit */
    static const char d[] = "P5 2 1 100\n\x32\xC8";
    img = decode_ok(d, sizeof d - 1);
    assert_int_equal(img.data[0], 128); /* 50*255/100 = 127.5 */
    assert_int_equal(img.data[3], 255); /* 200 clamps to 100 */
    facenet_image_free(&img);

    /* trailing data (a second image) is ignored */
    static const char t[] = "P5 1 1 255\n\x07P5 1 1 255\n\x08";
    img = decode_ok(t, sizeof t - 1);
    assert_int_equal(img.data[0], 7);
    facenet_image_free(&img);

    /* the file under tests/data */
    blob f = data_file("color.ppm");
    img = decode_ok(f.data, f.len);
    assert_int_equal(img.width, 37);
    assert_int_equal(img.height, 23);
    assert_int_equal(img.data[0], 250);
    assert_int_equal(img.data[1], 20);
    free(f.data);
    facenet_image_free(&img);
}

static void test_pnm_corrupt(void **state) {
    (void)state;
#define BAD(s, st, needle) expect_fail(s, sizeof(s) - 1, st, needle)
    BAD("P6 0 10 255\n", FACENET_ERR_FORMAT, "zero width or height");
    BAD("P6 10 0 255\n", FACENET_ERR_FORMAT, "zero width or height");
    BAD("P6\n100000 100000\n255\n\x01\x02\x03", FACENET_ERR_TOO_LARGE,
        "100000x100000 pixels is over the 67108864-pixel limit");
    BAD("P5 40000 1 255\n\x01", FACENET_ERR_TOO_LARGE, "a side is over the 32768-pixel limit");
    BAD("P6 4294967296 4294967296 255\n", FACENET_ERR_TOO_LARGE, "over the 67108864-pixel limit");
    BAD("P6 99999999999999999999999 1 255\n", FACENET_ERR_FORMAT, "width is out of range");
    BAD("P6 -1 1 255\n", FACENET_ERR_FORMAT, "width is not a number");
    BAD("P6 +1 1 255\n", FACENET_ERR_FORMAT, "width is not a number");
    BAD("P6 12x 1 255\n", FACENET_ERR_FORMAT, "width is not a number");
    BAD("P61 1 255\n", FACENET_ERR_FORMAT, "no space before the width");
    BAD("P6 1 1 0\n", FACENET_ERR_FORMAT, "maxval 0 is not in 1..65535");
    BAD("P6 1 1 65536\n", FACENET_ERR_FORMAT, "maxval 65536 is not in 1..65535");
    BAD("P6 1 1 255", FACENET_ERR_FORMAT, "truncated PPM header");
    BAD("P6 1 1 255#\n", FACENET_ERR_FORMAT, "no whitespace after maxval");
    BAD("P6 1 1", FACENET_ERR_FORMAT, "truncated PPM header (no maxval)");
    BAD("P6", FACENET_ERR_FORMAT, "truncated PPM header (no width)");
    BAD("P6 2 2 255\n\x01\x02\x03", FACENET_ERR_FORMAT, "truncated PPM (3 of 12 bytes of pixel data)");
    BAD("P5 2 2 256\n\x01\x02\x03\x04\x05\x06\x07", FACENET_ERR_FORMAT, "truncated PGM (7 of 8 bytes");
    BAD("P3 1 1 255\n1 2 3\n", FACENET_ERR_UNSUPPORTED, "plain (ASCII)");
    BAD("P4 8 1\n\x01", FACENET_ERR_UNSUPPORTED, "P4");
    BAD("P7\nWIDTH 1\n", FACENET_ERR_UNSUPPORTED, "PAM");
#undef BAD
}

/* ---------------------------------------------------------------- PNG variants */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} membuf;

static void mem_write(png_structp png, png_bytep p, size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->len + n > m->cap) {
        m->cap = (m->len + n) * 2;
        m->data = realloc(m->data, m->cap);
        if (!m->data) png_error(png, "oom");
    }
    memcpy(m->data + m->len, p, n);
    m->len += n;
}
static void mem_flush(png_structp png) { (void)png; }

/* A PNG of the given type with raw rows (as libpng wants them packed). */
static blob make_png(int w, int h, int color_type, int depth, int interlace, const uint8_t *rows,
                     const png_color *pal, int npal, const uint8_t *trns, int ntrns) {
    membuf m = {NULL, 0, 0};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing a test PNG");
    png_set_write_fn(png, &m, mem_write, mem_flush);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type, interlace,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pal) png_set_PLTE(png, info, pal, npal);
    if (trns) png_set_tRNS(png, info, trns, ntrns, NULL);
    png_write_info(png, info);
    int passes = png_set_interlace_handling(png);
    size_t rowbytes = png_get_rowbytes(png, info);
    for (int p = 0; p < passes; p++)
        for (int y = 0; y < h; y++) png_write_row(png, rows + (size_t)y * rowbytes);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    blob b = {m.data, m.len};
    return b;
}

static void check_png(blob b, int w, int h, const uint8_t *want_rgb) {
    facenet_image img = decode_ok(b.data, b.len);
    assert_int_equal(img.width, w);
    assert_int_equal(img.height, h);
    assert_memory_equal(img.data, want_rgb, (size_t)w * h * 3);
    facenet_image_free(&img);
    free(b.data);
}

static void test_png_variants(void **state) {
    (void)state;
    /* 4-bit palette with tRNS: alpha is dropped, colours kept */
    png_color pal[3] = {{10, 20, 30}, {40, 50, 60}, {70, 80, 90}};
    uint8_t trns[3] = {0, 128, 255};
    uint8_t pal_rows[2] = {0x01, 0x20}; /* 3x1: indices 0,1,2 (+pad) in the first byte pair */
    static const uint8_t want_pal[9] = {10, 20, 30, 40, 50, 60, 70, 80, 90};
    check_png(make_png(3, 1, PNG_COLOR_TYPE_PALETTE, 4, PNG_INTERLACE_NONE, pal_rows, pal, 3, trns, 3), 3, 1,
              want_pal);

    /* 1-bit grey */
    uint8_t g1[1] = {0xA0}; /* 1,0,1 */
    static const uint8_t want_g1[9] = {255, 255, 255, 0, 0, 0, 255, 255, 255};
    check_png(make_png(3, 1, PNG_COLOR_TYPE_GRAY, 1, PNG_INTERLACE_NONE, g1, NULL, 0, NULL, 0), 3, 1,
              want_g1);

    /* 16-bit grey: scaled with rounding */
    uint8_t g16[6] = {0x00, 0x80, 0x80, 0x80, 0xFF, 0xFF};
    static const uint8_t want_g16[9] = {0, 0, 0, 128, 128, 128, 255, 255, 255};
    check_png(make_png(3, 1, PNG_COLOR_TYPE_GRAY, 16, PNG_INTERLACE_NONE, g16, NULL, 0, NULL, 0), 3, 1,
              want_g16);

    /* grey + alpha, 8-bit: alpha dropped */
    uint8_t ga[4] = {100, 0, 200, 255};
    static const uint8_t want_ga[6] = {100, 100, 100, 200, 200, 200};
    check_png(make_png(2, 1, PNG_COLOR_TYPE_GRAY_ALPHA, 8, PNG_INTERLACE_NONE, ga, NULL, 0, NULL, 0), 2, 1,
              want_ga);

    /* RGBA 8-bit: alpha dropped, colour as stored (not composited) */
    uint8_t rgba[8] = {1, 2, 3, 0, 250, 251, 252, 17};
    static const uint8_t want_rgba[6] = {1, 2, 3, 250, 251, 252};
    check_png(make_png(2, 1, PNG_COLOR_TYPE_RGB_ALPHA, 8, PNG_INTERLACE_NONE, rgba, NULL, 0, NULL, 0), 2, 1,
              want_rgba);

    /* RGB 16-bit */
    uint8_t rgb16[6] = {0x12, 0x34, 0xFF, 0x00, 0x00, 0x7F};
    static const uint8_t want_rgb16[3] = {0x12, 0xFE, 0x00}; /* 0x1234 -> 18.1 -> 18; 0xFF00 -> 254.0 */
    check_png(make_png(1, 1, PNG_COLOR_TYPE_RGB, 16, PNG_INTERLACE_NONE, rgb16, NULL, 0, NULL, 0), 1, 1,
              want_rgb16);

    /* interlaced RGB, an awkward size for Adam7 */
    facenet_image src = random_image(13, 11, 3);
    check_png(make_png(13, 11, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_ADAM7, src.data, NULL, 0, NULL, 0),
              13, 11, src.data);
    facenet_image_free(&src);
}

/* Rewrite the IHDR size of a PNG made by make_png, with a valid CRC, so
 * libpng's checksum check does not hide the size check. */
static void png_set_size(blob b, uint32_t w, uint32_t h) {
    uint8_t *ihdr = b.data + 8 + 4; /* after the signature and the chunk length */
    assert_memory_equal(ihdr, "IHDR", 4);
    for (int i = 0; i < 4; i++) {
        ihdr[4 + i] = (uint8_t)(w >> (24 - 8 * i));
        ihdr[8 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    uint32_t crc = (uint32_t)crc32(0, ihdr, 4 + 13);
    for (int i = 0; i < 4; i++) ihdr[17 + i] = (uint8_t)(crc >> (24 - 8 * i));
}

static void test_png_corrupt(void **state) {
    (void)state;
    facenet_image src = random_image(20, 10, 3);
    blob b = make_png(20, 10, PNG_COLOR_TYPE_RGB, 8, PNG_INTERLACE_NONE, src.data, NULL, 0, NULL, 0);
    facenet_image_free(&src);

    /* truncated anywhere before the image data is complete */
    for (size_t cut = 8; cut < b.len - 12; cut += 7) expect_fail(b.data, cut, FACENET_ERR_FORMAT, "PNG");
    expect_fail(b.data, b.len / 2, FACENET_ERR_FORMAT, "truncated PNG");
    expect_fail(b.data, 20, FACENET_ERR_FORMAT, "truncated PNG");

    uint8_t *c = malloc(b.len);
    memcpy(c, b.data, b.len);
    c[b.len / 2] ^= 0x55; /* inside IDAT: a CRC error */
    expect_fail(c, b.len, FACENET_ERR_FORMAT, "corrupt PNG");

    blob z = {c, b.len};
    memcpy(c, b.data, b.len);
    png_set_size(z, 0, 10);
    expect_fail(c, b.len, FACENET_ERR_FORMAT, "corrupt PNG");
    png_set_size(z, 100000, 100000);
    expect_fail(c, b.len, FACENET_ERR_TOO_LARGE, "100000x100000 pixels is over the 67108864-pixel limit");
    png_set_size(z, 40000, 40000);
    expect_fail(c, b.len, FACENET_ERR_TOO_LARGE, "40000x40000 pixels is over the 67108864-pixel limit");
    png_set_size(z, 33000, 10);
    expect_fail(c, b.len, FACENET_ERR_TOO_LARGE, "33000x10 pixels: a side is over the 32768-pixel limit");
    png_set_size(z, 0x7FFFFFFF, 0x7FFFFFFF);
    expect_fail(c, b.len, FACENET_ERR_TOO_LARGE, "pixel limit");
    free(c);
    free(b.data);
}

/* ---------------------------------------------------------------- JPEG */

static void test_jpeg_decode(void **state) {
    (void)state;
    blob ref = data_file("color.ppm");
    facenet_image want = decode_ok(ref.data, ref.len);
    free(ref.data);
    static const char *const colour[] = {"color.jpg", "color_444_prog.jpg", "color_422_rst.jpg"};
    for (size_t k = 0; k < sizeof colour / sizeof *colour; k++) {
        blob b = data_file(colour[k]);
        facenet_image img = decode_ok(b.data, b.len);
        assert_int_equal(img.width, 37);
        assert_int_equal(img.height, 23);
        double err = 0;
        for (size_t i = 0; i < (size_t)37 * 23 * 3; i++) err += abs((int)img.data[i] - (int)want.data[i]);
        err /= 37 * 23 * 3;
        if (err > 8) fail_msg("%s: mean abs error %.2f against the source", colour[k], err);
        free(b.data);
        facenet_image_free(&img);
    }

    /* greyscale: replicated to RGB, near the luma of the source */
    blob g = data_file("grey.jpg");
    facenet_image img = decode_ok(g.data, g.len);
    assert_int_equal(img.width, 37);
    assert_int_equal(img.height, 23);
    double err = 0;
    for (size_t i = 0; i < (size_t)37 * 23; i++) {
        const uint8_t *p = img.data + 3 * i, *s = want.data + 3 * i;
        assert_int_equal(p[0], p[1]);
        assert_int_equal(p[0], p[2]);
        err += fabs(p[0] - (0.299 * s[0] + 0.587 * s[1] + 0.114 * s[2]));
    }
    assert_true(err / (37 * 23) < 4);
    free(g.data);
    facenet_image_free(&img);
    facenet_image_free(&want);

    /* Adobe CMYK and YCCK: converted as djpeg does (compared in the parity test) */
    static const char *const cmyk[] = {"cmyk.jpg", "ycck.jpg"};
    for (int k = 0; k < 2; k++) {
        blob b = data_file(cmyk[k]);
        img = decode_ok(b.data, b.len);
        assert_int_equal(img.width, 13);
        assert_int_equal(img.height, 9);
        free(b.data);
        facenet_image_free(&img);
    }
}

static int on_path(const char *prog) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    char dir[4096], full[4200];
    while (*path) {
        size_t n = strcspn(path, ":");
        if (n > 0 && n < sizeof dir) {
            memcpy(dir, path, n);
            dir[n] = 0;
            snprintf(full, sizeof full, "%s/%s", dir, prog);
            if (access(full, X_OK) == 0) return 1;
        }
        path += n;
        if (*path == ':') path++;
    }
    return 0;
}

static uint8_t *run_djpeg(const char *path, size_t *len) {
    char cmd[4400];
    assert_null(strchr(path, '\''));
    snprintf(cmd, sizeof cmd, "djpeg -ppm '%s'", path);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while ((got = fread(buf + n, 1, cap - n, p)) > 0) {
        n += got;
        if (n == cap) buf = realloc(buf, cap *= 2);
        assert_non_null(buf);
    }
    assert_int_equal(pclose(p), 0);
    *len = n;
    return buf;
}

/* Our pixels must equal libjpeg-turbo's own djpeg, byte for byte. */
static void test_jpeg_djpeg_parity(void **state) {
    (void)state;
    if (!on_path("djpeg")) {
        printf("NOTE: djpeg is not on PATH (Debian: libjpeg-turbo-progs); skipping the djpeg parity check\n");
        return;
    }
    static const char *const files[] = {"color.jpg", "color_444_prog.jpg", "color_422_rst.jpg",
                                        "grey.jpg",  "cmyk.jpg",           "ycck.jpg"};
    for (size_t k = 0; k < sizeof files / sizeof *files; k++) {
        char rel[256];
        snprintf(rel, sizeof rel, "tests/data/image/%s", files[k]);
        char path[4096];
        snprintf(path, sizeof path, "%s", test_source_path(rel));
        size_t n, pn;
        uint8_t *jpg = test_read_file(path, &n), *ppm = run_djpeg(path, &pn);
        assert_non_null(jpg);
        facenet_image ours = decode_ok(jpg, n), theirs = decode_ok(ppm, pn); /* P5 output is replicated too */
        assert_int_equal(ours.width, theirs.width);
        assert_int_equal(ours.height, theirs.height);
        if (memcmp(ours.data, theirs.data, (size_t)ours.width * ours.height * 3) != 0)
            fail_msg("%s: pixels differ from djpeg -ppm", files[k]);
        facenet_image_free(&ours);
        facenet_image_free(&theirs);
        free(jpg);
        free(ppm);
    }
}

/* The JPEG with an APP1 segment inserted at offset at (2 = right after SOI). */
static blob with_segment(blob jpg, size_t at, const uint8_t *seg, size_t seg_len) {
    blob b;
    b.len = jpg.len + seg_len;
    b.data = malloc(b.len);
    memcpy(b.data, jpg.data, at);
    memcpy(b.data + at, seg, seg_len);
    memcpy(b.data + at + seg_len, jpg.data + at, jpg.len - at);
    return b;
}

static void put16(uint8_t *p, unsigned v, int le) {
    p[le ? 0 : 1] = (uint8_t)v;
    p[le ? 1 : 0] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v, int le) {
    for (int i = 0; i < 4; i++) p[le ? i : 3 - i] = (uint8_t)(v >> (8 * i));
}

/* An APP1 Exif segment whose IFD0 holds a harmless tag and then the
 * orientation entry (tag, type, count, value). Returns its length. */
static size_t exif_segment(uint8_t *seg, int le, unsigned tag, unsigned type, uint32_t count,
                           unsigned value) {
    size_t len = 4 + 6 + 8 + 2 + 24 + 4;
    memset(seg, 0, len);
    seg[0] = 0xFF;
    seg[1] = 0xE1;
    seg[2] = (uint8_t)((len - 2) >> 8);
    seg[3] = (uint8_t)(len - 2);
    memcpy(seg + 4, "Exif\0\0", 6);
    uint8_t *t = seg + 10;
    t[0] = t[1] = le ? 'I' : 'M';
    put16(t + 2, 42, le);
    put32(t + 4, 8, le);
    put16(t + 8, 2, le);
    put16(t + 10, 0x011A, le); /* XResolution, RATIONAL: not what we look for */
    put16(t + 12, 5, le);
    put32(t + 14, 1, le);
    put32(t + 18, 0, le);
    put16(t + 22, tag, le);
    put16(t + 24, type, le);
    put32(t + 26, count, le);
    put16(t + 30, value, le);
    return len;
}

/* Independent of fn_image_orient: where each source pixel lands. */
static facenet_image reference_orient(const facenet_image *src, int o) {
    int w = src->width, h = src->height;
    facenet_image out;
    assert_int_equal(facenet_image_alloc(NULL, o >= 5 ? h : w, o >= 5 ? w : h, 3, &out), FACENET_OK);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int dx = x, dy = y;
            switch (o) {
            case 2: dx = w - 1 - x; break;
            case 3: dx = w - 1 - x, dy = h - 1 - y; break;
            case 4: dy = h - 1 - y; break;
            case 5: dx = y, dy = x; break;
            case 6: dx = h - 1 - y, dy = x; break;
            case 7: dx = h - 1 - y, dy = w - 1 - x; break;
            case 8: dx = y, dy = w - 1 - x; break;
            }
            memcpy(out.data + ((size_t)dy * out.width + dx) * 3, src->data + ((size_t)y * w + x) * 3, 3);
        }
    return out;
}

static void test_exif_orientation_decode(void **state) {
    (void)state;
    blob jpg = data_file("color.jpg");
    assert_int_equal(fn_jpeg_exif_orientation(jpg.data, jpg.len), 1);
    facenet_image plain = decode_ok(jpg.data, jpg.len);
    /* the red block is top-left in the upright image */
    assert_int_equal(plain.data[0] > 200 && plain.data[1] < 60, 1);
    for (int le = 0; le < 2; le++)
        for (int o = 1; o <= 8; o++) {
            uint8_t seg[64];
            size_t sl = exif_segment(seg, le, 0x0112, 3, 1, (unsigned)o);
            /* after SOI, and after the JFIF APP0 (18 bytes later): both are found */
            for (size_t at = 2; at <= 20; at += 18) {
                blob t = with_segment(jpg, at, seg, sl);
                assert_int_equal(fn_jpeg_exif_orientation(t.data, t.len), o);
                facenet_image img = decode_ok(t.data, t.len), want = reference_orient(&plain, o);
                assert_int_equal(img.width, want.width);
                assert_int_equal(img.height, want.height);
                if (memcmp(img.data, want.data, (size_t)img.width * img.height * 3) != 0)
                    fail_msg("orientation %d (%s) at offset %zu: wrong pixels", o, le ? "II" : "MM", at);
                facenet_image_free(&img);
                facenet_image_free(&want);
                free(t.data);
            }
        }
    facenet_image_free(&plain);
    free(jpg.data);
}

/* fn_image_orient on a 3x2 grey image, against the EXIF definitions worked
 * out by hand: 1 2 3 / 4 5 6. */
static void test_orient_by_hand(void **state) {
    (void)state;
    static const uint8_t want[9][6] = {
        {0},
        {1, 2, 3, 4, 5, 6}, /* 1: as stored */
        {3, 2, 1, 6, 5, 4}, /* 2: mirrored horizontally */
        {6, 5, 4, 3, 2, 1}, /* 3: rotated 180 */
        {4, 5, 6, 1, 2, 3}, /* 4: mirrored vertically */
        {1, 4, 2, 5, 3, 6}, /* 5: transposed, 2 wide 3 high */
        {4, 1, 5, 2, 6, 3}, /* 6: rotated 90 clockwise */
        {6, 3, 5, 2, 4, 1}, /* 7: transverse */
        {3, 6, 2, 5, 1, 4}, /* 8: rotated 90 counter-clockwise */
    };
    for (int o = 1; o <= 8; o++) {
        facenet_image img;
        assert_int_equal(facenet_image_alloc(NULL, 3, 2, 1, &img), FACENET_OK);
        for (int i = 0; i < 6; i++) img.data[i] = (uint8_t)(i + 1);
        fn_error e;
        assert_int_equal(fn_image_orient(&img, o, &e), FACENET_OK);
        assert_int_equal(img.width, o >= 5 ? 2 : 3);
        assert_int_equal(img.height, o >= 5 ? 3 : 2);
        assert_memory_equal(img.data, want[o], 6);
        facenet_image_free(&img);
    }
    facenet_image img = random_image(2, 2, 3);
    fn_error e;
    assert_int_equal(fn_image_orient(&img, 0, &e), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(fn_image_orient(&img, 9, &e), FACENET_ERR_INVALID_ARGUMENT);
    facenet_image_free(&img);
}

/* Anything odd in the EXIF data means orientation 1, never a crash. */
static void test_exif_odd(void **state) {
    (void)state;
    blob jpg = data_file("color.jpg");
    uint8_t seg[64];
    size_t sl;
#define ORIENT_WITH(expect)                                                                              \
    do {                                                                                                 \
        blob t_ = with_segment(jpg, 2, seg, sl);                                                         \
        assert_int_equal(fn_jpeg_exif_orientation(t_.data, t_.len), (expect));                           \
        facenet_image i_ = decode_ok(t_.data, t_.len); /* the image still decodes */                     \
        facenet_image_free(&i_);                                                                         \
        free(t_.data);                                                                                   \
    } while (0)
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    ORIENT_WITH(6);
    sl = exif_segment(seg, 0, 0x0112, 4, 1, 6); /* LONG, not SHORT */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 1, 0x0112, 3, 2, 6); /* two values */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 1, 0x0112, 3, 1, 9); /* out of range */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 1, 0x0112, 3, 1, 0);
    ORIENT_WITH(1);
    sl = exif_segment(seg, 1, 0x0113, 3, 1, 6); /* another tag */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 1, 0x0112, 3, 1, 6);
    seg[10] = 'X'; /* byte order */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    seg[13] = 43; /* TIFF magic */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    seg[17] = 200; /* IFD0 offset past the segment */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    seg[17] = 0xFF, seg[16] = 0xFF, seg[15] = 0xFF, seg[14] = 0xFF; /* IFD0 offset near 2^32 */
    ORIENT_WITH(1);
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    seg[19] = 50; /* 50 entries claimed, 2 present */
    ORIENT_WITH(6);
    seg[19] = 0;
    ORIENT_WITH(1);
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    seg[9] = 'x'; /* not "Exif\0\0" (XMP also lives in APP1) */
    ORIENT_WITH(1);
    /* the segment length cuts the entry off */
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    seg[3] = (uint8_t)(seg[3] - 12);
    {
        blob t = with_segment(jpg, 2, seg, sl);
        assert_int_equal(fn_jpeg_exif_orientation(t.data, t.len), 1);
        free(t.data);
    }
    /* the tagged segment cut off by the end of the data */
    sl = exif_segment(seg, 0, 0x0112, 3, 1, 6);
    uint8_t small[40];
    memcpy(small, "\xFF\xD8", 2);
    memcpy(small + 2, seg, sizeof small - 2);
    for (size_t n = 0; n <= sizeof small; n++) assert_int_equal(fn_jpeg_exif_orientation(small, n), 1);
    assert_int_equal(fn_jpeg_exif_orientation(NULL, 0), 1);
    assert_int_equal(fn_jpeg_exif_orientation((const uint8_t *)"\x89PNG\r\n\x1a\n", 8), 1);
    /* an APP1 after the start of scan is not header data */
    blob late = with_segment(jpg, jpg.len - 2, seg, sl);
    assert_int_equal(fn_jpeg_exif_orientation(late.data, late.len), 1);
    free(late.data);
#undef ORIENT_WITH
    free(jpg.data);
}

/* Offset of the first SOFn marker segment of a JPEG. */
static size_t find_sof(blob b) {
    for (size_t i = 2; i + 9 < b.len; i++)
        if (b.data[i] == 0xFF && (b.data[i + 1] == 0xC0 || b.data[i + 1] == 0xC1 || b.data[i + 1] == 0xC2))
            return i;
    fail_msg("no SOF marker");
    return 0;
}

static void jpeg_set_size(blob b, unsigned w, unsigned h) {
    size_t s = find_sof(b);
    b.data[s + 5] = (uint8_t)(h >> 8), b.data[s + 6] = (uint8_t)h;
    b.data[s + 7] = (uint8_t)(w >> 8), b.data[s + 8] = (uint8_t)w;
}

static void test_jpeg_corrupt(void **state) {
    (void)state;
    static const char *const files[] = {"color.jpg", "color_444_prog.jpg", "grey.jpg"};
    for (size_t k = 0; k < 3; k++) {
        blob b = data_file(files[k]);
        /* truncated anywhere: a clear message, never grey-filled pixels */
        for (size_t cut = 3; cut < b.len - 8; cut += 5) expect_fail(b.data, cut, FACENET_ERR_FORMAT, "JPEG");
        expect_fail(b.data, b.len / 2, FACENET_ERR_FORMAT, "truncated JPEG");
        expect_fail(b.data, b.len - 10, FACENET_ERR_FORMAT, "truncated JPEG");
        expect_fail(b.data, 3, FACENET_ERR_FORMAT, "truncated JPEG");

        /* declared sizes: zero, and over the caps (refused before allocating) */
        uint8_t *orig = malloc(b.len);
        memcpy(orig, b.data, b.len);
        jpeg_set_size(b, 0, 23);
        expect_fail(b.data, b.len, FACENET_ERR_FORMAT, "corrupt JPEG");
        jpeg_set_size(b, 40000, 40000);
        expect_fail(b.data, b.len, FACENET_ERR_TOO_LARGE,
                    "40000x40000 pixels is over the 67108864-pixel limit");
        jpeg_set_size(b, 65000, 65000);
        expect_fail(b.data, b.len, FACENET_ERR_TOO_LARGE, "65000x65000 pixels is over");
        jpeg_set_size(b, 65535, 65535); /* over libjpeg's own limit: the same message */
        expect_fail(b.data, b.len, FACENET_ERR_TOO_LARGE, "65535x65535 pixels is over");
        jpeg_set_size(b, 65535, 8);
        expect_fail(b.data, b.len, FACENET_ERR_TOO_LARGE, "a side is over the 32768-pixel limit");
        memcpy(b.data, orig, b.len);

        /* damaged entropy data and headers: any status, no crash */
        for (size_t i = 2; i < b.len; i += 3) {
            b.data[i] ^= 0x5A;
            facenet_image img;
            fn_error e;
            fn_error_clear(&e);
            if (fn_image_decode(b.data, b.len, NULL, &img, &e) == FACENET_OK)
                facenet_image_free(&img);
            else
                assert_true(e.msg[0] != 0);
            b.data[i] ^= 0x5A;
        }
        free(orig);
        free(b.data);
    }
    expect_fail("\xFF\xD8\xFF\x00garbage", 11, FACENET_ERR_FORMAT, "truncated JPEG"); /* no marker follows */
    expect_fail("\xFF\xD8\xFF\xC0\x00\x01garbage", 13, FACENET_ERR_FORMAT, "corrupt JPEG (");
    /* 12-bit precision is well-formed but not handled */
    blob b = data_file("color.jpg");
    b.data[find_sof(b) + 4] = 12;
    expect_fail(b.data, b.len, FACENET_ERR_UNSUPPORTED, "unsupported JPEG");
    free(b.data);
}

/* A smooth test picture (gradients and rings, so the coefficients are not
 * noise) encoded in memory: w x h, 3 or 1 components, chroma sampling
 * h_samp x v_samp for the luma, a restart interval in MCU rows (0: none). */
static blob encode_jpeg(int w, int h, int comps, int h_samp, int v_samp, int restart_rows) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr je;
    c.err = jpeg_std_error(&je);
    jpeg_create_compress(&c);
    unsigned char *buf = NULL;
    unsigned long len = 0;
    jpeg_mem_dest(&c, &buf, &len);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 90, TRUE);
    if (comps == 3) c.comp_info[0].h_samp_factor = h_samp, c.comp_info[0].v_samp_factor = v_samp;
    c.restart_in_rows = restart_rows;
    jpeg_start_compress(&c, TRUE);
    uint8_t *row = malloc((size_t)w * comps);
    assert_non_null(row);
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++)
            for (int k = 0; k < comps; k++) {
                const double r = sqrt((double)(x - w / 3) * (x - w / 3) + (double)(y - h / 2) * (y - h / 2));
                row[(size_t)x * comps + k] =
                    (uint8_t)(127.5 + 60 * sin(r / (7.0 + 3 * k)) + 60 * cos((x + 2 * y) / (40.0 + 9 * k)));
            }
        JSAMPROW p = row;
        jpeg_write_scanlines(&c, &p, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    free(row);
    blob b = {malloc(len), len};
    assert_non_null(b.data);
    memcpy(b.data, buf, len);
    free(buf);
    return b;
}

/* Large single-scan photos decode on two threads (the second skips to the
 * bottom half): the pixels must be those of one thread, and a damaged file
 * must fail with one thread's status. */
static void test_jpeg_two_threads(void **state) {
    (void)state;
    static const struct {
        int w, h, comps, hs, vs, rst;
    } cases[] = {{1920, 1448, 3, 2, 2, 0}, {1001, 777, 3, 2, 2, 0}, {1280, 720, 3, 1, 1, 0},
                 {1100, 620, 3, 2, 1, 0},  {900, 900, 1, 1, 1, 0},   {1024, 768, 3, 2, 2, 2}};
    fn_pool *pool = fn_pool_create(2);
    assert_non_null(pool);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        blob b = encode_jpeg(cases[k].w, cases[k].h, cases[k].comps, cases[k].hs, cases[k].vs, cases[k].rst);
        facenet_image one, two;
        fn_error e;
        assert_int_equal(fn_image_decode(b.data, b.len, NULL, &one, &e), FACENET_OK);
        assert_int_equal(fn_image_decode(b.data, b.len, pool, &two, &e), FACENET_OK);
        assert_int_equal(two.width, cases[k].w);
        assert_int_equal(two.height, cases[k].h);
        assert_memory_equal(one.data, two.data, (size_t)one.width * one.height * 3);
        facenet_image_free(&one);
        facenet_image_free(&two);
        /* Cut short or damaged in either half: the same status both ways. */
        for (int t = 1; t < 12; t++) {
            const size_t at = b.len * (size_t)t / 12;
            fn_error e1, e2;
            facenet_status s1 = fn_image_decode(b.data, at, NULL, &one, &e1);
            facenet_status s2 = fn_image_decode(b.data, at, pool, &two, &e2);
            assert_int_equal(s1, FACENET_ERR_FORMAT);
            assert_int_equal(s2, s1);
            assert_null(two.data);
            b.data[at] ^= 0x5A;
            s1 = fn_image_decode(b.data, b.len, NULL, &one, &e1);
            s2 = fn_image_decode(b.data, b.len, pool, &two, &e2);
            assert_int_equal(s2, s1);
            if (s1 == FACENET_OK) {
                assert_memory_equal(one.data, two.data, (size_t)one.width * one.height * 3);
                facenet_image_free(&one);
                facenet_image_free(&two);
            }
            b.data[at] ^= 0x5A;
        }
        free(b.data);
    }
    /* The demo photos, when the models are installed. */
    for (int i = 1; i <= 6; i++) {
        char rel[64];
        snprintf(rel, sizeof rel, "face-api-1.7.15/demo/sample%d.jpg", i);
        const char *path = test_model_path(rel);
        if (!path) break;
        facenet_image one, two;
        fn_error e;
        assert_int_equal(fn_image_load(path, NULL, &one, &e), FACENET_OK);
        assert_int_equal(fn_image_load(path, pool, &two, &e), FACENET_OK);
        assert_memory_equal(one.data, two.data, (size_t)one.width * one.height * 3);
        facenet_image_free(&one);
        facenet_image_free(&two);
    }
    fn_pool_free(pool);
}

/* A progressive JPEG whose last scan is repeated thousands of times: each
 * scan re-walks all coefficients, so the decoder must stop counting. */
static void test_jpeg_scan_limit(void **state) {
    (void)state;
    blob b = data_file("color_444_prog.jpg");
    size_t last = 0;
    for (size_t i = 0; i + 1 < b.len; i++)
        if (b.data[i] == 0xFF && b.data[i + 1] == 0xDA) last = i; /* SOS never occurs stuffed */
    assert_true(last > 0);
    size_t scan = b.len - 2 - last, reps = 1500;
    blob big = {malloc(last + scan * reps + 2), last + scan * reps + 2};
    memcpy(big.data, b.data, last);
    for (size_t r = 0; r < reps; r++) memcpy(big.data + last + r * scan, b.data + last, scan);
    memcpy(big.data + big.len - 2, "\xFF\xD9", 2);
    expect_fail(big.data, big.len, FACENET_ERR_FORMAT, "more than 1000 scans");
    free(big.data);
    free(b.data);
}

/* ---------------------------------------------------------------- dispatch and files */

static void test_not_an_image(void **state) {
    (void)state;
    expect_fail("GIF89a\x01\x00\x01\x00", 10, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");
    expect_fail("\x00", 1, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");
    expect_fail("P", 1, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");
    expect_fail("P9 1 1 255\n", 11, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");
    expect_fail("\xFF\xD8", 2, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");
    expect_fail("\x89PNG\r\n\x1a", 7, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");
    expect_fail("", 0, FACENET_ERR_FORMAT, "empty");
    expect_fail(NULL, 0, FACENET_ERR_FORMAT, "empty");
    uint8_t junk[1000];
    for (size_t i = 0; i < sizeof junk; i++) junk[i] = rnd8();
    junk[0] = 'x';
    expect_fail(junk, sizeof junk, FACENET_ERR_UNSUPPORTED, "not a JPEG, PNG or PPM/PGM image");

    facenet_image img;
    assert_int_equal(facenet_image_decode(NULL, NULL, 5, &img), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_image_decode(NULL, "P5 1 1 255\n\x01", 12, NULL), FACENET_ERR_INVALID_ARGUMENT);
    assert_int_equal(facenet_image_load(NULL, NULL, &img), FACENET_ERR_INVALID_ARGUMENT);
}

static void test_load_errors(void **state) {
    (void)state;
    facenet_ctx *ctx;
    assert_int_equal(facenet_ctx_create(NULL, &ctx), FACENET_OK);
    facenet_image img;

    const char *missing = tmp_path("does-not-exist.jpg");
    assert_int_equal(facenet_image_load(ctx, missing, &img), FACENET_ERR_IO);
    assert_null(img.data);
    char want[4400];
    snprintf(want, sizeof want, "%s: cannot open the file (No such file or directory)", missing);
    assert_string_equal(facenet_ctx_error(ctx), want);
    assert_int_equal(facenet_image_load(NULL, missing, &img), FACENET_ERR_IO); /* NULL ctx */

    const char *empty = tmp_path("empty.png");
    write_bytes(empty, "", 0);
    assert_int_equal(facenet_image_load(ctx, empty, &img), FACENET_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: the file is empty, not a JPEG, PNG or PPM/PGM image", empty);
    assert_string_equal(facenet_ctx_error(ctx), want);

    const char *text = tmp_path("notes.jpg");
    write_bytes(text, "hello, world\n", 13);
    assert_int_equal(facenet_image_load(ctx, text, &img), FACENET_ERR_UNSUPPORTED);
    snprintf(want, sizeof want, "%s: not a JPEG, PNG or PPM/PGM image", text);
    assert_string_equal(facenet_ctx_error(ctx), want);

    blob b = data_file("color.jpg");
    const char *photo = tmp_path("photo.jpg");
    write_bytes(photo, b.data, b.len / 2);
    assert_int_equal(facenet_image_load(ctx, photo, &img), FACENET_ERR_FORMAT);
    snprintf(want, sizeof want, "%s: truncated JPEG", photo);
    assert_string_equal(facenet_ctx_error(ctx), want);

    /* the whole file loads, by content, whatever its name */
    const char *renamed = tmp_path("photo.png");
    write_bytes(renamed, b.data, b.len);
    assert_int_equal(facenet_image_load(ctx, renamed, &img), FACENET_OK);
    assert_int_equal(img.width, 37);
    facenet_image_free(&img);

    /* a directory is not a file */
    assert_int_equal(facenet_image_load(ctx, tmp_dir, &img), FACENET_ERR_IO);
    assert_non_null(strstr(facenet_ctx_error(ctx), "cannot read the file"));

    remove(missing);
    remove(empty);
    remove(text);
    remove(photo);
    remove(renamed);
    free(b.data);
    facenet_ctx_free(ctx);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alloc),
        cmocka_unit_test(test_mirror),
        cmocka_unit_test(test_png_round_trip),
        cmocka_unit_test(test_pnm_round_trip),
        cmocka_unit_test(test_save_errors),
        cmocka_unit_test(test_pnm_parse),
        cmocka_unit_test(test_pnm_corrupt),
        cmocka_unit_test(test_png_variants),
        cmocka_unit_test(test_png_corrupt),
        cmocka_unit_test(test_jpeg_decode),
        cmocka_unit_test(test_jpeg_djpeg_parity),
        cmocka_unit_test(test_exif_orientation_decode),
        cmocka_unit_test(test_orient_by_hand),
        cmocka_unit_test(test_exif_odd),
        cmocka_unit_test(test_jpeg_corrupt),
        cmocka_unit_test(test_jpeg_scan_limit),
        cmocka_unit_test(test_jpeg_two_threads),
        cmocka_unit_test(test_not_an_image),
        cmocka_unit_test(test_load_errors),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (tmp_dir[0]) rmdir(tmp_dir);
    return failed;
}
