#!/usr/bin/env bash
# One command: build if needed, then RAW -> HDF5 conversion vs zstd -T0 -1 on the same
# synthesized RAW file (bench_convert.py --help; --size 4.3 for the >= 4 GB memory target).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/ngscale ] || ./build.sh build
cmake --build build -j"$(nproc)" >/dev/null  # libngscale.so must have the converter
exec /usr/bin/python3 bench/bench_convert.py --build build "$@"
