#!/bin/sh
# bench_spectrum.sh - build and run the spectral engine benchmark in one command:
# FFTW 1 thread vs FFTW all threads vs cuFFT (when a CUDA toolkit is here; the run
# prints SKIPPED for cuFFT when no device is usable).
#
#   bench/bench_spectrum.sh                  # 1000 x 2^20 (~1 GB of memory; -s adds 4 GB)
#   bench/bench_spectrum.sh -k 64 -n 65536   # small: fits a laptop / CI runner
#   NGSCALE_CUDA=0 bench/bench_spectrum.sh   # do not build the cuFFT backend
#
# Builds straight from the sources (gpu/ + bench/) into $BENCH_BUILD (default
# ${TMPDIR:-/tmp}/ngscale-bench), so it does not depend on the rest of the tree.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_BUILD:-${TMPDIR:-/tmp}/ngscale-bench}
mkdir -p "$out"
cc=${CC:-gcc}
cflags="-std=c11 -D_GNU_SOURCE -O3 -march=native -fopenmp -I$root/plugin -I$root"
libs="-lfftw3_threads -lfftw3 -lm"
extra=""
if [ "${NGSCALE_CUDA:-1}" != 0 ] && command -v nvcc >/dev/null 2>&1; then
    cuda_home=$(dirname "$(dirname "$(command -v nvcc)")")
    # the cuFFT module, beside the program: the engine loads it from there
    nvcc -O3 -std=c++17 -gencode arch=compute_80,code=sm_80 \
        -gencode arch=compute_90,code=sm_90 -I"$root/plugin" -I"$root" -DNGSCALE_HAVE_CUDA=1 \
        -shared -Xcompiler -fPIC "$root/gpu/spectrum_cuda.cu" -o "$out/libngscale-cuda.so" \
        -L"$cuda_home/lib64" -Xlinker -rpath -Xlinker "$cuda_home/lib64" -lcufft -lcudart
    cflags="$cflags -DNGSCALE_HAVE_CUDA=1"
    extra="-ldl"
fi
# shellcheck disable=SC2086
# the engine only: spectrum_h5.c (files) needs the rest of the library
engine=$(ls "$root"/gpu/*.c | grep -v spectrum_h5.c)
$cc $cflags $engine "$root/bench/bench_spectrum.c" $extra $libs -o "$out/bench_spectrum"
exec "$out/bench_spectrum" "$@"
