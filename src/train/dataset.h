/*
 * dataset.h - the data side of training: folder-per-identity datasets, people
 * lists and name patterns that choose identities, face chips (aligned once
 * and cached on disk, or read ready-made), the P x K batch sampler,
 * augmentation, and the loader thread that prepares the next batch while
 * the network computes the current one.
 *
 * A dataset is a folder of folders, one per identity: DIR/NAME/FILE with
 * FILE a .jpg, .png, .pgm or .ppm (LFW, VGGFace2, CASIA-WebFace, the AT&T
 * faces' s1..s40/N.pgm).
 * Everything random is drawn from an fn_rng seeded from the run's seed and
 * the step number, so batch k is the same whatever happened before it: a
 * resumed run sees exactly the batches an uninterrupted one would have.
 *
 *   fn_people *pl;  fn_people_load("peopleDevTrain.txt", &pl, &e);
 *   fn_ds_select sel = {.people = pl, .min_images = 2};
 *   fn_dataset *d;  fn_dataset_list("lfw", &sel, &d, &e);
 *   fn_chips ch;    fn_chips_load(d, &src, 96, progress, user, &ch, &e); // drops faceless photos
 *   fn_loader *l = fn_loader_create(d, &ch, &lp, &e);
 *   for (int64_t s = 0; s < steps; s++) {
 *       const fn_batch *b = fn_loader_next(l);   // b->x: b->n chips, NHWC floats
 *       ...
 *   }
 */
#ifndef FN_TRAIN_DATASET_H
#define FN_TRAIN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"
#include "nets/preprocess.h"
#include "train/train.h"

/* Caps on what a dataset or a people list may hold: every allocation is
 * bounded before it is made. */
#define FN_PEOPLE_MAX_LINE 1024        /* bytes per line, without the newline */
#define FN_PEOPLE_MAX_NAME 255         /* bytes per identity name */
#define FN_PEOPLE_MAX_COUNT 1000000    /* identities in a list, images per identity */
#define FN_PEOPLE_MAX_FILE (64u << 20) /* bytes */
#define FN_DS_MAX_IDS 1000000          /* identity folders */
#define FN_DS_MAX_IMAGES 20000000      /* images in a dataset */
#define FN_DS_MAX_FILE_NAME 255        /* bytes of an image's file name */

/* ------------------------------------------------------------ people lists */

/* LFW's people files: peopleDevTrain.txt / peopleDevTest.txt ("N" then N
 * lines "NAME COUNT") and people.txt ("F" then F sets, each "N" then N
 * such lines). COUNT is the number of images of NAME. Errors name the file
 * and line ("people.txt line 7: expected NAME COUNT, found 3 fields"). */
typedef struct fn_people_entry {
    char *name;
    int count;
    int line;
} fn_people_entry;

typedef struct fn_people {
    int n; /* entries, over all sets */
    fn_people_entry *entries;
    int n_sets; /* 1 for a dev file, F for people.txt */
} fn_people;

facenet_status fn_people_parse(const char *source, const char *text, size_t len, fn_people **out, fn_error *e);
facenet_status fn_people_load(const char *path, fn_people **out, fn_error *e);
void fn_people_free(fn_people *p);
/* 1 if name is an identity name: printable ASCII, no '/', not "." or "..",
 * at most FN_PEOPLE_MAX_NAME bytes. */
int fn_identity_name_ok(const char *name, size_t len);

/* ------------------------------------------------------------ name patterns */

/* A pattern chooses identities by folder name: a shell glob ("s*",
 * "A*_B?sh"), or a numbered range "s1..s30" (the names PREFIX followed by a
 * number from 1 to 30: s1, s2, ..., s30, but not s01 or s31). Several
 * patterns may be given comma-separated ("s1..s5,s9"). */
facenet_status fn_pattern_check(const char *pattern, fn_error *e);
int fn_pattern_match(const char *pattern, const char *name);

/* ------------------------------------------------------------ listing */

typedef struct fn_ds_select {
    const fn_people *people; /* NULL: every folder; else only these (each must exist) */
    const char *include;     /* patterns; NULL: all */
    const char *exclude;     /* patterns; NULL: none */
    /* Identities with fewer images are left out (and counted): an identity
     * with one image cannot make an anchor-positive pair. 0 means 1. */
    int min_images;
} fn_ds_select;

typedef struct fn_ds_identity {
    char *name;
    int first, count; /* images [first, first + count) */
} fn_ds_identity;

typedef struct fn_dataset {
    char *root;
    int n_ids;
    fn_ds_identity *ids;
    int n_images;
    char **files; /* NAME/FILE, relative to root, sorted by name then file */
    int *label;   /* identity index of each image */
    int left_out_ids, left_out_images; /* under min_images */
} fn_dataset;

/* List root's identity folders (sorted by name) and their images (sorted),
 * keeping those the selection names. A people list naming a folder that
 * does not exist is an error, as is a selection that keeps nothing. */
facenet_status fn_dataset_list(const char *root, const fn_ds_select *sel, fn_dataset **out, fn_error *e);
void fn_dataset_free(fn_dataset *d);

/* ------------------------------------------------------------ face chips */

/* The chips of a dataset's images, size x size RGB, made the way the
 * inference path prepares a chip (facenet_embed_chips: padded to a square,
 * legacy bilinear resize). */
typedef struct fn_chips {
    int size;
    int n;        /* the dataset's images */
    uint8_t *pix; /* n x size x size x 3 */
    uint8_t *ok;  /* 1: image i has a chip; 0: no face was found in the photo */
    int n_noface;     /* photos without a face (photos mode) */
    int n_unreadable; /* images that could not be decoded: skipped like faceless photos */
    int n_cached, n_made;
    char example_bad[256]; /* one of the skipped images, for messages */
} fn_chips;

/* Where chips come from. chips mode (pipeline NULL): every image is a chip
 * already, resized to size. photos mode: each image is a photo; the
 * pipeline finds its face (the one nearest the centre if near it, else the
 * largest), aligns it, and the chip is kept in the cache file, so a second
 * run, or a resumed one, aligns nothing again. The cache keeps the
 * pipeline's 150 px chips, so networks of any input size share it. */
typedef struct fn_chip_source {
    facenet_pipeline *pipeline; /* NULL: chips mode */
    const char *cache_dir;      /* photos mode: NULL for no cache */
    const char *cache_key;      /* what made the chips: models, options; part of the file's identity */
} fn_chip_source;

/* Called now and then while chips are made: done of total images. */
typedef void (*fn_chips_progress)(void *user, int done, int total, int noface);

facenet_status fn_chips_load(const fn_dataset *d, const fn_chip_source *src, int size, fn_chips_progress cb,
                             void *user, fn_chips *out, fn_error *e);
void fn_chips_free(fn_chips *c);
/* Drop the images without a chip from both, then the identities left with
 * fewer than min_images images (counted in d->left_out_*). */
facenet_status fn_dataset_keep_chips(fn_dataset *d, fn_chips *c, int min_images, fn_error *e);
/* A chip as the inference path prepares it: img padded to a square and
 * resized to size x size, RGB bytes into dst (size * size * 3). */
facenet_status fn_chip_resize(const facenet_image *img, int size, uint8_t *dst, fn_error *e);

/* ------------------------------------------------------------ the chip cache file */

/* Little-endian throughout:
 *   header  "FNCHIPS1"  u32 version (1)  u32 size  u32 key_len  key bytes
 *           u32 crc32 of everything before it
 *   record  u16 name_len  u16 flags (1: a face, so pixels follow)  u32 zero
 *           u64 stamp (the photo's size and modification time, hashed)
 *           name bytes  [size * size * 3 pixels]  u32 crc32 of the record before it
 * Appended one record at a time; a torn last record fails its checksum and
 * is dropped with everything after it. */
#define FN_CHIPC_MAGIC "FNCHIPS1"
#define FN_CHIPC_VERSION 1
#define FN_CHIPC_MAX_SIZE 1024
#define FN_CHIPC_MAX_KEY 65536
#define FN_CHIPC_MAX_NAME 1024
#define FN_CHIPC_FACE 1

typedef struct fn_chipc_record {
    const char *name; /* into the scanned bytes, name_len long, not NUL-terminated */
    size_t name_len;
    unsigned flags;
    uint64_t stamp;
    const uint8_t *pix; /* size * size * 3, or NULL without a face */
} fn_chipc_record;

typedef facenet_status (*fn_chipc_visit)(void *user, const fn_chipc_record *r);

/* Check the header (size and key must match unless want_size is 0 / key
 * NULL) and visit every valid record; *valid_end is where they end. A bad
 * or torn header is an error (*torn says it is only cut short). */
facenet_status fn_chipc_scan(const uint8_t *data, size_t len, int want_size, const char *key,
                             fn_chipc_visit visit, void *user, size_t *valid_end, int *torn, fn_error *e);

/* ------------------------------------------------------------ sampling */

/* The rows of batch `step`: P identities drawn at random without
 * replacement, up to K images of each drawn without replacement. An
 * identity with fewer than K images gives all it has (at least 2; datasets
 * keep only identities with min_images >= 2), and more identities are drawn
 * until the batch has P * K rows or the identities run out; the last one
 * drawn may be cut short to fit (a single row is still a negative). Writes up to
 * P * K image indices and their labels (identity indices); returns the
 * number of rows. Depends only on (seed, step). */
int fn_sample_batch(const fn_dataset *d, int P, int K, uint64_t seed, int64_t step, int *index, int *labels);
/* The generator of batch `step`'s draws (sampling, then augmentation). */
void fn_step_rng(fn_rng *r, uint64_t seed, int64_t step, uint64_t stream);

/* ------------------------------------------------------------ augmentation */

typedef struct fn_augment {
    float crop;       /* random crop: a square of 1 - crop .. 1 of the side, anywhere inside,
                         resized back (0.1); 0: none */
    int flip;         /* mirror half the chips (1) */
    float brightness; /* add U(-b, b) * 255 to every pixel (0.1) */
    float contrast;   /* scale around the chip's mean by U(1 - c, 1 + c) (0.2) */
    float erase;      /* random erasing (Zhong et al. 2017): the probability that a
                         rectangle of 2-40% of the chip, aspect 0.3-3.3, is filled
                         with uniform noise (0: never) */
} fn_augment;

fn_augment fn_augment_default(void);
/* src: a size x size x 3 chip; dst: size * size * 3 floats, the augmented
 * chip normalized by norm as the network's input. a NULL: none (validation). */
void fn_augment_chip(const uint8_t *src, int size, const fn_augment *a, fn_rng *r, const fn_norm *norm,
                     float *dst);

/* ------------------------------------------------------------ the loader thread */

typedef struct fn_batch {
    int64_t step;
    int n;          /* rows */
    float *x;       /* n x size x size x 3, normalized */
    int *labels;    /* identity of each row */
    int *index;     /* image of each row */
} fn_batch;

typedef struct fn_loader_params {
    int P, K;
    uint64_t seed;
    int64_t first_step; /* the first batch to produce (a resumed run's step) */
    fn_augment augment;
    fn_norm norm;
} fn_loader_params;

typedef struct fn_loader fn_loader;

/* Start a thread that prepares batches first_step, first_step + 1, ...,
 * two ahead of the consumer. d and c must outlive the loader. */
fn_loader *fn_loader_create(const fn_dataset *d, const fn_chips *c, const fn_loader_params *p, fn_error *e);
/* The next batch, waiting for it if needed; valid until the next call. */
const fn_batch *fn_loader_next(fn_loader *l);
void fn_loader_free(fn_loader *l);
/* Prepare batch `step` on the calling thread (what the loader thread runs). */
void fn_make_batch(const fn_dataset *d, const fn_chips *c, const fn_loader_params *p, int64_t step,
                   fn_batch *b);

#endif /* FN_TRAIN_DATASET_H */
