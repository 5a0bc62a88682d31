/*
 * spectrum_h5.h - spectra of vectors stored in ngscale HDF5 files (`ngscale spectrum`,
 * `ngscale batch --spectrum`).
 *
 * ngs_spectrum_file() reads one vector and its time scale from the transient plot of
 * every selected run group (a batch file: every /job_NNNNNNNN group), analyses them
 * all as ONE batch of the spectral engine (gpu/spectrum.h), writes the results back into
 * the same file and prints a table. What it writes is described in storage/SCHEMA.md
 * ("Spectra"):
 *   /<run>/spectrum/<vector>/{frequency, amplitude, psd, harmonics_dbc, metrics}
 *   /spectrum_metrics          one row per (run, vector) analysed in the file
 * Running it again for the same vector replaces that vector's results in the runs it
 * analyses (other vectors and runs are kept; /spectrum_metrics is rebuilt).
 *
 * Library-internal API (not in ngscale.h). Returns NGS_OK or a negative NGS_ERR_* code;
 * err (may be NULL) gets the reason:
 *   NGS_ERR_ARG    bad option, no such vector / run / plot (the message lists what
 *                  there is), a record too short for the periods asked for, a plot
 *                  whose scale is not time (a DC sweep, an AC plot)
 *   NGS_ERR_IO     the file cannot be opened for writing (missing, read-only, open in
 *                  another program, still being written, or left by a killed writer: the message says to run
 *                  'h5clear -s --increment FILE', which also drops the stale free-space
 *                  records that 'h5clear -s' alone leaves and HDF5 cannot allocate with),
 *                  or truncated (cut short: said so, no h5clear advice)
 *   NGS_ERR_FORMAT an HDF5 file, but not an ngscale one, or a vector that is not a
 *                  real 1-D floating-point dataset (complex AC data have no such spectrum)
 *   NGS_ERR_STATE  backend "gpu" asked for and no CUDA device is usable
 *   NGS_ERR_INTERRUPTED  options->stop was set before anything was written
 *   NGS_ERR_HDF5, NGS_ERR_NOMEM
 */
#ifndef NGSCALE_GPU_SPECTRUM_H5_H
#define NGSCALE_GPU_SPECTRUM_H5_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "ngscale.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ngs_spectrum_file_options {
    /* Required. As ngspice accepts it, case-insensitive: "v(out)", "out" (= v(out)),
     * "V(OUT)", "i(vdd)", "vdd#branch" (= i(vdd)), or any other RAW name ("@r1[i]"). */
    const char *vector;
    /* Run groups to analyse ("run", "job_00000003"); nruns == 0: every run group of the
     * file whose transient plot holds the vector. A named run that cannot be analysed
     * is an error; with the default selection such runs are skipped (and listed). */
    const char *const *runs;
    size_t nruns;
    /* Plot group inside each run ("tran2"); NULL: the first transient plot (analysis
     * "tran", lowest index). */
    const char *plot;
    /* rect | hann | hamming | blackman | blackman-harris | flattop | kaiser[:beta]
     * (also rectangular, hanning, flat-top); NULL: blackman-harris. */
    const char *window;
    const char *resample; /* linear | cubic; NULL: cubic */
    const char *backend;  /* auto | cpu | gpu; NULL: auto */
    /* Hz; 0: found per run (largest non-DC bin, interpolated). */
    double fundamental;
    /* Whole periods of the fundamental analysed, taken from the end of the record.
     * 0: with a fundamental as many as fit, without one the whole record. With periods
     * but no fundamental, the fundamental is found first (one extra batch over the whole
     * records) and must agree across runs within 0.1 %. */
    unsigned periods;
    int harmonics; /* THD uses harmonics 2..harmonics (2..32); 0: 9 */
    size_t points; /* uniform points N (>= 4); 0: next power of two >= the input points */
    int threads;   /* FFTW / OpenMP threads; 0: all cores */
    /* 1: compute and print the table only; the file is opened read-only and left as it
     * was (a read-only file, or one that a reader such as h5py has open). */
    int no_write;
    /* Set (by a signal handler, say) to stop: looked at before the file is written,
     * which then stays as it was (NGS_ERR_INTERRUPTED). Writing, once begun, ends. */
    const volatile sig_atomic_t *stop;
} ngs_spectrum_file_options;

void ngs_spectrum_file_options_init(ngs_spectrum_file_options *options);

/* Analyses, writes back (unless no_write), and prints the table to table_out (NULL: no
 * table). */
int ngs_spectrum_file(const char *h5_path, const ngs_spectrum_file_options *options,
                      FILE *table_out, char *err, size_t errlen);

/* Parsers of the option strings (for early checks in front-ends). -1 when unknown. */
int ngs_spectrum_parse_window(const char *name, int *window, double *kaiser_beta);
int ngs_spectrum_parse_resample(const char *name);
int ngs_spectrum_parse_backend(const char *name);

#ifdef __cplusplus
}
#endif
#endif /* NGSCALE_GPU_SPECTRUM_H5_H */
