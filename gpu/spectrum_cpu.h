/*
 * spectrum_cpu.h - FFTW backend of the spectral engine (library-internal).
 *
 * Holds one input and one output buffer for a sub-batch of `batch` vectors of n points
 * and a small cache of FFTW many-plans keyed by (n, count). Call ngs_fftw_prepare()
 * before filling the input: FFTW_MEASURE planning overwrites the buffers.
 */
#ifndef NGSCALE_GPU_SPECTRUM_CPU_H
#define NGSCALE_GPU_SPECTRUM_CPU_H

#include <stddef.h>

typedef struct ngs_fftw ngs_fftw;

int ngs_fftw_create(ngs_fftw **fftw, int threads, int measure, const char *wisdom_path,
                    char *err, size_t err_len);
void ngs_fftw_destroy(ngs_fftw *fftw);

/* Makes room for batch x n inputs and batch x (n/2+1) complex outputs. */
int ngs_fftw_reserve(ngs_fftw *fftw, size_t n, size_t batch, char *err, size_t err_len);
/* Ensures a plan for `count` (<= batch) transforms of n points exists. */
int ngs_fftw_prepare(ngs_fftw *fftw, size_t n, size_t count, char *err, size_t err_len);
double *ngs_fftw_input(ngs_fftw *fftw);  /* batch x n doubles */
double *ngs_fftw_output(ngs_fftw *fftw); /* batch x (n/2+1) x (re, im) */
/* Transforms the first `count` vectors of the input (a prepared (n, count)). */
int ngs_fftw_execute(ngs_fftw *fftw, size_t n, size_t count, char *err, size_t err_len);

#endif /* NGSCALE_GPU_SPECTRUM_CPU_H */
