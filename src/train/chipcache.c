/*
 * chipcache.c - the reader of the chip cache file (dataset.h): aligned face
 * chips of a photo dataset, so photos are detected and aligned once.
 *
 * The layout mirrors the evaluator's embedding cache: an append-only file of
 * checksummed records behind a checksummed header that holds the key (what
 * made the chips). The scanner works on bytes in memory, so the loader and
 * the fuzz target share it; it never trusts a length before checking it
 * against what is left of the file.
 */
#include <string.h>

#include "eval/cache.h"
#include "train/dataset.h"
#include "util/bytes.h"

#define HEADER_FIXED 20 /* magic, version, size, key_len */
#define RECORD_FIXED 16 /* name_len, flags, zero, stamp */

facenet_status fn_chipc_scan(const uint8_t *data, size_t len, int want_size, const char *key,
                             fn_chipc_visit visit, void *user, size_t *valid_end, int *torn, fn_error *e) {
    *valid_end = 0;
    *torn = 0;
    const size_t magic_len = strlen(FN_CHIPC_MAGIC);
    if (len < HEADER_FIXED) {
        /* A prefix of a header is an interrupted create, anything else is
         * not a chip cache. */
        const size_t n = len < magic_len ? len : magic_len;
        *torn = memcmp(data, FN_CHIPC_MAGIC, n) == 0;
        return fn_fail(e, FACENET_ERR_FORMAT, "%s", *torn ? "the header is cut short" : "not a chip cache file");
    }
    if (memcmp(data, FN_CHIPC_MAGIC, magic_len) != 0)
        return fn_fail(e, FACENET_ERR_FORMAT, "not a chip cache file");
    const uint32_t version = fn_le32(data + 8), size = fn_le32(data + 12), key_len = fn_le32(data + 16);
    if (version != FN_CHIPC_VERSION)
        return fn_fail(e, FACENET_ERR_UNSUPPORTED, "chip cache version %u; this library reads %d", version,
                       FN_CHIPC_VERSION);
    if (size < 1 || size > FN_CHIPC_MAX_SIZE)
        return fn_fail(e, FACENET_ERR_FORMAT, "chip size %u is outside 1..%d", size, FN_CHIPC_MAX_SIZE);
    if (key_len > FN_CHIPC_MAX_KEY)
        return fn_fail(e, FACENET_ERR_FORMAT, "a key of %u bytes; at most %d", key_len, FN_CHIPC_MAX_KEY);
    const size_t header = HEADER_FIXED + (size_t)key_len + 4;
    if (len < header) {
        *torn = 1;
        return fn_fail(e, FACENET_ERR_FORMAT, "the header is cut short");
    }
    if (fn_crc32(0, data, header - 4) != fn_le32(data + header - 4))
        return fn_fail(e, FACENET_ERR_FORMAT, "the header's checksum does not match");
    if (want_size && (int)size != want_size)
        return fn_fail(e, FACENET_ERR_FORMAT, "chips of %u px, not %d", size, want_size);
    if (key && (strlen(key) != key_len || memcmp(key, data + HEADER_FIXED, key_len) != 0))
        return fn_fail(e, FACENET_ERR_FORMAT, "made with other settings (the key differs)");
    const size_t pixels = (size_t)size * size * 3;
    size_t pos = header;
    *valid_end = pos;
    while (len - pos >= RECORD_FIXED) {
        const uint8_t *r = data + pos;
        const size_t name_len = fn_le16(r);
        const unsigned flags = fn_le16(r + 2);
        if (name_len == 0 || name_len > FN_CHIPC_MAX_NAME || (flags & ~(unsigned)FN_CHIPC_FACE) ||
            fn_le32(r + 4) != 0)
            break;
        const size_t body = RECORD_FIXED + name_len + ((flags & FN_CHIPC_FACE) ? pixels : 0);
        if (len - pos < body + 4) break;
        if (fn_crc32(0, r, body) != fn_le32(r + body)) break;
        /* Names are file paths: no control bytes (a checksum that matches
         * over such a name is a file written by something else). */
        size_t k = 0;
        while (k < name_len && r[RECORD_FIXED + k] >= 0x20 && r[RECORD_FIXED + k] != 0x7f) k++;
        if (k < name_len) break;
        fn_chipc_record rec;
        rec.name = (const char *)r + RECORD_FIXED;
        rec.name_len = name_len;
        rec.flags = flags;
        rec.stamp = fn_le64(r + 8);
        rec.pix = (flags & FN_CHIPC_FACE) ? r + RECORD_FIXED + name_len : NULL;
        if (visit) {
            facenet_status st = visit(user, &rec);
            if (st != FACENET_OK) return st;
        }
        pos += body + 4;
        *valid_end = pos;
    }
    return FACENET_OK;
}
