/*
 * dataset.c - folder-per-identity datasets: listing and choosing the
 * identities, and turning their images into the chips training reads
 * (dataset.h).
 *
 * Listing sorts folders and files by name, so the same folder gives the
 * same image numbering on every machine and every run: the sampler's draws
 * are indices, and a seed reproduces a run only if the indices mean the same
 * images. Photos are aligned once: each chip is appended to a cache file as
 * soon as it is made, so an interrupted first run loses at most one photo's
 * work, and later runs read the chips back in seconds.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "eval/cache.h"
#include "image/image.h"
#include "train/dataset.h"
#include "util/file.h"

/* ------------------------------------------------------------ listing */

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int is_image_name(const char *n) {
    static const char *const EXT[] = {".jpg", ".jpeg", ".png", ".pgm", ".ppm"};
    const char *dot = strrchr(n, '.');
    if (!dot || dot == n || n[0] == '.') return 0;
    for (size_t i = 0; i < sizeof EXT / sizeof EXT[0]; i++)
        if (strcasecmp(dot, EXT[i]) == 0) return 1;
    return 0;
}

static int is_kind(const char *dir, const struct dirent *de, mode_t kind) {
#ifdef DT_DIR
    if (de->d_type == DT_DIR) return kind == S_IFDIR;
    if (de->d_type == DT_REG) return kind == S_IFREG;
#endif
    char path[PATH_MAX];
    struct stat st;
    if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >= (int)sizeof path || stat(path, &st) != 0)
        return 0;
    return (st.st_mode & S_IFMT) == kind;
}

/* The names in dir that are folders (kind S_IFDIR) or image files, sorted. */
static facenet_status list_dir(const char *dir, mode_t kind, char ***out, int *n, int cap_n, fn_error *e) {
    *out = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return fn_fail(e, FACENET_ERR_IO, "%s: %s", dir, strerror(errno));
    char **v = NULL;
    int cap = 0;
    facenet_status st = FACENET_OK;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.') continue;
        if (kind == S_IFREG && !is_image_name(de->d_name)) continue;
        if (!is_kind(dir, de, kind)) continue;
        const size_t len = strlen(de->d_name);
        if (kind == S_IFDIR ? !fn_identity_name_ok(de->d_name, len) : len > FN_DS_MAX_FILE_NAME) {
            /* A folder LFW could not name; leave it to the user to rename. */
            st = fn_fail(e, FACENET_ERR_UNSUPPORTED, "%s/%s: a name with spaces, control bytes or over %d bytes",
                         dir, de->d_name, FN_PEOPLE_MAX_NAME);
            break;
        }
        if (*n >= cap_n) {
            st = fn_fail(e, FACENET_ERR_TOO_LARGE, "%s: more than %d entries", dir, cap_n);
            break;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            char **nv = realloc(v, sizeof *nv * (size_t)cap);
            if (!nv) {
                st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", dir);
                break;
            }
            v = nv;
        }
        if (!(v[*n] = strdup(de->d_name))) {
            st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", dir);
            break;
        }
        (*n)++;
    }
    closedir(d);
    if (st != FACENET_OK) {
        for (int i = 0; i < *n; i++) free(v[i]);
        free(v);
        *n = 0;
        return st;
    }
    if (*n) qsort(v, (size_t)*n, sizeof *v, cmp_str);
    *out = v;
    return FACENET_OK;
}

static void free_names(char **v, int n) {
    for (int i = 0; i < n; i++) free(v[i]);
    free(v);
}

void fn_dataset_free(fn_dataset *d) {
    if (!d) return;
    for (int i = 0; i < d->n_ids; i++) free(d->ids[i].name);
    for (int i = 0; i < d->n_images; i++) free(d->files[i]);
    free(d->ids);
    free(d->files);
    free(d->label);
    free(d->root);
    free(d);
}

static int cmp_entry_ptr(const void *a, const void *b) {
    return strcmp((*(fn_people_entry *const *)a)->name, (*(fn_people_entry *const *)b)->name);
}

/* Append identity `name` with its image files to d. */
static facenet_status add_identity(fn_dataset *d, const char *name, char **files, int nf, int *id_cap,
                                   int *img_cap, fn_error *e) {
    if (d->n_ids == *id_cap) {
        int c = *id_cap ? *id_cap * 2 : 64;
        fn_ds_identity *ni = realloc(d->ids, sizeof *ni * (size_t)c);
        if (!ni) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", d->root);
        d->ids = ni;
        *id_cap = c;
    }
    if (d->n_images + nf > FN_DS_MAX_IMAGES)
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%s: more than %d images", d->root, FN_DS_MAX_IMAGES);
    while (d->n_images + nf > *img_cap) {
        int c = *img_cap ? *img_cap * 2 : 1024;
        char **nfl = realloc(d->files, sizeof *nfl * (size_t)c);
        if (nfl) d->files = nfl;
        int *nl = nfl ? realloc(d->label, sizeof *nl * (size_t)c) : NULL;
        if (nl) d->label = nl;
        if (!nfl || !nl) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", d->root);
        *img_cap = c;
    }
    char *id_name = strdup(name);
    if (!id_name) return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", d->root);
    const int first = d->n_images;
    for (int i = 0; i < nf; i++) {
        const size_t len = strlen(name) + 1 + strlen(files[i]) + 1;
        char *rel = malloc(len);
        if (!rel) {
            free(id_name);
            for (int k = first; k < d->n_images; k++) free(d->files[k]);
            d->n_images = first;
            return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", d->root);
        }
        snprintf(rel, len, "%s/%s", name, files[i]);
        d->files[d->n_images] = rel;
        d->label[d->n_images] = d->n_ids;
        d->n_images++;
    }
    d->ids[d->n_ids++] = (fn_ds_identity){id_name, first, nf};
    return FACENET_OK;
}

facenet_status fn_dataset_list(const char *root, const fn_ds_select *sel, fn_dataset **out, fn_error *e) {
    *out = NULL;
    fn_ds_select none = {NULL, NULL, NULL, 0};
    if (!sel) sel = &none;
    if ((sel->include && fn_pattern_check(sel->include, e)) || (sel->exclude && fn_pattern_check(sel->exclude, e)))
        return e->status;
    const int min_images = sel->min_images > 1 ? sel->min_images : 1;
    fn_dataset *d = calloc(1, sizeof *d);
    if (!d || !(d->root = strdup(root))) {
        free(d);
        return fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", root);
    }
    char **folders = NULL;
    int nfold = 0, id_cap = 0, img_cap = 0;
    fn_people_entry **byname = NULL;
    facenet_status st = list_dir(root, S_IFDIR, &folders, &nfold, FN_DS_MAX_IDS, e);
    const fn_people *pl = sel->people;
    if (st == FACENET_OK && pl && pl->n > 0) {
        byname = malloc(sizeof *byname * (size_t)pl->n);
        if (!byname)
            st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory listing %s", root);
        else {
            for (int i = 0; i < pl->n; i++) byname[i] = &pl->entries[i];
            qsort(byname, (size_t)pl->n, sizeof *byname, cmp_entry_ptr);
            /* Every person the list names must be there: a typo would
             * otherwise quietly train on fewer people. */
            for (int i = 0; i < pl->n && st == FACENET_OK; i++) {
                const char *key = pl->entries[i].name;
                if (!bsearch(&key, folders, (size_t)nfold, sizeof *folders, cmp_str))
                    st = fn_fail(e, FACENET_ERR_NOT_FOUND, "people list line %d: no folder %s/%s",
                                 pl->entries[i].line, root, key);
            }
        }
    }
    for (int i = 0; i < nfold && st == FACENET_OK; i++) {
        const char *name = folders[i];
        const fn_people_entry *pe = NULL;
        if (pl) {
            fn_people_entry key = {(char *)name, 0, 0}, *kp = &key, **hit;
            hit = pl->n ? bsearch(&kp, byname, (size_t)pl->n, sizeof *byname, cmp_entry_ptr) : NULL;
            if (!hit) continue;
            pe = *hit;
        }
        if (sel->include && !fn_pattern_match(sel->include, name)) continue;
        if (sel->exclude && fn_pattern_match(sel->exclude, name)) continue;
        char dir[PATH_MAX], **files = NULL;
        int nf = 0;
        if (snprintf(dir, sizeof dir, "%s/%s", root, name) >= (int)sizeof dir) {
            st = fn_fail(e, FACENET_ERR_TOO_LARGE, "%s/%s: path too long", root, name);
            break;
        }
        st = list_dir(dir, S_IFREG, &files, &nf, FN_DS_MAX_IMAGES, e);
        if (st != FACENET_OK) break;
        if (pe && nf < pe->count) {
            st = fn_fail(e, FACENET_ERR_NOT_FOUND, "people list line %d: %s has %d images listed, %d in %s",
                         pe->line, name, pe->count, nf, dir);
        } else if (nf < min_images) {
            d->left_out_ids++;
            d->left_out_images += nf;
        } else {
            st = add_identity(d, name, files, nf, &id_cap, &img_cap, e);
        }
        free_names(files, nf);
    }
    free(byname);
    free_names(folders, nfold);
    if (st == FACENET_OK && d->n_ids == 0)
        st = fn_fail(e, FACENET_ERR_NOT_FOUND,
                     "%s: no identity folder with at least %d images matches the selection (%d left out with "
                     "fewer)",
                     root, min_images, d->left_out_ids);
    if (st != FACENET_OK) {
        fn_dataset_free(d);
        return st;
    }
    *out = d;
    return FACENET_OK;
}

facenet_status fn_dataset_keep_chips(fn_dataset *d, fn_chips *c, int min_images, fn_error *e) {
    if (c->n != d->n_images) return fn_fail(e, FACENET_ERR_INTERNAL, "chips do not belong to the dataset");
    if (min_images < 1) min_images = 1;
    const size_t px = (size_t)c->size * c->size * 3;
    int ni = 0, nid = 0;
    for (int id = 0; id < d->n_ids; id++) {
        fn_ds_identity *t = &d->ids[id];
        int kept = 0;
        for (int i = t->first; i < t->first + t->count; i++) kept += c->ok[i] != 0;
        const int keep_id = kept >= min_images;
        if (!keep_id) {
            d->left_out_ids++;
            d->left_out_images += kept;
        }
        const int first = ni;
        for (int i = t->first; i < t->first + t->count; i++) {
            if (!keep_id || !c->ok[i]) {
                free(d->files[i]);
                continue;
            }
            d->files[ni] = d->files[i];
            d->label[ni] = nid;
            if (ni != i) memmove(c->pix + (size_t)ni * px, c->pix + (size_t)i * px, px);
            c->ok[ni] = 1;
            ni++;
        }
        if (keep_id)
            d->ids[nid++] = (fn_ds_identity){t->name, first, ni - first};
        else
            free(t->name);
    }
    d->n_ids = nid;
    d->n_images = c->n = ni;
    if (nid == 0)
        return fn_fail(e, FACENET_ERR_NOT_FOUND, "%s: no identity has %d images with a face", d->root, min_images);
    return FACENET_OK;
}

/* ------------------------------------------------------------ chips */

facenet_status fn_chip_resize(const facenet_image *img, int size, uint8_t *dst, fn_error *e) {
    const size_t n = (size_t)size * size * 3;
    float *tmp = malloc(sizeof(float) * n);
    fn_arena arena = {0};
    fn_exec ex;
    memset(&ex, 0, sizeof ex);
    ex.backend = &fn_backend_ref;
    ex.arena = &arena;
    const fn_norm raw = {{0, 0, 0}, 1.0f};
    int rc = tmp ? fn_to_input(&ex, img, size, 1, &raw, tmp) : -1;
    if (rc == 0)
        for (size_t i = 0; i < n; i++) {
            const float v = tmp[i] + 0.5f;
            dst[i] = (uint8_t)(v <= 0 ? 0 : v >= 255 ? 255 : (int)v);
        }
    fn_arena_free(&arena);
    free(tmp);
    return rc == 0 ? FACENET_OK : fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory resizing a chip");
}

void fn_chips_free(fn_chips *c) {
    if (!c) return;
    free(c->pix);
    free(c->ok);
    memset(c, 0, sizeof *c);
}

/* A photo's identity for the cache: its size and modification time. */
static uint64_t file_stamp(const struct stat *s) {
    uint64_t v[3] = {(uint64_t)s->st_size, (uint64_t)s->st_mtim.tv_sec, (uint64_t)s->st_mtim.tv_nsec};
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < 3; i++)
        for (int b = 0; b < 8; b++) {
            h ^= (v[i] >> (8 * b)) & 0xff;
            h *= 1099511628211ull;
        }
    return h;
}

static void note_bad(fn_chips *c, const char *name) {
    if (!c->example_bad[0]) snprintf(c->example_bad, sizeof c->example_bad, "%s", name);
}

/* The subject of a photo: the face nearest the centre if its box centre is
 * within a fifth of the shorter side of it (LFW centres its subject), else
 * the largest face. */
static int subject(const facenet_face *f, int n, int w, int h) {
    int near = -1, large = -1;
    double best_d = 1e300, best_a = -1;
    for (int i = 0; i < n; i++) {
        const double dx = f[i].x + 0.5 * f[i].width - 0.5 * w, dy = f[i].y + 0.5 * f[i].height - 0.5 * h;
        const double d = dx * dx + dy * dy, a = (double)f[i].width * f[i].height;
        if (d < best_d) best_d = d, near = i;
        if (a > best_a) best_a = a, large = i;
    }
    const double cap = 0.2 * (w < h ? w : h);
    return near >= 0 && best_d <= cap * cap ? near : large;
}

/* The cache keeps the chips the pipeline cuts (dlib's 150 px framing),
 * whatever size a network wants: one alignment serves every network. */
#define CACHE_SIZE 150

typedef struct named {
    const char *name;
    int index;
} named;

static int cmp_named(const void *a, const void *b) { return strcmp(((const named *)a)->name, ((const named *)b)->name); }

typedef struct cache_fill {
    const fn_dataset *d;
    fn_chips *c;
    const named *sorted; /* the images sorted by file name */
    uint64_t *stamp;
    uint8_t *have;
} cache_fill;


static facenet_status visit_record(void *user, const fn_chipc_record *r) {
    cache_fill *f = user;
    int lo = 0, hi = f->d->n_images - 1;
    while (lo <= hi) {
        const int mid = (lo + hi) / 2, i = f->sorted[mid].index;
        const char *n = f->sorted[mid].name;
        const size_t nl = strlen(n);
        int c = memcmp(n, r->name, nl < r->name_len ? nl : r->name_len);
        if (c == 0) c = nl < r->name_len ? -1 : nl > r->name_len;
        if (c == 0) {
            if (r->stamp != f->stamp[i]) return FACENET_OK; /* the photo changed since */
            f->have[i] = 1;
            f->c->ok[i] = r->pix != NULL;
            if (r->pix) {
                /* Out of memory here only means aligning this photo again. */
                const facenet_image stored = {CACHE_SIZE, CACHE_SIZE, 3, (uint8_t *)r->pix};
                if (fn_chip_resize(&stored, f->c->size, f->c->pix + (size_t)i * f->c->size * f->c->size * 3,
                                   NULL) != FACENET_OK)
                    f->have[i] = f->c->ok[i] = 0;
            }
            return FACENET_OK;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return FACENET_OK;
}

static void put_le(uint8_t *p, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Write all of buf, or fail. */
static int write_all(int fd, const uint8_t *buf, size_t n) {
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

static int append_record(int fd, const char *name, uint64_t stamp, const uint8_t *pix, size_t px, uint8_t *buf) {
    const size_t nl = strlen(name);
    put_le(buf, nl, 2);
    put_le(buf + 2, pix ? FN_CHIPC_FACE : 0, 2);
    put_le(buf + 4, 0, 4);
    put_le(buf + 8, stamp, 8);
    memcpy(buf + 16, name, nl);
    size_t n = 16 + nl;
    if (pix) {
        memcpy(buf + n, pix, px);
        n += px;
    }
    put_le(buf + n, fn_crc32(0, buf, n), 4);
    return write_all(fd, buf, n + 4);
}

/* Open (or create) the cache file for key; read its records into c.
 * Returns the descriptor, positioned for appending, or -1 (e set). */
static int open_cache(const fn_dataset *d, const fn_chip_source *src, fn_chips *c, uint64_t *stamp, uint8_t *have,
                      char *path, size_t path_cap, fn_error *e) {
    uint64_t h = 1469598103934665603ull;
    for (const char *k = src->cache_key; *k; k++) {
        h ^= (unsigned char)*k;
        h *= 1099511628211ull;
    }
    if (fn_make_dirs(src->cache_dir, e) != FACENET_OK) return -1;
    const int plen = snprintf(path, path_cap, "%s/%016llx.fnchips", src->cache_dir, (unsigned long long)h);
    if (plen < 0 || (size_t)plen >= path_cap) {
        fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "the chip cache folder name is too long: %s", src->cache_dir);
        return -1;
    }
    int fd = open(path, O_RDWR | O_CREAT, 0666);
    if (fd < 0) {
        fn_fail(e, FACENET_ERR_IO, "cannot open the chip cache %s: %s", path, strerror(errno));
        return -1;
    }
    /* Another run reading or filling the same cache: wait for it, then
     * read what it added. */
    int locked;
    while ((locked = flock(fd, LOCK_EX)) != 0 && errno == EINTR) continue;
    if (locked != 0) {
        fn_fail(e, FACENET_ERR_IO, "cannot lock the chip cache %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    uint8_t *data = NULL;
    size_t len = 0, valid = 0;
    int torn = 0, fresh = 1;
    fn_error re;
    if (fn_read_file(path, (size_t)1 << 40, &data, &len, &re) == FACENET_OK && len > 0) {
        named *sorted = malloc(sizeof *sorted * (size_t)(d->n_images ? d->n_images : 1));
        if (!sorted) {
            free(data);
            close(fd);
            fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading %s", path);
            return -1;
        }
        for (int i = 0; i < d->n_images; i++) sorted[i] = (named){d->files[i], i};
        qsort(sorted, (size_t)d->n_images, sizeof *sorted, cmp_named);
        cache_fill f = {d, c, sorted, stamp, have};
        if (fn_chipc_scan(data, len, CACHE_SIZE, src->cache_key, visit_record, &f, &valid, &torn, &re) == FACENET_OK)
            fresh = 0;
        free(sorted);
    }
    free(data);
    /* A damaged tail (an interrupted write) is cut off; a file that is not
     * ours at all is started afresh. */
    if (fresh) {
        const size_t kl = strlen(src->cache_key);
        uint8_t *hb = malloc(20 + kl + 4);
        int bad = !hb || ftruncate(fd, 0) != 0 || lseek(fd, 0, SEEK_SET) != 0;
        if (!bad) {
            memcpy(hb, FN_CHIPC_MAGIC, 8);
            put_le(hb + 8, FN_CHIPC_VERSION, 4);
            put_le(hb + 12, CACHE_SIZE, 4);
            put_le(hb + 16, kl, 4);
            memcpy(hb + 20, src->cache_key, kl);
            put_le(hb + 20 + kl, fn_crc32(0, hb, 20 + kl), 4);
            bad = write_all(fd, hb, 20 + kl + 4) != 0;
        }
        free(hb);
        if (bad) {
            fn_fail(e, FACENET_ERR_IO, "cannot write %s: %s", path, strerror(errno));
            close(fd);
            return -1;
        }
    } else if (ftruncate(fd, (off_t)valid) != 0 || lseek(fd, (off_t)valid, SEEK_SET) != (off_t)valid) {
        fn_fail(e, FACENET_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* A photo's chip through the pipeline: 1 with a face, 0 without, -1 if it
 * cannot be read. */
static int photo_chip(facenet_pipeline *pl, facenet_face *faces, int cap, const char *path, int size, uint8_t *dst,
                      uint8_t *kept, fn_error *e) {
    facenet_image img = {0, 0, 0, NULL}, chip = {0, 0, 0, NULL};
    fn_error le;
    if (fn_image_load(path, NULL, &img, &le) != FACENET_OK) return -1;
    int n = 0, rc = 0;
    if (facenet_pipeline_run(pl, &img, faces, cap, &n) == FACENET_OK && n > 0) {
        const int s = subject(faces, n, img.width, img.height);
        if (facenet_pipeline_chip(pl, &img, &faces[s], &chip) == FACENET_OK && chip.width == CACHE_SIZE &&
            chip.height == CACHE_SIZE && chip.channels == 3 && fn_chip_resize(&chip, size, dst, e) == FACENET_OK) {
            memcpy(kept, chip.data, (size_t)CACHE_SIZE * CACHE_SIZE * 3);
            rc = 1;
        }
    }
    facenet_image_free(&chip);
    facenet_image_free(&img);
    return rc;
}

facenet_status fn_chips_load(const fn_dataset *d, const fn_chip_source *src, int size, fn_chips_progress cb,
                             void *user, fn_chips *c, fn_error *e) {
    memset(c, 0, sizeof *c);
    if (size < 8 || size > FN_CHIPC_MAX_SIZE)
        return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "chip size %d is outside 8..%d", size, FN_CHIPC_MAX_SIZE);
    const size_t px = (size_t)size * size * 3;
    size_t total;
    if (!fn_mul_size(px, (size_t)d->n_images, &total))
        return fn_fail(e, FACENET_ERR_TOO_LARGE, "%d chips of %d px do not fit in memory", d->n_images, size);
    c->size = size;
    c->n = d->n_images;
    c->pix = malloc(total ? total : 1);
    c->ok = calloc((size_t)d->n_images + 1, 1);
    uint64_t *stamp = calloc((size_t)d->n_images + 1, sizeof *stamp);
    uint8_t *have = calloc((size_t)d->n_images + 1, 1);
    const size_t cache_px = (size_t)CACHE_SIZE * CACHE_SIZE * 3;
    uint8_t *rec = malloc(32 + FN_CHIPC_MAX_NAME + cache_px), *kept = malloc(cache_px);
    facenet_face *faces = calloc(16, sizeof *faces);
    facenet_status st = FACENET_OK;
    int fd = -1;
    char cache_path[PATH_MAX + 32] = "";
    if (!c->pix || !c->ok || !stamp || !have || !rec || !kept || !faces)
        st = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for %d chips of %d px", d->n_images, size);
    const int photos = src && src->pipeline;
    for (int i = 0; i < d->n_images && st == FACENET_OK; i++) {
        char path[PATH_MAX];
        struct stat sb;
        snprintf(path, sizeof path, "%s/%s", d->root, d->files[i]);
        if (stat(path, &sb) == 0) stamp[i] = file_stamp(&sb);
    }
    if (st == FACENET_OK && photos && src->cache_dir && src->cache_key) {
        fd = open_cache(d, src, c, stamp, have, cache_path, sizeof cache_path, e);
        if (fd < 0) st = e->status;
    }
    int done = 0;
    for (int i = 0; i < d->n_images && st == FACENET_OK; i++) {
        uint8_t *dst = c->pix + (size_t)i * px;
        if (have[i]) {
            c->n_cached++;
            if (!c->ok[i]) {
                c->n_noface++;
                note_bad(c, d->files[i]);
            }
        } else {
            char path[PATH_MAX];
            snprintf(path, sizeof path, "%s/%s", d->root, d->files[i]);
            int r;
            if (photos) {
                r = photo_chip(src->pipeline, faces, 16, path, size, dst, kept, e);
            } else {
                facenet_image img = {0, 0, 0, NULL};
                fn_error le;
                r = fn_image_load(path, NULL, &img, &le) == FACENET_OK ? 1 : -1;
                if (r == 1 && fn_chip_resize(&img, size, dst, e) != FACENET_OK) st = e->status;
                facenet_image_free(&img);
            }
            if (st != FACENET_OK) break;
            c->ok[i] = r == 1;
            c->n_made++;
            if (r == 0) c->n_noface++;
            if (r < 0) c->n_unreadable++;
            if (r != 1) note_bad(c, d->files[i]);
            /* An unreadable photo is not cached: it may be fixed. */
            if (fd >= 0 && r >= 0 &&
                append_record(fd, d->files[i], stamp[i], r == 1 ? kept : NULL, cache_px, rec) != 0) {
                st = fn_fail(e, FACENET_ERR_IO, "cannot write %s: %s", cache_path, strerror(errno));
                break;
            }
        }
        done++;
        if (cb && (done % 64 == 0 || done == d->n_images)) cb(user, done, d->n_images, c->n_noface + c->n_unreadable);
    }
    if (fd >= 0) close(fd);
    free(stamp);
    free(have);
    free(rec);
    free(kept);
    free(faces);
    if (st != FACENET_OK) fn_chips_free(c);
    return st;
}
