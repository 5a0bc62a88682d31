#!/usr/bin/env python3
"""RAW -> HDF5 conversion (ngscale convert) vs zstd -T0 -1 on the same RAW file, side by side.

A large binary RAW file is synthesized (default 2 GB; --size 4.3 for the >= 4 GB memory
target): a transient of NVARS vectors (time with adaptive-looking steps, smooth node
voltages and branch currents from rotating phasors, plus noise in the low mantissa bits,
as SPICE solutions have), written with ngscale's own RAW writer. It is synthesized, not
simulated: ngspice would need hours for 2 GB. It is deleted at the end unless --keep (a
kept file is reused by the next invocation with the same size and vector count).

Then, alternating, REPEAT times each with the file in the page cache:
  zstd -T0 -1 RAW            the reference for speed (all cores, fastest level)
  ngscale convert RAW H5     (the CLI when it has the command, else a small C driver
                              linked to libngscale.so calling ngs_convert_raw_to_h5)
and, for information, the way back: zstd -d, and ngscale export H5 RAW.
The table gives medians: wall time, throughput in GB/s of RAW input, the ratio to zstd,
the size ratio RAW/output, and peak RSS. Targets: convert >= 0.8 GB/s of RAW on a 2-core
machine; peak RSS < 64 MiB for >= 4 GB of RAW.

usage: bench_convert.py [--build build] [--size GB] [--nvars 16] [--repeat 3]
                        [--codec zstd] [--dir DIR] [--out-dir DIR] [--keep] [--fresh]
                        [--no-export]
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SRC = os.path.abspath(os.path.join(HERE, ".."))

# The generator and the fallback converter: a few lines of C over libngscale.so.
DRIVER = r"""
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "storage/convert.h"
#include "storage/raw.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double urand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}

/* A transient of nvars vectors: time, voltages, the last two currents. */
static int gen(const char *path, double bytes, int nvars)
{
    char err[512];
    ngs_raw_writer *w;
    if (ngs_raw_writer_open(&w, path, 0, err, sizeof err) != NGS_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    uint64_t rows = (uint64_t)(bytes / (8.0 * nvars));
    ngs_raw_var *v = calloc((size_t)nvars, sizeof *v);
    char (*names)[32] = calloc((size_t)nvars, 32);
    for (int j = 0; j < nvars; j++) {
        int cur = nvars > 4 && j > nvars - 3;
        if (j == 0) snprintf(names[j], 32, "time");
        else snprintf(names[j], 32, cur ? "i(v%d)" : "v(n%d)", j);
        v[j].index = j;
        v[j].name = names[j];
        v[j].type = j == 0 ? "time" : cur ? "current" : "voltage";
        v[j].params = "";
        v[j].column = j;
    }
    ngs_raw_plot p;
    memset(&p, 0, sizeof p);
    p.title = "bench: synthetic RC-ladder transient";
    p.date = "Thu Jan  1 00:00:00  2026";
    p.plotname = "Transient Analysis";
    p.flags = "real";
    p.nvars = nvars;
    p.vars = v;
    p.row_doubles = nvars;
    p.npoints = rows;
    if (ngs_raw_writer_begin_plot(w, &p, NGS_RAW_BINARY) != NGS_OK) {
        fprintf(stderr, "%s\n", ngs_raw_writer_last_error(w));
        return 1;
    }
    enum { B = 16384 };
    double *buf = malloc(sizeof(double) * B * (size_t)nvars);
    double *c = calloc((size_t)nvars, 8), *s = calloc((size_t)nvars, 8), *cr = calloc((size_t)nvars, 8),
           *sr = calloc((size_t)nvars, 8), *amp = calloc((size_t)nvars, 8), *off = calloc((size_t)nvars, 8);
    for (int j = 0; j < nvars; j++) {
        double th = 2e-5 * (1 + j) * (1 + 0.37 * j);
        c[j] = 1;
        cr[j] = cos(th);
        sr[j] = sin(th);
        amp[j] = nvars > 4 && j > nvars - 3 ? 1e-3 / (1 + j) : 1.0 / (1 + 0.2 * j);
        off[j] = 0.1 * j;
    }
    double t = 0;
    for (uint64_t k = 0; k < rows;) {
        size_t n = rows - k < B ? (size_t)(rows - k) : B;
        for (size_t i = 0; i < n; i++) {
            double *row = buf + i * (size_t)nvars;
            t += 1e-9 * (1.0 + 0.5 * s[1 % nvars] + 0.01 * urand()); /* adaptive steps */
            row[0] = t;
            for (int j = 1; j < nvars; j++) {
                double cn = c[j] * cr[j] - s[j] * sr[j];
                s[j] = c[j] * sr[j] + s[j] * cr[j];
                c[j] = cn;
                row[j] = off[j] + amp[j] * c[j] * (1 + 0.2 * s[1]) + amp[j] * 1e-9 * (urand() - 0.5);
            }
        }
        if (ngs_raw_writer_write_rows(w, buf, n) != NGS_OK) {
            fprintf(stderr, "%s\n", ngs_raw_writer_last_error(w));
            return 1;
        }
        k += n;
    }
    return ngs_raw_writer_close(w) == NGS_OK ? 0 : 1;
}

int main(int argc, char **argv)
{
    char err[1024] = "";
    ngs_convert_report rep;
    int rc;
    if (argc == 5 && strcmp(argv[1], "gen") == 0)
        return gen(argv[2], atof(argv[3]), atoi(argv[4]));
    if (argc == 5 && strcmp(argv[1], "convert") == 0) {
        ngs_convert_options o;
        ngs_convert_options_init(&o);
        o.codec = (ngs_codec)ngs_codec_from_name(argv[4]);
        rc = ngs_convert_raw_to_h5(argv[2], argv[3], &o, &rep, err, sizeof err);
    } else if (argc == 4 && strcmp(argv[1], "export") == 0) {
        rc = ngs_export_h5_to_raw_report(argv[2], NULL, argv[3], 0, &rep, err, sizeof err);
    } else {
        fprintf(stderr, "usage: driver gen OUT BYTES NVARS | convert IN OUT CODEC | export IN OUT\n");
        return 2;
    }
    if (rc != NGS_OK)
        fprintf(stderr, "%s\n", err);
    return rc == NGS_OK ? 0 : 1;
}
"""


def measure(args, cwd):
    """(wall seconds, peak RSS KiB) of one command, in a fresh child interpreter."""
    code = ("import resource,subprocess,sys,time\n"
            "t=time.perf_counter()\n"
            "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.PIPE)\n"
            "t=time.perf_counter()-t\n"
            "sys.stderr.write(r.stderr.decode(errors='replace'))\n"
            "print(r.returncode,t,resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    p = subprocess.run([sys.executable, "-c", code] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, check=True)
    out = p.stdout.split()
    if out[0] != "0":
        raise SystemExit("failed (exit %s): %s\n%s" % (out[0], " ".join(args), p.stderr))
    return float(out[1]), int(out[2])


def build_driver(build, tmp):
    lib = os.path.join(build, "libngscale.so")
    if not os.path.exists(lib):
        raise SystemExit("%s not found: build first (cmake --build %s)" % (lib, build))
    src = os.path.join(tmp, "driver.c")
    exe = os.path.join(tmp, "driver")
    with open(src, "w") as f:
        f.write(DRIVER)
    subprocess.run([os.environ.get("CC", "cc"), "-O2", "-I" + SRC, "-I" + os.path.join(SRC, "plugin"),
                    src, "-o", exe, "-L" + build, "-lngscale", "-Wl,-rpath," + build, "-lm"],
                   check=True)
    return exe


def cli_has(ngscale, cmd):
    try:
        return subprocess.run([ngscale, cmd, "--help"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL).returncode == 0
    except OSError:
        return False


def warm(path):
    with open(path, "rb") as f:
        while f.read(8 << 20):
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default=os.path.join(SRC, "build"),
                    help="build directory holding ngscale and libngscale.so")
    ap.add_argument("--size", type=float, default=2.0, help="RAW size in GB (1e9 bytes)")
    ap.add_argument("--nvars", type=int, default=16, help="vectors in the RAW file")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--codec", default="zstd")
    ap.add_argument("--dir", default=tempfile.gettempdir(), help="where the RAW file is kept")
    ap.add_argument("--out-dir", default=None,
                    help="where outputs go (default: --dir; /dev/shm leaves the disk out)")
    ap.add_argument("--keep", action="store_true", help="keep the RAW file for the next run")
    ap.add_argument("--fresh", action="store_true", help="synthesize the RAW file again")
    ap.add_argument("--no-export", action="store_true", help="skip the HDF5 -> RAW direction")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    ngscale = os.path.join(build, "ngscale")
    out_dir = a.out_dir or a.dir
    if not shutil.which("zstd"):
        raise SystemExit("zstd is not installed (apt-get install zstd)")

    with tempfile.TemporaryDirectory(prefix="ngscale-bconv-", dir=out_dir) as tmp:
        driver = build_driver(build, tmp)
        raw = os.path.join(a.dir, "ngscale-bench-%.2fGB-%dv.raw" % (a.size, a.nvars))
        if a.fresh or not os.path.exists(raw):
            print("synthesizing %s (%.2f GB, %d vectors) ..." % (raw, a.size, a.nvars), flush=True)
            subprocess.run([driver, "gen", raw + ".tmp", str(a.size * 1e9), str(a.nvars)], check=True)
            os.replace(raw + ".tmp", raw)
        raw_bytes = os.path.getsize(raw)
        h5 = os.path.join(tmp, "out.h5")
        zst = os.path.join(tmp, "out.zst")
        back = os.path.join(tmp, "back.raw")
        use_cli = cli_has(ngscale, "convert") and cli_has(ngscale, "export")
        conv_cmd = ([ngscale, "convert", raw, h5, "--codec", a.codec] if use_cli
                    else [driver, "convert", raw, h5, a.codec])
        exp_cmd = [ngscale, "export", h5, back] if use_cli else [driver, "export", h5, back]
        zstd_cmd = ["zstd", "-T0", "-1", "-q", "-f", raw, "-o", zst]
        unzstd_cmd = ["zstd", "-d", "-T0", "-q", "-f", zst, "-o", back]

        warm(raw)
        res = {"zstd": [], "convert": [], "unzstd": [], "export": []}
        sizes = {}
        load0 = os.getloadavg()[0]
        for i in range(a.repeat + 1):  # the first round warms up and is not counted
            z = measure(zstd_cmd, tmp)
            sizes["zstd"] = os.path.getsize(zst)
            c = measure(conv_cmd, tmp)
            sizes["convert"] = os.path.getsize(h5)
            if not a.no_export:
                u = measure(unzstd_cmd, tmp)
                os.remove(back)
                e = measure(exp_cmd, tmp)
                if i == 0 and not filecmp_same(raw, back):
                    raise SystemExit("export did not give the RAW file back byte for byte")
                os.remove(back)
            os.remove(zst)
            os.remove(h5)
            if i == 0:
                continue
            res["zstd"].append(z)
            res["convert"].append(c)
            if not a.no_export:
                res["unzstd"].append(u)
                res["export"].append(e)
        load1 = os.getloadavg()[0]
        if not a.keep:
            os.remove(raw)

    med = lambda xs, k: statistics.median(x[k] for x in xs)  # noqa: E731
    gbs = lambda xs: raw_bytes / 1e9 / med(xs, 0)  # noqa: E731
    print()
    print("RAW %s: %.3f GB, %d vectors, synthesized (see --help); %d cores, load %.1f -> %.1f"
          % (os.path.basename(raw), raw_bytes / 1e9, a.nvars, os.cpu_count(), load0, load1))
    print("converter: %s; medians of %d alternating runs, file in the page cache"
          % ("ngscale convert (CLI)" if use_cli else "C driver -> ngs_convert_raw_to_h5", a.repeat))
    print("%-28s %8s %9s %10s %10s %10s %9s" % ("command", "wall s", "GB/s RAW", "vs zstd",
                                                "out MB", "RAW/out", "RSS MB"))
    rows = [("zstd -T0 -1", "zstd", sizes["zstd"]),
            ("ngscale convert --codec " + a.codec, "convert", sizes["convert"])]
    if not a.no_export:
        rows += [("zstd -d (way back)", "unzstd", raw_bytes), ("ngscale export (way back)", "export", raw_bytes)]
    for label, key, size in rows:
        xs = res[key]
        ref = res["zstd"] if key in ("zstd", "convert") else res["unzstd"]
        ratios = [r[0] / x[0] for x, r in zip(xs, ref)]  # per-pair speed ratio
        print("%-28s %8.3f %9.3f %10.2f %10.1f %10.3f %9.1f" % (
            label, med(xs, 0), gbs(xs), statistics.median(ratios), size / 1e6,
            raw_bytes / size, med(xs, 1) / 1024))
    conv_gbs = gbs(res["convert"])
    conv_rss = med(res["convert"], 1) / 1024
    print()
    print("target convert >= 0.8 GB/s of RAW: %.3f GB/s -> %s%s" % (
        conv_gbs, "met" if conv_gbs >= 0.8 else "NOT met",
        "" if conv_gbs >= 0.8 or load0 < 1.5 else
        " (load %.1f on %d cores: compare the ratio to zstd)" % (load0, os.cpu_count())))
    print("target peak RSS < 64 MiB at >= 4 GB: %.1f MiB at %.2f GB -> %s" % (
        conv_rss, raw_bytes / 1e9,
        ("met" if conv_rss < 64 else "NOT met") if raw_bytes >= 4e9 else "run with --size 4.3"))


def filecmp_same(a, b):
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            x, y = fa.read(8 << 20), fb.read(8 << 20)
            if x != y:
                return False
            if not x:
                return True


if __name__ == "__main__":
    main()
