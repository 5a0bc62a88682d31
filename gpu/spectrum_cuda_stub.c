/*
 * spectrum_cuda_stub.c - the CUDA backend's C interface when the library is built
 * without CUDA: the probe says so and every other call fails cleanly, so the engine
 * falls back to FFTW (AUTO) or reports the reason (GPU).
 */
#include "gpu/spectrum_cuda.h"

#include <stdio.h>

#include "ngscale.h"

static const char reason[] = "built without CUDA (NGSCALE_CUDA=OFF or no CUDA toolkit found)";

static int no_cuda(char *err, size_t len)
{
    if (err && len)
        snprintf(err, len, "%s", reason);
    return NGS_ERR_STATE;
}

int ngs_cuda_probe(int device, char *msg, size_t msg_len)
{
    (void)device;
    no_cuda(msg, msg_len);
    return 0;
}

int ngs_cuda_create(ngs_cuda **cuda, int device, char *err, size_t err_len)
{
    (void)device;
    if (cuda)
        *cuda = NULL;
    return no_cuda(err, err_len);
}

void ngs_cuda_destroy(ngs_cuda *cuda) { (void)cuda; }

int ngs_cuda_reserve(ngs_cuda *cuda, size_t n, size_t batch, char *err, size_t err_len)
{
    (void)cuda, (void)n, (void)batch;
    return no_cuda(err, err_len);
}

int ngs_cuda_prepare(ngs_cuda *cuda, size_t n, size_t count, char *err, size_t err_len)
{
    (void)cuda, (void)n, (void)count;
    return no_cuda(err, err_len);
}

double *ngs_cuda_input(ngs_cuda *cuda, int slot)
{
    (void)cuda, (void)slot;
    return NULL;
}

double *ngs_cuda_output(ngs_cuda *cuda, int slot)
{
    (void)cuda, (void)slot;
    return NULL;
}

int ngs_cuda_submit(ngs_cuda *cuda, int slot, size_t n, size_t count, char *err, size_t err_len)
{
    (void)cuda, (void)slot, (void)n, (void)count;
    return no_cuda(err, err_len);
}

int ngs_cuda_wait(ngs_cuda *cuda, int slot, char *err, size_t err_len)
{
    (void)cuda, (void)slot;
    return no_cuda(err, err_len);
}

void ngs_cuda_range_push(const char *name) { (void)name; }
void ngs_cuda_range_pop(void) {}

