/*
 * loader.c - the loader thread (dataset.h): sampling and augmentation of
 * the next batches while the network computes on the current one.
 *
 * Two buffers of slots: the thread fills batch s into slot s % SLOTS when
 * the consumer has released it. Every batch is a function of (seed, step),
 * so the thread's timing never changes what a batch holds.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "train/dataset.h"

#define SLOTS 2

struct fn_loader {
    const fn_dataset *d;
    const fn_chips *c;
    fn_loader_params p;
    fn_batch slot[SLOTS];
    int64_t produced; /* batches [first_step, produced) are ready or being read */
    int64_t consumed; /* the next batch the consumer will take */
    int stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    int started;
};

static void *loader_main(void *arg) {
    fn_loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        /* The consumer holds batch consumed - 1 until its next call. */
        while (!l->stop && l->produced >= l->consumed - 1 + SLOTS) pthread_cond_wait(&l->cv, &l->mu);
        if (l->stop) break;
        const int64_t s = l->produced;
        pthread_mutex_unlock(&l->mu);
        fn_make_batch(l->d, l->c, &l->p, s, &l->slot[s % SLOTS]);
        pthread_mutex_lock(&l->mu);
        l->produced = s + 1;
        pthread_cond_broadcast(&l->cv);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

fn_loader *fn_loader_create(const fn_dataset *d, const fn_chips *c, const fn_loader_params *p, fn_error *e) {
    if (p->P < 1 || p->K < 2 || p->P > 100000 || p->K > 100000 || (int64_t)p->P * p->K > 1000000 ||
        c->n != d->n_images) {
        fn_fail(e, FACENET_ERR_INVALID_ARGUMENT, "a batch of P = %d identities x K = %d images: need P >= 1, K >= 2",
                p->P, p->K);
        return NULL;
    }
    fn_loader *l = calloc(1, sizeof *l);
    if (!l) {
        fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for the loader");
        return NULL;
    }
    l->d = d;
    l->c = c;
    l->p = *p;
    const size_t rows = (size_t)p->P * p->K, px = (size_t)c->size * c->size * 3;
    for (int i = 0; i < SLOTS; i++) {
        l->slot[i].x = malloc(sizeof(float) * rows * px);
        l->slot[i].labels = malloc(sizeof(int) * rows);
        l->slot[i].index = malloc(sizeof(int) * rows);
        if (!l->slot[i].x || !l->slot[i].labels || !l->slot[i].index) {
            fn_fail(e, FACENET_ERR_NO_MEMORY, "out of memory for batches of %zu chips", rows);
            fn_loader_free(l);
            return NULL;
        }
    }
    l->produced = l->consumed = p->first_step;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->started = 1;
    if (pthread_create(&l->thread, NULL, loader_main, l) != 0) {
        /* No thread: batches are made on the caller's, in fn_loader_next. */
        l->started = -1;
    }
    return l;
}

const fn_batch *fn_loader_next(fn_loader *l) {
    const int64_t s = l->consumed;
    fn_batch *b = &l->slot[s % SLOTS];
    if (l->started < 0) {
        fn_make_batch(l->d, l->c, &l->p, s, b);
        l->consumed = s + 1;
        return b;
    }
    pthread_mutex_lock(&l->mu);
    l->consumed = s + 1; /* releases batch s - 1's slot */
    pthread_cond_broadcast(&l->cv);
    while (l->produced <= s) pthread_cond_wait(&l->cv, &l->mu);
    pthread_mutex_unlock(&l->mu);
    return b;
}

void fn_loader_free(fn_loader *l) {
    if (!l) return;
    if (l->started) {
        if (l->started > 0) {
            pthread_mutex_lock(&l->mu);
            l->stop = 1;
            pthread_cond_broadcast(&l->cv);
            pthread_mutex_unlock(&l->mu);
            pthread_join(l->thread, NULL);
        }
        pthread_mutex_destroy(&l->mu);
        pthread_cond_destroy(&l->cv);
    }
    for (int i = 0; i < SLOTS; i++) {
        free(l->slot[i].x);
        free(l->slot[i].labels);
        free(l->slot[i].index);
    }
    free(l);
}
