/*
 * spectrum_resample.c - non-uniform transient samples -> uniform grid.
 *
 * Linear: error <= h^2/8 max|x''|. Cubic: the not-a-knot cubic spline (C2; the first two
 * and last two cubic pieces are the same cubic), O(h^4) up to the ends, unlike the
 * natural spline whose x'' = 0 ends degrade to O(h^2) there. Slopes come from a
 * tridiagonal system solved by the Thomas algorithm (stable here: after the first row
 * the eliminated diagonal stays larger than the upper band), then each interval is a
 * cubic Hermite piece.
 *
 * Grid points are computed as t_start + k*dt (never accumulated) and located by binary
 * search once per range, then by a forward walk, so a grid can be split between
 * threads.
 */
#include "gpu/spectrum_impl.h"

#include <math.h>
#include <stdlib.h>

#include "ngscale.h"

int spx_spline_slopes(const double *t, const double *x, size_t n, double *s, double *cp)
{
    if (n < 4)
        return NGS_ERR_ARG;
#define DX(i) (t[(i) + 1] - t[(i)])
#define SL(i) ((x[(i) + 1] - x[(i)]) / DX(i))
    /* Row i: a_i s_{i-1} + b_i s_i + c_i s_{i+1} = r_i. Forward sweep: cp holds the
     * eliminated upper band, s the eliminated right-hand side. */
    double d0 = DX(0) + DX(1);
    double b = DX(1), c = d0;
    double r = ((DX(0) + 2.0 * d0) * DX(1) * SL(0) + DX(0) * DX(0) * SL(1)) / d0;
    cp[0] = c / b;
    s[0] = r / b;
    double dprev = DX(0), sprev = SL(0);
    for (size_t i = 1; i + 1 < n; i++) {
        double di = DX(i), si = SL(i);
        double a = di;
        b = 2.0 * (dprev + di);
        c = dprev;
        r = 3.0 * (di * sprev + dprev * si);
        double m = b - a * cp[i - 1];
        cp[i] = c / m;
        s[i] = (r - a * s[i - 1]) / m;
        dprev = di;
        sprev = si;
    }
    size_t l = n - 1;
    double dl = DX(l - 1) + DX(l - 2);
    double a = dl;
    b = DX(l - 2);
    r = (DX(l - 1) * DX(l - 1) * SL(l - 2) + (2.0 * dl + DX(l - 1)) * DX(l - 2) * SL(l - 1)) / dl;
    s[l] = (r - a * s[l - 1]) / (b - a * cp[l - 1]);
    for (size_t i = l; i-- > 0;)
        s[i] -= cp[i] * s[i + 1];
#undef DX
#undef SL
    return NGS_OK;
}

/* Index i with t[i] <= tau < t[i+1], clamped to [0, n-2]. */
static size_t locate(const double *t, size_t n, double tau)
{
    size_t lo = 0, hi = n - 1;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (t[mid] <= tau)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

void spx_resample_range(const double *t, const double *x, const double *s, size_t n,
                        double t_start, double dt, size_t k0, size_t k1, double *y)
{
    if (k0 >= k1)
        return;
    double t_lo = t[0], t_hi = t[n - 1];
    size_t i = locate(t, n, fmin(fmax(t_start + (double)k0 * dt, t_lo), t_hi));
    for (size_t k = k0; k < k1; k++) {
        double tau = fmin(fmax(t_start + (double)k * dt, t_lo), t_hi); /* rounding slack */
        while (i + 2 < n && t[i + 1] <= tau)
            i++;
        double h = t[i + 1] - t[i], u = (tau - t[i]) / h;
        if (!s) {
            y[k - k0] = x[i] + (x[i + 1] - x[i]) * u;
            continue;
        }
        /* Cubic Hermite basis on [t_i, t_i+1]. */
        double u2 = u * u, u3 = u2 * u;
        double h00 = 2 * u3 - 3 * u2 + 1, h10 = u3 - 2 * u2 + u;
        double h01 = -2 * u3 + 3 * u2, h11 = u3 - u2;
        y[k - k0] = h00 * x[i] + h10 * h * s[i] + h01 * x[i + 1] + h11 * h * s[i + 1];
    }
}

int ngs_spectrum_resample(const double *t, const double *x, size_t n, double t_start,
                          double dt, size_t m, ngs_resample method, double *y)
{
    if (!t || !x || !y || n < 2 || m < 1 || !(dt > 0) || !isfinite(t_start) ||
        (method != NGS_RESAMPLE_LINEAR && method != NGS_RESAMPLE_CUBIC))
        return NGS_ERR_ARG;
    for (size_t i = 0; i + 1 < n; i++)
        if (!(t[i + 1] > t[i]) || !isfinite(t[i + 1]))
            return NGS_ERR_ARG;
    if (!isfinite(t[0]))
        return NGS_ERR_ARG;
    double slack = 1e-9 * (t[n - 1] - t[0]);
    if (t_start < t[0] - slack || t_start + (double)(m - 1) * dt > t[n - 1] + slack)
        return NGS_ERR_ARG;
    double *s = NULL, *work = NULL;
    if (method == NGS_RESAMPLE_CUBIC && n >= 4) {
        s = malloc(n * sizeof *s);
        work = malloc(n * sizeof *work);
        if (!s || !work) {
            free(s);
            free(work);
            return NGS_ERR_NOMEM;
        }
        spx_spline_slopes(t, x, n, s, work);
    }
    spx_resample_range(t, x, s, n, t_start, dt, 0, m, y);
    free(s);
    free(work);
    return NGS_OK;
}
