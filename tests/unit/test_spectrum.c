/*
 * test_spectrum.c - the spectral engine against analytic results.
 *
 * Signals are built here so every expected value is known in closed form: coherent
 * tones (f0 = P / T, P whole periods), harmonics at set dBc, seeded white noise of set
 * variance, ideal quantisers, and a direct O(N^2) DFT in long double as the FFT
 * reference. Tolerances are stated at each check. Only the GPU test may pass without
 * asserting (no CUDA device: it prints SKIP).
 */
#include <check.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gpu/spectrum.h"
#include "ngscale.h"

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s ? s : 88172645463325252ULL; }
static double rng_uniform(void) /* (0, 1), xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return ((rng_state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0) + 0x1p-54;
}
static double rng_gauss(void) /* Box-Muller */
{
    double u = rng_uniform(), v = rng_uniform();
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

/* A record of n + 1 uniform points over [0, T]: the analysis grid of N = n points lands on
 * the samples, so resampling is exact and only the spectral code is under test. */
typedef struct {
    size_t n;
    double *t, *x;
} record;

static record make_record(size_t points, double T)
{
    record r = {points, malloc(points * sizeof(double)), calloc(points, sizeof(double))};
    ck_assert_ptr_nonnull(r.t);
    ck_assert_ptr_nonnull(r.x);
    for (size_t k = 0; k < points; k++)
        r.t[k] = (double)k * (T / (double)(points - 1));
    return r;
}

static void add_tone(record *r, double amp, double f, double phase)
{
    for (size_t k = 0; k < r->n; k++)
        r->x[k] += amp * sin(2.0 * M_PI * f * r->t[k] + phase);
}

static void free_record(record *r)
{
    free(r->t);
    free(r->x);
}

static ngs_spectrum_ctx *make_ctx(ngs_window w, double beta, size_t N, double f0, unsigned P)
{
    ngs_spectrum_options o;
    ngs_spectrum_options_init(&o);
    o.backend = NGS_SPECTRUM_CPU;
    o.window = w;
    o.kaiser_beta = beta;
    o.n = N;
    o.fundamental = f0;
    o.periods = P;
    ngs_spectrum_ctx *ctx = NULL;
    ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_OK);
    return ctx;
}

static int run1(ngs_spectrum_ctx *ctx, const record *r, ngs_spectrum_metrics *m, double *amp,
                double *psd, double *dft)
{
    const double *t[1] = {r->t}, *x[1] = {r->x};
    size_t n[1] = {r->n};
    ngs_spectrum_out out = {amp, psd, NULL, dft, NULL, m};
    int rc = ngs_spectrum_batch(ctx, t, x, n, 1, &out);
    if (rc != NGS_OK)
        fprintf(stderr, "batch: %s\n", ngs_spectrum_last_error(ctx));
    return rc;
}

static double rel(double got, double want) { return fabs(got - want) / fabs(want); }

static const ngs_window all_windows[] = {NGS_WINDOW_RECTANGULAR, NGS_WINDOW_HANN,
                                         NGS_WINDOW_HAMMING, NGS_WINDOW_BLACKMAN,
                                         NGS_WINDOW_BLACKMAN_HARRIS, NGS_WINDOW_FLATTOP,
                                         NGS_WINDOW_KAISER};

/* ---- windows -------------------------------------------------------------------------- */

/* Cosine-sum windows: CG = a0 and ENBW = (a0^2 + sum a_j^2 / 2) / a0^2 exactly (peak-1
 * normalisation); published ENBW values to 1e-4; Kaiser's CG tends to
 * sinh(beta) / (beta I0(beta)). */
START_TEST(test_window_gain_and_enbw_closed_form)
{
    static const struct {
        ngs_window w;
        int m;
        double a[5];
        double enbw_published;
        int lobe;
    } cases[] = {
        {NGS_WINDOW_RECTANGULAR, 1, {1}, 1.0, 1},
        {NGS_WINDOW_HANN, 2, {0.5, 0.5}, 1.5, 2},
        {NGS_WINDOW_HAMMING, 2, {0.54, 0.46}, 1.3628, 2},
        {NGS_WINDOW_BLACKMAN, 3, {0.42, 0.5, 0.08}, 1.7268, 3},
        {NGS_WINDOW_BLACKMAN_HARRIS, 4, {0.35875, 0.48829, 0.14128, 0.01168}, 2.0044, 4},
        {NGS_WINDOW_FLATTOP, 5, {1, 1.9383379, 1.3045202, 0.4028270, 0.0350665}, 3.8112, 5},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        double sum = 0, a0, q = 0;
        for (int j = 0; j < cases[c].m; j++)
            sum += cases[c].a[j];
        a0 = cases[c].a[0] / sum;
        for (int j = 1; j < cases[c].m; j++)
            q += 0.5 * (cases[c].a[j] / sum) * (cases[c].a[j] / sum);
        double enbw_exact = (a0 * a0 + q) / (a0 * a0);
        for (size_t N = 64; N <= 4096; N *= 64) {
            double cg, enbw;
            int lobe;
            ck_assert_int_eq(ngs_spectrum_window_info(cases[c].w, 0, N, &cg, &enbw, &lobe), NGS_OK);
            ck_assert_msg(fabs(cg - a0) < 1e-12, "%s CG %.15g != %.15g",
                          ngs_spectrum_window_name(cases[c].w), cg, a0);
            ck_assert_msg(fabs(enbw - enbw_exact) < 1e-12, "%s ENBW %.15g != %.15g",
                          ngs_spectrum_window_name(cases[c].w), enbw, enbw_exact);
            ck_assert_msg(fabs(enbw - cases[c].enbw_published) < 1e-4, "%s ENBW %.6g vs published %.5g",
                          ngs_spectrum_window_name(cases[c].w), enbw, cases[c].enbw_published);
            ck_assert_int_eq(lobe, cases[c].lobe);
            /* Samples: periodic, peak 1 at N/2, and the formula itself. */
            double *w = malloc(N * sizeof *w);
            ck_assert_int_eq(ngs_spectrum_window(cases[c].w, 0, N, w), NGS_OK);
            ck_assert(fabs(w[N / 2] - 1.0) < 1e-15);
            for (size_t k = 0; k < N; k += 7) {
                double v = 0, sign = 1;
                for (int j = 0; j < cases[c].m; j++, sign = -sign)
                    v += sign * cases[c].a[j] / sum * cos(2 * M_PI * j * (double)k / (double)N);
                ck_assert(fabs(w[k] - v) < 1e-14);
            }
            free(w);
        }
    }
    /* Kaiser: the periodic sum is a trapezoid rule of the continuous window. */
    double betas[] = {0.0, 8.6, 20.0};
    for (int b = 0; b < 3; b++) {
        double beta = betas[b], cg, enbw;
        int lobe;
        ck_assert_int_eq(ngs_spectrum_window_info(NGS_WINDOW_KAISER, beta, 1 << 16, &cg, &enbw, &lobe), NGS_OK);
        double i0 = 0, term = 1;
        for (int k = 0; k < 200; k++) { /* I0 by its series, independently of the library */
            if (k)
                term *= (beta / 2) * (beta / 2) / ((double)k * k);
            i0 += term;
        }
        double want = beta > 0 ? sinh(beta) / (beta * i0) : 1.0;
        ck_assert_msg(fabs(cg - want) < 1e-6, "kaiser(%g) CG %.9g vs %.9g", beta, cg, want);
        ck_assert_int_eq(lobe, (int)ceil(sqrt(1 + beta * beta / (M_PI * M_PI)) - 1e-9));
        ck_assert(enbw >= 1.0 - 1e-12);
    }
    ck_assert_int_eq(ngs_spectrum_window_info(NGS_WINDOW_KAISER, -1, 64, NULL, NULL, NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_window_info((ngs_window)99, 0, 64, NULL, NULL, NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_window(NGS_WINDOW_HANN, 0, 1, NULL), NGS_ERR_ARG);
}
END_TEST

/* ---- FFT against a direct DFT ------------------------------------------------------------ */

/* out.dft must be the DFT of w_k x_k: checked against sum_k w_k x_k e^{-2 pi i j k / N} in
 * long double, max error <= 1e-9 * max |X| (FFT rounding is ~1e-15), for even and odd N,
 * rectangular and Hann (whose samples the test computes itself). Amplitude and PSD
 * scaling are checked against the same reference. */
START_TEST(test_fft_matches_direct_dft)
{
    size_t sizes[] = {64, 45, 128};
    ngs_window wins[] = {NGS_WINDOW_RECTANGULAR, NGS_WINDOW_HANN};
    rng_seed(7);
    for (int si = 0; si < 3; si++) {
        for (int wi = 0; wi < 2; wi++) {
            size_t N = sizes[si], nb = N / 2 + 1;
            record r = make_record(N + 1, 1e-3);
            for (size_t k = 0; k <= N; k++)
                r.x[k] = rng_gauss() + 0.25;
            ngs_spectrum_ctx *ctx = make_ctx(wins[wi], 0, N, 0, 0);
            double *dft = malloc(nb * 2 * sizeof *dft), *amp = malloc(nb * sizeof *amp),
                   *psd = malloc(nb * sizeof *psd);
            ck_assert_int_eq(run1(ctx, &r, NULL, amp, psd, dft), NGS_OK);
            long double s1 = 0, s2 = 0, maxref = 0, maxerr = 0;
            long double *w = malloc(N * sizeof *w);
            for (size_t k = 0; k < N; k++) {
                w[k] = wins[wi] == NGS_WINDOW_HANN ? 0.5L - 0.5L * cosl(2 * M_PI * (long double)k / N) : 1.0L;
                s1 += w[k];
                s2 += w[k] * w[k];
            }
            double fs = (double)N / 1e-3;
            for (size_t j = 0; j < nb; j++) {
                long double re = 0, im = 0;
                for (size_t k = 0; k < N; k++) {
                    long double ph = -2.0L * 3.141592653589793238462643383279503L *
                                     (long double)((j * k) % N) / (long double)N;
                    re += w[k] * r.x[k] * cosl(ph);
                    im += w[k] * r.x[k] * sinl(ph);
                }
                long double mag = sqrtl(re * re + im * im);
                if (mag > maxref)
                    maxref = mag;
                long double e = fabsl(re - dft[2 * j]) + fabsl(im - dft[2 * j + 1]);
                if (e > maxerr)
                    maxerr = e;
                int edge = j == 0 || (N % 2 == 0 && j == N / 2);
                long double c = edge ? 1 : 2;
                ck_assert_msg(fabsl(amp[j] - c * mag / s1) <= 1e-9L * (c * mag / s1) + 1e-15L,
                              "N=%zu bin %zu amplitude %.17g vs %.17Lg", N, j, amp[j], c * mag / s1);
                long double g = c * mag * mag / (fs * s2);
                ck_assert_msg(fabsl(psd[j] - g) <= 1e-9L * g + 1e-30L, "N=%zu bin %zu psd", N, j);
            }
            ck_assert_msg(maxerr <= 1e-9L * maxref, "N=%zu %s: max error %Lg of %Lg", N,
                          ngs_spectrum_window_name(wins[wi]), maxerr, maxref);
            free(w);
            free(dft);
            free(amp);
            free(psd);
            ngs_spectrum_destroy(ctx);
            free_record(&r);
        }
    }
}
END_TEST

/* ---- tones ------------------------------------------------------------------------------ */

/* A coherent tone reads its amplitude to 1e-9 (relative) at its bin with every window,
 * DC reads exactly, and the fundamental is found on its bin when not given. Kaiser uses
 * beta = 20 here: at beta = 8.6 its nonzero sidelobes at integer offsets let the tone's
 * negative-frequency image through at ~1e-6, a property of that window. */
START_TEST(test_pure_tone_amplitude_any_window)
{
    enum { N = 4096 };
    const unsigned P = 31;
    const double T = 0.031, f0 = P / T, A = 0.7, dc = 0.125;
    record r = make_record(N + 1, T);
    add_tone(&r, A, f0, 0.3);
    for (size_t k = 0; k <= N; k++)
        r.x[k] += dc;
    for (size_t wi = 0; wi < sizeof all_windows / sizeof all_windows[0]; wi++) {
        ngs_window w = all_windows[wi];
        for (int given = 0; given < 2; given++) {
            ngs_spectrum_ctx *ctx = make_ctx(w, 20.0, N, given ? f0 : 0, given ? P : 0);
            ngs_spectrum_metrics m;
            double amp[N / 2 + 1];
            ck_assert_int_eq(run1(ctx, &r, &m, amp, NULL, NULL), NGS_OK);
            ck_assert_msg(rel(m.amplitude, A) < 1e-9, "%s given=%d amplitude %.15g",
                          ngs_spectrum_window_name(w), given, m.amplitude);
            ck_assert_msg(rel(amp[P], A) < 1e-9, "%s bin reading %.15g", ngs_spectrum_window_name(w), amp[P]);
            ck_assert_msg(rel(m.fundamental, f0) < 1e-9, "%s f %.15g", ngs_spectrum_window_name(w), m.fundamental);
            ck_assert(rel(m.fs, N / T) < 1e-12 && rel(m.df, 1 / T) < 1e-12);
            ck_assert_int_eq(m.coherent, given);
            if (w != NGS_WINDOW_KAISER) {
                ck_assert_msg(fabs(m.dc - dc) < 1e-12, "%s dc %.15g", ngs_spectrum_window_name(w), m.dc);
                ck_assert_msg(m.snr_db > 200, "%s SNR %g", ngs_spectrum_window_name(w), m.snr_db);
                ck_assert_msg(rel(m.signal_power, A * A / 2) < 1e-9, "%s power", ngs_spectrum_window_name(w));
            }
            ngs_spectrum_destroy(ctx);
        }
    }
    /* Kaiser at its default beta: good to the image leakage. */
    ngs_spectrum_ctx *ctx = make_ctx(NGS_WINDOW_KAISER, 8.6, N, f0, P);
    ngs_spectrum_metrics m;
    ck_assert_int_eq(run1(ctx, &r, &m, NULL, NULL, NULL), NGS_OK);
    ck_assert_msg(rel(m.amplitude, A) < 1e-5, "kaiser 8.6 amplitude %.15g", m.amplitude);
    ngs_spectrum_destroy(ctx);
    free_record(&r);
}
END_TEST

/* A tone between bins (non-coherent, nothing given): the window-aware interpolation puts
 * the frequency within 1e-4 bins and undoes scalloping to 1e-4 relative (hamming's and
 * the flat-top's slowly decaying sidelobes let the tone's negative-frequency image in at
 * ~3e-5); rectangular, whose sidelobes decay slowest, to 1e-3. */
START_TEST(test_tone_between_bins_interpolated)
{
    const size_t N = 8192;
    const double T = 1.0, A = 1.3;
    double offsets[] = {0.0, 0.13, 0.37, 0.5, -0.29};
    for (size_t wi = 0; wi < sizeof all_windows / sizeof all_windows[0]; wi++) {
        ngs_window w = all_windows[wi];
        for (int oi = 0; oi < 5; oi++) {
            double f = 1000.0 + offsets[oi];
            record r = make_record(N + 1, T);
            add_tone(&r, A, f, 1.1);
            ngs_spectrum_ctx *ctx = make_ctx(w, 12.0, N, 0, 0);
            ngs_spectrum_metrics m;
            ck_assert_int_eq(run1(ctx, &r, &m, NULL, NULL, NULL), NGS_OK);
            double ftol = w == NGS_WINDOW_RECTANGULAR ? 1e-3 : 1e-4;
            double atol = w == NGS_WINDOW_RECTANGULAR ? 1e-3 : 1e-4;
            ck_assert_msg(fabs(m.fundamental - f) < ftol * m.df, "%s offset %g: f %.9g",
                          ngs_spectrum_window_name(w), offsets[oi], m.fundamental);
            ck_assert_msg(rel(m.amplitude, A) < atol, "%s offset %g: A %.9g",
                          ngs_spectrum_window_name(w), offsets[oi], m.amplitude);
            ngs_spectrum_destroy(ctx);
            free_record(&r);
        }
    }
}
END_TEST

/* Harmonics at set levels, two of them above Nyquist (they fold back): THD to 0.01 dB,
 * each HD to 0.01 dB, THD% to 1e-6 relative, SFDR (largest spur = HD2) to 0.01 dB. */
START_TEST(test_harmonics_thd_sfdr)
{
    const size_t N = 512;
    const unsigned P = 41;
    const double T = 1e-3, f0 = P / T;
    /* Bins 82, 123, 205, and 7 * 41 = 287 -> 225, 11 * 41 = 451 -> 61 folded: all lobes apart. */
    static const struct { int h; double dbc; } hd[] = {{2, -60}, {3, -70}, {5, -80}, {7, -75}, {11, -85}};
    double sum = 0;
    record r = make_record(N + 1, T);
    add_tone(&r, 1.0, f0, 0.0);
    for (int i = 0; i < 5; i++) {
        double a = pow(10, hd[i].dbc / 20);
        add_tone(&r, a, hd[i].h * f0, 0.4 * i);
        sum += a * a;
    }
    double thd = 10 * log10(sum);
    ngs_window wins[] = {NGS_WINDOW_RECTANGULAR, NGS_WINDOW_HANN, NGS_WINDOW_BLACKMAN_HARRIS, NGS_WINDOW_FLATTOP};
    for (int wi = 0; wi < 4; wi++) {
        ngs_spectrum_options o;
        ngs_spectrum_options_init(&o);
        o.backend = NGS_SPECTRUM_CPU;
        o.window = wins[wi];
        o.n = N;
        o.fundamental = f0;
        o.periods = P;
        o.harmonics = 11;
        ngs_spectrum_ctx *ctx;
        ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_OK);
        ngs_spectrum_metrics m;
        ck_assert_int_eq(run1(ctx, &r, &m, NULL, NULL, NULL), NGS_OK);
        const char *wn = ngs_spectrum_window_name(wins[wi]);
        ck_assert_msg(fabs(m.thd_db - thd) < 0.01, "%s THD %.6f vs %.6f", wn, m.thd_db, thd);
        ck_assert_msg(rel(m.thd_percent, 100 * sqrt(sum)) < 1e-6, "%s THD%% %.9g", wn, m.thd_percent);
        for (int i = 0; i < 5; i++)
            ck_assert_msg(fabs(m.hd_dbc[hd[i].h] - hd[i].dbc) < 0.01, "%s HD%d %.5f", wn, hd[i].h,
                          m.hd_dbc[hd[i].h]);
        ck_assert_msg(m.hd_dbc[4] < -200, "%s HD4 should be empty: %g", wn, m.hd_dbc[4]);
        ck_assert_msg(fabs(m.sfdr_db - 60.0) < 0.01, "%s SFDR %.5f", wn, m.sfdr_db);
        ck_assert_msg(fabs(m.spur_frequency - 2 * f0) < 1e-6 * f0, "%s spur at %g", wn, m.spur_frequency);
        ck_assert_msg(fabs(m.sinad_db + thd) < 0.01, "%s SINAD %.5f", wn, m.sinad_db);
        ngs_spectrum_destroy(ctx);
    }
    free_record(&r);
}
END_TEST

/* A tone in seeded white noise of variance s^2 over a long record: SNR to 0.5 dB of
 * 10 log10((A^2/2) / s^2), noise power and density (2 s^2 / fs) to 0.5 dB, coherent
 * (rectangular) and non-coherent (blackman-harris, fundamental searched). */
START_TEST(test_snr_white_noise)
{
    const size_t N = 1 << 16;
    const double T = 1.0, A = 1.0, sigma = 1e-3;
    const double want = 10 * log10(A * A / 2 / (sigma * sigma));
    for (int coherent = 1; coherent >= 0; coherent--) {
        double f = coherent ? 1021.0 : 1021.37;
        record r = make_record(N + 1, T);
        rng_seed(12345);
        add_tone(&r, A, f, 0.2);
        for (size_t k = 0; k <= N; k++)
            r.x[k] += sigma * rng_gauss();
        ngs_spectrum_ctx *ctx = coherent ? make_ctx(NGS_WINDOW_RECTANGULAR, 0, N, f, 1021)
                                         : make_ctx(NGS_WINDOW_BLACKMAN_HARRIS, 0, N, 0, 0);
        ngs_spectrum_metrics m;
        ck_assert_int_eq(run1(ctx, &r, &m, NULL, NULL, NULL), NGS_OK);
        ck_assert_msg(fabs(m.snr_db - want) < 0.5, "coherent=%d SNR %.3f vs %.3f", coherent, m.snr_db, want);
        ck_assert_msg(fabs(m.sinad_db - want) < 0.5, "coherent=%d SINAD %.3f", coherent, m.sinad_db);
        ck_assert_msg(fabs(10 * log10(m.noise_power / (sigma * sigma))) < 0.5, "noise power %g", m.noise_power);
        ck_assert_msg(fabs(10 * log10(m.noise_density / (2 * sigma * sigma / m.fs))) < 0.5, "density %g",
                      m.noise_density);
        ck_assert_msg(fabs(m.noise_floor_db - 10 * log10(2 * sigma * sigma / N)) < 0.5, "floor %g",
                      m.noise_floor_db);
        ck_assert_msg(fabs(m.fundamental - f) < 0.01 * m.df, "f %.6f", m.fundamental);
        ngs_spectrum_destroy(ctx);
        free_record(&r);
    }
}
END_TEST

/* A constant record (a supply rail) holds no tone: a search found the rounding's largest
 * bin (2.5 V: "28 kHz at 2.8e-16 V", THD 2.65 dB), now NaN metrics, DC kept. A tone of
 * 1 uV on 5 V is still found. Non-uniform times, so the resampler runs too. */
START_TEST(test_a_constant_record_has_no_tone)
{
    const double levels[] = {2.5, -3.3, 1e-9, 1e6, 5.0};
    for (size_t w = 0; w < 2; w++)
        for (size_t i = 0; i < sizeof levels / sizeof levels[0]; i++) {
            int with_tone = i == 4;
            record r = make_record(3001, 0.01);
            for (size_t k = 1; k + 1 < r.n; k++)
                r.t[k] += 0.3 * sin(7.0 * (double)k) * (0.01 / 3000);
            for (size_t k = 0; k < r.n; k++)
                r.x[k] = levels[i];
            if (with_tone)
                add_tone(&r, 1e-6, 2000, 0.3);
            ngs_spectrum_ctx *ctx = make_ctx(w ? NGS_WINDOW_HANN : NGS_WINDOW_BLACKMAN_HARRIS, 0, 0, 0, 0);
            ngs_spectrum_metrics m;
            ck_assert_int_eq(run1(ctx, &r, &m, NULL, NULL, NULL), NGS_OK);
            ck_assert(rel(m.dc, levels[i]) < 1e-9);
            if (with_tone) {
                ck_assert_msg(fabs(m.fundamental - 2000) < 0.01 * m.df, "f %g", m.fundamental);
                ck_assert(rel(m.amplitude, 1e-6) < 1e-3);
            } else {
                ck_assert_msg(isnan(m.fundamental) && isnan(m.amplitude) && isnan(m.thd_db) && isnan(m.snr_db),
                              "level %g: a tone of %g at %g Hz, THD %g", levels[i], m.amplitude, m.fundamental,
                              m.thd_db);
            }
            ngs_spectrum_destroy(ctx);
            free_record(&r);
        }
}
END_TEST

/* Noise behind excluded bins: with the flat-top window on N = 1024, DC, the fundamental
 * and 8 harmonic lobes (11 bins each) hide ~20% of the band. Noise power must be
 * extrapolated over them: the mean over 64 seeded vectors (one batch) reads s^2 and the
 * SNR its true value within 0.2 dB (without extrapolation both would be ~1 dB off). */
START_TEST(test_snr_extrapolates_over_excluded_bins)
{
    enum { V = 64, N = 1024 };
    const unsigned P = 23;
    const double T = 1e-3, f0 = P / T, sigma = 1e-2;
    record r[V];
    const double *t[V], *x[V];
    size_t n[V];
    rng_seed(4242);
    for (int i = 0; i < V; i++) {
        r[i] = make_record(N + 1, T);
        add_tone(&r[i], 1.0, f0, 0.1 * i);
        for (size_t k = 0; k <= N; k++)
            r[i].x[k] += sigma * rng_gauss();
        t[i] = r[i].t;
        x[i] = r[i].x;
        n[i] = r[i].n;
    }
    ngs_spectrum_ctx *ctx = make_ctx(NGS_WINDOW_FLATTOP, 0, N, f0, P);
    ngs_spectrum_metrics m[V];
    ngs_spectrum_out out = {0};
    out.metrics = m;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t, x, n, V, &out), NGS_OK);
    double snr = 0, noise = 0;
    for (int i = 0; i < V; i++) {
        snr += m[i].snr_db / V;
        noise += m[i].noise_power / V;
    }
    double want = 10 * log10(0.5 / (sigma * sigma));
    ck_assert_msg(fabs(snr - want) < 0.2, "mean SNR %.3f vs %.3f", snr, want);
    ck_assert_msg(fabs(10 * log10(noise / (sigma * sigma))) < 0.2, "mean noise %g vs %g", noise, sigma * sigma);
    ngs_spectrum_destroy(ctx);
    for (int i = 0; i < V; i++)
        free_record(&r[i]);
}
END_TEST

/* An ideal B-bit quantiser on a full-scale coherent sine (prime number of periods):
 * SINAD = 6.02 B + 1.76 dB, so ENOB = B within 0.05 bit. A non-harmonic spur at -75 dBc
 * sets the SFDR (0.05 dB). */
START_TEST(test_enob_quantiser_and_sfdr_spur)
{
    const size_t N = 1 << 14;
    const unsigned P = 1021;
    const double T = 1.0, f0 = P / T;
    for (int bits = 8; bits <= 12; bits += 4) {
        record r = make_record(N + 1, T);
        double lsb = 2.0 / (double)(1 << bits);
        for (size_t k = 0; k <= N; k++) {
            double v = (1.0 - lsb / 2) * sin(2 * M_PI * f0 * r.t[k] + 0.1);
            r.x[k] = lsb * (floor(v / lsb) + 0.5); /* mid-rise */
        }
        ngs_spectrum_ctx *ctx = make_ctx(NGS_WINDOW_RECTANGULAR, 0, N, f0, P);
        ngs_spectrum_metrics m;
        ck_assert_int_eq(run1(ctx, &r, &m, NULL, NULL, NULL), NGS_OK);
        ck_assert_msg(fabs(m.enob - bits) < 0.05, "%d bits: ENOB %.4f (SINAD %.3f)", bits, m.enob, m.sinad_db);
        ck_assert(rel(m.enob, (m.sinad_db - 1.76) / 6.02) < 1e-12);
        ngs_spectrum_destroy(ctx);
        free_record(&r);
    }
    record r = make_record(N + 1, T);
    add_tone(&r, 1.0, f0, 0.0);
    add_tone(&r, pow(10, -75.0 / 20), 3333.0, 0.7); /* not a harmonic of 1021 */
    ngs_spectrum_ctx *ctx = make_ctx(NGS_WINDOW_BLACKMAN_HARRIS, 0, N, f0, P);
    ngs_spectrum_metrics m;
    ck_assert_int_eq(run1(ctx, &r, &m, NULL, NULL, NULL), NGS_OK);
    ck_assert_msg(fabs(m.sfdr_db - 75.0) < 0.05, "SFDR %.4f", m.sfdr_db);
    ck_assert_msg(fabs(m.spur_frequency - 3333.0) < 1e-6, "spur at %g", m.spur_frequency);
    /* The spur is not a harmonic: it is noise for SNR, SINAD. */
    /* (0.1 dB: noise is extrapolated over the ~1% of bins excluded around DC and the
     * harmonics, which scales a lone spur up by ~0.05 dB.) */
    ck_assert_msg(fabs(m.snr_db - 75.0) < 0.1, "SNR %.4f", m.snr_db);
    ngs_spectrum_destroy(ctx);
    free_record(&r);
}
END_TEST

/* ---- PSD ------------------------------------------------------------------------------ */

/* Rectangular: sum of PSD * df is the mean square exactly (Parseval, 1e-12). Hann on white
 * noise: the average PSD reads 2 s^2 / fs within 3% (ENBW correction; seeded). */
START_TEST(test_psd_parseval_and_enbw)
{
    const size_t N = 1 << 15, nb = N / 2 + 1;
    const double T = 0.5, sigma = 0.3;
    record r = make_record(N + 1, T);
    rng_seed(99);
    for (size_t k = 0; k <= N; k++)
        r.x[k] = sigma * rng_gauss() + 0.05;
    double *psd = malloc(nb * sizeof *psd);
    ngs_spectrum_ctx *ctx = make_ctx(NGS_WINDOW_RECTANGULAR, 0, N, 0, 0);
    ngs_spectrum_metrics m;
    ck_assert_int_eq(run1(ctx, &r, &m, NULL, psd, NULL), NGS_OK);
    long double ms = 0, tot = 0;
    for (size_t k = 0; k < N; k++)
        ms += (long double)r.x[k] * r.x[k];
    ms /= N;
    for (size_t k = 0; k < nb; k++)
        tot += psd[k] * m.df;
    ck_assert_msg(fabsl(tot - ms) < 1e-12L * ms, "Parseval %Lg vs %Lg", tot, ms);
    ngs_spectrum_destroy(ctx);

    ctx = make_ctx(NGS_WINDOW_HANN, 0, N, 0, 0);
    ck_assert_int_eq(run1(ctx, &r, &m, NULL, psd, NULL), NGS_OK);
    double avg = 0;
    for (size_t k = 10; k < nb - 1; k++)
        avg += psd[k];
    avg /= (double)(nb - 11);
    double want = 2 * sigma * sigma / m.fs;
    ck_assert_msg(rel(avg, want) < 0.03, "Hann PSD %g vs %g", avg, want);
    ngs_spectrum_destroy(ctx);
    free(psd);
    free_record(&r);
}
END_TEST

/* ---- resampling -------------------------------------------------------------------------- */

/* Non-uniform samples of sin(w t), 40 per period, jitter +-30%:
 *   linear max error <= h_max^2 w^2 / 8 (the interpolation theorem);
 *   cubic (not-a-knot spline) max error <= h_max^4 w^4 / 24 and 50x below linear.
 * Both reproduce their own polynomial degree exactly (1e-12). */
START_TEST(test_resample_nonuniform_sine)
{
    const size_t n = 4000;
    const double f = 50.0, w = 2 * M_PI * f, h = 1.0 / (40 * f);
    double *t = malloc(n * sizeof *t), *x = malloc(n * sizeof *x), *p = malloc(n * sizeof *p);
    rng_seed(2024);
    double hmax = 0;
    for (size_t i = 0; i < n; i++) {
        t[i] = (double)i * h + (i ? 0.3 * h * (2 * rng_uniform() - 1) : 0);
        if (i && t[i] - t[i - 1] > hmax)
            hmax = t[i] - t[i - 1];
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = sin(w * t[i] + 0.4);
        double u = t[i] / t[n - 1];
        p[i] = 2 - 3 * u + 0.5 * u * u - 4 * u * u * u;
    }
    const size_t m = 10007;
    double t0 = t[0], dt = (t[n - 1] - t[0]) / (double)m;
    double *y = malloc(m * sizeof *y);
    double err[2] = {0, 0};
    for (int method = 0; method < 2; method++) {
        ck_assert_int_eq(ngs_spectrum_resample(t, x, n, t0, dt, m, (ngs_resample)method, y), NGS_OK);
        for (size_t k = 0; k < m; k++) {
            double e = fabs(y[k] - sin(w * (t0 + (double)k * dt) + 0.4));
            if (e > err[method])
                err[method] = e;
        }
    }
    double lin_bound = hmax * hmax * w * w / 8, cub_bound = pow(hmax * w, 4) / 24;
    ck_assert_msg(err[0] <= lin_bound, "linear %g > %g", err[0], lin_bound);
    ck_assert_msg(err[1] <= cub_bound, "cubic %g > %g", err[1], cub_bound);
    ck_assert_msg(err[1] * 50 < err[0], "cubic %g not well below linear %g", err[1], err[0]);
    /* Exact reproduction: cubic polynomial by the spline, a line by linear. */
    ck_assert_int_eq(ngs_spectrum_resample(t, p, n, t0, dt, m, NGS_RESAMPLE_CUBIC, y), NGS_OK);
    for (size_t k = 0; k < m; k++) {
        double u = (t0 + (double)k * dt) / t[n - 1];
        ck_assert_msg(fabs(y[k] - (2 - 3 * u + 0.5 * u * u - 4 * u * u * u)) < 1e-12, "cubic at %zu", k);
    }
    for (size_t i = 0; i < n; i++)
        p[i] = 3 - 2 * t[i];
    ck_assert_int_eq(ngs_spectrum_resample(t, p, n, t0, dt, m, NGS_RESAMPLE_LINEAR, y), NGS_OK);
    for (size_t k = 0; k < m; k++)
        ck_assert(fabs(y[k] - (3 - 2 * (t0 + (double)k * dt))) < 1e-12);
    /* Three points: cubic falls back to linear. */
    double t3[] = {0, 1, 3}, x3[] = {0, 2, 0}, y3[3];
    ck_assert_int_eq(ngs_spectrum_resample(t3, x3, 3, 0, 1, 3, NGS_RESAMPLE_CUBIC, y3), NGS_OK);
    ck_assert(y3[0] == 0 && y3[1] == 2 && y3[2] == 1);
    /* Errors: grid outside the data, non-increasing time, bad arguments. */
    ck_assert_int_eq(ngs_spectrum_resample(t, x, n, t0 - 1e-3, dt, m, NGS_RESAMPLE_LINEAR, y), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_resample(t, x, n, t0, dt * 1.01, m, NGS_RESAMPLE_LINEAR, y), NGS_ERR_ARG);
    double tb[] = {0, 1, 1, 2}, xb[] = {0, 1, 2, 3}, yb[2];
    ck_assert_int_eq(ngs_spectrum_resample(tb, xb, 4, 0, 1, 2, NGS_RESAMPLE_CUBIC, yb), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_resample(t, x, 1, t0, dt, 1, NGS_RESAMPLE_LINEAR, y), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_resample(t, x, n, t0, 0, m, NGS_RESAMPLE_LINEAR, y), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_resample(t, x, n, t0, dt, m, (ngs_resample)7, y), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_resample(NULL, x, n, t0, dt, m, NGS_RESAMPLE_LINEAR, y), NGS_ERR_ARG);
    free(t);
    free(x);
    free(p);
    free(y);
}
END_TEST

/* The batch solves the spline per 16384-point chunk with 64 points of context each side;
 * it must equal the global spline of ngs_spectrum_resample() to 1e-13 (relative to the
 * signal) on a long, strongly non-uniform record (step sizes vary 10x). */
START_TEST(test_chunked_spline_matches_global_spline)
{
    const size_t n = 70001, N = 1 << 17;
    double *t = malloc(n * sizeof *t), *x = malloc(n * sizeof *x);
    double *y = malloc(N * sizeof *y), *uni = malloc(N * sizeof *uni);
    rng_seed(8);
    t[0] = 0;
    for (size_t i = 1; i < n; i++)
        t[i] = t[i - 1] + 1e-6 * (0.2 + 1.8 * rng_uniform() * (1 + sin(i * 1e-3)));
    for (size_t i = 0; i < n; i++)
        x[i] = sin(2 * M_PI * 3e3 * t[i]) + 0.3 * cos(2 * M_PI * 17e3 * t[i]) + 0.01 * rng_gauss();
    ngs_spectrum_ctx *ctx = make_ctx(NGS_WINDOW_HANN, 0, N, 0, 0);
    const double *tv[1] = {t}, *xv[1] = {x};
    size_t nv[1] = {n};
    ngs_spectrum_out out = {0};
    out.uniform = uni;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, tv, xv, nv, 1, &out), NGS_OK);
    double span = t[n - 1] - t[0];
    ck_assert_int_eq(ngs_spectrum_resample(t, x, n, t[0], span / (double)N, N, NGS_RESAMPLE_CUBIC, y), NGS_OK);
    double d = 0;
    for (size_t k = 0; k < N; k++)
        d = fmax(d, fabs(uni[k] - y[k]));
    ck_assert_msg(d < 1e-13, "chunked spline differs from the global one by %g", d);
    ngs_spectrum_destroy(ctx);
    free(t);
    free(x);
    free(y);
    free(uni);
}
END_TEST

/* End to end on a non-uniform transient: a start-up transient to skip, then a 3 kHz
 * tone with HD3 at -66 dBc, 64 points per period with jitter. The last 30 periods are
 * analysed coherently; amplitude to 1e-5, HD3 to 0.05 dB (cubic resampling). */
START_TEST(test_nonuniform_transient_end_to_end)
{
    const double f0 = 3000.0, A = 0.9, a3 = A * pow(10, -66.0 / 20);
    const size_t n = 64 * 45;
    double *t = malloc(n * sizeof *t), *x = malloc(n * sizeof *x);
    rng_seed(5);
    for (size_t i = 0; i < n; i++) {
        t[i] = ((double)i + (i && i + 1 < n ? 0.35 * (2 * rng_uniform() - 1) : 0)) / (64 * f0);
        double startup = exp(-t[i] * f0) * 0.5; /* gone (1e-7) before the analysed periods */
        x[i] = A * sin(2 * M_PI * f0 * t[i]) + a3 * sin(6 * M_PI * f0 * t[i] + 1) + startup;
    }
    ngs_spectrum_options o;
    ngs_spectrum_options_init(&o);
    o.backend = NGS_SPECTRUM_CPU;
    o.fundamental = f0;
    o.periods = 30;
    o.window = NGS_WINDOW_HANN;
    ngs_spectrum_ctx *ctx;
    ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_OK);
    const double *tv[1] = {t}, *xv[1] = {x};
    size_t nv[1] = {n}, N, nb;
    ck_assert_int_eq(ngs_spectrum_size(ctx, tv, nv, 1, &N, &nb), NGS_OK);
    ck_assert_uint_eq(N, 2048); /* 30 * 64 = 1920 points inside the record */
    ck_assert_uint_eq(nb, 1025);
    ngs_spectrum_metrics m;
    ngs_spectrum_out out = {0};
    out.metrics = &m;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, tv, xv, nv, 1, &out), NGS_OK);
    ck_assert_msg(rel(m.amplitude, A) < 1e-5, "amplitude %.9g", m.amplitude);
    ck_assert_msg(fabs(m.hd_dbc[3] + 66) < 0.05, "HD3 %.4f", m.hd_dbc[3]);
    ck_assert_msg(fabs(m.t_start - (t[n - 1] - 30 / f0)) < 1e-12, "t_start %.12g", m.t_start);
    ck_assert(m.coherent == 1);
    ngs_spectrum_destroy(ctx);
    free(t);
    free(x);
}
END_TEST

/* ---- batches ------------------------------------------------------------------------------- */

/* Vectors of different lengths and spans in one batch, split into sub-batches of 2 with a
 * remainder: every row equals the vector run alone (1e-12), freq rows are k * df, and
 * FFTW with 1 or 2 threads, FFTW_MEASURE and wisdom give the same numbers. */
START_TEST(test_batch_rows_match_single_runs)
{
    enum { V = 5 };
    record r[V];
    const double *t[V], *x[V];
    size_t n[V];
    rng_seed(31);
    for (int i = 0; i < V; i++) {
        r[i] = make_record(900 + 30 * i, 1e-3 * (1 + i));
        add_tone(&r[i], 1.0 + i, 9000.0 + 700 * i, 0.1 * i); /* 9 or more periods */
        for (size_t k = 0; k < r[i].n; k++)
            r[i].x[k] += 1e-4 * rng_gauss();
        t[i] = r[i].t;
        x[i] = r[i].x;
        n[i] = r[i].n;
    }
    const size_t N = 1024, nb = N / 2 + 1;
    double *amp = malloc(V * nb * sizeof *amp), *freq = malloc(V * nb * sizeof *freq),
           *uni = malloc(V * N * sizeof *uni), *one = malloc(nb * sizeof *one);
    ngs_spectrum_metrics m[V], m1;
    char wisdom[] = "/tmp/ngscale_wisdom_XXXXXX";
    int fd = mkstemp(wisdom);
    ck_assert_int_ge(fd, 0);
    for (int variant = 0; variant < 3; variant++) {
        ngs_spectrum_options o;
        ngs_spectrum_options_init(&o);
        o.backend = NGS_SPECTRUM_CPU;
        o.batch_vectors = 2;
        o.threads = variant == 1 ? 1 : 2;
        o.plan_measure = variant == 2;
        o.wisdom_path = variant == 2 ? wisdom : NULL;
        ngs_spectrum_ctx *ctx;
        ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_OK);
        size_t Ns, nbs;
        ck_assert_int_eq(ngs_spectrum_size(ctx, t, n, V, &Ns, &nbs), NGS_OK);
        ck_assert_uint_eq(Ns, N);
        ngs_spectrum_out out = {amp, NULL, freq, NULL, uni, m};
        ck_assert_int_eq(ngs_spectrum_batch(ctx, t, x, n, V, &out), NGS_OK);
        ck_assert_int_eq(ngs_spectrum_last_backend(ctx), NGS_SPECTRUM_CPU);
        for (int i = 0; i < V; i++) {
            ck_assert_int_eq(run1(ctx, &r[i], &m1, one, NULL, NULL), NGS_OK);
            for (size_t k = 0; k < nb; k++) {
                ck_assert_msg(fabs(amp[i * nb + k] - one[k]) <= 1e-12 * (1 + i), "variant %d row %d bin %zu",
                              variant, i, k);
                ck_assert(fabs(freq[i * nb + k] - (double)k * m[i].df) <= 1e-9 * freq[i * nb + k] + 1e-300);
            }
            ck_assert(rel(m[i].amplitude, m1.amplitude) < 1e-12 && rel(m[i].snr_db, m1.snr_db) < 1e-9);
            ck_assert(rel(m[i].fundamental, 9000.0 + 700 * i) < 1e-3);
            ck_assert(rel(m[i].df, 1.0 / (1e-3 * (1 + i))) < 1e-12);
            ck_assert(uni[i * N] == x[i][0]);
        }
        ngs_spectrum_destroy(ctx);
    }
    close(fd);
    FILE *f = fopen(wisdom, "r");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fgetc(f), '('); /* FFTW wrote its wisdom */
    fclose(f);
    unlink(wisdom);
    for (int i = 0; i < V; i++)
        free_record(&r[i]);
    free(amp);
    free(freq);
    free(uni);
    free(one);
}
END_TEST

/* Bad options and bad data fail with NGS_ERR_ARG and say which vector; the GPU backend
 * without a device fails with NGS_ERR_STATE; AUTO without one runs on the CPU. */
START_TEST(test_errors_and_backend_selection)
{
    ngs_spectrum_options o;
    ngs_spectrum_ctx *ctx = NULL;
    struct { int field; } bad[] = {{0}, {1}, {2}, {3}, {4}, {5}, {6}, {7}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ngs_spectrum_options_init(&o);
        switch (bad[i].field) {
        case 0: o.threads = -1; break;
        case 1: o.harmonics = 1; break;
        case 2: o.periods = 3; break; /* periods without a fundamental */
        case 3: o.n = 3; break;
        case 4: o.window = NGS_WINDOW_KAISER; o.kaiser_beta = -1; break;
        case 5: o.fundamental = NAN; break;
        case 6: o.resample = (ngs_resample)9; break;
        case 7: o.harmonics = NGS_SPECTRUM_MAX_HARMONICS + 1; break;
        }
        ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_ERR_ARG);
        ck_assert_ptr_null(ctx);
    }
    ck_assert_int_eq(ngs_spectrum_create(&ctx, NULL), NGS_ERR_ARG);

    ngs_spectrum_options_init(&o);
    o.backend = NGS_SPECTRUM_GPU;
    char why[256];
    int have_gpu = ngs_spectrum_gpu_probe(why, sizeof why);
    ck_assert(strlen(why) > 0);
    int rc = ngs_spectrum_create(&ctx, &o);
    ck_assert_int_eq(rc, have_gpu ? NGS_OK : NGS_ERR_STATE);
    ngs_spectrum_destroy(ctx);
    ctx = NULL;

    ngs_spectrum_options_init(&o);
    o.threads = 2;
    ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_OK);
    record r = make_record(1 << 19, 1.0);
    add_tone(&r, 1, 100, 0);
    double t_bad[] = {0, 1, 0.5, 2}, x_ok[] = {0, 1, 2, 3}, x_nan[] = {0, NAN, 2, 3}, t_ok[] = {0, 1, 2, 3};
    const double *t2[2] = {r.t, t_bad}, *x2[2] = {r.x, x_ok};
    size_t n2[2] = {r.n, 4};
    ngs_spectrum_metrics m[2];
    ngs_spectrum_out out = {0};
    out.metrics = m;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 2, &out), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_spectrum_last_error(ctx), "vector 1"));
    t2[1] = t_ok;
    x2[1] = x_nan;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 2, &out), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_spectrum_last_error(ctx), "not finite"));
    x2[1] = NULL;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 2, &out), NGS_ERR_ARG);
    n2[1] = 1;
    x2[1] = x_ok;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 2, &out), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 0, &out), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 1, NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_batch(NULL, t2, x2, n2, 1, &out), NGS_ERR_ARG);
    /* AUTO with a batch big enough for the GPU (2 x 2^19): without a device, the CPU's. */
    t2[1] = r.t;
    x2[1] = r.x;
    n2[1] = r.n;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 2, &out), NGS_OK);
    ck_assert_str_eq(ngs_spectrum_last_error(ctx), "");
    ck_assert_int_eq(ngs_spectrum_last_backend(ctx), have_gpu ? NGS_SPECTRUM_GPU : NGS_SPECTRUM_CPU);
    ck_assert(rel(m[0].fundamental, 100) < 1e-6);
    ngs_spectrum_destroy(ctx);

    /* More periods than the record holds. */
    ngs_spectrum_options_init(&o);
    o.backend = NGS_SPECTRUM_CPU;
    o.fundamental = 100;
    o.periods = 101;
    ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_OK);
    ck_assert_int_eq(ngs_spectrum_batch(ctx, t2, x2, n2, 1, &out), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_spectrum_last_error(ctx), "periods"));
    ngs_spectrum_destroy(ctx);
    ngs_spectrum_destroy(NULL);
    free_record(&r);
}
END_TEST

/* A batch whose buffers cannot fit is refused up front, saying how much it needs:
 * malloc over-commits, so it used to be the OOM killer (--points 2^30: ~50 GiB). 1000
 * spectra of 2^30 points need terabytes on any machine. */
START_TEST(test_a_batch_too_big_for_memory_is_refused_before_allocating)
{
    ngs_spectrum_ctx *ctx = make_ctx(NGS_WINDOW_HANN, 0, (size_t)1 << 30, 0, 0);
    record r = make_record(1000, 1.0);
    enum { V = 1000 };
    const double *t[V];
    size_t n[V], N = 0, nb = 0;
    for (int i = 0; i < V; i++) {
        t[i] = r.t;
        n[i] = r.n;
    }
    ck_assert_int_eq(ngs_spectrum_size(ctx, t, n, V, &N, &nb), NGS_ERR_NOMEM);
    ck_assert_ptr_nonnull(strstr(ngs_spectrum_last_error(ctx), "GiB"));
    /* one modest vector still fits */
    ngs_spectrum_destroy(ctx);
    ctx = make_ctx(NGS_WINDOW_HANN, 0, 4096, 0, 0);
    ck_assert_int_eq(ngs_spectrum_size(ctx, t, n, 1, &N, &nb), NGS_OK);
    ck_assert_uint_eq(N, 4096);
    ngs_spectrum_destroy(ctx);
    free_record(&r);
}
END_TEST

/* ---- GPU ------------------------------------------------------------------------------- */

/* cuFFT vs FFTW on the same batch (several sub-batches in flight): spectra to 1e-9
 * relative (max |diff| / max |value| per output), metrics to 1e-9. Without a usable CUDA
 * device this test prints SKIP and passes without asserting. */
START_TEST(test_gpu_matches_cpu_or_skip_without_device)
{
    char why[256];
    if (!ngs_spectrum_gpu_probe(why, sizeof why)) {
        printf("SKIP: no CUDA device (%s)\n", why);
        return;
    }
    enum { V = 13 };
    const size_t N = 1 << 14, nb = N / 2 + 1;
    record r[V];
    const double *t[V], *x[V];
    size_t n[V];
    rng_seed(77);
    for (int i = 0; i < V; i++) {
        r[i] = make_record(12000 + 100 * i, 2e-3);
        add_tone(&r[i], 1.0, 7000.0 + 13 * i, 0.3);
        add_tone(&r[i], 1e-3, 14000.0 + 26 * i, 0.0);
        for (size_t k = 0; k < r[i].n; k++)
            r[i].x[k] += 1e-5 * rng_gauss();
        t[i] = r[i].t;
        x[i] = r[i].x;
        n[i] = r[i].n;
    }
    double *amp[2], *dft[2];
    ngs_spectrum_metrics m[2][V];
    for (int b = 0; b < 2; b++) {
        ngs_spectrum_options o;
        ngs_spectrum_options_init(&o);
        o.backend = b ? NGS_SPECTRUM_GPU : NGS_SPECTRUM_CPU;
        o.batch_vectors = 3; /* 5 sub-batches over 3 slots, with a remainder */
        ngs_spectrum_ctx *ctx;
        ck_assert_int_eq(ngs_spectrum_create(&ctx, &o), NGS_OK);
        amp[b] = malloc(V * nb * sizeof(double));
        dft[b] = malloc(V * nb * 2 * sizeof(double));
        ngs_spectrum_out out = {amp[b], NULL, NULL, dft[b], NULL, m[b]};
        int rc = ngs_spectrum_batch(ctx, t, x, n, V, &out);
        ck_assert_msg(rc == NGS_OK, "backend %d: %s", b, ngs_spectrum_last_error(ctx));
        ck_assert_int_eq(ngs_spectrum_last_backend(ctx), b ? NGS_SPECTRUM_GPU : NGS_SPECTRUM_CPU);
        ngs_spectrum_destroy(ctx);
    }
    double maxv = 0, maxd = 0, maxa = 0, maxda = 0;
    for (size_t k = 0; k < V * nb * 2; k++) {
        maxv = fmax(maxv, fabs(dft[0][k]));
        maxd = fmax(maxd, fabs(dft[0][k] - dft[1][k]));
    }
    for (size_t k = 0; k < V * nb; k++) {
        maxa = fmax(maxa, fabs(amp[0][k]));
        maxda = fmax(maxda, fabs(amp[0][k] - amp[1][k]));
    }
    ck_assert_msg(maxd <= 1e-9 * maxv, "dft differs: %g of %g", maxd, maxv);
    ck_assert_msg(maxda <= 1e-9 * maxa, "amplitude differs: %g of %g", maxda, maxa);
    for (int i = 0; i < V; i++) {
        ck_assert(rel(m[1][i].amplitude, m[0][i].amplitude) < 1e-9);
        ck_assert(rel(m[1][i].fundamental, m[0][i].fundamental) < 1e-9);
        ck_assert(fabs(m[1][i].thd_db - m[0][i].thd_db) < 1e-6);
        ck_assert(fabs(m[1][i].snr_db - m[0][i].snr_db) < 1e-6);
    }
    for (int b = 0; b < 2; b++) {
        free(amp[b]);
        free(dft[b]);
    }
    for (int i = 0; i < V; i++)
        free_record(&r[i]);
}
END_TEST

static Suite *spectrum_suite(void)
{
    Suite *s = suite_create("spectrum");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_window_gain_and_enbw_closed_form);
    tcase_add_test(tc, test_fft_matches_direct_dft);
    tcase_add_test(tc, test_pure_tone_amplitude_any_window);
    tcase_add_test(tc, test_tone_between_bins_interpolated);
    tcase_add_test(tc, test_harmonics_thd_sfdr);
    tcase_add_test(tc, test_snr_white_noise);
    tcase_add_test(tc, test_a_constant_record_has_no_tone);
    tcase_add_test(tc, test_snr_extrapolates_over_excluded_bins);
    tcase_add_test(tc, test_enob_quantiser_and_sfdr_spur);
    tcase_add_test(tc, test_psd_parseval_and_enbw);
    tcase_add_test(tc, test_resample_nonuniform_sine);
    tcase_add_test(tc, test_chunked_spline_matches_global_spline);
    tcase_add_test(tc, test_nonuniform_transient_end_to_end);
    tcase_add_test(tc, test_batch_rows_match_single_runs);
    tcase_add_test(tc, test_errors_and_backend_selection);
    tcase_add_test(tc, test_a_batch_too_big_for_memory_is_refused_before_allocating);
    tcase_add_test(tc, test_gpu_matches_cpu_or_skip_without_device);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(spectrum_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
