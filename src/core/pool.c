/*
 * pool.c - fork-join thread pool (see pool.h).
 *
 * Workers sleep on a condition variable until the generation number moves;
 * then everyone, the caller included, pulls task indices from one atomic
 * counter. The last thread to finish a task signals the caller. Each run
 * costs two wake-ups, which is small next to a convolution layer. A new job
 * is only written once no worker is still inside the previous one.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "core/pool.h"

struct fn_pool {
    int n_threads;
    pthread_t *threads;
    pthread_mutex_t mu;
    pthread_cond_t wake;
    pthread_cond_t done;
    unsigned long generation;
    int stop;
    /* the current job */
    fn_task_fn fn;
    void *arg;
    int n_tasks;
    atomic_int next;
    atomic_int finished;
    int active; /* workers inside drain(); a job is only set up when 0 */
};

static void drain(fn_pool *p) {
    int i;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n_tasks) {
        p->fn(p->arg, i);
        if (atomic_fetch_add(&p->finished, 1) + 1 == p->n_tasks) {
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
}

static void *worker(void *vp) {
    fn_pool *p = vp;
    unsigned long seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->generation == seen) pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop) break;
        seen = p->generation;
        p->active++;
        pthread_mutex_unlock(&p->mu);
        drain(p);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

fn_pool *fn_pool_create(int n_threads) {
    if (n_threads < 2) return NULL;
    fn_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->threads = calloc((size_t)n_threads - 1, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    atomic_init(&p->finished, 0);
    p->n_threads = 1;
    for (int i = 0; i < n_threads - 1; i++) {
        if (pthread_create(&p->threads[i], NULL, worker, p) != 0) break;
        p->n_threads++;
    }
    return p;
}

void fn_pool_free(fn_pool *p) {
    if (!p) return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads - 1; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int fn_pool_threads(const fn_pool *p) { return p ? p->n_threads : 1; }

void fn_pool_run(fn_pool *p, int n_tasks, fn_task_fn fn, void *arg) {
    if (n_tasks <= 0) return;
    if (!p || p->n_threads < 2 || n_tasks == 1) {
        for (int i = 0; i < n_tasks; i++) fn(arg, i);
        return;
    }
    pthread_mutex_lock(&p->mu);
    /* A worker that woke late for the previous job may still be leaving
     * drain(); the job fields must not change under it. */
    while (p->active > 0) pthread_cond_wait(&p->done, &p->mu);
    p->fn = fn;
    p->arg = arg;
    p->n_tasks = n_tasks;
    atomic_store(&p->next, 0);
    atomic_store(&p->finished, 0);
    p->generation++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);

    drain(p);

    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->finished) < n_tasks) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}
