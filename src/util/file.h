/*
 * file.h - reading whole files of outside data, with a size cap; making
 * folders with their parents.
 */
#ifndef FN_FILE_H
#define FN_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* The whole file at path, malloc'ed (plus a NUL after the last byte, not
 * counted in *len), refusing more than cap bytes. Reads in a loop rather
 * than trusting the size the file system reports, so pipes and files that
 * change while being read are handled too. Messages do not name the file:
 * the caller adds that. */
facenet_status fn_read_file(const char *path, size_t cap, uint8_t **out, size_t *len, fn_error *e);

/* mkdir -p: dir and every missing parent (mode 0777 before the umask). */
facenet_status fn_make_dirs(const char *dir, fn_error *e);

#endif
