#!/usr/bin/env bash
# One command: build if needed, then ngscale batch vs xargs -P ngspice (bench_batch.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/ngscale ] || ./build.sh build
exec /usr/bin/python3 bench/bench_batch.py --ngscale build/ngscale "$@"
