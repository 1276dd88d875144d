/* arena.c - bump allocator for activations (see arena.h). */
#include <stdint.h>
#include <stdlib.h>

#include "engine/arena.h"

#define FN_ARENA_ALIGN 64
#define FN_ARENA_MIN_BLOCK (1u << 20)

struct fn_arena_block {
    fn_arena_block *next;
    size_t size, used;
    unsigned char *mem;
};

static fn_arena_block *block_new(size_t size) {
    fn_arena_block *b = malloc(sizeof *b);
    if (!b) return NULL;
    b->mem = aligned_alloc(FN_ARENA_ALIGN, size);
    if (!b->mem) {
        free(b);
        return NULL;
    }
    b->size = size;
    b->used = 0;
    b->next = NULL;
    return b;
}

float *fn_arena_floats(fn_arena *a, size_t n) {
    if (n > (SIZE_MAX - FN_ARENA_ALIGN) / sizeof(float)) return NULL;
    size_t bytes = (n * sizeof(float) + FN_ARENA_ALIGN - 1) & ~(size_t)(FN_ARENA_ALIGN - 1);
    if (bytes == 0) bytes = FN_ARENA_ALIGN;
    fn_arena_block *b = a->blocks;
    if (!b || b->size - b->used < bytes) {
        size_t size = bytes > FN_ARENA_MIN_BLOCK ? bytes : FN_ARENA_MIN_BLOCK;
        if (b && size < b->size * 2 && b->size <= SIZE_MAX / 2) size = b->size * 2;
        fn_arena_block *nb = block_new(size);
        if (!nb) return NULL;
        nb->next = a->blocks;
        a->blocks = nb;
        b = nb;
    }
    float *p = (float *)(void *)(b->mem + b->used);
    b->used += bytes;
    a->used_total += bytes;
    if (a->used_total > a->high_water) a->high_water = a->used_total;
    return p;
}

void fn_arena_reset(fn_arena *a) {
    if (a->blocks && a->blocks->next) {
        /* Several blocks: replace them by one that holds the high-water mark. */
        fn_arena_free(a);
        size_t hw = a->high_water;
        a->blocks = block_new(hw > FN_ARENA_MIN_BLOCK ? hw : FN_ARENA_MIN_BLOCK);
        a->high_water = hw;
    } else if (a->blocks) {
        a->blocks->used = 0;
    }
    a->used_total = 0;
}

void fn_arena_free(fn_arena *a) {
    fn_arena_block *b = a->blocks;
    while (b) {
        fn_arena_block *next = b->next;
        free(b->mem);
        free(b);
        b = next;
    }
    a->blocks = NULL;
    a->used_total = 0;
}
