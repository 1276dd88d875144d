/*
 * pool.h - a small fork-join thread pool owned by a context.
 *
 * fn_pool_run(pool, n, fn, arg) calls fn(arg, i) for every i in [0, n) on
 * the pool's threads and the calling thread, and returns when all are done.
 * Tasks are handed out one at a time from an atomic counter, so uneven tasks
 * balance themselves. A NULL pool runs everything on the caller. One caller
 * at a time: the pool belongs to a context, which is single-threaded.
 */
#ifndef FN_POOL_H
#define FN_POOL_H

typedef struct fn_pool fn_pool;
typedef void (*fn_task_fn)(void *arg, int task);

/* n_threads counts the caller: n_threads - 1 workers are started. */
fn_pool *fn_pool_create(int n_threads);
void fn_pool_free(fn_pool *p);
int fn_pool_threads(const fn_pool *p); /* 1 for NULL */
void fn_pool_run(fn_pool *p, int n_tasks, fn_task_fn fn, void *arg);

#endif
