/*
 * spectrum.h - the spectral engine: non-uniform transient vectors -> uniform grid ->
 * window -> batched real FFT (cuFFT on a GPU, FFTW with threads on the CPU) ->
 * one-sided spectra and the IEEE Std 1241 metrics (THD, SNR, SINAD, SFDR, ENOB).
 *
 * Library-internal API (not in ngscale.h). Every function that can fail returns
 * NGS_OK or a negative NGS_ERR_* code from ngscale.h; ngs_spectrum_last_error()
 * says why. A context is used by one thread at a time; separate contexts may run
 * in parallel.
 *
 * Conventions, so results are comparable across backends and windows:
 *  - Uniform grid: each vector's analysed record [t_start, t_start + T) is sampled at
 *    N points, dt = T / N, t_k = t_start + k*dt (the endpoint is left out: the record
 *    is one period of a periodic signal, so bins sit exactly at k / T).
 *    Without a fundamental, T = t[n-1] - t[0] (the whole record). With a fundamental
 *    f0 and P periods, T = P / f0 taken from the END of the record (start-up transients
 *    are skipped); P = 0 takes as many whole periods as fit. Then the fundamental sits
 *    exactly on bin P (coherent sampling: no leakage).
 *  - Windows are periodic (DFT-even), w_k = w(k / N), normalised to a peak of 1.
 *  - Amplitude spectrum: A_k = c_k |X_k| / S1 with S1 = sum w_k, c_k = 2 except at DC
 *    and Nyquist (1): a tone of peak amplitude A on a bin reads A, whatever the window.
 *  - PSD (one-sided, V^2/Hz): G_k = c_k |X_k|^2 / (fs * S2), S2 = sum w_k^2; this is the
 *    ENBW correction: white noise of variance s^2 reads 2 s^2 / fs, and the sum of
 *    G_k * df over all bins is the signal's mean square (Parseval).
 *  - Metrics (IEEE Std 1241 definitions) work on powers P_k = G_k * df. A tone's power
 *    is the sum of P_k over its main lobe: bins within +-L of its (rounded) position,
 *    L = ngs_spectrum_window_info()'s exclusion_bins:
 *      rectangular 1, hann 2, hamming 2, blackman 3, blackman-harris 4, flat-top 5,
 *      kaiser ceil(sqrt(1 + (beta/pi)^2)).
 *    For coherent sampling with the cosine-sum windows these lobes hold all of a tone's
 *    energy; with non-coherent sampling, leakage beyond the lobe counts as noise, so
 *    pick a low-sidelobe window (blackman-harris, flat-top, kaiser with beta >= 12)
 *    when measuring high dynamic range without coherent sampling.
 *    DC (bins 0..L), the fundamental and harmonics 2..H (each folded into the first
 *    Nyquist zone: f_h = h f1 mod fs, mirrored above fs/2) are excluded from noise;
 *    a lobe already claimed (e.g. a harmonic folding onto another) is not counted twice.
 *    Noise is the sum of P_k over the remaining bins, scaled up to the whole band
 *    (0, fs/2] as if the excluded bins held the average noise.
 */
#ifndef NGSCALE_GPU_SPECTRUM_H
#define NGSCALE_GPU_SPECTRUM_H

#include <stddef.h>

#include "ngscale.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Both backends share everything but the FFT: resampling, windowing, scaling and metrics
 * run on the CPU (OpenMP), so they agree to FFT rounding (~1e-15). */
typedef enum {
    NGS_SPECTRUM_AUTO = 0, /* GPU when a CUDA device is usable and nvec * N >= 2^20 (smaller
                              batches do not amortise the transfers), else CPU; a batch the
                              GPU fails on is redone on the CPU */
    NGS_SPECTRUM_CPU = 1,  /* FFTW (threads) */
    NGS_SPECTRUM_GPU = 2   /* cuFFT; ngs_spectrum_create() fails with NGS_ERR_STATE without a device */
} ngs_spectrum_backend;

typedef enum {
    NGS_WINDOW_RECTANGULAR = 0,
    NGS_WINDOW_HANN = 1,
    NGS_WINDOW_HAMMING = 2,         /* 0.54 - 0.46 cos */
    NGS_WINDOW_BLACKMAN = 3,        /* classic 0.42 / 0.5 / 0.08 */
    NGS_WINDOW_BLACKMAN_HARRIS = 4, /* 4-term, -92 dB sidelobes */
    NGS_WINDOW_FLATTOP = 5,         /* Heinzel's HFT95 (5-term, -95 dB sidelobes, ENBW 3.81 bins) */
    NGS_WINDOW_KAISER = 6           /* I0(beta sqrt(1 - (2k/N - 1)^2)) / I0(beta) */
} ngs_window;

typedef enum {
    NGS_RESAMPLE_LINEAR = 0, /* error <= h^2/8 max|x''| */
    NGS_RESAMPLE_CUBIC = 1   /* not-a-knot cubic spline (C2, O(h^4)); linear below 4 points.
                                The batch solves it per 16k-point chunk with 64 points of
                                context each side: the global spline to rounding (tested) */
} ngs_resample;

#define NGS_SPECTRUM_MAX_HARMONICS 32

typedef struct ngs_spectrum_options {
    ngs_spectrum_backend backend;
    int threads;            /* FFTW and OpenMP threads; 0 = omp_get_max_threads() */
    ngs_window window;      /* default NGS_WINDOW_BLACKMAN_HARRIS */
    double kaiser_beta;     /* default 8.6 */
    ngs_resample resample;  /* default NGS_RESAMPLE_CUBIC */
    size_t n;               /* uniform points N (>= 4); 0 = next power of two >= the largest
                               number of input points inside an analysed record */
    double fundamental;     /* Hz; 0 = the largest non-DC bin, interpolated (none, NaN metrics,
                               when it is rounding: 240 dB below the record, a constant; or
                               less than 20 dB above the floor's mean, or above what the DC
                               lobe leaks to it through the window's sidelobes) */
    unsigned periods;       /* with a fundamental: whole periods analysed; 0 = as many as fit */
    int harmonics;          /* THD uses harmonics 2..harmonics (2..NGS_SPECTRUM_MAX_HARMONICS), default 9 */
    int plan_measure;       /* 1: FFTW_MEASURE (slower planning, faster transforms); default FFTW_ESTIMATE */
    const char *wisdom_path;/* FFTW wisdom file: imported at create, exported at destroy; NULL = none */
    size_t batch_vectors;   /* vectors per FFT sub-batch (bounds memory); 0 = auto (~256 MiB CPU, ~128 MiB per GPU stream) */
    int gpu_device;         /* CUDA device index, default 0 */
} ngs_spectrum_options;

/* Per-vector results. Powers are in V^2 (mean square), levels in dB. Values that are
 * undefined for a vector (no signal, no noise) come out as NaN or +-INFINITY. */
typedef struct ngs_spectrum_metrics {
    double t_start;        /* analysed record [t_start, t_start + N/fs) */
    double fs;             /* uniform sample rate, Hz */
    double df;             /* bin spacing fs/N, Hz; bin k is at k*df */
    int coherent;          /* 1: fundamental given and whole periods analysed */
    double fundamental;    /* Hz (given, or found and interpolated) */
    double amplitude;      /* peak amplitude of the fundamental (scalloping corrected) */
    double dc;             /* window-weighted mean */
    double signal_power;   /* fundamental power (sum over its lobe) */
    double harmonic_power; /* sum of harmonics 2..H */
    double noise_power;    /* everything else but DC, extrapolated to (0, fs/2] */
    double hd_dbc[NGS_SPECTRUM_MAX_HARMONICS + 1]; /* [h] = harmonic h in dBc, 2..H; others NaN */
    double thd_db;         /* 10 log10(harmonic_power / signal_power), dBc */
    double thd_percent;    /* 100 sqrt(harmonic_power / signal_power) */
    double snr_db;         /* 10 log10(signal_power / noise_power) */
    double sinad_db;       /* SNDR: 10 log10(signal_power / (noise_power + harmonic_power)) */
    double sfdr_db;        /* dBc: fundamental amplitude over the largest other component */
    double spur_frequency; /* Hz, where that component is */
    double enob;           /* (sinad_db - 1.76) / 6.02: assumes a full-scale fundamental */
    double noise_density;  /* average one-sided noise PSD, V^2/Hz = noise_power / (fs/2) */
    double noise_floor_db; /* 10 log10(noise_density * df): average noise per bin, dB re 1 V^2 */
} ngs_spectrum_metrics;

/* Outputs of ngs_spectrum_batch(); each pointer may be NULL (not wanted). Arrays are
 * row-major, one row of nbins = N/2 + 1 values per vector (see ngs_spectrum_size()). */
typedef struct ngs_spectrum_out {
    double *amplitude; /* nvec x nbins: one-sided amplitude spectrum, V peak */
    double *psd;       /* nvec x nbins: one-sided power spectral density, V^2/Hz */
    double *freq;      /* nvec x nbins: k * df of that vector, Hz */
    double *dft;       /* nvec x nbins x 2: raw DFT (re, im) of the windowed record, unscaled */
    double *uniform;   /* nvec x N: the resampled record, before the window */
    ngs_spectrum_metrics *metrics; /* nvec */
} ngs_spectrum_out;

typedef struct ngs_spectrum_ctx ngs_spectrum_ctx;

void ngs_spectrum_options_init(ngs_spectrum_options *options);

/* Fails with NGS_ERR_ARG on bad options, NGS_ERR_STATE when the GPU backend is asked
 * for and no CUDA device is usable (ngs_spectrum_gpu_probe() says why). */
int ngs_spectrum_create(ngs_spectrum_ctx **ctx, const ngs_spectrum_options *options);
void ngs_spectrum_destroy(ngs_spectrum_ctx *ctx);

/* "" when none; valid until the next call on ctx. */
const char *ngs_spectrum_last_error(const ngs_spectrum_ctx *ctx);

/* Backend that ran the last batch (NGS_SPECTRUM_CPU or NGS_SPECTRUM_GPU); AUTO before any. */
ngs_spectrum_backend ngs_spectrum_last_backend(const ngs_spectrum_ctx *ctx);

/* 1 when a CUDA device is usable (and the library was built with CUDA), else 0;
 * message (may be NULL) gets the device name or the reason. */
int ngs_spectrum_gpu_probe(char *message, size_t message_len);

/* N and nbins that ngs_spectrum_batch() will use for these inputs (to size outputs).
 * Both fail with NGS_ERR_NOMEM, before allocating, when the buffers (the engine's and
 * the outputs: for this call amplitude and psd) exceed physical memory or the process's
 * RLIMIT_AS / RLIMIT_DATA. */
int ngs_spectrum_size(ngs_spectrum_ctx *ctx, const double *const *t, const size_t *n,
                      size_t nvec, size_t *points, size_t *nbins);

/* Resamples, windows and transforms nvec vectors (t[i], x[i]) of n[i] points each, all
 * to the same N, and fills the wanted outputs. t[i] must be strictly increasing and
 * finite, n[i] >= 2. On error nothing in out is meaningful. */
int ngs_spectrum_batch(ngs_spectrum_ctx *ctx, const double *const *t, const double *const *x,
                       const size_t *n, size_t nvec, const ngs_spectrum_out *out);

/* Non-uniform (t, x), n points, t strictly increasing -> y[k] = x(t_start + k*dt),
 * k < m. The grid must lie inside [t[0], t[n-1]] (a rounding slack of 1e-9 of the
 * span is clamped). */
int ngs_spectrum_resample(const double *t, const double *x, size_t n, double t_start,
                          double dt, size_t m, ngs_resample method, double *y);

/* Fills w[0..n-1] with the periodic window (peak 1). */
int ngs_spectrum_window(ngs_window window, double kaiser_beta, size_t n, double *w);

/* Properties of the periodic window of length n, each pointer may be NULL:
 * coherent gain S1/n, ENBW n*S2/S1^2 in bins, and the lobe half-width L (bins) used for
 * exclusions (see the top of this file). */
int ngs_spectrum_window_info(ngs_window window, double kaiser_beta, size_t n,
                             double *coherent_gain, double *enbw_bins, int *exclusion_bins);

const char *ngs_spectrum_window_name(ngs_window window);

#ifdef __cplusplus
}
#endif
#endif /* NGSCALE_GPU_SPECTRUM_H */
