/*
 * arena.h - scratch memory for a session: a bump allocator that is reset
 * after each forward pass. It grows in blocks during the first passes; on
 * reset it merges them into one block of the high-water size, so a session
 * in steady state allocates nothing.
 */
#ifndef FN_ARENA_H
#define FN_ARENA_H

#include <stddef.h>

typedef struct fn_arena_block fn_arena_block;

typedef struct fn_arena {
    fn_arena_block *blocks; /* newest first */
    size_t used_total;      /* bytes handed out since the last reset */
    size_t high_water;      /* largest used_total seen */
} fn_arena;

/* 64-byte aligned floats, uninitialized; NULL if out of memory. */
float *fn_arena_floats(fn_arena *a, size_t n);
void fn_arena_reset(fn_arena *a);
void fn_arena_free(fn_arena *a);

#endif
