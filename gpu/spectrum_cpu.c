/*
 * spectrum_cpu.c - FFTW backend: batched real-to-complex transforms with fftw3_threads.
 *
 * One many-plan transforms a whole sub-batch (howmany = count, contiguous vectors,
 * idist = n, odist = n/2 + 1). Plans are cached by (n, count): a batch call needs at
 * most two (full sub-batches and the remainder). They are executed with the new-array
 * interface, so buffers may be reallocated without replanning (fftw_malloc gives every
 * buffer the same SIMD alignment).
 *
 * FFTW's planner is not thread-safe and fftw_plan_with_nthreads() is global state, so
 * all planning and plan destruction happens under one process-wide mutex; execution
 * needs no lock.
 */
#include "gpu/spectrum_cpu.h"

#include <fftw3.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngscale.h"

#define PLAN_CACHE 8

typedef struct {
    size_t n, count;
    fftw_plan plan;
    unsigned long used; /* LRU stamp */
} plan_entry;

struct ngs_fftw {
    int threads;
    unsigned flags;
    char *wisdom_path;
    double *in;
    fftw_complex *out;
    size_t n, batch;         /* current sub-batch shape */
    size_t cap_in, cap_out;  /* allocated doubles / complexes */
    plan_entry plans[PLAN_CACHE];
    unsigned long clock;
};

static pthread_mutex_t planner_lock = PTHREAD_MUTEX_INITIALIZER;
static int threads_ok = -1; /* fftw_init_threads() result, -1 before the first call */

static void set_err(char *err, size_t len, const char *msg)
{
    if (err && len)
        snprintf(err, len, "%s", msg);
}

int ngs_fftw_create(ngs_fftw **fftw, int threads, int measure, const char *wisdom_path,
                    char *err, size_t err_len)
{
    if (!fftw || threads < 1) {
        set_err(err, err_len, "fftw: bad arguments");
        return NGS_ERR_ARG;
    }
    *fftw = NULL;
    ngs_fftw *f = calloc(1, sizeof *f);
    if (!f)
        return NGS_ERR_NOMEM;
    f->threads = threads;
    f->flags = measure ? FFTW_MEASURE : FFTW_ESTIMATE;
    if (wisdom_path && !(f->wisdom_path = strdup(wisdom_path))) {
        free(f);
        return NGS_ERR_NOMEM;
    }
    pthread_mutex_lock(&planner_lock);
    if (threads_ok < 0)
        threads_ok = fftw_init_threads() != 0;
    if (wisdom_path)
        (void)fftw_import_wisdom_from_filename(wisdom_path); /* a missing file is fine */
    pthread_mutex_unlock(&planner_lock);
    if (!threads_ok)
        f->threads = 1; /* FFTW without thread support: still correct, just serial */
    *fftw = f;
    return NGS_OK;
}

void ngs_fftw_destroy(ngs_fftw *f)
{
    if (!f)
        return;
    pthread_mutex_lock(&planner_lock);
    for (int i = 0; i < PLAN_CACHE; i++)
        if (f->plans[i].plan)
            fftw_destroy_plan(f->plans[i].plan);
    if (f->wisdom_path)
        (void)fftw_export_wisdom_to_filename(f->wisdom_path); /* best effort, a cache */
    pthread_mutex_unlock(&planner_lock);
    fftw_free(f->in);
    fftw_free(f->out);
    free(f->wisdom_path);
    free(f);
}

int ngs_fftw_reserve(ngs_fftw *f, size_t n, size_t batch, char *err, size_t err_len)
{
    if (!f || n < 2 || batch < 1 || n > (size_t)INT_MAX || batch > (size_t)INT_MAX ||
        n > SIZE_MAX / sizeof(fftw_complex) / batch) {
        set_err(err, err_len, "fftw: transform too large");
        return NGS_ERR_ARG;
    }
    size_t nb = n / 2 + 1;
    if (n * batch <= f->cap_in && nb * batch <= f->cap_out) {
        f->n = n; /* the buffers are big enough */
        f->batch = batch;
        return NGS_OK;
    }
    fftw_free(f->in);
    fftw_free(f->out);
    f->in = fftw_alloc_real(n * batch);
    f->out = fftw_alloc_complex(nb * batch);
    if (!f->in || !f->out) {
        fftw_free(f->in);
        fftw_free(f->out);
        f->in = NULL;
        f->out = NULL;
        f->n = f->batch = f->cap_in = f->cap_out = 0;
        set_err(err, err_len, "fftw: out of memory for the sub-batch buffers");
        return NGS_ERR_NOMEM;
    }
    f->n = n;
    f->batch = batch;
    f->cap_in = n * batch;
    f->cap_out = nb * batch;
    return NGS_OK;
}

static plan_entry *find_plan(ngs_fftw *f, size_t n, size_t count)
{
    for (int i = 0; i < PLAN_CACHE; i++)
        if (f->plans[i].plan && f->plans[i].n == n && f->plans[i].count == count)
            return &f->plans[i];
    return NULL;
}

int ngs_fftw_prepare(ngs_fftw *f, size_t n, size_t count, char *err, size_t err_len)
{
    if (!f || !f->in || n != f->n || count < 1 || count > f->batch) {
        set_err(err, err_len, "fftw: prepare outside the reserved sub-batch");
        return NGS_ERR_ARG;
    }
    plan_entry *e = find_plan(f, n, count);
    if (e) {
        e->used = ++f->clock;
        return NGS_OK;
    }
    /* Evict the least recently used entry (or take a free one). */
    e = &f->plans[0];
    for (int i = 0; i < PLAN_CACHE; i++) {
        if (!f->plans[i].plan) {
            e = &f->plans[i];
            break;
        }
        if (f->plans[i].used < e->used)
            e = &f->plans[i];
    }
    int len = (int)n, inembed = (int)n, onembed = (int)(n / 2 + 1);
    pthread_mutex_lock(&planner_lock);
    if (e->plan)
        fftw_destroy_plan(e->plan);
    e->plan = NULL;
    fftw_plan_with_nthreads(f->threads);
    fftw_plan p = fftw_plan_many_dft_r2c(1, &len, (int)count, f->in, &inembed, 1, (int)n,
                                         f->out, &onembed, 1, (int)(n / 2 + 1), f->flags);
    pthread_mutex_unlock(&planner_lock);
    if (!p) {
        set_err(err, err_len, "fftw: planning failed");
        return NGS_ERR_NOMEM; /* FFTW only fails to plan when it cannot allocate */
    }
    e->plan = p;
    e->n = n;
    e->count = count;
    e->used = ++f->clock;
    return NGS_OK;
}

double *ngs_fftw_input(ngs_fftw *f) { return f ? f->in : NULL; }
double *ngs_fftw_output(ngs_fftw *f) { return f ? (double *)f->out : NULL; }

int ngs_fftw_execute(ngs_fftw *f, size_t n, size_t count, char *err, size_t err_len)
{
    plan_entry *e = f ? find_plan(f, n, count) : NULL;
    if (!e) {
        set_err(err, err_len, "fftw: execute without a prepared plan");
        return NGS_ERR_STATE;
    }
    e->used = ++f->clock;
    fftw_execute_dft_r2c(e->plan, f->in, f->out);
    return NGS_OK;
}
