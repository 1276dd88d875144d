#include "golden.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image/image.h"
#include "testutil.h"

uint64_t golden_fnv1a64(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

int golden_find_photos(golden *g) {
    const char *p = test_model_path("face-api-1.7.15/demo/sample1.jpg");
    if (!p) return -1;
    snprintf(g->photo_dir, sizeof g->photo_dir, "%s", p);
    *strrchr(g->photo_dir, '/') = '\0';
    return 0;
}

void golden_load(golden *g) {
    size_t len;
    char *text = (char *)test_read_file(test_source_path("tests/golden/faceapi_demo.json"), &len);
    assert_non_null(text);
    fn_error e;
    g->root = fn_json_parse(text, len, &e);
    free(text);
    if (!g->root) fail_msg("golden file: %s", e.msg);
    g->photos = fn_json_get(g->root, "photos");
    assert_non_null(g->photos);
}

int golden_open(golden *g) {
    memset(g, 0, sizeof *g);
    if (golden_find_photos(g) != 0) return -1;
    golden_load(g);
    return 0;
}

void golden_close(golden *g) {
    fn_json_free(g->root);
    memset(g, 0, sizeof *g);
}

size_t golden_photo_count(const golden *g) { return g->photos->count; }
const fn_json *golden_photo(const golden *g, size_t i) { return &g->photos->items[i]; }
const char *golden_photo_file(const golden *g, size_t i) { return fn_json_get(golden_photo(g, i), "file")->str; }

void golden_load_photo(const golden *g, size_t i, facenet_image *img) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", g->photo_dir, golden_photo_file(g, i));
    fn_error e;
    memset(img, 0, sizeof *img);
    if (fn_image_load(path, NULL, img, &e) != FACENET_OK) fail_msg("%s", e.msg);
    char hash[17];
    snprintf(hash, sizeof hash, "%016llx",
             (unsigned long long)golden_fnv1a64(img->data, (size_t)img->width * img->height * img->channels));
    const char *want = fn_json_get(golden_photo(g, i), "fnv1a64")->str;
    if (strcmp(hash, want) != 0)
        fail_msg("%s: decoded pixels hash to %s, the golden file's to %s: this JPEG decoder is not the one the "
                 "golden files were made with",
                 path, hash, want);
}

double golden_num(const fn_json *obj, const char *key) {
    const fn_json *v = fn_json_get(obj, key);
    if (!v || v->type != FN_JSON_NUMBER) fail_msg("golden file: no number '%s'", key);
    return v->number;
}

void golden_box(const fn_json *face, const char *key, double b[4]) {
    const fn_json *r = fn_json_get(face, key);
    if (!r) fail_msg("golden file: no '%s'", key);
    b[0] = golden_num(r, "x");
    b[1] = golden_num(r, "y");
    b[2] = golden_num(r, "w");
    b[3] = golden_num(r, "h");
}

void golden_rect(const fn_json *face, const char *key, int r[4]) {
    double b[4];
    golden_box(face, key, b);
    for (int i = 0; i < 4; i++) {
        r[i] = (int)b[i];
        if (r[i] != b[i]) fail_msg("golden file: '%s' is not in whole pixels", key);
    }
}

fn_face_box golden_face_box(const fn_json *face) {
    double b[4];
    golden_box(face, "box", b);
    fn_face_box box = {(float)b[0], (float)b[1], (float)b[2], (float)b[3], (float)golden_num(face, "score")};
    return box;
}

/* The array face[key], holding n numbers or n/2 [x, y] pairs. */
static const fn_json *number_array(const fn_json *face, const char *key, size_t n) {
    const fn_json *a = fn_json_get(face, key);
    if (!a || a->type != FN_JSON_ARRAY) fail_msg("golden file: no array '%s'", key);
    if (a->count != n && a->count * 2 != n)
        fail_msg("golden file: '%s' has %zu items, expected %zu or %zu pairs", key, a->count, n, n / 2);
    return a;
}

/* Number i of the n in a (from number_array). */
static double array_number(const fn_json *a, const char *key, size_t i, size_t n) {
    const fn_json *v = &a->items[a->count == n ? i : i / 2];
    if (a->count != n) {
        if (v->type != FN_JSON_ARRAY || v->count != 2)
            fail_msg("golden file: '%s' item %zu is not an [x, y] pair", key, i / 2);
        v = &v->items[i % 2];
    }
    if (v->type != FN_JSON_NUMBER) fail_msg("golden file: '%s' holds something other than numbers", key);
    return v->number;
}

void golden_floats(const fn_json *face, const char *key, float *out, size_t n) {
    const fn_json *a = number_array(face, key, n);
    for (size_t i = 0; i < n; i++) out[i] = (float)array_number(a, key, i, n);
}

void golden_doubles(const fn_json *face, const char *key, double *out, size_t n) {
    const fn_json *a = number_array(face, key, n);
    for (size_t i = 0; i < n; i++) out[i] = array_number(a, key, i, n);
}
