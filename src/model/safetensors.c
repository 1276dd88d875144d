/*
 * safetensors.c - the model file format (see safetensors.h and
 * docs/model-format.md).
 *
 * Reading: the file is mapped read-only and the header parsed by the strict
 * JSON reader; every tensor is checked before the handle is returned, so
 * callers can trust shapes, sizes and data pointers. The JSON tree is kept:
 * tensor names and metadata strings point into it. A second array sorted by
 * name makes fn_st_find() a binary search; coverage of the data buffer is
 * checked on an array sorted by offset.
 *
 * Writing: header then tensor data, into a temporary file beside the target,
 * fsync'ed and renamed over it, so readers see the old file or the complete
 * new one, never half of it.
 *
 * Byte order: data is little-endian; loads are assembled from bytes, which
 * compilers turn into plain loads on little-endian hosts.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/safetensors.h"
#include "util/bytes.h"
#include "util/json.h"

#define META_KEY "__metadata__"
#define DATA_ALIGN 64 /* bytes: the writer starts the data buffer on this boundary */

struct fn_st_file {
    const uint8_t *base; /* the whole file image */
    size_t len;
    int mapped; /* base is an mmap of len bytes */
    fn_json *header;
    const fn_json *meta; /* the "__metadata__" object, or NULL */
    fn_st_tensor *tensors;
    size_t count;
    const fn_st_tensor **by_name; /* sorted by name */
};

static const struct {
    const char *name;
    size_t size;
} DTYPES[] = {
    [FN_DTYPE_F32] = {"F32", 4}, [FN_DTYPE_F16] = {"F16", 2},   [FN_DTYPE_BF16] = {"BF16", 2},
    [FN_DTYPE_F64] = {"F64", 8}, [FN_DTYPE_I8] = {"I8", 1},     [FN_DTYPE_U8] = {"U8", 1},
    [FN_DTYPE_I16] = {"I16", 2}, [FN_DTYPE_U16] = {"U16", 2},   [FN_DTYPE_I32] = {"I32", 4},
    [FN_DTYPE_I64] = {"I64", 8}, [FN_DTYPE_BOOL] = {"BOOL", 1},
};
#define N_DTYPES (sizeof DTYPES / sizeof DTYPES[0])

/* Valid safetensors dtypes this library does not read: reported as
 * unsupported rather than corrupt. */
static const char *const OTHER_DTYPES[] = {"U32",     "U64",     "F8_E4M3", "F8_E5M2", "F8_E8M0",
                                           "F6_E2M3", "F6_E3M2", "F4",      "C64"};

const char *fn_dtype_name(fn_dtype t) { return (unsigned)t < N_DTYPES ? DTYPES[t].name : "?"; }
size_t fn_dtype_size(fn_dtype t) { return (unsigned)t < N_DTYPES ? DTYPES[t].size : 0; }



/* ------------------------------------------------------------------ reading */

static const char *shape_str(char *buf, size_t cap, const int64_t *shape, int ndim) {
    size_t n = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && n < cap; i++)
        n += (size_t)snprintf(buf + n, cap - n, "%s%" PRId64, i ? ", " : "", shape[i]);
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static const char *type_name(const fn_json *v) {
    static const char *const names[] = {"null", "a boolean", "a number", "a string", "an array", "an object"};
    return names[v->type];
}

static int cmp_by_name(const void *a, const void *b) {
    const fn_st_tensor *x = *(const fn_st_tensor *const *)a, *y = *(const fn_st_tensor *const *)b;
    return strcmp(x->name, y->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const fn_st_tensor *x = *(const fn_st_tensor *const *)a, *y = *(const fn_st_tensor *const *)b;
    const uint8_t *xa = x->data, *ya = y->data;
    if (xa != ya) return xa < ya ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return x < y ? -1 : x > y; /* stable: header order */
}

static facenet_status parse_meta(fn_st_file *f, const fn_json *m, fn_error *e) {
    if (m->type != FN_JSON_OBJECT)
        return fn_fail(e, FACENET_ERR_FORMAT, "\"%s\" must be an object of strings, found %s", META_KEY,
                       type_name(m));
    for (size_t i = 0; i < m->count; i++) {
        const fn_json *v = &m->items[i];
        if (v->type != FN_JSON_STRING)
            return fn_fail(e, FACENET_ERR_FORMAT, "metadata value for \"%.200s\" must be a string, found %s",
                           m->keys[i], type_name(v));
        if (strlen(v->str) != v->str_len)
            return fn_fail(e, FACENET_ERR_FORMAT, "metadata value for \"%.200s\" contains \\u0000",
                           m->keys[i]);
    }
    f->meta = m;
    return FACENET_OK;
}

static facenet_status parse_dtype(const char *name, const fn_json *v, fn_dtype *out, fn_error *e) {
    if (!v || v->type != FN_JSON_STRING)
        return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s' needs a \"dtype\" string", name);
    for (size_t i = 0; i < N_DTYPES; i++)
        if (strcmp(v->str, DTYPES[i].name) == 0) {
            *out = (fn_dtype)i;
            return FACENET_OK;
        }
    for (size_t i = 0; i < sizeof OTHER_DTYPES / sizeof OTHER_DTYPES[0]; i++)
        if (strcmp(v->str, OTHER_DTYPES[i]) == 0)
            return fn_fail(e, FACENET_ERR_UNSUPPORTED, "tensor '%.200s' has dtype %s, which is not supported",
                           name, v->str);
    return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s' has unknown dtype \"%.40s\"", name, v->str);
}

static facenet_status parse_tensor(fn_st_tensor *t, const char *name, const fn_json *v, const uint8_t *data,
                                   size_t data_len, fn_error *e) {
    t->name = name;
    if (v->type != FN_JSON_OBJECT)
        return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s' must be an object, found %s", name,
                       type_name(v));
    for (size_t i = 0; i < v->count; i++) {
        const char *k = v->keys[i];
        if (strcmp(k, "dtype") && strcmp(k, "shape") && strcmp(k, "data_offsets"))
            return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s' has unexpected key \"%.40s\"", name, k);
    }
    facenet_status st = parse_dtype(name, fn_json_get(v, "dtype"), &t->dtype, e);
    if (st != FACENET_OK) return st;

    const fn_json *shape = fn_json_get(v, "shape");
    if (!shape || shape->type != FN_JSON_ARRAY)
        return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s' needs a \"shape\" array", name);
    if (shape->count > FN_ST_MAX_DIMS)
        return fn_fail(e, FACENET_ERR_UNSUPPORTED,
                       "tensor '%.200s' has %zu dimensions; at most %d are supported", name, shape->count,
                       FN_ST_MAX_DIMS);
    t->ndim = (int)shape->count;
    size_t nelem = 1;
    for (int i = 0; i < t->ndim; i++) {
        int64_t d;
        if (!fn_json_int64(&shape->items[i], &d) || d < 0)
            return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s': shape must hold non-negative integers",
                           name);
        t->shape[i] = d;
        if ((uint64_t)d > SIZE_MAX || !fn_mul_size(nelem, (size_t)d, &nelem))
            return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s': shape has too many elements", name);
    }
    char sbuf[160];
    size_t nbytes;
    if (!fn_mul_size(nelem, fn_dtype_size(t->dtype), &nbytes))
        return fn_fail(e, FACENET_ERR_FORMAT, "tensor '%.200s': shape %s is too large", name,
                       shape_str(sbuf, sizeof sbuf, t->shape, t->ndim));
    t->nelem = nelem;
    t->nbytes = nbytes;

    const fn_json *off = fn_json_get(v, "data_offsets");
    int64_t b, end;
    if (!off || off->type != FN_JSON_ARRAY || off->count != 2 || !fn_json_int64(&off->items[0], &b) ||
        !fn_json_int64(&off->items[1], &end) || b < 0 || end < 0)
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "tensor '%.200s' needs \"data_offsets\": [begin, end], two non-negative integers",
                       name);
    if (end < b)
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "tensor '%.200s' data_offsets [%" PRId64 ", %" PRId64 "] end before they begin", name,
                       b, end);
    if ((uint64_t)end > data_len)
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "tensor '%.200s' data_offsets [%" PRId64 ", %" PRId64
                       "] run past the %zu-byte data buffer",
                       name, b, end, data_len);
    if ((uint64_t)(end - b) != nbytes)
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "tensor '%.200s' of shape %s and dtype %s needs %zu bytes, but "
                       "data_offsets [%" PRId64 ", %" PRId64 "] span %" PRId64,
                       name, shape_str(sbuf, sizeof sbuf, t->shape, t->ndim), fn_dtype_name(t->dtype), nbytes,
                       b, end, end - b);
    t->data = data + b;
    return FACENET_OK;
}

/* Every byte of the data buffer belongs to exactly one tensor. */
static facenet_status check_coverage(fn_st_file *f, const uint8_t *data, size_t data_len, fn_error *e) {
    if (f->count == 0) {
        if (data_len)
            return fn_fail(e, FACENET_ERR_FORMAT, "there are no tensors but the data buffer holds %zu bytes",
                           data_len);
        return FACENET_OK;
    }
    const fn_st_tensor **s = malloc(f->count * sizeof *s); /* count <= header bytes: no overflow */
    if (!s) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < f->count; i++) s[i] = &f->tensors[i];
    qsort(s, f->count, sizeof *s, cmp_by_offset);
    size_t pos = 0;
    const fn_st_tensor *prev = NULL;
    facenet_status st = FACENET_OK;
    for (size_t i = 0; i < f->count && st == FACENET_OK; i++) {
        size_t b = (size_t)((const uint8_t *)s[i]->data - data);
        if (b < pos)
            st = fn_fail(e, FACENET_ERR_FORMAT, "tensors '%.200s' and '%.200s' overlap at bytes [%zu, %zu)",
                         prev->name, s[i]->name, b, pos < b + s[i]->nbytes ? pos : b + s[i]->nbytes);
        else if (b > pos)
            st = fn_fail(e, FACENET_ERR_FORMAT,
                         "bytes [%zu, %zu) of the data buffer (before tensor '%.200s') "
                         "belong to no tensor",
                         pos, b, s[i]->name);
        pos = b + s[i]->nbytes;
        prev = s[i];
    }
    if (st == FACENET_OK && pos != data_len)
        st = fn_fail(e, FACENET_ERR_FORMAT, "the last %zu bytes of the data buffer belong to no tensor",
                     data_len - pos);
    free(s);
    return st;
}

static facenet_status parse_file(fn_st_file *f, fn_error *e) {
    if (f->len < 8)
        return fn_fail(e, FACENET_ERR_FORMAT, "file is %zu bytes, too short for the 8-byte header length",
                       f->len);
    uint64_t n = fn_le64(f->base);
    if (n > FN_ST_MAX_HEADER)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "header length %" PRIu64 " is over the %u-byte limit", n,
                       (unsigned)FN_ST_MAX_HEADER);
    if (n > f->len - 8)
        return fn_fail(e, FACENET_ERR_FORMAT,
                       "header length %" PRIu64 " runs past the end of the %zu-byte file", n, f->len);
    const char *text = (const char *)f->base + 8;
    if (n == 0 || text[0] != '{')
        return fn_fail(e, FACENET_ERR_FORMAT, "the header is not a JSON object (it must start with '{')");
    f->header = fn_json_parse(text, (size_t)n, e);
    if (!f->header) {
        fn_error_prefix(e, "JSON header");
        return e->status;
    }
    const fn_json *h = f->header;
    const uint8_t *data = f->base + 8 + n;
    size_t data_len = f->len - 8 - (size_t)n;
    f->count = h->count - (fn_json_get(h, META_KEY) ? 1 : 0);
    if (f->count) {
        f->tensors = calloc(f->count, sizeof *f->tensors);
        f->by_name = calloc(f->count, sizeof *f->by_name);
        if (!f->tensors || !f->by_name) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    }
    facenet_status st;
    for (size_t i = 0, j = 0; i < h->count; i++) {
        if (strcmp(h->keys[i], META_KEY) == 0)
            st = parse_meta(f, &h->items[i], e);
        else
            st = parse_tensor(&f->tensors[j++], h->keys[i], &h->items[i], data, data_len, e);
        if (st != FACENET_OK) return st;
    }
    st = check_coverage(f, data, data_len, e);
    if (st != FACENET_OK) return st;
    for (size_t i = 0; i < f->count; i++) f->by_name[i] = &f->tensors[i];
    if (f->count) qsort(f->by_name, f->count, sizeof *f->by_name, cmp_by_name);
    return FACENET_OK;
}

static facenet_status open_image(const uint8_t *base, size_t len, int mapped, fn_st_file **out, fn_error *e) {
    fn_st_file *f = calloc(1, sizeof *f);
    if (!f) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    f->base = base;
    f->len = len;
    facenet_status st = parse_file(f, e);
    if (st != FACENET_OK) {
        fn_st_close(f); /* leaves the mapping to the caller */
        return st;
    }
    f->mapped = mapped;
    *out = f;
    return FACENET_OK;
}

facenet_status fn_st_open_memory(const void *buf, size_t len, fn_st_file **out, fn_error *e) {
    fn_error le;
    fn_error_clear(&le);
    if (!out || (!buf && len))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_st_open_memory: NULL argument");
    *out = NULL;
    if (open_image(buf ? buf : "", len, 0, out, &le) != FACENET_OK) {
        if (e) *e = le;
        return le.status;
    }
    return FACENET_OK;
}

facenet_status fn_st_open(const char *path, fn_st_file **out, fn_error *e) {
    if (!path || !out) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_st_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return fn_fail(e, FACENET_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return fn_fail(e, FACENET_ERR_IO, "%s: cannot stat: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return fn_fail(e, FACENET_ERR_IO, "%s: not a regular file", path);
    }
    if (sb.st_size < 8) {
        close(fd);
        return fn_fail(e, FACENET_ERR_FORMAT, "%s: file is %jd bytes, too short for the 8-byte header length",
                       path, (intmax_t)sb.st_size);
    }
    if ((uintmax_t)sb.st_size > SIZE_MAX) {
        close(fd);
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%s: file is too large to map", path);
    }
    size_t len = (size_t)sb.st_size;
    void *map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
    int err = errno;
    close(fd); /* the mapping keeps the file */
    if (map == MAP_FAILED) return fn_fail(e, FACENET_ERR_IO, "%s: cannot map: %s", path, strerror(err));
    fn_error le;
    fn_error_clear(&le);
    if (open_image(map, len, 1, out, &le) != FACENET_OK) {
        munmap(map, len);
        fn_error_prefix(&le, "%s", path);
        if (e) *e = le;
        return le.status;
    }
    return FACENET_OK;
}

void fn_st_close(fn_st_file *f) {
    if (!f) return;
    if (f->mapped) munmap((void *)(uintptr_t)f->base, f->len);
    fn_json_free(f->header);
    free(f->tensors);
    free(f->by_name);
    free(f);
}

size_t fn_st_count(const fn_st_file *f) { return f ? f->count : 0; }

const fn_st_tensor *fn_st_at(const fn_st_file *f, size_t i) {
    return f && i < f->count ? &f->tensors[i] : NULL;
}

const fn_st_tensor *fn_st_find(const fn_st_file *f, const char *name) {
    if (!f || !name || !f->count) return NULL;
    fn_st_tensor key;
    memset(&key, 0, sizeof key);
    key.name = name;
    const fn_st_tensor *kp = &key;
    const fn_st_tensor **r = bsearch(&kp, f->by_name, f->count, sizeof *f->by_name, cmp_by_name);
    return r ? *r : NULL;
}

size_t fn_st_meta_count(const fn_st_file *f) { return f && f->meta ? f->meta->count : 0; }

const char *fn_st_meta(const fn_st_file *f, const char *key) {
    const fn_json *v = f ? fn_json_get(f->meta, key) : NULL;
    return v ? v->str : NULL;
}

void fn_st_meta_at(const fn_st_file *f, size_t i, const char **key, const char **value) {
    int ok = i < fn_st_meta_count(f);
    if (key) *key = ok ? f->meta->keys[i] : NULL;
    if (value) *value = ok ? f->meta->items[i].str : NULL;
}

facenet_status fn_st_to_f32(const fn_st_tensor *t, float *dst, size_t cap, fn_error *e) {
    if (!t || (!dst && t->nelem))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_st_to_f32: NULL argument");
    if (cap < t->nelem)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                       "tensor '%.200s' has %zu elements, more than the %zu "
                       "the buffer holds",
                       t->name, t->nelem, cap);
    const uint8_t *p = t->data;
    size_t n = t->nelem;
    switch (t->dtype) {
    case FN_DTYPE_F32:
        for (size_t i = 0; i < n; i++) dst[i] = fn_f32_bits(fn_le32(p + 4 * i));
        break;
    case FN_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = fn_half_to_f32(fn_le16(p + 2 * i));
        break;
    case FN_DTYPE_BF16: /* the top half of a float32 */
        for (size_t i = 0; i < n; i++) dst[i] = fn_f32_bits((uint32_t)fn_le16(p + 2 * i) << 16);
        break;
    case FN_DTYPE_F64:
        for (size_t i = 0; i < n; i++) {
            uint64_t u = fn_le64(p + 8 * i);
            double d;
            memcpy(&d, &u, sizeof d);
            dst[i] = (float)d;
        }
        break;
    case FN_DTYPE_I8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int8_t)p[i];
        break;
    case FN_DTYPE_U8:
        for (size_t i = 0; i < n; i++) dst[i] = (float)p[i];
        break;
    case FN_DTYPE_I16:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int16_t)fn_le16(p + 2 * i);
        break;
    case FN_DTYPE_U16:
        for (size_t i = 0; i < n; i++) dst[i] = (float)fn_le16(p + 2 * i);
        break;
    case FN_DTYPE_I32:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int32_t)fn_le32(p + 4 * i);
        break;
    case FN_DTYPE_I64:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int64_t)fn_le64(p + 8 * i);
        break;
    case FN_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++) dst[i] = p[i] ? 1.0f : 0.0f;
        break;
    default: return fn_fail(e, FACENET_ERR_INTERNAL, "tensor '%.200s': bad dtype %d", t->name, (int)t->dtype);
    }
    return FACENET_OK;
}

/* ------------------------------------------------------------------ writing */

typedef struct sbuf {
    char *s;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->oom || n == 0) return;
    if (n > b->cap - b->len) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap - b->len < n) {
            if (cap > SIZE_MAX / 2) {
                b->oom = 1;
                return;
            }
            cap *= 2;
        }
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->oom = 1;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* A JSON string literal; s is valid UTF-8 (checked by the caller). */
static void sb_json_str(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\';
            esc[1] = (char)c;
            sb_put(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            sb_put(b, esc, 6);
        } else {
            sb_put(b, p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The first of names[0..n) that occurs twice, or NULL. Sorts names. */
static const char *find_dup(const char **names, size_t n) {
    if (n < 2) return NULL;
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (strcmp(names[i - 1], names[i]) == 0) return names[i];
    return NULL;
}

static int write_all(int fd, const void *buf, size_t n) {
    const uint8_t *p = buf;
    while (n) {
        size_t chunk = n < (1u << 30) ? n : (1u << 30);
        ssize_t w = write(fd, p, chunk);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static facenet_status check_entries(const fn_st_entry *t, size_t n, const char *const *meta, size_t n_meta,
                                    size_t *sizes, fn_error *e) {
    for (size_t i = 0; i < n; i++) {
        const char *name = t[i].name;
        if (!name || !*name || !fn_utf8_valid(name, strlen(name)) || strcmp(name, META_KEY) == 0)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT,
                           "tensor %zu: the name must be non-empty UTF-8 "
                           "other than \"%s\"",
                           i, META_KEY);
        if ((unsigned)t[i].dtype >= N_DTYPES)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "tensor '%.200s': bad dtype %d", name,
                           (int)t[i].dtype);
        if (t[i].ndim < 0 || t[i].ndim > FN_ST_MAX_DIMS || (t[i].ndim && !t[i].shape))
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "tensor '%.200s': bad rank %d", name, t[i].ndim);
        size_t nelem = 1;
        for (int d = 0; d < t[i].ndim; d++)
            if (t[i].shape[d] < 0 || (uint64_t)t[i].shape[d] > SIZE_MAX ||
                !fn_mul_size(nelem, (size_t)t[i].shape[d], &nelem))
                return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "tensor '%.200s': bad shape", name);
        if (!fn_mul_size(nelem, DTYPES[t[i].dtype].size, &sizes[i]))
            return fn_fail(e, FACENET_ERR_TOO_LARGE, "tensor '%.200s' is too large", name);
        if (sizes[i] && !t[i].data)
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "tensor '%.200s': NULL data", name);
    }
    for (size_t i = 0; i < 2 * n_meta; i++)
        if (!meta[i] || !fn_utf8_valid(meta[i], strlen(meta[i])))
            return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "metadata %s %zu is NULL or not UTF-8",
                           i % 2 ? "value" : "key", i / 2);
    size_t most = n > n_meta ? n : n_meta;
    const char **names = most ? malloc(most * sizeof *names) : NULL; /* as many as the caller has */
    if (most && !names) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    for (size_t i = 0; i < n; i++) names[i] = t[i].name;
    const char *dup = find_dup(names, n);
    facenet_status st = FACENET_OK;
    if (dup) st = fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "two tensors are named '%.200s'", dup);
    for (size_t i = 0; i < n_meta; i++) names[i] = meta[2 * i];
    if (!dup && (dup = find_dup(names, n_meta)) != NULL)
        st = fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "metadata key \"%.200s\" appears twice", dup);
    free(names);
    return st;
}

/* Durability of the rename itself; best effort, as some file systems refuse
 * to fsync a directory. */
static void sync_parent_dir(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

static facenet_status build_header(sbuf *b, const fn_st_entry *t, size_t n, const size_t *sizes,
                                   const char *const *meta, size_t n_meta, fn_error *e) {
    char num[64];
    sb_str(b, "{");
    if (n_meta) {
        sb_json_str(b, META_KEY);
        sb_str(b, ":{");
        for (size_t i = 0; i < n_meta; i++) {
            if (i) sb_str(b, ",");
            sb_json_str(b, meta[2 * i]);
            sb_str(b, ":");
            sb_json_str(b, meta[2 * i + 1]);
        }
        sb_str(b, "}");
    }
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (i || n_meta) sb_str(b, ",");
        sb_json_str(b, t[i].name);
        sb_str(b, ":{\"dtype\":\"");
        sb_str(b, DTYPES[t[i].dtype].name);
        sb_str(b, "\",\"shape\":[");
        for (int d = 0; d < t[i].ndim; d++) {
            snprintf(num, sizeof num, "%s%" PRId64, d ? "," : "", t[i].shape[d]);
            sb_str(b, num);
        }
        size_t end;
        if (!fn_add_size(off, sizes[i], &end))
            return fn_fail(e, FACENET_ERR_TOO_LARGE, "the tensors add up to more than SIZE_MAX bytes");
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, end);
        sb_str(b, num);
        off = end;
    }
    sb_str(b, "}");
    /* Spaces, so that 8 + header length is a multiple of DATA_ALIGN. */
    char spaces[DATA_ALIGN];
    memset(spaces, ' ', sizeof spaces);
    size_t pad = (DATA_ALIGN - (8 + b->len) % DATA_ALIGN) % DATA_ALIGN;
    sb_put(b, spaces, pad);
    if (b->oom) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory building the header");
    if (b->len > FN_ST_MAX_HEADER)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "the header would be %zu bytes, over the %u-byte limit",
                       b->len, (unsigned)FN_ST_MAX_HEADER);
    return FACENET_OK;
}

facenet_status fn_st_write(const char *path, const fn_st_entry *tensors, size_t n, const char *const *meta,
                           size_t n_meta, fn_error *e) {
    if (!path || !*path || (n && !tensors) || (n_meta && !meta))
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "fn_st_write: NULL argument");
    size_t *sizes = calloc(n ? n : 1, sizeof *sizes);
    if (!sizes) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
    sbuf b;
    memset(&b, 0, sizeof b);
    char *tmp = NULL;
    int fd = -1;
    facenet_status st = check_entries(tensors, n, meta, n_meta, sizes, e);
    if (st == FACENET_OK) st = build_header(&b, tensors, n, sizes, meta, n_meta, e);
    if (st != FACENET_OK) {
        fn_error_prefix(e, "%s", path);
        goto done;
    }

    size_t tmp_cap = strlen(path) + 48;
    tmp = malloc(tmp_cap);
    if (!tmp) {
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory");
        goto done;
    }
    /* O_EXCL with a per-process name; the counter only matters when two
     * threads of this process write the same path at once. */
    for (int i = 0; i < 100 && fd < 0; i++) {
        snprintf(tmp, tmp_cap, "%s.tmp.%ld.%d", path, (long)getpid(), i);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
        if (fd < 0 && errno != EEXIST) break;
    }
    if (fd < 0) {
        st = fn_fail(e, FACENET_ERR_IO, "%s: cannot create %s: %s", path, tmp, strerror(errno));
        free(tmp);
        tmp = NULL; /* nothing to unlink */
        goto done;
    }
    uint8_t lenbytes[8];
    for (int i = 0; i < 8; i++) lenbytes[i] = (uint8_t)((uint64_t)b.len >> (8 * i));
    int ok = write_all(fd, lenbytes, 8) == 0 && write_all(fd, b.s, b.len) == 0;
    for (size_t i = 0; ok && i < n; i++) ok = write_all(fd, tensors[i].data, sizes[i]) == 0;
    if (!ok) {
        st = fn_fail(e, FACENET_ERR_IO, "%s: cannot write %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    if (fsync(fd) != 0) {
        st = fn_fail(e, FACENET_ERR_IO, "%s: cannot sync %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        st = fn_fail(e, FACENET_ERR_IO, "%s: cannot close %s: %s", path, tmp, strerror(errno));
        goto done;
    }
    if (rename(tmp, path) != 0) {
        st = fn_fail(e, FACENET_ERR_IO, "%s: cannot rename %s into place: %s", path, tmp, strerror(errno));
        goto done;
    }
    free(tmp);
    tmp = NULL;
    sync_parent_dir(path);
done:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(b.s);
    free(sizes);
    return st;
}
