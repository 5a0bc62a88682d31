"""Lossy codecs with a guaranteed bound through `ngscale run`/`batch`: every vector
stays within its bound of the lossless run, the scale stays exact, bounded needs the
project's plugin and bitround needs none."""
import os
import subprocess
import sys
import unittest

import numpy as np

from ngstest import NGSCALE, SRC, TempDir, h5py, netlist, run

sys.path.insert(0, os.path.join(SRC, "bench"))
import gen_circuits  # noqa: E402


def vectors(path, plot="run/tran1"):
    with h5py.File(path, "r") as f:
        g = f[plot]
        return {n: (g[n][()], dict(g[n].attrs)) for n in g}


class Lossy(unittest.TestCase):
    def setUp(self):
        self.tmp = TempDir()
        self.d = self.tmp.__enter__()
        self.cir = os.path.join(self.d, "ladder.cir")
        with open(self.cir, "w") as f:
            f.write(gen_circuits.rc_ladder(100, "20u", "1n"))
        self.exact = os.path.join(self.d, "exact.h5")
        run([NGSCALE, "run", "-q", self.cir, "-o", self.exact])

    def tearDown(self):
        self.tmp.__exit__(None, None, None)

    def test_bounded_rel_err_holds_and_is_much_smaller(self):
        out = os.path.join(self.d, "b.h5")
        run([NGSCALE, "run", "-q", "--codec", "bounded", "--rel-err", "1e-6", self.cir, "-o", out])
        exact, lossy = vectors(self.exact), vectors(out)
        for name, (x, _) in exact.items():
            y, attrs = lossy[name]
            if name == "time":
                self.assertTrue(np.array_equal(x, y), "the scale stays exact")
                self.assertNotIn("lossy_codec", attrs)
                continue
            err = np.abs(x - y).max()
            self.assertLessEqual(err, attrs["lossy_max_abs_err"], name)
            self.assertLessEqual(err, 1e-6 * (x.max() - x.min()) + 1e-300, name)
            self.assertEqual(attrs["lossy_codec"], "bounded")
            self.assertEqual(attrs["lossy_rel_err"], 1e-6)
        self.assertGreater(os.path.getsize(self.exact) / os.path.getsize(out), 5)

    def test_bounded_abs_err_and_default(self):
        for args, bound in ((["--abs-err", "1e-9"], 1e-9), ([], 1e-8)):  # default: vntol/100
            out = os.path.join(self.d, "a.h5")
            run([NGSCALE, "run", "-q", "--codec", "bounded"] + args + [self.cir, "-o", out])
            exact, lossy = vectors(self.exact), vectors(out)
            for name, (x, _) in exact.items():
                if name.startswith("v("):
                    self.assertLessEqual(np.abs(x - lossy[name][0]).max(), bound, (args, name))

    def test_bounded_needs_the_plugin_and_bitround_does_not(self):
        bounded, rounded = os.path.join(self.d, "b.h5"), os.path.join(self.d, "r.h5")
        run([NGSCALE, "run", "-q", "--codec", "bounded", self.cir, "-o", bounded])
        run([NGSCALE, "run", "-q", "--codec", "bitround", "--bits", "20", self.cir, "-o", rounded])
        env = dict(os.environ)
        env.pop("HDF5_PLUGIN_PATH", None)
        read = "import h5py,sys; print(h5py.File(sys.argv[1],'r')['run/tran1/v(n50)'][()].max())"
        self.assertNotEqual(subprocess.run([sys.executable, "-c", read, bounded], env=env,
                                           capture_output=True).returncode, 0)
        p = run([sys.executable, "-c", read, rounded], env=env)
        self.assertGreater(float(p.stdout), 0.1)
        exact, lossy = vectors(self.exact), vectors(rounded)
        x, (y, attrs) = exact["v(n50)"][0], lossy["v(n50)"]
        self.assertEqual(attrs["lossy_bits"], 20)
        nz = x != 0
        self.assertLessEqual((np.abs(x - y)[nz] / np.abs(x[nz])).max(), 2.0 ** -21)

    def test_complex_ac_vectors_are_bounded_too(self):
        out = os.path.join(self.d, "ac.h5")
        exact = os.path.join(self.d, "ac-exact.h5")
        run([NGSCALE, "run", "-q", netlist("ac_rlc.cir"), "-o", exact])
        run([NGSCALE, "run", "-q", "--codec", "bounded", "--abs-err", "1e-7", netlist("ac_rlc.cir"), "-o", out])
        a, b = vectors(exact, "run/ac1"), vectors(out, "run/ac1")
        for name, (x, _) in a.items():
            y = b[name][0]
            self.assertLessEqual(np.abs(x.real - y.real).max(), 1e-7)
            self.assertLessEqual(np.abs(x.imag - y.imag).max(), 1e-7)

    def test_batch_takes_the_codec(self):
        csv = os.path.join(self.d, "p.csv")
        with open(csv, "w") as f:
            f.write("x\n1\n2\n")
        out = os.path.join(self.d, "batch.h5")
        run([NGSCALE, "batch", "-q", "--codec", "bounded", "--rel-err", "1e-5", self.cir, "--params", csv,
             "-o", out])
        with h5py.File(out, "r") as f:
            self.assertEqual(f["job_00000000/tran1/v(n10)"].attrs["lossy_codec"], "bounded")

    def test_a_second_time_column_is_kept_exact_not_refused(self):
        # A RAW variable with a scale's type (time, frequency, *-sweep) that is not the
        # scale (ngspice's `write` of `let t2 = time`) has no default bound: `convert
        # --codec bounded` failed with "cannot set up codec bounded"; it is now exact.
        raw, out = os.path.join(self.d, "t2.raw"), os.path.join(self.d, "t2.h5")
        t = [i * 1e-9 for i in range(50)]
        v = [1 + 0.5 * np.sin(x * 1e8) for x in t]
        lines = ["Title: t2", "Date: now", "Plotname: Transient Analysis", "Flags: real",
                 "No. Variables: 3", "No. Points: %d" % len(t), "Variables:", "\t0\ttime\ttime",
                 "\t1\tv(out)\tvoltage", "\t2\tt2\ttime", "Values:"]
        for i, (a, b) in enumerate(zip(t, v)):
            lines += ["%d\t%r" % (i, a), "\t%r" % b, "\t%r" % a]
        with open(raw, "w") as f:
            f.write("\n".join(lines) + "\n")
        run([NGSCALE, "convert", "-q", "--codec", "bounded", raw, out])
        got = vectors(out)
        self.assertTrue(np.array_equal(got["t2"][0], t))
        self.assertNotIn("lossy_codec", got["t2"][1])
        self.assertEqual(got["v(out)"][1]["lossy_codec"], "bounded")
        self.assertLessEqual(np.abs(got["v(out)"][0] - v).max(), 1e-8)  # vntol/100

    def test_bitround_refuses_bits_with_rel_err(self):
        # --bits won over --rel-err without a word: --bits 8 --rel-err 1e-6 stored values
        # 2^-9 = 2e-3 off, 2000 times the relative error asked for.
        out = os.path.join(self.d, "r.h5")
        p = run([NGSCALE, "run", "-q", "--codec", "bitround", "--bits", "8", "--rel-err", "1e-6", self.cir,
                 "-o", out], check=False)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("bits or rel_err, not both", p.stderr)
        self.assertFalse(os.path.exists(out))

    def test_bounded_takes_the_level(self):
        # --level was checked against zstd's range, then ignored: level 19 and -7 wrote
        # the same bytes as the default.
        sizes = {}
        for level in ("19", "-7"):
            out = os.path.join(self.d, "l%s.h5" % level)
            run([NGSCALE, "run", "-q", "--codec", "bounded", "--rel-err", "1e-6", "--level", level, self.cir,
                 "-o", out])
            with h5py.File(out, "r") as f:
                d = f["run/tran1/v(n50)"]
                self.assertEqual(d._filters["52807"][7], int(level) & 0xffffffff)
                sizes[level] = sum(f["run/tran1"][n].id.get_storage_size() for n in f["run/tran1"])
        self.assertLess(sizes["19"], sizes["-7"])


if __name__ == "__main__":
    unittest.main()
