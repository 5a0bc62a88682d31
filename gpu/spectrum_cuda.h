/*
 * spectrum_cuda.h - the only door from C into the CUDA backend (library-internal).
 *
 * The engine keeps `nslots` sub-batches in flight: slot s owns pinned host buffers, device
 * buffers, a CUDA stream and its own cuFFT plans (a plan's work area must not be shared
 * by two streams). While the GPU copies and transforms slot s, the CPU resamples into
 * slot s+1 and post-processes what slot s-1 brought back.
 *
 * spectrum_cuda.cu is a module of its own (libngscale-cuda.so, linked to cuFFT and the CUDA
 * runtime); spectrum_cuda_load.c implements the calls below by loading it on the first
 * probe or create. Where it cannot be loaded (built without CUDA, no CUDA libraries on
 * this machine) the probe says why and every other call fails cleanly, so the engine
 * falls back to FFTW (AUTO) or reports the reason (GPU).
 * Functions return NGS_OK or a negative NGS_ERR_* (device errors: NGS_ERR_STATE,
 * device allocation: NGS_ERR_NOMEM) and write a message into err.
 */
#ifndef NGSCALE_GPU_SPECTRUM_CUDA_H
#define NGSCALE_GPU_SPECTRUM_CUDA_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NGS_CUDA_SLOTS 3

typedef struct ngs_cuda ngs_cuda;

/* 1 when device `device` is usable, 0 otherwise; msg gets its name or the reason. */
int ngs_cuda_probe(int device, char *msg, size_t msg_len);

int ngs_cuda_create(ngs_cuda **cuda, int device, char *err, size_t err_len);
void ngs_cuda_destroy(ngs_cuda *cuda);

/* Makes room in every slot for batch x n inputs and batch x (n/2+1) complex outputs. */
int ngs_cuda_reserve(ngs_cuda *cuda, size_t n, size_t batch, char *err, size_t err_len);
/* Ensures plans for `count` transforms of n points exist (all slots). */
int ngs_cuda_prepare(ngs_cuda *cuda, size_t n, size_t count, char *err, size_t err_len);
double *ngs_cuda_input(ngs_cuda *cuda, int slot);  /* pinned, batch x n */
double *ngs_cuda_output(ngs_cuda *cuda, int slot); /* pinned, batch x (n/2+1) x (re, im) */
/* Queues on the slot's stream: copy count x n in, D2Z transforms, copy the result out. */
int ngs_cuda_submit(ngs_cuda *cuda, int slot, size_t n, size_t count, char *err, size_t err_len);
/* Waits until the slot's output is on the host. */
int ngs_cuda_wait(ngs_cuda *cuda, int slot, char *err, size_t err_len);

/* NVTX range around a CPU phase (resample, post-process) so a profile shows it next to
 * the copies and transforms; no-ops without CUDA. */
void ngs_cuda_range_push(const char *name);
void ngs_cuda_range_pop(void);

/* What the module exports: NGS_CUDA_MODULE_ENTRY() returns its calls, version first (a
 * module from another build of ngscale is refused rather than called wrongly). */
#define NGS_CUDA_API_VERSION 1
#define NGS_CUDA_MODULE_ENTRY ngs_cuda_module_v1
#define NGS_CUDA_MODULE_SYMBOL "ngs_cuda_module_v1"
#define NGS_CUDA_MODULE_NAME "libngscale-cuda.so"
typedef struct {
    int version;
    int (*probe)(int device, char *msg, size_t msg_len);
    int (*create)(ngs_cuda **cuda, int device, char *err, size_t err_len);
    void (*destroy)(ngs_cuda *cuda);
    int (*reserve)(ngs_cuda *cuda, size_t n, size_t batch, char *err, size_t err_len);
    int (*prepare)(ngs_cuda *cuda, size_t n, size_t count, char *err, size_t err_len);
    double *(*input)(ngs_cuda *cuda, int slot);
    double *(*output)(ngs_cuda *cuda, int slot);
    int (*submit)(ngs_cuda *cuda, int slot, size_t n, size_t count, char *err, size_t err_len);
    int (*wait)(ngs_cuda *cuda, int slot, char *err, size_t err_len);
    void (*range_push)(const char *name);
    void (*range_pop)(void);
} ngs_cuda_api;

#ifdef __cplusplus
}
#endif
#endif /* NGSCALE_GPU_SPECTRUM_CUDA_H */
