/*
 * test_convert.c - RAW -> HDF5 converter and HDF5 -> RAW exporter.
 *
 * The real ngspice writes the RAW files (each test in its own temporary directory, HOME
 * pointed there so no user .spiceinit changes the output). Checked: RAW -> HDF5 -> RAW
 * gives the same bytes for `-b -r` files (binary and ASCII) and `write` files, on every
 * codec and across chunk and read-block boundaries; the schema attributes and values of
 * a converted file; truncated, unfinished and corrupt input; files built like `ngscale
 * run` builds them (no provenance) export to RAW that ngspice loads; LTspice's float32
 * traces; and the error paths of both directions.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <hdf5.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ngs_check.h"
#include "hooks/dispatch.h"
#include "storage/codec.h"
#include "storage/convert.h"
#include "storage/h5writer.h"
#include "storage/raw.h"

/* ---- helpers ---------------------------------------------------------------------- */


static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void need_ngspice(void)
{
    ck_assert_msg(system("command -v ngspice >/dev/null 2>&1") == 0,
                  "ngspice is not installed (apt-get install ngspice)");
}

/* Runs `ngspice -b -r` on netlist text; returns the RAW path in out. */
static void run_ngspice(const tmpdir *t, const char *name, const char *netlist, int ascii,
                        char *out, size_t outlen)
{
    need_ngspice();
    char cir[512], cmd[2048];
    snprintf(cir, sizeof cir, "%s/%s.cir", t->dir, name);
    write_file(cir, netlist, strlen(netlist));
    snprintf(out, outlen, "%s/%s.raw", t->dir, name);
    snprintf(cmd, sizeof cmd,
             "cd '%s' && HOME='%s' %s ngspice -b -r '%s.raw' '%s.cir' >'%s.log' 2>&1",
             t->dir, t->dir, ascii ? "SPICE_ASCIIRAWFILE=1" : "", name, name, name);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "ngspice failed (%d): see %s/%s.log", rc, t->dir, name);
    ck_assert_msg(exists(out), "ngspice wrote no %s", out);
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

static const char *SMALL =
    "tf sens pz\n"
    "V1 in 0 DC 1 AC 1\n"
    "R1 in a 1k\n"
    "C1 a 0 1n\n"
    "R2 a out 1k\n"
    "C2 out 0 1n\n"
    ".tf v(out) V1\n"
    ".sens v(out)\n"
    ".pz in 0 out 0 vol pz\n"
    ".end\n";

/* 50001 points of 4 variables: 1.6 MB of data, several chunks and read blocks. */
static const char *TRAN =
    "tran only\n"
    "V1 in 0 PULSE(0 1 0 1u 1u 0.2m 0.5m)\n"
    "R1 in out 1k\n"
    "C1 out 0 100n\n"
    "R2 out 0 10k\n"
    ".tran 20n 1m\n"
    ".end\n";

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

static void convert_ok(const char *raw, const char *h5, const ngs_convert_options *o,
                       ngs_convert_report *rep)
{
    char err[1024] = "";
    int rc = ngs_convert_raw_to_h5(raw, h5, o, rep, err, sizeof err);
    ck_assert_msg(rc == NGS_OK, "convert %s: %d %s", raw, rc, err);
    ck_assert_str_eq(err, "");
}

static void export_ok(const char *h5, const char *group, const char *raw,
                      ngs_export_encoding enc)
{
    char err[1024] = "";
    int rc = ngs_export_h5_to_raw(h5, group, raw, enc, err, sizeof err);
    ck_assert_msg(rc == NGS_OK, "export %s: %d %s", h5, rc, err);
}

/* RAW -> HDF5 -> RAW must give the same bytes (each plot in the encoding it was read
 * in, by default). */
static void roundtrip(const tmpdir *t, const char *raw, const ngs_convert_options *o)
{
    char h5[512], back[512];
    ngs_convert_report rep;
    path_in(t, "rt.h5", h5, sizeof h5);
    path_in(t, "rt.raw", back, sizeof back);
    convert_ok(raw, h5, o, &rep);
    ck_assert_int_eq(rep.truncated, 0);
    ck_assert_uint_eq(rep.skipped_bytes, 0);
    export_ok(h5, NULL, back, NGS_EXPORT_AS_READ);
    assert_same_file(raw, back);
    remove(h5);
    remove(back);
}

static hid_t h5_open(const char *path)
{
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_msg(f >= 0, "cannot open %s", path);
    return f;
}

/* String attribute of obj (path relative to loc) into buf; "" when absent. */
static const char *attr_s(hid_t loc, const char *obj, const char *name, char *buf, size_t n)
{
    buf[0] = '\0';
    if (H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) <= 0)
        return buf;
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    hid_t t = H5Aget_type(a), mt = H5Tcopy(H5T_C_S1);
    ck_assert(H5Tis_variable_str(t) > 0);
    H5Tset_size(mt, H5T_VARIABLE);
    H5Tset_cset(mt, H5T_CSET_UTF8);
    char *s = NULL;
    ck_assert(H5Aread(a, mt, &s) >= 0);
    snprintf(buf, n, "%s", s ? s : "");
    H5free_memory(s);
    H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
    return buf;
}

static int has_attr(hid_t loc, const char *obj, const char *name)
{
    return H5Aexists_by_name(loc, obj, name, H5P_DEFAULT) > 0;
}

static long long attr_i(hid_t loc, const char *obj, const char *name)
{
    long long v = -12345;
    ck_assert_msg(has_attr(loc, obj, name), "no attribute %s on %s", name, obj);
    hid_t a = H5Aopen_by_name(loc, obj, name, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(H5Aread(a, H5T_NATIVE_LLONG, &v) >= 0);
    H5Aclose(a);
    return v;
}

/* Dataset values as doubles (complex: re, im interleaved); *n points. */
static double *dset_values(hid_t f, const char *path, size_t *n, int *is_complex)
{
    hid_t d = H5Dopen2(f, path, H5P_DEFAULT);
    ck_assert_msg(d >= 0, "no dataset %s", path);
    hid_t s = H5Dget_space(d), t = H5Dget_type(d);
    hsize_t dims = 0;
    H5Sget_simple_extent_dims(s, &dims, NULL);
    *is_complex = H5Tget_class(t) == H5T_COMPOUND;
    hid_t mt;
    if (*is_complex) {
        mt = H5Tcreate(H5T_COMPOUND, 16);
        H5Tinsert(mt, "r", 0, H5T_NATIVE_DOUBLE);
        H5Tinsert(mt, "i", 8, H5T_NATIVE_DOUBLE);
    } else {
        mt = H5Tcopy(H5T_NATIVE_DOUBLE);
    }
    double *v = malloc(((size_t)dims * 2 + 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    if (dims)
        ck_assert(H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0);
    *n = (size_t)dims;
    H5Tclose(mt);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return v;
}

static ngs_raw_reader *open_raw(const char *path)
{
    char err[512] = "";
    ngs_raw_reader *r = NULL;
    int rc = ngs_raw_open(&r, path, err, sizeof err);
    ck_assert_msg(rc == NGS_OK, "open %s: %d %s", path, rc, err);
    return r;
}

static const ngs_raw_plot *plot_of(ngs_raw_reader *r, size_t i)
{
    const ngs_raw_plot *p = NULL;
    int rc = ngs_raw_plot_info(r, i, &p);
    ck_assert_msg(rc == NGS_OK, "plot %zu: %d %s", i, rc, ngs_raw_last_error(r));
    return p;
}

static double *rows_of(ngs_raw_reader *r, size_t i)
{
    const ngs_raw_plot *p = plot_of(r, i);
    double *rows = malloc(((size_t)p->npoints * (size_t)p->row_doubles + 1) * sizeof *rows);
    ck_assert_ptr_nonnull(rows);
    ck_assert_int_eq(ngs_raw_read_rows(r, i, 0, (size_t)p->npoints, rows), NGS_OK);
    return rows;
}

/* ---- round trips of ngspice's own files ------------------------------------------- */

/* `ngspice -b -r` output: tran, ac (complex, with the uninitialised imaginary part of
 * the frequency kept as it is), op, dc, noise (two plots) in one file; tf, sens, pz;
 * binary and ASCII. */
START_TEST(test_roundtrip_batch_files)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512];
    run_ngspice(&t, "multi", MULTI, 0, raw, sizeof raw);
    roundtrip(&t, raw, NULL);
    run_ngspice(&t, "small", SMALL, 0, raw, sizeof raw);
    roundtrip(&t, raw, NULL);
    run_ngspice(&t, "multia", MULTI, 1, raw, sizeof raw);
    roundtrip(&t, raw, NULL);
    run_ngspice(&t, "smalla", SMALL, 1, raw, sizeof raw);
    roundtrip(&t, raw, NULL);
    /* Either encoding can be forced on every plot. */
    char h5[512], back[512];
    ngs_convert_report rep;
    path_in(&t, "f.h5", h5, sizeof h5);
    path_in(&t, "f.raw", back, sizeof back);
    convert_ok(raw, h5, NULL, &rep);
    for (int k = 0; k < 2; k++) {
        export_ok(h5, NULL, back, k ? NGS_EXPORT_ASCII : NGS_EXPORT_BINARY);
        ngs_raw_reader *r = open_raw(back);
        ck_assert_uint_eq(ngs_raw_nplots(r), 3);
        for (size_t i = 0; i < ngs_raw_nplots(r); i++)
            ck_assert_int_eq(plot_of(r, i)->encoding, k ? NGS_RAW_ASCII : NGS_RAW_BINARY);
        ngs_raw_close(r);
    }
    tmp_free(&t);
}
END_TEST

/* A larger plot on every codec, with chunks and read blocks that do not divide the
 * point count (and a complete point count patched beyond the writer's buffer). */
START_TEST(test_roundtrip_codecs_and_blocks)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512];
    run_ngspice(&t, "tran", TRAN, 0, raw, sizeof raw);
    ngs_raw_reader *r = open_raw(raw);
    ck_assert_uint_gt(plot_of(r, 0)->data_bytes, 1u << 20);
    ngs_raw_close(r);
    static const struct {
        ngs_codec codec;
        int level;
        size_t chunk, read_bytes;
        int threads;
    } cases[] = {
        {NGS_CODEC_ZSTD, 0, 0, 0, 0},       {NGS_CODEC_ZSTD, 9, 777, 1000, 1},
        {NGS_CODEC_DEFLATE, 0, 4096, 0, 2}, {NGS_CODEC_DEFLATE, 1, 1, 32, 0},
        {NGS_CODEC_NONE, 0, 0, 33 * 4096, 3},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ngs_convert_options o;
        ngs_convert_options_init(&o);
        o.codec = cases[i].codec;
        o.level = cases[i].level;
        o.chunk_points = cases[i].chunk;
        o.read_bytes = cases[i].read_bytes;
        o.threads = cases[i].threads;
        if (cases[i].chunk == 1) { /* one point per chunk: only a short file */
            char small[512];
            run_ngspice(&t, "multi", MULTI, 0, small, sizeof small);
            roundtrip(&t, small, &o);
            continue;
        }
        roundtrip(&t, raw, &o);
    }
    tmp_free(&t);
}
END_TEST

/* The lossy codecs convert too: the way back keeps the scale exact and every other value
 * within the bound asked for (the bytes then differ, as they must). */
START_TEST(test_lossy_codecs)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], h5[512], back[512], buf[64];
    run_ngspice(&t, "tran", TRAN, 0, raw, sizeof raw);
    path_in(&t, "lossy.h5", h5, sizeof h5);
    path_in(&t, "back.raw", back, sizeof back);
    ngs_raw_reader *r = open_raw(raw);
    const ngs_raw_plot *p = plot_of(r, 0);
    size_t np = (size_t)p->npoints, rd = (size_t)p->row_doubles;
    double *orig = rows_of(r, 0);
    ngs_raw_close(r);
    static const struct {
        ngs_codec codec;
        const char *name;
        double abs_err, rel_err;
    } cases[] = {{NGS_CODEC_BOUNDED, "bounded", 1e-9, 0},
                 {NGS_CODEC_BITROUND, "bitround", 0, 1e-6}};
    for (size_t c = 0; c < 2; c++) {
        ngs_convert_options o;
        ngs_convert_options_init(&o);
        o.codec = cases[c].codec;
        o.lossy.abs_err = cases[c].abs_err;
        o.lossy.rel_err = cases[c].rel_err;
        convert_ok(raw, h5, &o, NULL);
        hid_t f = h5_open(h5);
        ck_assert_str_eq(attr_s(f, "run", "codec", buf, sizeof buf), cases[c].name);
        H5Fclose(f);
        export_ok(h5, NULL, back, 0);
        r = open_raw(back);
        p = plot_of(r, 0);
        ck_assert_uint_eq(p->npoints, np);
        double *got = rows_of(r, 0);
        for (size_t k = 0; k < np; k++)
            for (size_t j = 0; j < rd; j++) {
                double a = got[k * rd + j], b = orig[k * rd + j];
                double bound = j == 0 ? 0 : cases[c].abs_err + cases[c].rel_err * fabs(b);
                ck_assert_msg(fabs(a - b) <= bound, "%s: point %zu var %zu: %.17g vs %.17g",
                              cases[c].name, k, j, a, b);
            }
        free(got);
        ngs_raw_close(r);
    }
    free(orig);
    tmp_free(&t);
}
END_TEST

/* Files of ngspice's `write` command (different header layout: unpadded count, " grid=3",
 * ASCII points " 0\t..."), appended plots (one file binary then ASCII), and headers of
 * analyses that failed before their first point. */
START_TEST(test_roundtrip_write_command_and_failed)
{
    need_ngspice();
    tmpdir t;
    tmp_make(&t);
    char raw[512], cir[512], cmd[1024];
    const char *ctl =
        "write command\n"
        "V1 in 0 DC 1 AC 1\n"
        "R1 in out 1k\n"
        "C1 out 0 1u\n"
        ".control\n"
        "ac dec 4 1 1k\n"
        "write wr_ac.raw\n"
        "write wr_mix.raw\n"
        "tran 10u 1m\n"
        "write wr_bin.raw\n"
        "set appendwrite\n"
        "op\n"
        "write wr_bin.raw\n"
        "set filetype=ascii\n"
        "write wr_mix.raw\n"
        "unset appendwrite\n"
        "write wr_asc.raw\n"
        ".endc\n"
        ".end\n";
    path_in(&t, "ctl.cir", cir, sizeof cir);
    write_file(cir, ctl, strlen(ctl));
    snprintf(cmd, sizeof cmd, "cd '%s' && HOME='%s' ngspice -b ctl.cir >ctl.log 2>&1", t.dir,
             t.dir);
    ck_assert_int_ne(system(cmd), -1); /* exits 1 ("no simulations run") after the writes */
    static const char *names[] = {"wr_ac.raw", "wr_bin.raw", "wr_asc.raw", "wr_mix.raw"};
    for (int i = 0; i < 4; i++) {
        path_in(&t, names[i], raw, sizeof raw);
        ck_assert_msg(exists(raw), "ngspice wrote no %s", raw);
        ngs_raw_reader *r = open_raw(raw);
        ck_assert_int_eq(plot_of(r, 0)->style, NGS_RAW_STYLE_WRITE);
        if (i == 1 || i == 3)
            ck_assert_uint_eq(ngs_raw_nplots(r), 2);
        if (i == 3)
            ck_assert(plot_of(r, 0)->encoding == NGS_RAW_BINARY &&
                      plot_of(r, 1)->encoding == NGS_RAW_ASCII);
        ngs_raw_close(r);
        roundtrip(&t, raw, NULL);
    }
    /* Two analyses that cannot start: ngspice leaves headers without list or data. */
    const char *fail = "cannot start\nV1 a 0 1\nV2 a 0 2\nR1 a 0 1k\n.tran 1n 1u\n"
                       ".dc V1 0 1 0.5\n.end\n";
    path_in(&t, "fail.cir", cir, sizeof cir);
    write_file(cir, fail, strlen(fail));
    snprintf(cmd, sizeof cmd,
             "cd '%s' && HOME='%s' ngspice -b -r fail.raw fail.cir >fail.log 2>&1", t.dir,
             t.dir);
    ck_assert_int_ne(system(cmd), -1);
    path_in(&t, "fail.raw", raw, sizeof raw);
    ngs_raw_reader *r = open_raw(raw);
    ck_assert_int_eq(plot_of(r, 0)->encoding, NGS_RAW_NODATA);
    ngs_raw_close(r);
    roundtrip(&t, raw, NULL);
    tmp_free(&t);
}
END_TEST

/* ---- what a converted file holds ------------------------------------------------------ */

START_TEST(test_schema_attributes_and_values)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], h5[512], buf[4096], path[256];
    run_ngspice(&t, "multi", MULTI, 0, raw, sizeof raw);
    path_in(&t, "multi.h5", h5, sizeof h5);
    ngs_convert_report rep;
    convert_ok(raw, h5, NULL, &rep);
    ngs_raw_reader *r = open_raw(raw);
    ck_assert_int_eq(rep.plots, 6);
    ck_assert_uint_eq(rep.bytes_in, ngs_raw_info(r)->size);
    ck_assert_uint_gt(rep.bytes_out, 0);
    ck_assert(rep.seconds > 0);
    ck_assert_int_eq(rep.truncated, 0);
    ck_assert_str_eq(rep.message, "");

    hid_t f = h5_open(h5);
    ck_assert_str_eq(attr_s(f, ".", "ngscale_format", buf, sizeof buf), "ngscale-hdf5");
    ck_assert_int_eq(attr_i(f, ".", "ngscale_format_version"), NGSCALE_FORMAT_VERSION);
    ck_assert_str_eq(attr_s(f, "run", "status", buf, sizeof buf), "complete");
    ck_assert_str_eq(attr_s(f, "run", "message", buf, sizeof buf), "");
    ck_assert_str_eq(attr_s(f, "run", "codec", buf, sizeof buf), "zstd");
    ck_assert_str_eq(attr_s(f, "run", "title", buf, sizeof buf), "multi analysis test");
    char *abs = realpath(raw, NULL);
    ck_assert_str_eq(attr_s(f, "run", "source_raw", buf, sizeof buf), abs);
    free(abs);
    ck_assert_int_eq(attr_i(f, "run", "source_raw_bytes"), (long long)ngs_raw_info(r)->size);
    ck_assert_int_eq(attr_i(f, "run", "plots"), 6);
    ck_assert(!has_attr(f, "run", "netlist"));
    ck_assert(!has_attr(f, "run", "raw_warning"));

    static const struct {
        const char *group, *analysis, *scale;
    } plots[] = {{"ac1", "ac", "frequency"},   {"dc1", "dc", "v(v-sweep)"},
                 {"op1", "op", "v(in)"},       {"tran1", "tran", "time"},
                 {"noise1", "noise", "frequency"}, {"noise2", "noise", "v(onoise_total)"}};
    uint64_t total = 0;
    for (size_t i = 0; i < 6; i++) {
        const ngs_raw_plot *p = plot_of(r, i);
        char g[64];
        snprintf(g, sizeof g, "run/%s", plots[i].group);
        ck_assert_msg(H5Lexists(f, g, H5P_DEFAULT) > 0, "no group %s", g);
        ck_assert_str_eq(attr_s(f, g, "plot_name", buf, sizeof buf), plots[i].group);
        ck_assert_str_eq(attr_s(f, g, "analysis", buf, sizeof buf), plots[i].analysis);
        ck_assert_str_eq(attr_s(f, g, "plotname", buf, sizeof buf), p->plotname);
        ck_assert_str_eq(attr_s(f, g, "title", buf, sizeof buf), p->title);
        ck_assert_str_eq(attr_s(f, g, "date", buf, sizeof buf), p->date);
        ck_assert_str_eq(attr_s(f, g, "flags", buf, sizeof buf),
                         p->is_complex ? "complex" : "real");
        ck_assert_str_eq(attr_s(f, g, "scale", buf, sizeof buf), plots[i].scale);
        ck_assert_str_eq(attr_s(f, g, "status", buf, sizeof buf), "complete");
        ck_assert_int_eq(attr_i(f, g, "index"), (long long)i);
        ck_assert_int_eq(attr_i(f, g, "points"), (long long)p->npoints);
        /* provenance */
        ck_assert_str_eq(attr_s(f, g, "raw_style", buf, sizeof buf), "batch");
        ck_assert_str_eq(attr_s(f, g, "raw_encoding", buf, sizeof buf), "binary");
        ck_assert_str_eq(attr_s(f, g, "raw_dialect", buf, sizeof buf), "ngspice");
        ck_assert_str_eq(attr_s(f, g, "raw_flags", buf, sizeof buf), p->flags);
        ck_assert_int_eq(attr_i(f, g, "raw_points_declared"), (long long)p->npoints);
        ck_assert_int_eq(attr_i(f, g, "raw_offset"), (long long)p->header_offset);
        attr_s(f, g, "raw_header", buf, sizeof buf);
        ck_assert_msg(strncmp(buf, "Title: multi analysis test\nDate: ", 33) == 0, "%s", buf);
        char want[128];
        snprintf(want, sizeof want,
                 "\nPlotname: %s\nFlags: %s\nNo. Variables: %d\nNo. Points: %-8llu\n",
                 p->plotname, p->flags, p->nvars, (unsigned long long)p->npoints);
        ck_assert_msg(strstr(buf, want) != NULL, "%s lacks %s", buf, want);
        /* vectors: attributes and values bit for bit */
        double *rows = rows_of(r, i);
        for (int k = 0; k < p->nvars; k++) {
            const ngs_raw_var *v = &p->vars[k];
            snprintf(path, sizeof path, "%s/%s", g, v->name);
            ck_assert_str_eq(attr_s(f, path, "name", buf, sizeof buf), v->name);
            ck_assert_str_eq(attr_s(f, path, "type", buf, sizeof buf), v->type);
            ck_assert_int_eq(attr_i(f, path, "index"), k);
            ck_assert_int_eq(attr_i(f, path, "is_scale"), k == 0);
            ck_assert_str_eq(attr_s(f, path, "raw_params", buf, sizeof buf), v->params);
            ck_assert(!has_attr(f, path, "raw_storage"));
            size_t n;
            int cplx;
            double *vals = dset_values(f, path, &n, &cplx);
            ck_assert_uint_eq(n, p->npoints);
            ck_assert_int_eq(cplx, v->is_complex);
            for (size_t j = 0; j < n; j++)
                for (int c = 0; c < (cplx ? 2 : 1); c++)
                    ck_assert_msg(memcmp(&vals[j * (cplx ? 2 : 1) + c],
                                         &rows[j * (size_t)p->row_doubles + (size_t)v->column + c],
                                         8) == 0,
                                  "%s[%zu] differs", path, j);
            free(vals);
        }
        free(rows);
        total += p->npoints;
    }
    ck_assert_int_eq(attr_i(f, "run", "points"), (long long)total);
    ck_assert_uint_eq(rep.points, total);
    /* units and ngspice names */
    ck_assert_str_eq(attr_s(f, "run/ac1/frequency", "unit", buf, sizeof buf), "Hz");
    ck_assert_str_eq(attr_s(f, "run/ac1/frequency", "raw_params", buf, sizeof buf), "grid=3");
    ck_assert_str_eq(attr_s(f, "run/tran1/time", "unit", buf, sizeof buf), "s");
    ck_assert_str_eq(attr_s(f, "run/tran1/v(out)", "unit", buf, sizeof buf), "V");
    ck_assert_str_eq(attr_s(f, "run/tran1/v(out)", "ngspice_name", buf, sizeof buf), "out");
    ck_assert_str_eq(attr_s(f, "run/tran1/i(v1)", "unit", buf, sizeof buf), "A");
    ck_assert_str_eq(attr_s(f, "run/tran1/i(v1)", "ngspice_name", buf, sizeof buf), "v1#branch");
    ck_assert_str_eq(attr_s(f, "run/noise1/onoise_spectrum", "unit", buf, sizeof buf),
                     "V/sqrt(Hz)");
    ck_assert_str_eq(attr_s(f, "run/noise1/onoise_spectrum", "ngspice_name", buf, sizeof buf),
                     "onoise_spectrum");
    H5Fclose(f);
    ngs_raw_close(r);
    tmp_free(&t);
}
END_TEST

START_TEST(test_analysis_names)
{
    static const struct {
        const char *plotname, *analysis;
    } cases[] = {
        {"Transient Analysis", "tran"},
        {"AC Analysis", "ac"},
        {"DC transfer characteristic", "dc"},
        {"Operating Point", "op"},
        {"Noise Spectral Density Curves", "noise"},
        {"Noise Spectral Density - (V/Hz\xc2\xbd or A/Hz\xc2\xbd)", "noise"},
        {"Integrated Noise", "noise"},
        {"Transfer Function", "tf"},
        {"Sensitivity Analysis", "sens"},
        {"Pole-Zero Analysis", "pz"},
        {"DISTORTION - 2nd harmonic", "disto"},
        {"Periodic Steady State Analysis", "periodic"},
        {"  S-Parameter Analysis", "s-parameter"},
        {"", "plot"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ck_assert_int_eq(ngs_convert_analysis_name(cases[i].plotname, out, sizeof out), NGS_OK);
        ck_assert_str_eq(out, cases[i].analysis);
    }
    ck_assert_int_eq(ngs_convert_analysis_name("Transient Analysis", out, 4), NGS_OK);
    ck_assert_str_eq(out, "tra");
    ck_assert_int_eq(ngs_convert_analysis_name(NULL, out, sizeof out), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_convert_analysis_name("x", NULL, 8), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_convert_analysis_name("x", out, 1), NGS_ERR_ARG);
}
END_TEST

/* Groups and append: two conversions in one file; the same group twice is refused. */
START_TEST(test_groups_and_append)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], raw2[512], h5[512], back[512], err[512], buf[256];
    run_ngspice(&t, "multi", MULTI, 0, raw, sizeof raw);
    run_ngspice(&t, "small", SMALL, 0, raw2, sizeof raw2);
    path_in(&t, "two.h5", h5, sizeof h5);
    path_in(&t, "back.raw", back, sizeof back);
    ngs_convert_options o;
    ngs_convert_options_init(&o);
    o.group = "first/one";
    convert_ok(raw, h5, &o, NULL);
    o.group = "second";
    o.append = 1;
    o.codec = NGS_CODEC_DEFLATE;
    convert_ok(raw2, h5, &o, NULL);
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw2, h5, &o, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "already exists") != NULL, "%s", err);

    hid_t f = h5_open(h5);
    ck_assert(H5Lexists(f, "first%2Fone", H5P_DEFAULT) > 0);
    ck_assert_str_eq(attr_s(f, "second", "codec", buf, sizeof buf), "deflate");
    ck_assert_str_eq(attr_s(f, "second", "status", buf, sizeof buf), "complete");
    ck_assert_str_eq(attr_s(f, "first%2Fone", "status", buf, sizeof buf), "complete");
    ck_assert_str_eq(attr_s(f, "second/pz1", "analysis", buf, sizeof buf), "pz");
    H5Fclose(f);

    /* Two runs, none named "run": the exporter wants a name. */
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, back, 0, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "first%2Fone") && strstr(err, "second"), "%s", err);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, "third", back, 0, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "no run group 'third'"), "%s", err);
    export_ok(h5, "first/one", back, 0);
    assert_same_file(raw, back);
    export_ok(h5, "second", back, 0);
    assert_same_file(raw2, back);

    /* Append to a file that is not there, or not an ngscale file. */
    path_in(&t, "none.h5", h5, sizeof h5);
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, h5, &o, NULL, err, sizeof err), NGS_ERR_IO);
    tmp_free(&t);
}
END_TEST

/* ---- truncated and corrupt input ------------------------------------------------------ */

static void check_status(const char *h5, const char *obj, const char *status, const char *needle)
{
    char buf[1024];
    hid_t f = h5_open(h5);
    ck_assert_str_eq(attr_s(f, obj, "status", buf, sizeof buf), status);
    attr_s(f, obj, "message", buf, sizeof buf);
    ck_assert_msg(strstr(buf, needle) != NULL, "%s: message '%s' lacks '%s'", obj, buf, needle);
    H5Fclose(f);
}

START_TEST(test_truncated_input)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], cut[512], h5[512], back[512], want[256];
    run_ngspice(&t, "multi", MULTI, 0, raw, sizeof raw);
    ngs_raw_reader *r = open_raw(raw);
    const ngs_raw_plot *tr = plot_of(r, 3), *nz = plot_of(r, 4);
    ck_assert_str_eq(tr->plotname, "Transient Analysis");
    uint64_t tr_off = tr->data_offset, tr_hdr = tr->header_offset, tr_decl = tr->npoints;
    uint64_t nz_hdr = nz->header_offset;
    uint32_t rb = tr->row_bytes;
    double *orig = rows_of(r, 3);
    ngs_raw_close(r);
    size_t n;
    unsigned char *data = read_file(raw, &n);
    path_in(&t, "cut.raw", cut, sizeof cut);
    path_in(&t, "cut.h5", h5, sizeof h5);
    path_in(&t, "back.raw", back, sizeof back);

    /* Cut in the middle of point 11 of the transient plot (4th of 6). */
    size_t keep = (size_t)tr_off + 10 * rb + rb / 2;
    write_file(cut, data, keep);
    ngs_convert_report rep;
    convert_ok(cut, h5, NULL, &rep);
    ck_assert_int_eq(rep.truncated, 1);
    ck_assert_int_eq(rep.plots, 4);
    ck_assert_uint_eq(rep.skipped_bytes, rb / 2);
    snprintf(want, sizeof want,
             "the RAW file is truncated at byte %zu inside a point: 10 of %llu points recovered",
             keep, (unsigned long long)tr_decl);
    ck_assert_msg(strstr(rep.message, want) && strstr(rep.message, "Transient Analysis"),
                  "%s", rep.message);
    check_status(h5, "run", "incomplete", want);
    check_status(h5, "run/tran1", "incomplete", want);
    check_status(h5, "run/op1", "complete", "");
    /* The export holds the 10 complete points: the cut file less the partial point,
     * with its point count. */
    ngs_convert_report xr;
    char err[512];
    ck_assert_int_eq(ngs_export_h5_to_raw_report(h5, NULL, back, 0, &xr, err, sizeof err),
                     NGS_OK);
    ck_assert_int_eq(xr.truncated, 1);
    ck_assert_int_eq(xr.plots, 4);
    snprintf(want, sizeof want, "; the RAW file holds the %llu points written",
             (unsigned long long)xr.points);
    ck_assert_msg(strstr(xr.message, "run run is incomplete: plot 4 (Transient Analysis)") &&
                  strstr(xr.message, want), "%s", xr.message);
    r = open_raw(back);
    ck_assert_uint_eq(ngs_raw_nplots(r), 4);
    const ngs_raw_plot *p = plot_of(r, 3);
    ck_assert_uint_eq(p->npoints, 10);
    ck_assert_int_eq(p->truncated, 0);
    double *got = rows_of(r, 3);
    ck_assert_mem_eq(got, orig, 10 * rb);
    free(got);
    ngs_raw_close(r);

    /* Cut at a point boundary: nothing partial is skipped. */
    write_file(cut, data, (size_t)tr_off + 20 * rb);
    convert_ok(cut, h5, NULL, &rep);
    ck_assert_int_eq(rep.truncated, 1);
    ck_assert_uint_eq(rep.skipped_bytes, 0);
    ck_assert_msg(strstr(rep.message, ": 20 of ") && !strstr(rep.message, "inside"), "%s",
                  rep.message);

    /* Still being written: No. Points 0, as ngspice leaves it until the end. */
    unsigned char *prog = malloc(n);
    memcpy(prog, data, n);
    char *np = strstr((char *)prog + tr_hdr, "No. Points: ");
    ck_assert_ptr_nonnull(np);
    memcpy(np + 12, "0       ", 8);
    write_file(cut, prog, (size_t)tr_off + 30 * rb + 3);
    convert_ok(cut, h5, NULL, &rep);
    ck_assert_int_eq(rep.truncated, 1);
    ck_assert_msg(strstr(rep.message, "still being written") &&
                  strstr(rep.message, "30 complete points recovered"), "%s", rep.message);
    check_status(h5, "run/tran1", "incomplete", "30 complete points recovered");
    free(prog);

    /* Cut inside the header of the 5th plot: 4 complete plots. */
    write_file(cut, data, (size_t)nz_hdr + 40);
    convert_ok(cut, h5, NULL, &rep);
    ck_assert_int_eq(rep.truncated, 1);
    ck_assert_int_eq(rep.plots, 4);
    ck_assert_uint_eq(rep.skipped_bytes, 40);
    ck_assert_msg(strstr(rep.message, "inside the header of plot 5"), "%s", rep.message);
    check_status(h5, "run", "incomplete", "inside the header of plot 5");
    check_status(h5, "run/tran1", "complete", "");

    /* Bytes after the last plot that are no plot: converted, complete, with a warning. */
    unsigned char *trail = malloc(n + 9);
    memcpy(trail, data, n);
    memcpy(trail + n, "garbage\x01\x02", 9);
    write_file(cut, trail, n + 9);
    convert_ok(cut, h5, NULL, &rep);
    ck_assert_int_eq(rep.truncated, 0);
    ck_assert_int_eq(rep.plots, 6);
    ck_assert_uint_eq(rep.skipped_bytes, 9);
    snprintf(want, sizeof want, "9 bytes at byte %zu are not a RAW plot", n);
    ck_assert_msg(strstr(rep.message, want), "%s", rep.message);
    check_status(h5, "run", "complete", "");
    char buf[512];
    hid_t f = h5_open(h5);
    ck_assert_msg(strstr(attr_s(f, "run", "raw_warning", buf, sizeof buf), want), "%s", buf);
    H5Fclose(f);
    free(trail);
    free(data);
    free(orig);
    tmp_free(&t);
}
END_TEST

START_TEST(test_corrupt_input)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], h5[512], err[512];
    path_in(&t, "bad.raw", raw, sizeof raw);
    path_in(&t, "bad.h5", h5, sizeof h5);
    ngs_convert_report rep;

    /* A corrupt header: where and what; no output is created. */
    const char *hdr = "Title: t\nDate: d\nPlotname: p\nFlags: real\nNo. Variables: two\n";
    write_file(raw, hdr, strlen(hdr));
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, h5, NULL, &rep, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_msg(strstr(err, "bad.raw: byte 41 (line 5): 'No. Variables' is not a number"),
                  "%s", err);
    ck_assert(!exists(h5));
    ck_assert_int_eq(rep.plots, 0);

    /* Not a RAW file at all. */
    write_file(raw, "\x89PNG\r\n", 6);
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, h5, NULL, NULL, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_msg(strstr(err, "byte 0"), "%s", err);

    /* Missing input, NULL arguments, unknown codec, output that cannot be created. */
    path_in(&t, "missing.raw", raw, sizeof raw);
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, h5, NULL, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "missing.raw") && strstr(err, "No such file"), "%s", err);
    ck_assert_int_eq(ngs_convert_raw_to_h5(NULL, h5, NULL, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, NULL, NULL, NULL, NULL, 0), NGS_ERR_ARG);
    ngs_convert_options o;
    ngs_convert_options_init(&o);
    o.codec = (ngs_codec)7;
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, h5, &o, NULL, err, sizeof err), NGS_ERR_ARG);

    /* An ASCII value that is not a number: the plot ends before it, as a cut file does
     * (its byte, line and point in the message); the points before it are kept. It once
     * refused the file, and every good point and plot in it. */
    const char *text =
        "Title: t\nDate: d\nPlotname: Transient Analysis\nFlags: real\nNo. Variables: 2\n"
        "No. Points: 3\nVariables:\n\t0\ttime\ttime\n\t1\tv(a)\tvoltage\nValues:\n"
        "0\t\t0.0\n\t1.0\n"
        "1\t\t1.0\n\t2.0.0\n" /* line 14, byte 157 */
        "2\t\t2.0\n\t3.0\n";
    char buf[512];
    path_in(&t, "bad.raw", raw, sizeof raw);
    write_file(raw, text, strlen(text));
    convert_ok(raw, h5, NULL, &rep);
    ck_assert_int_eq(rep.truncated, 1);
    ck_assert_int_eq(rep.points, 1);
    ck_assert_str_eq(rep.message, "plot 1 (Transient Analysis): byte 157 (line 14): '2.0.0' is not "
                     "a number (point 1, v(a)): 1 of 3 points recovered");
    hid_t f = h5_open(h5);
    ck_assert_str_eq(attr_s(f, "run", "status", buf, sizeof buf), "incomplete");
    ck_assert_str_eq(attr_s(f, "run/tran1", "message", buf, sizeof buf), rep.message + 29);
    size_t nv;
    int cx;
    double *v = dset_values(f, "run/tran1/v(a)", &nv, &cx);
    ck_assert_uint_eq(nv, 1);
    ck_assert_double_eq(v[0], 1.0);
    free(v);
    H5Fclose(f);

    /* Output over the input (the reader maps it: truncating it would crash). */
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, raw, NULL, NULL, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "same file"), "%s", err);
    size_t before;
    free(read_file(raw, &before));
    ck_assert_uint_eq(before, strlen(text));

    /* The output directory does not exist. */
    path_in(&t, "no/such/dir.h5", h5, sizeof h5);
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw, h5, NULL, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "no/such/dir.h5"), "%s", err);
    tmp_free(&t);
}
END_TEST

/* ---- files from `ngscale run` (no provenance) -------------------------------------------- */

/* Writes what `ngscale run` writes for a tran, an ac (log sweep) and an op plot. */
static void write_run_like_file(const char *path, int nt)
{
    ngs_h5_options ho;
    ngs_h5_options_init(&ho);
    ho.swmr = 0;
    ho.chunk_points = 1000;
    ngs_h5_writer *w = NULL;
    char err[512];
    ck_assert_int_eq(ngs_h5_open(&w, path, &ho, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_begin(w, NULL), NGS_OK);
    ngs_vector_desc tv[3] = {
        {"time", "time", 1, "time", "s", 0, 1, 0},
        {"v(out)", "out", 3, "voltage", "V", 0, 0, 0},
        {"i(v1)", "v1#branch", 4, "current", "A", 0, 0, 0},
    };
    ngs_plot_desc *d = ngs_plot_desc_new("tran1", "Transient Analysis", "tran", "run title",
                                         "Thu Jan  1 00:00:00  2026", 0, tv, 3);
    ck_assert_int_eq(ngs_h5_plot_begin(w, d), NGS_OK);
    ngs_plot_desc_free(d);
    double *rows = malloc(sizeof(double) * 3 * (size_t)nt);
    for (int k = 0; k < nt; k++) {
        rows[3 * k] = k * 1e-6;
        rows[3 * k + 1] = k * 0.125;
        rows[3 * k + 2] = -k * 1e-3;
    }
    ck_assert_int_eq(ngs_h5_rows(w, rows, (size_t)nt), NGS_OK);
    free(rows);
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, NULL), NGS_OK);

    ngs_vector_desc av[2] = {
        {"frequency", "frequency", 2, "frequency", "Hz", 1, 1, 0},
        {"v(out)", "out", 3, "voltage", "V", 1, 0, 0},
    };
    d = ngs_plot_desc_new("ac1", "AC Analysis", "ac", "run title", "Thu Jan  1 00:00:00  2026",
                          1, av, 2);
    ck_assert_int_eq(ngs_h5_plot_begin(w, d), NGS_OK);
    ngs_plot_desc_free(d);
    double ac[21 * 4];
    for (int k = 0; k < 21; k++) {
        ac[4 * k] = pow(10.0, k / 10.0);
        ac[4 * k + 1] = 0;
        ac[4 * k + 2] = 1.0 / (1 + k);
        ac[4 * k + 3] = -0.5 * k;
    }
    ck_assert_int_eq(ngs_h5_rows(w, ac, 21), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, NULL), NGS_OK);

    ngs_vector_desc ov[2] = {
        {"v(in)", "in", 3, "voltage", "V", 0, 1, 0},
        {"v(out)", "out", 3, "voltage", "V", 0, 0, 0},
    };
    d = ngs_plot_desc_new("op1", "Operating Point", "op", "run title", "Thu Jan  1 00:00:00  2026",
                          2, ov, 2);
    ck_assert_int_eq(ngs_h5_plot_begin(w, d), NGS_OK);
    ngs_plot_desc_free(d);
    double op[2] = {1.0, 0.5};
    ck_assert_int_eq(ngs_h5_rows(w, op, 1), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
}

START_TEST(test_export_run_file)
{
    tmpdir t;
    tmp_make(&t);
    char h5[512], raw[512], cir[512], cmd[1024];
    enum { NT = 2500 };
    path_in(&t, "run.h5", h5, sizeof h5);
    path_in(&t, "run.raw", raw, sizeof raw);
    write_run_like_file(h5, NT);
    ngs_convert_report rep;
    char err[512];
    ck_assert_int_eq(ngs_export_h5_to_raw_report(h5, NULL, raw, 0, &rep, err, sizeof err), NGS_OK);
    ck_assert_int_eq(rep.plots, 3);
    ck_assert_uint_eq(rep.points, NT + 21 + 1);
    ck_assert_int_eq(rep.truncated, 0);

    /* ngspice's own header layout, from the schema attributes. */
    size_t n;
    char *text = (char *)read_file(raw, &n);
    const char *want_tran =
        "Title: run title\nDate: Thu Jan  1 00:00:00  2026\nPlotname: Transient Analysis\n"
        "Flags: real\nNo. Variables: 3\nNo. Points: 2500    \nVariables:\n\t0\ttime\ttime\n"
        "\t1\tv(out)\tvoltage\n\t2\ti(v1)\tcurrent\nBinary:\n";
    ck_assert_int_eq(strncmp(text, want_tran, strlen(want_tran)), 0);
    const char *want_ac =
        "Plotname: AC Analysis\nFlags: complex\nNo. Variables: 2\nNo. Points: 21      \n"
        "Variables:\n\t0\tfrequency\tfrequency\tgrid=3\n\t1\tv(out)\tvoltage\nBinary:\n";
    ck_assert_ptr_nonnull(memmem(text, n, want_ac, strlen(want_ac)));
    ck_assert_ptr_nonnull(memmem(text, n, "Plotname: Operating Point\nFlags: real\n", 38));
    free(text);

    ngs_raw_reader *r = open_raw(raw);
    ck_assert_uint_eq(ngs_raw_nplots(r), 3);
    double *tr = rows_of(r, 0), *ac = rows_of(r, 1), *op = rows_of(r, 2);
    for (int k = 0; k < NT; k++)
        ck_assert(tr[3 * k] == k * 1e-6 && tr[3 * k + 1] == k * 0.125 &&
                  tr[3 * k + 2] == -k * 1e-3);
    for (int k = 0; k < 21; k++)
        ck_assert(ac[4 * k] == pow(10.0, k / 10.0) && ac[4 * k + 1] == 0 &&
                  ac[4 * k + 2] == 1.0 / (1 + k) && ac[4 * k + 3] == -0.5 * k);
    ck_assert(op[0] == 1.0 && op[1] == 0.5);
    free(tr);
    free(ac);
    free(op);
    ngs_raw_close(r);

    /* ASCII: the reader gets the values back (%.15e, 16 significant digits). */
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, "run", raw, 1, err, sizeof err), NGS_OK);
    r = open_raw(raw);
    ck_assert_int_eq(plot_of(r, 0)->encoding, NGS_RAW_ASCII);
    ck_assert_uint_eq(plot_of(r, 0)->npoints, NT);
    tr = rows_of(r, 0);
    ck_assert(fabs(tr[3 * 77 + 1] - 77 * 0.125) < 1e-12);
    free(tr);
    ngs_raw_close(r);

    /* ngspice itself loads the binary export. */
    need_ngspice();
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, "run", raw, 0, err, sizeof err), NGS_OK);
    const char *ctl = "load test\n.control\nload run.raw\nsetplot tran1\nprint v(out)[8]\n"
                      "setplot ac1\nprint v(out)[3]\n.endc\n.end\n";
    path_in(&t, "load.cir", cir, sizeof cir);
    write_file(cir, ctl, strlen(ctl));
    snprintf(cmd, sizeof cmd, "cd '%s' && HOME='%s' ngspice -b load.cir >load.log 2>&1", t.dir,
             t.dir);
    ck_assert_int_ne(system(cmd), -1);
    path_in(&t, "load.log", cir, sizeof cir);
    text = (char *)read_file(cir, &n);
    ck_assert_msg(strstr(text, "v(out)[8] = 1.000000e+00"), "ngspice printed:\n%s", text);
    ck_assert_msg(strstr(text, "v(out)[3] = 2.500000e-01,-1.5"), "ngspice printed:\n%s",
                  text);
    free(text);
    tmp_free(&t);
}
END_TEST

/* Entries of dir, "." and ".." aside. */
static int count_files(const char *dir)
{
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

START_TEST(test_export_errors)
{
    tmpdir t;
    tmp_make(&t);
    char h5[512], raw[512], err[512];
    path_in(&t, "x.h5", h5, sizeof h5);
    path_in(&t, "x.raw", raw, sizeof raw);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, raw, 0, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "x.h5: cannot open"), "%s", err);
    ck_assert_int_eq(ngs_export_h5_to_raw(NULL, NULL, raw, 0, err, sizeof err), NGS_ERR_ARG);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, NULL, 0, NULL, 0), NGS_ERR_ARG);

    /* An HDF5 file that ngscale did not write. */
    hid_t f = H5Fcreate(h5, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    H5Fclose(f);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, raw, 0, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_msg(strstr(err, "not written by ngscale"), "%s", err);

    /* A run without plots (a netlist ngspice rejected). */
    ngs_h5_options ho;
    ngs_h5_options_init(&ho);
    ho.swmr = 0;
    ngs_h5_writer *w;
    ck_assert_int_eq(ngs_h5_open(&w, h5, &ho, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_begin(w, "run"), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_end(w, NGS_ERR_NETLIST, "rejected"), NGS_OK);
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, raw, 0, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_msg(strstr(err, "has no plot"), "%s", err);
    ck_assert(!exists(raw));

    /* A vector that is not float64 or complex, in the last plot: a RAW file already at
     * the output stays as it was (the export writes beside it and renames only at the
     * end), and nothing is left beside it. */
    write_run_like_file(h5, 10);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, raw, 0, err, sizeof err), NGS_OK);
    chmod(raw, 0640);
    size_t before_n, after_n;
    unsigned char *before = read_file(raw, &before_n);
    f = H5Fopen(h5, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims = 3;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t d = H5Dcreate2(f, "run/op1/bad", H5T_NATIVE_INT, sp, H5P_DEFAULT, H5P_DEFAULT,
                         H5P_DEFAULT);
    ck_assert(d >= 0);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(f);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, raw, 0, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_msg(strstr(err, "op1/bad is neither float64 nor"), "%s", err);
    unsigned char *after = read_file(raw, &after_n);
    ck_assert_msg(after_n == before_n && memcmp(after, before, before_n) == 0,
                  "a failed export changed the file there (%zu bytes, was %zu)", after_n,
                  before_n);
    free(before);
    free(after);
    ck_assert_int_eq(count_files(t.dir), 2);
    /* A successful one replaces it, keeping its mode. */
    write_run_like_file(h5, 10);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, raw, 1, err, sizeof err), NGS_OK);
    struct stat st;
    ck_assert_int_eq(stat(raw, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
    ck_assert_int_eq(count_files(t.dir), 2);

    /* The output cannot be created, or is the input. */
    write_run_like_file(h5, 10);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, h5, 0, err, sizeof err), NGS_ERR_ARG);
    ck_assert_msg(strstr(err, "same file"), "%s", err);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, "", raw, 0, err, sizeof err), NGS_OK);
    path_in(&t, "no/such/dir.raw", raw, sizeof raw);
    ck_assert_int_eq(ngs_export_h5_to_raw(h5, NULL, raw, 0, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "no/such/dir.raw"), "%s", err);
    tmp_free(&t);
}
END_TEST

/* A conversion over an existing file used to recreate it at once: a failure or an
 * interrupt then lost the good file there. It now writes beside it and renames only a
 * finished conversion over it; an unfinished one is removed. A new file still keeps
 * what was converted. */
START_TEST(test_convert_replaces_only_when_finished)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], raw2[512], h5[512], fresh[512], link[512], err[1024], buf[256];
    run_ngspice(&t, "multi", MULTI, 0, raw, sizeof raw);
    run_ngspice(&t, "small", SMALL, 0, raw2, sizeof raw2);
    path_in(&t, "out.h5", h5, sizeof h5);
    path_in(&t, "fresh.h5", fresh, sizeof fresh);
    convert_ok(raw, h5, NULL, NULL);
    chmod(h5, 0640);
    int files = count_files(t.dir);
    size_t before_n, after_n;
    unsigned char *before = read_file(h5, &before_n);

    /* interrupted (the flag set before it starts: at its first block) */
    volatile sig_atomic_t stop = 1;
    ngs_convert_options o;
    ngs_convert_options_init(&o);
    o.stop = &stop;
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw2, h5, &o, NULL, err, sizeof err),
                     NGS_ERR_INTERRUPTED);
    ck_assert_msg(strstr(err, "interrupted") && strstr(err, "out.h5 was left as it was"), "%s", err);
    unsigned char *after = read_file(h5, &after_n);
    ck_assert_msg(after_n == before_n && memcmp(after, before, before_n) == 0,
                  "an interrupted conversion changed the file there");
    free(after);
    ck_assert_int_eq(count_files(t.dir), files);

    /* held open by another program: refused before anything is written */
    hid_t f = h5_open(h5);
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw2, h5, NULL, NULL, err, sizeof err), NGS_ERR_IO);
    ck_assert_msg(strstr(err, "is open in another program"), "%s", err);
    H5Fclose(f);
    ck_assert_int_eq(count_files(t.dir), files);

    /* a new file keeps what was converted */
    ck_assert_int_eq(ngs_convert_raw_to_h5(raw2, fresh, &o, NULL, err, sizeof err),
                     NGS_ERR_INTERRUPTED);
    check_status(fresh, "run", "incomplete", "interrupted");
    files++;

    /* finished: replaces it, keeping its mode, also through a symlink */
    path_in(&t, "link.h5", link, sizeof link);
    ck_assert_int_eq(symlink(h5, link), 0);
    files++;
    convert_ok(raw2, link, NULL, NULL);
    struct stat st;
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert_int_eq(stat(h5, &st), 0);
    ck_assert_uint_eq(st.st_mode & 0777, 0640);
    f = h5_open(h5);
    ck_assert_str_eq(attr_s(f, "run", "status", buf, sizeof buf), "complete");
    ck_assert(H5Lexists(f, "run/ac1", H5P_DEFAULT) <= 0); /* SMALL has no ac: multi's is gone */
    H5Fclose(f);
    ck_assert_int_eq(count_files(t.dir), files);
    free(before);
    tmp_free(&t);
}
END_TEST

/* ---- other dialects ------------------------------------------------------------------- */

static size_t put16(unsigned char *b, size_t n, const char *s)
{
    for (; *s; s++) {
        b[n++] = (unsigned char)*s;
        b[n++] = 0;
    }
    return n;
}

/* LTspice: UTF-16LE header, float32 traces. Converted to float64 datasets (exact), with
 * raw_storage "float32"; exported as an ngspice file with the same values. */
START_TEST(test_ltspice_float32)
{
    enum { NP = 300 };
    tmpdir t;
    tmp_make(&t);
    unsigned char *b = malloc(1 << 16);
    size_t n = 0;
    n = put16(b, n, "Title: * C:\\sim\\amp.asc\n");
    n = put16(b, n, "Date: Thu Jan  1 00:00:00 2026\n");
    n = put16(b, n, "Plotname: Transient Analysis\n");
    n = put16(b, n, "Flags: real forward\n");
    n = put16(b, n, "No. Variables: 3\n");
    n = put16(b, n, "No. Points:          300\n");
    n = put16(b, n, "Offset:   0.0000000000000000e+000\n");
    n = put16(b, n, "Command: Linear Technology Corporation LTspice XVII\n");
    n = put16(b, n, "Variables:\n");
    n = put16(b, n, "\t0\ttime\ttime\n");
    n = put16(b, n, "\t1\tV(out)\tvoltage\n");
    n = put16(b, n, "\t2\tI(R1)\tdevice_current\n");
    n = put16(b, n, "Binary:\n");
    for (int k = 0; k < NP; k++) {
        double tm = k * 1e-6;
        float v = (float)sin(k * 0.1), i = (float)(k * 1e-3);
        memcpy(b + n, &tm, 8);
        memcpy(b + n + 8, &v, 4);
        memcpy(b + n + 12, &i, 4);
        n += 16;
    }
    char raw[512], h5[512], back[512], buf[512];
    path_in(&t, "lt.raw", raw, sizeof raw);
    path_in(&t, "lt.h5", h5, sizeof h5);
    path_in(&t, "back.raw", back, sizeof back);
    write_file(raw, b, n);
    convert_ok(raw, h5, NULL, NULL);
    hid_t f = h5_open(h5);
    ck_assert_str_eq(attr_s(f, "run/tran1", "raw_dialect", buf, sizeof buf), "ltspice");
    ck_assert_str_eq(attr_s(f, "run/tran1", "raw_flags", buf, sizeof buf), "real forward");
    ck_assert_str_eq(attr_s(f, "run/tran1", "flags", buf, sizeof buf), "real");
    ck_assert_str_eq(attr_s(f, "run/tran1", "analysis", buf, sizeof buf), "tran");
    ck_assert(!has_attr(f, "run/tran1/time", "raw_storage"));
    ck_assert_str_eq(attr_s(f, "run/tran1/V(out)", "raw_storage", buf, sizeof buf), "float32");
    ck_assert_str_eq(attr_s(f, "run/tran1/I(R1)", "type", buf, sizeof buf), "device_current");
    ck_assert_str_eq(attr_s(f, "run/tran1/I(R1)", "unit", buf, sizeof buf), "");
    ck_assert_str_eq(attr_s(f, "run/tran1/V(out)", "ngspice_name", buf, sizeof buf), "out");
    attr_s(f, "run/tran1", "raw_header", buf, sizeof buf);
    ck_assert_msg(strstr(buf, "Offset:   0.0000000000000000e+000\nCommand: Linear"), "%s", buf);
    size_t nv;
    int cplx;
    double *v = dset_values(f, "run/tran1/V(out)", &nv, &cplx);
    ck_assert_uint_eq(nv, NP);
    for (int k = 0; k < NP; k++)
        ck_assert(v[k] == (double)(float)sin(k * 0.1));
    free(v);
    H5Fclose(f);

    export_ok(h5, NULL, back, 0);
    ngs_raw_reader *r = open_raw(back);
    const ngs_raw_plot *p = plot_of(r, 0);
    ck_assert_int_eq(p->dialect, NGS_RAW_DIALECT_NGSPICE);
    ck_assert_int_eq(p->vars[1].storage, NGS_RAW_F64);
    ck_assert_str_eq(p->flags, "real forward");
    double *rows = rows_of(r, 0);
    for (int k = 0; k < NP; k++)
        ck_assert(rows[3 * k] == k * 1e-6 && rows[3 * k + 1] == (double)(float)sin(k * 0.1) &&
                  rows[3 * k + 2] == (double)(float)(k * 1e-3));
    free(rows);
    ngs_raw_close(r);
    free(b);
    tmp_free(&t);
}
END_TEST

/* A RAW name twice is kept twice, the later one as "name#index"; a name that then
 * collides with such a one gets its own index too. The export gives the bytes back. */
START_TEST(test_same_name_twice)
{
    tmpdir t;
    tmp_make(&t);
    char raw[512], h5[512];
    const char *hdr = "Title: twice\nDate: Thu Jan  1 00:00:00  2026\nPlotname: Transient Analysis\n"
                      "Flags: real\nNo. Variables: 4\nNo. Points: 3\nVariables:\n\t0\ttime\ttime\n"
                      "\t1\tv(a)\tvoltage\n\t2\tv(a)\tvoltage\n\t3\tv(a)#2\tvoltage\nBinary:\n";
    size_t hn = strlen(hdr);
    unsigned char *b = malloc(hn + 12 * sizeof(double));
    memcpy(b, hdr, hn);
    for (int k = 0; k < 12; k++) {
        double x = k % 4 ? k * 0.5 : k * 1e-9; /* time, then each vector's own values */
        memcpy(b + hn + (size_t)k * sizeof x, &x, sizeof x);
    }
    path_in(&t, "twice.raw", raw, sizeof raw);
    path_in(&t, "twice.h5", h5, sizeof h5);
    write_file(raw, b, hn + 12 * sizeof(double));
    free(b);
    convert_ok(raw, h5, NULL, NULL);
    hid_t f = h5_open(h5);
    const char *links[] = {"run/tran1/v(a)", "run/tran1/v(a)#2", "run/tran1/v(a)#2#3"};
    char buf[64];
    for (int i = 0; i < 3; i++) {
        size_t n;
        int cx;
        double *v = dset_values(f, links[i], &n, &cx);
        ck_assert_uint_eq(n, 3);
        ck_assert_double_eq(v[1], (4 + i + 1) * 0.5); /* point 1, column i + 1 */
        free(v);
        ck_assert_str_eq(attr_s(f, links[i], "name", buf, sizeof buf), i < 2 ? "v(a)" : "v(a)#2");
    }
    H5Fclose(f);
    roundtrip(&t, raw, NULL);
    tmp_free(&t);
}
END_TEST

/* A small binary plot, ngspice -b -r style: "time" and "v(a)", two points; v(a) holds
 * value. Appended at b + *n (room for it is the caller's). */
static void put_plot(unsigned char *b, size_t *n, const char *title, const char *plotname,
                     const char *flags, double value)
{
    *n += (size_t)sprintf((char *)b + *n,
                          "Title: %s\nDate: Thu Jan  1 00:00:00  2026\nPlotname: %s\n"
                          "Flags: %s\nNo. Variables: 2\nNo. Points: 2       \nVariables:\n"
                          "\t0\ttime\ttime\n\t1\tv(a)\tvoltage\nBinary:\n", title, plotname,
                          flags);
    double row[4] = {0, value, 1e-9, value};
    memcpy(b + *n, row, sizeof row);
    *n += sizeof row;
}

/* Writes the n bytes of b (freed) as t/name.raw and converts it to t/name.h5. */
static void convert_bytes(const tmpdir *t, const char *name, unsigned char *b, size_t n,
                          char raw[512], char h5[512], ngs_convert_report *rep)
{
    char leaf[64];
    snprintf(leaf, sizeof leaf, "%s.raw", name);
    path_in(t, leaf, raw, 512);
    snprintf(leaf, sizeof leaf, "%s.h5", name);
    path_in(t, leaf, h5, 512);
    write_file(raw, b, n);
    free(b);
    convert_ok(raw, h5, NULL, rep);
}

/* Plot names must not collide: an analysis ending in a digit ("x1", from the Plotname
 * "x1 sweep") once gave "x11", which the eleventh plot of analysis "x" took too, and
 * the conversion failed there. Each plot keeps its own group and values. */
START_TEST(test_plot_names_distinct)
{
    tmpdir t;
    tmp_make(&t);
    unsigned char *b = malloc(1 << 16);
    size_t n = 0;
    put_plot(b, &n, "t", "x1 sweep", "real", 100);
    for (int k = 1; k <= 11; k++)
        put_plot(b, &n, "t", "x", "real", k);
    put_plot(b, &n, "t", "x1_", "real", 200);
    put_plot(b, &n, "t", "x_", "real", 300);
    char raw[512], h5[512], path[64], buf[64];
    ngs_convert_report rep;
    convert_bytes(&t, "names", b, n, raw, h5, &rep);
    ck_assert_int_eq(rep.plots, 14);
    hid_t f = h5_open(h5);
    static const struct {
        const char *group, *plotname;
        double value;
    } want[] = {{"x1_1", "x1 sweep", 100}, {"x1", "x", 1}, {"x10", "x", 10}, {"x11", "x", 11},
                {"x1__1", "x1_", 200}, {"x__1", "x_", 300}};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        snprintf(path, sizeof path, "run/%s", want[i].group);
        ck_assert_msg(H5Lexists(f, path, H5P_DEFAULT) > 0, "no group %s", path);
        ck_assert_str_eq(attr_s(f, path, "plotname", buf, sizeof buf), want[i].plotname);
        ck_assert_str_eq(attr_s(f, path, "plot_name", buf, sizeof buf), want[i].group);
        snprintf(path, sizeof path, "run/%s/v(a)", want[i].group);
        size_t nv;
        int cx;
        double *v = dset_values(f, path, &nv, &cx);
        ck_assert_uint_eq(nv, 2);
        ck_assert_double_eq(v[1], want[i].value);
        free(v);
    }
    H5Fclose(f);
    roundtrip(&t, raw, NULL);
    tmp_free(&t);
}
END_TEST

/* Header lines longer than any fixed buffer (here 700 to 2000 characters: Plotname,
 * Flags, Title through raw_header) come back whole. A Flags line over 511 characters
 * once failed the export ("Flags line too long"). */
START_TEST(test_long_header_lines)
{
    tmpdir t;
    tmp_make(&t);
    size_t n = 0;
    unsigned char *b = malloc(1 << 16);
    char *flags = malloc(2100), *plotname = malloc(800);
    snprintf(flags, 2100, "real %02000d", 7);
    snprintf(plotname, 800, "Transient Analysis %0700d", 3);
    char *title = malloc(1000);
    snprintf(title, 1000, "%0900d", 9);
    put_plot(b, &n, "t", plotname, flags, 1.5);
    put_plot(b, &n, "t", "AC Analysis", "real", 2.5);
    put_plot(b, &n, title, plotname, flags, 3.5);
    put_plot(b, &n, title, "AC Analysis", "real", 4.5);
    char raw[512];
    path_in(&t, "long.raw", raw, sizeof raw);
    write_file(raw, b, n);
    roundtrip(&t, raw, NULL);
    free(b);
    free(flags);
    free(plotname);
    free(title);
    tmp_free(&t);
}
END_TEST

/* Bytes that are not a plot between two plots (a note, a log line) once ended the
 * reading there: the plots after them were left out, with only a warning. They are
 * skipped now, and counted; the plots after them are converted. */
START_TEST(test_junk_between_plots)
{
    tmpdir t;
    tmp_make(&t);
    unsigned char *b = malloc(1 << 16);
    size_t n = 0;
    put_plot(b, &n, "t", "Transient Analysis", "real", 1);
    size_t first = n;
    n += (size_t)sprintf((char *)b + n, "junk line\n");
    put_plot(b, &n, "t", "AC Analysis", "real", 2);
    n += (size_t)sprintf((char *)b + n, "\x01\x02 noise Title: inside a line\n");
    put_plot(b, &n, "t", "Transient Analysis", "real", 3);
    n += (size_t)sprintf((char *)b + n, "end junk");
    char raw[512], h5[512], buf[256], msg[160];
    ngs_convert_report rep;
    convert_bytes(&t, "junk", b, n, raw, h5, &rep);
    ck_assert_int_eq(rep.plots, 3);
    ck_assert_int_eq(rep.truncated, 0);
    ck_assert_uint_eq(rep.skipped_bytes, 10 + 30 + 8);
    snprintf(msg, sizeof msg, "48 bytes in 3 places (the first at byte %zu) are not a RAW plot "
             "and were not converted", first);
    ck_assert_str_eq(rep.message, msg);
    hid_t f = h5_open(h5);
    ck_assert_str_eq(attr_s(f, "run", "status", buf, sizeof buf), "complete");
    ck_assert_str_eq(attr_s(f, "run", "raw_warning", buf, sizeof buf), msg);
    const char *plots[] = {"run/tran1/v(a)", "run/ac1/v(a)", "run/tran2/v(a)"};
    for (int i = 0; i < 3; i++) {
        size_t nv;
        int cx;
        double *v = dset_values(f, plots[i], &nv, &cx);
        ck_assert_uint_eq(nv, 2);
        ck_assert_double_eq(v[1], i + 1);
        free(v);
    }
    H5Fclose(f);
    tmp_free(&t);
}
END_TEST

/* The message of a truncated plot named its Plotname whole, and a long one (here 619
 * bytes) pushed what was recovered out of the 512-byte message: the CLI and the run's
 * message said only "plot 1 (Transient Analysis ééé...". The name is now cut to 60
 * bytes, between UTF-8 characters. */
START_TEST(test_truncated_long_plotname)
{
    tmpdir t;
    tmp_make(&t);
    char plotname[700] = "Transient Analysis ";
    for (int k = 0; k < 300; k++)
        strcat(plotname, "\xc3\xa9"); /* é: the 60th byte is inside one */
    unsigned char *b = malloc(1 << 16);
    size_t n = 0;
    put_plot(b, &n, "t", plotname, "real", 1);
    char raw[512], h5[512], buf[512], want[160];
    ngs_convert_report rep;
    convert_bytes(&t, "cut", b, n - 8, raw, h5, &rep); /* the last value cut off */
    snprintf(want, sizeof want, "plot 1 (%.59s...): the RAW file is truncated at byte %zu "
             "inside a point: 1 of 2 points recovered", plotname, n - 8);
    ck_assert_int_eq(rep.truncated, 1);
    ck_assert_str_eq(rep.message, want);
    hid_t f = h5_open(h5);
    ck_assert_str_eq(attr_s(f, "run", "message", buf, sizeof buf), want);
    H5Fclose(f);
    tmp_free(&t);
}
END_TEST

static Suite *convert_suite(void)
{
    Suite *s = suite_create("convert");
    TCase *tc = tcase_create("convert");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_roundtrip_batch_files);
    tcase_add_test(tc, test_roundtrip_codecs_and_blocks);
    tcase_add_test(tc, test_lossy_codecs);
    tcase_add_test(tc, test_roundtrip_write_command_and_failed);
    tcase_add_test(tc, test_schema_attributes_and_values);
    tcase_add_test(tc, test_analysis_names);
    tcase_add_test(tc, test_groups_and_append);
    tcase_add_test(tc, test_truncated_input);
    tcase_add_test(tc, test_corrupt_input);
    tcase_add_test(tc, test_export_run_file);
    tcase_add_test(tc, test_export_errors);
    tcase_add_test(tc, test_convert_replaces_only_when_finished);
    tcase_add_test(tc, test_ltspice_float32);
    tcase_add_test(tc, test_same_name_twice);
    tcase_add_test(tc, test_plot_names_distinct);
    tcase_add_test(tc, test_long_header_lines);
    tcase_add_test(tc, test_junk_between_plots);
    tcase_add_test(tc, test_truncated_long_plotname);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    ngs_codec_register_zstd();
    return ngs_run_suite(convert_suite());
}
