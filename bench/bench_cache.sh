#!/usr/bin/env bash
# One command: build if needed, then cache hit vs simulation (bench_cache.py --help).
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x build/ngscale ] || ./build.sh build
exec /usr/bin/python3 bench/bench_cache.py --ngscale build/ngscale "$@"
