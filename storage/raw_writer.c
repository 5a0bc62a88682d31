/*
 * raw_writer.c - writes ngspice-style RAW files plot by plot (see raw.h).
 *
 * Why it looks like this:
 * - Rows arrive in chunks and go out through a 1 MiB buffer, so a file of any size is
 *   written in bounded memory.
 * - The point count is not known while streaming, so, like ngspice's batch writer
 *   (outitf.c), the header keeps "No. Points: 0" padded to 8 characters and the count
 *   is written over it when the plot ends (pwrite, or into the buffer when the header
 *   has not left it yet). A reader that opens the file meanwhile sees a plot in
 *   progress, as with ngspice.
 * - Header lines are written exactly as ngspice -b -r writes them ("Key: value",
 *   "\t<i>\t<name>\t<type>\t<params>", ASCII points "<i>\t" then "\t%.15e\n" per value),
 *   in the C locale whatever the process locale is, so a plot read from an ngspice file
 *   comes back byte for byte.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "storage/raw.h"

#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define WBUF (1u << 20)
#define MIN_COUNT_WIDTH 8 /* ngspice saves "0" plus 7 spaces for the point count */

struct ngs_raw_writer {
    int fd;
    char *path;
    unsigned char *buf;
    size_t used;
    uint64_t flushed;       /* file offset of buf[0] */
    int seekable;
    locale_t cloc;
    /* current plot */
    int in_plot;
    ngs_raw_encoding enc;
    int nvars;
    unsigned char *var_complex; /* per variable: input has (re, im) */
    size_t in_doubles;          /* doubles per input row */
    int complex_file;
    int same_layout;            /* input rows are the output rows (binary fast path) */
    uint64_t points;
    uint64_t count_pos;         /* file offset of the point count */
    int count_width;
    ngs_raw_style style;
    int failed;                 /* an I/O error happened: refuse further writes */
    char err[512];
};

static int werr(ngs_raw_writer *w, int code, const char *fmt, ...)
{
    char msg[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    snprintf(w->err, sizeof w->err, "%s: %s", w->path, msg);
    if (code == NGS_ERR_IO)
        w->failed = 1;
    return code;
}

static int write_all(ngs_raw_writer *w, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = write(w->fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return werr(w, NGS_ERR_IO, "write failed: %s", strerror(errno));
        }
        p += k;
        n -= (size_t)k;
        w->flushed += (uint64_t)k;
    }
    return NGS_OK;
}

static int flush(ngs_raw_writer *w)
{
    if (!w->used)
        return NGS_OK;
    int rc = write_all(w, w->buf, w->used);
    w->used = 0;
    return rc;
}

static int put(ngs_raw_writer *w, const void *p, size_t n)
{
    if (w->used + n > WBUF) {
        int rc = flush(w);
        if (rc < 0)
            return rc;
        if (n >= WBUF)
            return write_all(w, p, n);
    }
    memcpy(w->buf + w->used, p, n);
    w->used += n;
    return NGS_OK;
}

static int putf(ngs_raw_writer *w, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return werr(w, NGS_ERR_ARG, "cannot format a header line");
    if ((size_t)n < sizeof small)
        return put(w, small, (size_t)n);
    char *big = malloc((size_t)n + 1);
    if (!big)
        return werr(w, NGS_ERR_NOMEM, "out of memory");
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    int rc = put(w, big, (size_t)n);
    free(big);
    return rc;
}

int ngs_raw_writer_open(ngs_raw_writer **out, const char *path, int append, char *err,
                        size_t errlen)
{
    if (!out || !path) {
        if (err && errlen)
            snprintf(err, errlen, "ngs_raw_writer_open: NULL argument");
        return NGS_ERR_ARG;
    }
    *out = NULL;
    ngs_raw_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->path = strdup(path)) || !(w->buf = malloc(WBUF)) ||
        (w->cloc = newlocale(LC_NUMERIC_MASK, "C", (locale_t)0)) == (locale_t)0) {
        if (w) {
            free(w->buf);
            free(w->path);
            free(w);
        }
        if (err && errlen)
            snprintf(err, errlen, "%s: out of memory", path);
        return NGS_ERR_NOMEM;
    }
    /* No O_APPEND: Linux pwrite() ignores the offset on O_APPEND files, and the point
     * count is patched with pwrite(). */
    w->fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? 0 : O_TRUNC), 0666);
    off_t end = w->fd >= 0 ? lseek(w->fd, 0, SEEK_END) : -1;
    if (w->fd < 0 || (end < 0 && errno != ESPIPE)) {
        if (err && errlen)
            snprintf(err, errlen, "%s: cannot open for writing: %s", path, strerror(errno));
        if (w->fd >= 0)
            close(w->fd);
        freelocale(w->cloc);
        free(w->buf);
        free(w->path);
        free(w);
        return NGS_ERR_IO;
    }
    w->seekable = end >= 0;
    w->flushed = end >= 0 ? (uint64_t)end : 0;
    *out = w;
    return NGS_OK;
}

const char *ngs_raw_writer_last_error(const ngs_raw_writer *w)
{
    return w ? w->err : "";
}

/* A header value must stay on its line. */
static int one_line(const char *s)
{
    return !s || !strpbrk(s, "\r\n");
}

static int no_blank(const char *s)
{
    return s && *s && !strpbrk(s, " \t\r\n\f\v");
}

/* Flags as ngspice readers must see them: "real" or "complex" matching the data, and
 * no "fastaccess" (the data is written row by row). Unchanged text when it already
 * says that. */
static int write_flags(ngs_raw_writer *w, const char *flags)
{
    const char *want = w->complex_file ? "complex" : "real";
    const char *other = w->complex_file ? "real" : "complex";
    size_t n = 0;
    int changed = 0, have = 0;
    if (!flags || !*flags)
        return putf(w, "Flags: %s\n", want);
    /* The words kept fit in the text plus one word replaced by want: no length limit
     * (LTspice and hand-made files have long Flags lines). */
    char *out = malloc(strlen(flags) + strlen(want) + 1);
    if (!out)
        return werr(w, NGS_ERR_NOMEM, "out of memory");
    const char *s = flags;
    while (*s) {
        while (*s == ' ' || *s == '\t')
            s++;
        const char *t = s;
        while (*s && *s != ' ' && *s != '\t')
            s++;
        size_t len = (size_t)(s - t);
        if (!len)
            break;
        const char *word = t;
        if ((len == 10 && strncasecmp(t, "fastaccess", 10) == 0)) {
            changed = 1;
            continue;
        }
        if (len == strlen(other) && strncasecmp(t, other, len) == 0) {
            if (have) {
                changed = 1;
                continue;
            }
            word = want;
            len = strlen(want);
            changed = 1;
        }
        if (len == strlen(want) && strncasecmp(word, want, len) == 0)
            have = 1;
        if (n)
            out[n++] = ' ';
        memcpy(out + n, word, len);
        n += len;
    }
    out[n] = '\0';
    int rc;
    if (!have)
        rc = n ? putf(w, "Flags: %s %s\n", want, out) : putf(w, "Flags: %s\n", want);
    else
        rc = changed ? putf(w, "Flags: %s\n", out) : putf(w, "Flags: %s\n", flags);
    free(out);
    return rc;
}

static int write_count_placeholder(ngs_raw_writer *w, uint64_t hint)
{
    int digits = 1;
    for (uint64_t h = hint; h >= 10; h /= 10)
        digits++;
    int rc = putf(w, "No. Points: ");
    if (rc < 0)
        return rc;
    w->count_pos = w->flushed + w->used;
    if (w->style == NGS_RAW_STYLE_WRITE) { /* unpadded: the expected count itself */
        w->count_width = digits;
        return putf(w, "%llu\n", (unsigned long long)hint);
    }
    w->count_width = digits > MIN_COUNT_WIDTH ? digits : MIN_COUNT_WIDTH;
    return putf(w, "%-*s\n", w->count_width, "0");
}

static int is_key(const ngs_raw_line *l, const char *k)
{
    return l->value && strcasecmp(l->key, k) == 0;
}

int ngs_raw_writer_begin_plot(ngs_raw_writer *w, const ngs_raw_plot *p,
                              ngs_raw_encoding enc)
{
    if (!w || !p)
        return NGS_ERR_ARG;
    if (w->failed)
        return NGS_ERR_IO;
    if (w->in_plot)
        return werr(w, NGS_ERR_STATE, "begin_plot: the previous plot was not ended");
    if (enc != NGS_RAW_BINARY && enc != NGS_RAW_ASCII && enc != NGS_RAW_NODATA)
        return werr(w, NGS_ERR_ARG, "begin_plot: unknown encoding %d", (int)enc);
    int nodata = enc == NGS_RAW_NODATA;
    if (!nodata && (p->nvars < 1 || !p->vars))
        return werr(w, NGS_ERR_ARG, "begin_plot: a plot needs at least one variable");
    if (p->nvars < 0 || (p->nvars > 0 && !p->vars))
        return werr(w, NGS_ERR_ARG, "begin_plot: bad variable list");
    if (!one_line(p->title) || !one_line(p->date) || !one_line(p->plotname) ||
        !one_line(p->flags))
        return werr(w, NGS_ERR_ARG, "begin_plot: a header field contains a newline");
    for (size_t i = 0; i < p->nlines; i++)
        if (!p->lines[i].key || !one_line(p->lines[i].key) || !one_line(p->lines[i].value))
            return werr(w, NGS_ERR_ARG, "begin_plot: header line %zu is not one line", i);

    unsigned char *vc = malloc((size_t)p->nvars + 1);
    if (!vc)
        return werr(w, NGS_ERR_NOMEM, "out of memory");
    int any_complex = 0;
    size_t in_doubles = 0;
    for (int i = 0; i < p->nvars; i++) {
        const ngs_raw_var *v = &p->vars[i];
        if (!no_blank(v->name) || (v->type && !no_blank(v->type)) || !one_line(v->params)) {
            free(vc);
            return werr(w, NGS_ERR_ARG,
                        "begin_plot: variable %d needs a name and type without blanks", i);
        }
        vc[i] = v->is_complex ? 1 : 0;
        any_complex |= vc[i];
        in_doubles += vc[i] ? 2 : 1;
    }
    free(w->var_complex);
    w->var_complex = vc;
    w->nvars = p->nvars;
    w->in_doubles = in_doubles;
    w->complex_file = p->is_complex || any_complex;
    w->same_layout = w->complex_file ? in_doubles == 2 * (size_t)p->nvars
                                     : in_doubles == (size_t)p->nvars;
    w->enc = enc;
    w->points = 0;
    w->style = p->style == NGS_RAW_STYLE_WRITE ? NGS_RAW_STYLE_WRITE : NGS_RAW_STYLE_BATCH;

    /* Header. */
    int rc = NGS_OK;
    const char *title = p->title ? p->title : "";
    const char *date = p->date ? p->date : "";
    const char *plotname = p->plotname ? p->plotname : "";
    if (p->nlines == 0) {
        if ((rc = putf(w, "Title: %s\n", title)) < 0 || (rc = putf(w, "Date: %s\n", date)) < 0 ||
            (rc = putf(w, "Plotname: %s\n", plotname)) < 0 ||
            (rc = write_flags(w, p->flags)) < 0 ||
            (rc = putf(w, "No. Variables: %d\n", p->nvars)) < 0 ||
            (rc = write_count_placeholder(w, p->npoints)) < 0)
            return rc;
    } else {
        int seen_title = 0, seen_date = 0, seen_plotname = 0, seen_flags = 0, seen_nvars = 0,
            seen_points = 0;
        for (size_t i = 0; i < p->nlines; i++) {
            seen_title |= is_key(&p->lines[i], "Title");
            seen_date |= is_key(&p->lines[i], "Date");
        }
        /* Fields the lines lack go where ngspice puts them: Title first, Date after it.
         * A header that began with a Date written above its Title line made a reader
         * take that line for the previous plot's data (after "No. Points: 0", a killed
         * ngspice's count, the data runs to the next Title). */
        if (!seen_title && (rc = putf(w, "Title: %s\n", title)) < 0)
            return rc;
        if (!seen_title && !seen_date && (rc = putf(w, "Date: %s\n", date)) < 0)
            return rc;
        for (size_t i = 0; i < p->nlines && rc >= 0; i++) {
            const ngs_raw_line *l = &p->lines[i];
            if (!l->value) {
                rc = putf(w, "%s\n", l->key);
            } else if (is_key(l, "Title")) {
                rc = putf(w, "%s: %s\n", l->key, title);
                if (rc >= 0 && !seen_date)
                    rc = putf(w, "Date: %s\n", date);
                seen_date = 1;
            } else if (is_key(l, "Date")) {
                rc = putf(w, "%s: %s\n", l->key, date);
            } else if (is_key(l, "Plotname")) {
                if (!seen_plotname)
                    rc = putf(w, "%s: %s\n", l->key, plotname);
                seen_plotname = 1;
            } else if (is_key(l, "Flags")) {
                if (!seen_flags)
                    rc = write_flags(w, p->flags ? p->flags : l->value);
                seen_flags = 1;
            } else if (is_key(l, "No. Variables")) {
                if (!seen_nvars && nodata && p->nvars == 0) /* the list was never written */
                    rc = putf(w, "%s: %s\n", l->key, l->value);
                else if (!seen_nvars)
                    rc = putf(w, "%s: %d\n", l->key, p->nvars);
                seen_nvars = 1;
            } else if (is_key(l, "No. Points")) {
                if (!seen_points)
                    rc = write_count_placeholder(w, p->npoints);
                seen_points = 1;
            } else if (is_key(l, "Command") &&
                       (strcasestr(l->value, "ltspice") || strcasestr(l->value, "qspice") ||
                        strcasestr(l->value, "linear technology"))) {
                /* would make readers expect LTspice's or QSPICE's data layout */
            } else if (is_key(l, "Variables") || is_key(l, "Binary") || is_key(l, "Values")) {
                /* written below */
            } else {
                rc = putf(w, "%s: %s\n", l->key, l->value);
            }
        }
        if (rc < 0)
            return rc;
        if (!seen_plotname && (rc = putf(w, "Plotname: %s\n", plotname)) < 0)
            return rc;
        if (!seen_flags && (rc = write_flags(w, p->flags)) < 0)
            return rc;
        if (!seen_nvars && (rc = putf(w, "No. Variables: %d\n", p->nvars)) < 0)
            return rc;
        if (!seen_points && (rc = write_count_placeholder(w, p->npoints)) < 0)
            return rc;
    }
    if ((rc = putf(w, "Variables:\n")) < 0)
        return rc;
    if (nodata) {
        /* What ngspice leaves for an analysis that stopped before its first point: the
         * header up to "Variables:", no list, no data. */
        w->in_plot = 1;
        return NGS_OK;
    }
    for (int i = 0; i < p->nvars; i++) {
        const ngs_raw_var *v = &p->vars[i];
        const char *type = v->type ? v->type : "notype";
        if (v->params && *v->params)
            rc = putf(w, w->style == NGS_RAW_STYLE_WRITE ? "\t%d\t%s\t%s %s\n"
                                                          : "\t%d\t%s\t%s\t%s\n",
                      i, v->name, type, v->params);
        else
            rc = putf(w, "\t%d\t%s\t%s\n", i, v->name, type);
        if (rc < 0)
            return rc;
    }
    if ((rc = putf(w, enc == NGS_RAW_BINARY ? "Binary:\n" : "Values:\n")) < 0)
        return rc;
    w->in_plot = 1;
    return NGS_OK;
}

static int rows_binary(ngs_raw_writer *w, const double *rows, size_t nrows)
{
    if (w->same_layout)
        return put(w, rows, nrows * w->in_doubles * sizeof(double));
    for (size_t i = 0; i < nrows; i++) {
        const double *in = rows + i * w->in_doubles;
        for (int j = 0; j < w->nvars; j++) {
            double v[2] = {in[0], w->var_complex[j] ? in[1] : 0.0};
            int rc = put(w, v, (w->complex_file ? 2 : 1) * sizeof(double));
            if (rc < 0)
                return rc;
            in += w->var_complex[j] ? 2 : 1;
        }
    }
    return NGS_OK;
}

static int rows_ascii(ngs_raw_writer *w, const double *rows, size_t nrows)
{
    int rc = NGS_OK;
    locale_t old = uselocale(w->cloc); /* "%e" must use '.', whatever the caller's locale */
    for (size_t i = 0; i < nrows && rc >= 0; i++) {
        const double *in = rows + i * w->in_doubles;
        int write_style = w->style == NGS_RAW_STYLE_WRITE;
        /* batch: "<i>\t" then "\t<v>\n" per value; write: " <i>" the same, then "\n" */
        rc = putf(w, write_style ? " %llu" : "%llu\t", (unsigned long long)(w->points + i));
        for (int j = 0; j < w->nvars && rc >= 0; j++) {
            if (w->complex_file)
                rc = putf(w, "\t%.15e,%.15e\n", in[0], w->var_complex[j] ? in[1] : 0.0);
            else
                rc = putf(w, "\t%.15e\n", in[0]);
            in += w->var_complex[j] ? 2 : 1;
        }
        if (write_style && rc >= 0)
            rc = put(w, "\n", 1);
    }
    uselocale(old);
    return rc;
}

int ngs_raw_writer_write_rows(ngs_raw_writer *w, const double *rows, size_t nrows)
{
    if (!w || (!rows && nrows))
        return NGS_ERR_ARG;
    if (w->failed)
        return NGS_ERR_IO;
    if (!w->in_plot)
        return werr(w, NGS_ERR_STATE, "write_rows: no plot begun");
    if (!nrows)
        return NGS_OK;
    if (w->enc == NGS_RAW_NODATA)
        return werr(w, NGS_ERR_STATE, "write_rows: the plot was begun without data");
    int rc = w->enc == NGS_RAW_BINARY ? rows_binary(w, rows, nrows) : rows_ascii(w, rows, nrows);
    if (rc < 0)
        return rc;
    w->points += nrows;
    return NGS_OK;
}

int ngs_raw_writer_end_plot(ngs_raw_writer *w)
{
    if (!w)
        return NGS_ERR_ARG;
    if (!w->in_plot)
        return werr(w, NGS_ERR_STATE, "end_plot: no plot begun");
    w->in_plot = 0;
    if (w->failed)
        return NGS_ERR_IO;
    if (w->enc == NGS_RAW_NODATA)
        return NGS_OK; /* the count stays 0 */
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%-*llu", w->count_width,
                     (unsigned long long)w->points);
    if (n > w->count_width)
        return werr(w, NGS_ERR_ARG,
                    "%llu points do not fit the %d characters kept for the count "
                    "(give npoints as a hint to begin_plot)",
                    (unsigned long long)w->points, w->count_width);
    if (w->count_pos >= w->flushed) { /* still in the buffer */
        memcpy(w->buf + (w->count_pos - w->flushed), digits, (size_t)n);
        return NGS_OK;
    }
    if (!w->seekable)
        return NGS_OK; /* a pipe: the count stays 0, as ngspice leaves it on stdout */
    ssize_t k = pwrite(w->fd, digits, (size_t)n, (off_t)w->count_pos);
    if (k != n)
        return werr(w, NGS_ERR_IO, "cannot write the point count: %s",
                    k < 0 ? strerror(errno) : "short write");
    return NGS_OK;
}

int ngs_raw_writer_flush(ngs_raw_writer *w)
{
    if (!w)
        return NGS_ERR_ARG;
    return w->failed ? NGS_ERR_IO : flush(w);
}

int ngs_raw_writer_close(ngs_raw_writer *w)
{
    if (!w)
        return NGS_ERR_ARG;
    int rc = NGS_OK;
    if (w->in_plot)
        rc = ngs_raw_writer_end_plot(w);
    int rc2 = w->failed ? NGS_ERR_IO : flush(w);
    if (rc == NGS_OK)
        rc = rc2;
    if (close(w->fd) != 0 && rc == NGS_OK)
        rc = NGS_ERR_IO;
    free(w->var_complex);
    freelocale(w->cloc);
    free(w->buf);
    free(w->path);
    free(w);
    return rc;
}
