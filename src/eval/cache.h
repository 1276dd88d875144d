/*
 * cache.h - the evaluator's embedding cache file, read and written.
 *
 * One file holds the embeddings of one configuration (model, detector,
 * alignment, options: the "key"). Little-endian throughout:
 *
 *   header  "FNECACHE"  u32 version (1)  u32 dim  u32 key_len  key bytes
 *           u32 crc32 of everything before it
 *   record  u16 name_len  u16 flags  u16 n_faces  u16 zero
 *           name bytes (NAME/NAME_0001.jpg, printable ASCII)
 *           f32 box[4]  f32 embedding[dim]
 *           u32 crc32 of the record before it
 *
 * Records are only ever appended, one write() each. A run that is killed
 * leaves at most one torn record at the end; its checksum fails, and the
 * reader stops at the first record that does not check out, keeping those
 * before it (the rest of the file is dropped when the file is reopened for
 * writing). fn_cache_scan() is the reader over bytes in memory, so the
 * fuzz target and the file code share it.
 */
#ifndef FN_EVAL_CACHE_H
#define FN_EVAL_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define FN_CACHE_MAGIC "FNECACHE"
#define FN_CACHE_VERSION 1
#define FN_CACHE_MAX_DIM 4096
#define FN_CACHE_MAX_KEY 65536
#define FN_CACHE_MAX_NAME 1024
#define FN_CACHE_MAX_FILE ((size_t)1 << 31) /* bytes; a cache for a million images is 600 MB */

typedef struct fn_cache_header {
    int torn; /* the data is a (strict) prefix of a valid header: an interrupted create */
    uint32_t dim;
    const char *key; /* points into the scanned data, key_len bytes, not NUL-terminated */
    uint32_t key_len;
    size_t size; /* bytes of the header */
} fn_cache_header;

typedef struct fn_cache_record {
    const char *name; /* points into the scanned data, name_len bytes, not NUL-terminated */
    size_t name_len;
    facenet_eval_entry entry;
    const uint8_t *embedding; /* dim little-endian floats, possibly unaligned: see fn_cache_floats */
} fn_cache_record;

/* Called for each valid record; nonzero stops the scan with that status. */
typedef facenet_status (*fn_cache_visit)(void *user, const fn_cache_record *rec);

/* Check the header and walk the records of a cache file's bytes. Returns an
 * error for a bad or torn header (h->torn tells which), otherwise OK with
 * *valid_end the offset just past the last good record. */
facenet_status fn_cache_scan(const uint8_t *data, size_t size, fn_cache_header *h, fn_cache_visit visit,
                             void *user, size_t *valid_end, fn_error *e);
/* Decode n little-endian floats. */
void fn_cache_floats(const uint8_t *src, float *dst, size_t n);
/* CRC-32 (the zlib/PNG polynomial), continued from crc (0 to start). */
uint32_t fn_crc32(uint32_t crc, const void *data, size_t n);

#endif /* FN_EVAL_CACHE_H */
