/*
 * golden.h - reading tests/golden/faceapi_demo.json: what face-api computed
 * on its demo photos, and the photos themselves, decoded and checked
 * against the golden pixel hash so a test never compares different pixels.
 *
 * The readers fail the running test (cmocka) when the golden file lacks
 * what they are asked for or holds something of another shape.
 */
#ifndef FN_TEST_GOLDEN_H
#define FN_TEST_GOLDEN_H

#include "detect/detect.h"
#include "facenet.h"
#include "util/json.h"

typedef struct golden {
    fn_json *root;
    const fn_json *photos; /* array */
    char photo_dir[4096];
} golden;

/* Load the golden file and locate the photos (models/face-api-1.7.15/demo).
 * Returns 0, or -1 after printing "SKIP: ..." when the photos are absent
 * (nothing is loaded then). */
int golden_open(golden *g);
/* The two halves of golden_open, for a test that needs face-api's numbers
 * whether or not the photos are there. Start from a zeroed golden (or call
 * golden_find_photos first): golden_find_photos only sets photo_dir and
 * returns 0, or -1 after printing "SKIP: ..."; golden_load only reads the
 * file. Without photo_dir, golden_load_photo must not be called. */
int golden_find_photos(golden *g);
void golden_load(golden *g);
void golden_close(golden *g);

size_t golden_photo_count(const golden *g);
const fn_json *golden_photo(const golden *g, size_t i);
const char *golden_photo_file(const golden *g, size_t i);
/* Decode photo i and check its pixels hash to the golden value (fails the
 * test otherwise). The caller frees the image. */
void golden_load_photo(const golden *g, size_t i, facenet_image *img);

/* Members of one face (or photo) object. */
double golden_num(const fn_json *obj, const char *key);
/* {x, y, w, h} as doubles, or as ints (which must be whole numbers). */
void golden_box(const fn_json *face, const char *key, double b[4]);
void golden_rect(const fn_json *face, const char *key, int r[4]);
/* The face's "box" and "score" as a detector's fn_face_box (floats). */
fn_face_box golden_face_box(const fn_json *face);
/* An array of n numbers, or of n/2 [x, y] pairs, as floats or doubles. */
void golden_floats(const fn_json *face, const char *key, float *out, size_t n);
void golden_doubles(const fn_json *face, const char *key, double *out, size_t n);

uint64_t golden_fnv1a64(const uint8_t *p, size_t n);

#endif
