/*
 * spectrum_cuda_load.c - the CUDA backend's C interface, loading the cuFFT module
 * (libngscale-cuda.so, built from spectrum_cuda.cu) on the first probe or create.
 *
 * The library itself never links cuFFT or the CUDA runtime: a CPU-only spectrum, or any
 * other command, does not map them, and a machine without them runs everything else.
 * Where the module is looked for, first found wins:
 *   $NGSCALE_CUDA_MODULE (a path), beside the file holding this code (the build folder,
 *   or the libdir of an installed libngscale), then the libdir ngscale was installed to.
 * A module that cannot be loaded turns into the probe's reason, and the engine falls back
 * to FFTW (AUTO) or reports it (GPU).
 */
#include "gpu/spectrum_cuda.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ngscale.h"

static const ngs_cuda_api *api;
static char why_not[1024];
static pthread_once_t load_once = PTHREAD_ONCE_INIT;

#ifdef NGSCALE_HAVE_CUDA
#ifndef NGSCALE_CUDA_MODULE_DIR /* built outside CMake (bench/): beside the program only */
#define NGSCALE_CUDA_MODULE_DIR ""
#endif

/* dlopen of one candidate; 0 when it is not there (the reason of the first failure
 * that is not "no such file" is kept: a module that exists but cannot load says why). */
static int try_module(const char *path)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const ngs_cuda_api *(*entry)(void);
    const ngs_cuda_api *a;
    if (!h) {
        const char *e = dlerror();
        if (!why_not[0] || strstr(why_not, "No such file"))
            snprintf(why_not, sizeof why_not, "the cuFFT module cannot be loaded: %s", e ? e : path);
        return 0;
    }
    *(void **)&entry = dlsym(h, NGS_CUDA_MODULE_SYMBOL);
    a = entry ? entry() : NULL;
    if (!a || a->version != NGS_CUDA_API_VERSION) {
        snprintf(why_not, sizeof why_not, "%s is not this ngscale's cuFFT module (version %d, not %d)", path,
                 a ? a->version : -1, NGS_CUDA_API_VERSION);
        dlclose(h);
        return 0;
    }
    api = a; /* never unloaded: the CUDA runtime does not expect it */
    return 1;
}

static int try_dir(const char *dir)
{
    char path[4096 + sizeof NGS_CUDA_MODULE_NAME + 1]; /* dir: at most 4095 characters */
    if (!dir || !*dir) return 0;
    snprintf(path, sizeof path, "%s/%s", dir, NGS_CUDA_MODULE_NAME);
    return try_module(path);
}

static void load_module(void)
{
    const char *env = getenv("NGSCALE_CUDA_MODULE");
    Dl_info self;
    if (env && *env) { /* named: nothing else is tried */
        try_module(env);
        return;
    }
    if (dladdr((void *)&load_module, &self) && self.dli_fname && strchr(self.dli_fname, '/')) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s", self.dli_fname);
        *strrchr(dir, '/') = '\0';
        if (try_dir(dir)) return;
    }
    try_dir(NGSCALE_CUDA_MODULE_DIR);
}
#else
static void load_module(void)
{
    snprintf(why_not, sizeof why_not, "built without CUDA (NGSCALE_CUDA=OFF or no CUDA toolkit found)");
}
#endif

static int loaded(char *err, size_t len)
{
    pthread_once(&load_once, load_module);
    if (!api && err && len) snprintf(err, len, "%s", why_not);
    return api != NULL;
}

int ngs_cuda_probe(int device, char *msg, size_t msg_len)
{
    return loaded(msg, msg_len) && api->probe(device, msg, msg_len);
}

int ngs_cuda_create(ngs_cuda **cuda, int device, char *err, size_t err_len)
{
    if (cuda) *cuda = NULL;
    return loaded(err, err_len) ? api->create(cuda, device, err, err_len) : NGS_ERR_STATE;
}

void ngs_cuda_destroy(ngs_cuda *cuda)
{
    if (cuda && loaded(NULL, 0)) api->destroy(cuda);
}

int ngs_cuda_reserve(ngs_cuda *cuda, size_t n, size_t batch, char *err, size_t err_len)
{
    return loaded(err, err_len) ? api->reserve(cuda, n, batch, err, err_len) : NGS_ERR_STATE;
}

int ngs_cuda_prepare(ngs_cuda *cuda, size_t n, size_t count, char *err, size_t err_len)
{
    return loaded(err, err_len) ? api->prepare(cuda, n, count, err, err_len) : NGS_ERR_STATE;
}

double *ngs_cuda_input(ngs_cuda *cuda, int slot)
{
    return loaded(NULL, 0) ? api->input(cuda, slot) : NULL;
}

double *ngs_cuda_output(ngs_cuda *cuda, int slot)
{
    return loaded(NULL, 0) ? api->output(cuda, slot) : NULL;
}

int ngs_cuda_submit(ngs_cuda *cuda, int slot, size_t n, size_t count, char *err, size_t err_len)
{
    return loaded(err, err_len) ? api->submit(cuda, slot, n, count, err, err_len) : NGS_ERR_STATE;
}

int ngs_cuda_wait(ngs_cuda *cuda, int slot, char *err, size_t err_len)
{
    return loaded(err, err_len) ? api->wait(cuda, slot, err, err_len) : NGS_ERR_STATE;
}

/* NVTX ranges: only the GPU path marks them, after its create loaded the module */
void ngs_cuda_range_push(const char *name)
{
    if (loaded(NULL, 0)) api->range_push(name);
}

void ngs_cuda_range_pop(void)
{
    if (loaded(NULL, 0)) api->range_pop();
}
