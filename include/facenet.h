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

#ifdef __cplusplus
}
#endif

#endif /* FACENET_H */
