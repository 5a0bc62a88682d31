/*
 * raw.h - streaming reader and writer for SPICE RAW files.
 *
 * Users keep archives of RAW files of any size, so the reader memory-maps the file,
 * parses only the plot headers when it opens it, and reads data on demand: one vector
 * or a block of rows at a time, in chunks the caller chooses. Its memory does not grow
 * with the amount of data (only with the header text and the number of plots); pages
 * it has read are given back to the kernel as it goes, so streaming a 4 GB file keeps
 * a few MiB resident.
 *
 * Dialects read: ngspice (binary and ASCII, several plots per file, `-r` batch files
 * and `write` files, files still being written), spice3, Xyce, LTspice (UTF-16LE
 * headers, float32 traces with a float64 scale, "double", "fastaccess", the sign trick
 * on compressed time points) and QSPICE.
 *
 * The writer produces ngspice-style RAW files (binary or ASCII), plot by plot, from a
 * plot descriptor and rows streamed in chunks. Given a descriptor read from a file that
 * `ngspice -b -r` wrote, it reproduces that file byte for byte.
 *
 * Every function that can fail returns NGS_OK or a negative ngs_status code
 * (plugin/ngscale.h). A reader or writer may be used by one thread at a time; separate
 * readers of the same file are independent.
 *
 * A file that another program truncates while a reader has it open would kill the
 * process with SIGBUS under a plain mapping: instead, the reader's calls fail from then
 * on with NGS_ERR_IO and "PATH shrank while being read" (a SIGBUS handler is installed
 * while they run, and the previous one restored after; raw_reader.c says how).
 */
#ifndef NGS_STORAGE_RAW_H
#define NGS_STORAGE_RAW_H

#include <stddef.h>
#include <stdint.h>
#include "ngscale.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    NGS_RAW_BINARY = 0, /* "Binary:" data section */
    NGS_RAW_ASCII = 1,  /* "Values:" data section */
    NGS_RAW_NODATA = 2  /* header only (ngspice writes this for an analysis that made no point) */
} ngs_raw_encoding;

typedef enum {
    NGS_RAW_DIALECT_NGSPICE = 0, /* ngspice, spice3, Xyce and unknown writers: all float64 */
    NGS_RAW_DIALECT_LTSPICE = 1, /* float32 traces unless "double"; scale float64 */
    NGS_RAW_DIALECT_QSPICE = 2,  /* float64; in complex plots the scale is real */
    NGS_RAW_DIALECT_XYCE = 3     /* like ngspice (named when a header says so) */
} ngs_raw_dialect;

/* How ngspice formatted the plot: its two RAW writers differ in details, which the
 * writer reproduces so that a plot read from either comes back byte for byte. */
typedef enum {
    NGS_RAW_STYLE_BATCH = 0, /* `ngspice -b -r` (outitf.c): "No. Points: 16      " padded
                                to 8, "\tgrid=3", ASCII points "0\t\tv\n\tv\n" */
    NGS_RAW_STYLE_WRITE = 1  /* the `write` command (rawfile.c): "No. Points: 16",
                                " grid=3", ASCII points " 0\tv\n\tv\n" and a blank line */
} ngs_raw_style;

typedef enum {
    NGS_RAW_F64 = 0, /* one float64 */
    NGS_RAW_F32 = 1, /* one float32 (LTspice traces) */
    NGS_RAW_C128 = 2 /* complex: two float64 (re, im) */
} ngs_raw_storage;

/* One header line "Key: value". Lines without a colon (QSPICE ".param ...") have
 * value NULL and the whole line in key. */
typedef struct ngs_raw_line {
    const char *key;
    const char *value; /* text after "Key:" less one leading space, as written */
} ngs_raw_line;

typedef struct ngs_raw_var {
    int index;              /* position in the Variables: list, 0 = scale */
    const char *name;       /* "time", "v(out)", "i(v1)" */
    const char *type;       /* "time", "voltage", "current", "frequency", ... */
    const char *params;     /* what follows the type, e.g. "grid=3"; "" when none */
    ngs_raw_storage storage;
    int is_complex;         /* 1: two doubles (re, im) per point in what reads return */
    int column;             /* index of its first double in a row from ngs_raw_read_rows */
    uint32_t byte_offset;   /* binary, row-major: offset of its value within a row */
} ngs_raw_var;

typedef struct ngs_raw_plot {
    const char *title;      /* "" when absent (Xyce writes Title/Date only once: inherited) */
    const char *date;
    const char *plotname;   /* "Transient Analysis", "AC Analysis", ... */
    const char *flags;      /* the Flags: text as written ("real", "complex forward log") */
    const char *command;    /* first Command: line, "" when none */
    ngs_raw_dialect dialect;
    ngs_raw_encoding encoding;
    ngs_raw_style style;     /* WRITE when No. Points was written unpadded */
    int is_complex;         /* Flags has "complex" */
    int is_double;          /* Flags has "double" (LTspice: traces are float64) */
    int fastaccess;         /* Flags has "fastaccess": data stored vector after vector */
    int stepped;            /* Flags has "stepped" (LTspice .step) */

    int nvars;
    const ngs_raw_var *vars; /* vars[0] is the scale (time, frequency, sweep) */
    int row_doubles;         /* doubles per row returned by ngs_raw_read_rows */
    uint32_t row_bytes;      /* binary: bytes per stored point */

    uint64_t npoints;          /* complete points present: what the read functions deliver */
    uint64_t npoints_declared; /* "No. Points" as written (0 when blank) */
    int truncated;             /* data ends before the declared count (at the end of the
                                  file, or where the next plot's header starts) or inside
                                  a point */
    const char *data_error;    /* "" or why an ASCII plot's data stop early, without the
                                  path ("byte 900 (line 40): '1.2.3' is not a number (point
                                  7, v(a))"): npoints counts the points before it, and
                                  truncated is set */
    int in_progress;           /* "No. Points" still 0/blank in the last plot (writer still
                                  running, or killed): npoints was counted from the data
                                  present (in an earlier plot the data end at the next
                                  header, and the plot is not in progress) */

    uint64_t header_offset;  /* byte where this plot's header starts */
    uint64_t data_offset;    /* byte where its data starts ("Binary:"/"Values:" + newline) */
    uint64_t data_bytes;     /* bytes of data holding the npoints complete points */

    size_t nlines;           /* every header line except the Variables: list, in file order */
    const ngs_raw_line *lines;
} ngs_raw_plot;

typedef struct ngs_raw_file_info {
    const char *path;
    uint64_t size;             /* bytes */
    int utf16;                 /* headers are UTF-16LE (LTspice) */
    size_t nplots;
    int header_truncated;      /* the file ends inside the header of one more plot */
    /* Bytes that are not a plot, after the last plot or between two plots (the plots
     * after them are read), or text after an ASCII plot's declared points (counted when
     * ngs_raw_plot_info first reads that plot): where the first such run starts (0:
     * none), how many bytes in all, and in how many runs. */
    uint64_t trailing_offset;
    uint64_t trailing_bytes;
    size_t skipped_gaps;
    /* Plot headers that could not be parsed (a corrupt count, a damaged line) while
     * others could: each is skipped with its data up to the next plot header, and the
     * plots around it are read. How many, where the first starts, how many bytes in all,
     * the number in the file of the first (1-based, counting the plots read before it)
     * and why it failed, without the path ("byte 412 (line 9): 'No. Variables' is not a
     * number"; "" when none). A file whose every header fails is refused as before. */
    size_t bad_headers;
    uint64_t bad_offset;
    uint64_t bad_bytes;
    size_t bad_plotno;
    const char *bad_error;
} ngs_raw_file_info;

typedef struct ngs_raw_reader ngs_raw_reader;

/* Opens and maps path and parses every plot header. On failure *r is NULL and err
 * (when not NULL) holds e.g. "bad.raw: byte 412 (line 9): 'No. Variables' is not a
 * number". NGS_ERR_IO (cannot open/map), NGS_ERR_FORMAT, NGS_ERR_NOMEM, NGS_ERR_ARG. */
int ngs_raw_open(ngs_raw_reader **r, const char *path, char *err, size_t errlen);

/* The same over a caller's buffer, which must outlive the reader (nothing is copied).
 * name is used in messages. */
int ngs_raw_open_memory(ngs_raw_reader **r, const void *data, size_t size,
                        const char *name, char *err, size_t errlen);

void ngs_raw_close(ngs_raw_reader *r);

const ngs_raw_file_info *ngs_raw_info(const ngs_raw_reader *r);
size_t ngs_raw_nplots(const ngs_raw_reader *r);

/* Descriptor of one plot, valid until ngs_raw_close. For an ASCII plot the first call
 * scans its data once (to count points, check every value and build a sparse index of
 * every Kth point, at most 16 Ki entries); a value that is not a number ends the plot
 * there (data_error says where, truncated is set): the points before it stay readable. */
int ngs_raw_plot_info(ngs_raw_reader *r, size_t plot, const ngs_raw_plot **out);

/* Index of the variable named name (case-insensitive), or -1. */
int ngs_raw_find_var(const ngs_raw_plot *plot, const char *name);

/* Reads count points of one variable, starting at point first, as doubles: count
 * values, or 2*count (re, im interleaved) for a complex variable. first + count must
 * not exceed npoints (NGS_ERR_ARG). float32 values are widened; LTspice's time scale
 * comes back as its absolute value (LTspice sets the sign bit on compressed points).
 * An ASCII value that is not a number (e.g. "1.2.3") is found by the first access
 * (ngs_raw_plot_info), which ends the plot before its point (data_error). */
int ngs_raw_read_vector(ngs_raw_reader *r, size_t plot, int var, uint64_t first,
                        size_t count, double *out);

/* Reads count rows of all variables starting at point first: count * row_doubles
 * doubles, variable j of row i at out[i * row_doubles + vars[j].column]. Sequential
 * calls (first = previous first + count) continue where the last one stopped. */
int ngs_raw_read_rows(ngs_raw_reader *r, size_t plot, uint64_t first, size_t count,
                      double *out);

/* Message of the last failed call on r ("" when none). */
const char *ngs_raw_last_error(const ngs_raw_reader *r);

/* ---- writer ----------------------------------------------------------------------- */
typedef struct ngs_raw_writer ngs_raw_writer;

/* Creates (or truncates) path; append = 1 adds plots after the existing content. */
int ngs_raw_writer_open(ngs_raw_writer **w, const char *path, int append,
                        char *err, size_t errlen);

/* Starts a plot. Uses from plot: title, date, plotname, flags, nvars and vars (name,
 * type, params, is_complex), lines (when nlines > 0: the header lines to write, in that
 * order; Title, Date, Plotname, Flags, No. Variables and No. Points take their values
 * from the fields above and the data written), is_complex, style and npoints.
 * Without lines the header is ngspice's: Title, Date, Plotname, Flags, No. Variables,
 * No. Points.
 * The point count is filled in when the plot ends. STYLE_BATCH keeps "0" padded to 8
 * characters for it, or to the digits of npoints when that is larger (give the
 * expected count when it may reach 10^8). STYLE_WRITE, which has no padding, writes
 * npoints at once and corrects it at the end only when the real count has no more
 * digits (padded with blanks then).
 * The data is always written ngspice-style (float64, row-major), so a "fastaccess" flag
 * and Command: lines naming LTspice or QSPICE, which would make readers expect another
 * layout, are left out. */
int ngs_raw_writer_begin_plot(ngs_raw_writer *w, const ngs_raw_plot *plot,
                              ngs_raw_encoding encoding);

/* encoding NGS_RAW_NODATA writes what ngspice leaves for an analysis that stopped before
 * its first point: the header up to "Variables:" (No. Variables from lines when nvars is
 * 0), no list and no data; write_rows then refuses rows. */

/* Appends nrows rows; each row has one double per real variable and two (re, im) per
 * variable whose is_complex is set, in variable order (the layout ngs_raw_read_rows
 * returns). In a complex plot real variables are written with a zero imaginary part. */
int ngs_raw_writer_write_rows(ngs_raw_writer *w, const double *rows, size_t nrows);

/* Ends the plot: fills in its No. Points. */
int ngs_raw_writer_end_plot(ngs_raw_writer *w);

/* Writes out what is buffered; on failure last_error says why (close cannot: it frees
 * w), e.g. "write failed: No space left on device". */
int ngs_raw_writer_flush(ngs_raw_writer *w);

/* Ends an open plot, flushes and closes; frees w in every case. */
int ngs_raw_writer_close(ngs_raw_writer *w);

const char *ngs_raw_writer_last_error(const ngs_raw_writer *w);

#ifdef __cplusplus
}
#endif
/* Length of the key of a RAW header line ("No. Points:" -> 10), 0 when the line has
 * none: a letter, then letters, digits, blanks, '.', '_' or '-', then ':'. */
size_t ngs_raw_header_key_length(const char *line);

#endif /* NGS_STORAGE_RAW_H */
