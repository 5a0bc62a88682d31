#!/usr/bin/env bash
# One command: build if needed, then ngscale run vs ngspice -b -r (bench_run.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/ngscale ] || ./build.sh build
exec /usr/bin/python3 bench/bench_run.py --ngscale build/ngscale "$@"
