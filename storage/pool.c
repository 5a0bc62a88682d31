/* pool.c - persistent worker threads that sleep between batches (see pool.h). */
#include "storage/pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "ngscale.h"

struct ngs_pool {
    int nthreads; /* including the caller */
    pthread_t *threads;
    pthread_mutex_t lock;
    pthread_cond_t start, done;
    unsigned long generation; /* bumped per batch */
    int stopping, busy;       /* busy: workers still inside the current batch */
    /* the current batch */
    ngs_pool_task task;
    void *ctx;
    size_t n;
    atomic_size_t next;
};

static void drain(ngs_pool *p, int worker)
{
    size_t i;
    while ((i = atomic_fetch_add(&p->next, 1)) < p->n) p->task(p->ctx, i, worker);
}

typedef struct {
    ngs_pool *pool;
    int worker;
} worker_arg;

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    ngs_pool *p = wa.pool;
    unsigned long seen = 0;
    free(arg);
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->stopping && p->generation == seen) pthread_cond_wait(&p->start, &p->lock);
        if (p->stopping) break;
        seen = p->generation;
        pthread_mutex_unlock(&p->lock);
        drain(p, wa.worker);
        pthread_mutex_lock(&p->lock);
        if (--p->busy == 0) pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

int ngs_cpu_count(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int ngs_pool_create(ngs_pool **out, int nthreads)
{
    ngs_pool *p;
    if (nthreads <= 0) nthreads = ngs_cpu_count();
    p = calloc(1, sizeof *p);
    if (!p) return NGS_ERR_NOMEM;
    p->threads = calloc((size_t)nthreads, sizeof *p->threads);
    if (!p->threads) {
        free(p);
        return NGS_ERR_NOMEM;
    }
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    p->nthreads = 1;
    for (int i = 1; i < nthreads; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) break;
        wa->pool = p;
        wa->worker = i;
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            break; /* fewer workers still work */
        }
        p->nthreads++;
    }
    *out = p;
    return NGS_OK;
}

void ngs_pool_destroy(ngs_pool *p)
{
    if (!p) return;
    pthread_mutex_lock(&p->lock);
    p->stopping = 1;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    for (int i = 1; i < p->nthreads; i++) pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->threads);
    free(p);
}

int ngs_pool_size(const ngs_pool *p) { return p->nthreads; }

void ngs_pool_run(ngs_pool *p, size_t n, ngs_pool_task task, void *ctx)
{
    if (n == 0) return;
    if (p->nthreads == 1 || n == 1) { /* nothing to share */
        for (size_t i = 0; i < n; i++) task(ctx, i, 0);
        return;
    }
    pthread_mutex_lock(&p->lock);
    p->task = task;
    p->ctx = ctx;
    p->n = n;
    atomic_store(&p->next, 0);
    p->busy = p->nthreads - 1;
    p->generation++;
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->lock);
    drain(p, 0);
    pthread_mutex_lock(&p->lock);
    while (p->busy > 0) pthread_cond_wait(&p->done, &p->lock);
    pthread_mutex_unlock(&p->lock);
}
