/*
 * cache.c - the evaluator's embedding cache (cache.h for the file format).
 *
 * Opening a cache reads the whole file, keeps every record that checks out
 * in a hash table (name -> embedding), cuts a damaged tail off the file and
 * leaves the descriptor at the end for appends. Each put is one write() of
 * a whole record, so a killed run leaves at most one torn record, which the
 * next open drops. No fsync: a killed process loses nothing the kernel has
 * accepted, and a torn tail after a power cut is caught by the checksums.
 *
 * An exclusive flock() on the file keeps two runs from interleaving their
 * records; the second one is told the cache is in use.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/cache.h"
#include "util/file.h"

/* ---- bytes */

uint32_t fn_crc32(uint32_t crc, const void *data, size_t n) {
    /* Four bits at a time: a 16-entry table is small enough to write out
     * and fast enough for a few megabytes. */
    static const uint32_t T[16] = {0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac, 0x76dc4190, 0x6b6b51f4,
                                   0x4db26158, 0x5005713c, 0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
                                   0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c};
    const uint8_t *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ T[crc & 15];
        crc = (crc >> 4) ^ T[crc & 15];
    }
    return ~crc;
}

static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static unsigned get_u16(const uint8_t *p) { return (unsigned)p[0] | (unsigned)p[1] << 8; }
static void put_u32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static void put_u16(uint8_t *p, unsigned v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void fn_cache_floats(const uint8_t *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u = get_u32(src + 4 * i);
        memcpy(&dst[i], &u, sizeof u);
    }
}

static void put_floats(uint8_t *dst, const float *src, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &src[i], sizeof u);
        put_u32(dst + 4 * i, u);
    }
}

#define HEADER_FIXED 20 /* magic, version, dim, key_len */
#define RECORD_FIXED 8 /* name_len, flags, n_faces, zero */

static size_t record_size(size_t name_len, uint32_t dim) {
    return RECORD_FIXED + name_len + 4 * (4 + (size_t)dim) + 4;
}

/* ---- reading */

facenet_status fn_cache_scan(const uint8_t *data, size_t size, fn_cache_header *h, fn_cache_visit visit,
                             void *user, size_t *valid_end, fn_error *e) {
    fn_error_clear(e);
    memset(h, 0, sizeof *h);
    *valid_end = 0;
    if (!data && size) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_cache_scan: no data");
    /* A prefix of the magic is an interrupted create, anything else is not ours. */
    const size_t ml = strlen(FN_CACHE_MAGIC);
    if (memcmp(data ? (const void *)data : "", FN_CACHE_MAGIC, size < ml ? size : ml) != 0)
        return fn_fail(e, FACENET_ERR_FORMAT, "not a facenet evaluation cache (no %s magic)", FN_CACHE_MAGIC);
    if (size < HEADER_FIXED) {
        h->torn = 1;
        return fn_fail(e, FACENET_ERR_FORMAT, "the cache header is cut short (%zu bytes)", size);
    }
    const uint32_t version = get_u32(data + 8);
    if (version != FN_CACHE_VERSION)
        return fn_fail(e, FACENET_ERR_UNSUPPORTED, "cache format version %u; this build reads version %d",
                       (unsigned)version, FN_CACHE_VERSION);
    h->dim = get_u32(data + 12);
    h->key_len = get_u32(data + 16);
    if (h->dim < 1 || h->dim > FN_CACHE_MAX_DIM || h->key_len < 1 || h->key_len > FN_CACHE_MAX_KEY)
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "cache header out of range: dim %u (1 to %d), key %u bytes (1 to %d)",
                       (unsigned)h->dim, FN_CACHE_MAX_DIM, (unsigned)h->key_len, FN_CACHE_MAX_KEY);
    h->size = HEADER_FIXED + (size_t)h->key_len + 4;
    if (size < h->size) {
        h->torn = 1;
        return fn_fail(e, FACENET_ERR_FORMAT, "the cache header is cut short (%zu of %zu bytes)", size,
                       h->size);
    }
    if (fn_crc32(0, data, h->size - 4) != get_u32(data + h->size - 4))
        return fn_fail(e, FACENET_ERR_FORMAT, "the cache header's checksum does not match");
    h->key = (const char *)data + HEADER_FIXED;

    size_t pos = h->size;
    float v[4 + FN_CACHE_MAX_DIM];
    for (;;) {
        *valid_end = pos;
        if (size - pos < RECORD_FIXED) break;
        const uint8_t *r = data + pos;
        const size_t name_len = get_u16(r);
        const unsigned flags = get_u16(r + 2), n_faces = get_u16(r + 4), zero = get_u16(r + 6);
        if (name_len < 1 || name_len > FN_CACHE_MAX_NAME || zero != 0 ||
            (flags != FACENET_EVAL_FACE && flags != FACENET_EVAL_FALLBACK))
            break;
        const size_t rs = record_size(name_len, h->dim);
        if (size - pos < rs) break;
        if (fn_crc32(0, r, rs - 4) != get_u32(r + rs - 4)) break;
        const char *name = (const char *)r + RECORD_FIXED;
        int ok = 1;
        for (size_t i = 0; i < name_len && ok; i++) ok = name[i] >= 0x20 && name[i] < 0x7f;
        fn_cache_floats(r + RECORD_FIXED + name_len, v, 4 + (size_t)h->dim);
        for (size_t i = 0; i < 4 + (size_t)h->dim && ok; i++) ok = isfinite(v[i]);
        if (!ok) break;
        fn_cache_record rec;
        rec.name = name;
        rec.name_len = name_len;
        rec.entry.flags = flags;
        rec.entry.n_faces = (int)n_faces;
        memcpy(rec.entry.box, v, sizeof rec.entry.box);
        rec.embedding = r + RECORD_FIXED + name_len + 16;
        if (visit) {
            facenet_status st = visit(user, &rec);
            if (st != FACENET_OK) return fn_fail(e, st, "out of memory loading the cache");
        }
        pos += rs;
    }
    return FACENET_OK;
}

/* ---- the cache object */

struct facenet_eval_cache {
    facenet_ctx *ctx;
    int fd;
    char *path;
    int dim;
    int loaded;
    size_t dropped;
    int n, cap;
    char **names;
    facenet_eval_entry *entries;
    float *emb; /* n x dim */
    off_t end; /* bytes of the file that hold whole records */
    int *table; /* index + 1, 0 empty; table_cap a power of two */
    size_t table_cap;
};

static uint64_t fnv64(const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int find(const facenet_eval_cache *c, const char *name, size_t len, size_t *slot) {
    if (!c->table_cap) return -1;
    size_t h = (size_t)fnv64(name, len) & (c->table_cap - 1);
    while (c->table[h]) {
        int i = c->table[h] - 1;
        if (strlen(c->names[i]) == len && memcmp(c->names[i], name, len) == 0) {
            if (slot) *slot = h;
            return i;
        }
        h = (h + 1) & (c->table_cap - 1);
    }
    if (slot) *slot = h;
    return -1;
}

static facenet_status grow(facenet_eval_cache *c) {
    int cap = c->cap ? c->cap * 2 : 1024;
    char **nn = realloc(c->names, sizeof *nn * (size_t)cap);
    if (nn) c->names = nn;
    facenet_eval_entry *ne = nn ? realloc(c->entries, sizeof *ne * (size_t)cap) : NULL;
    if (ne) c->entries = ne;
    float *nv = ne ? realloc(c->emb, sizeof *nv * (size_t)cap * (size_t)c->dim) : NULL;
    if (nv) c->emb = nv;
    size_t tcap = (size_t)cap * 2;
    int *t = nv ? calloc(tcap, sizeof *t) : NULL;
    if (!t) return FACENET_ERR_NO_MEMORY;
    free(c->table);
    c->table = t;
    c->table_cap = tcap;
    c->cap = cap;
    for (int i = 0; i < c->n; i++) {
        size_t slot;
        find(c, c->names[i], strlen(c->names[i]), &slot);
        c->table[slot] = i + 1;
    }
    return FACENET_OK;
}

/* Insert or replace (a later record for the same image wins). */
static facenet_status insert(facenet_eval_cache *c, const char *name, size_t len,
                             const facenet_eval_entry *entry, const float *emb) {
    size_t slot;
    int i = find(c, name, len, &slot);
    if (i < 0) {
        if (c->n == c->cap) {
            if (grow(c) != FACENET_OK) return FACENET_ERR_NO_MEMORY;
            find(c, name, len, &slot);
        }
        char *copy = malloc(len + 1);
        if (!copy) return FACENET_ERR_NO_MEMORY;
        memcpy(copy, name, len);
        copy[len] = '\0';
        i = c->n++;
        c->names[i] = copy;
        c->table[slot] = i + 1;
    }
    c->entries[i] = *entry;
    memcpy(c->emb + (size_t)i * c->dim, emb, sizeof(float) * (size_t)c->dim);
    return FACENET_OK;
}

static facenet_status visit_load(void *user, const fn_cache_record *rec) {
    facenet_eval_cache *c = user;
    float v[FN_CACHE_MAX_DIM];
    fn_cache_floats(rec->embedding, v, (size_t)c->dim);
    return insert(c, rec->name, rec->name_len, &rec->entry, v);
}

static facenet_status write_all(int fd, const uint8_t *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return FACENET_ERR_IO;
        p += w;
        n -= (size_t)w;
    }
    return FACENET_OK;
}

static facenet_status read_fd(int fd, const char *path, uint8_t **out, size_t *len, fn_error *e) {
    struct stat st;
    *out = NULL;
    *len = 0;
    if (fstat(fd, &st) != 0) return fn_fail(e, FACENET_ERR_IO, "%s: %s", path, strerror(errno));
    if ((uint64_t)st.st_size > FN_CACHE_MAX_FILE)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%s: %lld bytes is over the cache size limit", path,
                       (long long)st.st_size);
    size_t n = (size_t)st.st_size;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", path);
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    *out = buf;
    *len = got; /* a file that shrank under us: take what is there */
    return FACENET_OK;
}

static facenet_status write_header(facenet_eval_cache *c, const char *key, size_t key_len, fn_error *e) {
    size_t hs = HEADER_FIXED + key_len + 4;
    uint8_t *h = malloc(hs);
    if (!h) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory creating %s", c->path);
    memcpy(h, FN_CACHE_MAGIC, 8);
    put_u32(h + 8, FN_CACHE_VERSION);
    put_u32(h + 12, (uint32_t)c->dim);
    put_u32(h + 16, (uint32_t)key_len);
    memcpy(h + HEADER_FIXED, key, key_len);
    put_u32(h + hs - 4, fn_crc32(0, h, hs - 4));
    facenet_status st = FACENET_OK;
    if (ftruncate(c->fd, 0) != 0 || lseek(c->fd, 0, SEEK_SET) != 0 || write_all(c->fd, h, hs) != FACENET_OK)
        st = fn_fail(e, FACENET_ERR_IO, "cannot write %s: %s", c->path, strerror(errno));
    free(h);
    return st;
}

static facenet_status open_cache(facenet_eval_cache *c, const char *dir, const char *key, fn_error *e) {
    const size_t key_len = strlen(key);
    if (fn_make_dirs(dir, e) != FACENET_OK) return e->status;
    size_t pl = strlen(dir) + 32;
    c->path = malloc(pl);
    if (!c->path) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory opening the cache");
    snprintf(c->path, pl, "%s/%016llx.fnec", dir, (unsigned long long)fnv64(key, key_len));
    c->fd = open(c->path, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (c->fd < 0)
        return fn_fail(e, FACENET_ERR_IO, "cannot open the cache %s: %s", c->path, strerror(errno));
    if (flock(c->fd, LOCK_EX | LOCK_NB) != 0)
        return fn_fail(e, FACENET_ERR_IO, "the cache %s is in use by another run (%s)", c->path,
                       errno == EWOULDBLOCK ? "locked" : strerror(errno));
    uint8_t *data;
    size_t size;
    if (read_fd(c->fd, c->path, &data, &size, e) != FACENET_OK) return e->status;
    fn_cache_header h;
    memset(&h, 0, sizeof h);
    size_t end = 0;
    /* First the header alone, so records are only decoded once the key and
     * the embedding size are known to be this cache's. */
    facenet_status st = size ? fn_cache_scan(data, size, &h, NULL, NULL, &end, e) : FACENET_OK;
    if (size == 0 || (st != FACENET_OK && h.torn)) {
        /* New, or a create that was cut short: start the file afresh. */
        free(data);
        c->dropped = size;
        fn_error_clear(e);
        if (write_header(c, key, key_len, e) != FACENET_OK) return e->status;
        c->end = (off_t)(HEADER_FIXED + key_len + 4);
        return FACENET_OK;
    }
    if (st != FACENET_OK) {
        free(data);
        fn_error_prefix(e, "%s", c->path);
        return e->status;
    }
    if ((int)h.dim != c->dim || h.key_len != key_len || memcmp(h.key, key, key_len) != 0) {
        st = fn_fail(e, FACENET_ERR_FORMAT,
                     "%s holds embeddings for other settings (%u floats, key \"%.*s\"); delete it or use "
                     "another cache folder",
                     c->path, (unsigned)h.dim, (int)(h.key_len > 200 ? 200 : h.key_len), h.key);
        free(data);
        return st;
    }
    st = fn_cache_scan(data, size, &h, visit_load, c, &end, e);
    free(data);
    if (st != FACENET_OK) return st;
    c->loaded = c->n;
    c->dropped = size - end;
    c->end = (off_t)end;
    if (c->dropped && ftruncate(c->fd, c->end) != 0)
        return fn_fail(e, FACENET_ERR_IO, "cannot cut the damaged tail off %s: %s", c->path, strerror(errno));
    if (lseek(c->fd, c->end, SEEK_SET) != c->end)
        return fn_fail(e, FACENET_ERR_IO, "%s: %s", c->path, strerror(errno));
    return FACENET_OK;
}

void facenet_eval_cache_close(facenet_eval_cache *c) {
    if (!c) return;
    if (c->fd >= 0) close(c->fd); /* also releases the lock */
    for (int i = 0; i < c->n; i++) free(c->names[i]);
    free(c->names);
    free(c->entries);
    free(c->emb);
    free(c->table);
    free(c->path);
    free(c);
}

facenet_status facenet_eval_cache_open(facenet_ctx *ctx, const char *dir, const char *key, int dim,
                                       facenet_eval_cache **out) {
    fn_error e;
    fn_error_clear(&e);
    if (!out || !dir || !key || !*key || strlen(key) > FN_CACHE_MAX_KEY || dim < 1 ||
        dim > FN_CACHE_MAX_DIM) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT, "facenet_eval_cache_open: bad arguments");
        return fn_ctx_report(ctx, &e);
    }
    *out = NULL;
    facenet_eval_cache *c = calloc(1, sizeof *c);
    if (!c) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory opening the cache");
        return fn_ctx_report(ctx, &e);
    }
    c->ctx = ctx;
    c->fd = -1;
    c->dim = dim;
    if (open_cache(c, dir, key, &e) != FACENET_OK) {
        facenet_eval_cache_close(c);
        return fn_ctx_report(ctx, &e);
    }
    *out = c;
    return fn_ctx_report(ctx, &e);
}

const char *facenet_eval_cache_path(const facenet_eval_cache *c) { return c ? c->path : NULL; }
int facenet_eval_cache_loaded(const facenet_eval_cache *c) { return c ? c->loaded : 0; }
size_t facenet_eval_cache_dropped(const facenet_eval_cache *c) { return c ? c->dropped : 0; }

int facenet_eval_cache_get(const facenet_eval_cache *c, const char *name, float *embedding,
                           facenet_eval_entry *entry) {
    if (!c || !name) return 0;
    int i = find(c, name, strlen(name), NULL);
    if (i < 0) return 0;
    if (embedding) memcpy(embedding, c->emb + (size_t)i * c->dim, sizeof(float) * (size_t)c->dim);
    if (entry) *entry = c->entries[i];
    return 1;
}

facenet_status facenet_eval_cache_put(facenet_eval_cache *c, const char *name, const float *embedding,
                                      const facenet_eval_entry *entry) {
    if (!c) return FACENET_ERR_INVALID_ARGUMENT;
    fn_error e;
    fn_error_clear(&e);
    const size_t len = name ? strlen(name) : 0;
    int ok = name && embedding && entry && len >= 1 && len <= FN_CACHE_MAX_NAME &&
             (entry->flags == FACENET_EVAL_FACE || entry->flags == FACENET_EVAL_FALLBACK);
    for (size_t i = 0; ok && i < len; i++) ok = name[i] >= 0x20 && name[i] < 0x7f;
    for (int i = 0; ok && i < c->dim; i++) ok = isfinite(embedding[i]);
    for (int i = 0; ok && i < 4; i++) ok = isfinite(entry->box[i]);
    if (!ok) {
        fn_fail(&e, FACENET_ERR_INVALID_ARGUMENT,
                "facenet_eval_cache_put: needs a printable name, one flag, finite numbers");
        return fn_ctx_report(c->ctx, &e);
    }
    const size_t rs = record_size(len, (uint32_t)c->dim);
    uint8_t *r = malloc(rs);
    if (!r) {
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory writing the cache");
        return fn_ctx_report(c->ctx, &e);
    }
    const int nf = entry->n_faces < 0 ? 0 : entry->n_faces > 65535 ? 65535 : entry->n_faces;
    put_u16(r, (unsigned)len);
    put_u16(r + 2, entry->flags);
    put_u16(r + 4, (unsigned)nf);
    put_u16(r + 6, 0);
    memcpy(r + RECORD_FIXED, name, len);
    put_floats(r + RECORD_FIXED + len, entry->box, 4);
    put_floats(r + RECORD_FIXED + len + 16, embedding, (size_t)c->dim);
    put_u32(r + rs - 4, fn_crc32(0, r, rs - 4));
    if (write_all(c->fd, r, rs) == FACENET_OK) {
        c->end += (off_t)rs;
    } else {
        fn_fail(&e, FACENET_ERR_IO, "cannot append to %s: %s", c->path, strerror(errno));
        /* Take a partial record back out, so later ones are not stranded
         * behind it; if that fails too, the next open drops the tail. */
        if (ftruncate(c->fd, c->end) == 0) (void)lseek(c->fd, c->end, SEEK_SET);
    }
    free(r);
    facenet_eval_entry stored = *entry;
    stored.n_faces = nf;
    if (e.status == FACENET_OK && insert(c, name, len, &stored, embedding) != FACENET_OK)
        fn_fail(&e, FACENET_ERR_NO_MEMORY, "out of memory adding to the cache");
    return fn_ctx_report(c->ctx, &e);
}
