/*
 * spectrum_impl.h - pieces shared by the spectral engine's C files (library-internal).
 */
#ifndef NGSCALE_GPU_SPECTRUM_IMPL_H
#define NGSCALE_GPU_SPECTRUM_IMPL_H

#include <stddef.h>

#include "gpu/spectrum.h"

/* A window ready for use on N points: samples plus the sums every scaling needs. */
typedef struct {
    ngs_window kind;
    double beta;
    size_t n;
    double *w;    /* n samples, peak 1 */
    double s1;    /* sum w */
    double s2;    /* sum w^2 */
    int lobe;     /* exclusion half-width L, bins */
    int ncoef;    /* cosine-sum terms (0 for kaiser) */
    double coef[5];
} spx_window;

int spx_window_init(spx_window *win, ngs_window kind, double beta, size_t n);
void spx_window_free(spx_window *win);
/* |W(delta)| / |W(0)|: the window's response to a tone delta bins off a bin centre,
 * used to undo scalloping. Exact for the cosine-sum windows, continuous-limit formula
 * for kaiser. */
double spx_window_gain(const spx_window *win, double delta);

/* Workspace-taking resampler: `work` holds n doubles for the cubic spline.
 * Writes y[k] for k in [k0, k1) only (so callers can split a grid between threads);
 * `slopes` are spline slopes from spx_spline_slopes() (NULL for linear). */
int spx_spline_slopes(const double *t, const double *x, size_t n, double *slopes, double *work);
void spx_resample_range(const double *t, const double *x, const double *slopes, size_t n,
                        double t_start, double dt, size_t k0, size_t k1, double *y);

/* Metrics of one vector from its one-sided DFT (nbins complex values). `amp` and `pw`
 * are nbins scratch doubles (filled with the amplitude spectrum and per-bin power),
 * `claimed` nbins scratch bytes. */
typedef struct {
    const spx_window *win;
    size_t n;          /* N */
    double fs;
    double fundamental;/* Hz, 0 = search */
    int harmonics;
} spx_metric_args;

void spx_metrics(const spx_metric_args *a, const double *dft, double *amp, double *pw,
                 unsigned char *claimed, ngs_spectrum_metrics *m);

/* Amplitude, power per bin (P_k = G_k df) from the raw DFT; shared with the outputs. */
void spx_scale_bins(const spx_window *win, size_t n, const double *dft, size_t k0, size_t k1,
                    double *amp, double *pw);

#endif /* NGSCALE_GPU_SPECTRUM_IMPL_H */
