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

/* How the networks compute in the sessions and pipelines of a context. */
typedef enum facenet_precision {
    FACENET_PRECISION_F32 = 0, /* float32 (the default) */
    /* 8-bit integers: about 2-3x faster on CPUs with int8 dot products
     * (AVX-512 VNNI), for each network whose model file carries int8
     * calibration (facenet_quantizer_write, `facenet quantize`). The
     * embedding model must carry one: creating a session or pipeline with
     * one that does not is an error. A detector without one (or one with no
     * int8 form, as the landmark networks) runs in float32. Accuracy and
     * speed: docs/performance.md. */
    FACENET_PRECISION_INT8 = 1
} facenet_precision;

typedef struct facenet_ctx_params {
    int n_threads;          /* worker threads for compute; 0 = number of cores */
    facenet_log_fn log;     /* NULL: no logging */
    void *log_user;
    int log_level;          /* messages above this level are dropped */
    facenet_precision precision; /* embedding networks: FACENET_PRECISION_F32 */
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
 * The result is RGB (channels = 3). JPEG EXIF orientation is applied. A
 * large single-scan JPEG is decoded on two of the context's threads when it
 * has them (the same pixels as on one). */
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
/* A new image, img mirrored left to right. */
FACENET_API facenet_status facenet_image_mirror(facenet_ctx *ctx, const facenet_image *img, facenet_image *out);
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
/* Set one metadata entry of the model file at path (add it, or replace its
 * value), keeping the tensors as they are; the file is replaced atomically.
 * Keys that describe the tensors (architecture, input_size, ...) are
 * refused; "threshold" must be a distance in (0, 4). Models loaded before
 * keep the old values. `facenet eval lfw --write-threshold` uses this. */
FACENET_API facenet_status facenet_model_set_meta(facenet_ctx *ctx, const char *path, const char *key,
                                                  const char *value);

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
    FACENET_EMBED_RAW = 1 << 0,
    /* Test-time augmentation: embed each chip and its mirror image and
     * return the mean of the two embeddings, back on the unit sphere (with
     * FACENET_EMBED_RAW, the plain mean of the raw vectors). Twice the
     * work; better accuracy (docs/evaluation.md). The pipeline's default. */
    FACENET_EMBED_FLIP = 1 << 1
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
    unsigned embed_flags; /* FACENET_EMBED_FLIP (default); | FACENET_EMBED_RAW for face-api's raw vectors */
    /* 1: also look for faces in the photo turned by 90, 180 and 270 degrees
     * (photos of unknown orientation, e.g. without an EXIF tag); four times
     * the detection work. 0: upright faces only (the default). */
    int all_orientations;
    /* Similarity alignment: the margin around the landmark template, as a
     * fraction of the face's size on each side (0.25, dlib's framing, which
     * the embedding network was trained on). */
    float align_padding;
    /* Close-ups: SSD misses faces that fill much of the photo (a face of
     * 40% of a 250 px portrait scores below 0.1, and above 0.8 once the
     * photo is shown with a margin around it). The close-up pass detects
     * again in the photo shrunk to half the detector's view, framed by a
     * margin, and adds the faces the first pass did not find (where both
     * find a face, the first pass's box is kept). FACENET_CLOSEUP_IF_NONE (default)
     * runs it only when the first pass found no face; _ALWAYS on every
     * photo (portraits, face crops: twice the detection work); _OFF never. */
    int closeup;
    /* Test-time jitter, as dlib's and face_recognition's num_jitters: each
     * face's embedding is computed from this many chips, the aligned chip
     * and jitter-1 copies turned (up to 3 degrees), zoomed (up to 3%) and
     * shifted (up to 2%) a little, the network's raw outputs averaged over
     * them before the usual normalization and mirror image. 1 (the default;
     * 0 means the same): the aligned chip alone. N times the embedding work
     * for a little accuracy (docs/evaluation.md). Needs the similarity
     * alignment; at most FACENET_MAX_JITTERS. */
    int jitters;
} facenet_pipeline_params;

#define FACENET_MAX_JITTERS 100

enum { FACENET_CLOSEUP_OFF = 0, FACENET_CLOSEUP_IF_NONE = 1, FACENET_CLOSEUP_ALWAYS = 2 };

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
/* The k-th jittered chip of a face (k = 0 is facenet_pipeline_chip's; k in
 * 0..FACENET_MAX_JITTERS-1; see facenet_pipeline_params.jitters), for
 * callers that embed chips themselves. */
FACENET_API facenet_status facenet_pipeline_jitter_chip(facenet_pipeline *p, const facenet_image *img,
                                                        const facenet_face *face, int k, facenet_image *chip);
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
    /* Embedding models: the decision threshold to record as "threshold"
     * (facenet_model_threshold); 0: none, the architecture's default. */
    float threshold;
} facenet_convert_params;

FACENET_API facenet_convert_params facenet_convert_default_params(void);

/* Convert a TF.js weights manifest (a JSON array of groups, each naming its
 * shard files relative to the manifest) into a safetensors model file.
 * Quantized weights (uint8, uint16, float16) are dequantized to float32. */
FACENET_API facenet_status facenet_convert_tfjs(facenet_ctx *ctx, const char *manifest_path,
                                                const char *out_path, const facenet_convert_params *params);

/* ---------------------------------------------------------------- int8 calibration */

/* An int8 copy of a model (docs/performance.md): the float32 network runs
 * on real faces (an embedding network on face chips, the SSD detector on
 * photos) while a quantizer records the range of every value that the int8
 * network stores as 8-bit integers (activations after ReLUs, the input);
 * the ranges are written into a copy of the model file, and sessions and
 * pipelines of a context with FACENET_PRECISION_INT8 then run it in int8.
 * Weights need no calibration (one scale per output channel, from the
 * weights themselves).
 *
 *   facenet_quantizer *q;
 *   facenet_quantize_params qp = facenet_quantize_default_params();
 *   facenet_quantizer_create(ctx, model, &qp, &q);
 *   facenet_quantizer_add(q, chips, n);           // as many calls as needed
 *   facenet_quantizer_write(q, "model-int8.safetensors");
 *   facenet_quantizer_free(q);
 */
typedef struct facenet_quantize_params {
    /* A value's range is this percentile of the magnitudes it took over
     * all chips (all elements); 100: the largest. Values above the range
     * saturate. (99.999) */
    double percentile;
    /* Values left in float32, comma-separated: names as in the model file's
     * "int8/NAME" tensors ("input", "conv32_down", "conv256_1/conv1"...), a
     * trailing '*' matching any ending ("conv256*"). NULL: none. */
    const char *float32_values;
} facenet_quantize_params;

typedef struct facenet_quantizer facenet_quantizer;

FACENET_API facenet_quantize_params facenet_quantize_default_params(void);
/* A quantizer for a model with an int8 form: the ResNet embedding network
 * or the SSD detector; FACENET_ERR_UNSUPPORTED for the others. */
FACENET_API facenet_status facenet_quantizer_create(facenet_ctx *ctx, const facenet_model *model,
                                                    const facenet_quantize_params *params,
                                                    facenet_quantizer **out);
/* Run the float32 network on n images and record what its values held: an
 * embedding network's images are face chips (taken as facenet_embed_chips
 * takes them), a detector's are photos. */
FACENET_API facenet_status facenet_quantizer_add(facenet_quantizer *q, const facenet_image *images, int n);
/* Images (chips or photos) recorded so far. */
FACENET_API int facenet_quantizer_count(const facenet_quantizer *q);
/* Write the model with its calibration to out_path (atomically; it may be
 * the model's own file): every tensor and metadata entry of the model, the
 * ranges as "int8/NAME" tensors (replacing any it had) and a description
 * in the "int8_calibration" metadata. Needs at least one image. */
FACENET_API facenet_status facenet_quantizer_write(facenet_quantizer *q, const char *out_path);
FACENET_API void facenet_quantizer_free(facenet_quantizer *q);

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

/* ================================================================ training
 * Learning an embedding with the triplet loss (docs/training.md): a network
 * trained from scratch ("small", "resnet29") or a model fine-tuned, on a
 * folder-per-identity dataset (DIR/NAME/FILE.jpg), in mini-batches of P
 * identities x K images with online triplet selection. `facenet train` is
 * built on these calls.
 *
 *   facenet_train_params tp = facenet_train_default_params();
 *   tp.data_dir = "att_faces"; tp.include = "s1..s30"; tp.chips = 1;
 *   tp.val_include = "s31..s40"; tp.steps = 2000;
 *   facenet_trainer *t;
 *   if (facenet_trainer_create(ctx, &tp, &t)) { puts(facenet_ctx_error(ctx)); return 1; }
 *   facenet_train_stats st;
 *   while (facenet_trainer_steps_done(t) < tp.steps) {
 *       facenet_trainer_step(t, &st);                        // one batch
 *       if (st.step % 500 == 0) facenet_trainer_checkpoint(t, "run.ckpt");
 *   }
 *   facenet_eval_result r;
 *   facenet_trainer_validate(t, &r);                         // held-out verification
 *   facenet_trainer_export(t, "mine.safetensors", (float)r.threshold); // a model like any other
 *   facenet_trainer_free(t);
 */

typedef struct facenet_trainer facenet_trainer;

/* How triplets are chosen in a batch, for every anchor-positive pair. */
typedef enum facenet_triplet_select {
    FACENET_SELECT_SEMIHARD = 0, /* FaceNet's: a negative farther than the positive but within the margin */
    FACENET_SELECT_HARDEST = 1,  /* the nearest negative */
    FACENET_SELECT_RANDOM = 2,   /* a random negative violating the margin */
    FACENET_SELECT_ALL = 3       /* batch-all: every violating triplet */
} facenet_triplet_select;

/* The loss of one triplet, on squared distances between unit embeddings. */
typedef enum facenet_triplet_loss {
    FACENET_LOSS_HINGE = 0, /* FaceNet's max(0, d_ap - d_an + alpha) */
    FACENET_LOSS_SOFT = 1   /* alpha log(1 + exp((d_ap - d_an) / alpha)), the soft margin: never 0 */
} facenet_triplet_loss;

typedef enum facenet_optimizer {
    FACENET_OPTIM_ADAGRAD = 0, /* FaceNet's */
    FACENET_OPTIM_SGD = 1,     /* with momentum */
    FACENET_OPTIM_ADAM = 2
} facenet_optimizer;

typedef enum facenet_lr_schedule {
    FACENET_LR_CONSTANT = 0,
    FACENET_LR_STEP = 1,  /* times lr_gamma every lr_step_every steps */
    FACENET_LR_COSINE = 2 /* cosine from the rate down to 0 at the last step */
} facenet_lr_schedule;

/* Called while chips are prepared ("aligning", "loading"): done of total. */
typedef void (*facenet_train_progress_fn)(void *user, const char *stage, int done, int total);

typedef struct facenet_train_params {
    /* The network: a new one of this architecture ("small", "resnet29")... */
    const char *architecture;
    int input_size;   /* new networks: the chip side (0: the architecture's, 64 for small) */
    /* ...or this model file, fine-tuned (NULL: a new network). */
    const char *init_model;
    int freeze_stages; /* no updates to the first N stages of the network (0) */

    /* The data: DIR/NAME/FILE, one folder per identity. */
    const char *data_dir;
    const char *people;  /* a people list (peopleDevTrain.txt format): only these (NULL: all) */
    const char *include; /* name patterns, "s1..s30" or "A*" (NULL: all) */
    const char *exclude; /* name patterns to leave out (NULL: none) */
    int min_images;      /* identities with fewer images are left out (2) */
    /* 1: the images are face chips already, resized to the input size;
     * 0: photos, each aligned once (detect, landmarks, similarity) with the
     * models below and kept in cache_dir. */
    int chips;
    const char *detector_model, *landmark_model; /* photos: model files */
    const char *cache_dir;                       /* photos: where chips are kept (NULL: nowhere) */
    int augment; /* random crop, flip, brightness and contrast (1) */

    /* The batch and the loss. */
    int P, K;    /* identities per batch, images per identity (30, 4) */
    facenet_triplet_select select;
    float alpha; /* the margin, on squared distances between unit embeddings (0.2);
                    FACENET_LOSS_SOFT: the width of the soft margin */

    /* The optimizer. */
    facenet_optimizer optimizer;
    float learning_rate; /* 0.05 (AdaGrad) */
    float momentum;      /* SGD (0.9) */
    float weight_decay;  /* L2 on weights (0.0005) */
    float clip_norm;     /* cap on the global gradient norm (0: none) */
    facenet_lr_schedule schedule;
    int lr_step_every;   /* FACENET_LR_STEP (1000) */
    float lr_gamma;      /* FACENET_LR_STEP (0.5) */
    int warmup_steps;    /* linear warm-up from 0 (0) */

    uint64_t seed;  /* every random choice: a seed reproduces a run (1) */
    int64_t steps;  /* batches to train on (1000) */

    /* Checkpoints: facenet_trainer_step writes one every checkpoint_every
     * steps to checkpoint_path (NULL or 0: never). */
    const char *checkpoint_path;
    int checkpoint_every;

    /* Validation (facenet_trainer_validate): a pairs file in LFW's format
     * over the photos or chips of val_dir (default data_dir)... */
    const char *val_pairs;
    const char *val_dir;
    /* ...or held-out identities of val_dir: all their matched pairs and as
     * many mismatched ones. */
    const char *val_include; /* name patterns */
    const char *val_people;  /* a people list */
    int val_max_pairs;       /* at most this many matched pairs, chosen at random (3000) */

    facenet_train_progress_fn progress;
    void *progress_user;

    facenet_triplet_loss loss; /* FACENET_LOSS_HINGE */
    /* The augmentation's ranges, when augment is on: a random square crop
     * of 1 - crop .. 1 of the side (0.1), brightness +- brightness of the
     * range (0.1), contrast x (1 - contrast .. 1 + contrast) (0.2). */
    float crop, brightness, contrast;
    /* Random erasing: the probability that a random rectangle of 2-40% of
     * the chip is filled with noise (0). */
    float erase;
    /* > 0: add the pair term, every matched pair of a batch against every
     * mismatched one, max(0, d_pos - d_neg + pair_margin) (0: off). */
    float pair_margin;
    /* > 0: keep an exponential moving average of the weights with this
     * decay (e.g. 0.99) and validate and export it instead of the last
     * weights (0: off). */
    float ema;
} facenet_train_params;

FACENET_API facenet_train_params facenet_train_default_params(void);

/* What a trainer holds, after create. */
typedef struct facenet_train_info {
    const char *architecture; /* of the network trained */
    int input_size, embedding_dim;
    int n_identities, n_images;  /* training data used */
    int left_out_identities;     /* with fewer than min_images images (with a face) */
    int no_face, unreadable;     /* photos skipped */
    int chips_cached, chips_made;
    int n_params;                /* trainable floats */
    int val_pairs, val_same, val_diff; /* validation pairs (0: no validation) */
    int val_skipped;             /* validation pairs with an image without a face */
} facenet_train_info;

typedef struct facenet_train_stats {
    int64_t step;          /* steps done, this one included */
    float loss;            /* mean triplet loss of the batch */
    float active_fraction; /* triplets with a positive loss, of those formed */
    int n_triplets;
    float mean_pos, mean_neg; /* mean squared distances anchor-positive, anchor-negative */
    float grad_norm;       /* before clipping */
    float learning_rate;   /* used for this step */
    double ms;             /* wall time of the step */
    int checkpointed;      /* 1 if this step wrote the periodic checkpoint */
} facenet_train_stats;

/* Read the data (aligning photos not yet in the cache), build the network
 * and the optimizer, start the loader thread. */
FACENET_API facenet_status facenet_trainer_create(facenet_ctx *ctx, const facenet_train_params *params,
                                                  facenet_trainer **out);
FACENET_API void facenet_trainer_free(facenet_trainer *t);
FACENET_API facenet_train_info facenet_trainer_info(const facenet_trainer *t);
FACENET_API int64_t facenet_trainer_steps_done(const facenet_trainer *t);
/* One batch: forward, triplet loss, backward, optimizer step. */
FACENET_API facenet_status facenet_trainer_step(facenet_trainer *t, facenet_train_stats *stats);
/* Verification on the validation pairs with the current weights (batch
 * norm in inference mode): 10-fold accuracy, VAL, AUC, best threshold. */
FACENET_API facenet_status facenet_trainer_validate(facenet_trainer *t, facenet_eval_result *out);
/* Write a checkpoint (weights, optimizer state, step, generator state) to
 * path, atomically: a crash leaves the previous one in place. */
FACENET_API facenet_status facenet_trainer_checkpoint(facenet_trainer *t, const char *path);
/* Continue from a checkpoint of a run with the same network: the next step
 * is the one after it, with the batches an uninterrupted run would see. */
FACENET_API facenet_status facenet_trainer_resume(facenet_trainer *t, const char *path);
/* Write the network as a model file usable by every command (batch norm
 * folded); threshold > 0 is recorded as its decision threshold. */
FACENET_API facenet_status facenet_trainer_export(facenet_trainer *t, const char *path, float threshold);
/* What facenet_train_bench measured: milliseconds per training step over
 * `steps` timed steps, and the parts of the median step. */
typedef struct facenet_train_bench_result {
    double ms_median, ms_min;
    double ms_forward, ms_backward, ms_update; /* of the median step */
    int steps;
} facenet_train_bench_result;

/* Time the training step of a fresh network of architecture arch
 * ("resnet29", "small"; NULL: resnet29) on random chips: forward with batch
 * statistics, triplet loss (hardest negatives over identities of 3 images),
 * backward, SGD with momentum; on the context's threads and the fast
 * backend, for about `seconds` after two warm-up steps (3 timed steps at
 * least). What `facenet bench train` compares with PyTorch. */
FACENET_API facenet_status facenet_train_bench(facenet_ctx *ctx, const char *arch, int batch, double seconds,
                                               facenet_train_bench_result *out);
/* ============================================================ end of training */

#ifdef __cplusplus
}
#endif

#endif /* FACENET_H */
