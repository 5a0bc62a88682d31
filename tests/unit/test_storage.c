/* Unit tests: the streaming HDF5 writer and its schema (read back with the C API). */
#include <check.h>
#include "tests/unit/ngs_check.h"
#include <hdf5.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "hooks/dispatch.h"
#include "storage/codec.h"
#include "storage/h5attr.h"
#include "storage/h5writer.h"

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/ngs-storage-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static ngs_plot_desc *plot3(const char *name, int index)
{
    ngs_vector_desc v[3];
    memset(v, 0, sizeof v);
    v[0] = (ngs_vector_desc){"time", "time", 1, "time", "s", 0, 1, 0};
    v[1] = (ngs_vector_desc){"v(a/b)", "a/b", 3, "voltage", "V", 0, 0, 0};
    v[2] = (ngs_vector_desc){"i(v1)", "v1#branch", 4, "current", "A", 1, 0, 0};
    return ngs_plot_desc_new(name, "Transient Analysis", "tran", "title", "date", index, v, 3);
}

static long long read_int_attr(hid_t obj, const char *name)
{
    long long v = -1;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    ck_assert_int_ge(a, 0);
    H5Aread(a, H5T_NATIVE_LLONG, &v);
    H5Aclose(a);
    return v;
}

/* Writes n rows (time=i, v=sin-ish, i = (i, -i)) in uneven batches. */
static void write_rows(ngs_h5_writer *w, int n)
{
    double rows[4 * 37];
    int i = 0;
    while (i < n) {
        int batch = 1 + i % 37, k;
        if (batch > n - i) batch = n - i;
        for (k = 0; k < batch; k++) {
            rows[4 * k] = i + k;
            rows[4 * k + 1] = (i + k) * 0.25 - 3;
            rows[4 * k + 2] = i + k;
            rows[4 * k + 3] = -(i + k);
        }
        ck_assert_int_eq(ngs_h5_rows(w, rows, (size_t)batch), NGS_OK);
        i += batch;
    }
}

static void roundtrip(ngs_codec codec)
{
    char path[128];
    ngs_h5_writer *w;
    ngs_h5_options o;
    ngs_plot_desc *p1 = plot3("tran1", 0), *p2 = plot3("op1", 1);
    char err[256];
    hid_t f, g, d, s, dcpl;
    hsize_t dims, chunk;
    double *buf;
    double (*cbuf)[2];
    snprintf(path, sizeof path, "%s/t.h5", dir);
    ngs_h5_options_init(&o);
    o.codec = codec;
    o.chunk_points = 100;
    ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_begin(w, "run"), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_attr_str(w, "netlist", "* x\n.end\n"), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_begin(w, p1), NGS_OK);
    write_rows(w, 1234);
    ck_assert_int_eq(ngs_h5_flush(w), NGS_OK); /* a partial chunk, rewritten later */
    write_rows(w, 0);
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_begin(w, p2), NGS_OK);
    write_rows(w, 1);
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
    ngs_plot_desc_free(p1);
    ngs_plot_desc_free(p2);

    ngs_codec_register_zstd();
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    check_h5_str_attr(f, ".", "ngscale_format", "ngscale-hdf5");
    ck_assert_int_eq(read_int_attr(f, "ngscale_format_version"), NGSCALE_FORMAT_VERSION);
    g = H5Gopen2(f, "run", H5P_DEFAULT);
    check_h5_str_attr(g, ".", "status", "complete");
    check_h5_str_attr(g, ".", "netlist", "* x\n.end\n");
    ck_assert_int_eq(read_int_attr(g, "plots"), 2);
    H5Gclose(g);
    g = H5Gopen2(f, "run/tran1", H5P_DEFAULT);
    check_h5_str_attr(g, ".", "status", "complete");
    check_h5_str_attr(g, ".", "scale", "time");
    check_h5_str_attr(g, ".", "flags", "complex");
    ck_assert_int_eq(read_int_attr(g, "points"), 1234);
    /* '/' in a vector name is escaped, the real name kept as an attribute */
    d = H5Dopen2(g, "v(a%2Fb)", H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    check_h5_str_attr(d, ".", "name", "v(a/b)");
    check_h5_str_attr(d, ".", "ngspice_name", "a/b");
    check_h5_str_attr(d, ".", "unit", "V");
    ck_assert_int_eq(read_int_attr(d, "index"), 1);
    s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, &dims, NULL);
    ck_assert_uint_eq(dims, 1234);
    buf = malloc(1234 * sizeof *buf);
    ck_assert_int_ge(H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf), 0);
    for (int i = 0; i < 1234; i++) ck_assert(buf[i] == i * 0.25 - 3);
    free(buf);
    H5Sclose(s);
    H5Dclose(d);
    d = H5Dopen2(g, "i(v1)", H5P_DEFAULT);
    cbuf = malloc(1234 * sizeof *cbuf);
    {
        hid_t ct = H5Tcreate(H5T_COMPOUND, 16);
        H5Tinsert(ct, "r", 0, H5T_NATIVE_DOUBLE);
        H5Tinsert(ct, "i", 8, H5T_NATIVE_DOUBLE);
        ck_assert_int_ge(H5Dread(d, ct, H5S_ALL, H5S_ALL, H5P_DEFAULT, cbuf), 0);
        H5Tclose(ct);
    }
    for (int i = 0; i < 1234; i++) ck_assert(cbuf[i][0] == i && cbuf[i][1] == -i);
    free(cbuf);
    H5Dclose(d);
    H5Gclose(g);
    /* a one-point plot gets a one-point chunk */
    d = H5Dopen2(f, "run/op1/time", H5P_DEFAULT);
    dcpl = H5Dget_create_plist(d);
    H5Pget_chunk(dcpl, 1, &chunk);
    ck_assert_uint_eq(chunk, 1);
    ck_assert_int_eq(H5Pget_nfilters(dcpl), codec == NGS_CODEC_NONE ? 0 : 2);
    H5Pclose(dcpl);
    H5Dclose(d);
    H5Fclose(f);
}

START_TEST(roundtrip_zstd) { roundtrip(NGS_CODEC_ZSTD); }
END_TEST
START_TEST(roundtrip_deflate) { roundtrip(NGS_CODEC_DEFLATE); }
END_TEST
START_TEST(roundtrip_none) { roundtrip(NGS_CODEC_NONE); }
END_TEST

START_TEST(errors_are_codes_with_messages)
{
    char path[128], err[256] = "";
    ngs_h5_writer *w = NULL;
    ngs_h5_options o;
    double row[4] = {0};
    ngs_h5_options_init(&o);
    ck_assert_int_eq(ngs_h5_open(&w, "/nonexistent/dir/x.h5", &o, err, sizeof err), NGS_ERR_IO);
    ck_assert_ptr_null(w);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/dir/x.h5"));
    /* appending to a file that is not ours */
    snprintf(path, sizeof path, "%s/foreign.h5", dir);
    H5Fclose(H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    o.append = 1;
    ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(err, "not an ngscale file"));
    o.append = 0;
    snprintf(path, sizeof path, "%s/ok.h5", dir);
    ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_h5_rows(w, row, 1), NGS_ERR_STATE);
    ck_assert_int_eq(ngs_h5_run_begin(w, "a"), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_begin(w, "b"), NGS_ERR_STATE);
    ck_assert_int_eq(ngs_h5_rows(w, row, 1), NGS_ERR_STATE);
    ck_assert_int_eq(ngs_h5_run_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_begin(w, "a"), NGS_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(ngs_h5_error(w), "already exists"));
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
}
END_TEST

/* Options the writer cannot honour are refused when it opens, each with its reason,
 * and no file is created; the limits themselves pass. */
START_TEST(bad_options_are_refused_before_a_file_exists)
{
    static const struct { const char *field; const char *why; } cases[] = {
        {"codec", "unknown codec 42"},
        {"level", "level 1000 does not suit codec zstd"},
        {"deflate_level", "level 10 does not suit codec deflate"},
        {"bits", "bits must be 1..52"},
        {"abs_err", "must be positive and finite"},
        {"rel_err_nan", "must be positive and finite"},
        {"lossy_on_zstd", "apply to codec bounded or bitround, not zstd"},
        {"abs_on_bitround", "bitround bounds the relative error only"},
        {"bits_on_bounded", "bits applies to codec bitround"},
        {"chunk", "over the limit"},
        {"threads", "encoder_threads must be 0..1024"},
        {"flush", "flush_interval_s is not a number"},
    };
    char path[128], err[256];
    ngs_h5_writer *w = NULL;
    ngs_h5_options o;
    snprintf(path, sizeof path, "%s/refused.h5", dir);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *f = cases[i].field;
        ngs_h5_options_init(&o);
        if (!strcmp(f, "codec")) o.codec = (ngs_codec)42;
        if (!strcmp(f, "level")) o.level = 1000;
        if (!strcmp(f, "deflate_level")) o.codec = NGS_CODEC_DEFLATE, o.level = 10;
        if (!strcmp(f, "bits")) o.codec = NGS_CODEC_BITROUND, o.lossy.bits = 53;
        if (!strcmp(f, "abs_err")) o.codec = NGS_CODEC_BOUNDED, o.lossy.abs_err = -1e-6;
        if (!strcmp(f, "rel_err_nan")) o.codec = NGS_CODEC_BOUNDED, o.lossy.rel_err = NAN;
        if (!strcmp(f, "lossy_on_zstd")) o.lossy.rel_err = 1e-3;
        if (!strcmp(f, "abs_on_bitround")) o.codec = NGS_CODEC_BITROUND, o.lossy.abs_err = 1e-6;
        if (!strcmp(f, "bits_on_bounded")) o.codec = NGS_CODEC_BOUNDED, o.lossy.bits = 20;
        if (!strcmp(f, "chunk")) o.chunk_points = NGS_H5_CHUNK_POINTS_MAX + 1u;
        if (!strcmp(f, "threads")) o.encoder_threads = -1;
        if (!strcmp(f, "flush")) o.flush_interval_s = NAN;
        err[0] = '\0';
        ck_assert_int_eq(ngs_h5_options_check(&o, err, sizeof err), NGS_ERR_ARG);
        ck_assert_msg(strstr(err, cases[i].why), "%s: %s", f, err);
        ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_ERR_ARG);
        ck_assert_ptr_null(w);
        ck_assert_int_ne(access(path, F_OK), 0);
    }
    ngs_h5_options_init(&o); /* the edges are fine */
    o.codec = NGS_CODEC_BITROUND;
    o.lossy.bits = 52;
    o.level = 9;
    o.chunk_points = NGS_H5_CHUNK_POINTS_MAX;
    o.encoder_threads = NGS_H5_ENCODER_THREADS_MAX;
    ck_assert_int_eq(ngs_h5_options_check(&o, err, sizeof err), NGS_OK);
    ngs_h5_options_init(&o);
    o.codec = NGS_CODEC_ZSTD;
    o.level = -7;
    ck_assert_int_eq(ngs_h5_options_check(&o, err, sizeof err), NGS_OK);
}
END_TEST

START_TEST(closing_mid_plot_marks_incomplete_and_keeps_data)
{
    char path[128], err[256];
    ngs_h5_writer *w;
    ngs_h5_options o;
    ngs_plot_desc *p = plot3("tran1", 0);
    hid_t f, g;
    snprintf(path, sizeof path, "%s/cut.h5", dir);
    ngs_h5_options_init(&o);
    o.chunk_points = 64;
    ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_begin(w, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_begin(w, p), NGS_OK);
    write_rows(w, 500);
    ngs_h5_close(w); /* no plot_end, no run_end */
    ngs_plot_desc_free(p);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    g = H5Gopen2(f, "run", H5P_DEFAULT);
    check_h5_str_attr(g, ".", "status", "incomplete");
    H5Gclose(g);
    g = H5Gopen2(f, "run/tran1", H5P_DEFAULT);
    check_h5_str_attr(g, ".", "status", "incomplete");
    ck_assert_int_eq(read_int_attr(g, "points"), 500);
    H5Gclose(g);
    H5Fclose(f);
}
END_TEST

static void check_plot_status(hid_t f, const char *plot, const char *status, const char *message,
                              long long points)
{
    hid_t g = H5Gopen2(f, plot, H5P_DEFAULT);
    ck_assert_int_ge(g, 0);
    check_h5_str_attr(g, ".", "status", status);
    check_h5_str_attr(g, ".", "message", message);
    ck_assert_int_eq(read_int_attr(g, "points"), points);
    H5Gclose(g);
}

/* A plot shorter than a chunk gets its group only when it ends, with the final
 * status at once: complete, failed with its message, or incomplete. */
START_TEST(a_plot_created_at_its_end_gets_its_final_status)
{
    char path[128], err[256];
    ngs_h5_writer *w;
    ngs_h5_options o;
    ngs_plot_desc *p1 = plot3("tran1", 0), *p2 = plot3("tran2", 1), *p3 = plot3("op1", 2);
    hid_t f;
    snprintf(path, sizeof path, "%s/short.h5", dir);
    ngs_h5_options_init(&o);
    ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_begin(w, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_begin(w, p1), NGS_OK);
    write_rows(w, 37);
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_OK, "ignored when complete"), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_begin(w, p2), NGS_OK);
    write_rows(w, 5);
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_ERR_SIMULATION, "timestep too small"), NGS_OK);
    ck_assert_int_eq(ngs_h5_plot_begin(w, p3), NGS_OK); /* no rows at all */
    ck_assert_int_eq(ngs_h5_plot_end(w, NGS_ERR_INTERRUPTED, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_run_end(w, NGS_OK, NULL), NGS_OK);
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
    ngs_plot_desc_free(p1);
    ngs_plot_desc_free(p2);
    ngs_plot_desc_free(p3);
    f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    ck_assert_int_ge(f, 0);
    check_plot_status(f, "run/tran1", "complete", "", 37);
    check_plot_status(f, "run/tran2", "failed", "timestep too small", 5);
    check_plot_status(f, "run/op1", "incomplete", ngs_strerror(NGS_ERR_INTERRUPTED), 0);
    H5Fclose(f);
}
END_TEST

/* Writers of a shared file hold its mutex in nested stretches; closing ends them,
 * however deep: a writer gone while holding it would stop every other writer. */
START_TEST(closing_a_writer_ends_its_hold_on_the_shared_lock)
{
    char path[128], err[256];
    pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
    ngs_h5_writer *w;
    ngs_h5_options o;
    hid_t f, fapl;
    snprintf(path, sizeof path, "%s/shared.h5", dir);
    ngs_h5_options_init(&o);
    ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_OK);
    ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
    fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    f = H5Fopen(path, H5F_ACC_RDWR, fapl);
    H5Pclose(fapl);
    ck_assert_int_ge(f, 0);
    o.shared_file = f;
    o.shared_lock = &lock;
    for (int depth = 0; depth <= 2; depth++) {
        char group[16];
        snprintf(group, sizeof group, "job%d", depth);
        ck_assert_int_eq(ngs_h5_open(&w, path, &o, err, sizeof err), NGS_OK);
        ck_assert_int_eq(pthread_mutex_trylock(&lock), 0); /* open keeps no hold */
        pthread_mutex_unlock(&lock);
        ck_assert_int_eq(ngs_h5_run_begin(w, group), NGS_OK);
        for (int i = 0; i < depth; i++) ngs_h5_hold(w);
        ck_assert_int_eq(ngs_h5_run_end(w, NGS_OK, NULL), NGS_OK);
        ck_assert_int_eq(ngs_h5_close(w), NGS_OK);
        ck_assert_int_eq(pthread_mutex_trylock(&lock), 0);
        pthread_mutex_unlock(&lock);
    }
    ck_assert_int_ge(H5Fclose(f), 0);
    pthread_mutex_destroy(&lock);
}
END_TEST

/* Attributes are rewritten in place, and writes still work after a host's H5close()
 * took the writer's shared HDF5 ids away. */
START_TEST(attributes_rewrite_and_survive_h5close)
{
    char path[512];
    hid_t f, g;
    snprintf(path, sizeof path, "%s/attrs.h5", dir);
    for (int round = 0; round < 2; round++) {
        f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert_int_ge(f, 0);
        g = H5Gcreate2(f, "g", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
        ck_assert_int_eq(ngs_h5_attr_write_str(g, "status", "incomplete"), 0);
        ck_assert_int_eq(ngs_h5_attr_write_str(g, "status", "complete"), 0);
        ck_assert_int_eq(ngs_h5_attr_write_i64(g, "points", 5), 0);
        ck_assert_int_eq(ngs_h5_attr_write_str(g, "points", "five"), 0); /* another type */
        ck_assert_int_eq(ngs_h5_attr_write_f64(g, "wall_s", 1.5), 0);
        check_h5_str_attr(g, ".", "status", "complete");
        check_h5_str_attr(g, ".", "points", "five");
        ck_assert_int_eq(H5Aget_num_attrs(g), 3);
        H5Gclose(g);
        H5Fclose(f);
        H5close(); /* round 1 writes with ids made again */
    }
}
END_TEST

START_TEST(status_names)
{
    ck_assert_str_eq(ngs_h5_status_name(NGS_OK), "complete");
    ck_assert_str_eq(ngs_h5_status_name(NGS_ERR_TIMEOUT), "incomplete");
    ck_assert_str_eq(ngs_h5_status_name(NGS_ERR_INTERRUPTED), "incomplete");
    ck_assert_str_eq(ngs_h5_status_name(NGS_ERR_SIMULATION), "failed");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("storage");
    TCase *tc = tcase_create("writer");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, roundtrip_zstd);
    tcase_add_test(tc, roundtrip_deflate);
    tcase_add_test(tc, roundtrip_none);
    tcase_add_test(tc, errors_are_codes_with_messages);
    tcase_add_test(tc, bad_options_are_refused_before_a_file_exists);
    tcase_add_test(tc, closing_mid_plot_marks_incomplete_and_keeps_data);
    tcase_add_test(tc, a_plot_created_at_its_end_gets_its_final_status);
    tcase_add_test(tc, status_names);
    tcase_add_test(tc, attributes_rewrite_and_survive_h5close);
    tcase_add_test(tc, closing_a_writer_ends_its_hold_on_the_shared_lock);
    suite_add_tcase(s, tc);
    return ngs_run_suite(s);
}
