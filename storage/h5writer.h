/*
 * h5writer.h - streaming HDF5 writer for ngscale's schema (storage/SCHEMA.md).
 *
 * One writer per file. Calls come from one thread (the dispatcher). Rows arrive
 * row-major, as ngspice produces them; the writer transposes them into one
 * column buffer per vector, compresses full chunks on all cores and writes them
 * with H5Dwrite_chunk. Data reach the file at least every flush interval, so a
 * killed run leaves a file readable up to its last flush.
 */
#ifndef NGS_STORAGE_H5WRITER_H
#define NGS_STORAGE_H5WRITER_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "ngscale.h"

typedef struct ngs_h5_writer ngs_h5_writer;

typedef struct ngs_h5_options {
    ngs_codec codec;
    int level;               /* 0: codec default */
    int swmr;                /* let readers follow the file live */
    int append;              /* open an existing ngscale file and add runs */
    size_t chunk_points;     /* 0: automatic */
    double flush_interval_s; /* <= 0: only at plot end */
    int encoder_threads;     /* 0: cores - 1 (one core stays with the simulation) */
    ngs_lossy_options lossy; /* codec bounded / bitround */
    /* An HDF5 file id (hid_t) the caller keeps open, 0: none. The writer adds its
     * run there and never switches it to SWMR, flushes or closes it: the caller
     * does (a batch writes its jobs into one file this way). */
    int64_t shared_file;
    /* With shared_file, optional: a mutex every writer of that file holds around
     * its stretches of HDF5 calls (never while compressing), so that writers on
     * several threads take turns per stretch instead of per call: HDF5's own lock
     * made them wake each other at nearly every call. */
    pthread_mutex_t *shared_lock;
} ngs_h5_options;

void ngs_h5_options_init(ngs_h5_options *options);

#define NGS_H5_CHUNK_POINTS_MAX 16777216u /* 256 MiB per complex chunk, far below HDF5's 4 GiB */
#define NGS_H5_ENCODER_THREADS_MAX 1024

/* NGS_OK, or NGS_ERR_ARG with the reason in err: an unknown codec, a level outside
 * its codec's range, lossy parameters that are not finite and positive (or given to
 * a codec that ignores them), chunk_points over NGS_H5_CHUNK_POINTS_MAX, a negative
 * or huge encoder_threads, a NaN flush interval. ngs_h5_open checks the same. */
int ngs_h5_options_check(const ngs_h5_options *options, char *err, size_t errlen);

/* 1 when path is a non-empty regular file that is not HDF5 (a netlist, notes): a
 * writer never replaces one (ngs_h5_open fails with NGS_ERR_IO), and says so. */
int ngs_h5_is_foreign_file(const char *path);

/* 1 when another open file holds a lock on path: an HDF5 reader or plain writer (a
 * running batch), or an ngscale writer (which holds its own lock in SWMR mode too). */
int ngs_h5_file_in_use(const char *path);

/* path opened read-only for a reader (an HDF5 file id): plainly, else in SWMR-read mode
 * (a run still writing it, or a killed writer's file: *live = 1). Negative when it does
 * not open; *busy = 1 then when a writer without SWMR holds it (a running batch), and
 * cut (may be NULL) says so when the file is cut short (ngs_h5_open_failed_truncated),
 * else "". */
int64_t ngs_h5_open_read(const char *path, int *live, int *busy, char *cut, size_t cutlen);

/* Right after an H5Fopen that failed: 1 when HDF5 found the file shorter than its
 * superblock says (a copy or download cut short; no killed writer's, which h5clear
 * mends), with why saying so in a sentence that quotes HDF5; else 0 and why "". */
int ngs_h5_open_failed_truncated(char *why, size_t n);

/* NGS_OK when a writer may replace path: nothing there, or an HDF5 file that no other
 * program has open; else NGS_ERR_IO and why in err. ngs_h5_open checks it without
 * append; a caller that writes a file elsewhere to rename it over path checks it too. */
int ngs_h5_check_replace(const char *path, char *err, size_t errlen);

/* 1 when a writer that will rename its file over path is at work (a batch or a
 * conversion replacing it, see ngs_h5_temp_beside): tmp gets that file's name. */
int ngs_h5_replacement_of(const char *path, char *tmp, size_t tmplen);

/* After a write to file failed (a full disk, say): no later write reaches it, its
 * closing flush included, so it keeps the state its last flush left (which HDF5
 * would otherwise overwrite with metadata pointing past the data that did not fit).
 * HDF5's sec2 driver on Linux only; a no-op otherwise. The id is still to be closed
 * (that fails). */
void ngs_h5_freeze_file(int64_t file);

/* Creates the empty file that is written before it is renamed over path, so that a
 * failure leaves path as it was: beside it (a rename cannot cross file systems), named
 * "path.tmp-PID-N", with the mode path has, or a new file's. A symlink at path is
 * followed (*dest: the file to replace, as writing through the link would). The
 * caller frees *tmp and *dest. NGS_OK, NGS_ERR_NOMEM, or NGS_ERR_IO (err says why). */
int ngs_h5_temp_beside(const char *path, char **tmp, char **dest, char *err, size_t errlen);

/* path names the file (with shared_file, only in messages). Without append, an HDF5
 * file there is replaced, unless another program has it open (NGS_ERR_IO); any other
 * file is left alone (NGS_ERR_IO): ngs_h5_check_replace. */
int ngs_h5_open(ngs_h5_writer **writer, const char *path, const ngs_h5_options *options,
                char *err, size_t errlen);
/* Finishes what is pending, marks an unfinished run incomplete, closes the file
 * (unless it is the caller's shared_file). Ends any ngs_h5_hold of the writer. */
int ngs_h5_close(ngs_h5_writer *writer);

/* The file's metrics table, which every `ngscale spectrum` call rewrites (deleting
 * whatever has its name): no run may be named so. */
#define NGS_H5_SPECTRUM_TABLE "spectrum_metrics"

/* A run is one group. Its status attribute says "incomplete" until run_end. */
int ngs_h5_run_begin(ngs_h5_writer *writer, const char *group);
int ngs_h5_run_attr_str(ngs_h5_writer *writer, const char *key, const char *value);
int ngs_h5_run_attr_f64(ngs_h5_writer *writer, const char *key, double value);
int ngs_h5_run_attr_i64(ngs_h5_writer *writer, const char *key, int64_t value);
/* status: NGS_OK -> "complete", NGS_ERR_INTERRUPTED/TIMEOUT -> "incomplete", else "failed". */
int ngs_h5_run_end(ngs_h5_writer *writer, int status, const char *message);

/* One plot (analysis) of the current run; the descriptor is copied. */
int ngs_h5_plot_begin(ngs_h5_writer *writer, const ngs_plot_desc *plot);
int ngs_h5_rows(ngs_h5_writer *writer, const double *rows, size_t nrows);
int ngs_h5_plot_end(ngs_h5_writer *writer, int status, const char *message);

/* Writes buffered points and flushes the file now / if the interval has passed. */
int ngs_h5_flush(ngs_h5_writer *writer);
int ngs_h5_tick(ngs_h5_writer *writer);

/* Holds options.shared_lock (if any) across several of the calls above, so that
 * they run as one stretch; calls nest, and ngs_h5_close ends them. */
void ngs_h5_hold(ngs_h5_writer *writer);
void ngs_h5_release(ngs_h5_writer *writer);

/* HDF5 holds ~13 KB per open dataset: a plot of more vectors than this has each of
 * its datasets open only while it is written or read (by the writer, the exporter),
 * so that memory stays flat at 20k or 100k vectors. Up to this, datasets stay open
 * for the plot, which saves an open and a close per vector and block. */
#define NGS_H5_OPEN_VECTORS_MAX 1024

/* Sets the metadata cache of an HDF5 file (a hid_t) for a plot of nvec vectors: small
 * and fixed above NGS_H5_OPEN_VECTORS_MAX, HDF5's default otherwise. */
void ngs_h5_fit_cache(int64_t file, int nvec);

/* Last error text, "" when none. */
const char *ngs_h5_error(const ngs_h5_writer *writer);

/* Run status names used in the file. */
const char *ngs_h5_status_name(int status);

#endif
