/*
 * facenet.h - face recognition in C: the whole public API.
 *
 * A convolutional network maps a face chip to a 128-d embedding on the unit
 * sphere; the Euclidean distance between two embeddings says how alike the
 * two faces are (FaceNet, Schroff et al. 2015). Verification, identification
 * and clustering are all distance tests on those vectors.
 *
 * Objects and their lifetimes:
 *   facenet_ctx      threads, logging and the text of the last error. Use one
 *                    context from one thread at a time; create one per thread
 *                    if several threads call the library.
 *   facenet_model    an immutable network loaded from a model file
 *                    (safetensors). One model serves any number of sessions.
 *   facenet_session  per-thread scratch memory for running one model.
 *   facenet_image    a plain pixel buffer (caller-visible struct).
 *
 * Errors are values: every call that can fail returns a facenet_status, and
 * facenet_ctx_error() gives a sentence about the last failure in that context
 * ("model.safetensors: tensor 'fc' runs past the end of the file").
 *
 * Usage:
 *
 *   facenet_ctx *ctx;
 *   facenet_ctx_params cp = facenet_ctx_default_params();
 *   cp.n_threads = 2;
 *   if (facenet_ctx_create(&cp, &ctx) != FACENET_OK) return 1;
 *
 *   facenet_model *model;
 *   if (facenet_model_load(ctx, "models/dlib_resnet29.safetensors", &model)) {
 *       fprintf(stderr, "%s\n", facenet_ctx_error(ctx));
 *       return 1;
 *   }
 *   facenet_session *s;
 *   facenet_session_create(ctx, model, &s);
 *
 *   facenet_image chip;
 *   facenet_image_load(ctx, "face.png", &chip);
 *   float emb[FACENET_EMBEDDING_DIM];
 *   facenet_embed_chips(s, &chip, 1, emb, 0);   // L2-normalized
 *
 *   facenet_image_free(&chip);
 *   facenet_session_free(s);
 *   facenet_model_free(model);
 *   facenet_ctx_free(ctx);
 */
#ifndef FACENET_H
#define FACENET_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) && defined(FACENET_SHARED_BUILD)
#define FACENET_API __declspec(dllexport)
#elif defined(__GNUC__)
#define FACENET_API __attribute__((visibility("default")))
#else
#define FACENET_API
#endif

#define FACENET_VERSION_MAJOR 0
#define FACENET_VERSION_MINOR 1
#define FACENET_VERSION_PATCH 0
#define FACENET_VERSION_STRING "0.1.0"

/* The embedding size of the networks this library ships. */
#define FACENET_EMBEDDING_DIM 128

/* Images larger than this many pixels (width x height) are refused before
 * any pixel memory is allocated. 64 Mpx covers any camera photo. */
#define FACENET_MAX_IMAGE_PIXELS (64u * 1024u * 1024u)
/* ...and so is any side longer than this. */
#define FACENET_MAX_IMAGE_SIDE 32768

FACENET_API const char *facenet_version(void);

/* ---------------------------------------------------------------- errors */

/* Append-only: values never change meaning. */
typedef enum facenet_status {
    FACENET_OK = 0,
    FACENET_ERR_INVALID_ARGUMENT = 1, /* the caller broke an API contract */
    FACENET_ERR_NO_MEMORY = 2,
    FACENET_ERR_IO = 3,           /* a file could not be opened, read or written */
    FACENET_ERR_FORMAT = 4,       /* input data is malformed or corrupt */
    FACENET_ERR_UNSUPPORTED = 5,  /* well-formed, but a variant we do not handle */
    FACENET_ERR_TOO_LARGE = 6,    /* over a documented size cap */
    FACENET_ERR_MODEL = 7,        /* a model file does not fit its network */
    FACENET_ERR_NOT_FOUND = 8,    /* a named thing does not exist */
    FACENET_ERR_INTERNAL = 9      /* a bug: please report it */
} facenet_status;

/* A short fixed name for a status ("corrupt or malformed data"). */
FACENET_API const char *facenet_status_str(facenet_status status);

/* ---------------------------------------------------------------- context */

typedef struct facenet_ctx facenet_ctx;

/* Log levels for the logging callback. */
enum { FACENET_LOG_ERROR = 0, FACENET_LOG_WARN = 1, FACENET_LOG_INFO = 2, FACENET_LOG_DEBUG = 3 };

typedef void (*facenet_log_fn)(void *user, int level, const char *message);

typedef struct facenet_ctx_params {
    int n_threads;          /* worker threads for compute; 0 = number of cores */
    facenet_log_fn log;     /* NULL: no logging */
    void *log_user;
    int log_level;          /* messages above this level are dropped */
} facenet_ctx_params;

FACENET_API facenet_ctx_params facenet_ctx_default_params(void);
FACENET_API facenet_status facenet_ctx_create(const facenet_ctx_params *params, facenet_ctx **out);
FACENET_API void facenet_ctx_free(facenet_ctx *ctx);
/* The detail of the last failed call made with this context ("" if none). */
FACENET_API const char *facenet_ctx_error(const facenet_ctx *ctx);
FACENET_API int facenet_ctx_threads(const facenet_ctx *ctx);

/* ---------------------------------------------------------------- images */

/* 8-bit pixels, rows top to bottom, channels interleaved, no row padding.
 * channels is 1 (grey) or 3 (RGB). Images returned by the library own their
 * data; release them with facenet_image_free(). */
typedef struct facenet_image {
    int width;
    int height;
    int channels;
    uint8_t *data;
} facenet_image;

/* Decode a JPEG, PNG or binary PPM/PGM file (chosen by content, not by name).
 * The result is RGB (channels = 3). JPEG EXIF orientation is applied. */
FACENET_API facenet_status facenet_image_load(facenet_ctx *ctx, const char *path, facenet_image *out);
/* Same, from memory. */
FACENET_API facenet_status facenet_image_decode(facenet_ctx *ctx, const void *data, size_t size,
                                                facenet_image *out);
/* Write PNG (.png) or binary PPM/PGM (any other name), by file name. */
FACENET_API facenet_status facenet_image_save(facenet_ctx *ctx, const facenet_image *img, const char *path);
/* Allocate an image of the given size, zero-filled. */
FACENET_API facenet_status facenet_image_alloc(facenet_ctx *ctx, int width, int height, int channels,
                                               facenet_image *out);
/* Copy the rectangle [x, x+w) x [y, y+h) of img into a new image; the
 * rectangle must lie inside img. */
FACENET_API facenet_status facenet_image_crop(facenet_ctx *ctx, const facenet_image *img, int x, int y, int w,
                                              int h, facenet_image *out);
/* Releases the pixels and zeroes the struct; safe on a zeroed struct. */
FACENET_API void facenet_image_free(facenet_image *img);

/* ---------------------------------------------------------------- models */

typedef struct facenet_model facenet_model;

/* Load a model file written by facenet_convert_tfjs() or by training.
 * The file is memory-mapped and validated in full before use. */
FACENET_API facenet_status facenet_model_load(facenet_ctx *ctx, const char *path, facenet_model **out);
FACENET_API void facenet_model_free(facenet_model *model);

/* The model file's metadata value for key, or NULL. Keys include
 * "architecture", "input_size", "preprocess", "embedding_size", "model_id". */
FACENET_API const char *facenet_model_meta(const facenet_model *model, const char *key);
/* The architecture name ("dlib_resnet29"). */
FACENET_API const char *facenet_model_architecture(const facenet_model *model);
/* Side of the square input in pixels (150 for the ResNet). */
FACENET_API int facenet_model_input_size(const facenet_model *model);
/* Length of the embedding (128), or 0 if the model is not an embedding network. */
FACENET_API int facenet_model_embedding_dim(const facenet_model *model);

/* ---------------------------------------------------------------- sessions */

typedef struct facenet_session facenet_session;

/* A session runs one model on the calling thread, with the context's worker
 * threads. It keeps its scratch memory between calls. */
FACENET_API facenet_status facenet_session_create(facenet_ctx *ctx, const facenet_model *model,
                                                  facenet_session **out);
FACENET_API void facenet_session_free(facenet_session *session);

/* ---------------------------------------------------------------- compute backend */

/* The backend new sessions compute with, e.g. "oneDNN 2.6.3 (f32)" or
 * "reference". Chosen when the library is built; setting the environment
 * variable FACENET_BACKEND=ref makes sessions use the plain reference code. */
FACENET_API const char *facenet_backend_name(void);

/* Measure this machine's peak float32 multiply-add rate, in GFLOP/s (two
 * per multiply-add), with n_threads threads each running a loop of
 * independent vector FMAs for about ms milliseconds. *isa (if not NULL)
 * names the instruction set used ("avx512f", "avx2+fma" or "scalar"). For
 * judging benchmark figures: a network cannot run faster than this. */
FACENET_API double facenet_fma_peak_gflops(int n_threads, int ms, const char **isa);

/* ============================================================ end of compute backend */

/* ---------------------------------------------------------------- embedding */

enum {
    /* Return the network's raw output (what face-api compares, norm ~1.4)
     * instead of the L2-normalized embedding. */
    FACENET_EMBED_RAW = 1 << 0
};

/* Embed n face chips. A chip that is not the model's input size is padded to
 * a square with black at both sides (the longer half after the image) and
 * resized with TF's legacy bilinear resize, as face-api does. Grey chips are
 * replicated to RGB. out receives n * facenet_model_embedding_dim() floats. */
FACENET_API facenet_status facenet_embed_chips(facenet_session *session, const facenet_image *chips, int n,
                                               float *out, unsigned flags);

/* Euclidean distance between two vectors of length dim. */
FACENET_API float facenet_distance(const float *a, const float *b, int dim);

/* ---------------------------------------------------------------- faces in photos */

#define FACENET_LANDMARKS 68

/* How a face chip is cut from a photo for the embedding network. */
typedef enum facenet_align {
    /* Rotation, scale and translation fitted from the landmarks to a
     * canonical template, as dlib cuts the chips this network was trained on
     * (docs/alignment.md). The default. */
    FACENET_ALIGN_SIMILARITY = 0,
    /* face-api's axis-aligned square around eyes and mouth, no rotation:
     * bit-for-bit the original library's crop, for parity. */
    FACENET_ALIGN_FACEAPI = 1
} facenet_align;

typedef struct facenet_face {
    float x, y, width, height;              /* detection box, image pixels */
    float score;                           /* detector confidence, 0..1 */
    float landmarks[2 * FACENET_LANDMARKS]; /* x0, y0, x1, y1, ...: iBUG 68-point order, image pixels */
    int has_embedding;
    float embedding[FACENET_EMBEDDING_DIM]; /* unit length, unless FACENET_EMBED_RAW */
} facenet_face;

typedef struct facenet_pipeline_params {
    float min_score;      /* keep detections scoring above this (0.5) */
    int max_faces;        /* at most this many faces, best first (100) */
    float iou;            /* non-maximum suppression overlap (0: the detector's own default) */
    int tiny_input_size;  /* tiny detector input, a multiple of 32 (416) */
    facenet_align align;  /* FACENET_ALIGN_SIMILARITY */
    int embed;            /* 1: compute embeddings (needs an embedding model) */
    unsigned embed_flags; /* FACENET_EMBED_RAW for face-api's raw vectors */
    /* 1: also look for faces in the photo turned by 90, 180 and 270 degrees
     * (photos of unknown orientation, e.g. without an EXIF tag); four times
     * the detection work. 0: upright faces only (the default). */
    int all_orientations;
} facenet_pipeline_params;

/* Milliseconds spent in each stage by the last facenet_pipeline_run(). */
typedef struct facenet_timings {
    double detect_ms, landmarks_ms, align_ms, embed_ms;
} facenet_timings;

typedef struct facenet_pipeline facenet_pipeline;

FACENET_API facenet_pipeline_params facenet_pipeline_default_params(void);

/* Detect, find landmarks, align and embed: FaceNet's pipeline over three
 * models (a detector: ssd_mobilenetv1 or tiny_face_detector; a landmark
 * model: face_landmark_68 or face_landmark_68_tiny; an embedding model, which
 * may be NULL when params->embed is 0). The models must outlive the
 * pipeline; the pipeline holds the scratch memory, so use one per thread. */
FACENET_API facenet_status facenet_pipeline_create(facenet_ctx *ctx, const facenet_model *detector,
                                                   const facenet_model *landmarks, const facenet_model *embedder,
                                                   const facenet_pipeline_params *params,
                                                   facenet_pipeline **out);
FACENET_API void facenet_pipeline_free(facenet_pipeline *p);

/* Find the faces in img (any size up to the image caps, 1 or 3 channels; a
 * caller's RGB buffer can be wrapped in a facenet_image without copying).
 * Fills up to cap faces, best score first, and sets *n to the number
 * filled; zero faces is not an error. */
FACENET_API facenet_status facenet_pipeline_run(facenet_pipeline *p, const facenet_image *img,
                                                facenet_face *faces, int cap, int *n);
/* The aligned chip (the embedding network's input size, RGB) of a face
 * that facenet_pipeline_run() found in img. */
FACENET_API facenet_status facenet_pipeline_chip(facenet_pipeline *p, const facenet_image *img,
                                                 const facenet_face *face, facenet_image *chip);
FACENET_API facenet_timings facenet_pipeline_timings(const facenet_pipeline *p);

/* The distance below which two unit embeddings of this model are judged the
 * same person: the model file's "threshold" metadata if present, otherwise
 * the library's default for the architecture. */
FACENET_API float facenet_model_threshold(const facenet_model *model);

/* Draw the faces' boxes and landmarks onto img (RGB), for looking at results. */
FACENET_API void facenet_draw_faces(facenet_image *img, const facenet_face *faces, int n);

/* ---------------------------------------------------------------- conversion */

typedef struct facenet_convert_params {
    /* Architecture name to record; NULL: inferred from the tensor names. */
    const char *architecture;
    /* Free-form model identifier to record; NULL: derived from the file name. */
    const char *model_id;
} facenet_convert_params;

FACENET_API facenet_convert_params facenet_convert_default_params(void);

/* Convert a TF.js weights manifest (a JSON array of groups, each naming its
 * shard files relative to the manifest) into a safetensors model file.
 * Quantized weights (uint8, uint16, float16) are dequantized to float32. */
FACENET_API facenet_status facenet_convert_tfjs(facenet_ctx *ctx, const char *manifest_path,
                                                const char *out_path, const facenet_convert_params *params);

/* ================================================================ evaluation
 * Face verification benchmarks in the format of Labeled Faces in the Wild
 * (docs/evaluation.md): the official pairs files, the 10-fold protocol of
 * FaceNet and davidsandberg/facenet on pair distances, and an on-disk cache
 * of embeddings that makes a long run resumable. `facenet eval lfw` is
 * built on these calls.
 *
 *   facenet_eval_pairs *pairs;
 *   facenet_eval_pairs_load(ctx, "lfw/pairs.txt", "lfw", 0, &pairs);
 *   // embed each facenet_eval_pairs_image(pairs, i) once, then for pair k:
 *   //   dist[k] = facenet_distance(emb[p->image[0]], emb[p->image[1]], 128);
 *   //   same[k] = p->same; fold[k] = p->fold;
 *   facenet_eval_params ep = facenet_eval_default_params();
 *   facenet_eval_result r;
 *   facenet_eval_folds(ctx, dist, same, fold, n, &ep, &r);
 *   printf("%.2f%% +- %.2f%%\n", 100 * r.accuracy, 100 * r.accuracy_std);
 */

/* Most folds a pairs file or a protocol run may have. */
#define FACENET_EVAL_MAX_FOLDS 100

typedef struct facenet_eval_pairs facenet_eval_pairs;

typedef struct facenet_eval_pair {
    int fold;     /* 0-based; View 1 files are one fold, 0 */
    int same;     /* 1: a matched pair (one person), 0: mismatched */
    int image[2]; /* indices into the pair set's images */
    int line;     /* line of the pairs file, for messages */
} facenet_eval_pair;

/* Read a pairs file: pairs.txt (View 2: "10 300" then the folds) or
 * pairsDevTrain.txt / pairsDevTest.txt (View 1: "N" then the pairs). Image
 * paths are image_dir/NAME/NAME_%04d.jpg. limit > 0 keeps the first limit
 * matched and first limit mismatched pairs of every fold, for quick runs.
 * Errors name the file and line ("pairs.txt line 14: expected 3 or 4
 * fields, found 5"). */
FACENET_API facenet_status facenet_eval_pairs_load(facenet_ctx *ctx, const char *path, const char *image_dir,
                                                   int limit, facenet_eval_pairs **out);
FACENET_API void facenet_eval_pairs_free(facenet_eval_pairs *pairs);
/* 2 for a file with folds (View 2), 1 for one without (View 1). */
FACENET_API int facenet_eval_pairs_view(const facenet_eval_pairs *pairs);
/* Folds in the file (10 for pairs.txt, 1 for View 1). */
FACENET_API int facenet_eval_pairs_folds(const facenet_eval_pairs *pairs);
FACENET_API int facenet_eval_pairs_count(const facenet_eval_pairs *pairs);
FACENET_API const facenet_eval_pair *facenet_eval_pairs_get(const facenet_eval_pairs *pairs, int i);
/* The distinct images the pairs use, each listed once, in order of first use. */
FACENET_API int facenet_eval_pairs_image_count(const facenet_eval_pairs *pairs);
/* image_dir/NAME/NAME_0001.jpg */
FACENET_API const char *facenet_eval_pairs_image(const facenet_eval_pairs *pairs, int i);
/* NAME/NAME_0001.jpg: the path inside the image folder (a stable key). */
FACENET_API const char *facenet_eval_pairs_image_name(const facenet_eval_pairs *pairs, int i);

typedef struct facenet_eval_params {
    double far_target; /* the false accept rate at which VAL is reported (1e-3) */
} facenet_eval_params;

FACENET_API facenet_eval_params facenet_eval_default_params(void);

/* What the protocol measures. A pair is judged "same" when its distance is
 * below (<) a threshold. Standard deviations are over folds, population
 * form (divide by the number of folds), as numpy's np.std in
 * davidsandberg/facenet. With train/test (View 1) there is one fold and
 * every std is 0. */
typedef struct facenet_eval_result {
    int n_pairs, n_same, n_diff; /* pairs measured */
    int n_folds;                 /* test folds: 10 for View 2, 1 for View 1 */
    double accuracy, accuracy_std; /* mean over folds of the test fold's accuracy at the
                                      threshold chosen on the other folds */
    double far_target;
    double val, val_std;  /* true accept rate at the threshold where the training folds' FAR is far_target */
    double far, far_std;  /* the false accept rate that threshold gives on the test fold */
    double auc;           /* area under the ROC of the test pairs */
    double eer;           /* equal error rate: where the false accept and false reject rates meet */
    double eer_threshold; /* the distance at the equal error rate */
    double threshold;     /* the best-accuracy threshold on all pairs (View 1: the training pairs):
                             the model's default threshold */
    double threshold_accuracy; /* accuracy at threshold on the pairs it was chosen on */
    double fold_accuracy[FACENET_EVAL_MAX_FOLDS];
    double fold_threshold[FACENET_EVAL_MAX_FOLDS]; /* chosen on the other folds */
    double fold_val[FACENET_EVAL_MAX_FOLDS];
    double fold_far[FACENET_EVAL_MAX_FOLDS];
    double fold_val_threshold[FACENET_EVAL_MAX_FOLDS];
} facenet_eval_result;

/* Cross-validation over folds 0..F-1 (F >= 2, every fold with at least one
 * matched and one mismatched pair): each fold is tested with thresholds
 * chosen on the others. dist: n distances, same: 1/0, fold: fold of each. */
FACENET_API facenet_status facenet_eval_folds(facenet_ctx *ctx, const float *dist, const int *same,
                                              const int *fold, int n, const facenet_eval_params *params,
                                              facenet_eval_result *out);
/* View 1: thresholds chosen on the training pairs, measured on the test pairs. */
FACENET_API facenet_status facenet_eval_train_test(facenet_ctx *ctx, const float *train_dist,
                                                   const int *train_same, int n_train, const float *test_dist,
                                                   const int *test_same, int n_test,
                                                   const facenet_eval_params *params,
                                                   facenet_eval_result *out);
/* The ROC of n pairs: one point (fpr, tpr, d) per distinct distance d,
 * ascending, with the pairs at distance <= d accepted; the curve starts at
 * (0, 0), which is not written. Writes up to cap points; *n_points is the
 * number of the whole curve (at most n), so cap 0 sizes the buffers. */
FACENET_API facenet_status facenet_eval_roc(facenet_ctx *ctx, const float *dist, const int *same, int n,
                                            double *fpr, double *tpr, double *distance, int cap,
                                            int *n_points);

/* An append-only file of embeddings, one record per image, each with a
 * checksum: a run that is killed loses at most the record being written,
 * which the next open detects and drops. One file per key (the model and
 * every option that changes an embedding), in a folder. Use from one thread
 * at a time. */
typedef struct facenet_eval_cache facenet_eval_cache;

/* Flags stored with each embedding. */
enum {
    FACENET_EVAL_FACE = 1 << 0,    /* a face was detected; the embedding is of its aligned chip */
    FACENET_EVAL_FALLBACK = 1 << 1 /* none was: the embedding is of a fixed crop of the photo */
};

typedef struct facenet_eval_entry {
    unsigned flags;  /* FACENET_EVAL_* */
    int n_faces;     /* faces the detector found (capped at 65535) */
    float box[4];    /* x, y, w, h in photo pixels: the face used, or the fallback crop */
} facenet_eval_entry;

/* Open (creating folder and file if needed) the cache for key in dir, with
 * embeddings of dim floats, and load the records it holds. The file is
 * dir/<hash of key>.fnec; its header holds the key, which must match. A
 * torn last record is dropped (facenet_eval_cache_dropped tells how many
 * bytes). Another process holding the file is an error. */
FACENET_API facenet_status facenet_eval_cache_open(facenet_ctx *ctx, const char *dir, const char *key,
                                                   int dim, facenet_eval_cache **out);
FACENET_API void facenet_eval_cache_close(facenet_eval_cache *cache);
FACENET_API const char *facenet_eval_cache_path(const facenet_eval_cache *cache);
/* Records loaded by open (not counting those put since). */
FACENET_API int facenet_eval_cache_loaded(const facenet_eval_cache *cache);
/* Bytes of a damaged tail that open dropped (0 for a clean file). */
FACENET_API size_t facenet_eval_cache_dropped(const facenet_eval_cache *cache);
/* Look name up: 1 and the embedding (dim floats) and entry if present, else 0. */
FACENET_API int facenet_eval_cache_get(const facenet_eval_cache *cache, const char *name, float *embedding,
                                       facenet_eval_entry *entry);
/* Append a record and flush it to the file. */
FACENET_API facenet_status facenet_eval_cache_put(facenet_eval_cache *cache, const char *name,
                                                  const float *embedding, const facenet_eval_entry *entry);
/* ============================================================ end of evaluation */

#ifdef __cplusplus
}
#endif

#endif /* FACENET_H */
