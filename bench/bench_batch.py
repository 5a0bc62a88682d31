#!/usr/bin/env python3
"""ngscale batch vs xargs -P of ngspice -b -r, on the same jobs, in one run.

  200 tiny jobs  (an RC filter, a short transient each)
  16 medium jobs (the 300-node RC ladder)
Each set runs with `ngscale batch -j 1`, `ngscale batch -j <cores>`,
`xargs -P <cores> ngspice -b -r` and `xargs -P 1`; reported: jobs/s (median of REPEAT
runs), parallel efficiency = (jobs/s at -j N) / (N x jobs/s at -j 1), and ngscale/xargs
throughput. xargs' own efficiency (-P N over -P 1) is what independent processes reach
on this machine: the ceiling the machine itself puts on ngscale's.
Targets: efficiency >= 0.9; throughput >= 1.5x xargs on tiny jobs, >= 1.0x on medium.
--rss-jobs N also runs N medium-small jobs and reports ngscale's peak RSS
(target: 1,000 medium jobs under 500 MB).

--bare PROGRAM (bench_batch.sh builds bench/bare_libngspice.c) also runs that program
under xargs -P: libngspice running each job as ngscale does, every point thrown away.
On long jobs its throughput over xargs' is the ceiling of ngscale's: what ngscale
would reach if writing HDF5 cost nothing (on tiny jobs ngscale, which keeps its
instances, starts fewer processes and can pass it).

--baseline OTHER runs a second ngscale binary (an older build, say) interleaved with
the first in the same run and reports both: on a noisy machine only such side-by-side
numbers compare. The commands take turns in a rotating order; a --repeat that is a
multiple of their number (4, plus 2 for each of --bare and --baseline) puts each in
every place equally.

usage: bench_batch.py [--ngscale build/ngscale] [--bare path] [--baseline path] [--repeat 4] [--rss-jobs 1000] [--quick]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_circuits  # noqa: E402


def timed(args, cwd, stdin=None):
    code = ("import resource,subprocess,sys,time\n"
            "t=time.perf_counter()\n"
            "r=subprocess.run(sys.argv[2:],input=open(sys.argv[1]).read() if sys.argv[1] else None,"
            "text=True,stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)\n"
            "t=time.perf_counter()-t\n"
            "u=resource.getrusage(resource.RUSAGE_CHILDREN)\n"
            "print(r.returncode,t,u.ru_maxrss,u.ru_utime+u.ru_stime)\n")
    out = subprocess.run([sys.executable, "-c", code, stdin or ""] + args, cwd=cwd,
                         stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    return int(out[0]), float(out[1]), int(out[2]), float(out[3])


def tiny(i):
    return ("tiny job %d\n.param rval=%dk\nV1 in 0 PULSE(0 1 0 1n 1n 5u 10u)\nR1 in out {rval}\n"
            "C1 out 0 1n\n.tran 50n 20u\n.end\n" % (i, 1 + i % 50))


def run_set(name, texts, d, ngscale, cores, repeat, baseline=None, bare=None):
    files = []
    for i, t in enumerate(texts):
        p = os.path.join(d, "%s-%04d.cir" % (name, i))
        with open(p, "w") as f:
            f.write(t)
        files.append(p)
    listing = os.path.join(d, name + ".list")
    with open(listing, "w") as f:
        f.write("\n".join(os.path.basename(p) for p in files) + "\n")
    cmds = {
        "ngscale -j 1": [ngscale, "batch", "-q", "-j", "1", "-o", os.path.join(d, name + "-1.h5")] + files,
        "ngscale -j %d" % cores: [ngscale, "batch", "-q", "-j", str(cores), "-o",
                                  os.path.join(d, name + "-n.h5")] + files,
        "xargs -P %d" % cores: ["xargs", "-P", str(cores), "-I{}", "ngspice", "-b", "-r", "{}.raw", "{}"],
        "xargs -P 1": ["xargs", "-P", "1", "-I{}", "ngspice", "-b", "-r", "{}.raw", "{}"],
    }
    if bare:
        cmds["bare -P %d" % cores] = ["xargs", "-P", str(cores), "-I{}", bare, "{}"]
        cmds["bare -P 1"] = ["xargs", "-P", "1", "-I{}", bare, "{}"]
    if baseline:
        cmds["baseline -j 1"] = [baseline, "batch", "-q", "-j", "1", "-o", os.path.join(d, name + "-b1.h5")] + files
        cmds["baseline -j %d" % cores] = [baseline, "batch", "-q", "-j", str(cores), "-o",
                                         os.path.join(d, name + "-bn.h5")] + files
    times = {k: [] for k in cmds}
    cpu = {k: [] for k in cmds}
    order = list(cmds)
    for r in range(repeat):
        # each repetition starts one command later: a command measured right after
        # another (its file writeback, its cache footprint) ran up to 15% slower, so
        # none may always take the same place
        for k in order[r % len(order):] + order[:r % len(order)]:
            c = cmds[k]
            rc, t, _, c_s = timed(c, d, listing if k.startswith(("xargs", "bare")) else None)
            if rc != 0 and not k.startswith("xargs"):
                raise SystemExit("%s failed" % k)
            times[k].append(t)
            cpu[k].append(c_s)
    n = len(texts)
    rates = {k: n / statistics.median(v) for k, v in times.items()}
    keys = list(cmds)

    def scaling(j1, jn):
        """parallel efficiency of a binary, and its -j N throughput over xargs'"""
        return rates[jn] / (cores * rates[j1]), rates[jn] / rates[keys[2]]

    eff, vs_xargs = scaling(keys[0], keys[1])
    xargs_eff = rates[keys[2]] / (cores * rates[keys[3]])
    print("%-14s %4d jobs: %s" % (name, n, ", ".join("%s %.2f jobs/s" % (k, r) for k, r in rates.items())))
    # CPU per job and cores busy: a -j 1 run that keeps more than one core busy (its
    # writer overlaps its simulation) lowers the efficiency figure by as much
    print("%-14s CPU per job (cores busy): %s" % ("", ", ".join(
        "%s %.1f ms (%.2f)" % (k, 1000 * statistics.median(cpu[k]) / n,
                               statistics.median(cpu[k]) / statistics.median(times[k])) for k in cmds)))
    print("%-14s parallel efficiency %.2f (xargs' own: %.2f), ngscale -j %d / xargs -P %d = %.2f" % (
        "", eff, xargs_eff, cores, cores, vs_xargs))
    if bare:
        bare_eff, bare_vs_xargs = scaling("bare -P 1", "bare -P %d" % cores)
        # a process per job, like xargs: on long jobs, where start-up does not count,
        # no program that takes its points from libngspice goes past this ratio
        print("%-14s libngspice alone (points thrown away): parallel efficiency %.2f, bare -P %d / "
              "xargs -P %d = %.2f" % ("", bare_eff, cores, cores, bare_vs_xargs))
    if baseline:
        b_eff, b_vs_xargs = scaling("baseline -j 1", "baseline -j %d" % cores)
        print("%-14s baseline: parallel efficiency %.2f, baseline -j %d / xargs -P %d = %.2f" % (
            "", b_eff, cores, cores, b_vs_xargs))
    return eff, vs_xargs


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ngscale", default=os.path.join(HERE, "..", "build", "ngscale"))
    ap.add_argument("--baseline", help="a second ngscale binary, run side by side")
    ap.add_argument("--bare", help="bare_libngspice, run under xargs -P beside ngspice -b")
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--rss-jobs", type=int, default=0)
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    ngscale = os.path.abspath(a.ngscale)
    baseline = os.path.abspath(a.baseline) if a.baseline else None
    bare = os.path.abspath(a.bare) if a.bare else None
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory(prefix="ngscale-bench-batch-") as d:
        ntiny, nmed = (40, 4) if a.quick else (200, 16)
        run_set("tiny", [tiny(i) for i in range(ntiny)], d, ngscale, cores, a.repeat, baseline, bare)
        run_set("medium", [gen_circuits.rc_ladder(300, "10u" if a.quick else "40u", "1n") for _ in range(nmed)],
                d, ngscale, cores, a.repeat, baseline, bare)
        if a.rss_jobs:
            cir = os.path.join(d, "rss.cir")
            with open(cir, "w") as f:
                f.write("rss job\n.param rval=1k\nV1 in 0 PULSE(0 1 0 1n 1n 5u 10u)\nR1 in n1 {rval}\n"
                        "C1 n1 0 1n\nR2 n1 out 1k\nC2 out 0 1n\n.tran 10n 200u\n.end\n")
            csv = os.path.join(d, "rss.csv")
            with open(csv, "w") as f:
                f.write("rval\n" + "\n".join("%dk" % (1 + i % 97) for i in range(a.rss_jobs)) + "\n")
            rc, t, rss, _ = timed([ngscale, "batch", "-q", "-j", str(cores), cir, "--params", csv,
                                "-o", os.path.join(d, "rss.h5")], d)
            size = os.path.getsize(os.path.join(d, "rss.h5"))
            print("%d jobs (20k points each): %.1f s, peak RSS %.1f MB, output %.1f MB (target < 500 MB RSS)"
                  % (a.rss_jobs, t, rss / 1024, rss / 1024 and size / 1e6))
    print("targets: efficiency >= 0.9; ngscale/xargs >= 1.5 (tiny), >= 1.0 (medium)")


if __name__ == "__main__":
    main()
