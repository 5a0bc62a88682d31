/*
 * bench_spectrum.c - K non-uniform transient vectors x N points through the spectral
 * engine, end to end (validation, cubic resampling, window, FFT, host<->device transfers,
 * metrics), on FFTW with 1 thread, FFTW with all threads, and cuFFT. Prints the median
 * of several repetitions and the ratios between them (these machines are shared and
 * noisy: compare ratios from one run, not absolute times across runs).
 *
 *   bench_spectrum [-k vectors] [-n points] [-r repetitions] [-w window] [-l] [-s]
 *     -k  vectors per batch (default 1000)
 *     -n  points per vector, input and FFT size (default 1048576 = 2^20; any N >= 16)
 *     -r  timed repetitions per backend, after one untimed warm-up (default 5)
 *     -l  linear instead of cubic resampling
 *     -s  also produce the amplitude spectra (K x (N/2+1) doubles of output)
 *
 * Inputs: a pool of min(K, 16) distinct vectors (jittered time grid, a tone with HD2/HD3
 * and noise), cycled to make K: K x 2^20 distinct vectors would need 16 GB of input. The
 * pool already exceeds every cache, so memory traffic is that of K distinct vectors.
 */
#include <math.h>
#include <omp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gpu/spectrum.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static double uniform01(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return ((rng * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0) + 0x1p-54;
}

typedef struct {
    const char *name;
    ngs_spectrum_backend backend;
    int threads;
    double first, median, min;
    int ran;
    ngs_spectrum_metrics *m;
} config;

static int run_config(config *c, const ngs_spectrum_options *base, const double *const *t,
                      const double *const *x, const size_t *n, size_t K, double *amp, int reps)
{
    ngs_spectrum_options o = *base;
    o.backend = c->backend;
    o.threads = c->threads;
    ngs_spectrum_ctx *ctx;
    int rc = ngs_spectrum_create(&ctx, &o);
    if (rc != NGS_OK)
        return rc;
    ngs_spectrum_out out = {amp, NULL, NULL, NULL, NULL, c->m};
    double *times = malloc((size_t)reps * sizeof *times);
    if (!times) {
        ngs_spectrum_destroy(ctx);
        return NGS_ERR_NOMEM;
    }
    for (int r = -1; r < reps && rc == NGS_OK; r++) {
        double t0 = now();
        rc = ngs_spectrum_batch(ctx, t, x, n, K, &out);
        double dt = now() - t0;
        if (r < 0)
            c->first = dt; /* plans, pinned and device buffers, thread pools */
        else
            times[r] = dt;
    }
    if (rc != NGS_OK)
        fprintf(stderr, "  %s: %s\n", c->name, ngs_spectrum_last_error(ctx));
    else if (ngs_spectrum_last_backend(ctx) != c->backend) {
        fprintf(stderr, "  %s ran on the wrong backend\n", c->name);
        rc = NGS_ERR_STATE;
    }
    if (rc == NGS_OK) {
        qsort(times, (size_t)reps, sizeof *times, cmp_double);
        c->median = reps % 2 ? times[reps / 2] : 0.5 * (times[reps / 2 - 1] + times[reps / 2]);
        c->min = times[0];
        c->ran = 1;
    }
    free(times);
    ngs_spectrum_destroy(ctx);
    return rc;
}

int main(int argc, char **argv)
{
    size_t K = 1000, N = (size_t)1 << 20;
    int reps = 5, spectra = 0, opt;
    ngs_resample method = NGS_RESAMPLE_CUBIC;
    while ((opt = getopt(argc, argv, "k:n:r:ls")) != -1) {
        switch (opt) {
        case 'k': K = strtoull(optarg, NULL, 0); break;
        case 'n': N = strtoull(optarg, NULL, 0); break;
        case 'r': reps = atoi(optarg); break;
        case 'l': method = NGS_RESAMPLE_LINEAR; break;
        case 's': spectra = 1; break;
        default:
            fprintf(stderr, "usage: %s [-k vectors] [-n points] [-r repetitions] [-l] [-s]\n", argv[0]);
            return 2;
        }
    }
    if (K < 1 || N < 16 || reps < 1) {
        fprintf(stderr, "need k >= 1, n >= 16, r >= 1\n");
        return 2;
    }

    /* Input pool: jittered time grid over 200 periods, tone + HD2 + HD3 + noise. */
    size_t pool = K < 16 ? K : 16;
    double **tp = malloc(pool * sizeof *tp), **xp = malloc(pool * sizeof *xp);
    const double **t = malloc(K * sizeof *t), **x = malloc(K * sizeof *x);
    size_t *n = malloc(K * sizeof *n);
    if (!tp || !xp || !t || !x || !n) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    const double f0 = 1e6, span = 200.0 / f0, h = span / (double)(N - 1);
    for (size_t p = 0; p < pool; p++) {
        tp[p] = malloc(N * sizeof(double));
        xp[p] = malloc(N * sizeof(double));
        if (!tp[p] || !xp[p]) {
            fprintf(stderr, "out of memory for the input pool\n");
            return 1;
        }
        for (size_t i = 0; i < N; i++) {
            double j = (i == 0 || i + 1 == N) ? 0 : 0.4 * (2 * uniform01() - 1);
            double ti = ((double)i + j) * h, w = 2 * M_PI * f0 * ti;
            tp[p][i] = ti;
            xp[p][i] = (1 + 0.01 * (double)p) * sin(w) + 1e-3 * sin(2 * w + 0.3) +
                       3e-4 * sin(3 * w) + 1e-5 * (uniform01() - 0.5);
        }
    }
    for (size_t i = 0; i < K; i++) {
        t[i] = tp[i % pool];
        x[i] = xp[i % pool];
        n[i] = N;
    }
    double *amp = NULL;
    if (spectra && !(amp = malloc(K * (N / 2 + 1) * sizeof *amp))) {
        fprintf(stderr, "out of memory for %zu x %zu spectra\n", K, N / 2 + 1);
        return 1;
    }

    ngs_spectrum_options base;
    ngs_spectrum_options_init(&base);
    base.n = N;
    base.resample = method;
    base.fundamental = f0; /* 200 whole periods: coherent */

    char gpu_msg[256];
    int have_gpu = ngs_spectrum_gpu_probe(gpu_msg, sizeof gpu_msg);
    int all = omp_get_max_threads();
    config cfg[3] = {
        {"FFTW 1 thread", NGS_SPECTRUM_CPU, 1, 0, 0, 0, 0, NULL},
        {"FFTW all threads", NGS_SPECTRUM_CPU, all, 0, 0, 0, 0, NULL},
        {"cuFFT", NGS_SPECTRUM_GPU, all, 0, 0, 0, 0, NULL},
    };
    printf("ngscale spectral engine: %zu vectors x %zu points (%s resampling, %s window%s), "
           "%d repetitions + 1 warm-up, %d CPU threads\n",
           K, N, method == NGS_RESAMPLE_CUBIC ? "cubic" : "linear",
           ngs_spectrum_window_name(base.window), spectra ? ", spectra out" : ", metrics only", reps, all);
    printf("GPU: %s\n\n", gpu_msg);
    printf("%-18s %12s %12s %12s %14s %12s %12s\n", "backend", "first (s)", "median (s)", "min (s)",
           "Mpoints/s", "vs 1 thread", "vs all thr.");
    int status = 0;
    for (int c = 0; c < 3; c++) {
        if (cfg[c].backend == NGS_SPECTRUM_GPU && !have_gpu) {
            printf("%-18s SKIPPED: no usable CUDA device (%s)\n", cfg[c].name, gpu_msg);
            continue;
        }
        if (c == 1 && all == 1) {
            printf("%-18s SKIPPED: only one CPU thread available\n", cfg[c].name);
            continue;
        }
        cfg[c].m = malloc(K * sizeof *cfg[c].m);
        if (!cfg[c].m || run_config(&cfg[c], &base, (const double *const *)t, (const double *const *)x,
                                    n, K, amp, reps) != NGS_OK) {
            printf("%-18s FAILED\n", cfg[c].name);
            status = 1;
            continue;
        }
        printf("%-18s %12.4f %12.4f %12.4f %14.1f", cfg[c].name, cfg[c].first, cfg[c].median, cfg[c].min,
               (double)K * (double)N / cfg[c].median / 1e6);
        if (cfg[0].ran)
            printf(" %11.2fx", cfg[0].median / cfg[c].median);
        else
            printf(" %12s", "-");
        if (cfg[1].ran)
            printf(" %11.2fx", cfg[1].median / cfg[c].median);
        else
            printf(" %12s", "-");
        printf("\n");
    }

    /* Same answers from every backend (metrics are computed by the same CPU code after
     * the FFT, so differences are FFT rounding). */
    int ref = cfg[0].ran ? 0 : cfg[1].ran ? 1 : -1;
    for (int c = 0; ref >= 0 && c < 3; c++) {
        if (!cfg[c].ran || c == ref)
            continue;
        double d = 0;
        for (size_t i = 0; i < K; i++) {
            double a = fabs(cfg[c].m[i].amplitude - cfg[ref].m[i].amplitude) / cfg[ref].m[i].amplitude;
            double s = fabs(cfg[c].m[i].sinad_db - cfg[ref].m[i].sinad_db);
            d = fmax(d, fmax(a, s / 100));
        }
        printf("check %-16s max |diff| vs %s: %.2e (amplitude rel., SINAD dB/100)%s\n", cfg[c].name,
               cfg[ref].name, d, d < 1e-9 ? "" : "  <-- MISMATCH");
        if (d >= 1e-9)
            status = 1;
    }
    if (ref >= 0)
        printf("vector 0: f0 %.6g Hz, A %.6f, THD %.2f dB, SINAD %.2f dB, SFDR %.2f dBc, ENOB %.2f\n",
               cfg[ref].m[0].fundamental, cfg[ref].m[0].amplitude, cfg[ref].m[0].thd_db,
               cfg[ref].m[0].sinad_db, cfg[ref].m[0].sfdr_db, cfg[ref].m[0].enob);

    for (int c = 0; c < 3; c++)
        free(cfg[c].m);
    for (size_t p = 0; p < pool; p++) {
        free(tp[p]);
        free(xp[p]);
    }
    free(tp);
    free(xp);
    free(t);
    free(x);
    free(n);
    free(amp);
    return status;
}
