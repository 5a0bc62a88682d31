/*
 * record.h - recordings of a run's events: what a cache entry holds.
 *
 * A recorder is a sink: it serializes PLOT_BEGIN (the whole plot descriptor),
 * ROWS (the doubles, bit for bit), PLOT_END and MESSAGE events into a zstd
 * stream, in bounded memory however long the run. ngs_replay() verifies a
 * recording's checksum first, then delivers the same event sequence to a hook, so
 * that the HDF5 writer and user hooks see what a real run would have shown them.
 * PROGRESS events are not recorded.
 *
 * File layout (all integers little-endian):
 *   header  16 bytes  "NGSCREC1", u32 format version (1), u32 flags (0)
 *   body    one zstd frame (with zstd's own content checksum) of records:
 *           'B' plot begin, 'R' rows, 'E' plot end, 'M' message, 'Z' end of stream
 *   footer  64 bytes  "NGSCEND1", u64 body bytes, u64 decompressed bytes,
 *           u64 events, 32-byte SHA-256 of every byte before it (header, body and
 *           the first 32 bytes of the footer)
 * The file is written under a temporary name and renamed into place on finish.
 */
#ifndef NGS_CACHE_RECORD_H
#define NGS_CACHE_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include "ngscale.h"

#define NGS_RECORD_EVENTS (NGS_EV_PLOT_BEGIN | NGS_EV_ROWS | NGS_EV_PLOT_END | NGS_EV_MESSAGE)

typedef struct ngs_recorder ngs_recorder;

/* Starts a recording that will appear at path on ngs_recorder_finish (a temporary
 * file beside it holds the data until then). level: zstd level 1..22, 0 = default (1).
 * Returns NGS_OK, NGS_ERR_ARG (no path, level out of range), NGS_ERR_IO (err says
 * which file), NGS_ERR_NOMEM or NGS_ERR_CODEC. */
int ngs_recorder_open(ngs_recorder **rec, const char *path, int level, char *err, size_t errlen);

/* Records one event (PROGRESS is ignored). Returns NGS_OK, or the first failure
 * (later events are then ignored, and ngs_recorder_finish reports it): NGS_ERR_IO,
 * NGS_ERR_CODEC, NGS_ERR_NOMEM, NGS_ERR_ARG (a ROWS/PLOT_END event for a plot that
 * was not begun, or a plot whose columns are not the ones ngs_plot_desc_new computes). */
int ngs_recorder_event(ngs_recorder *rec, const ngs_event *event);

/* An ngs_hook_fn / ngs_sink callback (user = the recorder) that never stops the
 * run: a failing recording is only reported by ngs_recorder_finish. */
int ngs_recorder_sink(const ngs_event *event, void *user);

/* Writes the footer, renames the file into place and frees rec. Returns NGS_OK, or
 * the first failure (then no file is left behind). */
int ngs_recorder_finish(ngs_recorder *rec, char *err, size_t errlen);

/* Frees rec and removes the partial file. rec may be NULL. */
void ngs_recorder_abort(ngs_recorder *rec);

typedef struct ngs_recording_info {
    uint64_t file_bytes;   /* size of the file */
    uint64_t raw_bytes;    /* decompressed size of the body */
    uint64_t events;       /* events recorded */
    unsigned char sha256[32]; /* the footer's checksum: identifies the content */
} ngs_recording_info;

/* Checks a recording's structure and checksum without decompressing it. info may be
 * NULL. Returns NGS_OK, NGS_ERR_IO (cannot read) or NGS_ERR_FORMAT (truncated,
 * corrupt, not a recording). */
int ngs_recording_verify(const char *path, ngs_recording_info *info, char *err, size_t errlen);
int ngs_recording_verify_fd(int fd, ngs_recording_info *info, char *err, size_t errlen);

/* Checks only the header and footer (cheap: two small reads): the file has the
 * right size for its footer. info may be NULL. NGS_OK, NGS_ERR_IO, NGS_ERR_FORMAT. */
int ngs_recording_peek_fd(int fd, ngs_recording_info *info);

/* Verifies the whole file, then calls fn for every recorded event in order (ROWS
 * may come in other batch sizes; first_row is exact). Plot descriptors are rebuilt
 * with ngs_plot_desc_new. Returns NGS_OK; NGS_ERR_IO / NGS_ERR_FORMAT before any
 * event was delivered when the file cannot be read or fails verification;
 * NGS_ERR_INTERRUPTED when fn returned non-zero (nothing more is delivered);
 * NGS_ERR_NOMEM, or NGS_ERR_FORMAT / NGS_ERR_CODEC if the file changed after it
 * was verified. */
int ngs_replay(const char *path, ngs_hook_fn fn, void *user, char *err, size_t errlen);
/* The same on an open file (read from offset 0; the offset is left anywhere). */
int ngs_replay_fd(int fd, ngs_hook_fn fn, void *user, char *err, size_t errlen);

/* Writes all n bytes to fd (retrying short writes and EINTR): 0, or -1 with errno. */
int ngs_write_all(int fd, const void *p, size_t n);

#endif
