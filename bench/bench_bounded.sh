#!/bin/sh
# bench_bounded.sh - the lossy-codec benchmark in one command: generates the bench
# circuits (300-node RC ladder, 101-stage ring oscillator), runs ngspice -b -r on them,
# builds bench_bounded straight from the sources and runs it on the RAW files.
#
#   bench/bench_bounded.sh            # both circuits, 5 repetitions
#   bench/bench_bounded.sh -r 9       # options go to bench_bounded (-r reps, -c chunk
#                                     # points, -e rel_err)
#
# (c) ZFP needs libzfp-dev (apt-get install libzfp-dev); without it the row says SKIPPED.
# Work files go to $BENCH_BUILD (default ${TMPDIR:-/tmp}/ngscale-bench-bounded).
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_BUILD:-${TMPDIR:-/tmp}/ngscale-bench-bounded}
mkdir -p "$out"
py=/usr/bin/python3
[ -x "$py" ] || py=python3
cc=${CC:-gcc}
hdf5_inc=$(pkg-config --cflags hdf5 2>/dev/null || echo -I/usr/include/hdf5/serial)
hdf5_lib=$(pkg-config --libs hdf5 2>/dev/null || echo "-L/usr/lib/x86_64-linux-gnu/hdf5/serial -lhdf5")
zfp_flags="" zfp_libs=""
if printf '#include <zfp.h>\nint main(void){return zfp_stream_open(0)==0;}\n' |
    $cc -x c - -o "$out/zfp_probe" -lzfp >/dev/null 2>&1; then
    zfp_flags="-DHAVE_ZFP" zfp_libs="-lzfp"
else
    echo "bench_bounded.sh: libzfp not found: (c) zfp is skipped (apt-get install libzfp-dev)" >&2
fi
# shellcheck disable=SC2086
$cc -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra $zfp_flags -I"$root/plugin" -I"$root" $hdf5_inc \
    "$root/bench/bench_bounded.c" "$root/storage/bounded.c" "$root/storage/bitround.c" \
    "$root/storage/codec.c" "$root/storage/zstd_filter.c" \
    $zfp_libs $hdf5_lib -lzstd -lz -lm -lpthread -o "$out/bench_bounded"

"$py" "$root/bench/gen_circuits.py" rc-ladder "$out/rc_ladder.cir" --nodes 300 --stop 20u --step 1n
"$py" "$root/bench/gen_circuits.py" ring-osc "$out/ring_osc.cir" --stages 101 --stop 20n
for c in rc_ladder ring_osc; do
    if [ ! -s "$out/$c.raw" ] || [ "$out/$c.cir" -nt "$out/$c.raw" ]; then
        (cd "$out" && HOME="$out" ngspice -b -r "$c.raw" "$c.cir" >"$c.log" 2>&1) ||
            { echo "ngspice failed on $c: see $out/$c.log" >&2; exit 1; }
    fi
done
exec "$out/bench_bounded" "$@" "$out/rc_ladder.raw" "$out/ring_osc.raw"
