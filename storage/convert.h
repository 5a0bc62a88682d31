/*
 * convert.h - RAW -> HDF5 converter and HDF5 -> RAW exporter (`ngscale convert`,
 * `ngscale export`).
 *
 * Users hold archives of RAW files of any size: the converter streams a RAW file
 * (storage/raw.h's mmap reader, a few MiB of rows at a time) into the same HDF5 schema
 * as `ngscale run` (storage/SCHEMA.md) through the streaming writer, compressing on
 * every core, in bounded memory. It keeps what the RAW writer needs to give the same
 * bytes back ("RAW provenance attributes" in SCHEMA.md), so RAW -> HDF5 -> RAW is
 * byte-identical for files ngspice wrote. The exporter turns any run of an ngscale
 * file back into an ngspice RAW file (binary or ASCII) that ngspice can `load`; a run
 * without provenance (from `ngscale run`) gets ngspice's own header layout.
 *
 * Every function returns NGS_OK or a negative ngs_status code (plugin/ngscale.h); err,
 * when given, then says what failed and where (for RAW input: byte offset and line).
 */
#ifndef NGS_STORAGE_CONVERT_H
#define NGS_STORAGE_CONVERT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "ngscale.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ngs_convert_options {
    ngs_codec codec;     /* default NGS_CODEC_ZSTD; the lossy ones (bounded, bitround)
                            work too, but then the way back gives other bytes */
    int level;           /* codec level; 0 = codec default */
    ngs_lossy_options lossy; /* bounds of the lossy codecs (plugin/ngscale.h) */
    const char *group;   /* run group to create; NULL: "run" */
    int append;          /* 1: add the group to an existing ngscale file */
    int threads;         /* encoder threads; 0 = every core (nothing else runs meanwhile) */
    size_t chunk_points; /* points per HDF5 chunk; 0 = automatic (as `ngscale run`) */
    size_t read_bytes;   /* rows read from the RAW file per step; 0 = 1 MiB */
    /* Set (by a signal handler, say) to stop between steps: NGS_ERR_INTERRUPTED; a new
     * file keeps what was converted, the run and plot saying "interrupted" (a file that
     * was there is left as it was, see ngs_convert_raw_to_h5). */
    const volatile sig_atomic_t *stop;
} ngs_convert_options;

void ngs_convert_options_init(ngs_convert_options *options);

/* What a conversion or an export did. */
typedef struct ngs_convert_report {
    int plots;              /* plots written */
    uint64_t points;        /* points written, over all plots */
    uint64_t bytes_in;      /* size of the input file */
    uint64_t bytes_out;     /* size of the output file when done */
    double seconds;         /* wall time */
    /* convert: the RAW file ends early (cut inside a plot's data or inside a header, or
     * a plot still "in progress" with No. Points 0): every complete point was converted
     * and the run and that plot say status "incomplete", with the count in the message;
     * or a plot header could not be read: the other plots were converted, the run says
     * "incomplete" and the message where and why (ngs_raw_file_info's bad_*).
     * export: the run exported (or one of its plots) was not "complete" in the HDF5
     * file; the message says so, with the points the RAW file holds. */
    int truncated;
    uint64_t skipped_bytes; /* input bytes not converted (partial point, cut header,
                               bytes after the last plot that are not a plot) */
    char message[512];      /* why truncated or what was skipped; "" when neither */
} ngs_convert_report;

/* Converts every plot of raw_path into one run group of h5_path (created, or added to
 * it with options->append). opts and report may be NULL (defaults; no report).
 *
 * Truncated input is not an error: the function returns NGS_OK with report->truncated
 * set (and the file says status "incomplete"), so that the caller decides; `ngscale
 * convert` should print report->message and exit non-zero (see SCHEMA.md).
 * Errors: NGS_ERR_ARG (NULL path, group already in the file, h5_path is raw_path),
 * NGS_ERR_IO (cannot read the RAW file, or it shrank while being read; cannot create the
 * HDF5 file; a file at h5_path that is not HDF5, or that another program has open),
 * NGS_ERR_FORMAT (not a RAW file, corrupt header, an ASCII value that is not a number:
 * err has the byte offset and line), NGS_ERR_HDF5, NGS_ERR_CODEC, NGS_ERR_NOMEM.
 *
 * What a failure leaves: without append, an HDF5 file already at h5_path is replaced
 * only by a conversion that finishes (truncated input included): the new file is
 * written beside it ("h5_path.tmp-PID-N") and renamed over it, so a failure or an
 * interrupt leaves it as it was, removes the unfinished file and says so in err (a
 * killed process leaves that file beside it). A new file keeps what was converted, its
 * run's status "failed" (or "incomplete" when stopped) with the message, like `ngscale
 * run`. With append the group is added in place: a failure marks it "failed", and the
 * runs already there stay as they were. */
int ngs_convert_raw_to_h5(const char *raw_path, const char *h5_path,
                          const ngs_convert_options *opts, ngs_convert_report *report,
                          char *err, size_t errlen);

/* How an export encodes the plots' data. */
typedef enum {
    NGS_EXPORT_AS_READ = 0, /* each plot as the RAW file it was converted from had it
                               (its raw_encoding); binary when it has none (`ngscale run`) */
    NGS_EXPORT_ASCII = 1,   /* every plot ASCII ("Values:") */
    NGS_EXPORT_BINARY = 2   /* every plot binary ("Binary:") */
} ngs_export_encoding;

/* Writes one run of h5_path as an ngspice RAW file: every plot in order, encoded as
 * encoding says. group NULL: the file's only run group, else "run". Data are read
 * a block of chunks at a time, so memory does not grow with the file. The file is
 * written beside raw_path and renamed over it only when the export succeeds, so a
 * failure leaves what was at raw_path as it was. An output that exists and is not a
 * regular file (a pipe, /dev/stdout, a FIFO, a device) is written in place.
 * Errors: NGS_ERR_ARG (no such group; NULL path), NGS_ERR_IO (cannot open either file),
 * NGS_ERR_FORMAT (not an ngscale file, a dataset that is neither float64 nor {r, i}),
 * NGS_ERR_HDF5, NGS_ERR_NOMEM. */
int ngs_export_h5_to_raw(const char *h5_path, const char *group, const char *raw_path,
                         ngs_export_encoding encoding, char *err, size_t errlen);

/* The same, filling report (may be NULL). */
int ngs_export_h5_to_raw_report(const char *h5_path, const char *group, const char *raw_path,
                                ngs_export_encoding encoding, ngs_convert_report *report,
                                char *err, size_t errlen);

/* Analysis type for a RAW "Plotname:" ("Transient Analysis" -> "tran", "AC Analysis" ->
 * "ac", ...; else its first word in lower case). Writes at most n bytes to out. */
int ngs_convert_analysis_name(const char *plotname, char *out, size_t n);

#ifdef __cplusplus
}
#endif
#endif /* NGS_STORAGE_CONVERT_H */
