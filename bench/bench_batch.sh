#!/usr/bin/env bash
# One command: build if needed, then ngscale batch vs xargs -P ngspice (bench_batch.py --help),
# with bare_libngspice (libngspice, points thrown away) beside them as the ceiling.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/ngscale ] || ./build.sh build
out=${BENCH_BUILD:-${TMPDIR:-/tmp}/ngscale-bench-batch}
mkdir -p "$out"
${CC:-gcc} -std=c11 -O2 -Wall -Wextra bench/bare_libngspice.c -lngspice -o "$out/bare_libngspice"
exec /usr/bin/python3 bench/bench_batch.py --ngscale build/ngscale --bare "$out/bare_libngspice" "$@"
