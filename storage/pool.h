/*
 * pool.h - a small persistent thread pool for "run task i for i in 0..n" batches.
 *
 * Why not OpenMP: libgomp's idle threads spin after each parallel region, and on
 * a 2-core machine that spinning takes the core ngspice's simulation thread needs.
 * These workers sleep on a condition variable between batches.
 */
#ifndef NGS_STORAGE_POOL_H
#define NGS_STORAGE_POOL_H

#include <stddef.h>

typedef struct ngs_pool ngs_pool;
typedef void (*ngs_pool_task)(void *ctx, size_t index, int worker);

/* nthreads includes the caller; 0 = number of online CPUs. */
int ngs_pool_create(ngs_pool **pool, int nthreads);
void ngs_pool_destroy(ngs_pool *pool);
int ngs_pool_size(const ngs_pool *pool);
/* Online CPUs (at least 1). */
int ngs_cpu_count(void);

/* Runs task(ctx, i, worker) for every i < n on the pool and the calling thread;
 * returns when all are done. worker is in [0, size) and unique among concurrent
 * tasks, so per-worker scratch buffers need no locking. One batch at a time. */
void ngs_pool_run(ngs_pool *pool, size_t n, ngs_pool_task task, void *ctx);

#endif
