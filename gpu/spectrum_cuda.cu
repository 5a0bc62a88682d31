/*
 * spectrum_cuda.cu - cuFFT backend: batched D2Z transforms of sub-batches kept in flight
 * on NGS_CUDA_SLOTS streams.
 *
 * Only the FFT runs on the GPU; resampling, windowing, scaling and metrics stay on the
 * CPU (OpenMP) in spectrum.c, so this file has no kernels of its own and both backends
 * share every line of post-processing. Each slot owns pinned host buffers (so
 * cudaMemcpyAsync really is asynchronous and copies overlap the other slots' transforms),
 * device buffers, a non-blocking stream and one cuFFT plan per cached (n, count) shape:
 * a plan's work area belongs to one stream at a time.
 *
 * NVTX ranges mark the enqueue of transfers and transforms and the waits; with Nsight
 * Systems' CUDA trace they line up with the copies and kernels they launched.
 * Every entry point that touches the device saves and restores the caller's current one.
 *
 * Built as its own module (libngscale-cuda.so) that the library loads only when a spectrum
 * asks for the GPU (spectrum_cuda_load.c): linking cuFFT (~290 MB) into libngscale made
 * every ngscale process map it, and one without the CUDA libraries could not start at all.
 */
#include <cuda_runtime.h>
#include <cufft.h>
#include <nvtx3/nvToolsExt.h>
#include <nvtx3/nvToolsExtCudaRt.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gpu/spectrum_cuda.h"
#include "ngscale.h"

#define PLAN_CACHE 4

namespace {

struct plan_entry {
    size_t n, count;
    cufftHandle plan[NGS_CUDA_SLOTS];
    int valid;
    unsigned long used;
};

struct slot {
    cudaStream_t stream;
    double *h_in, *h_out; /* pinned */
    double *d_in;
    cufftDoubleComplex *d_out;
};

/* Makes `device` current and returns the caller's device (-1: nothing to restore).
 * Plain functions rather than an RAII guard: no destructors means no C++ unwinding
 * tables, so C programs link this object without libstdc++. */
int enter_device(int device)
{
    int prev = -1;
    if (cudaGetDevice(&prev) != cudaSuccess || prev == device)
        prev = -1;
    (void)cudaSetDevice(device);
    return prev;
}

void leave_device(int prev)
{
    if (prev >= 0)
        (void)cudaSetDevice(prev);
}

void set_err(char *err, size_t len, const char *what, const char *detail)
{
    if (err && len)
        snprintf(err, len, "cuda: %s: %s", what, detail);
}

int cuda_fail(cudaError_t e, char *err, size_t len, const char *what)
{
    set_err(err, len, what, cudaGetErrorString(e));
    (void)cudaGetLastError(); /* clear a non-sticky error so later calls can work */
    return e == cudaErrorMemoryAllocation ? NGS_ERR_NOMEM : NGS_ERR_STATE;
}

int cufft_fail(cufftResult r, char *err, size_t len, const char *what)
{
    char detail[64];
    const char *name = r == CUFFT_ALLOC_FAILED     ? "CUFFT_ALLOC_FAILED"
                       : r == CUFFT_INVALID_SIZE   ? "CUFFT_INVALID_SIZE"
                       : r == CUFFT_INVALID_VALUE  ? "CUFFT_INVALID_VALUE"
                       : r == CUFFT_EXEC_FAILED    ? "CUFFT_EXEC_FAILED"
                       : r == CUFFT_SETUP_FAILED   ? "CUFFT_SETUP_FAILED"
                       : r == CUFFT_INTERNAL_ERROR ? "CUFFT_INTERNAL_ERROR"
                                                   : "cufftResult";
    snprintf(detail, sizeof detail, "%s (%d)", name, (int)r);
    set_err(err, len, what, detail);
    return r == CUFFT_ALLOC_FAILED ? NGS_ERR_NOMEM : NGS_ERR_STATE;
}

} /* namespace */

struct ngs_cuda {
    int device;
    size_t n, batch;
    size_t cap_in, cap_out; /* doubles / complexes per slot */
    slot s[NGS_CUDA_SLOTS];
    plan_entry plans[PLAN_CACHE];
    unsigned long clock;
};

static int mod_probe(int device, char *msg, size_t msg_len)
{
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        cuda_fail(e, msg, msg_len, "cudaGetDeviceCount");
        return 0;
    }
    if (count == 0) {
        set_err(msg, msg_len, "cudaGetDeviceCount", "no CUDA device");
        return 0;
    }
    if (device < 0 || device >= count) {
        char d[64];
        snprintf(d, sizeof d, "device %d absent (%d present)", device, count);
        set_err(msg, msg_len, "probe", d);
        return 0;
    }
    cudaDeviceProp prop;
    if ((e = cudaGetDeviceProperties(&prop, device)) != cudaSuccess) {
        cuda_fail(e, msg, msg_len, "cudaGetDeviceProperties");
        return 0;
    }
    /* A context must come up too (a device can be present but busy or prohibited). */
    int prev = enter_device(device);
    e = cudaFree(0);
    leave_device(prev);
    if (e != cudaSuccess) {
        cuda_fail(e, msg, msg_len, "context creation");
        return 0;
    }
    if (msg && msg_len)
        snprintf(msg, msg_len, "device %d: %s, sm_%d%d, %.1f GiB", device, prop.name, prop.major,
                 prop.minor, (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0));
    return 1;
}

static void free_buffers(ngs_cuda *c)
{
    for (int i = 0; i < NGS_CUDA_SLOTS; i++) {
        slot *s = &c->s[i];
        if (s->stream)
            (void)cudaStreamSynchronize(s->stream);
        cudaFreeHost(s->h_in);
        cudaFreeHost(s->h_out);
        cudaFree(s->d_in);
        cudaFree(s->d_out);
        s->h_in = s->h_out = s->d_in = NULL;
        s->d_out = NULL;
    }
    c->cap_in = c->cap_out = c->n = c->batch = 0;
}

static void drop_plan(plan_entry *p)
{
    if (!p->valid)
        return;
    for (int i = 0; i < NGS_CUDA_SLOTS; i++)
        cufftDestroy(p->plan[i]);
    p->valid = 0;
}

static void mod_destroy(ngs_cuda *c)
{
    if (!c)
        return;
    int prev = enter_device(c->device);
    free_buffers(c);
    for (int i = 0; i < PLAN_CACHE; i++)
        drop_plan(&c->plans[i]);
    for (int i = 0; i < NGS_CUDA_SLOTS; i++)
        if (c->s[i].stream)
            cudaStreamDestroy(c->s[i].stream);
    leave_device(prev);
    free(c);
}

static int mod_create(ngs_cuda **out, int device, char *err, size_t err_len)
{
    if (!out)
        return NGS_ERR_ARG;
    *out = NULL;
    if (!mod_probe(device, err, err_len))
        return NGS_ERR_STATE;
    ngs_cuda *c = (ngs_cuda *)calloc(1, sizeof *c);
    if (!c)
        return NGS_ERR_NOMEM;
    c->device = device;
    int prev = enter_device(device);
    for (int i = 0; i < NGS_CUDA_SLOTS; i++) {
        cudaError_t e = cudaStreamCreateWithFlags(&c->s[i].stream, cudaStreamNonBlocking);
        if (e != cudaSuccess) {
            c->s[i].stream = NULL;
            int rc = cuda_fail(e, err, err_len, "cudaStreamCreate");
            leave_device(prev);
            mod_destroy(c);
            return rc;
        }
        char name[32];
        snprintf(name, sizeof name, "ngs_spectrum slot %d", i);
        nvtxNameCudaStreamA(c->s[i].stream, name);
    }
    leave_device(prev);
    *out = c;
    return NGS_OK;
}

static int reserve(ngs_cuda *c, size_t n, size_t batch, char *err, size_t err_len)
{
    size_t nb = n / 2 + 1;
    if (n * batch <= c->cap_in && nb * batch <= c->cap_out) {
        c->n = n;
        c->batch = batch;
        return NGS_OK;
    }
    free_buffers(c);
    size_t in_bytes = n * batch * sizeof(double), out_bytes = nb * batch * sizeof(cufftDoubleComplex);
    nvtxRangePushA("ngs_spectrum alloc");
    for (int i = 0; i < NGS_CUDA_SLOTS; i++) {
        slot *s = &c->s[i];
        cudaError_t e;
        const char *what = "cudaHostAlloc";
        if ((e = cudaHostAlloc((void **)&s->h_in, in_bytes, cudaHostAllocDefault)) != cudaSuccess ||
            (e = cudaHostAlloc((void **)&s->h_out, out_bytes, cudaHostAllocDefault)) != cudaSuccess ||
            (what = "cudaMalloc",
             (e = cudaMalloc((void **)&s->d_in, in_bytes)) != cudaSuccess) ||
            (e = cudaMalloc((void **)&s->d_out, out_bytes)) != cudaSuccess) {
            nvtxRangePop();
            free_buffers(c);
            return cuda_fail(e, err, err_len, what);
        }
    }
    nvtxRangePop();
    c->n = n;
    c->batch = batch;
    c->cap_in = n * batch;
    c->cap_out = nb * batch;
    return NGS_OK;
}

static int mod_reserve(ngs_cuda *c, size_t n, size_t batch, char *err, size_t err_len)
{
    if (!c || n < 2 || batch < 1)
        return NGS_ERR_ARG;
    int prev = enter_device(c->device);
    int rc = reserve(c, n, batch, err, err_len);
    leave_device(prev);
    return rc;
}

static plan_entry *find_plan(ngs_cuda *c, size_t n, size_t count)
{
    for (int i = 0; i < PLAN_CACHE; i++)
        if (c->plans[i].valid && c->plans[i].n == n && c->plans[i].count == count)
            return &c->plans[i];
    return NULL;
}

static int prepare(ngs_cuda *c, size_t n, size_t count, char *err, size_t err_len)
{
    plan_entry *p = find_plan(c, n, count);
    if (p) {
        p->used = ++c->clock;
        return NGS_OK;
    }
    p = &c->plans[0];
    for (int i = 0; i < PLAN_CACHE; i++) {
        if (!c->plans[i].valid) {
            p = &c->plans[i];
            break;
        }
        if (c->plans[i].used < p->used)
            p = &c->plans[i];
    }
    drop_plan(p);
    nvtxRangePushA("ngs_spectrum plan");
    long long len = (long long)n, inembed = (long long)n, onembed = (long long)(n / 2 + 1);
    int made = 0, rc = NGS_OK;
    for (; made < NGS_CUDA_SLOTS; made++) {
        cufftHandle h;
        size_t work = 0;
        cufftResult r = cufftCreate(&h);
        if (r != CUFFT_SUCCESS) {
            rc = cufft_fail(r, err, err_len, "cufftCreate");
            break;
        }
        if ((r = cufftMakePlanMany64(h, 1, &len, &inembed, 1, (long long)n, &onembed, 1,
                                     (long long)(n / 2 + 1), CUFFT_D2Z, (long long)count,
                                     &work)) != CUFFT_SUCCESS ||
            (r = cufftSetStream(h, c->s[made].stream)) != CUFFT_SUCCESS) {
            cufftDestroy(h);
            rc = cufft_fail(r, err, err_len, "cufftMakePlanMany64");
            break;
        }
        p->plan[made] = h;
    }
    nvtxRangePop();
    if (rc != NGS_OK) {
        while (made-- > 0)
            cufftDestroy(p->plan[made]);
        return rc;
    }
    p->valid = 1;
    p->n = n;
    p->count = count;
    p->used = ++c->clock;
    return NGS_OK;
}

static int mod_prepare(ngs_cuda *c, size_t n, size_t count, char *err, size_t err_len)
{
    if (!c || n != c->n || count < 1 || count > c->batch)
        return NGS_ERR_ARG;
    int prev = enter_device(c->device);
    int rc = prepare(c, n, count, err, err_len);
    leave_device(prev);
    return rc;
}

static double *mod_input(ngs_cuda *c, int slot)
{
    return c && slot >= 0 && slot < NGS_CUDA_SLOTS ? c->s[slot].h_in : NULL;
}

static double *mod_output(ngs_cuda *c, int slot)
{
    return c && slot >= 0 && slot < NGS_CUDA_SLOTS ? c->s[slot].h_out : NULL;
}

static int submit(ngs_cuda *c, plan_entry *p, int slot, size_t n, size_t count, char *err,
                  size_t err_len)
{
    struct slot *s = &c->s[slot];
    size_t nb = n / 2 + 1;
    cudaError_t e;
    nvtxRangePushA("ngs_spectrum H2D");
    e = cudaMemcpyAsync(s->d_in, s->h_in, count * n * sizeof(double), cudaMemcpyHostToDevice, s->stream);
    nvtxRangePop();
    if (e != cudaSuccess)
        return cuda_fail(e, err, err_len, "cudaMemcpyAsync H2D");
    nvtxRangePushA("ngs_spectrum cufftExecD2Z");
    cufftResult r = cufftExecD2Z(p->plan[slot], s->d_in, s->d_out);
    nvtxRangePop();
    if (r != CUFFT_SUCCESS)
        return cufft_fail(r, err, err_len, "cufftExecD2Z");
    nvtxRangePushA("ngs_spectrum D2H");
    e = cudaMemcpyAsync(s->h_out, s->d_out, count * nb * sizeof(cufftDoubleComplex),
                        cudaMemcpyDeviceToHost, s->stream);
    nvtxRangePop();
    if (e != cudaSuccess)
        return cuda_fail(e, err, err_len, "cudaMemcpyAsync D2H");
    return NGS_OK;
}

static int mod_submit(ngs_cuda *c, int slot, size_t n, size_t count, char *err, size_t err_len)
{
    if (!c || slot < 0 || slot >= NGS_CUDA_SLOTS)
        return NGS_ERR_ARG;
    plan_entry *p = find_plan(c, n, count);
    if (!p) {
        set_err(err, err_len, "submit", "no plan prepared for this shape");
        return NGS_ERR_STATE;
    }
    p->used = ++c->clock;
    int prev = enter_device(c->device);
    int rc = submit(c, p, slot, n, count, err, err_len);
    leave_device(prev);
    return rc;
}

static int mod_wait(ngs_cuda *c, int slot, char *err, size_t err_len)
{
    if (!c || slot < 0 || slot >= NGS_CUDA_SLOTS)
        return NGS_ERR_ARG;
    /* Stream handles are device-bound; no need to switch devices to wait on one. */
    nvtxRangePushA("ngs_spectrum wait");
    cudaError_t e = cudaStreamSynchronize(c->s[slot].stream);
    nvtxRangePop();
    return e == cudaSuccess ? NGS_OK : cuda_fail(e, err, err_len, "cudaStreamSynchronize");
}

static void mod_range_push(const char *name) { nvtxRangePushA(name); }
static void mod_range_pop(void) { nvtxRangePop(); }

/* The module's one export: spectrum_cuda_load.c finds it with dlsym. */
extern "C" __attribute__((visibility("default"))) const ngs_cuda_api *NGS_CUDA_MODULE_ENTRY(void)
{
    static const ngs_cuda_api api = {
        NGS_CUDA_API_VERSION, mod_probe, mod_create, mod_destroy, mod_reserve, mod_prepare,
        mod_input, mod_output, mod_submit, mod_wait, mod_range_push, mod_range_pop,
    };
    return &api;
}
