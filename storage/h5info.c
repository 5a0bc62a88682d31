/*
 * h5info.c - `ngscale info`: what an ngscale file holds and how well it compressed.
 *
 * A file whose writer is still running (or was killed) has its "open for write"
 * flag set; opening it in SWMR-read mode still works, so we fall back to that.
 */
#include "storage/h5info.h"
#include "storage/codec.h"
#include "storage/bounded.h"

#include <hdf5.h>
#include <stdlib.h>
#include <string.h>

#include "ngscale.h"

typedef struct {
    FILE *out;
    hsize_t stored, logical;
    hid_t file;
    const char *run;
} info_ctx;

static void read_str_attr(hid_t obj, const char *name, char *buf, size_t n)
{
    hid_t a, t, mt;
    buf[0] = '\0';
    if (H5Aexists(obj, name) <= 0) return;
    a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return;
    t = H5Aget_type(a);
    if (H5Tget_class(t) == H5T_STRING) {
        if (H5Tis_variable_str(t) > 0) {
            char *s = NULL;
            mt = H5Tcopy(H5T_C_S1);
            H5Tset_size(mt, H5T_VARIABLE);
            H5Tset_cset(mt, H5Tget_cset(t));
            if (H5Aread(a, mt, &s) >= 0 && s) {
                snprintf(buf, n, "%s", s);
                H5free_memory(s);
            }
            H5Tclose(mt);
        } else {
            size_t sz = H5Tget_size(t);
            char *tmp = calloc(1, sz + 1);
            if (tmp && H5Aread(a, t, tmp) >= 0) snprintf(buf, n, "%s", tmp);
            free(tmp);
        }
    }
    H5Tclose(t);
    H5Aclose(a);
}

static long long read_int_attr(hid_t obj, const char *name, long long dflt)
{
    long long v = dflt;
    hid_t a;
    if (H5Aexists(obj, name) <= 0) return dflt;
    a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0) return dflt;
    if (H5Aread(a, H5T_NATIVE_LLONG, &v) < 0) v = dflt;
    H5Aclose(a);
    return v;
}

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
    char type[64], unit[32];
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
    read_str_attr(d, "type", type, sizeof type);
    read_str_attr(d, "unit", unit, sizeof unit);
    is_scale = read_int_attr(d, "is_scale", 0);
    fprintf(c->out, "      %-28s %-16s %-6s %-7s%s\n", name, type, unit,
            H5Tget_class(t) == H5T_COMPOUND ? "complex" : "real", is_scale ? "  (scale)" : "");
    H5Tclose(t);
    H5Sclose(s);
    H5Dclose(d);
    return 0;
}

static herr_t visit_plot(hid_t run, const char *name, const H5L_info_t *li, void *op)
{
    info_ctx *c = op;
    hid_t g;
    char plotname[128], status[32], msg[256];
    long long points, nvec;
    H5G_info_t gi;
    hsize_t idx = 0;
    (void)li;
    g = H5Gopen2(run, name, H5P_DEFAULT);
    if (g < 0) return 0;
    read_str_attr(g, "plotname", plotname, sizeof plotname);
    read_str_attr(g, "status", status, sizeof status);
    read_str_attr(g, "message", msg, sizeof msg);
    points = read_int_attr(g, "points", -1);
    H5Gget_info(g, &gi);
    nvec = (long long)gi.nlinks;
    if (strcmp(status, "complete") != 0) { /* points attribute is final only at the end */
        hid_t first;
        hsize_t dims = 0;
        char n0[256];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, 0, n0, sizeof n0, H5P_DEFAULT) > 0 &&
            (first = H5Dopen2(g, n0, H5P_DEFAULT)) >= 0) {
            hid_t s = H5Dget_space(first);
            H5Sget_simple_extent_dims(s, &dims, NULL);
            H5Sclose(s);
            H5Dclose(first);
            points = (long long)dims;
        }
    }
    fprintf(c->out, "    plot %s (%s): %lld points, %lld vectors, %s%s%s\n", name, plotname,
            points, nvec, status, msg[0] ? ": " : "", msg);
    H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, visit_vector, c);
    H5Gclose(g);
    return 0;
}

static herr_t visit_run(hid_t file, const char *name, const H5L_info_t *li, void *op)
{
    info_ctx *c = op;
    hid_t g;
    char status[32], msg[512], path[512], ver[160], mem[300], codec[16];
    long long plots;
    hsize_t idx = 0;
    H5O_info_t oi;
    (void)li;
    if (H5Oget_info_by_name(file, name, &oi, H5P_DEFAULT) < 0 || oi.type != H5O_TYPE_GROUP) return 0;
    g = H5Gopen2(file, name, H5P_DEFAULT);
    if (g < 0) return 0;
    read_str_attr(g, "status", status, sizeof status);
    read_str_attr(g, "message", msg, sizeof msg);
    read_str_attr(g, "netlist_path", path, sizeof path);
    read_str_attr(g, "ngspice_version", ver, sizeof ver);
    read_str_attr(g, "memory_reason", mem, sizeof mem);
    read_str_attr(g, "codec", codec, sizeof codec);
    plots = read_int_attr(g, "plots", -1);
    fprintf(c->out, "  run %s: %s%s%s\n", name, status, msg[0] ? " - " : "", msg);
    if (path[0]) fprintf(c->out, "    netlist: %s\n", path);
    if (ver[0]) fprintf(c->out, "    ngspice: %s\n", ver);
    if (codec[0]) fprintf(c->out, "    codec: %s\n", codec);
    if (mem[0]) fprintf(c->out, "    memory: %s\n", mem);
    if (plots >= 0) fprintf(c->out, "    plots: %lld\n", plots);
    H5Literate(g, H5_INDEX_CRT_ORDER, H5_ITER_INC, &idx, visit_plot, c);
    H5Gclose(g);
    return 0;
}

int ngs_h5_info_print(const char *path, FILE *out, char *err, size_t errlen)
{
    info_ctx c = {out, 0, 0, H5I_INVALID_HID, NULL};
    hid_t f;
    char fmt[64], ver[32], a[32], b[32];
    hsize_t idx = 0;
    int live = 0;
    ngs_codec_register_zstd();
    ngs_bounded_register();
    H5E_BEGIN_TRY {
        f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
        if (f < 0) {
            f = H5Fopen(path, H5F_ACC_RDONLY | H5F_ACC_SWMR_READ, H5P_DEFAULT);
            live = f >= 0;
        }
    } H5E_END_TRY;
    if (f < 0) {
        snprintf(err, errlen, "%s: cannot open as HDF5 (missing, not HDF5, or left by a killed "
                              "writer: try 'h5clear -s %s')", path, path);
        return NGS_ERR_IO;
    }
    read_str_attr(f, "ngscale_format", fmt, sizeof fmt);
    if (!fmt[0]) {
        H5Fclose(f);
        snprintf(err, errlen, "%s: an HDF5 file, but not written by ngscale", path);
        return NGS_ERR_FORMAT;
    }
    read_str_attr(f, "ngscale_version", ver, sizeof ver);
    fprintf(out, "%s: ngscale format %lld, written by ngscale %s%s\n", path,
            read_int_attr(f, "ngscale_format_version", 0), ver,
            live ? " (still being written, or its writer was killed)" : "");
    c.file = f;
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
