/*
 * test_spectrum_h5.c - spectra of vectors in ngscale HDF5 files (gpu/spectrum_h5.h).
 *
 * Files are written here with the project's own streaming writer (storage/h5writer.h),
 * so they follow the schema exactly: a run (or /job_NNNNNNNN groups) with an op plot
 * and transient plots. The transient signal is a non-uniformly sampled sine of known
 * amplitude with harmonics at set dBc (HD2 -60, HD3 -50: THD -49.586 dBc) plus seeded
 * white noise, so each metric has a closed-form value; every check states its
 * tolerance. Results are also compared with the engine run directly on the same
 * arrays, which pins the reading, trimming and writing to rounding.
 * Only the GPU case may pass without asserting (no CUDA device: it checks the error).
 */
#include <check.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/unit/ngs_check.h"
#include "gpu/spectrum.h"
#include "gpu/spectrum_h5.h"
#include "hooks/dispatch.h"
#include "storage/codec.h"
#include "storage/h5attr.h"
#include "storage/h5writer.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/ngs-spech5-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/f.h5", dir);
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

/* ---- signals -------------------------------------------------------------------------- */

static uint64_t rng_state;
static void rng_seed(uint64_t s) { rng_state = s; }
static double rng_uniform(void) /* (0, 1), xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 2685821657736338717ULL) >> 11) * (1.0 / 9007199254740992.0) + 0x1p-54;
}
static double rng_gauss(void)
{
    double u = rng_uniform(), v = rng_uniform();
    return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

typedef struct {
    double f0, amp, hd2_dbc, hd3_dbc, sigma; /* sigma: white noise added to v(out) */
    int periods, per_period;                 /* record length, mean points per period */
    uint64_t seed;
    int repeat_point;                        /* repeat one time point (as ngspice may) */
} sig;

#define F0 1000.0
#define HD2 -60.0
#define HD3 -50.0
#define SIGMA 1e-4
static const sig BASE = {F0, 1.0, HD2, HD3, SIGMA, 40, 64, 7, 0};

/* Columns: time, v(in), v(out), i(v1), v(a/b). */
enum { COLS = 5 };

typedef struct {
    size_t n;
    double *t, *out, *cur;
} series;

static series make_series(const sig *s)
{
    size_t n = (size_t)s->periods * (size_t)s->per_period + 1;
    series r = {n, malloc(n * sizeof(double)), malloc(n * sizeof(double)), malloc(n * sizeof(double))};
    double a2 = s->amp * pow(10, s->hd2_dbc / 20), a3 = s->amp * pow(10, s->hd3_dbc / 20);
    double h = 1.0 / (s->f0 * s->per_period);
    ck_assert_ptr_nonnull(r.t);
    ck_assert_ptr_nonnull(r.out);
    ck_assert_ptr_nonnull(r.cur);
    rng_seed(s->seed);
    for (size_t i = 0; i < n; i++) {
        double jitter = i && i + 1 < n ? 0.4 * (2 * rng_uniform() - 1) : 0;
        double t = ((double)i + jitter) * h, w = 2 * M_PI * s->f0 * t;
        r.t[i] = t;
        r.out[i] = s->amp * sin(w) + a2 * sin(2 * w + 0.3) + a3 * sin(3 * w + 1.1) + s->sigma * rng_gauss() +
                   0.2 * exp(-t * s->f0 * 2); /* start-up transient, gone before the analysed periods */
        r.cur[i] = -r.out[i] / 1000.0;
    }
    if (s->repeat_point) { /* t[k] repeated: point k+1 becomes a copy of k (time and value) */
        size_t k = n / 2;
        r.t[k + 1] = r.t[k];
        r.out[k + 1] = r.out[k];
        r.cur[k + 1] = r.cur[k];
    }
    return r;
}

static void free_series(series *r)
{
    free(r->t);
    free(r->out);
    free(r->cur);
}

static ngs_plot_desc *tran_desc(const char *name, int index)
{
    ngs_vector_desc v[COLS];
    memset(v, 0, sizeof v);
    v[0] = (ngs_vector_desc){"time", "time", 1, "time", "s", 0, 1, 0};
    v[1] = (ngs_vector_desc){"v(in)", "in", 3, "voltage", "V", 0, 0, 0};
    v[2] = (ngs_vector_desc){"v(out)", "out", 3, "voltage", "V", 0, 0, 0};
    v[3] = (ngs_vector_desc){"i(v1)", "v1#branch", 4, "current", "A", 0, 0, 0};
    v[4] = (ngs_vector_desc){"v(a/b)", "a/b", 3, "voltage", "V", 0, 0, 0};
    return ngs_plot_desc_new(name, "Transient Analysis", "tran", "test", "today", index, v, COLS);
}

/* All of a transient's rows; the plot stays open when end is 0 (a writer killed mid-plot). */
static void write_tran_rows(ngs_h5_writer *w, const char *name, int index, const sig *s, int end);

static void write_op_rows(ngs_h5_writer *w, int index, int end);

static void write_tran(ngs_h5_writer *w, const char *name, int index, const sig *s)
{
    write_tran_rows(w, name, index, s, 1);
}

static void write_tran_rows(ngs_h5_writer *w, const char *name, int index, const sig *s, int end)
{
    series r = make_series(s);
    ngs_plot_desc *d = tran_desc(name, index);
    double *rows = malloc(r.n * COLS * sizeof *rows);
    ck_assert_ptr_nonnull(rows);
    for (size_t i = 0; i < r.n; i++) {
        double *row = rows + i * COLS;
        row[0] = r.t[i];
        row[1] = s->amp * sin(2 * M_PI * s->f0 * r.t[i]);
        row[2] = r.out[i];
        row[3] = r.cur[i];
        row[4] = 0.5 * r.out[i];
    }
    ck_assert_int_eq(ngs_h5_plot_begin(w, d), NGS_OK);
    ngs_plot_desc_free(d);
    /* uneven batches, as the dispatcher delivers them */
    for (size_t i = 0; i < r.n;) {
        size_t k = 1 + i % 97;
        if (k > r.n - i) k = r.n - i;
        ck_assert_int_eq(ngs_h5_rows(w, rows + i * COLS, k), NGS_OK);
        i += k;
    }
    if (end) ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, NULL), NGS_OK);
    free(rows);
    free_series(&r);
}

static void write_op(ngs_h5_writer *w, int index)
{
    write_op_rows(w, index, 1);
}

static void write_op_rows(ngs_h5_writer *w, int index, int end)
{
    ngs_vector_desc v[2];
    double row[2] = {1.0, 0.5};
    memset(v, 0, sizeof v);
    v[0] = (ngs_vector_desc){"v(in)", "in", 3, "voltage", "V", 0, 0, 0};
    v[1] = (ngs_vector_desc){"v(out)", "out", 3, "voltage", "V", 0, 0, 0};
    ngs_plot_desc *d = ngs_plot_desc_new("op1", "Operating Point", "op", "test", "today", index, v, 2);
    ck_assert_int_eq(ngs_h5_plot_begin(w, d), NGS_OK);
    ngs_plot_desc_free(d);
    ck_assert_int_eq(ngs_h5_rows(w, row, 1), NGS_OK);
    if (end) ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, NULL), NGS_OK);
}

static ngs_h5_writer *open_writer(const char *p, ngs_codec codec, int swmr)
{
    ngs_h5_writer *w = NULL;
    ngs_h5_options o;
    char err[256];
    ngs_h5_options_init(&o);
    o.codec = codec;
    o.swmr = swmr;
    o.encoder_threads = 1;
    ck_assert_msg(ngs_h5_open(&w, p, &o, err, sizeof err) == NGS_OK, "%s", err);
    return w;
}

/* One run "run": op1, tran1 (BASE), tran2 (BASE at 2 kHz). */
static void write_single_file(const char *p, ngs_codec codec, const sig *s)
{
    ngs_h5_writer *w = open_writer(p, codec, 0);
    sig s2 = *s;
    s2.f0 = 2 * s->f0;
    s2.seed = 99;
    ck_assert_int_eq(ngs_h5_run_begin(w, "run"), NGS_OK);
    write_op(w, 0);
    write_tran(w, "tran1", 1, s);
    write_tran(w, "tran2", 2, &s2);
    ck_assert_int_eq(ngs_h5_run_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
}

/* ---- reading back ------------------------------------------------------------------------ */

static hid_t open_ro(const char *p)
{
    hid_t f;
    ngs_codec_register_zstd();
    f = H5Fopen(p, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    return f;
}

static double f64_attr(hid_t f, const char *obj, const char *name)
{
    double v = NAN;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "no attribute %s on %s", name, obj);
    ck_assert_int_ge(H5Aread(a, H5T_NATIVE_DOUBLE, &v), 0);
    H5Aclose(a);
    return v;
}

static long long i64_attr(hid_t f, const char *obj, const char *name)
{
    long long v = -1;
    hid_t a = H5Aopen_by_name(f, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert_msg(a >= 0, "no attribute %s on %s", name, obj);
    ck_assert_int_ge(H5Aread(a, H5T_NATIVE_LLONG, &v), 0);
    H5Aclose(a);
    return v;
}

static double *read_f64(hid_t f, const char *name, size_t *n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), s;
    hsize_t dims = 0;
    double *v;
    ck_assert_msg(d >= 0, "no dataset %s", name);
    s = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_ndims(s), 1);
    H5Sget_simple_extent_dims(s, &dims, NULL);
    v = malloc((dims ? dims : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Sclose(s);
    H5Dclose(d);
    *n = (size_t)dims;
    return v;
}

/* Read by field name, in an order of our own: checks the names, not the layout. */
typedef struct {
    double thd_db, fundamental_hz, snr_db, amplitude, sinad_db, sfdr_db, enob_bits, noise_floor_db,
        thd_percent;
    int64_t job;
    char run[256], vector[256];
} mrow;

static mrow *read_metrics(hid_t f, const char *name, size_t *n)
{
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT), s, t = H5Tcreate(H5T_COMPOUND, sizeof(mrow)), str = H5Tcopy(H5T_C_S1);
    hsize_t dims = 0;
    mrow *v;
    ck_assert_msg(d >= 0, "no dataset %s", name);
    H5Tset_size(str, 256);
    H5Tset_cset(str, H5T_CSET_UTF8);
#define F(x) H5Tinsert(t, #x, HOFFSET(mrow, x), H5T_NATIVE_DOUBLE)
    F(thd_db);
    F(fundamental_hz);
    F(snr_db);
    F(amplitude);
    F(sinad_db);
    F(sfdr_db);
    F(enob_bits);
    F(noise_floor_db);
    F(thd_percent);
#undef F
    H5Tinsert(t, "job", HOFFSET(mrow, job), H5T_NATIVE_INT64);
    H5Tinsert(t, "run", HOFFSET(mrow, run), str);
    H5Tinsert(t, "vector", HOFFSET(mrow, vector), str);
    s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, &dims, NULL);
    v = calloc(dims ? dims : 1, sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, v), 0);
    H5Sclose(s);
    H5Tclose(t);
    H5Tclose(str);
    H5Dclose(d);
    *n = (size_t)dims;
    return v;
}

static void free_metrics(mrow *v, size_t n)
{
    (void)n;
    free(v);
}

static int nlinks(hid_t f, const char *group)
{
    H5G_info_t gi;
    hid_t g = H5Gopen2(f, group, H5P_DEFAULT);
    ck_assert_msg(g >= 0, "no group %s", group);
    H5Gget_info(g, &gi);
    H5Gclose(g);
    return (int)gi.nlinks;
}

static int exists(hid_t f, const char *p)
{
    htri_t e;
    H5E_BEGIN_TRY { e = H5Lexists(f, p, H5P_DEFAULT); } H5E_END_TRY;
    return e > 0;
}

/* Runs the analysis; the table goes to a string (may be NULL). */
static int spectrum(const ngs_spectrum_file_options *o, char **table, char *err, size_t errlen)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&buf, &len);
    int rc;
    ck_assert_ptr_nonnull(mem);
    rc = ngs_spectrum_file(path, o, mem, err, errlen);
    fclose(mem);
    if (table) *table = buf;
    else free(buf);
    return rc;
}

static void base_options(ngs_spectrum_file_options *o, const char *vector)
{
    ngs_spectrum_file_options_init(o);
    o->vector = vector;
    o->fundamental = F0;
    o->periods = 30;
    o->window = "hann";
    o->backend = "cpu";
    o->threads = 2;
}

static const double THD_DB_EXPECTED = -49.58607314841775; /* 10 log10(1e-6 + 1e-5) */

/* Amplitude spectrum (1025 bins) of BASE's v(out) by the engine itself, on the whole
 * arrays: 30 periods of F0, cubic resampling, CPU. */
static double *engine_amplitude(ngs_window window, double *thd_db)
{
    series r = make_series(&BASE);
    ngs_spectrum_options so;
    ngs_spectrum_ctx *ctx;
    ngs_spectrum_metrics em;
    ngs_spectrum_out out = {0};
    double *amp = malloc(1025 * sizeof *amp);
    const double *tv[1] = {r.t}, *xv[1] = {r.out};
    size_t nv[1] = {r.n}, N, nb;
    ck_assert_ptr_nonnull(amp);
    ngs_spectrum_options_init(&so);
    so.backend = NGS_SPECTRUM_CPU;
    so.window = window;
    so.fundamental = F0;
    so.periods = 30;
    ck_assert_int_eq(ngs_spectrum_create(&ctx, &so), NGS_OK);
    ck_assert_int_eq(ngs_spectrum_size(ctx, tv, nv, 1, &N, &nb), NGS_OK);
    ck_assert_uint_eq(N, 2048);
    out.amplitude = amp;
    out.metrics = &em;
    ck_assert_int_eq(ngs_spectrum_batch(ctx, tv, xv, nv, 1, &out), NGS_OK);
    *thd_db = em.thd_db;
    ngs_spectrum_destroy(ctx);
    free_series(&r);
    return amp;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* Known tone, harmonics and noise: metrics from the file match the closed forms, and the
 * written spectrum equals the engine's on the same arrays (to 1e-9 of the peak). */
START_TEST(test_metrics_and_datasets_written_back)
{
    ngs_spectrum_file_options o;
    char err[512], *table = NULL;
    size_t n, nf, na, np, nh;
    write_single_file(path, NGS_CODEC_ZSTD, &BASE);
    base_options(&o, "v(out)");
    ck_assert_msg(spectrum(&o, &table, err, sizeof err) == NGS_OK, "%s", err);

    hid_t f = open_ro(path);
    const char *g = "run/spectrum/v(out)";
    mrow *m = read_metrics(f, "run/spectrum/v(out)/metrics", &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(m[0].run, "run");
    ck_assert_str_eq(m[0].vector, "v(out)");
    ck_assert_int_eq(m[0].job, -1);
    ck_assert_msg(fabs(m[0].fundamental_hz - F0) < 1e-9, "fund %.12g", m[0].fundamental_hz);
    ck_assert_msg(fabs(m[0].amplitude - 1.0) < 1e-4, "amplitude %.9g", m[0].amplitude); /* noise: 1e-4/sqrt(N/2) */
    ck_assert_msg(fabs(m[0].thd_db - THD_DB_EXPECTED) < 0.05, "THD %.4f dB", m[0].thd_db);
    ck_assert_msg(fabs(m[0].thd_percent - 100 * pow(10, THD_DB_EXPECTED / 20)) < 0.005, "THD %.5f %%",
                  m[0].thd_percent);
    ck_assert_msg(fabs(m[0].sfdr_db - 50.0) < 0.05, "SFDR %.4f", m[0].sfdr_db);
    /* SNR: tone power 0.5 over a white noise of variance SIGMA^2, which the resampler
     * smooths a little between samples: within 3 dB above 10 log10(0.5 / SIGMA^2) = 77 dB */
    double snr0 = 10 * log10(0.5 / (SIGMA * SIGMA));
    ck_assert_msg(m[0].snr_db > snr0 - 0.5 && m[0].snr_db < snr0 + 3, "SNR %.3f (%.3f)", m[0].snr_db, snr0);
    ck_assert_msg(fabs(m[0].sinad_db + 10 * log10(pow(10, m[0].thd_db / 10) + pow(10, -m[0].snr_db / 10))) < 1e-6,
                  "SINAD %.6f", m[0].sinad_db);
    ck_assert_msg(fabs(m[0].enob_bits - (m[0].sinad_db - 1.76) / 6.02) < 1e-9, "ENOB %.6f", m[0].enob_bits);
    ck_assert(isfinite(m[0].noise_floor_db));
    free_metrics(m, n);

    /* the per-harmonic levels */
    double *hd = read_f64(f, "run/spectrum/v(out)/harmonics_dbc", &nh);
    ck_assert_uint_eq(nh, 10);
    ck_assert(isnan(hd[0]) && isnan(hd[1]));
    ck_assert_msg(fabs(hd[2] - HD2) < 0.05, "HD2 %.4f", hd[2]);
    ck_assert_msg(fabs(hd[3] - HD3) < 0.05, "HD3 %.4f", hd[3]);
    ck_assert_msg(hd[4] < -90, "HD4 %.1f (only noise there)", hd[4]);
    free(hd);

    /* attributes */
    check_h5_str_attr(f, g, "window", "hann");
    check_h5_str_attr(f, g, "resampling", "cubic");
    check_h5_str_attr(f, g, "backend", "cpu");
    check_h5_str_attr(f, g, "vector", "v(out)");
    check_h5_str_attr(f, g, "plot", "tran1");
    check_h5_str_attr(f, g, "unit", "V");
    check_h5_str_attr(f, g, "psd_unit", "V^2/Hz");
    check_h5_str_attr(f, g, "fundamental_source", "given");
    ck_assert_int_eq(i64_attr(f, g, "periods"), 30);
    ck_assert_int_eq(i64_attr(f, g, "coherent"), 1);
    ck_assert_int_eq(i64_attr(f, g, "harmonics"), 9);
    ck_assert_int_eq(i64_attr(f, g, "dropped_points"), 0);
    long long N = i64_attr(f, g, "N");
    ck_assert_int_eq(N, 2048); /* 30 * 64 = 1920 input points in the record: the next power of 2 */
    double fs = f64_attr(f, g, "fs"), df = f64_attr(f, g, "df");
    ck_assert_msg(fabs(fs - 2048 * F0 / 30) < 1e-6, "fs %.9g", fs);
    ck_assert_msg(fabs(df - F0 / 30) < 1e-9, "df %.12g", df);
    ck_assert_msg(fabs(f64_attr(f, g, "fundamental") - F0) < 1e-9, "fundamental");

    /* datasets */
    double *fr = read_f64(f, "run/spectrum/v(out)/frequency", &nf);
    double *am = read_f64(f, "run/spectrum/v(out)/amplitude", &na);
    double *ps = read_f64(f, "run/spectrum/v(out)/psd", &np);
    ck_assert_uint_eq(nf, 1025);
    ck_assert_uint_eq(na, 1025);
    ck_assert_uint_eq(np, 1025);
    size_t peak = 1;
    for (size_t k = 0; k < nf; k++) {
        ck_assert_msg(fabs(fr[k] - (double)k * df) <= 1e-9 * fs, "frequency[%zu]", k);
        if (k && am[k] > am[peak]) peak = k;
        ck_assert(ps[k] >= 0);
    }
    ck_assert_uint_eq(peak, 30);
    ck_assert_msg(fabs(am[30] - 1.0) < 1e-4, "amplitude[30] %.9g", am[30]);
    ck_assert_msg(fabs(am[60] - pow(10, HD2 / 20)) < 2e-5, "amplitude[60] %.9g", am[60]);
    check_h5_str_attr(f, "run/spectrum/v(out)/amplitude", "unit", "V");
    check_h5_str_attr(f, "run/spectrum/v(out)/psd", "unit", "V^2/Hz");
    check_h5_str_attr(f, "run/spectrum/v(out)/frequency", "unit", "Hz");

    /* the engine on the very same arrays, whole records */
    {
        double thd, *eamp = engine_amplitude(NGS_WINDOW_HANN, &thd);
        for (size_t k = 0; k < 1025; k++)
            ck_assert_msg(fabs(eamp[k] - am[k]) < 1e-9, "bin %zu: file %.15g engine %.15g", k, am[k], eamp[k]);
        ck_assert_msg(fabs(thd - THD_DB_EXPECTED) < 0.05, "engine THD %.4f", thd);
        free(eamp);
    }
    free(fr);
    free(am);
    free(ps);

    /* the file-level table */
    m = read_metrics(f, "spectrum_metrics", &n);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(m[0].run, "run");
    ck_assert_msg(fabs(m[0].thd_db - THD_DB_EXPECTED) < 0.05, "table THD %.4f", m[0].thd_db);
    free_metrics(m, n);
    /* spectra use the run's codec (zstd here) */
    {
        hid_t d = H5Dopen2(f, "run/spectrum/v(out)/amplitude", H5P_DEFAULT), pl = H5Dget_create_plist(d);
        ck_assert_int_ge(H5Pget_filter_by_id2(pl, NGS_H5Z_FILTER_ZSTD, NULL, NULL, NULL, 0, NULL, NULL), 0);
        H5Pclose(pl);
        H5Dclose(d);
    }
    H5Fclose(f);

    /* the table printed: header with units, one row */
    ck_assert_ptr_nonnull(strstr(table, "fund [Hz]"));
    ck_assert_ptr_nonnull(strstr(table, "amp [V]"));
    ck_assert_ptr_nonnull(strstr(table, "THD [dB]"));
    ck_assert_ptr_nonnull(strstr(table, "SFDR [dBc]"));
    ck_assert_ptr_nonnull(strstr(table, "ENOB [bit]"));
    ck_assert_ptr_nonnull(strstr(table, "\nrun "));
    ck_assert_ptr_nonnull(strstr(table, "-49.5"));
    free(table);
}
END_TEST

/* With periods only the record's tail is read (plus spline context): the same spectrum
 * as the whole record gives. The rectangular window weighs the record's first points
 * fully, so a spline that lost its context there would show (the margin's effect is
 * below 2^-64 relative; 1e-12 of the peak here). */
START_TEST(test_tail_read_matches_whole_record)
{
    ngs_spectrum_file_options o;
    char err[512];
    size_t n;
    double thd, *eamp = engine_amplitude(NGS_WINDOW_RECTANGULAR, &thd);
    write_single_file(path, NGS_CODEC_ZSTD, &BASE);
    base_options(&o, "v(out)");
    o.window = "rect";
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    hid_t f = open_ro(path);
    double *am = read_f64(f, "run/spectrum/v(out)/amplitude", &n);
    ck_assert_uint_eq(n, 1025);
    /* 30 periods of 64 points + 70 of context + the one before the record */
    long long in = i64_attr(f, "run/spectrum/v(out)", "input_points");
    ck_assert_msg(in >= 1920 + 70 && in <= 1920 + 72, "input_points %lld", in);
    H5Fclose(f);
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(fabs(eamp[k] - am[k]) < 1e-12, "bin %zu: file %.17g engine %.17g", k, am[k], eamp[k]);
    free(am);
    free(eamp);
}
END_TEST

/* v(out), out, V(OUT) are one vector (one group, replaced); i(v1) and v1#branch another,
 * in amperes; '/' in a name is escaped as in the schema. */
START_TEST(test_vector_names)
{
    ngs_spectrum_file_options o;
    char err[512];
    const char *spell[] = {"v(out)", "out", "V(OUT)", " Out "};
    write_single_file(path, NGS_CODEC_DEFLATE, &BASE);
    for (size_t i = 0; i < 4; i++) {
        base_options(&o, spell[i]);
        o.window = i % 2 ? "blackman-harris" : "flattop";
        ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s: %s", spell[i], err);
    }
    hid_t f = open_ro(path);
    ck_assert_int_eq(nlinks(f, "run/spectrum"), 1);
    check_h5_str_attr(f, "run/spectrum/v(out)", "window", "blackman-harris"); /* the last one, " Out " */
    H5Fclose(f);

    const char *cur[] = {"i(v1)", "v1#branch", "I(V1)", "V1#BRANCH"};
    for (size_t i = 0; i < 4; i++) {
        base_options(&o, cur[i]);
        ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s: %s", cur[i], err);
    }
    base_options(&o, "a/b");
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "a/b: %s", err);

    f = open_ro(path);
    ck_assert_int_eq(nlinks(f, "run/spectrum"), 3);
    check_h5_str_attr(f, "run/spectrum/i(v1)", "unit", "A");
    check_h5_str_attr(f, "run/spectrum/i(v1)", "psd_unit", "A^2/Hz");
    check_h5_str_attr(f, "run/spectrum/v(a%2Fb)", "vector", "v(a/b)");
    size_t n;
    mrow *m = read_metrics(f, "run/spectrum/i(v1)/metrics", &n);
    ck_assert_msg(fabs(m[0].amplitude - 1e-3) < 1e-7, "i(v1) amplitude %.9g", m[0].amplitude);
    ck_assert_msg(fabs(m[0].thd_db - THD_DB_EXPECTED) < 0.05, "i(v1) THD %.4f", m[0].thd_db);
    free_metrics(m, n);
    m = read_metrics(f, "run/spectrum/v(a%2Fb)/metrics", &n);
    ck_assert_msg(fabs(m[0].amplitude - 0.5) < 1e-4, "v(a/b) amplitude %.9g", m[0].amplitude);
    free_metrics(m, n);
    m = read_metrics(f, "spectrum_metrics", &n);
    ck_assert_uint_eq(n, 3);
    free_metrics(m, n);
    /* deflate run: deflate spectra */
    hid_t d = H5Dopen2(f, "run/spectrum/i(v1)/psd", H5P_DEFAULT), pl = H5Dget_create_plist(d);
    ck_assert_int_ge(H5Pget_filter_by_id2(pl, H5Z_FILTER_DEFLATE, NULL, NULL, NULL, 0, NULL, NULL), 0);
    H5Pclose(pl);
    H5Dclose(d);
    H5Fclose(f);
}
END_TEST

/* A run stored with the lossy bounded codec (filter 52807) is read without a plugin
 * path (the file is written by a child process, so this one has registered nothing);
 * its spectra are stored losslessly (deflate), never with the lossy filter. */
START_TEST(test_lossy_run_read_spectra_lossless)
{
    ngs_spectrum_file_options o;
    char err[512];
    size_t n;
    int status;
    pid_t pid;
    unsetenv("HDF5_PLUGIN_PATH");
    ck_assert_int_ge(pid = fork(), 0);
    if (pid == 0) {
        write_single_file(path, NGS_CODEC_BOUNDED, &BASE);
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    {
        hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), d = H5Dopen2(f, "run/tran1/v(out)", H5P_DEFAULT);
        hid_t pl = H5Dget_create_plist(d);
        ck_assert_int_ge(H5Pget_filter_by_id2(pl, 52807, NULL, NULL, NULL, 0, NULL, NULL), 0);
        H5Pclose(pl);
        H5Dclose(d);
        H5Fclose(f);
    }
    base_options(&o, "v(out)");
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    hid_t f = open_ro(path);
    mrow *m = read_metrics(f, "run/spectrum/v(out)/metrics", &n);
    /* the default bound is far below the simulator's tolerances: the metrics do not move */
    ck_assert_msg(fabs(m[0].thd_db - THD_DB_EXPECTED) < 0.05, "THD %.4f", m[0].thd_db);
    free_metrics(m, n);
    hid_t d = H5Dopen2(f, "run/spectrum/v(out)/amplitude", H5P_DEFAULT), pl = H5Dget_create_plist(d);
    ck_assert_int_ge(H5Pget_filter_by_id2(pl, H5Z_FILTER_DEFLATE, NULL, NULL, NULL, 0, NULL, NULL), 0);
    ck_assert_int_eq(H5Pget_nfilters(pl), 2); /* shuffle + deflate */
    H5Pclose(pl);
    H5Dclose(d);
    H5Fclose(f);
}
END_TEST

/* The first transient plot by default (not op1, not tran2); --plot picks another. */
START_TEST(test_plot_selection)
{
    ngs_spectrum_file_options o;
    char err[512];
    size_t n;
    write_single_file(path, NGS_CODEC_ZSTD, &BASE);
    base_options(&o, "v(out)");
    o.fundamental = 0; /* found */
    o.periods = 0;
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    hid_t f = open_ro(path);
    check_h5_str_attr(f, "run/spectrum/v(out)", "plot", "tran1");
    check_h5_str_attr(f, "run/spectrum/v(out)", "fundamental_source", "found per run");
    ck_assert_int_eq(i64_attr(f, "run/spectrum/v(out)", "coherent"), 0);
    mrow *m = read_metrics(f, "run/spectrum/v(out)/metrics", &n);
    /* whole record, not coherent: the interpolated peak is close to F0 */
    ck_assert_msg(fabs(m[0].fundamental_hz - F0) < 1.0, "fund %.6f", m[0].fundamental_hz);
    free_metrics(m, n);
    H5Fclose(f);

    o.plot = "tran2";
    o.fundamental = 2 * F0;
    o.periods = 30;
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    f = open_ro(path);
    check_h5_str_attr(f, "run/spectrum/v(out)", "plot", "tran2");
    m = read_metrics(f, "run/spectrum/v(out)/metrics", &n);
    ck_assert_msg(fabs(m[0].fundamental_hz - 2 * F0) < 1e-9, "fund %.6f", m[0].fundamental_hz);
    ck_assert_msg(fabs(m[0].thd_db - THD_DB_EXPECTED) < 0.05, "THD %.4f", m[0].thd_db);
    free_metrics(m, n);
    H5Fclose(f);

    o.plot = "op1"; /* an op plot has no time scale */
    ck_assert_int_ne(spectrum(&o, NULL, err, sizeof err), NGS_OK);
    o.plot = "tran9";
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "tran9") != NULL, "%s", err);
}
END_TEST

/* A batch file: /job_NNNNNNNN groups (one failed early) and /summary. One batch gives
 * one row per analysable job, the failed one is skipped and listed; a named run is
 * analysed alone; periods without a fundamental find it first. */
static void write_batch_file(const char *p, int differ_f0)
{
    ngs_h5_writer *w = open_writer(p, NGS_CODEC_ZSTD, 0);
    char name[32];
    for (int i = 0; i < 5; i++) {
        sig s = BASE;
        s.amp = 0.5 + 0.25 * i;
        s.hd3_dbc = -40.0 - 5.0 * i;
        s.seed = 100 + (uint64_t)i;
        if (differ_f0) s.f0 = F0 * (1 + 0.1 * i);
        snprintf(name, sizeof name, "job_%08d", i);
        ck_assert_int_eq(ngs_h5_run_begin(w, name), NGS_OK);
        if (i == 3) { /* failed at once: a transient plot of one point */
            sig one = s;
            one.periods = 0;
            write_tran(w, "tran1", 0, &one);
            ck_assert_int_eq(ngs_h5_run_end(w, NGS_ERR_SIMULATION, "timestep too small"), NGS_OK);
            continue;
        }
        write_tran(w, "tran1", 0, &s);
        ck_assert_int_eq(ngs_h5_run_end(w, NGS_OK, NULL), NGS_OK);
    }
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
    /* /summary, as batch.c writes it (a dataset: never taken for a run) */
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    hid_t f = H5Fopen(p, H5F_ACC_RDWR, fapl);
    hsize_t five = 5;
    int64_t jobs[5] = {0, 1, 2, 3, 4};
    hid_t s = H5Screate_simple(1, &five, NULL);
    hid_t d = H5Dcreate2(f, "summary", H5T_NATIVE_INT64, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, jobs);
    H5Dclose(d);
    H5Sclose(s);
    H5Fclose(f);
    H5Pclose(fapl);
}

START_TEST(test_batch_file_one_row_per_job)
{
    ngs_spectrum_file_options o;
    char err[512], *table = NULL;
    size_t n;
    write_batch_file(path, 0);
    base_options(&o, "out");
    o.window = NULL; /* blackman-harris */
    o.resample = "linear";
    ck_assert_msg(spectrum(&o, &table, err, sizeof err) == NGS_OK, "%s", err);
    ck_assert_msg(strstr(table, "job_00000003  skipped:") != NULL, "%s", table);
    for (int i = 0; i < 5; i++) {
        char row[32];
        snprintf(row, sizeof row, "\njob_%08d ", i);
        ck_assert_msg(strstr(table, row) != NULL, "no row for job %d:\n%s", i, table);
    }
    free(table);

    hid_t f = open_ro(path);
    mrow *m = read_metrics(f, "spectrum_metrics", &n);
    ck_assert_uint_eq(n, 4);
    int jobs[4] = {0, 1, 2, 4};
    for (size_t k = 0; k < n; k++) {
        int i = jobs[k];
        double a = 0.5 + 0.25 * i, h3 = -40.0 - 5.0 * i;
        double thd = 10 * log10(pow(10, HD2 / 10) + pow(10, h3 / 10));
        ck_assert_int_eq(m[k].job, i);
        /* linear resampling at 64 points per period loses up to (2 pi / 64)^2 / 8 = 1.2e-3 */
        ck_assert_msg(fabs(m[k].amplitude - a) < 1.5e-3 * a, "job %d amplitude %.6f", i, m[k].amplitude);
        /* ... and 1.1 % of HD3's amplitude (0.1 dB): 0.2 dB */
        ck_assert_msg(fabs(m[k].thd_db - thd) < 0.2, "job %d THD %.4f (%.4f)", i, m[k].thd_db, thd);
    }
    free_metrics(m, n);
    ck_assert(!exists(f, "job_00000003/spectrum"));
    check_h5_str_attr(f, "job_00000000/spectrum/v(out)", "window", "blackman-harris");
    check_h5_str_attr(f, "job_00000000/spectrum/v(out)", "resampling", "linear");
    H5Fclose(f);

    /* a named run only: the others keep their results (window says which call wrote them) */
    const char *one[] = {"job_00000002"};
    base_options(&o, "v(out)");
    o.runs = one;
    o.nruns = 1;
    o.window = "kaiser:12";
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    f = open_ro(path);
    check_h5_str_attr(f, "job_00000002/spectrum/v(out)", "window", "kaiser");
    ck_assert(fabs(f64_attr(f, "job_00000002/spectrum/v(out)", "kaiser_beta") - 12) < 1e-12);
    check_h5_str_attr(f, "job_00000001/spectrum/v(out)", "window", "blackman-harris");
    m = read_metrics(f, "spectrum_metrics", &n);
    ck_assert_uint_eq(n, 4);
    free_metrics(m, n);
    H5Fclose(f);

    /* the failed job, named: an error that says why */
    const char *bad[] = {"/job_00000003"};
    o.runs = bad;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "job_00000003") && strstr(err, "cannot be analysed"), "%s", err);
    const char *none[] = {"job_00000042"};
    o.runs = none;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "job_00000042") && strstr(err, "job_00000000"), "%s", err);

    /* periods without a fundamental: found (one extra batch), agreed on, used */
    base_options(&o, "v(out)");
    o.fundamental = 0;
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    f = open_ro(path);
    check_h5_str_attr(f, "job_00000004/spectrum/v(out)", "fundamental_source", "detected");
    ck_assert_int_eq(i64_attr(f, "job_00000004/spectrum/v(out)", "periods"), 30);
    double fd = f64_attr(f, "job_00000004/spectrum/v(out)", "fundamental");
    ck_assert_msg(fabs(fd - F0) < 0.05, "detected %.6f", fd);
    m = read_metrics(f, "spectrum_metrics", &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_msg(fabs(m[3].thd_db - 10 * log10(pow(10, HD2 / 10) + pow(10, -60.0 / 10))) < 0.1, "THD %.4f",
                  m[3].thd_db);
    free_metrics(m, n);
    H5Fclose(f);
}
END_TEST

START_TEST(test_batch_detected_fundamentals_must_agree)
{
    ngs_spectrum_file_options o;
    char err[512];
    write_batch_file(path, 1);
    base_options(&o, "v(out)");
    o.fundamental = 0;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "differ") != NULL, "%s", err);
    /* without periods each job gets its own */
    o.periods = 0;
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    hid_t f = open_ro(path);
    size_t n;
    mrow *m = read_metrics(f, "spectrum_metrics", &n);
    ck_assert_uint_eq(n, 4);
    ck_assert_msg(fabs(m[2].fundamental_hz - 1.2 * F0) < 2.0, "job 2 fund %.4f", m[2].fundamental_hz);
    free_metrics(m, n);
    H5Fclose(f);
}
END_TEST

/* Re-running replaces the vector's results (one group, new attributes), and the space
 * of the old datasets is reused. What does grow: each call's variable-length string
 * attributes go to a new HDF5 global-heap collection (HDF5 does not reuse an older
 * session's collections), a few KiB per call, far less than the spectra (4 jobs x 3
 * datasets x 1025 bins x 8 bytes = 98 KiB, ~70 KiB compressed). */
START_TEST(test_rerun_replaces)
{
    ngs_spectrum_file_options o;
    char err[512];
    struct stat st;
    off_t prev = 0;
    write_batch_file(path, 0);
    for (int i = 0; i < 8; i++) {
        base_options(&o, "v(out)");
        o.harmonics = 3 + i;
        ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
        ck_assert_int_eq(stat(path, &st), 0);
        if (i > 1)
            ck_assert_msg(st.st_size - prev <= 12288, "call %d: the file grew by %lld bytes", i,
                          (long long)(st.st_size - prev));
        prev = st.st_size;
    }
    hid_t f = open_ro(path);
    ck_assert_int_eq(nlinks(f, "job_00000001/spectrum"), 1);
    ck_assert_int_eq(i64_attr(f, "job_00000001/spectrum/v(out)", "harmonics"), 10);
    size_t n;
    double *hd = read_f64(f, "job_00000001/spectrum/v(out)/harmonics_dbc", &n);
    ck_assert_uint_eq(n, 11);
    free(hd);
    mrow *m = read_metrics(f, "spectrum_metrics", &n);
    ck_assert_uint_eq(n, 4);
    free_metrics(m, n);
    H5Fclose(f);
}
END_TEST

/* Repeated time points (ngspice writes some) are dropped, not fatal. */
START_TEST(test_repeated_time_point)
{
    ngs_spectrum_file_options o;
    char err[512];
    sig s = BASE;
    s.repeat_point = 1;
    write_single_file(path, NGS_CODEC_NONE, &s);
    base_options(&o, "v(out)");
    o.periods = 36; /* the repeated point, mid-record, is inside */
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    hid_t f = open_ro(path);
    ck_assert_int_eq(i64_attr(f, "run/spectrum/v(out)", "dropped_points"), 1);
    ck_assert_int_eq(i64_attr(f, "run/spectrum/v(out)", "periods"), 36);
    size_t n;
    mrow *m = read_metrics(f, "run/spectrum/v(out)/metrics", &n);
    ck_assert_msg(fabs(m[0].thd_db - THD_DB_EXPECTED) < 0.1, "THD %.4f", m[0].thd_db);
    free_metrics(m, n);
    H5Fclose(f);
}
END_TEST

/* Every way of asking wrongly gets a code and a message that helps. */
START_TEST(test_errors)
{
    ngs_spectrum_file_options o;
    char err[1024];
    write_single_file(path, NGS_CODEC_ZSTD, &BASE);

    base_options(&o, "v(nope)");
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "v(nope)") && strstr(err, "v(in)") && strstr(err, "v(out)") &&
                      strstr(err, "i(v1)") && strstr(err, "v(a/b)"),
                  "%s", err);
    ck_assert_msg(strstr(err, "time,") == NULL, "the scale is not offered: %s", err);
    base_options(&o, "time");
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "scale") != NULL, "%s", err);
    const char *run[] = {"run"};
    o.runs = run;
    o.nruns = 1;
    base_options(&o, "v(nope)");
    o.runs = run;
    o.nruns = 1;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "v(nope)") && strstr(err, "v(out)"), "%s", err);

    base_options(&o, NULL);
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    base_options(&o, "v(out)");
    o.window = "triangle";
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "triangle") && strstr(err, "hann"), "%s", err);
    o.window = "hann:3";
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    o.window = "kaiser:x";
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    base_options(&o, "v(out)");
    o.resample = "sinc";
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    base_options(&o, "v(out)");
    o.backend = "tpu";
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    base_options(&o, "v(out)");
    o.harmonics = 33;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    base_options(&o, "v(out)");
    o.points = 3;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    base_options(&o, "v(out)");
    o.fundamental = -1;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    /* more periods than the record holds: the only run, so nothing can be analysed */
    base_options(&o, "v(out)");
    o.periods = 41;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "41 periods") != NULL, "%s", err);

    /* nothing was written by the failed calls */
    hid_t f = open_ro(path);
    ck_assert(!exists(f, "run/spectrum"));
    ck_assert(!exists(f, "spectrum_metrics"));
    H5Fclose(f);

    /* not a file, not HDF5, not ngscale */
    char other[160];
    snprintf(other, sizeof other, "%s/missing.h5", dir);
    base_options(&o, "v(out)");
    ck_assert_int_eq(ngs_spectrum_file(other, &o, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "no such file") != NULL, "%s", err);
    snprintf(other, sizeof other, "%s/text.h5", dir);
    FILE *t = fopen(other, "w");
    fputs("not hdf5\n", t);
    fclose(t);
    ck_assert_int_eq(ngs_spectrum_file(other, &o, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "not an HDF5 file") != NULL, "%s", err);
    snprintf(other, sizeof other, "%s/plain.h5", dir);
    hid_t pf = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(pf);
    ck_assert_int_eq(ngs_spectrum_file(other, &o, NULL, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_msg(strstr(err, "not written by ngscale") != NULL, "%s", err);
    ck_assert_int_eq(ngs_spectrum_file(NULL, &o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_spectrum_file(path, NULL, NULL, err, sizeof err), NGS_ERR_ARG);
    /* err may be NULL */
    base_options(&o, "v(nope)");
    ck_assert_int_eq(ngs_spectrum_file(path, &o, NULL, NULL, 0), NGS_ERR_ARG);
}
END_TEST

static int have_h5clear(void)
{
    if (system("h5clear --version >/dev/null 2>&1") == 0 || access("/usr/bin/h5clear", X_OK) == 0) return 1;
    fprintf(stderr, "test_killed_writer: h5clear not installed, recovery not checked\n");
    return 0;
}

static void h5clear(const char *flags)
{
    char cmd[300];
    snprintf(cmd, sizeof cmd, "h5clear %s %s", flags, path);
    ck_assert_int_eq(system(cmd), 0);
}

/* The spectrum of the killed file's tran1 is computed, twice, and matches BASE. */
static void check_spectrum_after_repair(ngs_spectrum_file_options *o)
{
    char err[1024];
    size_t n;
    mrow *m;
    hid_t f;
    ck_assert_msg(spectrum(o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    ck_assert_msg(spectrum(o, NULL, err, sizeof err) == NGS_OK, "again: %s", err);
    f = open_ro(path);
    check_h5_str_attr(f, "run", "status", "incomplete");
    m = read_metrics(f, "run/spectrum/v(out)/metrics", &n);
    ck_assert_msg(fabs(m[0].thd_db - THD_DB_EXPECTED) < 0.05, "THD %.4f", m[0].thd_db);
    free_metrics(m, n);
    H5Fclose(f);
}

/* Forks a writer that follows tran1 live, ends it (the file is reopened), and is
 * killed while it follows a second plot live. append: add the run to the file at path. */
static void killed_writer(int append)
{
    pid_t pid = fork();
    int status;
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        ngs_h5_writer *w = NULL;
        ngs_h5_options o;
        char err[256];
        ngs_h5_options_init(&o);
        o.encoder_threads = 1;
        o.append = append;
        if (ngs_h5_open(&w, path, &o, err, sizeof err) != NGS_OK || ngs_h5_run_begin(w, "run") != NGS_OK)
            _exit(2);
        write_tran_rows(w, "tran1", 0, &BASE, 0);
        ngs_h5_flush(w);
        if (ngs_h5_plot_end(w, NGS_OK, NULL) != NGS_OK) _exit(3);
        write_op_rows(w, 1, 0);
        ngs_h5_flush(w);
        _exit(0); /* killed: no close */
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* A file whose writer was killed keeps its "open for writing" flag: the error says to
 * run h5clear; after 'h5clear -s' the spectrum of what was flushed is computed (the
 * writer keeps no free-space records across sessions that could have gone stale). */
START_TEST(test_killed_writer)
{
    ngs_spectrum_file_options o;
    char err[1024];
    killed_writer(0);
    base_options(&o, "v(out)");
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "h5clear -s --increment") && strstr(err, path), "%s", err);
    if (!have_h5clear()) return;
    h5clear("-s");
    check_spectrum_after_repair(&o);
}
END_TEST

/* Files whose free space persists across sessions (ngscale's before it stopped doing
 * that; any HDF5 file made so): after a killed writer, 'h5clear -s' leaves stale
 * free-space records that make the first allocation fail and HDF5 crash at close.
 * Refused with the command that repairs it. */
START_TEST(test_killed_writer_stale_free_space)
{
    ngs_spectrum_file_options o;
    char err[1024];
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE), fapl = H5Pcreate(H5P_FILE_ACCESS), f;
    H5Pset_file_space_strategy(fcpl, H5F_FSPACE_STRATEGY_FSM_AGGR, 1, 1);
    H5Pset_link_creation_order(fcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    f = H5Fcreate(path, H5F_ACC_TRUNC, fcpl, fapl);
    ck_assert_int_ge(f, 0);
    ck_assert_int_eq(ngs_h5_attr_write_str(f, "ngscale_format", "ngscale-hdf5"), 0);
    H5Fclose(f);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    killed_writer(1);
    base_options(&o, "v(out)");
    if (!have_h5clear()) return;
    h5clear("-s");
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "free-space") && strstr(err, "h5clear -s --increment"), "%s", err);
}
END_TEST

/* A read-only file: a clear refusal, not an HDF5 trace. */
START_TEST(test_read_only_file)
{
    ngs_spectrum_file_options o;
    char err[1024];
    write_single_file(path, NGS_CODEC_ZSTD, &BASE);
    ck_assert_int_eq(chmod(path, 0444), 0);
    if (access(path, W_OK) == 0) { /* root ignores the mode */
        fprintf(stderr, "test_read_only_file: running as root, not checked\n");
        return;
    }
    base_options(&o, "v(out)");
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "read-only") != NULL, "%s", err);
}
END_TEST

/* A stop asked for (a signal, in the CLI) before writing: NGS_ERR_INTERRUPTED and the
 * file as it was; without it the same call writes. */
START_TEST(test_stop_before_writing_leaves_the_file)
{
    static volatile sig_atomic_t stop = 1;
    ngs_spectrum_file_options o;
    char err[1024];
    hid_t f;
    write_single_file(path, NGS_CODEC_ZSTD, &BASE);
    base_options(&o, "v(out)");
    o.stop = &stop;
    ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_INTERRUPTED);
    ck_assert_msg(strstr(err, "unchanged") != NULL, "%s", err);
    f = open_ro(path);
    ck_assert_int_eq(H5Lexists(f, "run/spectrum", H5P_DEFAULT), 0);
    H5Fclose(f);
    stop = 0;
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    f = open_ro(path);
    ck_assert_int_gt(H5Lexists(f, "run/spectrum", H5P_DEFAULT), 0);
    H5Fclose(f);
}
END_TEST

/* backend "gpu": results equal to the CPU's with a device; without one a clear
 * NGS_ERR_STATE (this machine has none: the only branch that may not compare). */
START_TEST(test_gpu_backend_or_clear_error)
{
    ngs_spectrum_file_options o;
    char err[1024], why[256];
    size_t n;
    write_single_file(path, NGS_CODEC_ZSTD, &BASE);
    base_options(&o, "v(out)");
    o.backend = "gpu";
    if (!ngs_spectrum_gpu_probe(why, sizeof why)) {
        ck_assert_int_eq(spectrum(&o, NULL, err, sizeof err), NGS_ERR_STATE);
        ck_assert_msg(strstr(err, "gpu") && strstr(err, "CUDA"), "%s", err);
        fprintf(stderr, "test_gpu_backend_or_clear_error: SKIP GPU comparison (%s)\n", why);
        /* auto falls back to the CPU */
        o.backend = "auto";
        ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
        hid_t f = open_ro(path);
        check_h5_str_attr(f, "run/spectrum/v(out)", "backend", "cpu");
        H5Fclose(f);
        return;
    }
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    hid_t f = open_ro(path);
    check_h5_str_attr(f, "run/spectrum/v(out)", "backend", "gpu");
    double *g = read_f64(f, "run/spectrum/v(out)/amplitude", &n);
    H5Fclose(f);
    o.backend = "cpu";
    ck_assert_msg(spectrum(&o, NULL, err, sizeof err) == NGS_OK, "%s", err);
    f = open_ro(path);
    double *c = read_f64(f, "run/spectrum/v(out)/amplitude", &n);
    H5Fclose(f);
    for (size_t k = 0; k < n; k++) ck_assert_msg(fabs(g[k] - c[k]) < 1e-12, "bin %zu", k);
    free(g);
    free(c);
}
END_TEST

START_TEST(test_option_parsers)
{
    int w;
    double beta = 0;
    ck_assert_int_eq(ngs_spectrum_parse_window("Hann", &w, &beta), 0);
    ck_assert_int_eq(w, NGS_WINDOW_HANN);
    ck_assert_int_eq(ngs_spectrum_parse_window("rect", &w, &beta), 0);
    ck_assert_int_eq(w, NGS_WINDOW_RECTANGULAR);
    ck_assert_int_eq(ngs_spectrum_parse_window("flattop", &w, &beta), 0);
    ck_assert_int_eq(w, NGS_WINDOW_FLATTOP);
    ck_assert_int_eq(ngs_spectrum_parse_window("blackman-harris", &w, &beta), 0);
    ck_assert_int_eq(w, NGS_WINDOW_BLACKMAN_HARRIS);
    ck_assert_int_eq(ngs_spectrum_parse_window("blackman", &w, &beta), 0);
    ck_assert_int_eq(w, NGS_WINDOW_BLACKMAN);
    ck_assert_int_eq(ngs_spectrum_parse_window("hamming", &w, &beta), 0);
    ck_assert_int_eq(w, NGS_WINDOW_HAMMING);
    ck_assert_int_eq(ngs_spectrum_parse_window("kaiser", &w, &beta), 0);
    ck_assert(w == NGS_WINDOW_KAISER && beta == 8.6);
    ck_assert_int_eq(ngs_spectrum_parse_window("kaiser:14.5", &w, &beta), 0);
    ck_assert(beta == 14.5);
    ck_assert_int_eq(ngs_spectrum_parse_window("kaiser:101", &w, &beta), -1);
    ck_assert_int_eq(ngs_spectrum_parse_window("kaiser:", &w, &beta), -1);
    ck_assert_int_eq(ngs_spectrum_parse_window("", &w, &beta), -1);
    ck_assert_int_eq(ngs_spectrum_parse_window(NULL, &w, &beta), -1);
    ck_assert_int_eq(ngs_spectrum_parse_resample("linear"), NGS_RESAMPLE_LINEAR);
    ck_assert_int_eq(ngs_spectrum_parse_resample("CUBIC"), NGS_RESAMPLE_CUBIC);
    ck_assert_int_eq(ngs_spectrum_parse_resample("nearest"), -1);
    ck_assert_int_eq(ngs_spectrum_parse_backend("auto"), NGS_SPECTRUM_AUTO);
    ck_assert_int_eq(ngs_spectrum_parse_backend("cpu"), NGS_SPECTRUM_CPU);
    ck_assert_int_eq(ngs_spectrum_parse_backend("gpu"), NGS_SPECTRUM_GPU);
    ck_assert_int_eq(ngs_spectrum_parse_backend(""), -1);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("spectrum_h5");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_metrics_and_datasets_written_back);
    tcase_add_test(tc, test_tail_read_matches_whole_record);
    tcase_add_test(tc, test_vector_names);
    tcase_add_test(tc, test_lossy_run_read_spectra_lossless);
    tcase_add_test(tc, test_plot_selection);
    tcase_add_test(tc, test_batch_file_one_row_per_job);
    tcase_add_test(tc, test_batch_detected_fundamentals_must_agree);
    tcase_add_test(tc, test_rerun_replaces);
    tcase_add_test(tc, test_repeated_time_point);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_killed_writer);
    tcase_add_test(tc, test_killed_writer_stale_free_space);
    tcase_add_test(tc, test_read_only_file);
    tcase_add_test(tc, test_stop_before_writing_leaves_the_file);
    tcase_add_test(tc, test_gpu_backend_or_clear_error);
    tcase_add_test(tc, test_option_parsers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return ngs_run_suite(suite()); }
