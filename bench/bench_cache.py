#!/usr/bin/env python3
"""Result cache: hit time (local, Redis) vs simulating, on a medium job.

The job is the 101-stage CMOS ring oscillator (BSIM3) run long enough to produce a
~10 MB result. Measured, medians of REPEAT runs of the whole `ngscale run` command:
  simulate   cache miss (simulation + recording + store)
  local hit  replay from the local store
  redis hit  an empty local store + a redis-server on loopback holding the entry
Reported as ratios to the simulation time. Target: local hit < 5% of simulating.

usage: bench_cache.py [--ngscale build/ngscale] [--repeat 3] [--stop 120n]
"""
import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gen_circuits  # noqa: E402


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), p.stderr))
    return time.perf_counter() - t, p.stderr


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ngscale", default=os.path.join(HERE, "..", "build", "ngscale"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--stop", default="120n")
    a = ap.parse_args()
    ngscale = os.path.abspath(a.ngscale)
    redis_bin = shutil.which("redis-server")
    with tempfile.TemporaryDirectory(prefix="ngscale-bench-cache-") as d:
        cir = os.path.join(d, "ring.cir")
        with open(cir, "w") as f:
            f.write(gen_circuits.ring_osc(101, a.stop, "10p"))
        out = os.path.join(d, "o.h5")
        port = free_port()
        redis = None
        if redis_bin:
            redis = subprocess.Popen([redis_bin, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                      "--appendonly", "no", "--dir", d],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)
        url = "redis://127.0.0.1:%d/0" % port
        try:
            sim, local, remote = [], [], []
            for i in range(a.repeat):
                cache = os.path.join(d, "cache-%d" % i)
                spec = cache + ("," + url if redis else "")
                subprocess.run(["redis-cli", "-p", str(port), "flushall"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL) if redis else None
                t, err = timed([ngscale, "run", cir, "-o", out, "--cache", spec])
                assert "miss" in err, err
                sim.append(t)
                t, err = timed([ngscale, "run", cir, "-o", out, "--cache", spec])
                assert "hit (local" in err, err
                local.append(t)
                if redis:
                    t, err = timed([ngscale, "run", cir, "-o", out, "--cache",
                                    os.path.join(d, "empty-%d" % i) + "," + url])
                    assert "hit (redis" in err, err
                    remote.append(t)
            size = None
            for root, _, files in os.walk(os.path.join(d, "cache-0")):
                for fn in files:
                    if fn.endswith(".ngsc"):
                        size = os.path.getsize(os.path.join(root, fn))
            ms, ml = statistics.median(sim), statistics.median(local)
            print("medium job: 101-stage ring oscillator to %s, result %.1f MB as stored "
                  "(%.1f MB in the HDF5 file)" % (a.stop, (size or 0) / 1e6, os.path.getsize(out) / 1e6))
            print("simulate (miss + store) %.3f s" % ms)
            print("local hit               %.3f s   ratio %.4f  (%.2f%% of simulating; target < 5%%)"
                  % (ml, ml / ms, 100 * ml / ms))
            if remote:
                mr = statistics.median(remote)
                print("redis hit               %.3f s   ratio %.4f" % (mr, mr / ms))
            else:
                print("redis hit               skipped: redis-server not installed")
        finally:
            if redis:
                redis.kill()
                redis.wait()


if __name__ == "__main__":
    main()
