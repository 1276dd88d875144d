/* file.c - whole-file reads with a cap, and folders made with their parents (see file.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/file.h"

facenet_status fn_read_file(const char *path, size_t cap, uint8_t **out, size_t *len_out, fn_error *e) {
    *out = NULL;
    *len_out = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return fn_fail(e, FACENET_ERR_IO, "cannot open the file (%s)", strerror(errno));
    struct stat st;
    size_t size = 1 << 16;
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode)) {
        if ((unsigned long long)st.st_size > cap) {
            fclose(f);
            return fn_fail(e, FACENET_ERR_TOO_LARGE, "the file is %llu bytes, over the %zu-byte limit",
                           (unsigned long long)st.st_size, cap);
        }
        size = (size_t)st.st_size + 1; /* +1: the end is seen without a second allocation */
    }
    uint8_t *buf = malloc(size);
    size_t len = 0;
    facenet_status rc = FACENET_OK;
    while (buf) {
        if (len == size) {
            if (size > cap) {
                rc = fn_fail(e, FACENET_ERR_TOO_LARGE, "the file is over the %zu-byte limit", cap);
                break;
            }
            size_t nsize = size > cap / 2 ? cap + 1 : size * 2;
            uint8_t *nb = realloc(buf, nsize);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            size = nsize;
        }
        size_t n = fread(buf + len, 1, size - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) rc = fn_fail(e, FACENET_ERR_IO, "cannot read the file (%s)", strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == FACENET_OK && !buf) rc = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading the file");
    if (rc == FACENET_OK && len == size) {
        uint8_t *nb = realloc(buf, len + 1);
        if (!nb) rc = fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory reading the file");
        else buf = nb;
    }
    if (rc != FACENET_OK) {
        free(buf);
        return rc;
    }
    buf[len] = 0;
    *out = buf;
    *len_out = len;
    return FACENET_OK;
}

facenet_status fn_make_dirs(const char *dir, fn_error *e) {
    char buf[4096];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof buf) return fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "bad folder name");
    memcpy(buf, dir, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0') continue;
        char saved = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0777) != 0 && errno != EEXIST)
            return fn_fail(e, FACENET_ERR_IO, "cannot create the folder %s: %s", buf, strerror(errno));
        buf[i] = saved;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fn_fail(e, FACENET_ERR_IO, "%s is not a folder", dir);
    return FACENET_OK;
}
