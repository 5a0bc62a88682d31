/*
 * spectrum_window.c - periodic (DFT-even) windows and their properties.
 *
 * Cosine-sum windows w_k = sum_j (-1)^j a_j cos(2 pi j k / N) are normalised to a peak of
 * 1 (sum a_j = 1). For them S1 = N a_0 and S2 = N (a_0^2 + sum_{j>0} a_j^2 / 2) exactly,
 * which the tests check; their transform at integer offsets beyond j = J is zero, so a
 * coherent tone lives entirely in bins m-J..m+J and the lobe half-width is L = J + 1
 * (room for a tone half a bin off).
 */
#include "gpu/spectrum_impl.h"

#include <complex.h>
#include <math.h>
#include <stdlib.h>

#include "ngscale.h"

/* Coefficients before normalisation, as usually published. */
static const double hamming[] = {0.54, 0.46};
static const double blackman[] = {0.42, 0.5, 0.08};
static const double bh4[] = {0.35875, 0.48829, 0.14128, 0.01168};
/* Heinzel, Ruediger, Schilling (2002), "Spectrum and spectral density estimation by the
 * DFT", flat-top HFT95: sidelobes -95 dB, ENBW 3.8112 bins. */
static const double hft95[] = {1.0, 1.9383379, 1.3045202, 0.4028270, 0.0350665};

/* I0 by its power series: terms (x/2)^2k / k!^2 decrease fast for beta <= 100. */
static double bessel_i0(double x)
{
    double sum = 1.0, term = 1.0, q = x * x / 4.0;
    for (int k = 1; k < 500; k++) {
        term *= q / ((double)k * k);
        sum += term;
        if (term < sum * 1e-17)
            break;
    }
    return sum;
}

const char *ngs_spectrum_window_name(ngs_window window)
{
    switch (window) {
    case NGS_WINDOW_RECTANGULAR: return "rectangular";
    case NGS_WINDOW_HANN: return "hann";
    case NGS_WINDOW_HAMMING: return "hamming";
    case NGS_WINDOW_BLACKMAN: return "blackman";
    case NGS_WINDOW_BLACKMAN_HARRIS: return "blackman-harris";
    case NGS_WINDOW_FLATTOP: return "flattop-hft95";
    case NGS_WINDOW_KAISER: return "kaiser";
    }
    return "unknown";
}

static int cosine_coefs(ngs_window kind, double *c)
{
    const double *src = NULL;
    int m = 0;
    switch (kind) {
    case NGS_WINDOW_RECTANGULAR: c[0] = 1.0; return 1;
    case NGS_WINDOW_HANN: c[0] = 0.5; c[1] = 0.5; return 2;
    case NGS_WINDOW_HAMMING: src = hamming; m = 2; break;
    case NGS_WINDOW_BLACKMAN: src = blackman; m = 3; break;
    case NGS_WINDOW_BLACKMAN_HARRIS: src = bh4; m = 4; break;
    case NGS_WINDOW_FLATTOP: src = hft95; m = 5; break;
    default: return 0;
    }
    double sum = 0.0;
    for (int j = 0; j < m; j++)
        sum += src[j];
    for (int j = 0; j < m; j++)
        c[j] = src[j] / sum;
    return m;
}

static int valid(ngs_window kind, double beta, size_t n)
{
    if (n < 2 || (int)kind < NGS_WINDOW_RECTANGULAR || (int)kind > NGS_WINDOW_KAISER)
        return 0;
    if (kind == NGS_WINDOW_KAISER && !(beta >= 0.0 && beta <= 100.0))
        return 0;
    return 1;
}

static int lobe_bins(ngs_window kind, double beta, int ncoef)
{
    if (kind == NGS_WINDOW_KAISER)
        return (int)ceil(sqrt(1.0 + beta * beta / (M_PI * M_PI)) - 1e-9);
    return ncoef; /* J + 1 */
}

static void fill(ngs_window kind, double beta, const double *c, int ncoef, size_t n, double *w)
{
    if (kind == NGS_WINDOW_KAISER) {
        double i0b = bessel_i0(beta);
        for (size_t k = 0; k < n; k++) {
            double r = 2.0 * (double)k / (double)n - 1.0;
            w[k] = bessel_i0(beta * sqrt(fmax(0.0, 1.0 - r * r))) / i0b;
        }
        return;
    }
    for (size_t k = 0; k < n; k++) {
        double v = c[0], sign = -1.0;
        for (int j = 1; j < ncoef; j++, sign = -sign)
            v += sign * c[j] * cos(2.0 * M_PI * (double)((j * k) % n) / (double)n);
        w[k] = v;
    }
}

int ngs_spectrum_window(ngs_window window, double kaiser_beta, size_t n, double *w)
{
    if (!w || !valid(window, kaiser_beta, n))
        return NGS_ERR_ARG;
    double c[5];
    int m = cosine_coefs(window, c);
    fill(window, kaiser_beta, c, m, n, w);
    return NGS_OK;
}

int spx_window_init(spx_window *win, ngs_window kind, double beta, size_t n)
{
    if (!win || !valid(kind, beta, n))
        return NGS_ERR_ARG;
    win->kind = kind;
    win->beta = beta;
    win->n = n;
    win->ncoef = cosine_coefs(kind, win->coef);
    win->lobe = lobe_bins(kind, beta, win->ncoef);
    win->w = malloc(n * sizeof *win->w);
    if (!win->w)
        return NGS_ERR_NOMEM;
    fill(kind, beta, win->coef, win->ncoef, n, win->w);
    /* Sums in long double: S1 and S2 set every scale factor. */
    long double s1 = 0, s2 = 0;
    for (size_t k = 0; k < n; k++) {
        s1 += win->w[k];
        s2 += (long double)win->w[k] * win->w[k];
    }
    win->s1 = (double)s1;
    win->s2 = (double)s2;
    return NGS_OK;
}

void spx_window_free(spx_window *win)
{
    if (win) {
        free(win->w);
        win->w = NULL;
    }
}

int ngs_spectrum_window_info(ngs_window window, double kaiser_beta, size_t n,
                             double *coherent_gain, double *enbw_bins, int *exclusion_bins)
{
    spx_window win;
    int rc = spx_window_init(&win, window, kaiser_beta, n);
    if (rc != NGS_OK)
        return rc;
    if (coherent_gain)
        *coherent_gain = win.s1 / (double)n;
    if (enbw_bins)
        *enbw_bins = (double)n * win.s2 / (win.s1 * win.s1);
    if (exclusion_bins)
        *exclusion_bins = win.lobe;
    spx_window_free(&win);
    return NGS_OK;
}

/* Dirichlet kernel sum_{k<N} exp(-2 pi i k nu / N). */
static double complex dirichlet(double nu, size_t n)
{
    double N = (double)n;
    double s = sin(M_PI * nu / N);
    double mag = fabs(s) < 1e-300 ? N : sin(M_PI * nu) / s;
    return mag * cexp(-I * M_PI * nu * (N - 1.0) / N);
}

double spx_window_gain(const spx_window *win, double delta)
{
    if (delta == 0.0)
        return 1.0;
    if (win->kind == NGS_WINDOW_KAISER) {
        /* Continuous Kaiser transform: sinh(sqrt(b^2 - (pi d)^2)) / sqrt(...), normalised. */
        double b = win->beta, a2 = b * b - M_PI * M_PI * delta * delta;
        double num = a2 > 0 ? sinh(sqrt(a2)) / sqrt(a2) : (a2 < 0 ? sin(sqrt(-a2)) / sqrt(-a2) : 1.0);
        double den = b > 0 ? sinh(b) / b : 1.0;
        return fabs(num / den);
    }
    /* W(nu) = sum_j (-1)^j a_j / 2 (D(nu - j) + D(nu + j)), the j = 0 term counted once. */
    double complex W = win->coef[0] * dirichlet(delta, win->n);
    double sign = -1.0;
    for (int j = 1; j < win->ncoef; j++, sign = -sign)
        W += sign * win->coef[j] * 0.5 * (dirichlet(delta - j, win->n) + dirichlet(delta + j, win->n));
    return cabs(W) / (win->coef[0] * (double)win->n);
}
