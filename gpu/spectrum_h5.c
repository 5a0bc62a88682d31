/*
 * spectrum_h5.c - spectra of vectors in ngscale HDF5 files (see spectrum_h5.h and
 * storage/SCHEMA.md, "Spectra").
 *
 * Steps: open the file read-only -> pick the runs, each one's transient plot and the
 * vector in it -> read (time, vector) of every run -> one ngs_spectrum_batch() over all
 * of them -> reopen read-write -> per run, replace <run>/spectrum/<vector> -> rebuild
 * /spectrum_metrics from every run's metrics -> print the table.
 *
 * Why it looks like this:
 * - Everything is computed before anything is written, with the file open read-only,
 *   so a bad run or option, a stop request or a kill meanwhile leaves the file as it
 *   was (and readable: HDF5 marks a file open for writing until it is closed).
 * - With the default selection (every run holding the vector) a run that cannot be
 *   analysed (failed early, too short for the periods asked for, NaN values) is skipped
 *   and listed, so one broken job does not cost a whole batch its spectra. A run named
 *   by the caller must be analysable.
 * - With a fundamental and a number of periods only the record's tail is needed: the
 *   vector is read from 70 points before it (the cubic spline looks at 64 points of
 *   context; far-away data change it by < 2^-64), which halves the memory of a batch.
 * - The engine rejects a whole batch for one time scale that is not strictly
 *   increasing; ngspice can repeat a time point (breakpoints, interpolated output), so
 *   repeated or decreasing points are dropped here (and counted in the file).
 * - /spectrum_metrics is derived from the per-run tables each time, so it cannot
 *   disagree with them, whatever was re-run, in whatever order.
 * - The new groups keep their attributes compact (up to 64): HDF5 1.10.8's H5Ocopy
 *   crashes on groups whose variable-length string attributes went dense (see
 *   plugin/batch.c), and h5py / h5copy users copy groups.
 */
#include "gpu/spectrum_h5.h"

#include <ctype.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gpu/spectrum.h"
#include "storage/h5attr.h"
#include "storage/h5writer.h"
#include "storage/bounded.h"
#include "storage/codec.h"

#define TAIL_MARGIN 70            /* input points kept before the analysed record */
#define DETECT_AGREEMENT 1e-3     /* detected fundamentals must agree this well (relative) */
#define MAX_LISTED_RUNS 3         /* runs whose vector names go into "no such vector" */
#define TABLE_NAME NGS_H5_SPECTRUM_TABLE

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

/* Appends to a fixed buffer, truncating with "..." when full. */
static void append(char *buf, size_t n, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    if (len + 4 >= n) return;
    va_start(ap, fmt);
    int w = vsnprintf(buf + len, n - len, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= n - len) snprintf(buf + (n > 4 ? n - 4 : 0), n > 4 ? 4 : n, "...");
}

/* HDF5 link names cannot hold '/'; SCHEMA.md escapes '/' and '%' as %2F and %25. */
static char *escape_link(const char *name)
{
    size_t n = strlen(name), o = 0;
    char *out = malloc(3 * n + 2);
    if (!out) return NULL;
    if (n == 0 || strcmp(name, ".") == 0) out[o++] = '_';
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '/' || name[i] == '%')
            o += (size_t)sprintf(out + o, "%%%02X", (unsigned char)name[i]);
        else
            out[o++] = name[i];
    }
    out[o] = '\0';
    return out;
}

static char *unescape_link(const char *link)
{
    size_t n = strlen(link), o = 0;
    char *out = malloc(n + 1);
    if (!out) return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        if (link[i] == '%' && i + 2 < n && isxdigit((unsigned char)link[i + 1]) &&
            isxdigit((unsigned char)link[i + 2]) && sscanf(link + i + 1, "%2x", &v) == 1) {
            out[o++] = (char)v;
            i += 2;
        } else {
            out[o++] = link[i];
        }
    }
    out[o] = '\0';
    return out;
}

static int child_type(hid_t parent, const char *name)
{
    H5O_info_t oi;
    int rc = -1;
    H5E_BEGIN_TRY {
        if (H5Lexists(parent, name, H5P_DEFAULT) > 0 &&
            H5Oget_info_by_name(parent, name, &oi, H5P_DEFAULT) >= 0)
            rc = (int)oi.type;
    } H5E_END_TRY;
    return rc;
}

/* A growing list of owned strings. */
typedef struct {
    char **v;
    size_t n, cap;
    int nomem;
} strlist;

static void strlist_push(strlist *l, const char *s)
{
    if (l->nomem) return;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        char **v = realloc(l->v, cap * sizeof *v);
        if (!v) {
            l->nomem = 1;
            return;
        }
        l->v = v;
        l->cap = cap;
    }
    if (!(l->v[l->n] = strdup(s))) {
        l->nomem = 1;
        return;
    }
    l->n++;
}

static void strlist_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

static herr_t collect_link(hid_t g, const char *name, const H5L_info_t *li, void *op)
{
    (void)g;
    (void)li;
    strlist_push(op, name);
    return ((strlist *)op)->nomem ? -1 : 0;
}

/* Links of a group: in creation order when tracked, else (or with order_by_name) in
 * name order. */
static int list_links(hid_t g, int order_by_name, strlist *out)
{
    hsize_t idx = 0;
    herr_t rc;
    memset(out, 0, sizeof *out);
    if (!order_by_name) {
        rc = ngs_h5_iterate_links(g, collect_link, out);
    } else {
        H5E_BEGIN_TRY { rc = H5Literate(g, H5_INDEX_NAME, H5_ITER_INC, &idx, collect_link, out); } H5E_END_TRY;
    }
    if (out->nomem) return NGS_ERR_NOMEM;
    return rc < 0 ? NGS_ERR_HDF5 : NGS_OK;
}

/* ------------------------------------------------------------- option names -- */

int ngs_spectrum_parse_window(const char *name, int *window, double *kaiser_beta)
{
    static const struct {
        const char *name;
        ngs_window w;
    } names[] = {{"rect", NGS_WINDOW_RECTANGULAR},        {"rectangular", NGS_WINDOW_RECTANGULAR},
                 {"hann", NGS_WINDOW_HANN},               {"hanning", NGS_WINDOW_HANN},
                 {"hamming", NGS_WINDOW_HAMMING},         {"blackman", NGS_WINDOW_BLACKMAN},
                 {"blackman-harris", NGS_WINDOW_BLACKMAN_HARRIS},
                 {"flattop", NGS_WINDOW_FLATTOP},         {"flat-top", NGS_WINDOW_FLATTOP},
                 {"kaiser", NGS_WINDOW_KAISER}};
    double beta = 8.6;
    char base[32];
    const char *colon;
    size_t len;
    if (!name) return -1;
    colon = strchr(name, ':');
    len = colon ? (size_t)(colon - name) : strlen(name);
    if (len == 0 || len >= sizeof base) return -1;
    memcpy(base, name, len);
    base[len] = '\0';
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(base, names[i].name) != 0) continue;
        if (colon) {
            char *end;
            if (names[i].w != NGS_WINDOW_KAISER) return -1;
            beta = strtod(colon + 1, &end);
            if (end == colon + 1 || *end || !(beta >= 0 && beta <= 100)) return -1;
        }
        if (window) *window = (int)names[i].w;
        if (kaiser_beta) *kaiser_beta = beta;
        return 0;
    }
    return -1;
}

int ngs_spectrum_parse_resample(const char *name)
{
    if (!name) return -1;
    if (strcasecmp(name, "linear") == 0) return NGS_RESAMPLE_LINEAR;
    if (strcasecmp(name, "cubic") == 0 || strcasecmp(name, "spline") == 0) return NGS_RESAMPLE_CUBIC;
    return -1;
}

int ngs_spectrum_parse_backend(const char *name)
{
    if (!name) return -1;
    if (strcasecmp(name, "auto") == 0) return NGS_SPECTRUM_AUTO;
    if (strcasecmp(name, "cpu") == 0 || strcasecmp(name, "fftw") == 0) return NGS_SPECTRUM_CPU;
    if (strcasecmp(name, "gpu") == 0 || strcasecmp(name, "cuda") == 0) return NGS_SPECTRUM_GPU;
    return -1;
}

void ngs_spectrum_file_options_init(ngs_spectrum_file_options *o)
{
    if (o) memset(o, 0, sizeof *o);
}

/* ------------------------------------------------------------ vector names -- */

/* ngspice's spellings of one vector -> the RAW name: lower case, "x#branch" -> "i(x)",
 * a bare node "x" -> "v(x)". Names with parentheses or '@' are kept as they are. */
static void canonical_name(const char *q, char *out, size_t n)
{
    size_t len, o = 0;
    char low[512];
    while (isspace((unsigned char)*q)) q++;
    len = strlen(q);
    while (len && isspace((unsigned char)q[len - 1])) len--;
    if (len >= sizeof low) len = sizeof low - 1;
    for (size_t i = 0; i < len; i++) low[o++] = (char)tolower((unsigned char)q[i]);
    low[o] = '\0';
    if (o > 7 && strcmp(low + o - 7, "#branch") == 0)
        snprintf(out, n, "i(%.*s)", (int)(o - 7), low);
    else if (!strchr(low, '(') && low[0] != '@' && low[0])
        snprintf(out, n, "v(%s)", low);
    else
        snprintf(out, n, "%s", low);
}

typedef struct {
    char *link;         /* dataset link name in the plot */
    char *name;         /* RAW name (attribute "name", else the unescaped link) */
    char *ngspice_name; /* may be NULL */
    int is_scale;
} vecname;

typedef struct {
    vecname *v;
    size_t n;
} vecnames;

static void vecname_free(vecname *v);

static void vecnames_free(vecnames *l)
{
    for (size_t i = 0; i < l->n; i++) vecname_free(&l->v[i]);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Describes dataset `link` of a plot; 0 when it is not a dataset. */
static int describe_vector(hid_t plot, const char *link, const char *scale, vecname *v)
{
    hid_t d;
    memset(v, 0, sizeof *v);
    if (child_type(plot, link) != H5O_TYPE_DATASET) return 0;
    H5E_BEGIN_TRY { d = H5Dopen2(plot, link, H5P_DEFAULT); } H5E_END_TRY;
    if (d < 0) return 0;
    v->link = strdup(link);
    v->name = ngs_h5_attr_dup_str(d, "name");
    if (!v->name) v->name = unescape_link(link);
    v->ngspice_name = ngs_h5_attr_dup_str(d, "ngspice_name");
    v->is_scale = ngs_h5_attr_read_i64(d, "is_scale", 0) != 0 || (scale && strcmp(scale, link) == 0);
    H5Dclose(d);
    return 1;
}

static void vecname_free(vecname *v)
{
    free(v->link);
    free(v->name);
    free(v->ngspice_name);
    memset(v, 0, sizeof *v);
}

static int read_vecnames(hid_t plot, const char *scale, vecnames *out)
{
    strlist links;
    int rc;
    memset(out, 0, sizeof *out);
    if ((rc = list_links(plot, 0, &links)) != NGS_OK) return rc;
    out->v = calloc(links.n ? links.n : 1, sizeof *out->v);
    if (!out->v) {
        strlist_free(&links);
        return NGS_ERR_NOMEM;
    }
    for (size_t i = 0; i < links.n; i++) {
        vecname *v = &out->v[out->n];
        if (!describe_vector(plot, links.v[i], scale, v)) continue;
        out->n++;
        if (!v->link || !v->name) {
            strlist_free(&links);
            vecnames_free(out);
            return NGS_ERR_NOMEM;
        }
    }
    strlist_free(&links);
    return NGS_OK;
}

/* Index of the vector the user means, -1 when none. Exact (case-insensitive) RAW or
 * ngspice names win over the canonical spelling ("out" is the node's v(out) unless a
 * vector is literally called "out"). */
static long find_vector(const vecnames *l, const char *query)
{
    char canon[600];
    for (size_t i = 0; i < l->n; i++)
        if (strcasecmp(l->v[i].name, query) == 0 ||
            (l->v[i].ngspice_name && strcasecmp(l->v[i].ngspice_name, query) == 0) ||
            strcasecmp(l->v[i].link, query) == 0)
            return (long)i;
    canonical_name(query, canon, sizeof canon);
    for (size_t i = 0; i < l->n; i++) {
        char c[600];
        canonical_name(l->v[i].name, c, sizeof c);
        if (strcmp(c, canon) == 0) return (long)i;
        if (l->v[i].ngspice_name) {
            canonical_name(l->v[i].ngspice_name, c, sizeof c);
            if (strcmp(c, canon) == 0) return (long)i;
        }
    }
    return -1;
}

/* The vector a user means, by name lookup, without listing the plot (a batch's plots can
 * hold thousands of vectors, and every job is searched): the query as a dataset name,
 * then its canonical RAW spelling. 0 when neither exists (then find_vector() scans). */
static int lookup_vector(hid_t plot, const char *query, const char *scale, vecname *out)
{
    char canon[600], *esc;
    int found = 0;
    if (strchr(query, '/') == NULL && describe_vector(plot, query, scale, out)) return 1;
    canonical_name(query, canon, sizeof canon);
    if ((esc = escape_link(canon)) != NULL) {
        found = describe_vector(plot, esc, scale, out);
        free(esc);
    }
    return found;
}

/* --------------------------------------------------------------- the runs -- */

typedef struct {
    char *run;      /* run group link */
    char *plot;     /* plot group link */
    char *vec_link; /* dataset link */
    char *vec_name; /* RAW name */
    char *scale;    /* scale dataset link */
    char *unit;     /* of the vector ("V", "A", "" when none) */
    char *codec;    /* of the run ("zstd", "deflate", "none") */
    int64_t job;    /* NNNNNNNN of job_NNNNNNNN, else -1 */
    double *t, *x;
    size_t n;       /* points held in t, x */
    size_t dropped; /* time points removed (not strictly increasing) */
    int skip;       /* not analysed */
    char why[300];  /* why it is skipped */
} item;

typedef struct {
    const char *path;
    hid_t file;
    const ngs_spectrum_file_options *o;
    ngs_window window;
    double kaiser_beta;
    int min_periods;  /* 2L: fewer periods and the window's tones overlap */
    ngs_resample resample;
    ngs_spectrum_backend backend;
    int harmonics;
    item *items;
    size_t nitems, cap;
    char *err;
    size_t errlen;
    /* what the selection saw, for its error messages */
    char names[2048]; /* ", v(in), v(out), " : vectors of the first runs' plots */
    int listed;       /* runs whose names are in names */
    int tran_seen;    /* some run has the plot */
    int scale_hit;    /* the vector asked for is a plot's scale */
    int missing;      /* select_run: the named run lacks the vector */
} job;

static void item_free(item *it)
{
    free(it->run);
    free(it->plot);
    free(it->vec_link);
    free(it->vec_name);
    free(it->scale);
    free(it->unit);
    free(it->codec);
    free(it->t);
    free(it->x);
}

static int64_t job_number(const char *run)
{
    const char *p = run + 4;
    if (strncmp(run, "job_", 4) != 0 || !*p) return -1;
    for (const char *q = p; *q; q++)
        if (!isdigit((unsigned char)*q)) return -1;
    return strtoll(p, NULL, 10);
}

static int is_tran_plot(hid_t plot, const char *link)
{
    char *an = ngs_h5_attr_dup_str(plot, "analysis");
    int yes = an ? strcmp(an, "tran") == 0 : strncmp(link, "tran", 4) == 0;
    free(an);
    return yes;
}

/* The plot to analyse in a run: opts->plot, or the transient plot of lowest index.
 * NULL when there is none; *plots gets the run's plot names (for messages). */
static char *pick_plot(hid_t run, const char *want, char *plots, size_t plots_len)
{
    strlist links;
    char *best = NULL;
    long long best_index = 0;
    if (plots && plots_len) plots[0] = '\0';
    if (list_links(run, 0, &links) != NGS_OK) return NULL;
    for (size_t i = 0; i < links.n; i++) {
        hid_t g;
        if (child_type(run, links.v[i]) != H5O_TYPE_GROUP || strcmp(links.v[i], "spectrum") == 0)
            continue;
        if (plots) append(plots, plots_len, "%s%s", plots[0] ? ", " : "", links.v[i]);
        if (want) {
            if (!best && (strcmp(links.v[i], want) == 0 || strcasecmp(links.v[i], want) == 0))
                best = strdup(links.v[i]);
            continue;
        }
        H5E_BEGIN_TRY { g = H5Gopen2(run, links.v[i], H5P_DEFAULT); } H5E_END_TRY;
        if (g < 0) continue;
        if (is_tran_plot(g, links.v[i])) {
            long long idx = ngs_h5_attr_read_i64(g, "index", (long long)i);
            if (!best || idx < best_index) {
                free(best);
                best = strdup(links.v[i]);
                best_index = idx;
            }
        }
        H5Gclose(g);
    }
    strlist_free(&links);
    return best;
}

static int add_item(job *j, item *it)
{
    if (j->nitems == j->cap) {
        size_t cap = j->cap ? 2 * j->cap : 16;
        item *v = realloc(j->items, cap * sizeof *v);
        if (!v) return NGS_ERR_NOMEM;
        j->items = v;
        j->cap = cap;
    }
    j->items[j->nitems++] = *it;
    return NGS_OK;
}

/* Finds the plot and the vector of one run. explicit: the caller named the run, so a
 * missing plot or vector is an error (j->missing tells the caller to word it with the
 * names collected). Otherwise a run without the plot is not a candidate, and a run whose
 * plot lacks the vector is added as skipped, to be listed in the table. */
static int select_run(job *j, const char *run_link, int explicit)
{
    hid_t run = H5I_INVALID_HID, plot = H5I_INVALID_HID;
    char plots[512], *plot_link = NULL, *scale = NULL;
    vecname v = {0};
    int rc = NGS_OK, found;
    item it;
    memset(&it, 0, sizeof it);
    H5E_BEGIN_TRY { run = H5Gopen2(j->file, run_link, H5P_DEFAULT); } H5E_END_TRY;
    if (run < 0) return set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot open group %s", j->path, run_link);
    plot_link = pick_plot(run, j->o->plot, plots, sizeof plots);
    if (!plot_link) {
        if (explicit)
            rc = set_err(j->err, j->errlen, NGS_ERR_ARG, "%s: run %s has no %s%s (plots: %s)", j->path, run_link,
                         j->o->plot ? "plot " : "transient plot (tran*)", j->o->plot ? j->o->plot : "",
                         plots[0] ? plots : "none");
        goto out;
    }
    j->tran_seen = 1;
    H5E_BEGIN_TRY { plot = H5Gopen2(run, plot_link, H5P_DEFAULT); } H5E_END_TRY;
    if (plot < 0) {
        rc = set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot open %s/%s", j->path, run_link, plot_link);
        goto out;
    }
    if (!explicit) { /* a plot cut short (failed, timed out, killed) only when named */
        char *status = ngs_h5_attr_dup_str(plot, "status");
        it.skip = status && strcmp(status, "complete") != 0;
        if (it.skip)
            snprintf(it.why, sizeof it.why, "its plot %s is %s (name the run with --run to analyse what it has)",
                     plot_link, status);
        free(status);
    }
    scale = ngs_h5_attr_dup_str(plot, "scale");
    found = lookup_vector(plot, j->o->vector, scale, &v);
    if (!found || !scale || v.is_scale) { /* list the plot: to find the vector, the scale, or the names */
        vecnames vn;
        long k;
        if ((rc = read_vecnames(plot, scale, &vn)) != NGS_OK) {
            set_err(j->err, j->errlen, rc, "%s: cannot list the vectors of %s/%s", j->path, run_link, plot_link);
            goto out;
        }
        for (size_t i = 0; i < vn.n && !scale; i++) /* no attribute: the dataset marked, else "time" */
            if (vn.v[i].is_scale) scale = strdup(vn.v[i].link);
        for (size_t i = 0; i < vn.n && !scale; i++)
            if (strcmp(vn.v[i].link, "time") == 0) scale = strdup("time");
        if (!found && (k = find_vector(&vn, j->o->vector)) >= 0) {
            v = vn.v[k]; /* moved out of the list */
            vn.v[k] = vn.v[--vn.n];
            found = 1;
        }
        if (found && scale && strcmp(v.link, scale) == 0) v.is_scale = 1;
        if (!found || v.is_scale) {
            if (j->listed < MAX_LISTED_RUNS) { /* a batch's jobs hold the same vectors: a few runs say it */
                for (size_t i = 0; i < vn.n; i++) {
                    char needle[600];
                    if (vn.v[i].is_scale || (scale && strcmp(vn.v[i].link, scale) == 0)) continue;
                    snprintf(needle, sizeof needle, ", %s,", vn.v[i].name);
                    if (strstr(j->names, needle) == NULL) append(j->names, sizeof j->names, "%s, ", vn.v[i].name);
                }
                j->listed++;
            }
            j->scale_hit |= found;
            found = 0;
        }
        vecnames_free(&vn);
    }
    if (!found) {
        if (explicit) {
            j->missing = 1;
            rc = NGS_ERR_ARG;
        } else {
            it.skip = 1;
            snprintf(it.why, sizeof it.why, "no %s in %s", j->o->vector, plot_link);
            if (!(it.run = strdup(run_link)) || add_item(j, &it) != NGS_OK) {
                item_free(&it);
                rc = set_err(j->err, j->errlen, NGS_ERR_NOMEM, "out of memory");
            }
        }
        goto out;
    }
    if (!scale) {
        rc = set_err(j->err, j->errlen, NGS_ERR_FORMAT, "%s: %s/%s has no time scale", j->path, run_link, plot_link);
        goto out;
    }
    { /* bins in Hz need a scale in seconds: --plot dc1 made "20 Hz" of a sweep in volts */
        char *type = NULL;
        hid_t d;
        H5E_BEGIN_TRY { d = H5Dopen2(plot, scale, H5P_DEFAULT); } H5E_END_TRY;
        if (d >= 0) {
            type = ngs_h5_attr_dup_str(d, "type");
            H5Dclose(d);
        }
        if (type && strcmp(type, "time") != 0 && !it.skip) {
            snprintf(it.why, sizeof it.why, "the scale of %s is %s (%s), not time: a spectrum needs a transient "
                     "plot", plot_link, scale, type);
            if (explicit)
                rc = set_err(j->err, j->errlen, NGS_ERR_ARG, "%s: run %s: %s", j->path, run_link, it.why);
            it.skip = 1;
        }
        free(type);
        if (rc != NGS_OK) goto out;
    }
    it.run = strdup(run_link);
    it.plot = plot_link;
    plot_link = NULL;
    it.vec_link = v.link;
    it.vec_name = v.name;
    v.link = v.name = NULL;
    it.scale = scale;
    scale = NULL;
    it.codec = ngs_h5_attr_dup_str(run, "codec");
    it.job = job_number(run_link);
    {
        hid_t d;
        H5E_BEGIN_TRY { d = it.vec_link ? H5Dopen2(plot, it.vec_link, H5P_DEFAULT) : -1; } H5E_END_TRY;
        it.unit = d >= 0 ? ngs_h5_attr_dup_str(d, "unit") : NULL;
        if (d >= 0) H5Dclose(d);
        if (!it.unit) it.unit = strdup("");
    }
    if (!it.run || !it.vec_link || !it.vec_name || !it.unit || (rc = add_item(j, &it)) != NGS_OK) {
        item_free(&it);
        rc = set_err(j->err, j->errlen, NGS_ERR_NOMEM, "out of memory");
    }
out:
    vecname_free(&v);
    free(plot_link);
    free(scale);
    if (plot >= 0) H5Gclose(plot);
    H5Gclose(run);
    return rc;
}

/* ----------------------------------------------------------------- reading -- */

/* Opens a real 1-D dataset; *n gets its length. */
static int open_real(job *j, hid_t plot, const item *it, const char *link, hid_t *d, hsize_t *n)
{
    hid_t s, t;
    int rank, ok;
    H5E_BEGIN_TRY { *d = H5Dopen2(plot, link, H5P_DEFAULT); } H5E_END_TRY;
    if (*d < 0)
        return set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot open %s/%s/%s", j->path, it->run,
                       it->plot, link);
    s = H5Dget_space(*d);
    t = H5Dget_type(*d);
    rank = H5Sget_simple_extent_ndims(s);
    *n = 0;
    if (rank == 1) H5Sget_simple_extent_dims(s, n, NULL);
    ok = rank == 1 && H5Tget_class(t) == H5T_FLOAT;
    H5Tclose(t);
    H5Sclose(s);
    if (!ok) {
        H5Dclose(*d);
        *d = H5I_INVALID_HID;
        return set_err(j->err, j->errlen, NGS_ERR_FORMAT,
                       "%s: %s/%s/%s is not a real 1-D vector (complex data have no transient spectrum)",
                       j->path, it->run, it->plot, link);
    }
    return NGS_OK;
}

static int read_range(hid_t d, hsize_t start, hsize_t count, double *buf)
{
    hid_t fs = H5Dget_space(d), ms = H5Screate_simple(1, &count, NULL);
    herr_t rc = -1;
    if (fs >= 0 && ms >= 0 && H5Sselect_hyperslab(fs, H5S_SELECT_SET, &start, NULL, &count, NULL) >= 0)
        H5E_BEGIN_TRY { rc = H5Dread(d, H5T_NATIVE_DOUBLE, ms, fs, H5P_DEFAULT, buf); } H5E_END_TRY;
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    return rc < 0 ? -1 : 0;
}

/* First index of the points to keep so that [t_end - T, t_end] is covered with
 * TAIL_MARGIN points of context (t may repeat a point here and there). */
static size_t tail_start(const double *t, size_t n, double T)
{
    double from = t[n - 1] - T;
    size_t i = n - 1;
    while (i > 0 && !(t[i] <= from)) i--;
    return i > TAIL_MARGIN ? i - TAIL_MARGIN : 0;
}

static void keep_tail(item *it, size_t lo)
{
    if (lo == 0) return;
    it->n -= lo;
    memmove(it->t, it->t + lo, it->n * sizeof *it->t);
    memmove(it->x, it->x + lo, it->n * sizeof *it->x);
    /* shrinking realloc: failure keeps the larger block, which is fine */
    double *t = realloc(it->t, it->n * sizeof *t), *x = realloc(it->x, it->n * sizeof *x);
    if (t) it->t = t;
    if (x) it->x = x;
}

/* Can the engine analyse this record with fundamental f and periods P (f may be 0)?
 * The engine's own rule (gpu/spectrum.c), checked here to skip one run instead of
 * failing the batch. */
static int record_fits(const job *j, const item *it, double f, unsigned P, char *why, size_t n)
{
    if (it->n < 2) {
        snprintf(why, n, "%zu usable point%s", it->n, it->n == 1 ? "" : "s");
        return 0;
    }
    if (f > 0) {
        double span = it->t[it->n - 1] - it->t[0], fit = floor(span * f * (1 + 1e-12));
        double need = P ? (double)P : (double)j->min_periods;
        if (fit < need) {
            snprintf(why, n, "%g s of data, %.0f period%s of %g Hz need %g s", span, need,
                     need == 1 ? "" : "s", f, need / f);
            return 0;
        }
    }
    return 1;
}

/* Reads (time, vector) of one item; sets it->skip with a reason for data the engine
 * cannot use. Returns an error only for I/O or format problems. */
static int read_item(job *j, item *it)
{
    hid_t run = H5I_INVALID_HID, plot = H5I_INVALID_HID, dt = H5I_INVALID_HID, dx = H5I_INVALID_HID;
    hsize_t nt = 0, nx = 0, lo = 0, n;
    int rc = NGS_OK;
    const double f = j->o->fundamental;
    const unsigned P = j->o->periods;
    H5E_BEGIN_TRY {
        run = H5Gopen2(j->file, it->run, H5P_DEFAULT);
        if (run >= 0) plot = H5Gopen2(run, it->plot, H5P_DEFAULT);
    } H5E_END_TRY;
    if (plot < 0) {
        rc = set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot open %s/%s", j->path, it->run, it->plot);
        goto out;
    }
    if ((rc = open_real(j, plot, it, it->scale, &dt, &nt)) != NGS_OK ||
        (rc = open_real(j, plot, it, it->vec_link, &dx, &nx)) != NGS_OK)
        goto out;
    n = nt < nx ? nt : nx; /* a killed writer may leave one column a chunk ahead */
    it->t = malloc((n ? n : 1) * sizeof *it->t);
    if (!it->t) {
        rc = set_err(j->err, j->errlen, NGS_ERR_NOMEM, "out of memory reading %s/%s", it->run, it->plot);
        goto out;
    }
    if (n && read_range(dt, 0, n, it->t) < 0) {
        rc = set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot read %s/%s/%s", j->path, it->run,
                     it->plot, it->scale);
        goto out;
    }
    if (f > 0 && P > 0 && n >= 2) { /* only the tail is analysed: read the vector from there */
        lo = tail_start(it->t, (size_t)n, (double)P / f);
        if (lo) {
            double *shrunk;
            memmove(it->t, it->t + lo, (size_t)(n - lo) * sizeof *it->t);
            if ((shrunk = realloc(it->t, (size_t)(n - lo) * sizeof *it->t))) it->t = shrunk;
        }
    }
    it->n = (size_t)(n - lo);
    it->x = malloc((it->n ? it->n : 1) * sizeof *it->x);
    if (!it->x) {
        rc = set_err(j->err, j->errlen, NGS_ERR_NOMEM, "out of memory reading %s/%s", it->run, it->plot);
        goto out;
    }
    if (it->n && read_range(dx, lo, it->n, it->x) < 0) {
        rc = set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot read %s/%s/%s (stored with a filter "
                     "this HDF5 lacks? see HDF5_PLUGIN_PATH)", j->path, it->run, it->plot, it->vec_link);
        goto out;
    }
    /* drop points whose time does not increase (and stop at a non-finite time) */
    {
        size_t o = 0, bad = 0;
        for (size_t i = 0; i < it->n; i++) {
            if (!isfinite(it->t[i])) {
                snprintf(it->why, sizeof it->why, "time is not finite at point %zu", (size_t)lo + i);
                it->skip = 1;
                break;
            }
            if (!isfinite(it->x[i])) {
                snprintf(it->why, sizeof it->why, "%s is not finite at t = %g s", it->vec_name, it->t[i]);
                it->skip = 1;
                break;
            }
            if (o > 0 && !(it->t[i] > it->t[o - 1])) {
                bad++;
                continue;
            }
            it->t[o] = it->t[i];
            it->x[o] = it->x[i];
            o++;
        }
        it->n = o;
        it->dropped = bad;
    }
    if (!it->skip && !record_fits(j, it, f, P, it->why, sizeof it->why)) it->skip = 1;
out:
    if (dx >= 0) H5Dclose(dx);
    if (dt >= 0) H5Dclose(dt);
    if (plot >= 0) H5Gclose(plot);
    if (run >= 0) H5Gclose(run);
    return rc;
}

/* ----------------------------------------------------------------- writing -- */

/* Metrics rows. Names are fixed-length strings sized to the longest one: variable-length
 * strings in a dataset live in the file's global heap, which HDF5 does not free when the
 * dataset is deleted, so a table rewritten on every call would grow the file each time. */
typedef struct {
    int64_t job;
    double fundamental_hz, amplitude, dc, thd_db, thd_percent, snr_db, sinad_db, sfdr_db, spur_hz,
        enob_bits, noise_floor_db;
    int64_t coherent, periods;
} metrics_num;

typedef struct {
    metrics_num num;
    char *run, *vector, *plot; /* owned */
} metrics_row;

/* The numbers of a row (also the memory type that reads them back by name). */
static void insert_numbers(hid_t t, size_t base)
{
    H5Tinsert(t, "job", base + HOFFSET(metrics_num, job), H5T_NATIVE_INT64);
#define F(name) H5Tinsert(t, #name, base + HOFFSET(metrics_num, name), H5T_NATIVE_DOUBLE)
    F(fundamental_hz);
    F(amplitude);
    F(dc);
    F(thd_db);
    F(thd_percent);
    F(snr_db);
    F(sinad_db);
    F(sfdr_db);
    F(spur_hz);
    F(enob_bits);
    F(noise_floor_db);
#undef F
    H5Tinsert(t, "coherent", base + HOFFSET(metrics_num, coherent), H5T_NATIVE_INT64);
    H5Tinsert(t, "periods", base + HOFFSET(metrics_num, periods), H5T_NATIVE_INT64);
}

static hid_t numbers_type(void)
{
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(metrics_num));
    insert_numbers(t, 0);
    return t;
}

static hid_t fixed_str(size_t n)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, n);
    H5Tset_strpad(t, H5T_STR_NULLTERM);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Writes rows as dataset `name` of g (replacing it). Layout of one packed row:
 * run | vector | plot (fixed strings) | metrics_num; member order puts the names first. */
static int write_rows(hid_t g, const char *name, const metrics_row *r, size_t n)
{
    size_t lr = 1, lv = 1, lp = 1, size, base;
    hid_t t, sr, sv, sp, space, dcpl, d = H5I_INVALID_HID;
    hsize_t dims = n, chunk = n < 1024 ? n : 1024;
    unsigned char *buf;
    int rc = -1;
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(r[i].run) + 1, b = strlen(r[i].vector) + 1, c = strlen(r[i].plot) + 1;
        lr = a > lr ? a : lr;
        lv = b > lv ? b : lv;
        lp = c > lp ? c : lp;
    }
    base = (lr + lv + lp + 7) / 8 * 8; /* metrics_num stays 8-aligned */
    size = base + sizeof(metrics_num);
    if (!(buf = calloc(n ? n : 1, size))) return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned char *row = buf + i * size;
        memcpy(row, r[i].run, strlen(r[i].run));
        memcpy(row + lr, r[i].vector, strlen(r[i].vector));
        memcpy(row + lr + lv, r[i].plot, strlen(r[i].plot));
        memcpy(row + base, &r[i].num, sizeof r[i].num);
    }
    t = H5Tcreate(H5T_COMPOUND, size);
    sr = fixed_str(lr);
    sv = fixed_str(lv);
    sp = fixed_str(lp);
    H5Tinsert(t, "run", 0, sr);
    H5Tinsert(t, "vector", lr, sv);
    H5Tinsert(t, "plot", lr + lv, sp);
    insert_numbers(t, base);
    space = H5Screate_simple(1, &dims, NULL);
    dcpl = H5Pcreate(H5P_DATASET_CREATE);
    if (n > 16) { /* the file-level table of a batch: compressed */
        H5Pset_chunk(dcpl, 1, &chunk);
        H5Pset_shuffle(dcpl);
        H5Pset_deflate(dcpl, 4);
    }
    H5E_BEGIN_TRY {
        if (H5Lexists(g, name, H5P_DEFAULT) > 0) H5Ldelete(g, name, H5P_DEFAULT);
        d = H5Dcreate2(g, name, t, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (d >= 0 && H5Dwrite(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) >= 0 &&
            ngs_h5_attr_write_str(d, "units", "fundamental_hz Hz; amplitude, dc in the vector's unit; thd_db, snr_db, "
                                 "sinad_db dB; thd_percent %; sfdr_db dBc; spur_hz Hz; enob_bits bit; "
                                 "noise_floor_db dB re 1 unit^2 per bin") == 0)
            rc = 0;
    } H5E_END_TRY;
    if (d >= 0) H5Dclose(d);
    H5Pclose(dcpl);
    H5Sclose(space);
    H5Tclose(sr);
    H5Tclose(sv);
    H5Tclose(sp);
    H5Tclose(t);
    free(buf);
    return rc;
}

static hid_t new_group(hid_t parent, const char *name)
{
    hid_t gcpl = H5Pcreate(H5P_GROUP_CREATE), g;
    H5Pset_link_creation_order(gcpl, H5P_CRT_ORDER_TRACKED | H5P_CRT_ORDER_INDEXED);
    H5Pset_attr_phase_change(gcpl, 64, 48); /* compact attributes: see the top of this file */
    g = H5Gcreate2(parent, name, H5P_DEFAULT, gcpl, H5P_DEFAULT);
    H5Pclose(gcpl);
    return g;
}

static int write_array(hid_t g, const char *name, const double *v, size_t n, const char *unit, int codec)
{
    hsize_t dims = n, chunk = n < 65536 ? n : 65536;
    hid_t space = H5Screate_simple(1, &dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE), d = -1;
    int rc = -1;
    if (space >= 0 && dcpl >= 0 && n > 0) {
        if (codec != NGS_CODEC_NONE) {
            H5Pset_chunk(dcpl, 1, &chunk);
            if (ngs_codec_set_filters(dcpl, (ngs_codec)codec, 0, sizeof(double)) != NGS_OK) {
                H5Pclose(dcpl);
                dcpl = H5Pcreate(H5P_DATASET_CREATE);
            }
        }
        d = H5Dcreate2(g, name, H5T_IEEE_F64LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
        if (d >= 0 && H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v) >= 0 &&
            ngs_h5_attr_write_str(d, "unit", unit) == 0)
            rc = 0;
    }
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return rc;
}

static void iso_time(char *buf, size_t n)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int64_t periods_of(const ngs_spectrum_metrics *m, size_t N)
{
    return m->coherent ? (int64_t)llround(m->fundamental * (double)N / m->fs) : 0;
}

/* Replaces <run>/spectrum/<vector> with the results of item i. */
static int write_item(job *j, const item *it, const ngs_spectrum_metrics *m, const double *amp,
                      const double *psd, size_t N, size_t nb, ngs_spectrum_backend used,
                      const char *fund_source, double *scratch)
{
    hid_t run = H5I_INVALID_HID, spec = H5I_INVALID_HID, g = H5I_INVALID_HID;
    char psd_unit[64], created[32];
    int codec = it->codec ? ngs_codec_from_name(it->codec) : -1, rc = NGS_OK, ok = 1;
    const char *u = it->unit[0] ? it->unit : "1";
    /* the run's lossless codec; spectra are never stored lossy (bounded, bitround) */
    if (codec != NGS_CODEC_ZSTD && codec != NGS_CODEC_NONE) codec = NGS_CODEC_DEFLATE;
    snprintf(psd_unit, sizeof psd_unit, "%s^2/Hz", u);
    H5E_BEGIN_TRY {
        run = H5Gopen2(j->file, it->run, H5P_DEFAULT);
        if (run >= 0) {
            int ty = child_type(run, "spectrum");
            if (ty == H5O_TYPE_GROUP)
                spec = H5Gopen2(run, "spectrum", H5P_DEFAULT);
            else if (ty < 0 && (spec = new_group(run, "spectrum")) >= 0)
                ngs_h5_attr_write_str(spec, "ngscale_kind", "spectra");
        }
        if (spec >= 0 && H5Lexists(spec, it->vec_link, H5P_DEFAULT) > 0)
            H5Ldelete(spec, it->vec_link, H5P_DEFAULT);
        if (spec >= 0) g = new_group(spec, it->vec_link);
    } H5E_END_TRY;
    if (g < 0) {
        rc = set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot create %s/spectrum/%s%s", j->path,
                     it->run, it->vec_link,
                     run >= 0 && spec < 0 ? " ('spectrum' exists and is not a group)" : "");
        goto out;
    }
    iso_time(created, sizeof created);
    ok &= ngs_h5_attr_write_str(g, "ngscale_kind", "spectrum") == 0;
    ok &= ngs_h5_attr_write_str(g, "vector", it->vec_name) == 0;
    ok &= ngs_h5_attr_write_str(g, "plot", it->plot) == 0;
    ok &= ngs_h5_attr_write_str(g, "scale", it->scale) == 0;
    ok &= ngs_h5_attr_write_str(g, "unit", it->unit) == 0;
    ok &= ngs_h5_attr_write_str(g, "amplitude_unit", it->unit) == 0;
    ok &= ngs_h5_attr_write_str(g, "psd_unit", psd_unit) == 0;
    ok &= ngs_h5_attr_write_str(g, "frequency_unit", "Hz") == 0;
    ok &= ngs_h5_attr_write_str(g, "window", ngs_spectrum_window_name(j->window)) == 0;
    if (j->window == NGS_WINDOW_KAISER) ok &= ngs_h5_attr_write_f64(g, "kaiser_beta", j->kaiser_beta) == 0;
    ok &= ngs_h5_attr_write_str(g, "resampling", j->resample == NGS_RESAMPLE_LINEAR ? "linear" : "cubic") == 0;
    ok &= ngs_h5_attr_write_i64(g, "N", (int64_t)N) == 0;
    ok &= ngs_h5_attr_write_i64(g, "nbins", (int64_t)nb) == 0;
    ok &= ngs_h5_attr_write_f64(g, "fs", m->fs) == 0;
    ok &= ngs_h5_attr_write_f64(g, "df", m->df) == 0;
    ok &= ngs_h5_attr_write_f64(g, "t_start", m->t_start) == 0;
    ok &= ngs_h5_attr_write_f64(g, "duration", (double)N / m->fs) == 0;
    ok &= ngs_h5_attr_write_f64(g, "fundamental", m->fundamental) == 0;
    ok &= ngs_h5_attr_write_str(g, "fundamental_source", fund_source) == 0;
    ok &= ngs_h5_attr_write_i64(g, "periods", periods_of(m, N)) == 0;
    ok &= ngs_h5_attr_write_i64(g, "coherent", m->coherent) == 0;
    ok &= ngs_h5_attr_write_i64(g, "harmonics", j->harmonics) == 0;
    ok &= ngs_h5_attr_write_str(g, "backend", used == NGS_SPECTRUM_GPU ? "gpu" : "cpu") == 0;
    ok &= ngs_h5_attr_write_i64(g, "input_points", (int64_t)it->n) == 0;
    ok &= ngs_h5_attr_write_i64(g, "dropped_points", (int64_t)it->dropped) == 0;
    ok &= ngs_h5_attr_write_str(g, "created", created) == 0;
    ok &= ngs_h5_attr_write_str(g, "ngscale_version", NGSCALE_VERSION) == 0;
    for (size_t k = 0; k < nb; k++) scratch[k] = (double)k * m->df;
    ok &= write_array(g, "frequency", scratch, nb, "Hz", codec) == 0;
    ok &= write_array(g, "amplitude", amp, nb, it->unit, codec) == 0;
    ok &= write_array(g, "psd", psd, nb, psd_unit, codec) == 0;
    {
        double hd[NGS_SPECTRUM_MAX_HARMONICS + 1];
        for (int h = 0; h <= j->harmonics; h++) hd[h] = h >= 2 ? m->hd_dbc[h] : NAN;
        ok &= write_array(g, "harmonics_dbc", hd, (size_t)j->harmonics + 1, "dBc", NGS_CODEC_NONE) == 0;
    }
    {
        metrics_row row = {{it->job, m->fundamental, m->amplitude, m->dc, m->thd_db, m->thd_percent, m->snr_db,
                            m->sinad_db, m->sfdr_db, m->spur_frequency, m->enob, m->noise_floor_db, m->coherent,
                            periods_of(m, N)},
                           it->run, it->vec_name, it->plot};
        ok &= write_rows(g, "metrics", &row, 1) == 0;
    }
    if (!ok) rc = set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot write %s/spectrum/%s", j->path,
                          it->run, it->vec_link);
out:
    if (g >= 0) H5Gclose(g);
    if (spec >= 0) H5Gclose(spec);
    if (run >= 0) H5Gclose(run);
    return rc;
}

/* Rows of every <run>/spectrum/<vector>/metrics of the file, in name order. The names
 * come from the groups (link of the run, attributes "vector" and "plot"). */
typedef struct {
    metrics_row *v;
    size_t n, cap;
    hid_t nt;
    int failed;
} rows;

static void rows_add(rows *r, const char *run, hid_t g, hid_t d)
{
    hid_t s = H5Dget_space(d);
    hssize_t n = s >= 0 ? H5Sget_simple_extent_npoints(s) : -1;
    metrics_num *num;
    if (s >= 0) H5Sclose(s);
    if (n <= 0) return;
    if (!(num = calloc((size_t)n, sizeof *num))) {
        r->failed = 1;
        return;
    }
    if (H5Dread(d, r->nt, H5S_ALL, H5S_ALL, H5P_DEFAULT, num) < 0) {
        free(num);
        r->failed = 1;
        return;
    }
    for (hssize_t i = 0; i < n; i++) {
        metrics_row *row;
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 64;
            metrics_row *v = realloc(r->v, cap * sizeof *v);
            if (!v) {
                r->failed = 1;
                break;
            }
            r->v = v;
            r->cap = cap;
        }
        row = &r->v[r->n];
        row->num = num[i];
        row->run = strdup(run);
        row->vector = ngs_h5_attr_dup_str(g, "vector");
        row->plot = ngs_h5_attr_dup_str(g, "plot");
        if (!row->vector) row->vector = strdup("");
        if (!row->plot) row->plot = strdup("");
        r->n++;
        if (!row->run || !row->vector || !row->plot) {
            r->failed = 1;
            break;
        }
    }
    free(num);
}

static int rebuild_table(job *j)
{
    strlist runs;
    rows r = {0};
    int rc;
    if ((rc = list_links(j->file, 1, &runs)) != NGS_OK)
        return set_err(j->err, j->errlen, rc, "%s: cannot list its groups", j->path);
    r.nt = numbers_type();
    H5E_BEGIN_TRY {
        for (size_t i = 0; i < runs.n && !r.failed; i++) {
            char *path;
            strlist vecs;
            hid_t spec;
            if (child_type(j->file, runs.v[i]) != H5O_TYPE_GROUP) continue;
            if (!(path = malloc(strlen(runs.v[i]) + 16))) {
                r.failed = 1;
                break;
            }
            sprintf(path, "%s/spectrum", runs.v[i]);
            spec = child_type(j->file, path) == H5O_TYPE_GROUP ? H5Gopen2(j->file, path, H5P_DEFAULT) : -1;
            free(path);
            if (spec < 0) continue;
            if (list_links(spec, 1, &vecs) == NGS_OK)
                for (size_t k = 0; k < vecs.n && !r.failed; k++) {
                    hid_t g, d;
                    if (child_type(spec, vecs.v[k]) != H5O_TYPE_GROUP) continue;
                    if ((g = H5Gopen2(spec, vecs.v[k], H5P_DEFAULT)) < 0) continue;
                    if (child_type(g, "metrics") == H5O_TYPE_DATASET &&
                        (d = H5Dopen2(g, "metrics", H5P_DEFAULT)) >= 0) {
                        rows_add(&r, runs.v[i], g, d);
                        H5Dclose(d);
                    }
                    H5Gclose(g);
                }
            strlist_free(&vecs);
            H5Gclose(spec);
        }
        if (!r.failed) {
            if (r.n > 0)
                r.failed = write_rows(j->file, TABLE_NAME, r.v, r.n) < 0;
            else if (H5Lexists(j->file, TABLE_NAME, H5P_DEFAULT) > 0)
                H5Ldelete(j->file, TABLE_NAME, H5P_DEFAULT);
        }
    } H5E_END_TRY;
    for (size_t i = 0; i < r.n; i++) {
        free(r.v[i].run);
        free(r.v[i].vector);
        free(r.v[i].plot);
    }
    strlist_free(&runs);
    free(r.v);
    H5Tclose(r.nt);
    return r.failed ? set_err(j->err, j->errlen, NGS_ERR_HDF5, "%s: cannot write /%s", j->path, TABLE_NAME)
                    : NGS_OK;
}

/* ------------------------------------------------------------------- table -- */

static void print_table(const job *j, FILE *out, const ngs_spectrum_metrics *m, const size_t *index,
                        size_t N, ngs_spectrum_backend used, const char *fund_source, double fund)
{
    int w = 3;
    const item *first = NULL;
    char amp[32], floor_label[32];
    for (size_t i = 0; i < j->nitems; i++) {
        int len = (int)strlen(j->items[i].run);
        if (len > w) w = len;
        if (!first && !j->items[i].skip) first = &j->items[i];
    }
    if (!first) return;
    snprintf(amp, sizeof amp, "amp [%s]", first->unit[0] ? first->unit : "1");
    snprintf(floor_label, sizeof floor_label, "floor [dB%s]", first->unit[0] ? first->unit : "");
    fprintf(out, "spectrum of %s (plot %s): %s window", first->vec_name, first->plot,
            ngs_spectrum_window_name(j->window));
    if (j->window == NGS_WINDOW_KAISER) fprintf(out, " (beta %g)", j->kaiser_beta);
    fprintf(out, ", %s resampling, N = %zu, harmonics 2..%d, backend %s", 
            j->resample == NGS_RESAMPLE_LINEAR ? "linear" : "cubic", N, j->harmonics,
            used == NGS_SPECTRUM_GPU ? "gpu" : "cpu");
    if (fund > 0) {
        if (j->o->periods) fprintf(out, ", %u periods", j->o->periods);
        else fprintf(out, ", whole periods");
        fprintf(out, " of %.9g Hz (%s)", fund, fund_source);
    }
    fputc('\n', out);
    fprintf(out, "%-*s  %12s  %10s  %9s  %9s  %9s  %10s  %10s  %10s  %11s\n", w, "run", "fund [Hz]", amp,
            "THD [dB]", "THD [%]", "SNR [dB]", "SINAD [dB]", "SFDR [dBc]", "ENOB [bit]", floor_label);
    for (size_t i = 0; i < j->nitems; i++) {
        const item *it = &j->items[i];
        if (it->skip) {
            fprintf(out, "%-*s  skipped: %s\n", w, it->run, it->why);
            continue;
        }
        const ngs_spectrum_metrics *r = &m[index[i]];
        if (isnan(r->fundamental)) { /* only a search finds none */
            fprintf(out, "%-*s  no tone of %d or more periods stands out in the record (the window needs "
                         "them to tell it from DC and its harmonics; or it drifts): simulate longer (or the record is "
                         "constant)\n", w,
                    it->run, j->min_periods);
            continue;
        }
        fprintf(out, "%-*s  %12.7g  %10.4g  %9.2f  %9.3g  %9.2f  %10.2f  %10.2f  %10.2f  %11.1f\n", w,
                it->run, r->fundamental, r->amplitude, r->thd_db, r->thd_percent, r->snr_db, r->sinad_db,
                r->sfdr_db, r->enob, r->noise_floor_db);
    }
    if (j->o->no_write)
        fprintf(out, "not written: %s was left as it was\n", j->path);
    else
        fprintf(out, "written to %s: <run>/spectrum/%s, table /spectrum_metrics\n", j->path, first->vec_link);
}

/* ---------------------------------------------------------------- the call -- */

/* The vector names collected by the selection, "a, b, c" (or "none"). */
static char *vector_list(job *j)
{
    size_t len = strlen(j->names);
    if (len >= 2 && strcmp(j->names + len - 2, ", ") == 0) j->names[len - 2] = '\0';
    return j->names[2] ? j->names + 2 : (char *)"none";
}

/* Opens the file, read-only to read and compute (a kill then leaves it as it was:
 * HDF5 marks a file opened for writing until it is closed), read-write to write the
 * results. The message tells a program holding it (ngs_h5_file_in_use), a killed
 * writer and a read-only file apart. */
static int open_file(job *j, int rw)
{
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    char *fmt = NULL;
    H5Pset_libver_bounds(fapl, H5F_LIBVER_LATEST, H5F_LIBVER_LATEST);
    char truncated[400] = "";
    H5E_BEGIN_TRY { j->file = H5Fopen(j->path, rw ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl); } H5E_END_TRY;
    /* a file cut short (a copy or download stopped, a full disk) is no killed writer's:
     * 'h5clear --increment' would make HDF5 write into it as if its end were there */
    if (j->file < 0) ngs_h5_open_failed_truncated(truncated, sizeof truncated);
    if (j->file < 0) {
        int rc;
        if (access(j->path, F_OK) != 0) {
            rc = set_err(j->err, j->errlen, NGS_ERR_IO, "%s: no such file", j->path);
        } else if (truncated[0]) {
            rc = set_err(j->err, j->errlen, NGS_ERR_IO, "%s: %s; nothing was written", j->path, truncated);
        } else {
            htri_t is_h5;
            H5E_BEGIN_TRY { is_h5 = H5Fis_hdf5(j->path); } H5E_END_TRY;
            if (is_h5 <= 0) {
                rc = set_err(j->err, j->errlen, NGS_ERR_IO, "%s: not an HDF5 file (or unreadable)", j->path);
            } else if (rw && access(j->path, W_OK) != 0) {
                rc = set_err(j->err, j->errlen, NGS_ERR_IO,
                             "%s: cannot open it for writing (read-only file or directory?): "
                             "the spectrum is written into the file (--no-write only prints it)", j->path);
            } else if (ngs_h5_file_in_use(j->path)) {
                rc = set_err(j->err, j->errlen, NGS_ERR_IO,
                             "%s: another program has the file open (a reader such as h5py or HDFView, or "
                             "a run still writing it): try again once it is closed (nothing was written)%s",
                             j->path, rw ? ", or print the spectrum only with --no-write" : "");
            } else {
                rc = set_err(j->err, j->errlen, NGS_ERR_IO,
                             "%s: the file is marked as open for writing, and no program has it open: "
                             "its writer was killed. Run 'h5clear -s --increment %s' and try again",
                             j->path, j->path);
            }
        }
        H5Pclose(fapl);
        return rc;
    }
    H5Pclose(fapl);
    H5E_BEGIN_TRY { fmt = ngs_h5_attr_dup_str(j->file, "ngscale_format"); } H5E_END_TRY;
    if (!fmt) return set_err(j->err, j->errlen, NGS_ERR_FORMAT, "%s: an HDF5 file, but not written by ngscale", j->path);
    free(fmt);
    /* A killed writer also leaves stale free-space records (ngscale files keep them
     * across sessions), which 'h5clear -s' does not repair: the first allocation would
     * then fail and HDF5 1.10.8 can crash closing the file. Loading them allocates
     * nothing, so check here; 'h5clear --increment' drops them. */
    {
        hssize_t fr;
        H5E_BEGIN_TRY { fr = H5Fget_freespace(j->file); } H5E_END_TRY;
        if (fr < 0)
            return set_err(j->err, j->errlen, NGS_ERR_IO,
                           "%s: the file's free-space records are stale (its writer was killed; "
                           "'h5clear -s' alone does not repair them): run 'h5clear -s --increment %s' "
                           "and try again", j->path, j->path);
    }
    return NGS_OK;
}

/* /spectrum_metrics is replaced on every call: anything else of that name (a run
 * named so) would be deleted with it. */
static int check_table_name(job *j)
{
    int type = child_type(j->file, TABLE_NAME);
    if (type < 0 || type == H5O_TYPE_DATASET) return NGS_OK;
    return set_err(j->err, j->errlen, NGS_ERR_ARG,
                   "%s: a group named '%s' is in the place of the metrics table, which each "
                   "spectrum call rewrites: rename it (h5py: f.move('%s', 'new name')) and try again",
                   j->path, TABLE_NAME, TABLE_NAME);
}

static int check_options(job *j)
{
    const ngs_spectrum_file_options *o = j->o;
    int w;
    if (!o->vector || !*o->vector)
        return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: no vector given (e.g. 'v(out)')");
    j->window = NGS_WINDOW_BLACKMAN_HARRIS;
    j->kaiser_beta = 8.6;
    if (o->window) {
        if (ngs_spectrum_parse_window(o->window, &w, &j->kaiser_beta) < 0)
            return set_err(j->err, j->errlen, NGS_ERR_ARG,
                           "spectrum: unknown window '%s' (rect, hann, hamming, blackman, "
                           "blackman-harris, flattop, kaiser[:beta] with beta in 0..100)", o->window);
        j->window = (ngs_window)w;
    }
    {
        int lobe = 0;
        ngs_spectrum_window_info(j->window, j->kaiser_beta, 64, NULL, NULL, &lobe);
        j->min_periods = 2 * lobe;
    }
    if (o->periods && (int)o->periods < j->min_periods)
        return set_err(j->err, j->errlen, NGS_ERR_ARG,
                       "spectrum: %u period%s are too few for the %s window: it needs %d or more (DC, the "
                       "fundamental and its harmonics lie P bins apart, and its tones overlap closer than "
                       "that); give more, or a window with a narrower lobe (rect: 2, hann: 4)", o->periods,
                       o->periods == 1 ? "" : "s", ngs_spectrum_window_name(j->window), j->min_periods);
    j->resample = NGS_RESAMPLE_CUBIC;
    if (o->resample) {
        if ((w = ngs_spectrum_parse_resample(o->resample)) < 0)
            return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: unknown resampling '%s' (linear, cubic)",
                           o->resample);
        j->resample = (ngs_resample)w;
    }
    j->backend = NGS_SPECTRUM_AUTO;
    if (o->backend) {
        if ((w = ngs_spectrum_parse_backend(o->backend)) < 0)
            return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: unknown backend '%s' (auto, cpu, gpu)",
                           o->backend);
        j->backend = (ngs_spectrum_backend)w;
    }
    j->harmonics = o->harmonics ? o->harmonics : 9;
    if (j->harmonics < 2 || j->harmonics > NGS_SPECTRUM_MAX_HARMONICS)
        return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: harmonics must be 2..%d",
                       NGS_SPECTRUM_MAX_HARMONICS);
    if (!(o->fundamental >= 0) || !isfinite(o->fundamental))
        return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: the fundamental must be >= 0 Hz (0: find it)");
    if (o->points && (o->points < 4 || o->points > ((size_t)1 << 30)))
        return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: points must be 4..2^30 (0: automatic)");
    if (o->threads < 0) return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: threads must be >= 0");
    if (o->nruns && !o->runs) return set_err(j->err, j->errlen, NGS_ERR_ARG, "spectrum: nruns without runs");
    return NGS_OK;
}

static int make_ctx(job *j, double fundamental, unsigned periods, ngs_spectrum_ctx **ctx)
{
    ngs_spectrum_options so;
    int rc;
    ngs_spectrum_options_init(&so);
    so.backend = j->backend;
    so.threads = j->o->threads;
    so.window = j->window;
    so.kaiser_beta = j->kaiser_beta;
    so.resample = j->resample;
    so.n = j->o->points;
    so.fundamental = fundamental;
    so.periods = periods;
    so.harmonics = j->harmonics;
    rc = ngs_spectrum_create(ctx, &so);
    if (rc == NGS_ERR_STATE) {
        char why[256];
        ngs_spectrum_gpu_probe(why, sizeof why);
        return set_err(j->err, j->errlen, rc, "spectrum: backend gpu asked for, but no CUDA device is usable (%s); "
                                              "use --backend auto or cpu", why);
    }
    if (rc != NGS_OK) return set_err(j->err, j->errlen, rc, "spectrum: cannot set up the engine (%s)", ngs_strerror(rc));
    return NGS_OK;
}

/* The engine's error, with the record it names by its place in the batch ("vector
 * 3", meaningless to the user) named by its run and plot. index: as gather() made it. */
static int engine_error(const job *j, const ngs_spectrum_ctx *ctx, const size_t *index, int rc, char *err,
                        size_t errlen)
{
    const char *m = ngs_spectrum_last_error(ctx); /* it says "spectrum: " */
    size_t k;
    int used = 0;
    if (sscanf(m, "spectrum: vector %zu: %n", &k, &used) == 1 && used > 0)
        for (size_t i = 0; i < j->nitems; i++)
            if (!j->items[i].skip && index[i] == k)
                return set_err(err, errlen, rc, "spectrum: run %s, plot %s: %s", j->items[i].run,
                               j->items[i].plot, m + used);
    return set_err(err, errlen, rc, "%s", m);
}

/* No fundamental but periods: find each run's fundamental over its whole record (one
 * batch), demand that they agree, and analyse the periods of their mean. A run where
 * none stands out is skipped (an error when the caller named the runs). index: as
 * gather() made it. */
static int detect_fundamental(job *j, const double **t, const double **x, const size_t *n, size_t nv,
                              const size_t *index, double *f)
{
    ngs_spectrum_ctx *ctx = NULL;
    ngs_spectrum_metrics *m = calloc(nv, sizeof *m);
    ngs_spectrum_out out;
    int rc;
    size_t found = 0;
    double lo = INFINITY, hi = 0, sum = 0;
    if (!m) return set_err(j->err, j->errlen, NGS_ERR_NOMEM, "out of memory");
    memset(&out, 0, sizeof out);
    out.metrics = m;
    if ((rc = make_ctx(j, 0, 0, &ctx)) == NGS_OK && (rc = ngs_spectrum_batch(ctx, t, x, n, nv, &out)) != NGS_OK)
        engine_error(j, ctx, index, rc, j->err, j->errlen);
    for (size_t i = 0; rc == NGS_OK && i < j->nitems; i++) {
        item *it = &j->items[i];
        const ngs_spectrum_metrics *mi = &m[index[i]];
        if (it->skip) continue;
        if (!(mi->fundamental > 0) || !isfinite(mi->fundamental)) {
            snprintf(it->why, sizeof it->why, "no tone of %d or more periods stands out in the record to "
                     "take as the fundamental", j->min_periods);
            if (j->o->nruns)
                rc = set_err(j->err, j->errlen, NGS_ERR_ARG, "%s: run %s: %s: give --fund", j->path, it->run,
                             it->why);
            it->skip = 1;
            continue;
        }
        lo = fmin(lo, mi->fundamental);
        hi = fmax(hi, mi->fundamental);
        sum += mi->fundamental;
        found++;
    }
    if (rc == NGS_OK && found == 0)
        rc = set_err(j->err, j->errlen, NGS_ERR_ARG, "%s: no run has a tone of %d or more periods to take as "
                     "the fundamental: give --fund", j->path, j->min_periods);
    if (rc == NGS_OK && hi > lo * (1 + DETECT_AGREEMENT))
        rc = set_err(j->err, j->errlen, NGS_ERR_ARG,
                     "spectrum: the fundamentals found differ across runs (%.6g .. %.6g Hz): periods "
                     "need one fundamental, give it", lo, hi);
    if (rc == NGS_OK) *f = sum / (double)found;
    ngs_spectrum_destroy(ctx);
    free(m);
    return rc;
}

/* The engine's inputs: the items not skipped; index[i] = row of item i. */
static size_t gather(const job *j, const double **t, const double **x, size_t *n, size_t *index)
{
    size_t nvec = 0;
    for (size_t i = 0; i < j->nitems; i++)
        if (!j->items[i].skip) {
            index[i] = nvec;
            t[nvec] = j->items[i].t;
            x[nvec] = j->items[i].x;
            n[nvec++] = j->items[i].n;
        }
    return nvec;
}

int ngs_spectrum_file(const char *h5_path, const ngs_spectrum_file_options *options, FILE *table_out,
                      char *err, size_t errlen)
{
    job j;
    ngs_spectrum_file_options o;
    ngs_spectrum_ctx *ctx = NULL;
    ngs_spectrum_metrics *m = NULL;
    double *amp = NULL, *psd = NULL, *scratch = NULL, fund = 0;
    const double **tv = NULL, **xv = NULL;
    size_t *nv = NULL, *index = NULL, nvec = 0, N = 0, nb = 0;
    const char *fund_source = "given";
    int rc;
    ngs_spectrum_backend used = NGS_SPECTRUM_CPU;

    if (err && errlen) err[0] = '\0';
    memset(&j, 0, sizeof j);
    j.file = H5I_INVALID_HID;
    strcpy(j.names, ", ");
    j.err = err;
    j.errlen = errlen;
    if (!h5_path || !options) return set_err(err, errlen, NGS_ERR_ARG, "spectrum: no file or no options");
    o = *options;
    j.o = &o;
    j.path = h5_path;
    if ((rc = check_options(&j)) != NGS_OK) return rc;
    /* ngscale's own filters, so its files decode without HDF5_PLUGIN_PATH */
    if (ngs_codec_register_zstd() != NGS_OK || ngs_bounded_register() != NGS_OK)
        return set_err(err, errlen, NGS_ERR_HDF5, "spectrum: cannot register ngscale's HDF5 filters");
    if ((rc = open_file(&j, 0)) != NGS_OK) goto out;
    if ((rc = check_table_name(&j)) != NGS_OK) goto out;

    /* ---- which runs, which plot, which vector ---- */
    if (o.nruns) {
        for (size_t r = 0; r < o.nruns && rc == NGS_OK; r++) {
            const char *name = o.runs[r];
            char *link = NULL;
            int dup = 0;
            while (name && *name == '/') name++;
            if (!name || !*name) {
                rc = set_err(err, errlen, NGS_ERR_ARG, "spectrum: empty run name");
                break;
            }
            /* as given, else escaped as the writer does ("a/b" is stored as "a%2Fb") */
            if (!strchr(name, '/') && child_type(j.file, name) == H5O_TYPE_GROUP) link = strdup(name);
            else if ((link = escape_link(name)) && child_type(j.file, link) != H5O_TYPE_GROUP) {
                strlist all;
                char list[512] = "";
                if (list_links(j.file, 1, &all) == NGS_OK)
                    for (size_t i = 0; i < all.n; i++)
                        if (child_type(j.file, all.v[i]) == H5O_TYPE_GROUP)
                            append(list, sizeof list, "%s%s", list[0] ? ", " : "", all.v[i]);
                strlist_free(&all);
                free(link);
                rc = set_err(err, errlen, NGS_ERR_ARG, "%s: no run group '%s' (groups: %s)", h5_path, name,
                             list[0] ? list : "none");
                break;
            }
            if (!link) {
                rc = set_err(err, errlen, NGS_ERR_NOMEM, "out of memory");
                break;
            }
            for (size_t i = 0; i < j.nitems; i++) dup |= strcmp(j.items[i].run, link) == 0;
            if (!dup) rc = select_run(&j, link, 1);
            if (rc != NGS_OK && j.missing) {
                char *names = vector_list(&j);
                if (j.scale_hit)
                    set_err(err, errlen, NGS_ERR_ARG, "%s: '%s' is the scale of run %s, not a signal", h5_path,
                            o.vector, link);
                else
                    set_err(err, errlen, NGS_ERR_ARG, "%s: no vector '%s' in run %s, %s%s (vectors: %s)",
                            h5_path, o.vector, link, o.plot ? "plot " : "transient plot",
                            o.plot ? o.plot : "", names);
            }
            free(link);
        }
        if (rc != NGS_OK) goto out;
    } else {
        strlist all;
        if ((rc = list_links(j.file, 1, &all)) != NGS_OK) {
            set_err(err, errlen, rc, "%s: cannot list its groups", h5_path);
            goto out;
        }
        for (size_t i = 0; i < all.n && rc == NGS_OK; i++)
            if (child_type(j.file, all.v[i]) == H5O_TYPE_GROUP)
                rc = select_run(&j, all.v[i], 0);
        strlist_free(&all);
        if (rc != NGS_OK) goto out;
        size_t found = 0;
        const item *held = NULL; /* a run that has the vector, skipped */
        for (size_t i = 0; i < j.nitems; i++) {
            found += !j.items[i].skip;
            if (!held && j.items[i].vec_link) held = &j.items[i];
        }
        if (found == 0) {
            if (held)
                rc = set_err(err, errlen, NGS_ERR_ARG, "%s: no run can be analysed (%s: %s)", h5_path, held->run,
                             held->why);
            else if (!j.tran_seen)
                rc = set_err(err, errlen, NGS_ERR_ARG, "%s: no run has %s%s", h5_path,
                             o.plot ? "a plot " : "a transient plot (tran*)", o.plot ? o.plot : "");
            else if (j.scale_hit)
                rc = set_err(err, errlen, NGS_ERR_ARG, "%s: '%s' is the scale of the %s, not a signal (vectors: %s)",
                             h5_path, o.vector, o.plot ? "plot" : "transient plot", vector_list(&j));
            else
                rc = set_err(err, errlen, NGS_ERR_ARG, "%s: no vector '%s' in the %s of any run (vectors: %s)",
                             h5_path, o.vector, o.plot ? "plot" : "transient plots", vector_list(&j));
            goto out;
        }
    }

    /* ---- read ---- */
    for (size_t i = 0; i < j.nitems; i++) {
        if (j.items[i].skip) continue;
        if (o.stop && *o.stop) {
            rc = set_err(err, errlen, NGS_ERR_INTERRUPTED, "%s: interrupted; the file is unchanged", h5_path);
            goto out;
        }
        if ((rc = read_item(&j, &j.items[i])) != NGS_OK) goto out;
        if (j.items[i].skip && o.nruns) {
            rc = set_err(err, errlen, NGS_ERR_ARG, "%s: run %s cannot be analysed: %s", h5_path, j.items[i].run,
                         j.items[i].why);
            goto out;
        }
    }
    tv = calloc(j.nitems, sizeof *tv);
    xv = calloc(j.nitems, sizeof *xv);
    nv = calloc(j.nitems, sizeof *nv);
    index = calloc(j.nitems, sizeof *index);
    if (!tv || !xv || !nv || !index) {
        rc = set_err(err, errlen, NGS_ERR_NOMEM, "out of memory");
        goto out;
    }
    nvec = gather(&j, tv, xv, nv, index);
    if (nvec == 0) { /* say why for a run that has the vector */
        const item *it = &j.items[0];
        for (size_t i = 0; i < j.nitems; i++)
            if (j.items[i].vec_link) {
                it = &j.items[i];
                break;
            }
        rc = set_err(err, errlen, NGS_ERR_ARG, "%s: no run can be analysed (%s: %s)", h5_path, it->run, it->why);
        goto out;
    }
    fund = o.fundamental;
    if (fund == 0 && o.periods) {
        if ((rc = detect_fundamental(&j, tv, xv, nv, nvec, index, &fund)) != NGS_OK) goto out;
        fund_source = "detected";
        for (size_t i = 0; i < j.nitems; i++) {
            item *it = &j.items[i];
            if (it->skip) continue;
            if (!record_fits(&j, it, fund, o.periods, it->why, sizeof it->why)) {
                if (o.nruns) {
                    rc = set_err(err, errlen, NGS_ERR_ARG, "%s: run %s cannot be analysed: %s", h5_path, it->run,
                                 it->why);
                    goto out;
                }
                it->skip = 1;
                continue;
            }
            keep_tail(it, tail_start(it->t, it->n, (double)o.periods / fund));
        }
        nvec = gather(&j, tv, xv, nv, index);
        if (nvec == 0) {
            rc = set_err(err, errlen, NGS_ERR_ARG, "%s: no run is long enough for %u periods of %g Hz", h5_path,
                         o.periods, fund);
            goto out;
        }
    } else if (fund == 0) {
        fund_source = "found per run";
    }

    /* ---- one batch ---- */
    if ((rc = make_ctx(&j, fund, o.periods, &ctx)) != NGS_OK) goto out;
    if ((rc = ngs_spectrum_size(ctx, tv, nv, nvec, &N, &nb)) != NGS_OK) {
        engine_error(&j, ctx, index, rc, err, errlen);
        goto out;
    }
    if (nb && nvec > SIZE_MAX / sizeof(double) / nb) {
        rc = set_err(err, errlen, NGS_ERR_NOMEM, "spectrum: %zu spectra of %zu bins do not fit in memory", nvec, nb);
        goto out;
    }
    m = calloc(nvec, sizeof *m);
    amp = malloc(nvec * nb * sizeof *amp);
    psd = malloc(nvec * nb * sizeof *psd);
    scratch = malloc(nb * sizeof *scratch);
    if (!m || !amp || !psd || !scratch) {
        rc = set_err(err, errlen, NGS_ERR_NOMEM, "spectrum: out of memory for %zu spectra of %zu bins", nvec, nb);
        goto out;
    }
    {
        ngs_spectrum_out out;
        memset(&out, 0, sizeof out);
        out.amplitude = amp;
        out.psd = psd;
        out.metrics = m;
        if ((rc = ngs_spectrum_batch(ctx, tv, xv, nv, nvec, &out)) != NGS_OK) {
            engine_error(&j, ctx, index, rc, err, errlen);
            goto out;
        }
        used = ngs_spectrum_last_backend(ctx);
    }

    /* ---- write back ---- */
    if (o.no_write) {
        if (table_out) print_table(&j, table_out, m, index, N, used, fund_source, fund);
        goto out;
    }
    if (o.stop && *o.stop) {
        rc = set_err(err, errlen, NGS_ERR_INTERRUPTED, "%s: interrupted before writing; the file is unchanged",
                     h5_path);
        goto out;
    }
    H5Fclose(j.file);
    if ((rc = open_file(&j, 1)) != NGS_OK || (rc = check_table_name(&j)) != NGS_OK) goto out;
    for (size_t i = 0; i < j.nitems; i++) {
        const item *it = &j.items[i];
        if (it->skip) continue;
        H5E_BEGIN_TRY { /* failures are reported by message, not by HDF5's stack dump */
            rc = write_item(&j, it, &m[index[i]], amp + index[i] * nb, psd + index[i] * nb, N, nb, used,
                            fund_source, scratch);
        } H5E_END_TRY;
        if (rc != NGS_OK) goto out;
    }
    if ((rc = rebuild_table(&j)) != NGS_OK) goto out;
    if (H5Fflush(j.file, H5F_SCOPE_GLOBAL) < 0) {
        rc = set_err(err, errlen, NGS_ERR_HDF5, "%s: cannot flush", h5_path);
        goto out;
    }
    if (table_out) print_table(&j, table_out, m, index, N, used, fund_source, fund);

out:
    ngs_spectrum_destroy(ctx);
    free(m);
    free(amp);
    free(psd);
    free(scratch);
    free(tv);
    free(xv);
    free(nv);
    free(index);
    for (size_t i = 0; i < j.nitems; i++) item_free(&j.items[i]);
    free(j.items);
    if (j.file >= 0) {
        herr_t c;
        H5E_BEGIN_TRY { c = H5Fclose(j.file); } H5E_END_TRY;
        if (c < 0 && rc == NGS_OK) rc = set_err(err, errlen, NGS_ERR_HDF5, "%s: cannot close the file", h5_path);
    }
    return rc;
}
