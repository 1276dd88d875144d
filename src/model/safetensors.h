/*
 * safetensors.h - reading and writing model files in the safetensors format.
 *
 * Layout (https://github.com/huggingface/safetensors):
 *   8 bytes     N, unsigned little-endian: length of the JSON header
 *   N bytes     JSON object: {"__metadata__": {str: str, ...},
 *                             "<tensor name>": {"dtype": "F32", "shape": [..],
 *                                               "data_offsets": [begin, end]}, ...}
 *               (may be padded at the end with spaces)
 *   rest        the data buffer; offsets are relative to its start
 *
 * Model files are untrusted input. Opening validates everything before any
 * tensor is handed out: header length inside the file and under a cap, JSON
 * well formed, known dtypes, shapes of at most FN_ST_MAX_DIMS non-negative
 * dims whose element count times the dtype size (overflow-checked) equals
 * end - begin, offsets inside the buffer, no two tensors overlapping, no
 * holes, no duplicate names, metadata a string-to-string map.
 *
 * Files are memory-mapped read-only; tensor data pointers stay valid until
 * fn_st_close(). Data pointers are not guaranteed to be aligned.
 *
 * Writing goes to a temporary file beside the target, then rename(), so a
 * crash never leaves a half-written model in place. The writer pads the
 * header so the data buffer starts at a multiple of 64 bytes.
 */
#ifndef FN_SAFETENSORS_H
#define FN_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define FN_ST_MAX_DIMS 8
/* Refuse headers larger than this (bytes): real ones are a few KiB to a few MiB. */
#define FN_ST_MAX_HEADER (64u * 1024u * 1024u)

typedef enum fn_dtype {
    FN_DTYPE_F32,
    FN_DTYPE_F16,
    FN_DTYPE_BF16,
    FN_DTYPE_F64,
    FN_DTYPE_I8,
    FN_DTYPE_U8,
    FN_DTYPE_I16,
    FN_DTYPE_U16,
    FN_DTYPE_I32,
    FN_DTYPE_I64,
    FN_DTYPE_BOOL
} fn_dtype;

const char *fn_dtype_name(fn_dtype t); /* "F32" */
size_t fn_dtype_size(fn_dtype t);      /* bytes per element */

typedef struct fn_st_tensor {
    const char *name;
    fn_dtype dtype;
    int ndim;
    int64_t shape[FN_ST_MAX_DIMS];
    size_t nelem;
    const void *data; /* little-endian, possibly unaligned */
    size_t nbytes;
} fn_st_tensor;

typedef struct fn_st_file fn_st_file;

facenet_status fn_st_open(const char *path, fn_st_file **out, fn_error *e);
/* Parse a file image held in memory (not copied: buf must outlive the handle). */
facenet_status fn_st_open_memory(const void *buf, size_t len, fn_st_file **out, fn_error *e);
void fn_st_close(fn_st_file *f);

size_t fn_st_count(const fn_st_file *f);
const fn_st_tensor *fn_st_at(const fn_st_file *f, size_t i); /* in header order */
const fn_st_tensor *fn_st_find(const fn_st_file *f, const char *name);

size_t fn_st_meta_count(const fn_st_file *f);
/* The metadata value for key, or NULL. */
const char *fn_st_meta(const fn_st_file *f, const char *key);
void fn_st_meta_at(const fn_st_file *f, size_t i, const char **key, const char **value);

/* Copy a tensor's elements to float32 (from F32, F16, BF16, F64, any integer
 * type), into dst of capacity cap elements. Fails if cap < nelem. */
facenet_status fn_st_to_f32(const fn_st_tensor *t, float *dst, size_t cap, fn_error *e);

typedef struct fn_st_entry {
    const char *name;
    fn_dtype dtype;
    int ndim;
    const int64_t *shape;
    const void *data; /* nelem * dtype size bytes, little-endian */
} fn_st_entry;

/* Write tensors (in the given order) and metadata (n_meta key/value pairs,
 * meta[2i] = key, meta[2i+1] = value) to path, atomically. */
facenet_status fn_st_write(const char *path, const fn_st_entry *tensors, size_t n,
                           const char *const *meta, size_t n_meta, fn_error *e);

#endif /* FN_SAFETENSORS_H */
