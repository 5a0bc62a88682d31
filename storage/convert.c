/*
 * convert.c - RAW -> HDF5 converter and HDF5 -> RAW exporter (see convert.h).
 *
 * Why it looks like this:
 * - Conversion is the streaming RAW reader feeding the streaming HDF5 writer, a few MiB
 *   of rows at a time: memory does not grow with the file (the reader gives mapped pages
 *   back behind it). No simulation runs meanwhile, so the writer encodes on every core,
 *   and SWMR (which is for live readers) is off.
 * - The writer knows only the schema's attributes. What the RAW writer needs to give
 *   the same bytes back (header lines, style, per-variable params) is written here as
 *   raw_* attributes right after each plot ends, through a second handle on the same
 *   file (HDF5 shares one open file between handles of one process; with SWMR off the
 *   writer never reopens it).
 * - Truncated input is converted, not refused: every complete point goes in and the
 *   run says "incomplete" with a count, since a cut RAW file is what a killed ngspice
 *   leaves and its points are still worth keeping.
 * - The exporter reads one block of points per step: a hyperslab per vector aligned
 *   with the datasets' chunks (each chunk is decoded once, nothing stays cached), then
 *   interleaves the columns into rows for the RAW writer. A run without provenance (from
 *   `ngscale run`) gets the header ngspice itself writes. A plot of 20k vectors has each
 *   dataset open only while it is read, as the writer does: memory stays flat.
 */
#include "storage/convert.h"
#include "storage/bounded.h"
#include "storage/codec.h"
#include "storage/h5attr.h"
#include "storage/h5writer.h"
#include "storage/pool.h"
#include "storage/raw.h"
#include "hooks/clock.h"
#include "hooks/dispatch.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define READ_BYTES_DEFAULT (1u << 20) /* rows read from a RAW file per step (x2: read-ahead) */
#define EXPORT_BLOCK_BYTES (16u << 20) /* largest block of points the exporter holds */
#define EXPORT_POINTS 65536u           /* block for unchunked datasets */

/* ------------------------------------------------------------------ helpers -- */

static int set_err(char *err, size_t errlen, int code, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* Would writing out destroy in? (The RAW reader maps its input: truncating it under the
 * mapping would crash the process with SIGBUS.) */
static int same_file(const char *in, const char *out)
{
    struct stat a, b;
    return stat(in, &a) == 0 && stat(out, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

/* HDF5 link names as the writer makes them: '/' and '%' escaped, "" and "." prefixed. */
static char *escape_link(const char *name)
{
    size_t n = strlen(name), o = 0;
    char *out = malloc(3 * n + 2);
    if (!out)
        return NULL;
    if (n == 0 || strcmp(name, ".") == 0)
        out[o++] = '_';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '/' || name[i] == '%')
            o += (size_t)sprintf(out + o, "%%%02X", (unsigned char)name[i]);
        else
            out[o++] = name[i];
    }
    out[o] = '\0';
    return out;
}

static void unescape_link(char *s)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (p[0] == '%' && isxdigit((unsigned char)p[1]) && isxdigit((unsigned char)p[2])) {
            char hex[3] = {p[1], p[2], 0};
            *o++ = (char)strtol(hex, NULL, 16);
            p += 2;
        } else {
            *o++ = *p;
        }
    }
    *o = '\0';
}

static char *join_path(const char *a, const char *b)
{
    char *s = malloc(strlen(a) + strlen(b) + 2);
    if (s)
        sprintf(s, "%s/%s", a, b);
    return s;
}

/* ---------------------------------------------------------- analysis names -- */

static const struct {
    const char *prefix, *analysis;
} ANALYSES[] = {
    {"Transient Analysis", "tran"},
    {"AC Analysis", "ac"},
    {"DC transfer characteristic", "dc"},
    {"Operating Point", "op"},
    {"Noise Spectral Density", "noise"}, /* ngspice "... Curves", LTspice "... - (V/Hz½...)" */
    {"Integrated Noise", "noise"},
    {"Transfer Function", "tf"},
    {"Sensitivity Analysis", "sens"},
    {"Pole-Zero Analysis", "pz"},
    {"Distortion", "disto"}, /* ngspice "DISTORTION - 2nd harmonic" */
};

int ngs_convert_analysis_name(const char *plotname, char *out, size_t n)
{
    if (!plotname || !out || n < 2)
        return NGS_ERR_ARG;
    while (*plotname == ' ' || *plotname == '\t')
        plotname++;
    for (size_t i = 0; i < sizeof ANALYSES / sizeof ANALYSES[0]; i++)
        if (strncasecmp(plotname, ANALYSES[i].prefix, strlen(ANALYSES[i].prefix)) == 0) {
            snprintf(out, n, "%s", ANALYSES[i].analysis);
            return NGS_OK;
        }
    size_t k = 0;
    for (; plotname[k] && plotname[k] != ' ' && plotname[k] != '\t' && k + 1 < n; k++)
        out[k] = (char)tolower((unsigned char)plotname[k]);
    out[k] = '\0';
    if (k == 0)
        snprintf(out, n, "plot");
    return NGS_OK;
}

/* ngspice's own name of a RAW vector: "v(out)" -> "out", "i(v1)" -> "v1#branch". */
static char *ngspice_name(const char *raw, const char *type)
{
    size_t len = strlen(raw);
    char *out = malloc(len + 8);
    if (!out)
        return NULL;
    int paren = len > 3 && raw[1] == '(' && raw[len - 1] == ')';
    if (paren && (raw[0] == 'i' || raw[0] == 'I') && strcasecmp(type, "current") == 0)
        sprintf(out, "%.*s#branch", (int)(len - 3), raw + 2);
    else if (paren && (raw[0] == 'v' || raw[0] == 'V') && strcasecmp(type, "voltage") == 0)
        sprintf(out, "%.*s", (int)(len - 3), raw + 2);
    else
        memcpy(out, raw, len + 1);
    return out;
}

static const char *style_name(ngs_raw_style s)
{
    return s == NGS_RAW_STYLE_WRITE ? "write" : "batch";
}

static const char *encoding_name(ngs_raw_encoding e)
{
    return e == NGS_RAW_ASCII ? "ascii" : e == NGS_RAW_NODATA ? "nodata" : "binary";
}

static const char *dialect_name(ngs_raw_dialect d)
{
    switch (d) {
    case NGS_RAW_DIALECT_LTSPICE: return "ltspice";
    case NGS_RAW_DIALECT_QSPICE: return "qspice";
    case NGS_RAW_DIALECT_XYCE: return "xyce";
    default: return "ngspice";
    }
}

/* The plot's header lines, one per line: "Key: value", or the whole line when it has
 * no key (QSPICE ".param"). That is exactly what the RAW writer prints for them. */
static char *header_text(const ngs_raw_plot *p)
{
    size_t n = 1;
    for (size_t i = 0; i < p->nlines; i++)
        n += strlen(p->lines[i].key) + (p->lines[i].value ? strlen(p->lines[i].value) + 2 : 0) + 1;
    char *s = malloc(n), *o = s;
    if (!s)
        return NULL;
    for (size_t i = 0; i < p->nlines; i++)
        o += p->lines[i].value ? sprintf(o, "%s: %s\n", p->lines[i].key, p->lines[i].value)
                               : sprintf(o, "%s\n", p->lines[i].key);
    *o = '\0';
    return s;
}

/* ================================================================ convert == */

void ngs_convert_options_init(ngs_convert_options *o)
{
    if (!o)
        return;
    memset(o, 0, sizeof *o);
    o->codec = NGS_CODEC_ZSTD;
}

typedef struct {
    ngs_raw_reader *r;
    ngs_h5_writer *w;
    hid_t fid;           /* second handle on the output, for provenance attributes */
    char *run_link;      /* escaped run group name */
    struct {
        char analysis[32];
        uint64_t count;
    } *kinds;            /* plots so far per analysis (nplots entries at most) */
    size_t nkinds;
    double *buf;
    size_t buf_doubles;
    size_t read_bytes;
    ngs_convert_report *rep;
    const volatile sig_atomic_t *stop;
    char *err;
    size_t errlen;
} conv_ctx;

/* Writes the raw_* attributes of plot i (its group and datasets exist now). */
static int write_provenance(conv_ctx *c, const ngs_raw_plot *p, const char *plot_name)
{
    char *leaf = escape_link(plot_name), *path = leaf ? join_path(c->run_link, leaf) : NULL;
    char *hdr = header_text(p);
    int rc = NGS_OK;
    free(leaf);
    if (!path || !hdr) {
        free(path);
        free(hdr);
        return set_err(c->err, c->errlen, NGS_ERR_NOMEM, "out of memory");
    }
    hid_t g;
    H5E_BEGIN_TRY { g = H5Gopen2(c->fid, path, H5P_DEFAULT); } H5E_END_TRY;
    if (g < 0) {
        rc = set_err(c->err, c->errlen, NGS_ERR_HDF5, "cannot open %s to write its RAW attributes",
                     path);
        goto out;
    }
    if (ngs_h5_attr_write_str(g, "raw_header", hdr) < 0 ||
        ngs_h5_attr_write_str(g, "raw_flags", p->flags) < 0 ||
        ngs_h5_attr_write_str(g, "raw_style", style_name(p->style)) < 0 ||
        ngs_h5_attr_write_str(g, "raw_encoding", encoding_name(p->encoding)) < 0 ||
        ngs_h5_attr_write_str(g, "raw_dialect", dialect_name(p->dialect)) < 0 ||
        ngs_h5_attr_write_i64(g, "raw_points_declared", (int64_t)p->npoints_declared) < 0 ||
        ngs_h5_attr_write_i64(g, "raw_offset", (int64_t)p->header_offset) < 0)
        rc = set_err(c->err, c->errlen, NGS_ERR_HDF5, "cannot write RAW attributes of %s", path);
    /* Datasets were created in variable order: the k-th by creation order is var k. */
    for (int k = 0; rc == NGS_OK && k < p->nvars; k++) {
        const ngs_raw_var *v = &p->vars[k];
        int f32 = v->storage == NGS_RAW_F32;
        if (!v->params[0] && !f32)
            continue;
        ssize_t len = H5Lget_name_by_idx(g, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, (hsize_t)k,
                                         NULL, 0, H5P_DEFAULT);
        char *name = len > 0 ? malloc((size_t)len + 1) : NULL;
        hid_t d = H5I_INVALID_HID;
        if (name && H5Lget_name_by_idx(g, ".", H5_INDEX_CRT_ORDER, H5_ITER_INC, (hsize_t)k, name,
                                       (size_t)len + 1, H5P_DEFAULT) == len)
            d = H5Dopen2(g, name, H5P_DEFAULT);
        free(name);
        if (d < 0 || ngs_h5_attr_read_i64(d, "index", -1) != k ||
            (v->params[0] && ngs_h5_attr_write_str(d, "raw_params", v->params) < 0) ||
            (f32 && ngs_h5_attr_write_str(d, "raw_storage", "float32") < 0))
            rc = set_err(c->err, c->errlen, NGS_ERR_HDF5,
                         "cannot write RAW attributes of %s/%s", path, v->name);
        if (d >= 0)
            H5Dclose(d);
    }
    H5Gclose(g);
out:
    free(path);
    free(hdr);
    return rc;
}

/* One block of rows read by a helper thread while the writer encodes the previous one:
 * reading (page faults and copies out of the mapping) and the writer's own serial work
 * (transposing, chunk writes) then overlap with encoding instead of leaving a core idle. */
typedef struct {
    ngs_raw_reader *r;
    size_t plot;
    uint64_t first;
    size_t count;
    double *out;
    int rc;
} read_job;

static void *read_block(void *arg)
{
    read_job *j = arg;
    j->rc = ngs_raw_read_rows(j->r, j->plot, j->first, j->count, j->out);
    return NULL;
}

/* Streams npoints rows of plot i into the writer, per rows at a time, double-buffered.
 * Only the helper thread touches the reader while it runs (joined before any other use). */
static int stream_rows(conv_ctx *c, size_t i, uint64_t npoints, size_t per)
{
    read_job job[2];
    pthread_t th;
    int running = 0, rc = NGS_OK, k = 0;
    uint64_t next = 0;
    if (npoints == 0)
        return NGS_OK;
    for (int b = 0; b < 2; b++) {
        job[b].r = c->r;
        job[b].plot = i;
        job[b].out = c->buf + (size_t)b * c->buf_doubles;
    }
    /* block 0 is read here; each later one by a thread started before feeding the last */
    job[0].first = 0;
    job[0].count = npoints < per ? (size_t)npoints : per;
    read_block(&job[0]);
    next = job[0].count;
    for (;;) {
        read_job *cur = &job[k];
        if (cur->rc != NGS_OK) {
            rc = set_err(c->err, c->errlen, cur->rc, "%s", ngs_raw_last_error(c->r));
            break;
        }
        if (next < npoints) {
            read_job *nx = &job[1 - k];
            nx->first = next;
            nx->count = npoints - next < per ? (size_t)(npoints - next) : per;
            next += nx->count;
            running = pthread_create(&th, NULL, read_block, nx) == 0;
            if (!running) /* no thread to be had: read it here */
                read_block(nx);
        }
        int last = cur->first + cur->count >= npoints;
        if (c->stop && *c->stop) {
            rc = set_err(c->err, c->errlen, NGS_ERR_INTERRUPTED, "interrupted: %llu of %llu points of plot %zu "
                         "converted", (unsigned long long)cur->first, (unsigned long long)npoints, i + 1);
            break;
        }
        if ((rc = ngs_h5_rows(c->w, cur->out, cur->count)) != NGS_OK) {
            set_err(c->err, c->errlen, rc, "%s", ngs_h5_error(c->w));
            break;
        }
        if (last)
            break;
        if (running) {
            pthread_join(th, NULL);
            running = 0;
        }
        k = 1 - k;
    }
    if (running)
        pthread_join(th, NULL);
    return rc;
}

/* Describes plot i for the writer, names it (tran1, ac1, noise2...) and streams it. */
static int convert_plot(conv_ctx *c, size_t i, int *plot_open)
{
    const ngs_raw_plot *p;
    int rc = ngs_raw_plot_info(c->r, i, &p);
    if (rc != NGS_OK)
        return set_err(c->err, c->errlen, rc, "%s", ngs_raw_last_error(c->r));
    /* ngspice numbers plots per analysis type: tran1, tran2, ac1... (c->kinds: one counter
     * per distinct analysis, a handful) */
    char an[32], plot_name[64];
    ngs_convert_analysis_name(p->plotname, an, sizeof an);
    size_t t = 0;
    while (t < c->nkinds && strcmp(c->kinds[t].analysis, an) != 0)
        t++;
    if (t == c->nkinds) {
        snprintf(c->kinds[t].analysis, sizeof c->kinds[t].analysis, "%s", an);
        c->kinds[t].count = 0;
        c->nkinds++;
    }
    /* An analysis ending in a digit would run into its counter ("x1" + 1 and "x" + 11
     * both give "x11"): '_' separates them then, and after a trailing '_' too, so that
     * no two analyses share a name ("x1_1" is x1's, "x1__1" x1_'s). */
    size_t al = strlen(an);
    int sep = al && (isdigit((unsigned char)an[al - 1]) || an[al - 1] == '_');
    snprintf(plot_name, sizeof plot_name, "%s%s%llu", an, sep ? "_" : "",
             (unsigned long long)++c->kinds[t].count);

    ngs_vector_desc *vd = calloc((size_t)(p->nvars ? p->nvars : 1), sizeof *vd);
    char **ngn = calloc((size_t)(p->nvars ? p->nvars : 1), sizeof *ngn);
    ngs_plot_desc *desc = NULL;
    rc = vd && ngn ? NGS_OK : NGS_ERR_NOMEM;
    for (int k = 0; rc == NGS_OK && k < p->nvars; k++) {
        const ngs_raw_var *v = &p->vars[k];
        int type = ngs_vector_type_from_name(v->type);
        if (!(ngn[k] = ngspice_name(v->name, v->type)))
            rc = NGS_ERR_NOMEM;
        vd[k].name = v->name;
        vd[k].ngspice_name = ngn[k];
        vd[k].type = type;
        vd[k].type_name = v->type;
        vd[k].unit = ngs_vector_type_unit(type);
        vd[k].is_complex = v->is_complex;
        vd[k].is_scale = k == 0; /* ngspice's plot scale: the first vector, as `ngscale run` */
    }
    if (rc == NGS_OK)
        desc = ngs_plot_desc_new(plot_name, p->plotname, an, p->title, p->date, (int)i, vd,
                                 p->nvars);
    for (int k = 0; ngn && k < p->nvars; k++)
        free(ngn[k]);
    free(ngn);
    free(vd);
    if (!desc)
        return set_err(c->err, c->errlen, NGS_ERR_NOMEM, "out of memory");
    if (desc->row_doubles != p->row_doubles) { /* cannot happen: same layout rule */
        ngs_plot_desc_free(desc);
        return set_err(c->err, c->errlen, NGS_ERR_FORMAT, "plot %zu: inconsistent row layout",
                       i + 1);
    }
    rc = ngs_h5_plot_begin(c->w, desc);
    ngs_plot_desc_free(desc);
    if (rc != NGS_OK)
        return set_err(c->err, c->errlen, rc, "%s", ngs_h5_error(c->w));
    *plot_open = 1;

    size_t row_bytes = (size_t)p->row_doubles * sizeof(double);
    size_t per = row_bytes ? c->read_bytes / row_bytes : 0;
    if (per == 0)
        per = 1;
    if (p->npoints && per * (size_t)p->row_doubles > c->buf_doubles) {
        free(c->buf);
        c->buf_doubles = per * (size_t)p->row_doubles;
        if (!(c->buf = malloc(2 * c->buf_doubles * sizeof(double)))) {
            c->buf_doubles = 0;
            return set_err(c->err, c->errlen, NGS_ERR_NOMEM, "out of memory");
        }
    }
    if ((rc = stream_rows(c, i, p->npoints, per)) != NGS_OK)
        return rc;

    int status = NGS_OK;
    char msg[400] = "";
    uint64_t end = p->data_offset + p->data_bytes, size = ngs_raw_info(c->r)->size;
    /* Where the plot's data stop: the end of the file, or the next plot's header when
     * that starts before the declared points are all there. */
    const ngs_raw_plot *nx = NULL;
    uint64_t stop = i + 1 < ngs_raw_nplots(c->r) && ngs_raw_plot_info(c->r, i + 1, &nx) == NGS_OK
                        ? nx->header_offset
                        : size;
    if (p->truncated || p->in_progress) {
        status = NGS_ERR_INTERRUPTED;
        int partial = p->encoding == NGS_RAW_BINARY && end < stop;
        char where[200];
        if (stop < size)
            snprintf(where, sizeof where, "the next plot starts at byte %llu%s",
                     (unsigned long long)stop, partial ? " inside a point" : "");
        else
            snprintf(where, sizeof where, "the RAW file is truncated at byte %llu%s",
                     (unsigned long long)size, partial ? " inside a point" : "");
        if (p->data_error[0]) /* cut so that the count after it stays in the message */
            snprintf(where, sizeof where, "%.*s", (int)sizeof where - 1, p->data_error);
        if (p->in_progress)
            snprintf(msg, sizeof msg,
                     "the RAW file was still being written (No. Points 0) and ends at byte "
                     "%llu%s: %llu complete points recovered",
                     (unsigned long long)size, partial ? " inside a point" : "",
                     (unsigned long long)p->npoints);
        else if (p->npoints_declared == 0)
            snprintf(msg, sizeof msg, "%s: %llu complete points recovered", where,
                     (unsigned long long)p->npoints);
        else
            snprintf(msg, sizeof msg, "%s: %llu of %llu points recovered", where,
                     (unsigned long long)p->npoints, (unsigned long long)p->npoints_declared);
        if (partial || p->data_error[0])
            c->rep->skipped_bytes += stop - end;
        c->rep->truncated = 1;
        /* A long Plotname must not push the count out of the message: its first 60
         * bytes, cut between UTF-8 characters. */
        int keep = (int)strlen(p->plotname), cut = keep > 60;
        if (cut)
            for (keep = 60; keep > 0 && ((unsigned char)p->plotname[keep] & 0xC0) == 0x80;)
                keep--;
        snprintf(c->rep->message, sizeof c->rep->message, "plot %zu (%.*s%s): %s", i + 1, keep,
                 p->plotname, cut ? "..." : "", msg);
    }
    *plot_open = 0;
    if ((rc = ngs_h5_plot_end(c->w, status, msg)) != NGS_OK)
        return set_err(c->err, c->errlen, rc, "%s", ngs_h5_error(c->w));
    if ((rc = write_provenance(c, p, plot_name)) != NGS_OK)
        return rc;
    c->rep->plots++;
    c->rep->points += p->npoints;
    return NGS_OK;
}

/* The conversion into h5_path, which it creates (or appends to); ngs_convert_raw_to_h5
 * has checked the arguments and chosen the file. */
static int convert_file(const char *raw_path, const char *h5_path,
                        const ngs_convert_options *opts, ngs_convert_report *rep, char *err,
                        size_t errlen)
{
    double t0 = ngs_now_s();
    ngs_convert_options o = *opts;
    conv_ctx c;
    int rc, run_open = 0, plot_open = 0;

    memset(&c, 0, sizeof c);
    c.fid = H5I_INVALID_HID;
    c.rep = rep;
    c.err = err;
    c.errlen = errlen;
    c.read_bytes = o.read_bytes ? o.read_bytes : READ_BYTES_DEFAULT;
    c.stop = o.stop;

    /* Every plot header is checked (and ASCII data indexed) before the output exists. */
    if ((rc = ngs_raw_open(&c.r, raw_path, err, errlen)) != NGS_OK)
        return rc;
    const ngs_raw_file_info *info = ngs_raw_info(c.r);
    size_t nplots = ngs_raw_nplots(c.r);
    rep->bytes_in = info->size;
    for (size_t i = 0; i < nplots; i++) {
        const ngs_raw_plot *p;
        if ((rc = ngs_raw_plot_info(c.r, i, &p)) != NGS_OK) {
            set_err(err, errlen, rc, "%s", ngs_raw_last_error(c.r));
            goto done;
        }
    }
    if (!(c.kinds = calloc(nplots ? nplots : 1, sizeof *c.kinds))) {
        rc = set_err(err, errlen, NGS_ERR_NOMEM, "out of memory");
        goto done;
    }

    ngs_h5_options ho;
    ngs_h5_options_init(&ho);
    ho.codec = o.codec;
    ho.level = o.level;
    ho.swmr = 0;
    ho.append = o.append;
    ho.chunk_points = o.chunk_points;
    ho.flush_interval_s = 0;
    ho.encoder_threads = o.threads > 0 ? o.threads : ngs_cpu_count();
    ho.lossy = o.lossy;
    if ((rc = ngs_h5_open(&c.w, h5_path, &ho, err, errlen)) != NGS_OK)
        goto done;
    {
        hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
        H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
        H5E_BEGIN_TRY { c.fid = H5Fopen(h5_path, H5F_ACC_RDWR, fapl); } H5E_END_TRY;
        H5Pclose(fapl);
        if (c.fid < 0) {
            rc = set_err(err, errlen, NGS_ERR_HDF5, "%s: cannot open a second handle", h5_path);
            goto done;
        }
    }
    const char *group = o.group && *o.group ? o.group : "run";
    if (!(c.run_link = escape_link(group))) {
        rc = set_err(err, errlen, NGS_ERR_NOMEM, "out of memory");
        goto done;
    }
    if ((rc = ngs_h5_run_begin(c.w, group)) != NGS_OK) {
        set_err(err, errlen, rc, "%s", ngs_h5_error(c.w));
        goto done;
    }
    run_open = 1;
    {
        char *abs = realpath(raw_path, NULL);
        const ngs_raw_plot *p0 = NULL;
        if (nplots)
            ngs_raw_plot_info(c.r, 0, &p0);
        if ((rc = ngs_h5_run_attr_str(c.w, "source_raw", abs ? abs : raw_path)) != NGS_OK ||
            (rc = ngs_h5_run_attr_i64(c.w, "source_raw_bytes", (int64_t)info->size)) != NGS_OK ||
            (rc = ngs_h5_run_attr_str(c.w, "title", p0 ? p0->title : "")) != NGS_OK)
            set_err(err, errlen, rc, "%s", ngs_h5_error(c.w));
        free(abs);
        if (rc != NGS_OK)
            goto done;
    }

    for (size_t i = 0; i < nplots && rc == NGS_OK; i++)
        rc = convert_plot(&c, i, &plot_open);
    if (rc != NGS_OK)
        goto done;

    /* What the reader could not turn into plots. */
    const ngs_raw_plot *last = NULL;
    if (nplots)
        ngs_raw_plot_info(c.r, nplots - 1, &last);
    uint64_t end = last ? (last->encoding == NGS_RAW_ASCII ? info->size
                                                            : last->data_offset + last->data_bytes)
                        : 0;
    if (info->header_truncated) {
        rep->truncated = 1;
        rep->skipped_bytes += info->size > end ? info->size - end : 0;
        snprintf(rep->message, sizeof rep->message,
                 "the RAW file is truncated: it ends inside the header of plot %zu (bytes "
                 "%llu..%llu); %zu complete plots converted",
                 nplots + 1, (unsigned long long)end, (unsigned long long)info->size, nplots);
    } else if (info->trailing_bytes) {
        rep->skipped_bytes += info->trailing_bytes;
        if (!rep->truncated && info->skipped_gaps > 1)
            snprintf(rep->message, sizeof rep->message,
                     "%llu bytes in %zu places (the first at byte %llu) are not a RAW plot "
                     "and were not converted", (unsigned long long)info->trailing_bytes,
                     info->skipped_gaps, (unsigned long long)info->trailing_offset);
        else if (!rep->truncated)
            snprintf(rep->message, sizeof rep->message,
                     "%llu bytes at byte %llu are not a RAW plot and were not converted",
                     (unsigned long long)info->trailing_bytes,
                     (unsigned long long)info->trailing_offset);
    }
    if (info->bad_headers) {
        /* Plots lost to a corrupt header: the input is not all there, as for a cut file
         * (run "incomplete", exit 5), and the message says where and why. */
        size_t len = strlen(rep->message);
        char *o = rep->message + len;
        size_t room = sizeof rep->message - len;
        if (len && room > 2) {
            memcpy(o, "; ", 3);
            o += 2;
            room -= 2;
        }
        if (info->bad_headers == 1)
            snprintf(o, room, "the plot header at byte %llu (plot %zu) is corrupt, %s: %llu "
                     "bytes up to the next plot header were not converted",
                     (unsigned long long)info->bad_offset, info->bad_plotno, info->bad_error,
                     (unsigned long long)info->bad_bytes);
        else
            snprintf(o, room, "%zu plot headers are corrupt, the first at byte %llu (plot %zu), "
                     "%s: %llu bytes up to the next plot headers were not converted",
                     info->bad_headers, (unsigned long long)info->bad_offset,
                     info->bad_plotno, info->bad_error, (unsigned long long)info->bad_bytes);
        rep->truncated = 1;
        rep->skipped_bytes += info->bad_bytes;
    }
    rep->seconds = ngs_now_s() - t0;
    if ((rc = ngs_h5_run_attr_i64(c.w, "points", (int64_t)rep->points)) != NGS_OK ||
        (rc = ngs_h5_run_attr_f64(c.w, "wall_s", rep->seconds)) != NGS_OK ||
        (!rep->truncated && rep->message[0] &&
         (rc = ngs_h5_run_attr_str(c.w, "raw_warning", rep->message)) != NGS_OK)) {
        set_err(err, errlen, rc, "%s", ngs_h5_error(c.w));
        goto done;
    }
    run_open = 0;
    rc = ngs_h5_run_end(c.w, rep->truncated ? NGS_ERR_INTERRUPTED : NGS_OK,
                        rep->truncated ? rep->message : NULL);
    if (rc != NGS_OK)
        set_err(err, errlen, rc, "%s", ngs_h5_error(c.w));

done:
    if (c.w) {
        /* A failure: the file keeps what was written and says why (status "failed"). */
        if (plot_open)
            ngs_h5_plot_end(c.w, rc, err && *err ? err : ngs_strerror(rc));
        if (run_open)
            ngs_h5_run_end(c.w, rc, err && *err ? err : ngs_strerror(rc));
    }
    if (c.fid >= 0)
        H5Fclose(c.fid);
    if (c.w) {
        int rc2 = ngs_h5_close(c.w);
        if (rc == NGS_OK && rc2 != NGS_OK)
            rc = set_err(err, errlen, rc2, "%s: cannot close the file", h5_path);
    }
    ngs_raw_close(c.r);
    free(c.buf);
    free(c.kinds);
    free(c.run_link);
    rep->bytes_out = file_size(h5_path);
    rep->seconds = ngs_now_s() - t0;
    return rc;
}

int ngs_convert_raw_to_h5(const char *raw_path, const char *h5_path,
                          const ngs_convert_options *opts, ngs_convert_report *report,
                          char *err, size_t errlen)
{
    ngs_convert_options o;
    ngs_convert_report local;
    ngs_convert_report *rep = report ? report : &local;
    char *tmp = NULL, *dest = NULL;
    struct stat st;
    int rc;

    memset(rep, 0, sizeof *rep);
    if (err && errlen)
        err[0] = '\0';
    if (!raw_path || !h5_path)
        return set_err(err, errlen, NGS_ERR_ARG, "ngs_convert_raw_to_h5: NULL path");
    if (opts)
        o = *opts;
    else
        ngs_convert_options_init(&o);
    if (same_file(raw_path, h5_path))
        return set_err(err, errlen, NGS_ERR_ARG, "%s: input and output are the same file",
                       h5_path);
    if ((int)o.codec < NGS_CODEC_ZSTD || o.codec > NGS_CODEC_BITROUND)
        return set_err(err, errlen, NGS_ERR_ARG, "unknown codec %d", (int)o.codec);
    /* A file already there is replaced only by a finished conversion: written beside it
     * and renamed over it, so that a failure or an interrupt leaves it as it was. Then
     * the unfinished conversion is removed rather than kept under a temporary name: it
     * holds only points the RAW file still has, and a retry after a full disk would
     * find less room. A new file keeps what was converted, as `ngscale run` does. */
    if (!o.append && stat(h5_path, &st) == 0 && S_ISREG(st.st_mode) &&
        ((rc = ngs_h5_check_replace(h5_path, err, errlen)) != NGS_OK ||
         (rc = ngs_h5_temp_beside(h5_path, &tmp, &dest, err, errlen)) != NGS_OK))
        return rc;
    rc = convert_file(raw_path, tmp ? tmp : h5_path, &o, rep, err, errlen);
    if (tmp && rc == NGS_OK && rename(tmp, dest) != 0)
        rc = set_err(err, errlen, NGS_ERR_IO, "%s: cannot replace it: %s", h5_path,
                     strerror(errno));
    if (tmp && rc != NGS_OK) {
        size_t k = err && errlen ? strlen(err) : 0;
        int began = file_size(tmp) > 0;
        unlink(tmp);
        rep->bytes_out = 0;
        if (err && k + 1 < errlen)
            snprintf(err + k, errlen - k, "; %s was left as it was%s", h5_path,
                     began ? " (the unfinished conversion was removed)" : "");
    }
    free(tmp);
    free(dest);
    return rc;
}

/* ================================================================= export == */

typedef struct {
    int64_t index;
    char *link;
} child;

typedef struct {
    hid_t want; /* H5I_GROUP or H5I_DATASET */
    const char *required_attr; /* only children carrying it (a run's plots: not its spectrum/) */
    child *v;
    size_t n, cap;
    int nomem;
} child_list;

static herr_t collect_child(hid_t g, const char *name, const H5L_info_t *li, void *op)
{
    child_list *l = op;
    hid_t obj;
    (void)li;
    H5E_BEGIN_TRY { obj = H5Oopen(g, name, H5P_DEFAULT); } H5E_END_TRY;
    if (obj < 0)
        return 0;
    if (H5Iget_type(obj) == l->want && (!l->required_attr || H5Aexists(obj, l->required_attr) > 0)) {
        if (l->n == l->cap) {
            size_t cap = l->cap ? 2 * l->cap : 16;
            child *v = realloc(l->v, cap * sizeof *v);
            if (!v) {
                l->nomem = 1;
                H5Oclose(obj);
                return -1;
            }
            l->v = v;
            l->cap = cap;
        }
        child *c = &l->v[l->n];
        c->index = ngs_h5_attr_read_i64(obj, "index", (int64_t)l->n);
        if (!(c->link = strdup(name))) {
            l->nomem = 1;
            H5Oclose(obj);
            return -1;
        }
        l->n++;
    }
    H5Oclose(obj);
    return 0;
}

static int cmp_child(const void *a, const void *b)
{
    const child *x = a, *y = b;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void free_children(child_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].link);
    free(l->v);
}

/* Children of g of one kind, in creation order (name order when it is not tracked),
 * then sorted by their "index" attribute (stable for equal indices). */
static int list_children(hid_t g, hid_t want, const char *required_attr, int sort, child_list *l)
{
    herr_t rc;
    memset(l, 0, sizeof *l);
    l->want = want;
    l->required_attr = required_attr;
    rc = ngs_h5_iterate_links(g, collect_child, l);
    if (l->nomem) {
        free_children(l);
        return NGS_ERR_NOMEM;
    }
    if (rc < 0) {
        free_children(l);
        return NGS_ERR_HDF5;
    }
    if (sort) /* insertion sort: stable, and lists are short or already sorted */
        for (size_t i = 1; i < l->n; i++) {
            child t = l->v[i];
            size_t j = i;
            while (j > 0 && cmp_child(&l->v[j - 1], &t) > 0) {
                l->v[j] = l->v[j - 1];
                j--;
            }
            l->v[j] = t;
        }
    return NGS_OK;
}

typedef struct {
    hid_t dset, memtype;
    char *name, *type, *params;
    int is_complex;
    hsize_t extent, chunk;
} ex_var;

typedef struct {
    ngs_raw_writer *w;
    ngs_convert_report *rep;
    char *err;
    size_t errlen;
    const char *h5_path;
    hid_t file;
} ex_ctx;

/* Closes what open_var opened. */
static void close_var(ex_var *v)
{
    if (v->dset >= 0)
        H5Dclose(v->dset);
    if (v->memtype >= 0)
        H5Tclose(v->memtype);
    v->dset = v->memtype = H5I_INVALID_HID;
}

static void free_vars(ex_var *v, int n)
{
    for (int i = 0; v && i < n; i++) {
        close_var(&v[i]);
        free(v[i].name);
        free(v[i].type);
        free(v[i].params);
    }
    free(v);
}

/* Opens dataset link of g with dapl, and its memory type: float64, or {r, i} of float64
 * with the file's member names. */
static int open_var(ex_ctx *x, hid_t g, const char *plot, const char *link, hid_t dapl,
                    ex_var *v)
{
    hid_t d, ft;
    H5E_BEGIN_TRY { d = H5Dopen2(g, link, dapl); } H5E_END_TRY;
    if (d < 0)
        return set_err(x->err, x->errlen, NGS_ERR_HDF5, "%s: cannot open %s/%s", x->h5_path,
                       plot, link);
    v->dset = d;
    ft = H5Dget_type(d);
    H5T_class_t cls = H5Tget_class(ft);
    int ok = 0;
    if (cls == H5T_FLOAT) {
        v->memtype = H5Tcopy(H5T_NATIVE_DOUBLE);
        ok = v->memtype >= 0;
    } else if (cls == H5T_COMPOUND && H5Tget_nmembers(ft) == 2) {
        char *m0 = H5Tget_member_name(ft, 0), *m1 = H5Tget_member_name(ft, 1);
        hid_t t0 = H5Tget_member_type(ft, 0), t1 = H5Tget_member_type(ft, 1);
        if (m0 && m1 && H5Tget_class(t0) == H5T_FLOAT && H5Tget_class(t1) == H5T_FLOAT) {
            v->memtype = H5Tcreate(H5T_COMPOUND, 2 * sizeof(double));
            ok = v->memtype >= 0 && H5Tinsert(v->memtype, m0, 0, H5T_NATIVE_DOUBLE) >= 0 &&
                 H5Tinsert(v->memtype, m1, sizeof(double), H5T_NATIVE_DOUBLE) >= 0;
            v->is_complex = 1;
        }
        if (t0 >= 0)
            H5Tclose(t0);
        if (t1 >= 0)
            H5Tclose(t1);
        H5free_memory(m0);
        H5free_memory(m1);
    }
    H5Tclose(ft);
    if (!ok)
        return set_err(x->err, x->errlen, NGS_ERR_FORMAT,
                       "%s: %s/%s is neither float64 nor a complex {r, i} compound",
                       x->h5_path, plot, link);
    return NGS_OK;
}

/* Extent and chunk size of v (open). */
static int var_shape(ex_ctx *x, const char *plot, const char *link, ex_var *v)
{
    hid_t d = v->dset, sp = H5Dget_space(d), dcpl;
    if (sp < 0 || H5Sget_simple_extent_ndims(sp) != 1) {
        if (sp >= 0)
            H5Sclose(sp);
        return set_err(x->err, x->errlen, NGS_ERR_FORMAT, "%s: %s/%s is not one-dimensional",
                       x->h5_path, plot, link);
    }
    H5Sget_simple_extent_dims(sp, &v->extent, NULL);
    H5Sclose(sp);
    v->chunk = 0;
    dcpl = H5Dget_create_plist(d);
    if (dcpl >= 0) {
        hsize_t c = 0;
        if (H5Pget_layout(dcpl) == H5D_CHUNKED && H5Pget_chunk(dcpl, 1, &c) == 1)
            v->chunk = c;
        H5Pclose(dcpl);
    }
    return NGS_OK;
}

/* Is the scale logarithmic (what ngspice marks "grid=3" for dec/oct sweeps)? Needs three
 * points: fewer cannot tell a log sweep from a linear one. */
static int log_scale(const ex_var *v)
{
    if (v->extent < 3)
        return 0;
    double f[6] = {0};
    hsize_t first = 0, count = 3;
    hid_t fs = H5Dget_space(v->dset), ms = H5Screate_simple(1, &count, NULL);
    int ok = fs >= 0 && ms >= 0 &&
             H5Sselect_hyperslab(fs, H5S_SELECT_SET, &first, NULL, &count, NULL) >= 0 &&
             H5Dread(v->dset, v->memtype, ms, fs, H5P_DEFAULT, f) >= 0;
    if (fs >= 0)
        H5Sclose(fs);
    if (ms >= 0)
        H5Sclose(ms);
    if (!ok)
        return 0;
    int s = v->is_complex ? 2 : 1;
    double a = f[0], b = f[s], c = f[2 * s];
    if (!(a > 0 && b > a && c > b))
        return 0;
    double r1 = b / a, r2 = c / b, d1 = b - a, d2 = c - b;
    return fabs(r1 - r2) <= 1e-9 * r1 && fabs(d1 - d2) > 1e-6 * d2;
}

/* Header lines from a raw_header attribute (modified in place: keys end at ':'). */
static int parse_header(char *text, ngs_raw_line **out, size_t *n)
{
    size_t cap = 1;
    for (const char *s = text; *s; s++)
        cap += *s == '\n';
    ngs_raw_line *l = calloc(cap, sizeof *l);
    if (!l)
        return NGS_ERR_NOMEM;
    size_t k = 0;
    for (char *s = text; *s && k < cap;) {
        char *e = strchr(s, '\n');
        if (e)
            *e = '\0';
        if (*s) {
            size_t kl = ngs_raw_header_key_length(s);
            l[k].key = s;
            l[k].value = NULL;
            if (kl) {
                s[kl] = '\0';
                l[k].value = s + kl + 1 + (s[kl + 1] == ' ');
            }
            k++;
        }
        if (!e)
            break;
        s = e + 1;
    }
    *out = l;
    *n = k;
    return NGS_OK;
}

static int has_word(const char *s, const char *word)
{
    size_t n = strlen(word);
    while (s && *s) {
        while (*s == ' ' || *s == '\t')
            s++;
        const char *t = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        if ((size_t)(s - t) == n && strncasecmp(t, word, n) == 0)
            return 1;
    }
    return 0;
}

/* Streams one plot group into the RAW writer. */
static int export_plot(ex_ctx *x, hid_t run, const char *link, ngs_export_encoding encoding)
{
    int rc = NGS_OK, nv = 0, wide;
    hid_t g, dapl = H5I_INVALID_HID;
    H5G_info_t gi;
    child_list dl = {0};
    ex_var *vars = NULL;
    ngs_raw_var *rv = NULL;
    ngs_raw_line *lines = NULL;
    size_t nlines = 0;
    double *cols = NULL, *rows = NULL;
    char *title = NULL, *date = NULL, *plotname = NULL, *flags = NULL, *raw_flags = NULL,
         *header = NULL, *style = NULL, *encoding_attr = NULL, *analysis = NULL,
         *status = NULL;

    H5E_BEGIN_TRY { g = H5Gopen2(run, link, H5P_DEFAULT); } H5E_END_TRY;
    if (g < 0)
        return set_err(x->err, x->errlen, NGS_ERR_HDF5, "%s: cannot open plot %s", x->h5_path,
                       link);
    title = ngs_h5_attr_dup_str(g, "title");
    date = ngs_h5_attr_dup_str(g, "date");
    plotname = ngs_h5_attr_dup_str(g, "plotname");
    flags = ngs_h5_attr_dup_str(g, "flags");
    raw_flags = ngs_h5_attr_dup_str(g, "raw_flags");
    header = ngs_h5_attr_dup_str(g, "raw_header");
    style = ngs_h5_attr_dup_str(g, "raw_style");
    encoding_attr = ngs_h5_attr_dup_str(g, "raw_encoding");
    analysis = ngs_h5_attr_dup_str(g, "analysis");
    status = ngs_h5_attr_dup_str(g, "status");
    if (status && strcmp(status, "complete") != 0)
        x->rep->truncated = 1;

    /* A wide plot (counted by its links, before they are opened to be listed) has each
     * dataset open only while it is read, and a small metadata cache, as when written:
     * memory does not follow its number of vectors. */
    if (H5Gget_info(g, &gi) < 0)
        gi.nlinks = 0;
    wide = gi.nlinks > NGS_H5_OPEN_VECTORS_MAX;
    ngs_h5_fit_cache(x->file, gi.nlinks < INT_MAX ? (int)gi.nlinks : INT_MAX);
    /* Whole chunks are read once each (see below): no chunk cache. HDF5's default (1 MiB
     * per dataset) would hold memory in proportion to the number of vectors. */
    dapl = H5Pcreate(H5P_DATASET_ACCESS);
    H5Pset_chunk_cache(dapl, 521, 0, 1.0);
    if ((rc = list_children(g, H5I_DATASET, NULL, 1, &dl)) != NGS_OK) {
        set_err(x->err, x->errlen, rc, "%s: cannot list the vectors of %s", x->h5_path, link);
        goto out;
    }
    nv = (int)dl.n;
    vars = calloc(dl.n ? dl.n : 1, sizeof *vars);
    rv = calloc(dl.n ? dl.n : 1, sizeof *rv);
    if (!vars || !rv) {
        rc = set_err(x->err, x->errlen, NGS_ERR_NOMEM, "out of memory");
        goto out;
    }
    for (int i = 0; i < nv; i++)
        vars[i].dset = vars[i].memtype = H5I_INVALID_HID;
    uint64_t npoints = UINT64_MAX;
    size_t row_doubles = 0;
    int any_complex = 0;
    for (int i = 0; i < nv; i++) {
        ex_var *v = &vars[i];
        if ((rc = open_var(x, g, link, dl.v[i].link, dapl, v)) != NGS_OK ||
            (rc = var_shape(x, link, dl.v[i].link, v)) != NGS_OK)
            goto out;
        v->name = ngs_h5_attr_dup_str(v->dset, "name");
        if (!v->name && (v->name = strdup(dl.v[i].link)))
            unescape_link(v->name);
        v->type = ngs_h5_attr_dup_str(v->dset, "type");
        v->params = ngs_h5_attr_dup_str(v->dset, "raw_params");
        if (!v->name) {
            rc = set_err(x->err, x->errlen, NGS_ERR_NOMEM, "out of memory");
            goto out;
        }
        if (v->extent < npoints)
            npoints = v->extent;
        rv[i].index = i;
        rv[i].name = v->name;
        rv[i].type = v->type && *v->type ? v->type : "notype";
        rv[i].params = v->params ? v->params : "";
        rv[i].is_complex = v->is_complex;
        rv[i].storage = v->is_complex ? NGS_RAW_C128 : NGS_RAW_F64;
        rv[i].column = (int)row_doubles;
        row_doubles += v->is_complex ? 2 : 1;
        any_complex |= v->is_complex;
        /* A run from `ngscale run` has no raw_params: ngspice marks a logarithmic ac/noise
         * frequency scale "grid=3" (dec and oct sweeps). */
        if (i == 0 && !style && analysis &&
            (strcmp(analysis, "ac") == 0 || strcmp(analysis, "noise") == 0) &&
            strcmp(rv[0].type, "frequency") == 0 && !*rv[0].params && log_scale(v))
            rv[0].params = "grid=3";
        if (wide)
            close_var(v);
    }
    if (nv == 0)
        npoints = 0;
    if (header && (rc = parse_header(header, &lines, &nlines)) != NGS_OK) {
        set_err(x->err, x->errlen, rc, "out of memory");
        goto out;
    }

    ngs_raw_plot p;
    memset(&p, 0, sizeof p);
    p.title = title ? title : "";
    p.date = date ? date : "";
    p.plotname = plotname ? plotname : "";
    p.flags = raw_flags ? raw_flags : flags ? flags : "";
    p.is_complex = any_complex || has_word(p.flags, "complex");
    p.style = style && strcmp(style, "write") == 0 ? NGS_RAW_STYLE_WRITE : NGS_RAW_STYLE_BATCH;
    p.nvars = nv;
    p.vars = rv;
    p.row_doubles = (int)row_doubles;
    p.npoints = npoints;
    p.lines = lines;
    p.nlines = nlines;
    int as_read_ascii = encoding_attr && strcmp(encoding_attr, "ascii") == 0;
    ngs_raw_encoding enc = encoding == NGS_EXPORT_ASCII ||
                                   (encoding == NGS_EXPORT_AS_READ && as_read_ascii)
                               ? NGS_RAW_ASCII
                               : NGS_RAW_BINARY;
    if (nv == 0) /* what ngspice writes for an analysis that made no point */
        enc = NGS_RAW_NODATA;
    if ((rc = ngs_raw_writer_begin_plot(x->w, &p, enc)) != NGS_OK) {
        set_err(x->err, x->errlen, rc, "%s", ngs_raw_writer_last_error(x->w));
        goto out;
    }

    /* Block of points: the vectors' chunk, so that each chunk is decoded exactly once. A
     * wide plot's (short) chunks go several to a block: each block opens every dataset. */
    size_t row_bytes = row_doubles * sizeof(double);
    hsize_t block = nv && vars[0].chunk ? vars[0].chunk : EXPORT_POINTS;
    int aligned = 1;
    for (int i = 0; i < nv; i++)
        aligned &= vars[i].chunk == block;
    if (row_bytes && block * row_bytes > EXPORT_BLOCK_BYTES) {
        block = EXPORT_BLOCK_BYTES / row_bytes;
        aligned = 0;
    } else if (wide && aligned && row_bytes) {
        block *= EXPORT_BLOCK_BYTES / (block * row_bytes);
    }
    if (block == 0)
        block = 1;
    if (block > npoints && npoints)
        block = npoints;
    /* A wide plot's datasets cannot keep a chunk cached between blocks: a chunk longer
     * than a block is decoded once per block it spans (older files: 1024-point chunks). */
    for (int i = 0; i < nv && !aligned && !wide; i++) {
        /* Reads that do not cover whole chunks keep one chunk per vector cached. The
         * dataset must be closed first: a second open would share the first one's cache. */
        hid_t dapl = H5Pcreate(H5P_DATASET_ACCESS), d;
        size_t cbytes = (size_t)vars[i].chunk * (vars[i].is_complex ? 16 : 8) + 1;
        H5Pset_chunk_cache(dapl, 521, cbytes, 1.0);
        H5Dclose(vars[i].dset);
        H5E_BEGIN_TRY { d = H5Dopen2(g, dl.v[i].link, dapl); } H5E_END_TRY;
        H5Pclose(dapl);
        vars[i].dset = d;
        if (d < 0) {
            rc = set_err(x->err, x->errlen, NGS_ERR_HDF5, "%s: cannot reopen %s/%s", x->h5_path,
                         link, dl.v[i].link);
            goto out;
        }
    }
    if (npoints && row_doubles) {
        cols = malloc((size_t)block * row_bytes);
        rows = malloc((size_t)block * row_bytes);
        if (!cols || !rows) {
            rc = set_err(x->err, x->errlen, NGS_ERR_NOMEM, "out of memory");
            goto out;
        }
    }
    for (uint64_t first = 0; first < npoints;) {
        hsize_t n = npoints - first < block ? npoints - first : block, off = first;
        for (int i = 0; i < nv; i++) {
            ex_var *v = &vars[i];
            if (wide && (rc = open_var(x, g, link, dl.v[i].link, dapl, v)) != NGS_OK)
                goto out;
            hid_t fs = H5Dget_space(v->dset), ms = H5Screate_simple(1, &n, NULL);
            herr_t hr = -1;
            H5E_BEGIN_TRY { /* a missing filter plugin is reported below, without a stack */
                if (fs >= 0 && ms >= 0 &&
                    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &n, NULL) >= 0)
                    hr = H5Dread(v->dset, v->memtype, ms, fs, H5P_DEFAULT,
                                 cols + (size_t)block * (size_t)rv[i].column);
            } H5E_END_TRY;
            if (fs >= 0)
                H5Sclose(fs);
            if (ms >= 0)
                H5Sclose(ms);
            if (wide)
                close_var(v);
            if (hr < 0) {
                rc = set_err(x->err, x->errlen, NGS_ERR_HDF5,
                             "%s: cannot read %s/%s at point %llu (corrupt, or a filter is "
                             "missing: set HDF5_PLUGIN_PATH)",
                             x->h5_path, link, dl.v[i].link, (unsigned long long)first);
                goto out;
            }
        }
        /* columns -> rows */
        for (int i = 0; i < nv; i++) {
            const double *src = cols + (size_t)block * (size_t)rv[i].column;
            double *dst = rows + rv[i].column;
            if (rv[i].is_complex)
                for (size_t k = 0; k < n; k++) {
                    dst[k * row_doubles] = src[2 * k];
                    dst[k * row_doubles + 1] = src[2 * k + 1];
                }
            else
                for (size_t k = 0; k < n; k++)
                    dst[k * row_doubles] = src[k];
        }
        if ((rc = ngs_raw_writer_write_rows(x->w, rows, (size_t)n)) != NGS_OK) {
            set_err(x->err, x->errlen, rc, "%s", ngs_raw_writer_last_error(x->w));
            goto out;
        }
        first += n;
    }
    if ((rc = ngs_raw_writer_end_plot(x->w)) != NGS_OK) {
        set_err(x->err, x->errlen, rc, "%s", ngs_raw_writer_last_error(x->w));
        goto out;
    }
    x->rep->plots++;
    x->rep->points += npoints;

out:
    free(cols);
    free(rows);
    free(lines);
    free(rv);
    free_vars(vars, nv);
    if (dapl >= 0)
        H5Pclose(dapl);
    free_children(&dl);
    free(title);
    free(date);
    free(plotname);
    free(flags);
    free(raw_flags);
    free(header);
    free(style);
    free(encoding_attr);
    free(analysis);
    free(status);
    H5Gclose(g);
    return rc;
}

/* 1 when path is a non-empty regular file that is not a RAW file (an HDF5 result, a
 * netlist): an export never replaces it. RAW files begin with "Title:" (LTspice's in
 * UTF-16). */
static int is_foreign_output(const char *path)
{
    static const char utf16[] = {'T', 0, 'i', 0, 't', 0, 'l', 0, 'e', 0, ':', 0};
    char head[12];
    struct stat st;
    size_t n;
    FILE *f;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
    if (!(f = fopen(path, "rb"))) return 0; /* the writer says why */
    n = fread(head, 1, sizeof head, f);
    fclose(f);
    return !(n >= 6 && strncasecmp(head, "Title:", 6) == 0) &&
           !(n == sizeof head && memcmp(head, utf16, sizeof head) == 0);
}

/* 1 when path exists and is neither a regular file nor a directory (stat follows
 * /dev/stdout to its pipe): the export writes into it. */
static int streamed_output(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode);
}

/* The run group to export: the one named, else the only one, else "run". */
static int pick_run(hid_t f, const char *group, const char *path, char **out, char *err,
                    size_t errlen)
{
    child_list runs;
    int rc = list_children(f, H5I_GROUP, NULL, 0, &runs);
    if (rc != NGS_OK)
        return set_err(err, errlen, rc, "%s: cannot list its groups", path);
    /* the groups that fit, then how many did not: a batch has thousands */
    char names[256] = "";
    size_t o = 0, listed = 0;
    while (listed < runs.n && o + strlen(runs.v[listed].link) + 2 + 64 < sizeof names) {
        o += (size_t)snprintf(names + o, sizeof names - o, "%s%s", listed ? ", " : "",
                              runs.v[listed].link);
        listed++;
    }
    if (listed < runs.n)
        snprintf(names + o, sizeof names - o, "%s... and %zu more: ngscale info lists them",
                 listed ? ", " : "", runs.n - listed);
    if (group) {
        char *link = escape_link(group);
        int found = 0;
        for (size_t i = 0; link && i < runs.n; i++)
            found |= strcmp(runs.v[i].link, link) == 0;
        if (!link)
            rc = set_err(err, errlen, NGS_ERR_NOMEM, "out of memory");
        else if (!found)
            rc = set_err(err, errlen, NGS_ERR_ARG, "%s: no run group '%s' (groups: %s)", path,
                         group, runs.n ? names : "none");
        if (rc == NGS_OK)
            *out = link;
        else
            free(link);
    } else if (runs.n == 1) {
        *out = strdup(runs.v[0].link);
    } else {
        int found = 0;
        for (size_t i = 0; i < runs.n; i++)
            found |= strcmp(runs.v[i].link, "run") == 0;
        if (found)
            *out = strdup("run");
        else
            rc = set_err(err, errlen, NGS_ERR_ARG, "%s: %s; name the run to export (groups: %s)",
                         path, runs.n ? "several runs" : "no run", runs.n ? names : "none");
    }
    if (rc == NGS_OK && !*out)
        rc = set_err(err, errlen, NGS_ERR_NOMEM, "out of memory");
    free_children(&runs);
    return rc;
}

int ngs_export_h5_to_raw_report(const char *h5_path, const char *group, const char *raw_path,
                                ngs_export_encoding encoding, ngs_convert_report *report,
                                char *err, size_t errlen)
{
    double t0 = ngs_now_s();
    ngs_convert_report local;
    ngs_convert_report *rep = report ? report : &local;
    ex_ctx x;
    hid_t f = H5I_INVALID_HID, run = H5I_INVALID_HID;
    char *run_link = NULL, *fmt = NULL, *status = NULL, *tmp = NULL, *dest = NULL;
    child_list plots = {0};
    int rc = NGS_OK, live, busy;
    char cut[400];

    memset(rep, 0, sizeof *rep);
    memset(&x, 0, sizeof x);
    if (err && errlen)
        err[0] = '\0';
    if (!h5_path || !raw_path)
        return set_err(err, errlen, NGS_ERR_ARG, "ngs_export_h5_to_raw: NULL path");
    if (same_file(h5_path, raw_path))
        return set_err(err, errlen, NGS_ERR_ARG, "%s: input and output are the same file",
                       raw_path);
    if (group && !*group)
        group = NULL;
    x.rep = rep;
    x.err = err;
    x.errlen = errlen;
    x.h5_path = h5_path;
    x.file = H5I_INVALID_HID;
    ngs_codec_register_zstd();
    ngs_bounded_register(); /* lossy runs: plain H5Dread then decodes them */
    f = ngs_h5_open_read(h5_path, &live, &busy, cut, sizeof cut);
    if (f < 0 && cut[0])
        return set_err(err, errlen, NGS_ERR_IO, "%s: %s", h5_path, cut);
    if (f < 0 && busy)
        return set_err(err, errlen, NGS_ERR_IO, "%s is being written without SWMR (a running ngscale "
                       "batch, or another program): export it when it has finished", h5_path);
    if (f < 0)
        return set_err(err, errlen, NGS_ERR_IO, "%s: cannot open as HDF5 (missing or not HDF5)",
                       h5_path);
    rep->bytes_in = file_size(h5_path);
    x.file = f;
    fmt = ngs_h5_attr_dup_str(f, "ngscale_format");
    if (!fmt) {
        rc = set_err(err, errlen, NGS_ERR_FORMAT, "%s: an HDF5 file, but not written by ngscale",
                     h5_path);
        goto out;
    }
    if ((rc = pick_run(f, group, h5_path, &run_link, err, errlen)) != NGS_OK)
        goto out;
    H5E_BEGIN_TRY { run = H5Gopen2(f, run_link, H5P_DEFAULT); } H5E_END_TRY;
    if (run < 0) {
        rc = set_err(err, errlen, NGS_ERR_HDF5, "%s: cannot open group %s", h5_path, run_link);
        goto out;
    }
    status = ngs_h5_attr_dup_str(run, "status");
    if (status && strcmp(status, "complete") != 0) {
        char *msg = ngs_h5_attr_dup_str(run, "message");
        rep->truncated = 1;
        snprintf(rep->message, sizeof rep->message, "run %s %s%s%s%s", run_link,
                 strcmp(status, "failed") ? "is " : "", status, msg && *msg ? ": " : "",
                 msg ? msg : "");
        free(msg);
    }
    if ((rc = list_children(run, H5I_GROUP, "plot_name", 1, &plots)) != NGS_OK) {
        set_err(err, errlen, rc, "%s: cannot list the plots of %s", h5_path, run_link);
        goto out;
    }
    if (plots.n == 0) {
        rc = set_err(err, errlen, NGS_ERR_FORMAT, "%s: run %s has no plot to export", h5_path,
                     run_link);
        goto out;
    }
    if (is_foreign_output(raw_path)) {
        rc = set_err(err, errlen, NGS_ERR_IO, "%s exists and is not a RAW file: not overwriting it (remove it "
                     "first)", raw_path);
        goto out;
    }
    /* A regular file is written beside raw_path and renamed over it at the end: a failed
     * export leaves a file there as it was, not a shorter RAW file that looks whole. Any
     * other output (a pipe, /dev/stdout, a FIFO, a device) is written in place: renaming
     * over it would put a regular file where /dev/null or the FIFO was. */
    if (!streamed_output(raw_path) &&
        (rc = ngs_h5_temp_beside(raw_path, &tmp, &dest, err, errlen)) != NGS_OK)
        goto out;
    if ((rc = ngs_raw_writer_open(&x.w, tmp ? tmp : raw_path, 0, err, errlen)) != NGS_OK)
        goto out;
    for (size_t i = 0; i < plots.n && rc == NGS_OK; i++)
        rc = export_plot(&x, run, plots.v[i].link, encoding);
    if (rc == NGS_OK && (rc = ngs_raw_writer_flush(x.w)) != NGS_OK) /* with its reason */
        set_err(err, errlen, rc, "%s", ngs_raw_writer_last_error(x.w));
    {
        int rc2 = ngs_raw_writer_close(x.w);
        if (rc == NGS_OK && rc2 != NGS_OK)
            rc = set_err(err, errlen, rc2, "%s: cannot finish the file", raw_path);
    }
    if (rc == NGS_OK && tmp && rename(tmp, dest) != 0)
        rc = set_err(err, errlen, NGS_ERR_IO, "%s: cannot replace it: %s", raw_path,
                     strerror(errno));
    if (rc == NGS_OK && rep->truncated) {
        size_t k = strlen(rep->message);
        if (!k)
            k = (size_t)snprintf(rep->message, sizeof rep->message,
                                 "a plot of run %s is not complete", run_link);
        if (k > sizeof rep->message - 64) /* keep the count: cut the run's message */
            k = sizeof rep->message - 64;
        snprintf(rep->message + k, sizeof rep->message - k,
                 "; the RAW file holds the %llu points written", (unsigned long long)rep->points);
    }
    rep->bytes_out = file_size(raw_path);

out:
    if (tmp && rc != NGS_OK) {
        unlink(tmp);
        /* The RAW writer's messages name the file it wrote, the temporary one (removed
         * now): name the output given instead. */
        size_t k = strlen(tmp);
        if (err && strncmp(err, tmp, k) == 0) {
            char *rest = strdup(err + k);
            if (rest)
                snprintf(err, errlen, "%s%s", raw_path, rest);
            free(rest);
        }
    }
    free(tmp);
    free(dest);
    free_children(&plots);
    if (run >= 0)
        H5Gclose(run);
    H5Fclose(f);
    free(run_link);
    free(fmt);
    free(status);
    rep->seconds = ngs_now_s() - t0;
    return rc;
}

int ngs_export_h5_to_raw(const char *h5_path, const char *group, const char *raw_path,
                         ngs_export_encoding encoding, char *err, size_t errlen)
{
    return ngs_export_h5_to_raw_report(h5_path, group, raw_path, encoding, NULL, err, errlen);
}
