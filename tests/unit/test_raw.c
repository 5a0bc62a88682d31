/*
 * test_raw.c - RAW reader and writer against files the real ngspice writes.
 *
 * Each test makes its own temporary directory, runs `ngspice -b -r` there on small
 * netlists (HOME pointed at that directory so no user .spiceinit changes the output),
 * and checks what the reader returns: binary against ASCII output of the same netlist,
 * byte-identical write-back, cut and unfinished files, corrupt headers (exact byte
 * offsets in the messages), LTspice-style UTF-16/float32 files built from known values,
 * and the writer on its own.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <ftw.h>
#include <locale.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/raw.h"
#include "tests/unit/ngs_check.h"

/* ---- helpers ---------------------------------------------------------------------- */


/* Runs ngspice -b -r on netlist text; returns the RAW path in out. */
static void run_ngspice_rc(const tmpdir *t, const char *name, const char *netlist, int ascii,
                           char *out, size_t outlen, int may_fail)
{
    ck_assert_msg(system("command -v ngspice >/dev/null 2>&1") == 0,
                  "ngspice is not installed (apt-get install ngspice)");
    char cir[512], cmd[2048];
    snprintf(cir, sizeof cir, "%s/%s.cir", t->dir, name);
    write_file(cir, netlist, strlen(netlist));
    snprintf(out, outlen, "%s/%s.raw", t->dir, name);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && HOME='%s' %s ngspice -b -r '%s.raw' '%s.cir' >'%s.log' 2>&1",
             t->dir, t->dir, ascii ? "SPICE_ASCIIRAWFILE=1" : "", name, name, name);
    int rc = system(cmd);
    ck_assert_msg(rc == 0 || may_fail, "ngspice failed (%d): see %s/%s.log", rc, t->dir, name);
    struct stat st;
    ck_assert_msg(stat(out, &st) == 0 && st.st_size > 0, "ngspice wrote no %s", out);
}

static void run_ngspice(const tmpdir *t, const char *name, const char *netlist, int ascii,
                        char *out, size_t outlen)
{
    run_ngspice_rc(t, name, netlist, ascii, out, outlen, 0);
}

static const char *MULTI =
    "multi analysis test\n"
    "V1 in 0 DC 1 AC 1 SIN(0 1 1k)\n"
    "R1 in out 1k\n"
    "C1 out 0 1u\n"
    "D1 out 0 dmod\n"
    ".model dmod D\n"
    ".tran 0.1m 1m\n"
    ".ac dec 5 1 1meg\n"
    ".op\n"
    ".dc V1 0 1 0.1\n"
    ".noise v(out) V1 dec 2 1 1k\n"
    ".end\n";

static const char *TRAN =
    "tran only\n"
    "V1 in 0 PULSE(0 1 0 1u 1u 0.2m 0.5m)\n"
    "R1 in out 1k\n"
    "C1 out 0 100n\n"
    "R2 out 0 10k\n"
    ".tran 20n 1m\n"
    ".end\n";

static ngs_raw_reader *open_ok(const char *path)
{
    char err[512] = "";
    ngs_raw_reader *r = NULL;
    int rc = ngs_raw_open(&r, path, err, sizeof err);
    ck_assert_msg(rc == NGS_OK, "open %s: %d %s", path, rc, err);
    ck_assert_ptr_nonnull(r);
    return r;
}

static const ngs_raw_plot *plot_ok(ngs_raw_reader *r, size_t i)
{
    const ngs_raw_plot *p = NULL;
    int rc = ngs_raw_plot_info(r, i, &p);
    ck_assert_msg(rc == NGS_OK, "plot %zu: %d %s", i, rc, ngs_raw_last_error(r));
    return p;
}

static double *rows_ok(ngs_raw_reader *r, size_t i, const ngs_raw_plot *p)
{
    size_t n = (size_t)p->npoints * (size_t)p->row_doubles;
    double *rows = malloc((n ? n : 1) * sizeof *rows);
    ck_assert_ptr_nonnull(rows);
    int rc = ngs_raw_read_rows(r, i, 0, (size_t)p->npoints, rows);
    ck_assert_msg(rc == NGS_OK, "read_rows %zu: %d %s", i, rc, ngs_raw_last_error(r));
    return rows;
}

static int close_rel(double a, double b, double tol)
{
    if (a == b)
        return 1;
    double m = fmax(fabs(a), fabs(b));
    return fabs(a - b) <= tol * m || fabs(a - b) < 1e-300;
}

/* Writes every plot of r to path in the given encoding (-1: each plot's own). */
static void write_back(ngs_raw_reader *r, const char *path, int enc, size_t chunk)
{
    char err[512] = "";
    ngs_raw_writer *w = NULL;
    ck_assert_msg(ngs_raw_writer_open(&w, path, 0, err, sizeof err) == NGS_OK, "%s", err);
    for (size_t i = 0; i < ngs_raw_nplots(r); i++) {
        const ngs_raw_plot *p = plot_ok(r, i);
        double *rows = rows_ok(r, i, p);
        ngs_raw_encoding e = enc < 0 || p->encoding == NGS_RAW_NODATA ? p->encoding
                                                                      : (ngs_raw_encoding)enc;
        ck_assert_int_eq(ngs_raw_writer_begin_plot(w, p, e), NGS_OK);
        for (size_t k = 0; k < p->npoints; k += chunk) {
            size_t n = p->npoints - k < chunk ? (size_t)(p->npoints - k) : chunk;
            ck_assert_int_eq(ngs_raw_writer_write_rows(w, rows + k * (size_t)p->row_doubles, n),
                             NGS_OK);
        }
        ck_assert_int_eq(ngs_raw_writer_end_plot(w), NGS_OK);
        free(rows);
    }
    ck_assert_int_eq(ngs_raw_writer_close(w), NGS_OK);
}

static void assert_same_file(const char *a, const char *b)
{
    size_t na, nb;
    unsigned char *da = read_file(a, &na), *db = read_file(b, &nb);
    size_t i = 0;
    while (i < na && i < nb && da[i] == db[i])
        i++;
    ck_assert_msg(na == nb && i == na, "%s and %s differ at byte %zu (sizes %zu, %zu)", a, b,
                  i, na, nb);
    free(da);
    free(db);
}

/* ---- ngspice files ---------------------------------------------------------------- */

START_TEST(test_ngspice_multi_plot)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512];
    run_ngspice(&t, "multi", MULTI, 0, raw, sizeof raw);
    ngs_raw_reader *r = open_ok(raw);
    static const char *names[] = {"AC Analysis", "DC transfer characteristic",
                                  "Operating Point", "Transient Analysis",
                                  "Noise Spectral Density Curves", "Integrated Noise"};
    ck_assert_uint_eq(ngs_raw_nplots(r), 6);
    ck_assert_int_eq(ngs_raw_info(r)->header_truncated, 0);
    ck_assert_uint_eq(ngs_raw_info(r)->trailing_bytes, 0);
    for (size_t i = 0; i < 6; i++) {
        const ngs_raw_plot *p = plot_ok(r, i);
        ck_assert_str_eq(p->plotname, names[i]);
        ck_assert_str_eq(p->title, "multi analysis test");
        ck_assert_int_eq(p->encoding, NGS_RAW_BINARY);
        ck_assert_int_eq(p->dialect, NGS_RAW_DIALECT_NGSPICE);
        ck_assert_uint_eq(p->npoints, p->npoints_declared);
        ck_assert_int_eq(p->truncated, 0);
        ck_assert_int_eq(p->in_progress, 0);
        ck_assert_uint_gt(p->npoints, 0);
    }
    /* AC: complex, frequency with grid=3, 5 points per decade over 6 decades. */
    const ngs_raw_plot *ac = plot_ok(r, 0);
    ck_assert_int_eq(ac->is_complex, 1);
    ck_assert_str_eq(ac->flags, "complex");
    ck_assert_int_eq(ac->nvars, 4);
    ck_assert_str_eq(ac->vars[0].name, "frequency");
    ck_assert_str_eq(ac->vars[0].type, "frequency");
    ck_assert_str_eq(ac->vars[0].params, "grid=3");
    ck_assert_str_eq(ac->vars[2].name, "v(out)");
    ck_assert_str_eq(ac->vars[3].type, "current");
    ck_assert_int_eq(ac->row_doubles, 8);
    ck_assert_uint_eq(ac->npoints, 31);
    ck_assert_int_eq(ngs_raw_find_var(ac, "V(OUT)"), 2);
    ck_assert_int_eq(ngs_raw_find_var(ac, "nothing"), -1);
    double f[62], vin[62];
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 0, 0, 31, f), NGS_OK);
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 1, 0, 31, vin), NGS_OK);
    for (int k = 0; k < 31; k++) {
        ck_assert_msg(close_rel(f[2 * k], pow(10, k / 5.0), 1e-9), "f[%d] = %g", k, f[2 * k]);
        ck_assert(close_rel(vin[2 * k], 1.0, 1e-12) && vin[2 * k + 1] == 0.0);
    }
    /* OP: no scale; v(in) = 1 V. */
    const ngs_raw_plot *op = plot_ok(r, 2);
    double v;
    ck_assert_str_eq(op->vars[0].name, "v(in)");
    ck_assert_int_eq(ngs_raw_read_vector(r, 2, 0, 0, 1, &v), NGS_OK);
    ck_assert(close_rel(v, 1.0, 1e-12));
    /* DC: 11 sweep points 0 .. 1 V. */
    const ngs_raw_plot *dc = plot_ok(r, 1);
    ck_assert_uint_eq(dc->npoints, 11);
    double sw[11];
    ck_assert_int_eq(ngs_raw_read_vector(r, 1, 0, 0, 11, sw), NGS_OK);
    for (int k = 0; k < 11; k++)
        ck_assert(fabs(sw[k] - 0.1 * k) < 1e-12);
    /* TRAN: time starts at 0, increases, ends at 1 ms. */
    const ngs_raw_plot *tr = plot_ok(r, 3);
    ck_assert_str_eq(tr->vars[0].name, "time");
    ck_assert_str_eq(tr->vars[0].type, "time");
    ck_assert_str_eq(tr->vars[0].params, "");
    double *rows = rows_ok(r, 3, tr);
    ck_assert(rows[0] == 0.0);
    for (size_t k = 1; k < tr->npoints; k++)
        ck_assert(rows[k * 4] > rows[(k - 1) * 4]);
    ck_assert(close_rel(rows[(tr->npoints - 1) * 4], 1e-3, 1e-9));
    free(rows);
    /* Noise: densities are positive. */
    const ngs_raw_plot *nz = plot_ok(r, 4);
    ck_assert_str_eq(nz->vars[1].name, "onoise_spectrum");
    ck_assert_str_eq(nz->vars[1].type, "voltage-density");
    double on[7];
    ck_assert_int_eq(ngs_raw_read_vector(r, 4, 1, 0, 7, on), NGS_OK);
    for (int k = 0; k < 7; k++)
        ck_assert(on[k] > 0 && on[k] < 1e-6);
    /* Header lines are kept in order with their values. */
    ck_assert_uint_eq(tr->nlines, 6);
    ck_assert_str_eq(tr->lines[0].key, "Title");
    ck_assert_str_eq(tr->lines[4].key, "No. Variables");
    ck_assert_str_eq(tr->lines[5].key, "No. Points");
    ck_assert_uint_eq(strlen(tr->lines[5].value), 8); /* ngspice pads the count to 8 */
    ck_assert_int_eq(atoi(tr->lines[5].value), (int)tr->npoints);
    ngs_raw_close(r);
    tmp_free(&t);
}
END_TEST

/* Binary and ASCII output of the same netlist must hold the same values. */
START_TEST(test_binary_matches_ascii)
{
    tmpdir t;
    tmp_make(&t);
    char rawb[512], rawa[512];
    run_ngspice(&t, "bin", MULTI, 0, rawb, sizeof rawb);
    run_ngspice(&t, "asc", MULTI, 1, rawa, sizeof rawa);
    ngs_raw_reader *rb = open_ok(rawb), *ra = open_ok(rawa);
    ck_assert_uint_eq(ngs_raw_nplots(rb), ngs_raw_nplots(ra));
    for (size_t i = 0; i < ngs_raw_nplots(rb); i++) {
        const ngs_raw_plot *pb = plot_ok(rb, i), *pa = plot_ok(ra, i);
        ck_assert_int_eq(pa->encoding, NGS_RAW_ASCII);
        ck_assert_str_eq(pa->plotname, pb->plotname);
        ck_assert_int_eq(pa->nvars, pb->nvars);
        ck_assert_uint_eq(pa->npoints, pb->npoints);
        ck_assert_int_eq(pa->row_doubles, pb->row_doubles);
        double *xb = rows_ok(rb, i, pb), *xa = rows_ok(ra, i, pa);
        for (size_t k = 0; k < pb->npoints; k++)
            for (int c = 0; c < pb->row_doubles; c++) {
                if (pb->is_complex && c == 1)
                    continue; /* ngspice leaves the scale's imaginary part uninitialised */
                double a = xa[k * (size_t)pa->row_doubles + (size_t)c];
                double b = xb[k * (size_t)pb->row_doubles + (size_t)c];
                ck_assert_msg(close_rel(a, b, 2e-15), "plot %zu point %zu col %d: %.17g vs %.17g",
                              i, k, c, a, b);
            }
        /* Vector reads in odd chunks agree with the rows, for both encodings. */
        for (int v = 0; v < pb->nvars; v++) {
            int w = pb->vars[v].is_complex ? 2 : 1;
            double *vb = malloc(sizeof(double) * 2 * (pb->npoints + 1));
            double *va = malloc(sizeof(double) * 2 * (pb->npoints + 1));
            for (size_t k = 0; k < pb->npoints; k += 7) {
                size_t n = pb->npoints - k < 7 ? (size_t)(pb->npoints - k) : 7;
                ck_assert_int_eq(ngs_raw_read_vector(rb, i, v, k, n, vb + k * (size_t)w), NGS_OK);
                ck_assert_int_eq(ngs_raw_read_vector(ra, i, v, k, n, va + k * (size_t)w), NGS_OK);
            }
            for (size_t k = 0; k < pb->npoints; k++)
                for (int c = 0; c < w; c++) {
                    double row = xb[k * (size_t)pb->row_doubles + (size_t)pb->vars[v].column + (size_t)c];
                    ck_assert(vb[k * (size_t)w + (size_t)c] == row ||
                              (isnan(row) && isnan(vb[k * (size_t)w + (size_t)c])));
                    if (!(pb->is_complex && v == 0 && c == 1))
                        ck_assert(close_rel(va[k * (size_t)w + (size_t)c], row, 2e-15));
                }
            free(vb);
            free(va);
        }
        free(xb);
        free(xa);
    }
    ngs_raw_close(rb);
    ngs_raw_close(ra);
    tmp_free(&t);
}
END_TEST

/* Read every plot of ngspice's file and write it back: same bytes. */
START_TEST(test_roundtrip_identical)
{
    tmpdir t;
    tmp_make(&t);
    char rawb[512], rawa[512], rawt[512], out[512];
    run_ngspice(&t, "bin", MULTI, 0, rawb, sizeof rawb);
    run_ngspice(&t, "asc", MULTI, 1, rawa, sizeof rawa);
    run_ngspice(&t, "tran", TRAN, 0, rawt, sizeof rawt);
    static const size_t chunks[] = {1, 3, 1000000};
    for (int c = 0; c < 3; c++) {
        ngs_raw_reader *r = open_ok(rawb);
        path_in(&t, "out_b.raw", out, sizeof out);
        write_back(r, out, -1, chunks[c]);
        ngs_raw_close(r);
        assert_same_file(rawb, out);

        r = open_ok(rawa);
        path_in(&t, "out_a.raw", out, sizeof out);
        write_back(r, out, -1, chunks[c]);
        ngs_raw_close(r);
        assert_same_file(rawa, out);
    }
    /* A larger plot (data beyond the writer's 1 MiB buffer: count patched in the file). */
    ngs_raw_reader *r = open_ok(rawt);
    const ngs_raw_plot *p = plot_ok(r, 0);
    ck_assert_uint_gt(p->data_bytes, 1u << 20);
    path_in(&t, "out_t.raw", out, sizeof out);
    write_back(r, out, -1, 4096);
    ngs_raw_close(r);
    assert_same_file(rawt, out);
    /* binary -> ASCII -> binary: same header bytes, values to ngspice's ASCII precision
     * (%.15e, 16 significant digits). */
    r = open_ok(rawt);
    char out2[512];
    path_in(&t, "t_ascii.raw", out2, sizeof out2);
    write_back(r, out2, NGS_RAW_ASCII, 999);
    p = plot_ok(r, 0);
    double *orig = rows_ok(r, 0, p);
    uint64_t hdr = p->data_offset, np = p->npoints;
    ngs_raw_close(r);
    r = open_ok(out2);
    path_in(&t, "t_back.raw", out, sizeof out);
    write_back(r, out, NGS_RAW_BINARY, 100000);
    ngs_raw_close(r);
    r = open_ok(out);
    p = plot_ok(r, 0);
    ck_assert_uint_eq(p->npoints, np);
    double *back = rows_ok(r, 0, p);
    for (size_t k = 0; k < np * 4; k++)
        ck_assert_msg(close_rel(back[k], orig[k], 6e-16), "value %zu: %.17g vs %.17g", k,
                      back[k], orig[k]);
    ngs_raw_close(r);
    size_t n1, n2;
    unsigned char *d1 = read_file(rawt, &n1), *d2 = read_file(out, &n2);
    ck_assert_uint_eq(n1, n2);
    ck_assert_int_eq(memcmp(d1, d2, (size_t)hdr), 0);
    free(d1);
    free(d2);
    free(orig);
    free(back);
    tmp_free(&t);
}
END_TEST

/* Files from ngspice's `write` command (rawfile.c formats differently from -b -r), and
 * analyses that stopped before their first point, also come back byte for byte. */
START_TEST(test_roundtrip_write_command_and_failed)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], out[512], cir[512], cmd[1024];
    const char *ctl =
        "write command\n"
        "V1 in 0 DC 1 AC 1\n"
        "R1 in out 1k\n"
        "C1 out 0 1u\n"
        ".control\n"
        "ac dec 4 1 1k\n"
        "write wr_ac.raw\n"
        "write wr_bin.raw\n"
        "tran 10u 1m\n"
        "write wr_bin.raw all\n" /* the last write wins: tran */
        "set filetype=ascii\n"
        "write wr_asc.raw\n"
        "op\n"
        "set appendwrite\n"
        "write wr_asc.raw\n"
        ".endc\n"
        ".end\n";
    path_in(&t, "ctl.cir", cir, sizeof cir);
    write_file(cir, ctl, strlen(ctl));
    snprintf(cmd, sizeof cmd, "cd '%s' && HOME='%s' ngspice -b ctl.cir >ctl.log 2>&1", t.dir,
             t.dir);
    /* ngspice -b exits with 1 here ("no simulations run": no .print), after the writes. */
    ck_assert_int_ne(system(cmd), -1);
    static const char *names[] = {"wr_bin.raw", "wr_asc.raw", "wr_ac.raw"};
    for (int i = 0; i < 3; i++) {
        path_in(&t, names[i], raw, sizeof raw);
        ngs_raw_reader *r = open_ok(raw);
        ck_assert_uint_eq(ngs_raw_nplots(r), i == 1 ? 2u : 1u);
        const ngs_raw_plot *p = plot_ok(r, 0);
        ck_assert_int_eq(p->style, NGS_RAW_STYLE_WRITE);
        ck_assert_int_eq(p->encoding, i == 1 ? NGS_RAW_ASCII : NGS_RAW_BINARY);
        if (i == 2) /* the write command puts " grid=3" after a blank, not a tab */
            ck_assert_str_eq(p->vars[0].params, "grid=3");
        ck_assert_uint_gt(p->npoints, 10);
        path_in(&t, "copy.raw", out, sizeof out);
        write_back(r, out, -1, 5);
        ngs_raw_close(r);
        assert_same_file(raw, out);
    }
    /* Two analyses that cannot start (two sources fight over one node): ngspice leaves
     * each header up to "Variables:", the last one at the end of the file. */
    run_ngspice_rc(&t, "fail", "cannot start\nV1 a 0 1\nV2 a 0 2\nR1 a 0 1k\n"
                               ".tran 1n 1u\n.dc V1 0 1 0.5\n.end\n", 0, raw, sizeof raw, 1);
    ngs_raw_reader *r = open_ok(raw);
    ck_assert_uint_eq(ngs_raw_nplots(r), 2);
    for (size_t i = 0; i < 2; i++) {
        const ngs_raw_plot *p = plot_ok(r, i);
        ck_assert_int_eq(p->encoding, NGS_RAW_NODATA);
        ck_assert_int_eq(p->nvars, 0);
        ck_assert_uint_eq(p->npoints, 0);
    }
    ck_assert_str_eq(plot_ok(r, 1)->plotname, "Transient Analysis");
    ck_assert_int_eq(ngs_raw_info(r)->header_truncated, 0);
    path_in(&t, "copy.raw", out, sizeof out);
    write_back(r, out, -1, 5);
    ngs_raw_close(r);
    assert_same_file(raw, out);
    tmp_free(&t);
}
END_TEST

/* Cut in the middle of the data of the last plot: the complete points are read. */
START_TEST(test_truncated_binary)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], cut[512];
    run_ngspice(&t, "multi", MULTI, 0, raw, sizeof raw);
    ngs_raw_reader *r = open_ok(raw);
    const ngs_raw_plot *last = plot_ok(r, 5), *tr = plot_ok(r, 3);
    uint64_t tr_off = tr->data_offset;
    uint32_t rb = tr->row_bytes;
    double *orig = rows_ok(r, 3, tr);
    ck_assert_uint_eq(last->data_offset + last->data_bytes, ngs_raw_info(r)->size);
    ngs_raw_close(r);

    size_t n;
    unsigned char *data = read_file(raw, &n);
    /* 10 rows and a half of the transient plot (the 4th of 6). */
    size_t keep = (size_t)tr_off + 10 * rb + rb / 2;
    path_in(&t, "cut.raw", cut, sizeof cut);
    write_file(cut, data, keep);
    r = open_ok(cut);
    ck_assert_uint_eq(ngs_raw_nplots(r), 4);
    const ngs_raw_plot *p = plot_ok(r, 3);
    ck_assert_int_eq(p->truncated, 1);
    ck_assert_int_eq(p->in_progress, 0);
    ck_assert_uint_eq(p->npoints, 10);
    ck_assert_uint_eq(p->npoints_declared, 63);
    double got[40];
    ck_assert_int_eq(ngs_raw_read_rows(r, 3, 0, 10, got), NGS_OK);
    ck_assert_mem_eq(got, orig, sizeof got);
    ck_assert_int_eq(ngs_raw_read_rows(r, 3, 5, 6, got), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_raw_last_error(r), "has 10"));
    ngs_raw_close(r);

    /* Exactly at a row boundary: truncated, nothing partial. */
    write_file(cut, data, (size_t)tr_off + 20 * rb);
    r = open_ok(cut);
    p = plot_ok(r, 3);
    ck_assert_uint_eq(p->npoints, 20);
    ck_assert_int_eq(p->truncated, 1);
    ngs_raw_close(r);

    /* Cut inside the header of the 5th plot: 4 complete plots, header_truncated. */
    r = open_ok(raw);
    uint64_t h5 = plot_ok(r, 4)->header_offset;
    ngs_raw_close(r);
    write_file(cut, data, (size_t)h5 + 40);
    r = open_ok(cut);
    ck_assert_uint_eq(ngs_raw_nplots(r), 4);
    ck_assert_int_eq(ngs_raw_info(r)->header_truncated, 1);
    ck_assert_int_eq(plot_ok(r, 3)->truncated, 0);
    ngs_raw_close(r);

    /* Cut inside the first header: nothing to read, a format error. */
    write_file(cut, data, 60);
    char err[512];
    ngs_raw_reader *bad = NULL;
    ck_assert_int_eq(ngs_raw_open(&bad, cut, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_ptr_null(bad);
    ck_assert_ptr_nonnull(strstr(err, "ends inside the first header"));
    free(data);
    free(orig);
    tmp_free(&t);
}
END_TEST

/* A plot still being written: ngspice has "No. Points: 0" until the analysis ends. */
START_TEST(test_in_progress)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], rawa[512], part[512];
    run_ngspice(&t, "tran", TRAN, 0, raw, sizeof raw);
    run_ngspice(&t, "trana", TRAN, 1, rawa, sizeof rawa);
    for (int ascii = 0; ascii < 2; ascii++) {
        ngs_raw_reader *r = open_ok(ascii ? rawa : raw);
        const ngs_raw_plot *p = plot_ok(r, 0);
        uint64_t total = p->npoints, off = p->data_offset;
        double *orig = rows_ok(r, 0, p);
        ngs_raw_close(r);
        ck_assert_uint_gt(total, 1000);

        size_t n;
        unsigned char *data = read_file(ascii ? rawa : raw, &n);
        char *np = strstr((char *)data, "No. Points: ");
        ck_assert_ptr_nonnull(np);
        memcpy(np + 12, "0       ", 8); /* what ngspice leaves until the end */
        size_t keep = (size_t)off + (n - (size_t)off) / 3;
        path_in(&t, "part.raw", part, sizeof part);
        write_file(part, data, keep);
        r = open_ok(part);
        p = plot_ok(r, 0);
        ck_assert_int_eq(p->in_progress, 1);
        ck_assert_uint_eq(p->npoints_declared, 0);
        ck_assert_uint_gt(p->npoints, 10);
        ck_assert_uint_lt(p->npoints, total);
        double *got = rows_ok(r, 0, p);
        for (size_t k = 0; k < p->npoints * 4; k++)
            ck_assert(close_rel(got[k], orig[k], 2e-15));
        free(got);
        ngs_raw_close(r);

        /* The whole data with the count still 0: every point is found. */
        write_file(part, data, n);
        r = open_ok(part);
        p = plot_ok(r, 0);
        ck_assert_int_eq(p->in_progress, 1);
        ck_assert_int_eq(p->truncated, 0);
        ck_assert_uint_eq(p->npoints, total);
        ngs_raw_close(r);
        free(orig);
        free(data);
    }
    tmp_free(&t);
}
END_TEST

/* ASCII cut inside a line and inside a point. */
START_TEST(test_truncated_ascii)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], cut[512];
    run_ngspice(&t, "multi", MULTI, 1, raw, sizeof raw);
    size_t n;
    unsigned char *data = read_file(raw, &n);
    ngs_raw_reader *r = open_ok(raw);
    const ngs_raw_plot *tr = plot_ok(r, 3);
    ck_assert_str_eq(tr->plotname, "Transient Analysis");
    uint64_t off = tr->data_offset;
    double *orig = rows_ok(r, 3, tr);
    ngs_raw_close(r);
    /* Point k of the transient plot starts at the line "k\t\t". Cut 5 bytes into the
     * third value of point 12. */
    char *s = strstr((char *)data + off, "\n12\t\t");
    ck_assert_ptr_nonnull(s);
    char *v3 = s + 1;
    for (int nl = 0; nl < 2; nl++)
        v3 = strchr(v3, '\n') + 1;
    size_t keep = (size_t)(v3 - (char *)data) + 6;
    path_in(&t, "cut.raw", cut, sizeof cut);
    write_file(cut, data, keep);
    r = open_ok(cut);
    ck_assert_uint_eq(ngs_raw_nplots(r), 4);
    const ngs_raw_plot *p = plot_ok(r, 3);
    ck_assert_int_eq(p->truncated, 1);
    ck_assert_uint_eq(p->npoints, 12);
    double *got = rows_ok(r, 3, p);
    ck_assert_mem_eq(got, orig, 12 * 4 * sizeof(double));
    free(got);
    ngs_raw_close(r);
    /* Cut right after a complete value line in the middle of point 12. */
    write_file(cut, data, (size_t)(v3 - (char *)data));
    r = open_ok(cut);
    p = plot_ok(r, 3);
    ck_assert_uint_eq(p->npoints, 12);
    ck_assert_int_eq(p->truncated, 1);
    ngs_raw_close(r);
    /* Without its final newline the file is whole: the last value of the last declared
     * point ends it. Without that whole line, the last point is missing. */
    r = open_ok(raw);
    size_t last = ngs_raw_nplots(r) - 1;
    p = plot_ok(r, last);
    uint64_t np = p->npoints;
    double *all = rows_ok(r, last, p);
    int rd = p->row_doubles;
    ngs_raw_close(r);
    ck_assert_uint_gt(np, 0);
    ck_assert(data[n - 1] == '\n');
    for (int k = 0; k < 2; k++) {
        size_t keep2 = n - 1;
        while (k && data[keep2 - 1] != '\n')
            keep2--;
        write_file(cut, data, keep2);
        r = open_ok(cut);
        ck_assert_uint_eq(ngs_raw_nplots(r), last + 1);
        p = plot_ok(r, last);
        ck_assert_uint_eq(p->npoints, k ? np - 1 : np);
        ck_assert_int_eq(p->truncated, k);
        got = rows_ok(r, last, p);
        ck_assert_mem_eq(got, all, (size_t)p->npoints * (size_t)rd * sizeof(double));
        free(got);
        ngs_raw_close(r);
    }
    free(all);
    free(orig);
    free(data);
    tmp_free(&t);
}
END_TEST

/* ---- corrupt input ------------------------------------------------------------------ */

static const char *HDR =
    "Title: t\n"                       /* line 1, byte 0 */
    "Date: d\n"                        /* line 2, byte 9 */
    "Plotname: Transient Analysis\n"   /* line 3, byte 17 */
    "Flags: real\n"                    /* line 4, byte 46 */
    "No. Variables: 2\n"               /* line 5, byte 58 */
    "No. Points: 2       \n"           /* line 6, byte 75 */
    "Variables:\n"                     /* line 7, byte 96 */
    "\t0\ttime\ttime\n"                /* line 8, byte 107 */
    "\t1\tv(a)\tvoltage\n"             /* line 9, byte 120 */
    "Binary:\n";                       /* line 10, byte 136 */

/* Replaces the first occurrence of from by to in HDR, adds 2 rows, and opens it. */
static int open_variant(const tmpdir *t, const char *from, const char *to, char *err,
                        size_t errlen)
{
    char text[1024];
    const char *at = strstr(HDR, from);
    ck_assert_ptr_nonnull(at);
    int k = snprintf(text, sizeof text, "%.*s%s%s", (int)(at - HDR), HDR, to, at + strlen(from));
    double rows[4] = {0, 1, 1e-3, 2};
    char buf[2048];
    memcpy(buf, text, (size_t)k);
    memcpy(buf + k, rows, sizeof rows);
    char path[512];
    path_in(t, "bad.raw", path, sizeof path);
    write_file(path, buf, (size_t)k + sizeof rows);
    ngs_raw_reader *r = NULL;
    int rc = ngs_raw_open(&r, path, err, errlen);
    if (rc == NGS_OK) {
        const ngs_raw_plot *p;
        rc = ngs_raw_plot_info(r, 0, &p);
        ngs_raw_close(r);
    } else {
        ck_assert_ptr_null(r);
    }
    return rc;
}

START_TEST(test_corrupt_headers)
{
    tmpdir t;
    tmp_make(&t);
    char err[512];
    ck_assert_int_eq(open_variant(&t, "Title", "Title", err, sizeof err), NGS_OK);
    static const struct {
        const char *from, *to, *expect;
    } cases[] = {
        {"No. Variables: 2", "No. Variables: two", "byte 58 (line 5): 'No. Variables' is not a number"},
        {"No. Variables: 2", "No. Variables: 0", "byte 58 (line 5): 'No. Variables' is 0"},
        {"No. Variables: 2", "No. Variables: 3", "byte 136 (line 10): only 2 of the 3 variables"},
        {"No. Variables: 2", "No. Variables: 1", "byte 120 (line 9): expected a header line"},
        {"No. Points: 2 ", "No. Points: 2x", "byte 75 (line 6): 'No. Points' is not a number"},
        {"No. Points: 2 ", "No. Points: -2", "byte 75 (line 6): 'No. Points' is not a number"},
        {"\t1\tv(a)", "\t7\tv(a)", "byte 120 (line 9): variable 1: index '7' should be 1"},
        {"\t1\tv(a)\tvoltage", "\t1\tv(a)", "byte 120 (line 9): variable 1: expected 'index name type'"},
        {"Plotname: Transient Analysis\n", "", "byte 107 (line 9): no 'Plotname:' line"},
        {"Variables:\n", "", "byte 96 (line 7): expected a header line"},
        {"Flags: real\n", "Flags: real\nsome junk\n", "byte 58 (line 5): expected a header line 'Key: value', found 'some junk'"},
        {"Title: t", "Tit\001e: t", "byte 0 (line 1): not a RAW file"},
        {"Binary:\n", "Binary: now\n", "byte 136 (line 10): unexpected text after 'Binary:'"},
        {"No. Points: 2       \n", "", "no 'No. Points:' line"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        err[0] = '\0';
        int rc = open_variant(&t, cases[i].from, cases[i].to, err, sizeof err);
        ck_assert_msg(rc == NGS_ERR_FORMAT, "case %zu: rc %d (%s)", i, rc, err);
        ck_assert_msg(strstr(err, cases[i].expect) != NULL, "case %zu: '%s' lacks '%s'", i, err,
                      cases[i].expect);
        ck_assert_msg(strstr(err, "bad.raw: ") != NULL, "case %zu: no file name in '%s'", i, err);
    }
    /* A damaged line before Plotname: the reading goes on at the next plot header after
     * it, here the same plot's "Plotname:" (Title and Date lost, the points kept), and
     * the damage is reported. */
    {
        char path[512];
        const char *at = strstr(HDR, "Date: d");
        size_t k = (size_t)(at - HDR);
        char buf[1024];
        memcpy(buf, HDR, strlen(HDR));
        memcpy(buf + k, "Da\x01" "e", 4);
        double rows[4] = {0, 1, 1e-3, 2};
        memcpy(buf + strlen(HDR), rows, sizeof rows);
        path_in(&t, "date.raw", path, sizeof path);
        write_file(path, buf, strlen(HDR) + sizeof rows);
        ngs_raw_reader *r = NULL;
        const ngs_raw_plot *p;
        ck_assert_int_eq(ngs_raw_open(&r, path, err, sizeof err), NGS_OK);
        ck_assert_uint_eq(ngs_raw_nplots(r), 1);
        ck_assert_uint_eq(ngs_raw_info(r)->bad_headers, 1);
        ck_assert_uint_eq(ngs_raw_info(r)->bad_offset, 0);
        ck_assert_uint_eq(ngs_raw_info(r)->bad_bytes, strstr(HDR, "Plotname:") - HDR);
        ck_assert_str_eq(ngs_raw_info(r)->bad_error,
                         "byte 9 (line 2): expected a header line 'Key: value', found 'Da\x01" "e: d'");
        ck_assert_int_eq(ngs_raw_plot_info(r, 0, &p), NGS_OK);
        ck_assert_uint_eq(p->npoints, 2);
        ck_assert_str_eq(p->title, "");
        ngs_raw_close(r);
    }
    /* A NUL inside a header line. */
    static const char nul[] = "Title: t\nDate: d\0x\nPlotname: p\n";
    ngs_raw_reader *rn = NULL;
    ck_assert_int_eq(ngs_raw_open_memory(&rn, nul, sizeof nul - 1, "nul.raw", err, sizeof err),
                     NGS_ERR_FORMAT);
    ck_assert_msg(strstr(err, "nul.raw: byte 9 (line 2): NUL byte in a header line"), "%s", err);
    /* Not RAW at all, empty, missing. */
    char path[512];
    path_in(&t, "junk.raw", path, sizeof path);
    write_file(path, "\x7f" "ELF\x02\x01\x01", 7);
    ngs_raw_reader *r = NULL;
    ck_assert_int_eq(ngs_raw_open(&r, path, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "byte 0 (line 1): not a RAW file"));
    write_file(path, "", 0);
    ck_assert_int_eq(ngs_raw_open(&r, path, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "empty file"));
    path_in(&t, "missing.raw", path, sizeof path);
    ck_assert_int_eq(ngs_raw_open(&r, path, err, sizeof err), NGS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "missing.raw: cannot open"));
    ck_assert_int_eq(ngs_raw_open(&r, t.dir, err, sizeof err), NGS_ERR_IO);
    ck_assert_int_eq(ngs_raw_open(NULL, path, err, sizeof err), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_open_memory(&r, NULL, 5, "x", err, sizeof err), NGS_ERR_ARG);
    tmp_free(&t);
}
END_TEST

/* Corrupt ASCII data: the error names the byte and line of the bad value. */
START_TEST(test_corrupt_ascii_data)
{
    const char *text =
        "Title: t\nDate: d\nPlotname: p\nFlags: real\nNo. Variables: 2\nNo. Points: 3\n"
        "Variables:\n\t0\ttime\ttime\n\t1\tv(a)\tvoltage\nValues:\n"
        "0\t\t0.0\n\t1.0\n"      /* lines 11-12 */
        "1\t\t1.0\n\t2.0.0\n"    /* line 14 holds the bad value, at byte 140 */
        "2\t\t2.0\n\t3.0\n";
    ngs_raw_reader *r = NULL;
    char err[512];
    ck_assert_int_eq(ngs_raw_open_memory(&r, text, strlen(text), "mem.raw", err, sizeof err),
                     NGS_OK);
    const ngs_raw_plot *p;
    /* The first access checks every value (a caller writes nothing before it), not only
     * its characters; the plot ends before the bad one, and says why. */
    ck_assert_int_eq(ngs_raw_plot_info(r, 0, &p), NGS_OK);
    ck_assert_str_eq(p->data_error, "byte 140 (line 14): '2.0.0' is not a number (point 1, v(a))");
    ck_assert_uint_eq(p->npoints, 1);
    ck_assert_int_eq(p->truncated, 1);
    ck_assert_int_eq(p->in_progress, 0);
    double v[6];
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 1, v), NGS_OK);
    ck_assert(v[0] == 0.0 && v[1] == 1.0);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 2, v), NGS_ERR_ARG);
    ngs_raw_close(r);

    /* Tokens of number characters that are no number fail; every form strtod reads whole
     * passes. */
    static const char *const bad[] = {"--5", "e", "1e", "1e+", ".", "+", "1.2.3", "5-", "1e5.5",
                                      "infin", "nana", "1ee5"};
    static const char *const good[] = {"1.", ".5", "-.5e-3", "+3", "1E+05", "-inf", "Infinity",
                                       "NaN", "007"};
    for (size_t k = 0; k < sizeof bad / sizeof bad[0] + sizeof good / sizeof good[0]; k++) {
        int ok = k >= sizeof bad / sizeof bad[0];
        const char *tok = ok ? good[k - sizeof bad / sizeof bad[0]] : bad[k];
        char one[256];
        int len = snprintf(one, sizeof one,
                           "Title: t\nDate: d\nPlotname: p\nFlags: real\nNo. Variables: 1\n"
                           "No. Points: 1\nVariables:\n\t0\ttime\ttime\nValues:\n0\t%s\n", tok);
        ck_assert_int_eq(ngs_raw_open_memory(&r, one, (size_t)len, "v.raw", err, sizeof err),
                         NGS_OK);
        ck_assert_int_eq(ngs_raw_plot_info(r, 0, &p), NGS_OK);
        ck_assert_msg(p->npoints == (ok ? 1u : 0u) && (p->data_error[0] != 0) == !ok, "'%s': %s",
                      tok, p->data_error);
        if (ok) {
            ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 1, v), NGS_OK);
            ck_assert(isnan(v[0]) || v[0] == strtod(tok, NULL));
        }
        ngs_raw_close(r);
    }

    const char *seq =
        "Title: t\nDate: d\nPlotname: p\nFlags: real\nNo. Variables: 1\nNo. Points: 2\n"
        "Variables:\n\t0\ttime\ttime\nValues:\n0\t1.0\n5\t2.0\n";
    ck_assert_int_eq(ngs_raw_open_memory(&r, seq, strlen(seq), "seq.raw", err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_raw_plot_info(r, 0, &p), NGS_OK);
    ck_assert_uint_eq(p->npoints, 1);
    ck_assert_msg(strstr(p->data_error, "(line 11): point index 5 out of sequence"), "%s",
                  p->data_error);
    ngs_raw_close(r);

    const char *extra =
        "Title: t\nDate: d\nPlotname: p\nFlags: real\nNo. Variables: 1\nNo. Points: 1\n"
        "Variables:\n\t0\ttime\ttime\nValues:\n0\t1.0\n1\t2.0\n";
    /* Text after the declared points does not make the plot unreadable: it is counted
     * as skipped bytes once the plot is read. */
    ck_assert_int_eq(ngs_raw_open_memory(&r, extra, strlen(extra), "x.raw", err, sizeof err), NGS_OK);
    ck_assert_uint_eq(ngs_raw_info(r)->trailing_bytes, 0);
    ck_assert_int_eq(ngs_raw_plot_info(r, 0, &p), NGS_OK);
    ck_assert_uint_eq(p->npoints, 1);
    ck_assert_int_eq(p->truncated, 0);
    ck_assert_uint_eq(ngs_raw_info(r)->trailing_offset, strlen(extra) - 6);
    ck_assert_uint_eq(ngs_raw_info(r)->trailing_bytes, 6);
    ck_assert_uint_eq(ngs_raw_info(r)->skipped_gaps, 1);
    ngs_raw_close(r);
}
END_TEST

/* ---- other dialects ----------------------------------------------------------------- */

/* Appends s as UTF-16LE. */
static size_t put16(unsigned char *b, size_t n, const char *s)
{
    /* s is UTF-8; "\xc2\xb5" (micro sign) is the only non-ASCII character used. */
    for (; *s; s++) {
        unsigned c = (unsigned char)*s;
        if (c == 0xC2 && (unsigned char)s[1] == 0xB5) {
            c = 0xB5;
            s++;
        }
        b[n++] = (unsigned char)(c & 0xFF);
        b[n++] = (unsigned char)(c >> 8);
    }
    return n;
}

/* An LTspice-style file: UTF-16LE header, float64 time (with the sign trick on some
 * points), float32 traces. */
START_TEST(test_ltspice_utf16_float32)
{
    enum { NP = 50 };
    unsigned char *b = malloc(1 << 16);
    size_t n = 0;
    n = put16(b, n, "Title: * C:\\sim\\amp \xc2\xb5" "A.asc\n");
    n = put16(b, n, "Date: Thu Jan  1 00:00:00 2026\n");
    n = put16(b, n, "Plotname: Transient Analysis\n");
    n = put16(b, n, "Flags: real forward\n");
    n = put16(b, n, "No. Variables: 3\n");
    n = put16(b, n, "No. Points:           50\n");
    n = put16(b, n, "Offset:   0.0000000000000000e+000\n");
    n = put16(b, n, "Command: Linear Technology Corporation LTspice XVII\n");
    n = put16(b, n, "Backannotation: u1 1 2\n");
    n = put16(b, n, "Variables:\n");
    n = put16(b, n, "\t0\ttime\ttime\n");
    n = put16(b, n, "\t1\tV(out)\tvoltage\n");
    n = put16(b, n, "\t2\tI(R1)\tdevice_current\n");
    n = put16(b, n, "Binary:\n");
    for (int k = 0; k < NP; k++) {
        double t = k * 1e-6;
        if (k % 3 == 1)
            t = -t; /* LTspice marks compressed points with the sign bit */
        float v = (float)sin(k * 0.1), i = (float)(k * 1e-3);
        memcpy(b + n, &t, 8);
        memcpy(b + n + 8, &v, 4);
        memcpy(b + n + 12, &i, 4);
        n += 16;
    }
    ngs_raw_reader *r = NULL;
    char err[512];
    ck_assert_int_eq(ngs_raw_open_memory(&r, b, n, "lt.raw", err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_raw_info(r)->utf16, 1);
    const ngs_raw_plot *p = plot_ok(r, 0);
    ck_assert_int_eq(p->dialect, NGS_RAW_DIALECT_LTSPICE);
    ck_assert_str_eq(p->title, "* C:\\sim\\amp \xc2\xb5" "A.asc");
    ck_assert_str_eq(p->flags, "real forward");
    ck_assert_str_eq(p->command, "Linear Technology Corporation LTspice XVII");
    ck_assert_uint_eq(p->npoints, NP);
    ck_assert_uint_eq(p->row_bytes, 16);
    ck_assert_int_eq(p->vars[0].storage, NGS_RAW_F64);
    ck_assert_int_eq(p->vars[1].storage, NGS_RAW_F32);
    ck_assert_int_eq(p->vars[2].storage, NGS_RAW_F32);
    ck_assert_str_eq(p->vars[2].type, "device_current");
    ck_assert_uint_eq(p->nlines, 9);
    ck_assert_str_eq(p->lines[6].key, "Offset");
    double rows[NP * 3], vec[NP];
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, NP, rows), NGS_OK);
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 0, 0, NP, vec), NGS_OK);
    for (int k = 0; k < NP; k++) {
        ck_assert(rows[k * 3] == k * 1e-6);
        ck_assert(vec[k] == k * 1e-6);
        ck_assert(rows[k * 3 + 1] == (double)(float)sin(k * 0.1));
        ck_assert(rows[k * 3 + 2] == (double)(float)(k * 1e-3));
    }
    ngs_raw_close(r);

    /* Written back as an ngspice file: float64, no LTspice Command line; same values. */
    tmpdir t;
    tmp_make(&t);
    char out[512];
    path_in(&t, "lt_ng.raw", out, sizeof out);
    ck_assert_int_eq(ngs_raw_open_memory(&r, b, n, "lt.raw", err, sizeof err), NGS_OK);
    write_back(r, out, NGS_RAW_BINARY, 7);
    ngs_raw_close(r);
    r = open_ok(out);
    p = plot_ok(r, 0);
    ck_assert_int_eq(p->dialect, NGS_RAW_DIALECT_NGSPICE);
    ck_assert_str_eq(p->command, "");
    ck_assert_int_eq(p->vars[1].storage, NGS_RAW_F64);
    double back[NP * 3];
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, NP, back), NGS_OK);
    ck_assert_mem_eq(back, rows, sizeof back);
    ngs_raw_close(r);
    tmp_free(&t);
    free(b);
}
END_TEST

/* LTspice AC (complex double), "double" flag and fastaccess layouts. */
START_TEST(test_ltspice_layouts)
{
    unsigned char *b = malloc(1 << 16);
    ngs_raw_reader *r;
    char err[512];
    const ngs_raw_plot *p;
    /* AC: every variable complex double. */
    size_t n = put16(b, 0, "Title: * ac\nDate: x\nPlotname: AC Analysis\nFlags: complex forward log\n"
                           "No. Variables: 2\nNo. Points: 4\nOffset: 0\n"
                           "Command: Linear Technology Corporation LTspice XVII\nVariables:\n"
                           "\t0\tfrequency\tfrequency\n\t1\tV(out)\tvoltage\nBinary:\n");
    for (int k = 0; k < 4; k++) {
        double v[4] = {pow(10, k), 0, 1.0 / (k + 1), -k * 0.5};
        memcpy(b + n, v, sizeof v);
        n += sizeof v;
    }
    ck_assert_int_eq(ngs_raw_open_memory(&r, b, n, "ac.raw", err, sizeof err), NGS_OK);
    p = plot_ok(r, 0);
    ck_assert_int_eq(p->is_complex, 1);
    ck_assert_int_eq(p->row_doubles, 4);
    double v[8];
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 1, 1, 3, v), NGS_OK);
    ck_assert(v[0] == 0.5 && v[1] == -0.5 && v[4] == 0.25 && v[5] == -1.5);
    ngs_raw_close(r);

    /* "double": traces are float64 too; fastaccess: stored vector after vector. */
    n = put16(b, 0, "Title: * d\nDate: x\nPlotname: Transient Analysis\nFlags: real forward double fastaccess\n"
                    "No. Variables: 3\nNo. Points: 5\n"
                    "Command: Linear Technology Corporation LTspice XVII\nVariables:\n"
                    "\t0\ttime\ttime\n\t1\tV(a)\tvoltage\n\t2\tV(b)\tvoltage\nBinary:\n");
    for (int j = 0; j < 3; j++)
        for (int k = 0; k < 5; k++) {
            double x = j == 0 ? (k % 2 ? -k : k) : j * 100 + k + 0.125;
            memcpy(b + n, &x, 8);
            n += 8;
        }
    ck_assert_int_eq(ngs_raw_open_memory(&r, b, n, "fa.raw", err, sizeof err), NGS_OK);
    p = plot_ok(r, 0);
    ck_assert_int_eq(p->fastaccess, 1);
    ck_assert_int_eq(p->vars[2].storage, NGS_RAW_F64);
    double rows[15];
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 5, rows), NGS_OK);
    for (int k = 0; k < 5; k++) {
        ck_assert(rows[k * 3] == k);
        ck_assert(rows[k * 3 + 1] == 100 + k + 0.125);
        ck_assert(rows[k * 3 + 2] == 200 + k + 0.125);
    }
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 2, 3, 2, v), NGS_OK);
    ck_assert(v[0] == 203.125 && v[1] == 204.125);
    ngs_raw_close(r);
    /* fastaccess cut short cannot be read (columns are incomplete). */
    ck_assert_int_eq(ngs_raw_open_memory(&r, b, n - 8, "fa.raw", err, sizeof err), NGS_OK);
    p = plot_ok(r, 0);
    ck_assert_int_eq(p->truncated, 1);
    ck_assert_uint_eq(p->npoints, 0);
    ngs_raw_close(r);
    free(b);
}
END_TEST

/* The dialect comes from the Command: line: LTspice IV wrote 8-bit headers with float32
 * traces; QSPICE stores the scale of a complex plot as a real float64. */
START_TEST(test_dialect_from_command)
{
    unsigned char b[2048];
    const char *h = "Title: * iv\nDate: x\nPlotname: Transient Analysis\nFlags: real forward\n"
                    "No. Variables: 2\nNo. Points: 3\nOffset: 0\n"
                    "Command: Linear Technology Corporation LTspice IV\nVariables:\n"
                    "\t0\ttime\ttime\n\t1\tV(a)\tvoltage\nBinary:\n";
    size_t n = strlen(h);
    memcpy(b, h, n);
    for (int k = 0; k < 3; k++) {
        double t = -k * 0.5;
        float v = (float)k / 3.0f;
        memcpy(b + n, &t, 8);
        memcpy(b + n + 8, &v, 4);
        n += 12;
    }
    ngs_raw_reader *r;
    char err[512];
    ck_assert_int_eq(ngs_raw_open_memory(&r, b, n, "iv.raw", err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_raw_info(r)->utf16, 0);
    const ngs_raw_plot *p = plot_ok(r, 0);
    ck_assert_int_eq(p->dialect, NGS_RAW_DIALECT_LTSPICE);
    ck_assert_uint_eq(p->row_bytes, 12);
    double rows[6];
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 3, rows), NGS_OK);
    ck_assert(rows[4] == 1.0 && rows[5] == (double)(2.0f / 3.0f));
    ngs_raw_close(r);

    h = "Title: * q\nDate: x\nPlotname: AC Analysis\nFlags: complex forward log\n"
        "No. Variables: 2\nNo. Points: 2\nCommand: QSPICE64\n.param r=1k\nVariables:\n"
        "\t0\tfrequency\tfrequency\n\t1\tV(out)\tvoltage\nBinary:\n";
    n = strlen(h);
    memcpy(b, h, n);
    double d[6] = {1, 0.5, -0.5, 10, 0.25, -0.25};
    memcpy(b + n, d, sizeof d);
    n += sizeof d;
    ck_assert_int_eq(ngs_raw_open_memory(&r, b, n, "q.raw", err, sizeof err), NGS_OK);
    p = plot_ok(r, 0);
    ck_assert_int_eq(p->dialect, NGS_RAW_DIALECT_QSPICE);
    ck_assert_int_eq(p->vars[0].is_complex, 0);
    ck_assert_int_eq(p->vars[1].is_complex, 1);
    ck_assert_int_eq(p->row_doubles, 3);
    ck_assert_str_eq(p->lines[7].key, ".param r=1k");
    ck_assert_ptr_null(p->lines[7].value);
    double x[6];
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 2, x), NGS_OK);
    ck_assert_mem_eq(x, d, sizeof d);
    ngs_raw_close(r);
}
END_TEST

/* Xyce: Title/Date only before the first plot, "No. Points:" blank while running and
 * padded after; ngspice's 9-digit count that eats the "Variables:" newline. */
START_TEST(test_xyce_and_quirks)
{
    unsigned char buf[4096];
    size_t n = 0;
    const char *h1 = "Title: xyce deck\nDate: Mon Jan 05 10:00:00 2026\nPlotname: DC transfer characteristic\n"
                     "Flags: real\nNo. Variables: 2\nNo. Points: 3                 \n"
                     "Variables:\n\t0\tsweep\tvoltage\n\t1\tV(1)\tvoltage\nBinary:\n";
    memcpy(buf, h1, strlen(h1));
    n = strlen(h1);
    for (int k = 0; k < 6; k++) {
        double x = k;
        memcpy(buf + n, &x, 8);
        n += 8;
    }
    const char *h2 = "Plotname: Transient Analysis\nFlags: real\nNo. Variables: 2\n"
                     "No. Points:                   \nVariables:\n\t0\ttime\ttime\n"
                     "\t1\tV(1)\tvoltage\nBinary:\n";
    memcpy(buf + n, h2, strlen(h2));
    n += strlen(h2);
    for (int k = 0; k < 9; k++) { /* 4.5 rows */
        double x = k * 0.5;
        memcpy(buf + n, &x, 8);
        n += 8;
    }
    ngs_raw_reader *r;
    char err[512];
    ck_assert_int_eq(ngs_raw_open_memory(&r, buf, n, "xyce.raw", err, sizeof err), NGS_OK);
    ck_assert_uint_eq(ngs_raw_nplots(r), 2);
    const ngs_raw_plot *p1 = plot_ok(r, 0), *p2 = plot_ok(r, 1);
    ck_assert_uint_eq(p1->npoints, 3);
    ck_assert_str_eq(p2->title, "xyce deck");
    ck_assert_str_eq(p2->date, "Mon Jan 05 10:00:00 2026");
    ck_assert_int_eq(p2->in_progress, 1);
    ck_assert_int_eq(p2->truncated, 1);
    ck_assert_uint_eq(p2->npoints, 4);
    double v[4];
    ck_assert_int_eq(ngs_raw_read_vector(r, 1, 1, 0, 4, v), NGS_OK);
    ck_assert(v[3] == 3.5);
    ngs_raw_close(r);

    /* 123456789 points in ngspice's 8-character field: "No. Points: 123456789Variables:". */
    const char *h3 = "Title: big\nDate: d\nPlotname: Transient Analysis\nFlags: real\n"
                     "No. Variables: 1\nNo. Points: 123456789Variables:\n\t0\ttime\ttime\nBinary:\n";
    n = strlen(h3);
    memcpy(buf, h3, n);
    for (int k = 0; k < 3; k++) {
        double x = k;
        memcpy(buf + n, &x, 8);
        n += 8;
    }
    ck_assert_int_eq(ngs_raw_open_memory(&r, buf, n, "big.raw", err, sizeof err), NGS_OK);
    p1 = plot_ok(r, 0);
    ck_assert_uint_eq(p1->npoints_declared, 123456789);
    ck_assert_uint_eq(p1->npoints, 3);
    ck_assert_int_eq(p1->truncated, 1);
    ck_assert_int_eq(p1->nvars, 1);
    ngs_raw_close(r);

    /* A plot ngspice started but that made no point: header up to "Variables:" only. */
    const char *h4 = "Title: t\nDate: d\nPlotname: Transient Analysis\nFlags: real\n"
                     "No. Variables: 2\nNo. Points: 0       \nVariables:\n"
                     "Title: t\nDate: d\nPlotname: Operating Point\nFlags: real\n"
                     "No. Variables: 1\nNo. Points: 1       \nVariables:\n\t0\tv(a)\tvoltage\nBinary:\n";
    n = strlen(h4);
    memcpy(buf, h4, n);
    double one = 1.5;
    memcpy(buf + n, &one, 8);
    n += 8;
    memcpy(buf + n, "\n\n garbage \x01\x02", 13); /* and junk after the last plot */
    n += 13;
    ck_assert_int_eq(ngs_raw_open_memory(&r, buf, n, "empty.raw", err, sizeof err), NGS_OK);
    ck_assert_uint_eq(ngs_raw_nplots(r), 2);
    p1 = plot_ok(r, 0);
    ck_assert_int_eq(p1->encoding, NGS_RAW_NODATA);
    ck_assert_int_eq(p1->nvars, 0);
    ck_assert_uint_eq(p1->npoints, 0);
    p2 = plot_ok(r, 1);
    ck_assert_str_eq(p2->plotname, "Operating Point");
    ck_assert_int_eq(ngs_raw_read_vector(r, 1, 0, 0, 1, v), NGS_OK);
    ck_assert(v[0] == 1.5);
    ck_assert_uint_eq(ngs_raw_info(r)->trailing_offset, n - 10);
    ck_assert_uint_eq(ngs_raw_info(r)->trailing_bytes, 10);
    ngs_raw_close(r);

    /* ngspice `write` style: unpadded count, " grid=3", " 0\t" indices, blank lines. */
    const char *h5 = "Title: w\nDate: d\nPlotname: AC Analysis\nFlags: complex\nNo. Variables: 2\n"
                     "No. Points: 2\nVariables:\n\t0\tfrequency\tfrequency grid=3\n\t1\tv(a)\tvoltage\n"
                     "Values:\n 0\t1.0e+00,0.0e+00\n\t5.0e-01,-2.5e-01\n\n 1\t1.0e+01,0.0e+00\n"
                     "\t2.5e-01,-1.25e-01\n\n";
    ck_assert_int_eq(ngs_raw_open_memory(&r, h5, strlen(h5), "w.raw", err, sizeof err), NGS_OK);
    p1 = plot_ok(r, 0);
    ck_assert_str_eq(p1->vars[0].params, "grid=3");
    ck_assert_uint_eq(p1->npoints, 2);
    double rows[8];
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 2, rows), NGS_OK);
    ck_assert(rows[4] == 10.0 && rows[6] == 0.25 && rows[7] == -0.125);
    ngs_raw_close(r);

    /* CRLF line endings (a file that went through a Windows editor). */
    const char *h6 = "Title: crlf\r\nDate: d\r\nPlotname: DC transfer characteristic\r\n"
                     "Flags: real\r\nNo. Variables: 2\r\nNo. Points: 2\r\nVariables:\r\n"
                     "\t0\tv-sweep\tvoltage\r\n\t1\tv(a)\tvoltage\r\nValues:\r\n"
                     "0\t\t1.0\r\n\t2.0\r\n1\t\t3.0\r\n\t4.0\r\n";
    ck_assert_int_eq(ngs_raw_open_memory(&r, h6, strlen(h6), "crlf.raw", err, sizeof err), NGS_OK);
    p1 = plot_ok(r, 0);
    ck_assert_str_eq(p1->title, "crlf");
    ck_assert_str_eq(p1->vars[1].type, "voltage");
    ck_assert_uint_eq(p1->npoints, 2);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 2, rows), NGS_OK);
    ck_assert(rows[0] == 1.0 && rows[3] == 4.0);
    ngs_raw_close(r);
}
END_TEST

/* Appends a binary plot of v(a) against time: declared count decl (-1: blank), the
 * values (k, k + base) of rows k = 0..nrows-1, and extra bytes of a cut point. */
static size_t bin_plot(unsigned char *b, size_t n, const char *title, const char *name,
                       int decl, int nrows, double base, size_t extra)
{
    char hdr[512];
    int k = snprintf(hdr, sizeof hdr,
                     "Title: %s\nDate: d\nPlotname: %s\nFlags: real\nNo. Variables: 2\n"
                     "No. Points: %d\nVariables:\n\t0\ttime\ttime\n\t1\tv(a)\tvoltage\nBinary:\n",
                     title, name, decl);
    memcpy(b + n, hdr, (size_t)k);
    n += (size_t)k;
    for (int i = 0; i < nrows; i++) {
        double row[2] = {i, i + base};
        memcpy(b + n, row, sizeof row);
        n += sizeof row;
    }
    memset(b + n, 0x7f, extra);
    return n + extra;
}

/* A "No. Points" larger than the points present before the next header: the data stop
 * at that header (the plot is cut, the next plots are read), wherever the declared end
 * falls: inside the next header, at the start of one of its lines, or past the end of
 * the file. "No. Points: 0" is "in progress" only in the last plot. */
START_TEST(test_binary_count_past_next_header)
{
    static const struct {
        const char *title; /* "t": the declared end is the start of "Plotname:" */
        int decl;          /* 1000: past the end of the file */
        size_t extra;      /* bytes of a cut point before the next header */
    } cases[] = {{"t", 3, 0}, {"a longer title", 3, 0}, {"t", 1000, 0}, {"t", 0, 0},
                 {"t", 3, 5}, {"t", 0, 5}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        unsigned char buf[4096];
        size_t n = bin_plot(buf, 0, cases[c].title, "Transient Analysis", cases[c].decl, 2, 1,
                            cases[c].extra);
        size_t h2 = n;
        n = bin_plot(buf, n, "t", "AC Analysis", 2, 2, 5, 0);
        n = bin_plot(buf, n, "t", "Operating Point", 1, 1, 7, 0);
        ngs_raw_reader *r;
        char err[512];
        ck_assert_int_eq(ngs_raw_open_memory(&r, buf, n, "np.raw", err, sizeof err), NGS_OK);
        ck_assert_msg(ngs_raw_nplots(r) == 3, "case %zu: %zu plots", c, ngs_raw_nplots(r));
        const ngs_raw_plot *p = plot_ok(r, 0);
        ck_assert_uint_eq(p->npoints, 2);
        ck_assert_uint_eq(p->data_offset + p->data_bytes, h2 - cases[c].extra);
        ck_assert_int_eq(p->truncated, cases[c].decl != 0 || cases[c].extra != 0);
        ck_assert_int_eq(p->in_progress, 0);
        double rows[4];
        ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 2, rows), NGS_OK);
        ck_assert(rows[0] == 0 && rows[1] == 1 && rows[2] == 1 && rows[3] == 2);
        p = plot_ok(r, 1);
        ck_assert_str_eq(p->plotname, "AC Analysis");
        ck_assert_uint_eq(p->header_offset, h2);
        ck_assert_uint_eq(p->npoints, 2);
        ck_assert_int_eq(p->truncated, 0);
        ck_assert_int_eq(ngs_raw_read_rows(r, 1, 0, 2, rows), NGS_OK);
        ck_assert(rows[1] == 5 && rows[3] == 6);
        p = plot_ok(r, 2);
        ck_assert_str_eq(p->plotname, "Operating Point");
        ck_assert_uint_eq(p->npoints, 1);
        ck_assert_uint_eq(ngs_raw_info(r)->trailing_bytes, 0);
        ngs_raw_close(r);
    }
}
END_TEST

/* ---- ASCII random access --------------------------------------------------------------- */

static double synth(uint64_t k, int c)
{
    return c == 0 ? (double)k * 1e-9 : sin((double)k * 0.001 * (c + 1)) * (c + 1);
}

/* Writes a synthetic plot of np points (time and two vectors) to path. */
static void write_synthetic(const char *path, uint64_t np, ngs_raw_encoding enc)
{
    char err[512];
    ngs_raw_var vars[3] = {{.name = "time", .type = "time"},
                           {.name = "v(a)", .type = "voltage"},
                           {.name = "i(b)", .type = "current"}};
    ngs_raw_plot d = {.title = "synthetic", .date = "today", .plotname = "Transient Analysis",
                      .flags = "real", .nvars = 3, .vars = vars, .npoints = np};
    ngs_raw_writer *w;
    double row[3 * 1000];
    ck_assert_int_eq(ngs_raw_writer_open(&w, path, 0, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &d, enc), NGS_OK);
    for (uint64_t k = 0; k < np;) {
        size_t n = np - k < 1000 ? (size_t)(np - k) : 1000;
        for (size_t i = 0; i < n; i++)
            for (int c = 0; c < 3; c++)
                row[i * 3 + (size_t)c] = synth(k + i, c);
        ck_assert_int_eq(ngs_raw_writer_write_rows(w, row, n), NGS_OK);
        k += n;
    }
    ck_assert_int_eq(ngs_raw_writer_close(w), NGS_OK);
}

START_TEST(test_ascii_random_access)
{
    enum { NP = 100003 };
    tmpdir t;
    tmp_make(&t);
    char path[512];
    path_in(&t, "big_ascii.raw", path, sizeof path);
    write_synthetic(path, NP, NGS_RAW_ASCII);

    ngs_raw_reader *r = open_ok(path);
    const ngs_raw_plot *p = plot_ok(r, 0);
    ck_assert_uint_eq(p->npoints, NP);
    ck_assert_uint_eq(p->npoints_declared, NP);
    /* Random ranges, forwards and backwards, of both read functions. */
    uint64_t seed = 12345;
    double out[3 * 64];
    for (int it = 0; it < 300; it++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        uint64_t first = (seed >> 20) % NP;
        size_t n = (size_t)((seed >> 8) % 64) + 1;
        if (first + n > NP)
            n = (size_t)(NP - first);
        int c = (int)((seed >> 4) % 3);
        ck_assert_int_eq(ngs_raw_read_vector(r, 0, c, first, n, out), NGS_OK);
        for (size_t i = 0; i < n; i++)
            ck_assert_msg(close_rel(out[i], synth(first + i, c), 1e-15), "point %llu",
                          (unsigned long long)(first + i));
        ck_assert_int_eq(ngs_raw_read_rows(r, 0, first, n, out), NGS_OK);
        for (size_t i = 0; i < n; i++)
            ck_assert(close_rel(out[i * 3 + 2], synth(first + i, 2), 1e-15));
    }
    /* Sequential chunks through the end. */
    for (uint64_t k = 0; k < NP; k += 64) {
        size_t n = NP - k < 64 ? (size_t)(NP - k) : 64;
        ck_assert_int_eq(ngs_raw_read_rows(r, 0, k, n, out), NGS_OK);
        ck_assert(close_rel(out[(n - 1) * 3 + 1], synth(k + n - 1, 1), 1e-15));
    }
    ngs_raw_close(r);
    tmp_free(&t);
}
END_TEST

/* ---- a file cut short while it is read ------------------------------------------------ */

static void on_bus_test(int sig)
{
    _exit(100 + sig); /* the test's own: a fault the reader did not catch ends here */
}

/* Another program truncating the RAW file under the reader's mapping used to kill the
 * process with SIGBUS (or, cut inside a page, give zeros as values): every later call
 * now fails with "shrank while being read", and the process's own SIGBUS handler is
 * the one it had before. */
START_TEST(test_file_shrinks_while_read)
{
    enum { NP = 200000 };
    tmpdir t;
    tmp_make(&t);
    char bin[512], asc[512];
    path_in(&t, "bin.raw", bin, sizeof bin);
    path_in(&t, "ascii.raw", asc, sizeof asc);
    write_synthetic(bin, NP, NGS_RAW_BINARY);
    write_synthetic(asc, 20000, NGS_RAW_ASCII);
    struct sigaction mine, seen;
    memset(&mine, 0, sizeof mine);
    mine.sa_handler = on_bus_test;
    sigemptyset(&mine.sa_mask);
    ck_assert_int_eq(sigaction(SIGBUS, &mine, NULL), 0);
    double *rows = malloc(NP * 3 * sizeof *rows);
    ck_assert_ptr_nonnull(rows);

    /* binary, cut at a page: a read past the cut faults */
    ngs_raw_reader *r = open_ok(bin);
    const ngs_raw_plot *p = plot_ok(r, 0);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 1000, rows), NGS_OK);
    ck_assert_int_eq(truncate(bin, (off_t)(p->data_offset + p->data_bytes / 2) & ~(off_t)65535), 0);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, NP - 1000, 1000, rows), NGS_ERR_IO);
    ck_assert_msg(strstr(ngs_raw_last_error(r), "bin.raw shrank while being read (") != NULL,
                  "%s", ngs_raw_last_error(r));
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 1, 0, 10, rows), NGS_ERR_IO); /* for good */
    ngs_raw_close(r);

    /* cut inside a page: the bytes after the cut read as zeros, without a fault */
    write_synthetic(bin, NP, NGS_RAW_BINARY);
    r = open_ok(bin);
    p = plot_ok(r, 0);
    uint64_t cut = p->data_offset + (uint64_t)p->row_bytes * (NP / 2) + 4;
    ck_assert_int_eq(truncate(bin, (off_t)cut), 0);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, NP / 2, 1, rows), NGS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ngs_raw_last_error(r), "shrank while being read"));
    ngs_raw_close(r);

    /* ASCII: the first access indexes the data */
    r = open_ok(asc);
    struct stat st;
    ck_assert_int_eq(stat(asc, &st), 0);
    ck_assert_int_eq(truncate(asc, st.st_size / 3), 0);
    ck_assert_int_eq(ngs_raw_plot_info(r, 0, &p), NGS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(ngs_raw_last_error(r), "ascii.raw shrank while being read"));
    ngs_raw_close(r);

    ck_assert_int_eq(sigaction(SIGBUS, NULL, &seen), 0);
    ck_assert(!(seen.sa_flags & SA_SIGINFO) && seen.sa_handler == on_bus_test);
    free(rows);
    tmp_free(&t);
}
END_TEST

/* ---- writer ----------------------------------------------------------------------------- */

START_TEST(test_writer_from_scratch)
{
    tmpdir t;
    tmp_make(&t);
    char path[512], err[512];
    path_in(&t, "w.raw", path, sizeof path);
    /* A complex plot whose scale is real (as QSPICE stores it): the writer makes it
     * ngspice-style, every variable complex. */
    ngs_raw_var vars[3] = {{.name = "frequency", .type = "frequency", .params = "grid=3"},
                           {.name = "v(out)", .type = "voltage", .is_complex = 1},
                           {.name = "i(v1)", .type = "current", .is_complex = 1}};
    ngs_raw_plot d = {.title = "scratch", .date = "now", .plotname = "AC Analysis",
                      .flags = "real fastaccess", .nvars = 3, .vars = vars};
    double rows[2 * 5] = {1, 0.5, -0.5, 1e-3, 0, 10, 0.25, -0.75, 2e-3, 1e-4};
    for (int enc = 0; enc < 2; enc++) {
        ngs_raw_writer *w;
        ck_assert_int_eq(ngs_raw_writer_open(&w, path, enc == 1, err, sizeof err), NGS_OK);
        ck_assert_int_eq(ngs_raw_writer_write_rows(w, rows, 1), NGS_ERR_STATE);
        ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &d, (ngs_raw_encoding)enc), NGS_OK);
        ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &d, (ngs_raw_encoding)enc), NGS_ERR_STATE);
        ck_assert_int_eq(ngs_raw_writer_write_rows(w, rows, 2), NGS_OK);
        ck_assert_int_eq(ngs_raw_writer_close(w), NGS_OK); /* ends the plot */
    }
    size_t n;
    unsigned char *data = read_file(path, &n);
    const char *expect =
        "Title: scratch\nDate: now\nPlotname: AC Analysis\nFlags: complex\nNo. Variables: 3\n"
        "No. Points: 2       \nVariables:\n\t0\tfrequency\tfrequency\tgrid=3\n"
        "\t1\tv(out)\tvoltage\n\t2\ti(v1)\tcurrent\nBinary:\n";
    ck_assert_int_eq(memcmp(data, expect, strlen(expect)), 0);
    const char *ascii = memmem(data, n, "Values:\n", 8);
    ck_assert_ptr_nonnull(ascii);
    ck_assert_str_eq(ascii, "Values:\n"
                            "0\t\t1.000000000000000e+00,0.000000000000000e+00\n"
                            "\t5.000000000000000e-01,-5.000000000000000e-01\n"
                            "\t1.000000000000000e-03,0.000000000000000e+00\n"
                            "1\t\t1.000000000000000e+01,0.000000000000000e+00\n"
                            "\t2.500000000000000e-01,-7.500000000000000e-01\n"
                            "\t2.000000000000000e-03,1.000000000000000e-04\n");
    free(data);
    ngs_raw_reader *r = open_ok(path);
    ck_assert_uint_eq(ngs_raw_nplots(r), 2);
    for (size_t i = 0; i < 2; i++) {
        const ngs_raw_plot *p = plot_ok(r, i);
        ck_assert_int_eq(p->is_complex, 1);
        ck_assert_uint_eq(p->npoints, 2);
        double back[12];
        ck_assert_int_eq(ngs_raw_read_rows(r, i, 0, 2, back), NGS_OK);
        ck_assert(back[0] == 1 && back[1] == 0 && back[2] == 0.5 && back[3] == -0.5 &&
                  back[4] == 1e-3 && back[5] == 0 && back[6] == 10 && back[11] == 1e-4);
    }
    ngs_raw_close(r);

    /* STYLE_WRITE has no padding: the hint is written, a shorter count is padded. */
    ngs_raw_var tv = {.name = "time", .type = "time"};
    ngs_raw_plot ws = {.plotname = "Transient Analysis", .flags = "real", .nvars = 1,
                       .vars = &tv, .style = NGS_RAW_STYLE_WRITE, .npoints = 100};
    double tx[12] = {0};
    ngs_raw_writer *ww;
    ck_assert_int_eq(ngs_raw_writer_open(&ww, path, 0, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_begin_plot(ww, &ws, NGS_RAW_ASCII), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_write_rows(ww, tx, 12), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_end_plot(ww), NGS_OK);
    ws.npoints = 0; /* 12 points do not fit in the 1 character written */
    ck_assert_int_eq(ngs_raw_writer_begin_plot(ww, &ws, NGS_RAW_BINARY), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_write_rows(ww, tx, 12), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_end_plot(ww), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_raw_writer_last_error(ww), "12 points do not fit"));
    ck_assert_int_eq(ngs_raw_writer_close(ww), NGS_OK);
    data = read_file(path, &n);
    ck_assert_ptr_nonnull(strstr((char *)data, "No. Points: 12 \nVariables:\n"));
    ck_assert_ptr_nonnull(strstr((char *)data, "Values:\n 0\t0.000000000000000e+00\n\n 1\t"));
    free(data);

    /* Bad descriptors and states. */
    ngs_raw_writer *w;
    ck_assert_int_eq(ngs_raw_writer_open(&w, path, 0, err, sizeof err), NGS_OK);
    ngs_raw_var bad = {.name = "v out", .type = "voltage"};
    ngs_raw_plot bd = {.plotname = "x", .nvars = 1, .vars = &bad};
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &bd, NGS_RAW_BINARY), NGS_ERR_ARG);
    bad.name = "v";
    bd.title = "two\nlines";
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &bd, NGS_RAW_BINARY), NGS_ERR_ARG);
    bd.title = "ok";
    bd.nvars = 0;
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &bd, NGS_RAW_BINARY), NGS_ERR_ARG);
    bd.nvars = 1;
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &bd, (ngs_raw_encoding)7), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &bd, NGS_RAW_NODATA), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_write_rows(w, tx, 1), NGS_ERR_STATE);
    ck_assert_int_eq(ngs_raw_writer_end_plot(w), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_end_plot(w), NGS_ERR_STATE);
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &bd, NGS_RAW_BINARY), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_close(w), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_open(&w, "/nonexistent/dir/x.raw", 0, err, sizeof err),
                     NGS_ERR_IO);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/x.raw: cannot open"));
    tmp_free(&t);
}
END_TEST

/* A header whose lines lack a Date (a damaged "DEte:" key) got its Date written above
 * its Title; after a plot of "No. Points: 0" in binary (a killed ngspice's count, whose
 * data runs to the next Title) that line was read as a point of that plot. Found by
 * fuzz_raw_replay -s 2 ("same shape"). */
START_TEST(test_writer_puts_a_missing_date_after_the_title)
{
    tmpdir t;
    tmp_make(&t);
    char path[512], err[512];
    path_in(&t, "d.raw", path, sizeof path);
    ngs_raw_var vars[2] = {{.name = "frequency", .type = "frequency"}, {.name = "v(a)", .type = "voltage"}};
    ngs_raw_line lines[4] = {{"Title", "t"}, {"DEte", "damaged"}, {"Plotname", "p"}, {"Flags", "real"}};
    ngs_raw_plot empty = {.title = "t", .date = "d", .plotname = "empty", .flags = "real", .nvars = 2, .vars = vars};
    ngs_raw_plot next = {.title = "t", .date = "d", .plotname = "p", .flags = "real", .nvars = 2, .vars = vars,
                         .nlines = 4, .lines = lines};
    double row[2] = {1, 2};
    ngs_raw_writer *w;
    ck_assert_int_eq(ngs_raw_writer_open(&w, path, 0, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &empty, NGS_RAW_BINARY), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_end_plot(w), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &next, NGS_RAW_BINARY), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_write_rows(w, row, 1), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_close(w), NGS_OK);
    size_t n;
    unsigned char *data = read_file(path, &n);
    ck_assert_ptr_nonnull(memmem(data, n, "Binary:\nTitle: t\nDate: d\nDEte: damaged\nPlotname: p\n", 51));
    free(data);
    ngs_raw_reader *r = open_ok(path);
    ck_assert_uint_eq(ngs_raw_nplots(r), 2);
    ck_assert_uint_eq(plot_ok(r, 0)->npoints, 0);
    ck_assert_int_eq(plot_ok(r, 0)->truncated, 0);
    ck_assert_uint_eq(plot_ok(r, 1)->npoints, 1);
    ngs_raw_close(r);
    tmp_free(&t);
}
END_TEST

/* The point-count width follows the hint; values stay '.'-decimal in any locale. */
START_TEST(test_writer_count_width_and_locale)
{
    tmpdir t;
    tmp_make(&t);
    char path[512], err[512];
    path_in(&t, "h.raw", path, sizeof path);
    ngs_raw_var v = {.name = "time", .type = "time"};
    ngs_raw_plot d = {.plotname = "Transient Analysis", .nvars = 1, .vars = &v,
                      .npoints = 1234567890};
    ngs_raw_writer *w;
    ck_assert_int_eq(ngs_raw_writer_open(&w, path, 0, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_begin_plot(w, &d, NGS_RAW_ASCII), NGS_OK);
    double x[3] = {0.5, 1.5, 2.5};
    const char *saved = setlocale(LC_NUMERIC, NULL);
    char keep[64];
    snprintf(keep, sizeof keep, "%s", saved ? saved : "C");
    setlocale(LC_NUMERIC, "de_DE.UTF-8"); /* may be absent; the test holds either way */
    ck_assert_int_eq(ngs_raw_writer_write_rows(w, x, 3), NGS_OK);
    ck_assert_int_eq(ngs_raw_writer_close(w), NGS_OK);
    size_t n;
    char *data = (char *)read_file(path, &n);
    ck_assert_ptr_nonnull(strstr(data, "No. Points: 3         \n"));
    ck_assert_ptr_nonnull(strstr(data, "\t1.500000000000000e+00\n"));
    ck_assert_ptr_nonnull(strstr(data, "Flags: real\n"));
    free(data);
    ngs_raw_reader *r = open_ok(path);
    double back[3];
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 0, 0, 3, back), NGS_OK);
    ck_assert(back[0] == 0.5 && back[1] == 1.5 && back[2] == 2.5);
    ngs_raw_close(r);
    setlocale(LC_NUMERIC, keep);
    tmp_free(&t);
}
END_TEST

/* Argument checks on the reader. */
START_TEST(test_reader_args)
{
    const char *text = "Title: t\nDate: d\nPlotname: p\nFlags: real\nNo. Variables: 1\n"
                       "No. Points: 2\nVariables:\n\t0\ttime\ttime\nValues:\n0\t1\n1\t2\n";
    ngs_raw_reader *r;
    char err[512];
    ck_assert_int_eq(ngs_raw_open_memory(&r, text, strlen(text), "a.raw", err, sizeof err), NGS_OK);
    const ngs_raw_plot *p;
    double v[4];
    ck_assert_int_eq(ngs_raw_plot_info(r, 1, &p), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_raw_last_error(r), "plot 1 does not exist"));
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 1, 0, 1, v), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, -1, 0, 1, v), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 0, 2, 1, v), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 0, 3, 0, v), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_read_vector(r, 0, 0, 2, 0, v), NGS_OK);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 0, 1, NULL), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, UINT64_MAX, 2, v), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_raw_read_rows(r, 0, 1, 1, v), NGS_OK);
    ck_assert(v[0] == 2.0);
    ck_assert_int_eq(ngs_raw_plot_info(NULL, 0, &p), NGS_ERR_ARG);
    ck_assert_uint_eq(ngs_raw_nplots(NULL), 0);
    ngs_raw_close(r);
    ngs_raw_close(NULL);
}
END_TEST

static Suite *raw_suite(void)
{
    Suite *s = suite_create("raw");
    TCase *tc = tcase_create("raw");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_ngspice_multi_plot);
    tcase_add_test(tc, test_binary_matches_ascii);
    tcase_add_test(tc, test_roundtrip_identical);
    tcase_add_test(tc, test_roundtrip_write_command_and_failed);
    tcase_add_test(tc, test_truncated_binary);
    tcase_add_test(tc, test_in_progress);
    tcase_add_test(tc, test_truncated_ascii);
    tcase_add_test(tc, test_corrupt_headers);
    tcase_add_test(tc, test_corrupt_ascii_data);
    tcase_add_test(tc, test_ltspice_utf16_float32);
    tcase_add_test(tc, test_ltspice_layouts);
    tcase_add_test(tc, test_dialect_from_command);
    tcase_add_test(tc, test_xyce_and_quirks);
    tcase_add_test(tc, test_binary_count_past_next_header);
    tcase_add_test(tc, test_ascii_random_access);
    tcase_add_test(tc, test_file_shrinks_while_read);
    tcase_add_test(tc, test_writer_from_scratch);
    tcase_add_test(tc, test_writer_puts_a_missing_date_after_the_title);
    tcase_add_test(tc, test_writer_count_width_and_locale);
    tcase_add_test(tc, test_reader_args);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(raw_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
