/*
 * test_bounded.c - the bounded-error codec, its HDF5 filter, and bit rounding.
 *
 * The property that matters: every decoded finite sample is within the E stored in
 * its chunk header, E is no larger than what was asked, NaN/Inf come back bit for bit,
 * and the bytes are what HDF5's pipeline writes and reads. The bound is checked in
 * exact arithmetic (binary128 subtraction is exact for two doubles whose exponents are
 * within 60 of each other; farther apart the comparison is decided by magnitudes), so
 * an off-by-one-ulp encoder fails here rather than passing on a rounded comparison.
 */
#include <check.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ngscale.h"
#include "storage/bounded.h"
#include "storage/codec.h"
#include "ngs_check.h"

#if defined(__SIZEOF_FLOAT128__)
typedef __float128 wide;
#elif LDBL_MANT_DIG >= 113
typedef long double wide;
#else
#error "test_bounded needs a binary128 type for exact error checks"
#endif

/* ---- helpers ---------------------------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static double unif(uint64_t *s) /* [0, 1) */
{
    return (double)(rng_next(s) >> 11) / 9007199254740992.0;
}

static double gauss(uint64_t *s)
{
    double u = unif(s) + 1e-300, v = unif(s);
    return sqrt(-2.0 * log(u)) * cos(2 * M_PI * v);
}

static uint64_t bits_of(double d)
{
    uint64_t u;
    memcpy(&u, &d, 8);
    return u;
}

static double of_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, 8);
    return d;
}

/* |a - b| <= e, exactly. */
static int exact_within(double a, double b, double e)
{
    double ma = fmax(fabs(a), fabs(b)), mi = fmin(fabs(a), fabs(b));
    int ea, eb;
    if (a == b)
        return 1;
    if (mi == 0.0)
        return ma <= e;
    frexp(a, &ea);
    frexp(b, &eb);
    if (abs(ea - eb) <= 60) {
        wide d = (wide)a - (wide)b;
        if (d < 0)
            d = -d;
        return d <= (wide)e;
    }
    if (ma != e)
        return ma < e;
    return (a > 0) == (b > 0);
}

static double range_of(const double *x, size_t n, size_t stride, double *lo_out)
{
    double lo = HUGE_VAL, hi = -HUGE_VAL;
    for (size_t i = 0; i < n; i++) {
        double v = x[i * stride];
        if (isfinite(v)) {
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
    }
    if (lo_out)
        *lo_out = lo;
    return hi >= lo ? hi - lo : NAN;
}

/* What the caller asked for: min(abs_err, rel_err x range), unset terms dropped. */
static double requested(const ngs_bounded_params *p, double range)
{
    double e = p->abs_err > 0 ? p->abs_err : HUGE_VAL;
    if (p->rel_err > 0 && isfinite(range) && p->rel_err * range < e)
        e = p->rel_err * range;
    return e;
}

typedef struct {
    size_t size;
    uint8_t *buf;
    ngs_bounded_chunk_info info;
} encoded;

/* One codec context per test (fixture), so thousands of round trips do not each build
 * zstd contexts; tests of the NULL-context path pass NULL explicitly. */
static ngs_bounded_ctx *tctx;

static void ctx_setup(void)
{
    ck_assert_int_eq(ngs_bounded_ctx_create(&tctx), NGS_OK);
}

static void ctx_teardown(void)
{
    ngs_bounded_ctx_free(tctx);
    tctx = NULL;
}

static encoded encode_ok(const ngs_bounded_params *p, size_t es, const double *x, size_t nelem,
                         size_t nvalid)
{
    encoded e;
    double used = -1;
    size_t cap = ngs_bounded_bound(nelem * es);
    int rc;
    ck_assert_uint_gt(cap, 0);
    e.buf = malloc(cap);
    ck_assert_ptr_nonnull(e.buf);
    rc = ngs_bounded_encode(tctx, p, es, x, nelem * es, nvalid, e.buf, cap, &e.size, &used);
    ck_assert_msg(rc == NGS_OK, "encode: %d (es %zu n %zu abs %g rel %g)", rc, es, nelem,
                  p->abs_err, p->rel_err);
    ck_assert_int_eq(ngs_bounded_chunk_info_get(e.buf, e.size, &e.info), NGS_OK);
    ck_assert_uint_eq(e.info.nelem, nelem);
    ck_assert_uint_eq(e.info.elem_size, es);
    ck_assert(used == fmax(e.info.err[0], e.info.ncomp > 1 ? e.info.err[1] : 0.0));
    return e;
}

/* Checks every sample of a chunk against its header and the request. */
/* nvalid samples are checked; the encoder took the range over range_n of them. */
static void check_chunk(const ngs_bounded_params *p, size_t es, const double *x, size_t nvalid,
                        size_t range_n, const encoded *e, const double *y, const char *what)
{
    size_t dpe = es / 8;
    for (size_t c = 0; c < dpe; c++) {
        double req = requested(p, range_of(x + c, range_n, dpe, NULL));
        double err = e->info.err[c];
        size_t nonfinite = 0;
        if (e->info.mode[c] == 1) {
            ck_assert_msg(err > 0 && err <= req, "%s comp %zu: E %.17g > requested %.17g", what,
                          c, err, req);
        } else {
            ck_assert_msg(e->info.mode[c] == 0 && err == 0.0, "%s: bad mode", what);
        }
        for (size_t i = 0; i < nvalid; i++) {
            double a = x[i * dpe + c], b = y[i * dpe + c];
            if (!isfinite(a) || e->info.mode[c] == 0) {
                nonfinite += !isfinite(a);
                ck_assert_msg(bits_of(a) == bits_of(b),
                              "%s comp %zu sample %zu: %a came back as %a (must be exact)", what,
                              c, i, a, b);
                continue;
            }
            ck_assert_msg(exact_within(b, a, err),
                          "%s comp %zu sample %zu: |%a - %a| > E = %a", what, c, i, b, a, err);
        }
        if (e->info.mode[c] == 1)
            ck_assert_uint_eq(e->info.escapes[c], nonfinite);
    }
}

/* Encode, decode, check; returns the encoded size. */
static size_t roundtrip(const ngs_bounded_params *p, size_t es, const double *x, size_t nelem,
                        size_t nvalid, const char *what)
{
    encoded e = encode_ok(p, es, x, nelem, nvalid);
    double *y = malloc(nelem * es);
    size_t dsize = 0, size = e.size;
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(ngs_bounded_decoded_size(e.buf, e.size, &dsize), NGS_OK);
    ck_assert_uint_eq(dsize, nelem * es);
    ck_assert_int_eq(ngs_bounded_decode(tctx, e.buf, e.size, y, nelem * es), NGS_OK);
    nvalid = nvalid ? nvalid : nelem;
    check_chunk(p, es, x, nvalid, nvalid, &e, y, what);
    free(y);
    free(e.buf);
    return size;
}

/* ---- data -------------------------------------------------------------------------------- */

enum {
    D_UNIFORM, D_GAUSS, D_WALK, D_HUGE, D_TINY, D_CONST, D_ALTERNATE, D_EXPONENTS, D_SUBNORMAL,
    D_OVERFLOW_RANGE, D_SPIKES, D_DAMPED_SINE, D_RC_STEP, D_RING, NKINDS
};
static const char *kind_names[NKINDS] = {
    "uniform", "gauss", "walk", "huge", "tiny", "constant", "alternating", "exponents",
    "subnormal", "overflow-range", "spikes", "damped-sine", "rc-step", "ring"};

static void fill(int kind, double *x, size_t n, size_t stride, uint64_t seed)
{
    uint64_t s = seed * 0x9E3779B97F4A7C15ULL + 1;
    double w = 0.0;
    for (size_t i = 0; i < n; i++) {
        double t = (double)i * 1e-9, v;
        switch (kind) {
        case D_UNIFORM:
            v = (unif(&s) - 0.5) * 2e3;
            break;
        case D_GAUSS:
            v = gauss(&s);
            break;
        case D_WALK:
            v = (w += 1e-3 * gauss(&s));
            break;
        case D_HUGE:
            v = (unif(&s) - 0.5) * 1e300;
            break;
        case D_TINY:
            v = (unif(&s) - 0.5) * 1e-300;
            break;
        case D_CONST:
            v = 3.3;
            break;
        case D_ALTERNATE:
            v = i % 2 ? 1.5 : -1.5;
            break;
        case D_EXPONENTS:
            v = (unif(&s) < 0.5 ? -1 : 1) * ldexp(1.0 + unif(&s), (int)(rng_next(&s) % 121) - 60);
            break;
        case D_SUBNORMAL:
            v = (unif(&s) - 0.5) * 0x1p-1040;
            break;
        case D_OVERFLOW_RANGE:
            v = (unif(&s) < 0.5 ? -1.7e308 : 1.7e308) * unif(&s);
            break;
        case D_SPIKES:
            v = rng_next(&s) % 97 == 0 ? 1e6 * gauss(&s) : 1e-3 * gauss(&s);
            break;
        case D_DAMPED_SINE:
            v = 1.65 + 0.9 * sin(2 * M_PI * 1e6 * t) * exp(-t / 2e-6) +
                0.01 * sin(2 * M_PI * 37e6 * t);
            break;
        case D_RC_STEP: /* RC charging steps every 1 us */
            v = 3.3 * (1.0 - exp(-fmod(t, 1e-6) / 1.5e-7)) * ((i / 1000) % 2 ? 1.0 : -0.2);
            break;
        default: /* ring-oscillator-like: square wave with exponential settling + ringing */
        {
            double ph = fmod(t, 2e-7), edge = ph < 1e-7 ? ph : ph - 1e-7;
            double target = ph < 1e-7 ? 1.8 : 0.0;
            v = target + (1.8 - 2 * target) * exp(-edge / 4e-9) * cos(2 * M_PI * edge / 1e-8);
        }
        }
        x[i * stride] = v;
    }
}

static const ngs_bounded_params param_sets[] = {
    {1e-3, 0, 0},    {1e-12, 0, 0}, {0, 1e-6, 0},  {0, 1e-2, 0},     {1e-6, 1e-3, 0},
    {1e-300, 0, 0},  {1e300, 0, 0}, {1.7e308, 0, 0}, {0, 1e-6, 9}, {0, 0.5, -3},
};
#define NPARAMS (int)(sizeof param_sets / sizeof param_sets[0])
static const size_t sizes[] = {1, 2, 3, 5, 64, 1000, 4096};
#define NSIZES (int)(sizeof sizes / sizeof sizes[0])

/* ---- codec tests -------------------------------------------------------------------- */

START_TEST(test_params)
{
    ngs_bounded_params ok = {1e-6, 0, 0}, p;
    unsigned int cd[NGS_BOUNDED_CD_NELMTS];
    size_t es;
    const ngs_bounded_params bad[] = {
        {0, 0, 0}, {-1e-6, 0, 0}, {NAN, 0, 0}, {INFINITY, 0, 0}, {0, -1, 0}, {0, NAN, 0},
        {1e-6, 0, 1000}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_int_eq(ngs_bounded_check_params(&bad[i]), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_check_params(NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_check_params(&ok), NGS_OK);

    ngs_bounded_params q = {1.25e-7, 3e-5, -2};
    ck_assert_int_eq(ngs_bounded_params_to_cd(&q, 16, cd), NGS_OK);
    ck_assert_uint_eq(cd[0], NGS_BOUNDED_VERSION);
    ck_assert_uint_eq(cd[1], NGS_BOUNDED_METHOD_QPZ);
    ck_assert_uint_eq(cd[6], 16);
    ck_assert_uint_eq(((uint64_t)cd[3] << 32 | cd[2]), bits_of(1.25e-7));
    ck_assert_int_eq(ngs_bounded_params_from_cd(NGS_BOUNDED_CD_NELMTS, cd, &p, &es), NGS_OK);
    ck_assert(p.abs_err == q.abs_err && p.rel_err == q.rel_err && p.zstd_level == -2 && es == 16);
    ck_assert_int_eq(ngs_bounded_params_from_cd(7, cd, &p, &es), NGS_ERR_ARG);
    cd[0] = 2;
    ck_assert_int_eq(ngs_bounded_params_from_cd(NGS_BOUNDED_CD_NELMTS, cd, &p, &es), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_params_to_cd(&q, 12, cd), NGS_ERR_ARG);

    /* encode argument checks */
    double x[4] = {1, 2, 3, 4};
    uint8_t out[512];
    size_t size = 99;
    ck_assert_int_eq(ngs_bounded_encode(NULL, &ok, 12, x, 24, 0, out, sizeof out, &size, NULL),
                     NGS_ERR_ARG);
    ck_assert_uint_eq(size, 0);
    ck_assert_int_eq(ngs_bounded_encode(NULL, &ok, 16, x, 24, 0, out, sizeof out, &size, NULL),
                     NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_encode(NULL, &ok, 8, x, 0, 0, out, sizeof out, &size, NULL),
                     NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_encode(NULL, &bad[0], 8, x, 32, 0, out, sizeof out, &size, NULL),
                     NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_encode(NULL, &ok, 8, NULL, 32, 0, out, sizeof out, &size, NULL),
                     NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_encode(NULL, &ok, 8, x, 32, 0, out, 10, &size, NULL),
                     NGS_ERR_CODEC);
    ck_assert_int_eq(ngs_bounded_encode(NULL, &ok, 8, x, 32, 0, out, sizeof out, NULL, NULL),
                     NGS_ERR_ARG);
}
END_TEST

/* Every data kind x parameter set x size, real and complex (_i picks the kind). */
START_TEST(test_random_kinds)
{
    int kind = _i;
    for (int pi = 0; pi < NPARAMS; pi++)
        for (int si = 0; si < NSIZES; si++)
            for (size_t es = 8; es <= 16; es += 8) {
                size_t n = sizes[si], dpe = es / 8;
                double *x = malloc(n * es);
                char what[128];
                fill(kind, x, n, dpe, (uint64_t)(pi * 100 + si + 1));
                if (dpe == 2) /* imaginary part: another kind, so modes can differ */
                    fill((kind + 5) % NKINDS, x + 1, n, 2, (uint64_t)(pi * 7 + si + 3));
                snprintf(what, sizeof what, "%s abs %g rel %g n %zu es %zu", kind_names[kind],
                         param_sets[pi].abs_err, param_sets[pi].rel_err, n, es);
                roundtrip(&param_sets[pi], es, x, n, 0, what);
                free(x);
            }
}
END_TEST

/* Quantization is worth something on what simulations produce: >= 8x at 1e-6 x range
 * on smooth waveforms, and the header says which predictor won. */
START_TEST(test_smooth_ratio)
{
    const int kinds[] = {D_DAMPED_SINE, D_RC_STEP, D_RING};
    ngs_bounded_params p = {0, 1e-6, 0};
    size_t n = 4096;
    double *x = malloc(n * 8);
    for (size_t k = 0; k < 3; k++) {
        fill(kinds[k], x, n, 1, 1);
        size_t size = roundtrip(&p, 8, x, n, 0, kind_names[kinds[k]]);
        fprintf(stderr, "test_smooth_ratio: %s %.1fx\n", kind_names[kinds[k]],
                (double)(n * 8) / (double)size);
        ck_assert_msg(size * 8 <= n * 8, "%s: only %.2fx", kind_names[kinds[k]],
                      (double)(n * 8) / (double)size);
    }
    /* a linear ramp is exactly predictable at order 2 or more: nearly nothing to store */
    for (size_t i = 0; i < n; i++)
        x[i] = 1e-3 * (double)i;
    encoded e = encode_ok(&p, 8, x, n, 0);
    ck_assert_int_ge(e.info.order[0], 1);
    ck_assert_msg(e.size * 100 <= n * 8, "ramp: %zu bytes", e.size);
    free(e.buf);
    free(x);
}
END_TEST

/* Values right at half-steps of the grid, +-ulps, for many random E and offsets: the
 * quantizer's rounding and the fma reconstruction are where a bound would slip. */
START_TEST(test_near_bound)
{
    uint64_t s = 12345;
    size_t n = 2048;
    double *x = malloc(n * 8);
    for (int trial = 0; trial < 400; trial++) {
        double e = ldexp(1.0 + unif(&s), (int)(rng_next(&s) % 80) - 60);
        double lo = (unif(&s) - 0.5) * ldexp(1.0, (int)(rng_next(&s) % 80) - 50);
        double hi_est = lo + 2.0 * e * 1100.0;
        double maxabs = fmax(fabs(lo), fabs(hi_est)) + e;
        double step = 2.0 * (e - (nextafter(maxabs, HUGE_VAL) - maxabs));
        ngs_bounded_params p = {e, 0, 0};
        x[0] = lo;
        for (size_t i = 1; i < n; i++) {
            double v = lo + ((double)(rng_next(&s) % 1000) + 0.5) * step;
            int ulps = (int)(rng_next(&s) % 7) - 3;
            for (; ulps > 0; ulps--)
                v = nextafter(v, HUGE_VAL);
            for (; ulps < 0; ulps++)
                v = nextafter(v, -HUGE_VAL);
            x[i] = v;
        }
        roundtrip(&p, 8, x, n, 0, "near-bound");
    }
    /* exact ties on a binary grid: E = 0.5 and values at j + 0.5 */
    ngs_bounded_params half = {0.5, 0, 0};
    for (size_t i = 0; i < n; i++)
        x[i] = (double)(i % 97) * 0.125;
    roundtrip(&half, 8, x, n, 0, "binary ties");
    /* E just above and below the "too small for the values' ulp" threshold */
    for (int m = 60; m <= 70; m++) {
        ngs_bounded_params q = {m * ldexp(1.0, -52) * 1.0, 0, 0};
        for (size_t i = 0; i < n; i++)
            x[i] = 1.0 + (double)(i % 50) * ldexp(1.0, -49);
        roundtrip(&q, 8, x, n, 0, "ulp threshold");
    }
    free(x);
}
END_TEST

/* NaN payloads, signalling NaNs, +-Inf, at the ends and in runs; all-NaN chunks; -0. */
START_TEST(test_nonfinite)
{
    size_t n = 300;
    double *x = malloc(n * 16);
    const uint64_t specials[] = {0x7ff8000000000000ULL, 0xfff8000000000001ULL,
                                 0x7ff0000000000001ULL /* signalling */, 0x7ff0000000000000ULL,
                                 0xfff0000000000000ULL, 0x7fffffffffffffffULL};
    ngs_bounded_params p = {0, 1e-6, 0};
    for (size_t i = 0; i < 2 * n; i++)
        x[i] = sin((double)i * 0.01);
    for (size_t i = 0; i < 2 * n; i += 7)
        x[i] = of_bits(specials[(i / 7) % 6]);
    x[0] = of_bits(specials[0]);
    x[n - 1] = of_bits(specials[3]);
    for (size_t i = 100; i < 120; i++)
        x[i] = of_bits(specials[i % 6]);
    roundtrip(&p, 8, x, n, 0, "nonfinite real");
    roundtrip(&p, 16, x, n, 0, "nonfinite complex");
    encoded e = encode_ok(&p, 8, x, n, 0);
    ck_assert_uint_gt(e.info.escapes[0], 20);
    free(e.buf);
    for (size_t i = 0; i < n; i++)
        x[i] = of_bits(specials[i % 6]);
    roundtrip(&p, 8, x, n, 0, "all nonfinite");
    /* -0.0 may come back as +0.0: the error is 0 */
    for (size_t i = 0; i < n; i++)
        x[i] = i % 2 ? -0.0 : 1.0;
    roundtrip(&p, 8, x, n, 0, "negative zero");
    free(x);
}
END_TEST

/* Subnormal values and subnormal bounds; ranges that overflow; E too small. */
START_TEST(test_extremes)
{
    size_t n = 512;
    double *x = malloc(n * 8);
    uint64_t s = 7;
    const ngs_bounded_params ps[] = {{1e-310, 0, 0}, {1e-320, 0, 0}, {1e-300, 0, 0},
                                     {0, 1e-3, 0},   {0, 1e-15, 0},  {DBL_MIN, 0, 0}};
    for (size_t k = 0; k < sizeof ps / sizeof ps[0]; k++) {
        for (size_t i = 0; i < n; i++)
            x[i] = of_bits(rng_next(&s) & 0x800fffffffffffffULL); /* random subnormals */
        roundtrip(&ps[k], 8, x, n, 0, "subnormal");
        for (size_t i = 0; i < n; i++)
            x[i] = (unif(&s) - 0.5) * 1e-305;
        roundtrip(&ps[k], 8, x, n, 0, "near DBL_MIN");
    }
    /* range over 2^50 steps: lossless, exact */
    ngs_bounded_params p = {1e-9, 0, 0};
    for (size_t i = 0; i < n; i++)
        x[i] = (unif(&s) - 0.5) * 1e300;
    encoded e = encode_ok(&p, 8, x, n, 0);
    ck_assert_int_eq(e.info.mode[0], 0);
    free(e.buf);
    roundtrip(&p, 8, x, n, 0, "huge range");
    /* +-DBL_MAX: the range overflows */
    ngs_bounded_params r = {0, 1e-6, 0};
    for (size_t i = 0; i < n; i++)
        x[i] = i % 3 == 0 ? DBL_MAX : i % 3 == 1 ? -DBL_MAX : 0.0;
    roundtrip(&r, 8, x, n, 0, "DBL_MAX range");
    /* E smaller than the values' ulp: lossless */
    ngs_bounded_params tiny = {1e-20, 0, 0};
    for (size_t i = 0; i < n; i++)
        x[i] = 1e6 + unif(&s);
    e = encode_ok(&tiny, 8, x, n, 0);
    ck_assert_int_eq(e.info.mode[0], 0);
    free(e.buf);
    roundtrip(&tiny, 8, x, n, 0, "E below ulp");
    free(x);
}
END_TEST

/* Complex: each component gets its own E in rel mode, and its own bound. */
START_TEST(test_complex_components)
{
    size_t n = 1000;
    double *x = malloc(n * 16);
    ngs_bounded_params p = {0, 1e-6, 0};
    for (size_t i = 0; i < n; i++) {
        x[2 * i] = 1e3 * sin((double)i * 0.01);
        x[2 * i + 1] = 1e-3 * cos((double)i * 0.02);
    }
    encoded e = encode_ok(&p, 16, x, n, 0);
    ck_assert_int_eq(e.info.ncomp, 2);
    ck_assert(e.info.mode[0] == 1 && e.info.mode[1] == 1);
    ck_assert(e.info.err[0] > 1e5 * e.info.err[1]);
    free(e.buf);
    roundtrip(&p, 16, x, n, 0, "complex scales");
    for (size_t i = 0; i < n; i++)
        x[2 * i + 1] = 0.0; /* constant imaginary part: lossless */
    e = encode_ok(&p, 16, x, n, 0);
    ck_assert(e.info.mode[0] == 1 && e.info.mode[1] == 0);
    free(e.buf);
    roundtrip(&p, 16, x, n, 0, "complex real-valued");
    free(x);
}
END_TEST

/* nvalid: the zeroed tail of a partial chunk does not widen the range. */
START_TEST(test_partial_chunk)
{
    size_t n = 1024, valid = 300;
    double *x = calloc(n, 8);
    ngs_bounded_params p = {0, 1e-6, 0};
    for (size_t i = 0; i < valid; i++)
        x[i] = 5.0 + 1e-3 * sin((double)i * 0.05);
    encoded e = encode_ok(&p, 8, x, n, valid);
    ck_assert_msg(e.info.err[0] <= 1e-6 * range_of(x, valid, 1, NULL),
                  "E %g includes the padding", e.info.err[0]);
    free(e.buf);
    roundtrip(&p, 8, x, n, valid, "partial");
    /* with nvalid = all, the zeros count: E is larger */
    e = encode_ok(&p, 8, x, n, 0);
    ck_assert(e.info.err[0] > 1e-6 * 5.0 * 0.99);
    free(e.buf);
    free(x);
}
END_TEST

typedef struct {
    const double *x;
    size_t n;
    uint8_t *out;
    size_t size;
    int rc;
} thread_job;

static void *encode_thread(void *arg)
{
    thread_job *j = arg;
    ngs_bounded_params p = {0, 1e-6, 0};
    ngs_bounded_ctx *ctx = NULL;
    size_t cap = ngs_bounded_bound(j->n * 8);
    j->out = malloc(cap);
    j->rc = ngs_bounded_ctx_create(&ctx);
    for (int rep = 0; rep < 5 && j->rc == NGS_OK; rep++) /* a reused ctx changes nothing */
        j->rc = ngs_bounded_encode(ctx, &p, 8, j->x, j->n * 8, 0, j->out, cap, &j->size, NULL);
    ngs_bounded_ctx_free(ctx);
    return NULL;
}

/* Same bytes from any thread, with or without a context, run after run. */
START_TEST(test_deterministic)
{
    size_t n = 8192;
    double *x = malloc(n * 8);
    thread_job jobs[4];
    pthread_t th[4];
    fill(D_DAMPED_SINE, x, n, 1, 1);
    for (size_t i = 0; i < n; i += 13)
        x[i] += 1e-7 * (double)(i % 5);
    encoded ref = encode_ok(&(ngs_bounded_params){0, 1e-6, 0}, 8, x, n, 0);
    for (int t = 0; t < 4; t++) {
        jobs[t] = (thread_job){x, n, NULL, 0, -1};
        ck_assert_int_eq(pthread_create(&th[t], NULL, encode_thread, &jobs[t]), 0);
    }
    for (int t = 0; t < 4; t++) {
        pthread_join(th[t], NULL);
        ck_assert_int_eq(jobs[t].rc, NGS_OK);
        ck_assert_uint_eq(jobs[t].size, ref.size);
        ck_assert(memcmp(jobs[t].out, ref.buf, ref.size) == 0);
        free(jobs[t].out);
    }
    /* decoding twice (and with a ctx) gives the same bits */
    double *y1 = malloc(n * 8), *y2 = malloc(n * 8);
    ngs_bounded_ctx *ctx;
    ck_assert_int_eq(ngs_bounded_ctx_create(&ctx), NGS_OK);
    ck_assert_int_eq(ngs_bounded_decode(NULL, ref.buf, ref.size, y1, n * 8), NGS_OK);
    ck_assert_int_eq(ngs_bounded_decode(ctx, ref.buf, ref.size, y2, n * 8), NGS_OK);
    ck_assert(memcmp(y1, y2, n * 8) == 0);
    ngs_bounded_ctx_free(ctx);
    free(y1);
    free(y2);
    free(ref.buf);
    free(x);
}
END_TEST

/* Truncated, flipped, garbage input: an error or (a flip zstd ignores) the same output;
 * never a crash (run under ASan/valgrind). */
START_TEST(test_corrupt)
{
    size_t n = 700;
    double *x = malloc(n * 16), *ref = malloc(n * 16), *y = malloc(n * 16);
    ngs_bounded_params p = {0, 1e-6, 0};
    uint64_t s = 99;
    for (size_t es = 8; es <= 16; es += 8) {
        fill(D_WALK, x, n * (es / 8), 1, 3);
        x[17] = NAN; /* an escape section too */
        encoded e = encode_ok(&p, es, x, n, 0);
        ck_assert_int_eq(ngs_bounded_decode(NULL, e.buf, e.size, ref, n * es), NGS_OK);
        uint8_t *bad = malloc(e.size + 16);
        for (size_t len = 0; len < e.size; len++) {
            memcpy(bad, e.buf, len);
            ck_assert_int_eq(ngs_bounded_decode(tctx, bad, len, y, n * es), NGS_ERR_CODEC);
        }
        memcpy(bad, e.buf, e.size); /* trailing garbage */
        bad[e.size] = 0;
        ck_assert_int_eq(ngs_bounded_decode(NULL, bad, e.size + 1, y, n * es), NGS_ERR_CODEC);
        const uint8_t flips[] = {0x01, 0x10, 0x80, 0xff};
        for (size_t pos = 0; pos < e.size; pos++)
            for (size_t f = 0; f < sizeof flips; f++) {
                memcpy(bad, e.buf, e.size);
                bad[pos] ^= flips[f];
                int rc = ngs_bounded_decode(tctx, bad, e.size, y, n * es);
                ck_assert_msg(rc == NGS_ERR_CODEC || (rc == NGS_OK && !memcmp(y, ref, n * es)),
                              "flip 0x%02x at %zu/%zu: rc %d, different output", flips[f], pos,
                              e.size, rc);
            }
        for (int t = 0; t < 200; t++) { /* random garbage behind a valid header */
            memcpy(bad, e.buf, e.size);
            for (size_t i = 60; i < e.size; i++)
                bad[i] = (uint8_t)rng_next(&s);
            ck_assert_int_eq(ngs_bounded_decode(tctx, bad, e.size, y, n * es), NGS_ERR_CODEC);
        }
        ck_assert_int_eq(ngs_bounded_decode(NULL, e.buf, e.size, y, n * es - 8), NGS_ERR_CODEC);
        ck_assert_int_eq(ngs_bounded_decode(NULL, e.buf, e.size, y, n * es + es), NGS_ERR_CODEC);
        free(bad);
        free(e.buf);
    }
    free(x);
    free(ref);
    free(y);
}
END_TEST

/* ---- defaults and bit rounding -------------------------------------------------------------- */

START_TEST(test_defaults)
{
    ngs_bounded_params p;
    ck_assert(fabs(ngs_bounded_default_abs_err("voltage", 1.0) - 1e-8) < 1e-20);
    ck_assert(fabs(ngs_bounded_default_abs_err("voltage", 1e-4) - 1e-9) < 1e-21);
    ck_assert(fabs(ngs_bounded_default_abs_err("current", 1e-3) - 1e-14) < 1e-26);
    ck_assert(fabs(ngs_bounded_default_abs_err("current", 1e-10) - 1e-15) < 1e-27);
    ck_assert(fabs(ngs_bounded_default_abs_err("power", 2.0) - 2e-5) < 1e-17);
    ck_assert(fabs(ngs_bounded_default_abs_err(NULL, 2.0) - 2e-5) < 1e-17);
    ck_assert(ngs_bounded_default_abs_err("time", 1.0) == 0.0);
    ck_assert(ngs_bounded_default_abs_err("frequency", 1.0) == 0.0);
    ck_assert(ngs_bounded_default_abs_err("res-sweep", 1.0) == 0.0);
    ck_assert(ngs_bounded_default_abs_err("voltage", 0.0) == 0.0);
    ck_assert(ngs_bounded_default_abs_err("voltage", NAN) == 0.0);
    ck_assert(ngs_bounded_default_abs_err("voltage", -1.0) == 0.0);
    ck_assert(ngs_bounded_default_abs_err("voltage", INFINITY) == 0.0);
    ck_assert_int_eq(ngs_bounded_default_params("time", &p), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bounded_default_params("voltage", &p), NGS_OK);
    /* the encoder with the default params uses exactly the default rule */
    size_t n = 1000;
    double *x = malloc(n * 8), lo;
    for (double amp = 1e-6; amp < 1e3; amp *= 10) {
        for (size_t i = 0; i < n; i++)
            x[i] = 0.3 + amp * sin((double)i * 0.01);
        encoded e = encode_ok(&p, 8, x, n, 0);
        double want = ngs_bounded_default_abs_err("voltage", range_of(x, n, 1, &lo));
        ck_assert_msg(e.info.err[0] == want, "amp %g: E %.17g, default rule %.17g", amp,
                      e.info.err[0], want);
        free(e.buf);
    }
    free(x);
}
END_TEST

START_TEST(test_bitround)
{
    int nb;
    ck_assert_int_eq(ngs_bitround_bits_for_rel_err(1e-6, &nb), NGS_OK);
    ck_assert_int_eq(nb, 19);
    ck_assert_int_eq(ngs_bitround_bits_for_rel_err(0.5, &nb), NGS_OK);
    ck_assert_int_eq(nb, 0);
    ck_assert_int_eq(ngs_bitround_bits_for_rel_err(0.25, &nb), NGS_OK);
    ck_assert_int_eq(nb, 1);
    ck_assert_int_eq(ngs_bitround_bits_for_rel_err(1e-30, &nb), NGS_OK);
    ck_assert_int_eq(nb, 52);
    ck_assert_int_eq(ngs_bitround_bits_for_rel_err(0.0, &nb), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bitround_bits_for_rel_err(NAN, &nb), NGS_ERR_ARG);
    ck_assert(ngs_bitround_max_rel_err(19) == ldexp(1.0, -20));
    ck_assert(isnan(ngs_bitround_max_rel_err(53)));
    for (int bits = 0; bits <= 52; bits++) {
        ck_assert_int_eq(ngs_bitround_bits_for_rel_err(ngs_bitround_max_rel_err(bits), &nb), NGS_OK);
        ck_assert_int_eq(nb, bits);
    }

    size_t n = 20000;
    double *x = malloc(n * 8), *y = malloc(n * 8), *z = malloc(n * 8);
    uint64_t s = 5;
    for (size_t i = 0; i < n; i++) {
        uint64_t u = rng_next(&s);
        if (i % 10 == 0)
            u &= 0x800fffffffffffffULL; /* subnormal */
        x[i] = of_bits(u);
    }
    x[0] = DBL_MAX;
    x[1] = -DBL_MAX;
    x[2] = INFINITY;
    x[3] = NAN;
    x[4] = -0.0;
    x[5] = 0.0;
    ck_assert_int_eq(ngs_bitround(x, y, n, 53), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_bitround(x, y, n, -1), NGS_ERR_ARG);
    for (int bits = 0; bits <= 52; bits += (bits < 24 ? 1 : 7)) {
        double rel = ngs_bitround_max_rel_err(bits);
        ck_assert_int_eq(ngs_bitround(x, y, n, bits), NGS_OK);
        for (size_t i = 0; i < n; i++) {
            double a = x[i], b = y[i];
            if (!isfinite(a) || fabs(a) < DBL_MIN) { /* zeros and subnormals too */
                ck_assert_msg(bits_of(a) == bits_of(b), "bits %d: %a -> %a", bits, a, b);
                continue;
            }
            ck_assert_msg(isfinite(b), "bits %d: %a rounded to %a", bits, a, b);
            if (fabs(a) >= DBL_MIN && fabs(a) < DBL_MAX * (1 - ldexp(1.0, -bits - 1)))
                ck_assert_msg(exact_within(a, b, rel * fabs(a)), "bits %d: %a -> %a", bits, a, b);
            else /* next to DBL_MAX: truncated, error < 2^-bits relative */
                ck_assert(exact_within(a, b, 2 * rel * fabs(a)));
            /* the dropped bits are zero */
            if (bits < 52 && fabs(b) >= DBL_MIN)
                ck_assert((bits_of(b) & ((1ULL << (52 - bits)) - 1)) == 0);
        }
        /* idempotent */
        ck_assert_int_eq(ngs_bitround(y, z, n, bits), NGS_OK);
        ck_assert(memcmp(y, z, n * 8) == 0);
    }
    /* ties to even: 1 + 2^-20 (tie at 19 bits) goes down to 1, 1 + 3*2^-20 goes up */
    double t[2] = {1.0 + ldexp(1.0, -20), 1.0 + 3 * ldexp(1.0, -20)}, r[2];
    ck_assert_int_eq(ngs_bitround(t, r, 2, 19), NGS_OK);
    ck_assert(r[0] == 1.0 && r[1] == 1.0 + 4 * ldexp(1.0, -20));

    /* encode = round + shuffle + deflate; stock decode gives the rounded values */
    size_t cap = ngs_codec_bound(NGS_CODEC_DEFLATE, n * 8), size;
    uint8_t *enc = malloc(cap), *scratch = malloc(2 * n * 8);
    ck_assert_int_eq(ngs_bitround_encode(19, 0, 8, x, n * 8, enc, cap, &size, scratch), NGS_OK);
    ck_assert_int_eq(ngs_codec_decode(NGS_CODEC_DEFLATE, 8, enc, size, z, n * 8, scratch), NGS_OK);
    ck_assert_int_eq(ngs_bitround(x, y, n, 19), NGS_OK);
    ck_assert(memcmp(y, z, n * 8) == 0);
    ck_assert_int_eq(ngs_bitround_encode(19, 0, 8, x, n * 8 - 3, enc, cap, &size, scratch),
                     NGS_ERR_ARG);
    free(enc);
    free(scratch);
    free(x);
    free(y);
    free(z);
}
END_TEST

/* ---- HDF5 --------------------------------------------------------------------------------------- */

static char bounded_dir[256];

static void make_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(bounded_dir, sizeof bounded_dir, "%s/ngs_bounded_XXXXXX", base && *base ? base : "/tmp");
    ck_assert_ptr_nonnull(mkdtemp(bounded_dir));
}

static void remove_tmpdir(void)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", bounded_dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", bounded_dir);
}

static hid_t complex_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, 16);
    H5Tinsert(t, "r", 0, H5T_IEEE_F64LE);
    H5Tinsert(t, "i", 8, H5T_IEEE_F64LE);
    return t;
}

static hid_t make_dataset(hid_t file, const char *name, size_t es, hsize_t chunk,
                          const ngs_bounded_params *p)
{
    hsize_t dims = 0, maxdims = H5S_UNLIMITED;
    hid_t space = H5Screate_simple(1, &dims, &maxdims), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t type = es == 8 ? H5Tcopy(H5T_IEEE_F64LE) : complex_type(), d;
    ck_assert(H5Pset_chunk(dcpl, 1, &chunk) >= 0);
    ck_assert_int_eq(ngs_bounded_set_filters(dcpl, p, es), NGS_OK);
    d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert(d >= 0);
    H5Tclose(type);
    H5Pclose(dcpl);
    H5Sclose(space);
    return d;
}

static hid_t mem_type(size_t es)
{
    return es == 8 ? H5Tcopy(H5T_NATIVE_DOUBLE) : complex_type();
}

/* H5Dwrite through the pipeline; H5Dread back; every chunk's bytes equal the encoder's
 * output for the same chunk (the tail of the last chunk holds the fill value 0). */
START_TEST(test_hdf5_pipeline)
{
    const size_t n = 5000, chunk = 1024;
    ngs_bounded_params p = {0, 1e-6, 0};
    make_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/pipe.h5", bounded_dir);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(file >= 0);
    for (size_t es = 8; es <= 16; es += 8) {
        size_t dpe = es / 8;
        double *x = malloc(n * es), *y = malloc(n * es), *pad = calloc(chunk, es);
        fill(D_DAMPED_SINE, x, n, dpe, 1);
        if (dpe == 2)
            fill(D_WALK, x + 1, n, 2, 2);
        x[77 * dpe] = NAN;
        hid_t d = make_dataset(file, es == 8 ? "real" : "complex", es, chunk, &p);
        hsize_t ext = n;
        hid_t mt = mem_type(es);
        ck_assert(H5Dset_extent(d, &ext) >= 0);
        ck_assert(H5Dwrite(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
        H5Dclose(d);
        H5Fflush(file, H5F_SCOPE_GLOBAL);
        d = H5Dopen2(file, es == 8 ? "real" : "complex", H5P_DEFAULT);
        ck_assert(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0);
        for (size_t ck = 0; ck * chunk < n; ck++) {
            hsize_t off = ck * chunk, csize;
            size_t rows = n - ck * chunk < chunk ? n - ck * chunk : chunk;
            uint32_t mask = 1;
            ck_assert(H5Dget_chunk_storage_size(d, &off, &csize) >= 0);
            uint8_t *stored = malloc(csize);
            ck_assert(H5Dread_chunk(d, H5P_DEFAULT, &off, &mask, stored) >= 0);
            ck_assert_uint_eq(mask, 0);
            memset(pad, 0, chunk * es);
            memcpy(pad, x + ck * chunk * dpe, rows * es);
            encoded e = encode_ok(&p, es, pad, chunk, 0);
            ck_assert_uint_eq(e.size, csize);
            ck_assert(memcmp(e.buf, stored, csize) == 0);
            check_chunk(&p, es, pad, rows, chunk, &e, y + ck * chunk * dpe, "pipeline");
            free(e.buf);
            free(stored);
        }
        H5Dclose(d);
        H5Tclose(mt);
        free(x);
        free(y);
        free(pad);
    }
    H5Fclose(file);
    remove_tmpdir();
}
END_TEST

/* Chunks from the encoder on threads -> H5Dwrite_chunk -> plain H5Dread, bit for bit
 * what ngs_bounded_decode gives; a corrupt chunk makes H5Dread fail, not crash. */
START_TEST(test_hdf5_write_chunk)
{
    const size_t n = 3000, chunk = 1024;
    ngs_bounded_params p = {1e-9, 1e-6, 0};
    make_tmpdir();
    char path[300];
    snprintf(path, sizeof path, "%s/chunks.h5", bounded_dir);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    for (size_t es = 8; es <= 16; es += 8) {
        size_t dpe = es / 8;
        double *x = calloc(((n + chunk - 1) / chunk) * chunk, es), *y = malloc(n * es);
        double *dec = malloc(chunk * es);
        fill(D_RING, x, n, dpe, 1);
        if (dpe == 2)
            fill(D_RC_STEP, x + 1, n, 2, 1);
        hid_t d = make_dataset(file, es == 8 ? "real" : "complex", es, chunk, &p);
        hsize_t ext = n;
        ck_assert(H5Dset_extent(d, &ext) >= 0);
        encoded e[3];
        for (size_t ck = 0; ck < 3; ck++) {
            size_t rows = n - ck * chunk < chunk ? n - ck * chunk : chunk;
            hsize_t off = ck * chunk;
            e[ck] = encode_ok(&p, es, x + ck * chunk * dpe, chunk, rows);
            ck_assert(H5Dwrite_chunk(d, H5P_DEFAULT, 0, &off, e[ck].size, e[ck].buf) >= 0);
        }
        hid_t mt = mem_type(es);
        ck_assert(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0);
        for (size_t ck = 0; ck < 3; ck++) {
            size_t rows = n - ck * chunk < chunk ? n - ck * chunk : chunk;
            ck_assert_int_eq(ngs_bounded_decode(NULL, e[ck].buf, e[ck].size, dec, chunk * es), NGS_OK);
            ck_assert(memcmp(dec, y + ck * chunk * dpe, rows * es) == 0);
            check_chunk(&p, es, x + ck * chunk * dpe, rows, rows, &e[ck], dec, "write_chunk");
        }
        /* corrupt the middle chunk */
        hsize_t off = chunk;
        e[1].buf[e[1].size / 2] ^= 0x5a;
        ck_assert(H5Dwrite_chunk(d, H5P_DEFAULT, 0, &off, e[1].size, e[1].buf) >= 0);
        herr_t rr;
        H5E_BEGIN_TRY
        {
            rr = H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, y);
        }
        H5E_END_TRY;
        ck_assert_msg(rr < 0, "H5Dread of a corrupt chunk succeeded");
        e[1].buf[e[1].size / 2] ^= 0x5a; /* repair, so the file is valid for readers */
        ck_assert(H5Dwrite_chunk(d, H5P_DEFAULT, 0, &off, e[1].size, e[1].buf) >= 0);
        for (size_t ck = 0; ck < 3; ck++)
            free(e[ck].buf);
        H5Tclose(mt);
        H5Dclose(d);
        free(x);
        free(y);
        free(dec);
    }
    /* the filter refuses datatypes it cannot encode */
    {
        hsize_t dims = 10, chunk1 = 5;
        hid_t space = H5Screate_simple(1, &dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d;
        H5Pset_chunk(dcpl, 1, &chunk1);
        ck_assert_int_eq(ngs_bounded_set_filters(dcpl, &p, 8), NGS_OK);
        H5E_BEGIN_TRY
        {
            d = H5Dcreate2(file, "ints", H5T_STD_I64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        }
        H5E_END_TRY;
        ck_assert_msg(d < 0, "an int64 dataset accepted the bounded filter");
        H5Pclose(dcpl);
        /* as optional (what h5py does), 6 cd_values: HDF5 keeps the filter, which must
         * then leave the integers alone */
        unsigned int cd[NGS_BOUNDED_CD_NELMTS];
        int64_t iv[10], ir[10];
        ck_assert_int_eq(ngs_bounded_params_to_cd(&(ngs_bounded_params){1e-4, 0, 0}, 8, cd), NGS_OK);
        dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &chunk1);
        ck_assert(H5Pset_filter(dcpl, NGS_H5Z_FILTER_BOUNDED, H5Z_FLAG_OPTIONAL, 6, cd) >= 0);
        d = H5Dcreate2(file, "ints", H5T_STD_I64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        ck_assert(d >= 0);
        for (int i = 0; i < 10; i++)
            iv[i] = i * 1000003;
        ck_assert(H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, iv) >= 0);
        ck_assert(H5Dread(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, ir) >= 0);
        ck_assert(memcmp(iv, ir, sizeof iv) == 0);
        H5Dclose(d);
        H5Pclose(dcpl);
        H5Sclose(space);
    }
    H5Fclose(file);

    /* Stock reader path: the plugin on HDF5_PLUGIN_PATH, in a child process whose HDF5
     * does not have the built-in registration. */
    const char *pp = getenv("HDF5_PLUGIN_PATH");
    char so[600];
    struct stat st;
    snprintf(so, sizeof so, "%s/libh5zbounded.so", pp ? pp : "");
    if (pp && stat(so, &st) == 0) {
        pid_t pid = fork();
        ck_assert(pid >= 0);
        if (pid == 0) {
            int ok = 0;
            double *y = malloc(n * 8), *z = malloc(n * 8);
            H5close(); /* drop this process's registration; a fresh library loads the plugin */
            hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
            hid_t d = f >= 0 ? H5Dopen2(f, "real", H5P_DEFAULT) : -1;
            if (d >= 0 && H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0)
                ok = 1;
            if (d >= 0)
                H5Dclose(d);
            if (f >= 0)
                H5Fclose(f);
            fill(D_RING, z, n, 1, 1);
            for (size_t i = 0; ok && i < n; i++)
                ok = fabs(y[i] - z[i]) <= 1e-9;
            free(y);
            free(z);
            _exit(ok ? 0 : 3);
        }
        int status;
        ck_assert(waitpid(pid, &status, 0) == pid);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "reading through the plugin %s failed (status %d)", so, status);
    } else {
        fprintf(stderr, "test_hdf5_write_chunk: %s not built: plugin read not tested\n", so);
    }
    remove_tmpdir();
}
END_TEST

/* Big-endian float64 ('>f8' in h5py): the chunk bytes are not the codec's little-endian
 * doubles. The filter must refuse the type (mandatory: H5Dcreate fails; optional, as
 * h5py adds it: chunks stored unfiltered), not quantize byte-swapped numbers: these
 * values (multiples of 1/256) read byte-swapped are tiny and were all decoded to 0. */
START_TEST(test_hdf5_big_endian_refused)
{
    const hsize_t n = 64, chunk = 32;
    ngs_bounded_params p = {1e-6, 0, 0};
    double x[64], y[64];
    unsigned int cd[NGS_BOUNDED_CD_NELMTS];
    char path[300];
    make_tmpdir();
    snprintf(path, sizeof path, "%s/be.h5", bounded_dir);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(1, &n, NULL), cplx = H5Tcreate(H5T_COMPOUND, 16), d;
    ck_assert(file >= 0);
    H5Tinsert(cplx, "r", 0, H5T_IEEE_F64BE);
    H5Tinsert(cplx, "i", 8, H5T_IEEE_F64BE);
    for (size_t i = 0; i < n; i++)
        x[i] = (double)((int)i * 37 % 101 - 50) / 256.0;
    for (int es = 8; es <= 16; es += 8) {
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
        H5Pset_chunk(dcpl, 1, &chunk);
        ck_assert_int_eq(ngs_bounded_set_filters(dcpl, &p, (size_t)es), NGS_OK);
        H5E_BEGIN_TRY
        {
            d = H5Dcreate2(file, "mandatory", es == 8 ? H5T_IEEE_F64BE : cplx, space, H5P_DEFAULT,
                           dcpl, H5P_DEFAULT);
        }
        H5E_END_TRY;
        ck_assert_msg(d < 0, "a big-endian dataset (element %d bytes) took the bounded filter", es);
        H5Pclose(dcpl);
    }
    ck_assert_int_eq(ngs_bounded_params_to_cd(&p, 8, cd), NGS_OK);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, 1, &chunk);
    ck_assert(H5Pset_filter(dcpl, NGS_H5Z_FILTER_BOUNDED, H5Z_FLAG_OPTIONAL, 6, cd) >= 0);
    d = H5Dcreate2(file, "optional", H5T_IEEE_F64BE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    ck_assert(d >= 0);
    ck_assert(H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
    H5Dclose(d);
    d = H5Dopen2(file, "optional", H5P_DEFAULT);
    ck_assert(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, y) >= 0);
    for (size_t i = 0; i < n; i++)
        ck_assert_msg(fabs(y[i] - x[i]) <= p.abs_err, "'>f8' sample %zu: %.17g read back as %.17g",
                      i, x[i], y[i]);
    H5Dclose(d);
    H5Pclose(dcpl);
    H5Tclose(cplx);
    H5Sclose(space);
    H5Fclose(file);
    remove_tmpdir();
}
END_TEST

static herr_t find_bounded_msg(unsigned n, const H5E_error2_t *e, void *found)
{
    (void)n;
    if (e->desc && strstr(e->desc, "bounded filter (52807): cd_values must"))
        *(int *)found = 1;
    return 0;
}

/* cd_values with a bound that is not a positive finite double (NaN, negative, none),
 * another version or a level outside zstd's: the forward filter declined every chunk
 * and HDF5 stored them unfiltered (optional, as h5py adds filters) without a word.
 * H5Dcreate now fails, and the error stack says why. */
START_TEST(test_hdf5_bad_cd_values_refused)
{
    const hsize_t n = 64, chunk = 32;
    char path[300];
    make_tmpdir();
    snprintf(path, sizeof path, "%s/cd.h5", bounded_dir);
    hid_t file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hid_t space = H5Screate_simple(1, &n, NULL);
    ck_assert(file >= 0);
    ck_assert_int_eq(ngs_bounded_register(), NGS_OK);
    const double bad_err[] = {NAN, -1e-6, 0.0, INFINITY};
    for (int t = 0; t < 6; t++) {
        unsigned int cd[NGS_BOUNDED_CD_NELMTS];
        ck_assert_int_eq(ngs_bounded_params_to_cd(&(ngs_bounded_params){1e-6, 0, 0}, 8, cd), NGS_OK);
        if (t < 4) {
            uint64_t u = bits_of(bad_err[t]);
            cd[2] = (unsigned int)(u & 0xffffffffu);
            cd[3] = (unsigned int)(u >> 32);
        } else if (t == 4) {
            cd[0] = 2; /* a version this code does not know */
        } else {
            cd[7] = 99; /* zstd level */
        }
        hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE), d;
        int found = 0;
        H5Pset_chunk(dcpl, 1, &chunk);
        ck_assert(H5Pset_filter(dcpl, NGS_H5Z_FILTER_BOUNDED, H5Z_FLAG_OPTIONAL, t < 4 ? 6 : 8, cd) >= 0);
        H5E_BEGIN_TRY
        {
            d = H5Dcreate2(file, "d", H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
            H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, find_bounded_msg, &found);
        }
        H5E_END_TRY;
        ck_assert_msg(d < 0, "case %d: a dataset was created with cd_values the filter cannot use", t);
        ck_assert_msg(found, "case %d: the error stack does not say what is wrong", t);
        H5Pclose(dcpl);
    }
    H5Sclose(space);
    H5Fclose(file);
    remove_tmpdir();
}
END_TEST

/* ---- real ngspice output ------------------------------------------------------------------ */

typedef struct {
    size_t nvars, npoints, es;
    char types[64][32];
    double *col[64]; /* per variable, npoints * es/8 doubles */
} raw_data;

/* Binary RAW, one plot: "Variables:" lines "\t<i>\t<name>\t<type>", then "Binary:\n". */
static void read_raw(const char *path, raw_data *r)
{
    FILE *f = fopen(path, "rb");
    char line[1024];
    int in_vars = 0;
    memset(r, 0, sizeof *r);
    ck_assert_ptr_nonnull(f);
    r->es = 8;
    while (fgets(line, sizeof line, f)) {
        if (!strncmp(line, "No. Variables:", 14))
            r->nvars = strtoul(line + 14, NULL, 10);
        else if (!strncmp(line, "No. Points:", 11))
            r->npoints = strtoul(line + 11, NULL, 10);
        else if (!strncmp(line, "Flags:", 6) && strstr(line, "complex"))
            r->es = 16;
        else if (!strncmp(line, "Variables:", 10))
            in_vars = 1;
        else if (!strcmp(line, "Binary:\n"))
            break;
        else if (in_vars && line[0] == '\t') {
            unsigned idx;
            char name[256], type[32];
            if (sscanf(line, " %u %255s %31s", &idx, name, type) == 3 && idx < 64)
                snprintf(r->types[idx], sizeof r->types[idx], "%s", type);
        }
    }
    ck_assert(r->nvars > 1 && r->nvars <= 64 && r->npoints > 10);
    size_t row = r->nvars * r->es, dpe = r->es / 8;
    double *rows = malloc(row * r->npoints);
    ck_assert_uint_eq(fread(rows, row, r->npoints, f), r->npoints);
    fclose(f);
    for (size_t v = 0; v < r->nvars; v++) {
        r->col[v] = malloc(r->npoints * r->es);
        for (size_t i = 0; i < r->npoints; i++)
            memcpy(r->col[v] + i * dpe, rows + (i * r->nvars + v) * dpe, r->es);
    }
    free(rows);
}

static void run_ngspice(const char *name, const char *netlist, char *raw, size_t rawlen)
{
    char cir[300], cmd[1200];
    FILE *f;
    ck_assert_msg(system("command -v ngspice >/dev/null 2>&1") == 0,
                  "ngspice is not installed (apt-get install ngspice)");
    snprintf(cir, sizeof cir, "%s/%s.cir", bounded_dir, name);
    snprintf(raw, rawlen, "%s/%s.raw", bounded_dir, name);
    f = fopen(cir, "w");
    ck_assert_ptr_nonnull(f);
    fputs(netlist, f);
    fclose(f);
    snprintf(cmd, sizeof cmd, "cd '%s' && HOME='%s' ngspice -b -r '%s.raw' '%s.cir' >'%s.log' 2>&1",
             bounded_dir, bounded_dir, name, name, name);
    ck_assert_msg(system(cmd) == 0, "ngspice failed: see %s/%s.log", bounded_dir, name);
}

/* Every vector (scale included: the codec must hold its bound there too) in chunks of
 * 256, with rel 1e-6, rel 1e-3, and the SPICE default for the vector's type. */
START_TEST(test_real_ngspice)
{
    static const char *netlists[][2] = {
        {"tran", "RC ladder, pulse input\nV1 in 0 PULSE(0 1 0 10n 10n 2u 5u)\n"
                 "R1 in n1 1k\nC1 n1 0 100p\nR2 n1 n2 1k\nC2 n2 0 100p\nR3 n2 out 1k\n"
                 "C3 out 0 100p\n.tran 5n 20u\n.end\n"},
        {"ac", "RLC band-pass, AC sweep\nV1 in 0 DC 0 AC 1\nR1 in mid 50\nL1 mid out 10u\n"
               "C1 out 0 1n\nR2 out 0 1k\n.ac dec 50 100k 100meg\n.end\n"},
    };
    make_tmpdir();
    for (size_t k = 0; k < 2; k++) {
        char raw[400];
        raw_data r;
        run_ngspice(netlists[k][0], netlists[k][1], raw, sizeof raw);
        read_raw(raw, &r);
        ck_assert_uint_eq(r.es, k == 0 ? 8 : 16);
        size_t total_in = 0, total_out = 0;
        for (size_t v = 0; v < r.nvars; v++) {
            ngs_bounded_params ps[3] = {{0, 1e-6, 0}, {0, 1e-3, 0}, {0, 0, 0}};
            int np = ngs_bounded_default_params(r.types[v], &ps[2]) == NGS_OK ? 3 : 2;
            size_t dpe = r.es / 8;
            for (int pi = 0; pi < np; pi++)
                for (size_t off = 0; off < r.npoints; off += 256) {
                    size_t rows = r.npoints - off < 256 ? r.npoints - off : 256;
                    double *chunk = calloc(256, r.es);
                    char what[160];
                    memcpy(chunk, r.col[v] + off * dpe, rows * r.es);
                    snprintf(what, sizeof what, "%s var %zu (%.31s) params %d offset %zu",
                             netlists[k][0], v, r.types[v], pi, off);
                    size_t size = roundtrip(&ps[pi], r.es, chunk, 256, rows, what);
                    if (pi == 0 && v > 0) {
                        total_in += rows * r.es;
                        total_out += size;
                    }
                    free(chunk);
                }
            free(r.col[v]);
        }
        /* not a target, a sanity check: quantizing smooth simulator output pays */
        ck_assert_msg(total_out * 4 < total_in, "%s: %zu -> %zu bytes", netlists[k][0],
                      total_in, total_out);
    }
    remove_tmpdir();
}
END_TEST

static Suite *bounded_suite(void)
{
    Suite *s = suite_create("bounded");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 600);
    tcase_add_checked_fixture(tc, ctx_setup, ctx_teardown);
    tcase_add_test(tc, test_params);
    tcase_add_loop_test(tc, test_random_kinds, 0, NKINDS);
    tcase_add_test(tc, test_smooth_ratio);
    tcase_add_test(tc, test_near_bound);
    tcase_add_test(tc, test_nonfinite);
    tcase_add_test(tc, test_extremes);
    tcase_add_test(tc, test_complex_components);
    tcase_add_test(tc, test_partial_chunk);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_corrupt);
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_bitround);
    tcase_add_test(tc, test_hdf5_pipeline);
    tcase_add_test(tc, test_hdf5_write_chunk);
    tcase_add_test(tc, test_hdf5_big_endian_refused);
    tcase_add_test(tc, test_hdf5_bad_cd_values_refused);
    tcase_add_test(tc, test_real_ngspice);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return ngs_run_suite(bounded_suite());
}
