/*
 * cli.h - what the facenet commands share. The CLI is a client of the
 * public API (facenet.h) only.
 */
#ifndef FACENET_CLI_H
#define FACENET_CLI_H

#include <stdio.h>

#include "facenet.h"

/* Exit statuses of every command. */
enum { CLI_OK = 0, CLI_FAIL = 1, CLI_USAGE = 2 };

typedef struct cli_command {
    const char *name;
    const char *summary; /* one line for `facenet help` */
    const char *usage;   /* the text for `facenet help NAME`... */
    int photo_options;   /* ...followed by CLI_PIPE_OPTIONS if set... */
    const char *tail;    /* ...and this, if not NULL */
    int (*run)(int argc, char **argv);
} cli_command;

/* Print a command's whole help text. */
void cli_usage(const cli_command *c, FILE *f);

extern const cli_command cli_cmd_detect, cli_cmd_embed, cli_cmd_compare, cli_cmd_align, cli_cmd_convert,
    cli_cmd_bench, cli_cmd_eval, cli_cmd_train, cli_cmd_quantize;

/* Exit status of detect, embed and align when some photo had no face. */
#define CLI_NO_FACE 3

/* Common options: --model PATH, --threads N, --int8. */
typedef struct cli_common {
    const char *model;
    int threads;
    int int8; /* the embedding network in int8 (FACENET_PRECISION_INT8) */
} cli_common;

/* If argv[*i] is a common option, consume it (and its value) and return 1;
 * on a bad value print why and return -1; otherwise 0. */
int cli_common_option(cli_common *c, int argc, char **argv, int *i);
/* Parse a whole number in [lo, hi] or print an error naming opt. */
int cli_parse_int(const char *opt, const char *s, int lo, int hi, int *out);

/* Create a context with the thread count; prints errors. */
facenet_ctx *cli_ctx(int threads);
/* The same, with the embedding precision (1: int8). */
facenet_ctx *cli_ctx_precision(int threads, int int8);
/* Resolve a model path: explicit path, or file name looked up in
 * $FACENET_MODEL_DIR, ./models and <exe>/../models, <exe>/../share/facenet/models.
 * Prints a helpful error and returns NULL when not found. */
const char *cli_find_model(const char *explicit_path, const char *file_name, char *buf, size_t cap);
/* Load a model; prints the error and returns NULL on failure. */
facenet_model *cli_load_model(facenet_ctx *ctx, const char *explicit_path, const char *file_name);

/* "m:ss" or "h:mm:ss" for a duration in seconds, for progress lines. */
void cli_format_duration(double s, char *buf, size_t cap);
/* A tool script of the source tree (rel, e.g. "tools/parity/bench.mjs"):
 * explicit_path if given and readable, else rel under the current folder,
 * else beside the executable (EXE_DIR/../rel, in buf); NULL if none. */
const char *cli_find_tool(const char *explicit_path, const char *rel, char *buf, size_t cap);
/* The first Python that imports torch and numpy: explicit_python (and no
 * other if it is given), $FACENET_PYTHON, python3, then Debian's
 * /usr/bin/python3 (a pyenv or venv python3 first on PATH often lacks the
 * packages Debian's python3-torch installs); NULL if none. */
const char *cli_find_python(const char *explicit_python);
/* The number after "key": in a line of JSON, or -1 if absent. */
double cli_json_number(const char *line, const char *key);
/* The median of n > 0 values (sorts v). */
double cli_median(double *v, int n);
/* Print "facenet CMD: <ctx error or status>" to stderr. */
void cli_error(const char *cmd, facenet_ctx *ctx, facenet_status st);
/* Write a JSON string literal (with quotes). */
void cli_json_string(FILE *f, const char *s);
/* Write a float array as a JSON array with enough digits to round-trip. */
void cli_json_floats(FILE *f, const float *v, int n);

extern const char *cli_argv0;

/* ---- the photo commands' shared pipeline (pipe.c) */
typedef struct cli_pipe_opts {
    cli_common com;
    const char *detector;  /* "ssd" or "tiny" */
    const char *landmarks; /* "full" or "tiny" */
    const char *det_model, *lmk_model;
    facenet_pipeline_params params;
} cli_pipe_opts;

typedef struct cli_pipe {
    facenet_ctx *ctx;
    facenet_model *det, *lmk, *emb;
    facenet_pipeline *pl;
    facenet_face *faces; /* cap of them, filled by cli_pipe_photo */
    int cap;
} cli_pipe;

extern const char CLI_PIPE_OPTIONS[]; /* their help text */
/* The model file of a --detector ("ssd", "tiny") or --landmarks ("full",
 * "tiny") choice, found as cli_load_model finds files. */
const char *cli_detector_file(const char *detector);
const char *cli_landmarks_file(const char *landmarks);
void cli_pipe_defaults(cli_pipe_opts *o);
/* Like cli_common_option, for the pipeline options too. */
int cli_pipe_option(cli_pipe_opts *o, int argc, char **argv, int *i);
/* Load the models and create the pipeline; prints errors. embed: also the embedding model. */
int cli_pipe_open(cli_pipe *p, const cli_pipe_opts *o, int embed);
void cli_pipe_close(cli_pipe *p);
/* Load a photo and run the pipeline: faces in p->faces, count in *n. The
 * caller frees img. Prints errors and returns -1 on failure. */
int cli_pipe_photo(cli_pipe *p, const char *cmd, const char *path, facenet_image *img, int *n);
/* A command's own options: consume argv[*i] (and its value) and return 1,
 * return 0 if it is not one of them, -1 after printing why it is bad. */
typedef int (*cli_own_option_fn)(void *user, int argc, char **argv, int *i);
/* Parse a photo command's arguments: the pipeline options, the command's
 * own (own may be NULL), and the rest as file names into *files (freed by
 * the caller; at least one if need_files). Prints the problem and returns -1
 * on bad usage. */
int cli_pipe_args(cli_pipe_opts *o, int argc, char **argv, const char *cmd, cli_own_option_fn own, void *user,
                  int need_files, char ***files, int *nfiles);
/* `facenet bench detect` (bench_detect.c). */
int cli_bench_detect(int argc, char **argv);
/* `facenet bench train` (bench_train.c); argv[1] is "train". */
int cli_bench_train(int argc, char **argv);
/* A file name without folder and extension ("dir/p.jpg" -> "p"). */
const char *cli_stem(const char *path, char *buf, size_t cap);
/* The JSON members of a face (no braces). */
void cli_json_face(FILE *f, const facenet_face *face, int with_landmarks, int with_embedding);

#define CLI_EMBEDDING_MODEL "dlib_resnet29.safetensors"

#endif
