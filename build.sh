#!/usr/bin/env bash
# The project's set-up in one place.
#   ./build.sh demo   install what is missing, build, run the main job on an example
#   ./build.sh test   install what is missing, build, run every test (ctest)
#   ./build.sh asan   the tests again under AddressSanitizer + UBSan (build-asan/)
#   ./build.sh build  only build (build/)
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(build-essential cmake pkg-config ngspice libngspice0-dev libhdf5-dev hdf5-tools
          libzstd-dev zlib1g-dev libhiredis-dev redis-server libfftw3-dev check libssl-dev
          python3 python3-h5py python3-numpy clang zstd libmimalloc-dev)

install_missing() {
    local missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "build.sh: installing ${missing[*]}" >&2
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() { # build DIR [cmake args...]
    local dir=$1; shift
    cmake -S . -B "$dir" -DNGSCALE_WERROR=ON "$@" >/dev/null
    cmake --build "$dir" -j "$(nproc)"
}

case "${1:-}" in
demo)
    install_missing
    build build
    mkdir -p out
    echo "== ngscale run examples/rc_filter.cir -o out/demo.h5"
    build/ngscale run examples/rc_filter.cir -o out/demo.h5
    echo "== ngscale info out/demo.h5"
    build/ngscale info out/demo.h5
    echo "== read back with h5py (HDF5_PLUGIN_PATH=build/hdf5-plugins for the zstd filter)"
    HDF5_PLUGIN_PATH=build/hdf5-plugins /usr/bin/python3 -c '
import h5py
with h5py.File("out/demo.h5", "r") as f:
    t, v = f["run/tran1/time"][()], f["run/tran1/v(out)"][()]
    print("tran1: %d points, v(out) peaks at %.4f V at t = %.3g s" % (len(t), v.max(), t[v.argmax()]))'
    ;;
test)
    install_missing
    build build
    cd build && ctest --output-on-failure -j 2 --timeout 1200
    ;;
asan)
    install_missing
    build build-asan -DNGSCALE_ASAN=ON -DCMAKE_BUILD_TYPE=Debug
    cd build-asan && NGSCALE_SANITIZED=1 ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/../tests/lsan.supp:print_suppressions=0 ctest --output-on-failure -j 2 --timeout 1800
    ;;
build)
    install_missing
    build build
    ;;
*)
    sed -n '2,6p' "$0" | sed 's/^# //'
    exit 2
    ;;
esac
