/*
 * fuzz_checkpoint.c - a checkpoint's metadata reader on arbitrary bytes
 * read as a safetensors file. Either the file or its metadata is refused
 * with a message, or every decoded value is within its documented range.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "train/checkpoint.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    fn_st_file *f = NULL;
    fn_error e;
    if (fn_st_open_memory(data, size, &f, &e) != FACENET_OK) return 0;
    fn_ckpt_meta m;
    facenet_status st = fn_ckpt_meta_read(f, &m, &e);
    if (st == FACENET_OK) {
        if (m.input_size < 1 || m.input_size > 4096 || m.embedding_size < 1 || m.step < 0 ||
            m.step > FN_CKPT_MAX_STEP || !m.architecture[0] || !(m.rng.s[0] | m.rng.s[1] | m.rng.s[2] | m.rng.s[3]))
            abort();
        if (strcmp(m.optimizer, "adagrad") && strcmp(m.optimizer, "sgd") && strcmp(m.optimizer, "adam")) abort();
    } else if (!e.msg[0]) {
        abort();
    }
    fn_st_close(f);
    return 0;
}
