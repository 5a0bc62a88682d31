/*
 * spectrum_metrics.c - one-sided scaling and the IEEE Std 1241 metrics of one vector.
 *
 * Runs on the CPU after the FFT (whichever backend made it): the work is O(N) per
 * vector against the FFT's O(N log N), and keeping it here keeps CPU and GPU results
 * identical up to the FFT's own rounding.
 *
 * Every tone's power is the sum of the per-bin powers P_k over its lobe (bins within
 * +-L of its rounded position; Parseval makes that window-independent). Bins are
 * "claimed" in order DC, fundamental, harmonics 2..H, so a lobe shared by two
 * components counts once; what nobody claimed is noise.
 */
#include "gpu/spectrum_impl.h"

#include <math.h>
#include <string.h>

enum { FREE = 0, BY_DC = 1, BY_FUND = 2, BY_HARM = 3 };

#define TONE_FLOOR 1e-24 /* power of a found tone relative to the record's: -240 dB */
/* A found tone's peak bin over the mean of the bins outside DC's and its lobes: the
 * largest of n bins of a floor (noise, resampling error) passes their mean by about
 * ln(n), 10-12 dB; a tone stands out by far more. */
#define TONE_OVER_FLOOR 100.0 /* 20 dB */

static int is_edge(size_t k, size_t n) { return k == 0 || (n % 2 == 0 && k == n / 2); }

void spx_scale_bins(const spx_window *win, size_t n, const double *dft, size_t k0, size_t k1,
                    double *amp, double *pw)
{
    double a_scale = 1.0 / win->s1, p_scale = 1.0 / ((double)n * win->s2);
    for (size_t k = k0; k < k1; k++) {
        double re = dft[2 * k], im = dft[2 * k + 1], m2 = re * re + im * im;
        double c = is_edge(k, n) ? 1.0 : 2.0;
        if (amp)
            amp[k] = c * sqrt(m2) * a_scale;
        if (pw)
            pw[k] = c * m2 * p_scale;
    }
}

/* |X_k| (undoing the one-sided factor), with the spectrum's mirror symmetry past DC and
 * Nyquist so a peak at either edge still has two neighbours. */
static double mag(const double *amp, size_t n, long k)
{
    long nb = (long)(n / 2) + 1;
    if (k < 0)
        k = -k;
    if (k >= nb)
        k = (long)n - k;
    if (k < 0 || k >= nb)
        return 0.0;
    return amp[k] / (is_edge((size_t)k, n) ? 1.0 : 2.0);
}

/* Offset delta in [-0.5, 0.5] of a tone whose largest bin is k: solves
 * |W(1 - d)| / |W(d)| = (larger neighbour) / (peak) by bisection on the window's own
 * transform, so the estimate is exact for an isolated tone with every window. */
static double interpolate(const spx_window *win, const double *amp, size_t n, size_t k)
{
    double a0 = mag(amp, n, (long)k), am = mag(amp, n, (long)k - 1), ap = mag(amp, n, (long)k + 1);
    if (!(a0 > 0.0))
        return 0.0;
    double sign = ap >= am ? 1.0 : -1.0;
    double alpha = fmin(fmax(ap, am) / a0, 1.0);
    double lo = 0.0, hi = 0.5;
    if (alpha <= spx_window_gain(win, 1.0)) /* at or below an on-bin tone's neighbour */
        return 0.0;
    for (int it = 0; it < 60; it++) {
        double mid = 0.5 * (lo + hi);
        double r = spx_window_gain(win, 1.0 - mid) / spx_window_gain(win, mid);
        if (r < alpha)
            lo = mid;
        else
            hi = mid;
    }
    return sign * 0.5 * (lo + hi);
}

/* Position p (bins, any real) folded into the first Nyquist zone [0, n/2]. */
static double fold(double p, size_t n)
{
    double N = (double)n;
    p = fmod(p, N);
    if (p < 0)
        p += N;
    return p > N / 2 ? N - p : p;
}

/* Claims the lobe around bin c for `who` and returns the power it adds. */
static double claim_lobe(long c, int lobe, size_t n, const double *pw, unsigned char *claimed,
                         int who)
{
    long nb = (long)(n / 2) + 1;
    double p = 0.0;
    for (long j = c - lobe; j <= c + lobe; j++) {
        long k = j < 0 ? -j : j;
        if (k >= nb)
            k = (long)n - k;
        if (k < 0 || k >= nb || claimed[k] != FREE)
            continue;
        claimed[k] = (unsigned char)who;
        p += pw[k];
    }
    return p;
}

void spx_metrics(const spx_metric_args *a, const double *dft, double *amp, double *pw,
                 unsigned char *claimed, ngs_spectrum_metrics *m)
{
    size_t n = a->n, nb = n / 2 + 1;
    const spx_window *win = a->win;
    int L = win->lobe;
    double df = a->fs / (double)n;

    spx_scale_bins(win, n, dft, 0, nb, amp, pw);
    memset(claimed, FREE, nb);
    m->fs = a->fs;
    m->df = df;
    m->dc = dft[0] / win->s1;
    for (int h = 0; h <= NGS_SPECTRUM_MAX_HARMONICS; h++)
        m->hd_dbc[h] = NAN;
    double dc_lobe = claim_lobe(0, L, n, pw, claimed, BY_DC);

    /* Fundamental: given (folded), or the largest bin outside the DC lobe. */
    double pos;
    if (a->fundamental > 0) {
        pos = fold(a->fundamental / df, n);
    } else {
        size_t best = 0;
        for (size_t k = (size_t)L + 1; k < nb; k++)
            if (!best || amp[k] > amp[best])
                best = k;
        pos = best ? (double)best + interpolate(win, amp, n, best) : NAN;
    }
    if (!isfinite(pos)) /* record too short to hold a tone outside the DC lobe */
        goto no_tone;
    long kf = lround(pos);
    if (kf >= (long)nb)
        kf = (long)nb - 1;
    m->fundamental = a->fundamental > 0 ? a->fundamental : pos * df;
    m->amplitude = amp[kf] / spx_window_gain(win, fabs(pos - (double)kf));
    double p1 = claim_lobe(kf, L, n, pw, claimed, BY_FUND);
    /* A tone fills the bins within L-1 of its own (the lobe adds one of margin), so
     * under 2L periods DC, the fundamental and its harmonics (kf bins apart) overlap
     * and no claim order splits their power: no tone can be measured (a given
     * fundamental was refused for that before). Just past, a tone found beside a DC
     * lobe holding more AC power (its power less the mean's) than it is the skirt of
     * a slower tone, or noise; farther out a tone found is one (a drift fills the lobe
     * too, but leaves a tone of many periods measurable). */
    if (kf < 2 * L || (a->fundamental <= 0 && kf <= 2 * L + 1 && dc_lobe - m->dc * m->dc > p1))
        goto no_tone;
    /* A search always finds a largest bin: in a constant record (a supply rail, a DC node)
     * it is the FFT's and the resampler's rounding, ~1e-16 of the level, which is no
     * tone. One 240 dB below the record's power is taken as rounding. */
    if (a->fundamental <= 0) {
        /* A record too short for its own tone (one period in a 60-point record) leaves
         * its power in the DC lobe and a floor of resampling error around it, whose
         * largest bin was reported as a tone: 15 MHz, 137 dB down, "THD 57 %". A tone
         * stands out of that floor (the bins neither DC's nor its own), and above what
         * the DC lobe's slow content leaks to it through the window's sidelobes (worst
         * at half-bin offsets). */
        double total = 0.0, floor_sum = 0.0, leak = 0.0;
        size_t floor_bins = 0;
        for (size_t k = 0; k < nb; k++) {
            total += pw[k];
            if (k > 0 && claimed[k] == FREE) {
                floor_sum += pw[k];
                floor_bins++;
            }
        }
        if (!(p1 > TONE_FLOOR * total))
            goto no_tone;
        if (floor_bins && !(pw[kf] > TONE_OVER_FLOOR * floor_sum / (double)floor_bins))
            goto no_tone;
        for (double d = (double)(kf - L) - 0.5; d <= (double)kf + 0.5; d += 0.25) {
            double g = spx_window_gain(win, d);
            if (g * g > leak)
                leak = g * g;
        }
        if (!(p1 > TONE_OVER_FLOOR * (double)(2 * L + 1) * leak * (dc_lobe - m->dc * m->dc)))
            goto no_tone;
    }

    /* Harmonics, folded; one whose centre is already claimed cannot be told apart. */
    double ph_sum = 0.0;
    for (int h = 2; h <= a->harmonics; h++) {
        long c = lround(fold((double)h * pos, n));
        if (c >= (long)nb)
            c = (long)nb - 1;
        if (claimed[c] != FREE)
            continue;
        double ph = claim_lobe(c, L, n, pw, claimed, BY_HARM);
        m->hd_dbc[h] = 10.0 * log10(ph / p1);
        ph_sum += ph;
    }

    /* Noise: unclaimed bins in (0, fs/2], the Nyquist bin being half a bin wide. */
    double noise = 0.0, w_noise = 0.0, w_band = 0.0;
    for (size_t k = 1; k < nb; k++) {
        double w = is_edge(k, n) ? 0.5 : 1.0;
        w_band += w;
        if (claimed[k] == FREE) {
            noise += pw[k];
            w_noise += w;
        }
    }
    noise = w_noise > 0 ? noise * w_band / w_noise : NAN;

    /* SFDR: the largest component besides DC and the fundamental. Harmonic lobes hold
     * tones, so their peak is corrected for scalloping like the fundamental; a noise
     * bin is taken as it reads. */
    size_t ks = 0;
    for (size_t k = 1; k < nb; k++)
        if (claimed[k] != BY_DC && claimed[k] != BY_FUND && (!ks || amp[k] > amp[ks]))
            ks = k;
    double spur = NAN, spur_pos = NAN;
    if (ks) {
        double d = claimed[ks] == BY_HARM ? interpolate(win, amp, n, ks) : 0.0;
        spur = amp[ks] / spx_window_gain(win, fabs(d));
        spur_pos = (double)ks + d;
    }

    m->signal_power = p1;
    m->harmonic_power = ph_sum;
    m->noise_power = noise;
    m->thd_db = 10.0 * log10(ph_sum / p1);
    m->thd_percent = 100.0 * sqrt(ph_sum / p1);
    m->snr_db = 10.0 * log10(p1 / noise);
    m->sinad_db = 10.0 * log10(p1 / (noise + ph_sum));
    m->sfdr_db = 20.0 * log10(m->amplitude / spur);
    m->spur_frequency = spur_pos * df;
    m->enob = (m->sinad_db - 1.76) / 6.02;
    m->noise_density = noise / (a->fs / 2.0);
    m->noise_floor_db = 10.0 * log10(m->noise_density * df);
    return;
no_tone:
    m->fundamental = m->amplitude = m->signal_power = m->harmonic_power = NAN;
    m->noise_power = m->thd_db = m->thd_percent = m->snr_db = m->sinad_db = NAN;
    m->sfdr_db = m->spur_frequency = m->enob = m->noise_density = m->noise_floor_db = NAN;
}
