/*
 * spectrum.c - the spectral engine's driver: options, record selection, the sub-batch
 * pipeline, and the one-sided outputs.
 *
 * Data path of ngs_spectrum_batch():
 *   validate every (t, x) -> choose each vector's record [t_start, t_start + T) -> N
 *   -> for each sub-batch of B vectors (B bounds memory):
 *        resample + window into the backend's input buffer ((vector, chunk) tasks over
 *        all threads) -> FFT (FFTW many-plan, or cuFFT on a stream) -> outputs and
 *        metrics (CPU, one vector per thread).
 * The cubic spline is solved per chunk, on the chunk's input points plus SPLINE_MARGIN
 * on each side: a spline's dependence on far-away data decays by at least 2x per point
 * (the eliminated band of its system stays below 1/2), so beyond 64 points the local
 * and the global spline differ by under 2^-64 relative, and a long vector's spline no
 * longer runs on one thread while the others wait.
 * With cuFFT, NGS_CUDA_SLOTS sub-batches are in flight: the CPU fills sub-batch j+1 and
 * post-processes j-2 while the GPU copies and transforms j.
 */
#include "gpu/spectrum.h"

#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "gpu/spectrum_cpu.h"
#include "gpu/spectrum_cuda.h"
#include "gpu/spectrum_impl.h"

#define MAX_POINTS ((size_t)1 << 30)
#define CHUNK 16384                  /* grid points per resampling task */
#define SPLINE_MARGIN 64             /* input points of context on each side of a chunk */
#define CPU_BUDGET ((size_t)256 << 20) /* bytes of FFT buffers per CPU sub-batch */
#define GPU_BUDGET ((size_t)128 << 20) /* bytes per GPU slot (pinned host; same on device) */
#define AUTO_GPU_MIN ((size_t)1 << 20) /* AUTO takes the GPU from nvec * N >= this */

typedef struct {
    double t_start, dt, fs;
    size_t lo;      /* first input point the resampler needs */
    int coherent;
    double periods; /* of the fundamental in the record (coherent) */
} record;

struct ngs_spectrum_ctx {
    ngs_spectrum_options opt;
    char *wisdom_path;
    int threads;
    char err[512];
    ngs_spectrum_backend last;
    int gpu_state; /* -1 not probed, 0 unusable, 1 usable */
    ngs_fftw *fftw;
    ngs_cuda *cuda;
    spx_window win;    /* for win.n points; win.w NULL until first use */
    record *rec;
    size_t rec_cap;
    double *tscratch;  /* per thread: spline slopes + band (max points each), amp + pw (nbins each) */
    unsigned char *claimed; /* per thread: nbins */
    size_t tscratch_per, claimed_per;
};

static int fail(ngs_spectrum_ctx *ctx, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err, sizeof ctx->err, fmt, ap);
    va_end(ap);
    return status;
}

void ngs_spectrum_options_init(ngs_spectrum_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->backend = NGS_SPECTRUM_AUTO;
    o->window = NGS_WINDOW_BLACKMAN_HARRIS;
    o->kaiser_beta = 8.6;
    o->resample = NGS_RESAMPLE_CUBIC;
    o->harmonics = 9;
}

int ngs_spectrum_gpu_probe(char *message, size_t message_len)
{
    return ngs_cuda_probe(0, message, message_len);
}

int ngs_spectrum_create(ngs_spectrum_ctx **out, const ngs_spectrum_options *o)
{
    if (!out || !o)
        return NGS_ERR_ARG;
    *out = NULL;
    if ((int)o->backend < NGS_SPECTRUM_AUTO || (int)o->backend > NGS_SPECTRUM_GPU ||
        o->threads < 0 || (int)o->window < NGS_WINDOW_RECTANGULAR ||
        (int)o->window > NGS_WINDOW_KAISER ||
        (o->window == NGS_WINDOW_KAISER && !(o->kaiser_beta >= 0 && o->kaiser_beta <= 100)) ||
        (o->resample != NGS_RESAMPLE_LINEAR && o->resample != NGS_RESAMPLE_CUBIC) ||
        (o->n != 0 && (o->n < 4 || o->n > MAX_POINTS)) || !(o->fundamental >= 0) ||
        !isfinite(o->fundamental) || (o->periods && o->fundamental == 0) ||
        o->harmonics < 2 || o->harmonics > NGS_SPECTRUM_MAX_HARMONICS || o->gpu_device < 0)
        return NGS_ERR_ARG;
    int gpu_state = -1;
    if (o->backend == NGS_SPECTRUM_GPU) {
        if (!ngs_cuda_probe(o->gpu_device, NULL, 0))
            return NGS_ERR_STATE; /* ngs_spectrum_gpu_probe() gives the reason */
        gpu_state = 1;
    }
    ngs_spectrum_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return NGS_ERR_NOMEM;
    ctx->opt = *o;
    if (o->wisdom_path && !(ctx->wisdom_path = strdup(o->wisdom_path))) {
        free(ctx);
        return NGS_ERR_NOMEM;
    }
    ctx->opt.wisdom_path = ctx->wisdom_path;
    ctx->threads = o->threads ? o->threads : omp_get_max_threads();
    ctx->gpu_state = gpu_state;
    ctx->last = NGS_SPECTRUM_AUTO;
    *out = ctx;
    return NGS_OK;
}

void ngs_spectrum_destroy(ngs_spectrum_ctx *ctx)
{
    if (!ctx)
        return;
    ngs_fftw_destroy(ctx->fftw);
    ngs_cuda_destroy(ctx->cuda);
    spx_window_free(&ctx->win);
    free(ctx->rec);
    free(ctx->tscratch);
    free(ctx->claimed);
    free(ctx->wisdom_path);
    free(ctx);
}

const char *ngs_spectrum_last_error(const ngs_spectrum_ctx *ctx) { return ctx ? ctx->err : ""; }

ngs_spectrum_backend ngs_spectrum_last_backend(const ngs_spectrum_ctx *ctx)
{
    return ctx ? ctx->last : NGS_SPECTRUM_AUTO;
}

/* First index with t[i] >= v. */
static size_t lower_bound(const double *t, size_t n, double v)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int grow(void **p, size_t *cap, size_t want, size_t size)
{
    if (want <= *cap)
        return NGS_OK;
    void *q = realloc(*p, want * size);
    if (!q)
        return NGS_ERR_NOMEM;
    *p = q;
    *cap = want;
    return NGS_OK;
}

static size_t sub_batch(const ngs_spectrum_ctx *ctx, size_t N, size_t nvec, size_t budget);

/* Bytes this process may have: physical memory, or less under a resource limit. */
static double memory_limit(void)
{
    struct rlimit rl;
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    double lim = pages > 0 && page > 0 ? (double)pages * (double)page : INFINITY;
    if (getrlimit(RLIMIT_AS, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        lim = fmin(lim, (double)rl.rlim_cur);
    if (getrlimit(RLIMIT_DATA, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        lim = fmin(lim, (double)rl.rlim_cur);
    return lim;
}

/* Refuses a batch whose buffers (window, per-thread scratch, one FFT sub-batch and the
 * outputs; out NULL: amplitude and psd, what ngs_spectrum_size()'s callers allocate)
 * cannot fit: malloc over-commits, so a huge N (--points 2^30: ~50 GiB) was not an
 * error but the kernel's OOM killer, which may pick another process of the machine. */
static int check_memory(ngs_spectrum_ctx *ctx, size_t N, size_t nvec, size_t max_in,
                        const ngs_spectrum_out *out)
{
    double nb = (double)(N / 2 + 1), th = (double)ctx->threads, v = (double)nvec;
    double B = (double)sub_batch(ctx, N, nvec, CPU_BUDGET);
    double need = 8.0 * (double)N + th * (8.0 * (2.0 * (double)max_in + 2.0 * nb) + nb) +
                  B * (8.0 * (double)N + 16.0 * nb);
    if (!out)
        need += 2.0 * 8.0 * v * nb;
    else
        need += 8.0 * v * nb * ((out->amplitude != NULL) + (out->psd != NULL) + (out->freq != NULL) +
                                2.0 * (out->dft != NULL)) + (out->uniform ? 8.0 * v * (double)N : 0.0);
    double lim = memory_limit();
    if (need <= lim)
        return NGS_OK;
    return fail(ctx, NGS_ERR_NOMEM, "spectrum: N = %zu points for %zu vector%s need about %.1f GiB of "
                "buffers, more than the %.1f GiB this process can have: use fewer points", N, nvec,
                nvec == 1 ? "" : "s", need / 1073741824.0, lim / 1073741824.0);
}

/* Checks the inputs (x too when given), picks each vector's record and N, and checks
 * that the buffers for out fit (check_memory). Sets *max_in to the largest number of
 * input points a resampler will read. */
static int plan_records(ngs_spectrum_ctx *ctx, const double *const *t, const double *const *x,
                        const size_t *n, size_t nvec, const ngs_spectrum_out *out, size_t *points,
                        size_t *max_in)
{
    if (!t || !n || nvec == 0)
        return fail(ctx, NGS_ERR_ARG, "spectrum: no vectors");
    if (grow((void **)&ctx->rec, &ctx->rec_cap, nvec, sizeof *ctx->rec))
        return fail(ctx, NGS_ERR_NOMEM, "spectrum: out of memory");
    const ngs_spectrum_options *o = &ctx->opt;
    /* Validation is O(total points): spread it over the threads, report the first bad vector. */
    long long bad = -1;
    int why = 0;
#pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
    for (size_t i = 0; i < nvec; i++) {
        int w = 0;
        if (!t[i] || (x && !x[i]) || n[i] < 2)
            w = 1;
        else if (!isfinite(t[i][0]))
            w = 2;
        for (size_t k = 0; !w && k + 1 < n[i]; k++)
            if (!(t[i][k + 1] > t[i][k]) || !isfinite(t[i][k + 1]))
                w = 2;
        for (size_t k = 0; !w && x && k < n[i]; k++)
            if (!isfinite(x[i][k]))
                w = 3;
        if (w) {
#pragma omp critical(spx_bad)
            if (bad < 0 || (long long)i < bad) {
                bad = (long long)i;
                why = w;
            }
        }
    }
    if (bad >= 0)
        return fail(ctx, NGS_ERR_ARG, "spectrum: vector %lld: %s", bad,
                    why == 1 ? "missing data or fewer than 2 points"
                    : why == 2 ? "time is not finite and strictly increasing"
                               : "value is not finite (NaN or Inf)");

    size_t most = 0;
    int lobe;
    if (ngs_spectrum_window_info(o->window, o->kaiser_beta, 64, NULL, NULL, &lobe) != NGS_OK)
        return fail(ctx, NGS_ERR_ARG, "spectrum: bad window");
    *max_in = 0;
    for (size_t i = 0; i < nvec; i++) {
        const double *ti = t[i];
        double t0 = ti[0], t1 = ti[n[i] - 1], span = t1 - t0, T = span;
        record *r = &ctx->rec[i];
        r->coherent = 0;
        if (o->fundamental > 0) {
            double fit = floor(span * o->fundamental * (1 + 1e-12));
            double P = o->periods ? (double)o->periods : fit;
            if (P < 1 || P > fit)
                return fail(ctx, NGS_ERR_ARG,
                            "spectrum: vector %zu: %.0f periods of %g Hz need %g s, the record has %g s",
                            i, P < 1 ? 1.0 : P, o->fundamental, (P < 1 ? 1.0 : P) / o->fundamental, span);
            if (P < 2 * lobe)
                return fail(ctx, NGS_ERR_ARG,
                            "spectrum: vector %zu: %.0f period%s of %g Hz: the %s window needs %d or "
                            "more (DC, the fundamental and its harmonics lie P bins apart, and its "
                            "tones overlap closer than that)", i, P, P == 1 ? "" : "s", o->fundamental,
                            ngs_spectrum_window_name(o->window), 2 * lobe);
            T = P / o->fundamental;
            r->coherent = 1;
        }
        r->periods = r->coherent ? T * o->fundamental : 0;
        r->t_start = fmax(t1 - T, t0); /* T <= span up to rounding */
        size_t first = lower_bound(ti, n[i], r->t_start);
        size_t inside = n[i] - first;
        r->lo = first >= 2 ? first - 2 : 0; /* two points of context for the spline ends */
        if (inside > 0 && inside - 1 > most) /* intervals: 2^k+1 uniform points are 2^k samples */
            most = inside - 1;
        if (n[i] - r->lo > *max_in)
            *max_in = n[i] - r->lo;
        r->dt = T; /* divided by N below */
    }
    size_t N = o->n;
    if (!N) {
        N = 4;
        while (N < most && N < MAX_POINTS)
            N <<= 1;
    }
    /* a search needs a tone 2L bins out with its lobe below Nyquist */
    size_t n_min = o->fundamental > 0 ? 4 : (size_t)(6 * lobe + 2);
    if (N < n_min)
        return fail(ctx, NGS_ERR_ARG, "spectrum: N = %zu points are too few for the %s window: give "
                    "--points %zu or more (or a longer record: resampling adds no detail)", N,
                    ngs_spectrum_window_name(o->window), n_min);
    for (size_t i = 0; i < nvec; i++) {
        record *r = &ctx->rec[i];
        r->fs = (double)N / r->dt;
        r->dt /= (double)N;
        /* the fundamental sits at bin P: its lobe must end below Nyquist, or it folds */
        if (r->coherent && r->periods + lobe > (double)(N / 2))
            return fail(ctx, NGS_ERR_ARG,
                        "spectrum: vector %zu: %g Hz is too close to half the sampling rate (%g Hz: "
                        "N = %zu points over %g s): give --points %.10g or more, or a lower fundamental",
                        i, o->fundamental, r->fs / 2, N, r->dt * (double)N, 2 * (r->periods + lobe));
    }
    *points = N;
    return check_memory(ctx, N, nvec, *max_in, out);
}

int ngs_spectrum_size(ngs_spectrum_ctx *ctx, const double *const *t, const size_t *n,
                      size_t nvec, size_t *points, size_t *nbins)
{
    if (!ctx || !points || !nbins)
        return NGS_ERR_ARG;
    size_t N, max_in;
    int rc = plan_records(ctx, t, NULL, n, nvec, NULL, &N, &max_in);
    if (rc != NGS_OK)
        return rc;
    *points = N;
    *nbins = N / 2 + 1;
    return NGS_OK;
}

/* Everything a sub-batch pass needs. */
typedef struct {
    ngs_spectrum_ctx *ctx;
    const double *const *t, *const *x;
    const size_t *n;
    size_t N, nb, max_in;
    const ngs_spectrum_out *out;
} batch_job;

/* Index i with t[i] <= v < t[i+1], clamped to [0, n-2]. */
static size_t interval_of(const double *t, size_t n, double v)
{
    size_t i = lower_bound(t, n, v);
    if (i < n && t[i] == v)
        i++;
    i = i ? i - 1 : 0;
    return i < n - 1 ? i : n - 2;
}

/* Resample + window vectors [v0, v0 + count) into `in` (count x N). */
static void fill(const batch_job *b, size_t v0, size_t count, double *in)
{
    ngs_spectrum_ctx *ctx = b->ctx;
    int cubic = ctx->opt.resample == NGS_RESAMPLE_CUBIC;
    size_t chunks = (b->N + CHUNK - 1) / CHUNK, tasks = count * chunks;
    const double *w = ctx->win.w;
#pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
    for (size_t task = 0; task < tasks; task++) {
        size_t j = task / chunks, k0 = (task % chunks) * CHUNK;
        size_t k1 = k0 + CHUNK < b->N ? k0 + CHUNK : b->N;
        size_t i = v0 + j, lo = ctx->rec[i].lo, m = b->n[i] - lo;
        const record *r = &ctx->rec[i];
        const double *ti = b->t[i] + lo, *xi = b->x[i] + lo;
        double *y = in + j * b->N + k0, *s = NULL;
        if (cubic && m >= 4) {
            /* This chunk's input points plus the margin, clamped to the record. */
            size_t a = interval_of(ti, m, r->t_start + (double)k0 * r->dt);
            size_t e = interval_of(ti, m, r->t_start + (double)(k1 - 1) * r->dt) + 1;
            a = a > SPLINE_MARGIN ? a - SPLINE_MARGIN : 0;
            e = e + SPLINE_MARGIN < m - 1 ? e + SPLINE_MARGIN : m - 1; /* >= min(m, 65) points */
            s = ctx->tscratch + (size_t)omp_get_thread_num() * ctx->tscratch_per;
            spx_spline_slopes(ti + a, xi + a, e - a + 1, s, s + b->max_in);
            ti += a;
            xi += a;
            m = e - a + 1;
        }
        spx_resample_range(ti, xi, s, m, r->t_start, r->dt, k0, k1, y);
        if (b->out->uniform)
            memcpy(b->out->uniform + i * b->N + k0, y, (k1 - k0) * sizeof *y);
        for (size_t k = k0; k < k1; k++)
            y[k - k0] *= w[k];
    }
}

/* Outputs and metrics of vectors [v0, v0 + count) from their DFTs (count x nb x 2). */
static void post(const batch_job *b, size_t v0, size_t count, const double *dft)
{
    ngs_spectrum_ctx *ctx = b->ctx;
    const ngs_spectrum_out *out = b->out;
    size_t nb = b->nb, chunks = (nb + CHUNK - 1) / CHUNK, tasks = count * chunks;
    if (out->amplitude || out->psd || out->freq || out->dft) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
        for (size_t task = 0; task < tasks; task++) {
            size_t j = task / chunks, k0 = (task % chunks) * CHUNK;
            size_t k1 = k0 + CHUNK < nb ? k0 + CHUNK : nb;
            size_t i = v0 + j;
            const double *d = dft + j * nb * 2;
            double df = ctx->rec[i].fs / (double)b->N;
            if (out->dft)
                memcpy(out->dft + (i * nb + k0) * 2, d + k0 * 2, (k1 - k0) * 2 * sizeof *d);
            spx_scale_bins(&ctx->win, b->N, d, k0, k1, out->amplitude ? out->amplitude + i * nb : NULL,
                           out->psd ? out->psd + i * nb : NULL);
            for (size_t k = k0; k < k1; k++) {
                if (out->psd)
                    out->psd[i * nb + k] /= df;
                if (out->freq)
                    out->freq[i * nb + k] = (double)k * df;
            }
        }
    }
    if (out->metrics) {
#pragma omp parallel for schedule(dynamic, 1) num_threads(ctx->threads)
        for (size_t j = 0; j < count; j++) {
            size_t i = v0 + j;
            int tid = omp_get_thread_num();
            double *amp = ctx->tscratch + (size_t)tid * ctx->tscratch_per + 2 * b->max_in;
            spx_metric_args a = {&ctx->win, b->N, ctx->rec[i].fs, ctx->opt.fundamental,
                                 ctx->opt.harmonics};
            ngs_spectrum_metrics *m = &out->metrics[i];
            spx_metrics(&a, dft + j * nb * 2, amp, amp + nb, ctx->claimed + (size_t)tid * ctx->claimed_per, m);
            m->t_start = ctx->rec[i].t_start;
            m->coherent = ctx->rec[i].coherent;
        }
    }
}

/* Per-ctx buffers sized for this batch: window, per-thread scratch. */
static int prepare_buffers(ngs_spectrum_ctx *ctx, size_t N, size_t max_in)
{
    if (!ctx->win.w || ctx->win.n != N) {
        spx_window_free(&ctx->win);
        int rc = spx_window_init(&ctx->win, ctx->opt.window, ctx->opt.kaiser_beta, N);
        if (rc != NGS_OK)
            return fail(ctx, rc, "spectrum: cannot make the %s window", ngs_spectrum_window_name(ctx->opt.window));
    }
    size_t nb = N / 2 + 1;
    size_t per = 2 * max_in + 2 * nb, cap = ctx->tscratch_per * (size_t)ctx->threads;
    if (per > ctx->tscratch_per) {
        if (grow((void **)&ctx->tscratch, &cap, per * (size_t)ctx->threads, sizeof(double)))
            return fail(ctx, NGS_ERR_NOMEM, "spectrum: out of memory (scratch)");
        ctx->tscratch_per = per;
    }
    cap = ctx->claimed_per * (size_t)ctx->threads;
    if (nb > ctx->claimed_per) {
        if (grow((void **)&ctx->claimed, &cap, nb * (size_t)ctx->threads, 1))
            return fail(ctx, NGS_ERR_NOMEM, "spectrum: out of memory (scratch)");
        ctx->claimed_per = nb;
    }
    return NGS_OK;
}

static size_t sub_batch(const ngs_spectrum_ctx *ctx, size_t N, size_t nvec, size_t budget)
{
    size_t B = ctx->opt.batch_vectors;
    if (!B)
        B = budget / (N * sizeof(double) + (N / 2 + 1) * 2 * sizeof(double));
    if (B < 1)
        B = 1;
    return B < nvec ? B : nvec;
}

static int run_cpu(const batch_job *b, size_t nvec)
{
    ngs_spectrum_ctx *ctx = b->ctx;
    size_t B = sub_batch(ctx, b->N, nvec, CPU_BUDGET);
    int rc;
    if (!ctx->fftw &&
        (rc = ngs_fftw_create(&ctx->fftw, ctx->threads, ctx->opt.plan_measure, ctx->wisdom_path,
                              ctx->err, sizeof ctx->err)) != NGS_OK)
        return rc;
    if ((rc = prepare_buffers(ctx, b->N, b->max_in)) != NGS_OK ||
        (rc = ngs_fftw_reserve(ctx->fftw, b->N, B, ctx->err, sizeof ctx->err)) != NGS_OK)
        return rc;
    for (size_t v0 = 0; v0 < nvec; v0 += B) {
        size_t count = nvec - v0 < B ? nvec - v0 : B;
        /* Plan first: FFTW_MEASURE scribbles on the buffers. */
        if ((rc = ngs_fftw_prepare(ctx->fftw, b->N, count, ctx->err, sizeof ctx->err)) != NGS_OK)
            return rc;
        fill(b, v0, count, ngs_fftw_input(ctx->fftw));
        if ((rc = ngs_fftw_execute(ctx->fftw, b->N, count, ctx->err, sizeof ctx->err)) != NGS_OK)
            return rc;
        post(b, v0, count, ngs_fftw_output(ctx->fftw));
    }
    ctx->last = NGS_SPECTRUM_CPU;
    return NGS_OK;
}

/* Sets up the GPU for this batch; on failure the batch can still go to the CPU. */
static int setup_gpu(const batch_job *b, size_t nvec, size_t *B)
{
    ngs_spectrum_ctx *ctx = b->ctx;
    int rc;
    *B = sub_batch(ctx, b->N, nvec, GPU_BUDGET);
    if (!ctx->cuda &&
        (rc = ngs_cuda_create(&ctx->cuda, ctx->opt.gpu_device, ctx->err, sizeof ctx->err)) != NGS_OK)
        return rc;
    if ((rc = ngs_cuda_reserve(ctx->cuda, b->N, *B, ctx->err, sizeof ctx->err)) != NGS_OK)
        return rc;
    /* The two sub-batch sizes this batch uses, planned before anything is in flight. */
    if ((rc = ngs_cuda_prepare(ctx->cuda, b->N, *B, ctx->err, sizeof ctx->err)) != NGS_OK)
        return rc;
    if (nvec % *B && (rc = ngs_cuda_prepare(ctx->cuda, b->N, nvec % *B, ctx->err, sizeof ctx->err)) != NGS_OK)
        return rc;
    return prepare_buffers(ctx, b->N, b->max_in);
}

static int run_gpu(const batch_job *b, size_t nvec, size_t B)
{
    ngs_spectrum_ctx *ctx = b->ctx;
    size_t nsub = (nvec + B - 1) / B;
    int rc = NGS_OK;
    size_t j = 0, done = 0; /* sub-batches handed to the GPU / post-processed */
    for (; j < nsub; j++) {
        int slot = (int)(j % NGS_CUDA_SLOTS);
        if (j >= NGS_CUDA_SLOTS) { /* the slot's previous sub-batch must be home first */
            if ((rc = ngs_cuda_wait(ctx->cuda, slot, ctx->err, sizeof ctx->err)) != NGS_OK)
                break;
            ngs_cuda_range_push("ngs_spectrum post");
            post(b, done * B, B, ngs_cuda_output(ctx->cuda, slot));
            ngs_cuda_range_pop();
            done++;
        }
        size_t v0 = j * B, count = nvec - v0 < B ? nvec - v0 : B;
        ngs_cuda_range_push("ngs_spectrum resample");
        fill(b, v0, count, ngs_cuda_input(ctx->cuda, slot));
        ngs_cuda_range_pop();
        if ((rc = ngs_cuda_submit(ctx->cuda, slot, b->N, count, ctx->err, sizeof ctx->err)) != NGS_OK) {
            j++; /* part of it may be queued: wait for it below */
            break;
        }
    }
    /* Drain: even after an error nothing may still be copying into our buffers. */
    for (; done < j; done++) {
        int slot = (int)(done % NGS_CUDA_SLOTS);
        int w = ngs_cuda_wait(ctx->cuda, slot, rc == NGS_OK ? ctx->err : NULL, sizeof ctx->err);
        if (rc == NGS_OK && w != NGS_OK)
            rc = w;
        if (rc == NGS_OK) {
            size_t v0 = done * B, count = nvec - v0 < B ? nvec - v0 : B;
            ngs_cuda_range_push("ngs_spectrum post");
            post(b, v0, count, ngs_cuda_output(ctx->cuda, slot));
            ngs_cuda_range_pop();
        }
    }
    if (rc == NGS_OK)
        ctx->last = NGS_SPECTRUM_GPU;
    return rc;
}

int ngs_spectrum_batch(ngs_spectrum_ctx *ctx, const double *const *t, const double *const *x,
                       const size_t *n, size_t nvec, const ngs_spectrum_out *out)
{
    if (!ctx)
        return NGS_ERR_ARG;
    ctx->err[0] = '\0';
    if (!x || !out)
        return fail(ctx, NGS_ERR_ARG, "spectrum: missing x or outputs");
    batch_job b = {ctx, t, x, n, 0, 0, 0, out};
    int rc = plan_records(ctx, t, x, n, nvec, out, &b.N, &b.max_in);
    if (rc != NGS_OK)
        return rc;
    b.nb = b.N / 2 + 1;
    if (nvec > SIZE_MAX / (b.N + 2) / 2)
        return fail(ctx, NGS_ERR_ARG, "spectrum: batch too large");

    int want_gpu = ctx->opt.backend == NGS_SPECTRUM_GPU;
    if (ctx->opt.backend == NGS_SPECTRUM_AUTO && nvec * b.N >= AUTO_GPU_MIN) {
        if (ctx->gpu_state < 0)
            ctx->gpu_state = ngs_cuda_probe(ctx->opt.gpu_device, NULL, 0);
        want_gpu = ctx->gpu_state == 1;
    }
    if (want_gpu) {
        size_t B;
        rc = setup_gpu(&b, nvec, &B);
        if (rc == NGS_OK)
            rc = run_gpu(&b, nvec, B);
        if (rc == NGS_OK || ctx->opt.backend == NGS_SPECTRUM_GPU)
            return rc;
        /* AUTO: the GPU could not take this batch (device memory, a device error): the
         * CPU redoes all of it. After a failure past setup, stop trying the device. */
        if (rc != NGS_ERR_NOMEM)
            ctx->gpu_state = 0;
        ctx->err[0] = '\0';
    }
    return run_cpu(&b, nvec);
}
