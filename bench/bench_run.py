#!/usr/bin/env python3
"""ngscale run vs ngspice -b -r, side by side in one run.

For each bench circuit (300-node RC-ladder transient, 101-stage CMOS ring oscillator)
both tools run the same netlist REPEAT times, alternating; the table gives medians of
wall time, output size and peak RSS, and the ratios the issue's targets are about:
  wall ngscale/ngspice   (target <= 1.05): median of the pairwise ratios, and the
                         ratio of the fastest runs ("best"), which noise can only
                         slow down (on 2-core VMs ngspice's two OpenMP threads make
                         single runs bimodal: the same run takes 1.1 s or 2.2 s)
  size RAW/HDF5          (targets: >= 1.3 ladder, >= 8 ring oscillator)

--threads N writes `set num_threads=N` into a .spiceinit that both tools read (ngspice's
OpenMP threads for BSIM devices); without it both use ngspice's default.

usage: bench_run.py [--ngscale build/ngscale] [--repeat 5] [--codec zstd] [--threads N] [--quick]
"""
import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_circuits  # noqa: E402


def measure(args, cwd):
    """(wall seconds, peak RSS KiB) of one command, in a fresh child interpreter."""
    code = ("import resource,subprocess,sys,time\n"
            "t=time.perf_counter()\n"
            "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)\n"
            "t=time.perf_counter()-t\n"
            "print(r.returncode,t,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code] + args, cwd=cwd, stdout=subprocess.PIPE,
                         text=True, check=True).stdout.split()
    if out[0] != "0":
        raise SystemExit("failed: %s" % " ".join(args))
    return float(out[1]), int(out[2])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ngscale", default=os.path.join(HERE, "..", "build", "ngscale"))
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--codec", default="zstd")
    ap.add_argument("--threads", type=int, default=0,
                    help="ngspice OpenMP threads for both tools (via .spiceinit); 0: ngspice's default")
    ap.add_argument("--quick", action="store_true", help="short circuits, 3 repeats (smoke test)")
    a = ap.parse_args()
    if a.quick:
        a.repeat = 3
    ngscale = os.path.abspath(a.ngscale)
    circuits = [
        ("rc-ladder-300", gen_circuits.rc_ladder(300, "20u" if a.quick else "100u", "1n")),
        ("ring-osc-101", gen_circuits.ring_osc(101, "20n" if a.quick else "50n", "10p")),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="ngscale-bench-") as d:
        if a.threads > 0:  # both tools read .spiceinit in the working directory
            with open(os.path.join(d, ".spiceinit"), "w") as f:
                f.write("set num_threads=%d\n" % a.threads)
        for name, text in circuits:
            cir = os.path.join(d, name + ".cir")
            open(cir, "w").write(text)
            raw, h5 = os.path.join(d, name + ".raw"), os.path.join(d, name + ".h5")
            ref_cmd = ["ngspice", "-b", "-r", raw, cir]
            our_cmd = [ngscale, "run", "-q", "--codec", a.codec, cir, "-o", h5]
            measure(ref_cmd, d)  # warm the page cache for both
            measure(our_cmd, d)
            ref, ours = [], []
            for _ in range(a.repeat):
                ref.append(measure(ref_cmd, d))
                ours.append(measure(our_cmd, d))
            raw_size, h5_size = os.path.getsize(raw), os.path.getsize(h5)
            med = lambda xs, i: statistics.median(x[i] for x in xs)  # noqa: E731
            ratios = [o[0] / r[0] for o, r in zip(ours, ref)]
            best = min(o[0] for o in ours) / min(r[0] for r in ref)
            rows.append((name, med(ref, 0), med(ours, 0), statistics.median(ratios), best, raw_size,
                         h5_size, med(ref, 1), med(ours, 1)))
    print("ngscale run (codec %s) vs ngspice -b -r, medians of %d alternating runs, %s"
          % (a.codec, a.repeat, "num_threads=%d" % a.threads if a.threads else "ngspice's default threads"))
    print("%-15s %10s %10s %11s %11s %11s %11s %9s %10s %10s" % (
        "circuit", "ngspice s", "ngscale s", "wall ratio", "best ratio", "RAW MB", "HDF5 MB",
        "RAW/HDF5", "RSS ng MB", "RSS ns MB"))
    for name, rt, ot, ratio, best, rs, hs, rr, orr in rows:
        print("%-15s %10.3f %10.3f %11.3f %11.3f %11.2f %11.2f %9.2f %10.1f %10.1f" % (
            name, rt, ot, ratio, best, rs / 1e6, hs / 1e6, rs / hs, rr / 1024, orr / 1024))
    print("targets: wall ratio <= 1.05; RAW/HDF5 >= 1.3 (ladder), >= 8 (ring oscillator)")


if __name__ == "__main__":
    main()
