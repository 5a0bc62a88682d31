/*
 * h5info.c - `ngscale info`: what an ngscale file holds and how well it compressed.
 *
 * A file whose writer is still running (or was killed) has its "open for write"
 * flag set; opening it in SWMR-read mode still works, so we fall back to that.
 */
#include "storage/h5info.h"
#include "storage/h5writer.h"
#include "storage/codec.h"
#include "storage/h5attr.h"
#include "storage/bounded.h"

#include <hdf5.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "ngscale.h"

typedef struct {
    FILE *out;
    hsize_t stored, logical;
    hid_t file;
    const char *run;
} info_ctx;

/* String attributes are read whole (ngs_h5_attr_dup_str: NULL when absent, printed as
 * ""): fixed buffers cut long plot names, messages and paths. */
#define STR(s) ((s) ? (s) : "")

static void human(char *buf, size_t n, double bytes)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int i = 0;
    while (bytes >= 1024 && i < 4) {
        bytes /= 1024;
        i++;
    }
    snprintf(buf, n, i ? "%.1f %s" : "%.0f %s", bytes, u[i]);
}

static herr_t visit_vector(hid_t group, const char *name, const H5L_info_t *li, void *op)
{
    info_ctx *c = op;
    hid_t d, s, t;
    hsize_t dims = 0, stored;
    char *type, *unit;
    long long is_scale;
    (void)li;
    d = H5Dopen2(group, name, H5P_DEFAULT);
    if (d < 0) return 0;
    s = H5Dget_space(d);
    H5Sget_simple_extent_dims(s, &dims, NULL);
    t = H5Dget_type(d);
    stored = H5Dget_storage_size(d);
    c->stored += stored;
    c->logical += dims * H5Tget_size(t);
    type = ngs_h5_attr_dup_str(d, "type");
    unit = ngs_h5_attr_dup_str(d, "unit");
    is_scale = ngs_h5_attr_read_i64(d, "is_scale", 0);
    fprintf(c->out, "      %-28s %-16s %-6s %-7s%s\n", name, STR(type), STR(unit),
            H5Tget_class(t) == H5T_COMPOUND ? "complex" : "real", is_scale ? "  (scale)" : "");
    free(type);
    free(unit);
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return 0;
}

static herr_t visit_plot(hid_t run, const char *name, const H5L_info_t *li, void *op)
{
    info_ctx *c = op;
    hid_t g;
    char *plotname, *status, *msg;
    long long points, nvec;
    H5G_info_t gi;
    (void)li;
    g = H5Gopen2(run, name, H5P_DEFAULT);
    if (g < 0) return 0;
    if (H5Aexists(g, "plot_name") <= 0) { /* not a plot: e.g. the spectra of the run */
        H5Gclose(g);
        return 0;
    }
    plotname = ngs_h5_attr_dup_str(g, "plotname");
    status = ngs_h5_attr_dup_str(g, "status");
    msg = ngs_h5_attr_dup_str(g, "message");
    points = ngs_h5_attr_read_i64(g, "points", -1);
    H5Gget_info(g, &gi);
    nvec = (long long)gi.nlinks;
    if (strcmp(STR(status), "complete") != 0) { /* points attribute is final only at the end */
        hid_t first;
        hsize_t dims = 0;
        H5E_BEGIN_TRY {
            first = H5Oopen_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, 0, H5P_DEFAULT);
        } H5E_END_TRY;
        if (first >= 0 && H5Iget_type(first) == H5I_DATASET) {
            hid_t s = H5Dget_space(first);
            H5Sget_simple_extent_dims(s, &dims, NULL);
            H5Sclose(s);
            points = (long long)dims;
        }
        if (first >= 0) H5Oclose(first);
    }
    fprintf(c->out, "    plot %s (%s): %lld points, %lld vectors, %s%s%s\n", name, STR(plotname),
            points, nvec, STR(status), msg && msg[0] ? ": " : "", STR(msg));
    free(plotname);
    free(status);
    free(msg);
    ngs_h5_fit_cache(c->file, nvec < INT_MAX ? (int)nvec : INT_MAX); /* flat for 20k vectors */
    ngs_h5_iterate_links(g, visit_vector, c);
    H5Gclose(g);
    return 0;
}

/* ngspice's error text has several lines: each continues under the first. */
static void print_lines(FILE *out, const char *text, const char *indent)
{
    for (const char *p = text; *p; p++) {
        fputc(*p, out);
        if (*p == '\n' && p[1]) fputs(indent, out);
    }
}

typedef struct {
    FILE *out;
    int n;
} param_line;

/* A batch job's parameters (its param.* attributes), on one line. */
static herr_t visit_param(hid_t obj, const char *name, const H5A_info_t *ai, void *op)
{
    param_line *l = op;
    char *value;
    (void)ai;
    if (strncmp(name, "param.", 6) != 0) return 0;
    value = ngs_h5_attr_dup_str(obj, name);
    fprintf(l->out, "%s%s=%s", l->n++ ? ", " : "    params: ", name + 6, STR(value));
    free(value);
    return 0;
}

/* A batch file's /summary: how many jobs ended how. */
static void print_summary(FILE *out, hid_t file)
{
    static const char *const kinds[] = {"complete", "failed", "timeout", "interrupted", "not run"};
    size_t count[5] = {0}, other = 0;
    hid_t d, space, mt, st;
    hssize_t n;
    char **status;
    H5E_BEGIN_TRY { d = H5Dopen2(file, "summary", H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0) return;
    space = H5Dget_space(d);
    n = H5Sget_simple_extent_npoints(space);
    st = ngs_h5_vlen_str_type();
    mt = H5Tcreate(H5T_COMPOUND, sizeof(char *));
    H5Tinsert(mt, "status", 0, st);
    status = n > 0 ? calloc((size_t)n, sizeof *status) : NULL;
    if (status && H5Dread(d, mt, H5S_ALL, H5S_ALL, H5P_DEFAULT, status) >= 0) {
        for (hssize_t i = 0; i < n; i++) {
            size_t k = 0;
            while (k < 5 && (!status[i] || strcmp(status[i], kinds[k]) != 0)) k++;
            if (k < 5) count[k]++;
            else other++;
        }
        const char *sep = " (";
        fprintf(out, "  batch: %lld jobs", (long long)n);
        for (size_t k = 0; k < 5; k++)
            if (count[k]) {
                fprintf(out, "%s%zu %s", sep, count[k], kinds[k]);
                sep = ", ";
            }
        if (other) fprintf(out, "%s%zu other", sep, other);
        fprintf(out, "%s, each in /summary\n", n > 0 ? ")" : "");
        H5Dvlen_reclaim(mt, space, H5P_DEFAULT, status);
    }
    free(status);
    H5Tclose(mt);
    H5Tclose(st);
    H5Sclose(space);
    H5Dclose(d);
}

/* A run attribute printed on a line of its own when set: "    <label>: <value>". */
static void print_attr_line(FILE *out, hid_t g, const char *key, const char *label)
{
    char *v = ngs_h5_attr_dup_str(g, key);
    if (v && v[0]) fprintf(out, "    %s: %s\n", label, v);
    free(v);
}

static herr_t visit_run(hid_t file, const char *name, const H5L_info_t *li, void *op)
{
    static const char *const lines[][2] = {{"warning", "warning"}, {"netlist_path", "netlist"},
                                           {"ngspice_version", "ngspice"}, {"codec", "codec"},
                                           {"memory_reason", "memory"}};
    info_ctx *c = op;
    hid_t g;
    char *status, *msg;
    long long plots;
    param_line params = {c->out, 0};
    H5O_info_t oi;
    (void)li;
    if (H5Oget_info_by_name(file, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) return 0;
    g = H5Gopen2(file, name, H5P_DEFAULT);
    if (g < 0) return 0;
    status = ngs_h5_attr_dup_str(g, "status");
    msg = ngs_h5_attr_dup_str(g, "message");
    fprintf(c->out, "  run %s: %s%s", name, STR(status), msg && msg[0] ? " - " : "");
    print_lines(c->out, STR(msg), "      ");
    fputc('\n', c->out);
    free(status);
    free(msg);
    print_attr_line(c->out, g, "job_label", "label");
    H5Aiterate2(g, H5_INDEX_NAME, H5_ITER_INC, NULL, visit_param, &params);
    if (params.n) fputc('\n', c->out);
    for (size_t k = 0; k < sizeof lines / sizeof lines[0]; k++)
        print_attr_line(c->out, g, lines[k][0], lines[k][1]);
    plots = ngs_h5_attr_read_i64(g, "plots", -1);
    if (plots >= 0) fprintf(c->out, "    plots: %lld\n", plots);
    ngs_h5_iterate_links(g, visit_plot, c);
    H5Gclose(g);
    return 0;
}

int ngs_h5_info_print(const char *path, FILE *out, char *err, size_t errlen)
{
    info_ctx c = {out, 0, 0, H5I_INVALID_HID, NULL};
    hid_t f;
    char *fmt, *ver, a[32], b[32];
    hsize_t idx = 0;
    int live, busy;
    char cut[400];
    ngs_codec_register_zstd();
    ngs_bounded_register();
    f = ngs_h5_open_read(path, &live, &busy, cut, sizeof cut);
    if (f < 0 && busy) {
        snprintf(err, errlen, "%s is being written without SWMR (a running ngscale batch, or another "
                              "program): look again when it has finished", path);
        return NGS_ERR_IO;
    }
    if (f < 0 && cut[0]) { /* h5clear cannot mend that */
        snprintf(err, errlen, "%s: %s", path, cut);
        return NGS_ERR_IO;
    }
    if (f < 0) {
        snprintf(err, errlen, "%s: cannot open as HDF5 (missing, not HDF5, or left by a killed "
                              "writer: try 'h5clear -s %s')", path, path);
        return NGS_ERR_IO;
    }
    fmt = ngs_h5_attr_dup_str(f, "ngscale_format");
    if (!fmt || !fmt[0]) {
        free(fmt);
        H5Fclose(f);
        snprintf(err, errlen, "%s: an HDF5 file, but not written by ngscale", path);
        return NGS_ERR_FORMAT;
    }
    free(fmt);
    ver = ngs_h5_attr_dup_str(f, "ngscale_version");
    fprintf(out, "%s: ngscale format %lld, written by ngscale %s%s\n", path,
            ngs_h5_attr_read_i64(f, "ngscale_format_version", 0), STR(ver),
            live ? " (still being written, or its writer was killed)" : "");
    free(ver);
    {   /* it shows the old results until the new ones are renamed over it */
        char tmp[PATH_MAX + 300];
        if (ngs_h5_replacement_of(path, tmp, sizeof tmp))
            fprintf(out, "  (to be replaced: %s is being written and will be renamed over it when "
                         "done)\n", tmp);
    }
    c.file = f;
    print_summary(out, f);
    H5E_BEGIN_TRY {
        H5Literate(f, H5_INDEX_NAME, H5_ITER_INC, &idx, visit_run, &c);
    } H5E_END_TRY;
    human(a, sizeof a, (double)c.stored);
    human(b, sizeof b, (double)c.logical);
    fprintf(out, "  stored %s for %s of data: compression ratio %.2f\n", a, b,
            c.stored ? (double)c.logical / (double)c.stored : 0.0);
    H5Fclose(f);
    return NGS_OK;
}
