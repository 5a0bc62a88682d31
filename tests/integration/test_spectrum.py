"""`ngscale spectrum FILE.h5 --vector V ...` and `ngscale batch ... --spectrum V`: spectra of a
real ngspice transient (a sine into a diode soft clipper), written back into the HDF5 file
(storage/SCHEMA.md, "Spectra") and checked with h5py and an independent numpy computation.

Skips (exit 77) until `ngscale spectrum --help` exits 0."""
import os
import subprocess
import sys
import unittest

import numpy as np

from ngstest import BUILD, NGSCALE, TempDir, h5py, run, write

F0 = 1000.0
PERIODS = 20

CLIPPER = """soft clipper: 1 kHz sine into an anti-parallel diode pair
.param amp=0.8
V1 in 0 SIN(0 {amp} 1k)
R1 in out 1k
D1 out 0 DCLIP
D2 0 out DCLIP
.model DCLIP D(IS=1e-12 N=1.8)
.tran 2u 25m
.end
"""


def have_spectrum_command():
    try:
        p = subprocess.run([NGSCALE, "spectrum", "--help"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=60)
    except OSError:
        return False
    return p.returncode == 0


def numpy_amplitude(t, v, n, periods=PERIODS, f0=F0):
    """One-sided amplitude spectrum computed here: the last `periods` periods linearly
    interpolated onto n uniform points, periodic Hann window, rfft, scaled so a tone's
    bin reads its amplitude (2|X|/sum(w); DC and Nyquist |X|/sum(w))."""
    T = periods / f0
    x = np.interp(t[-1] - T + np.arange(n) * (T / n), t, v)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    a = 2 * np.abs(np.fft.rfft(x * w)) / w.sum()
    a[0] /= 2
    if n % 2 == 0:
        a[-1] /= 2
    return a


def numpy_thd_db(t, v, n, periods=PERIODS, f0=F0, harmonics=9, lobe=2):
    """THD of the last `periods` periods, computed here without ngscale: linear
    interpolation onto n uniform points (endpoint left out), periodic Hann window, rfft,
    tone power = |X|^2 summed over +-lobe bins around bin h * periods."""
    T = periods / f0
    tk = t[-1] - T + np.arange(n) * (T / n)
    x = np.interp(tk, t, v)
    w = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n) / n)
    p = np.abs(np.fft.rfft(x * w)) ** 2

    def tone(k):
        return p[k - lobe:k + lobe + 1].sum()
    fund = tone(periods)
    harm = sum(tone(h * periods) for h in range(2, harmonics + 1) if h * periods + lobe < len(p))
    return 10 * np.log10(harm / fund)


def spectrum_group(f, run, vector="v(out)"):
    return f["%s/spectrum/%s" % (run, vector)]


# a 1 mV tone of 1 kHz on a 100 mV ramp: the drift fills the DC lobe
DRIFT = "drift\nV1 in mid SIN(1 1m 1k)\nV2 mid 0 PWL(0 0 20m 100m)\nR1 in 0 1k\n.tran 1u 20m\n.end\n"


def simulate_text(d, name, text):
    """d/name.cir holding text, run into d/name.h5: (netlist, file)"""
    cir, out = os.path.join(d, name + ".cir"), os.path.join(d, name + ".h5")
    write(cir, text)
    run([NGSCALE, "run", "-q", cir, "-o", out])
    return cir, out


class Spectrum(unittest.TestCase):
    def simulate(self, d, amp=None):
        return simulate_text(d, "clip", CLIPPER if amp is None else CLIPPER.replace("amp=0.8", "amp=%g" % amp))

    def test_thd_of_a_soft_clipper_matches_numpy(self):
        with TempDir() as d:
            _, out = self.simulate(d)
            p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--fund", "1000",
                     "--periods", str(PERIODS), "--window", "hann", "--resample", "linear",
                     "--harmonics", "9", "--backend", "cpu"])
            # the table: units in the header, one row for the run
            for label in ("fund [Hz]", "amp [V]", "THD [dB]", "SNR [dB]", "SINAD [dB]",
                          "SFDR [dBc]", "ENOB [bit]"):
                self.assertIn(label, p.stdout)
            self.assertTrue(any(line.startswith("run ") for line in p.stdout.splitlines()), p.stdout)

            with h5py.File(out, "r") as f:
                g = spectrum_group(f, "run")
                self.assertEqual(g.attrs["window"], "hann")
                self.assertEqual(g.attrs["resampling"], "linear")
                self.assertEqual(g.attrs["backend"], "cpu")
                self.assertEqual(g.attrs["unit"], "V")
                self.assertEqual(g.attrs["psd_unit"], "V^2/Hz")
                self.assertEqual(int(g.attrs["periods"]), PERIODS)
                self.assertEqual(int(g.attrs["harmonics"]), 9)
                n = int(g.attrs["N"])
                fs = float(g.attrs["fs"])
                self.assertAlmostEqual(fs, n * F0 / PERIODS, delta=1e-6 * fs)
                freq, amp, psd = g["frequency"][()], g["amplitude"][()], g["psd"][()]
                self.assertEqual(freq.shape, (n // 2 + 1,))
                self.assertEqual(amp.shape, freq.shape)
                self.assertEqual(psd.shape, freq.shape)
                self.assertTrue(np.allclose(freq, np.arange(n // 2 + 1) * F0 / PERIODS, rtol=1e-12))
                self.assertEqual(int(np.argmax(amp[1:])) + 1, PERIODS)  # the fundamental's bin
                self.assertTrue(np.all(psd >= 0))
                m = g["metrics"][0]
                self.assertEqual(m["run"].decode(), "run")
                self.assertEqual(int(m["job"]), -1)
                self.assertAlmostEqual(float(m["fundamental_hz"]), F0, places=6)
                thd = float(m["thd_db"])
                # 0.8 V into diodes with ~0.6 V knees: clearly distorted, far from a square wave
                self.assertTrue(np.isfinite(thd) and -60 < thd < -5, thd)
                self.assertAlmostEqual(float(m["thd_percent"]), 100 * 10 ** (thd / 20), places=6)
                self.assertAlmostEqual(float(m["amplitude"]), float(amp[PERIODS]), places=9)
                self.assertTrue(0.3 < float(m["amplitude"]) < 0.8, float(m["amplitude"]))
                # odd symmetry: HD3 dominates HD2
                hd = g["harmonics_dbc"][()]
                self.assertGreater(hd[3], hd[2] + 20)
                # the same computed here, from the stored transient
                t = f["run/tran1/time"][()]
                v = f["run/tran1/v(out)"][()]
                self.assertAlmostEqual(thd, numpy_thd_db(t, v, n), delta=0.05)
                # the stored FFT output against numpy's, bin by bin: 1e-9 of the largest
                ref = numpy_amplitude(t, v, n)
                err = np.max(np.abs(amp - ref)) / np.max(ref)
                self.assertLess(err, 1e-9, "amplitude spectrum vs numpy: %g" % err)
                # the file-level table
                table = f["spectrum_metrics"][()]
                self.assertEqual(len(table), 1)
                self.assertEqual(table["vector"][0].decode(), "v(out)")
                self.assertAlmostEqual(float(table["thd_db"][0]), thd, places=9)

            # the default (cubic) resampling agrees with linear on ~500 points per period
            run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--fund", "1000",
                 "--periods", str(PERIODS), "--window", "hann"])
            with h5py.File(out, "r") as f:
                g = spectrum_group(f, "run")
                self.assertEqual(g.attrs["resampling"], "cubic")
                self.assertAlmostEqual(float(g["metrics"][0]["thd_db"]), thd, delta=0.1)

    def test_vector_spellings_and_missing_vector(self):
        with TempDir() as d:
            _, out = self.simulate(d)
            for spelling in ("out", "V(OUT)", "v(out)"):
                run([NGSCALE, "spectrum", out, "--vector", spelling, "--fund", "1000",
                     "--periods", str(PERIODS)])
            run([NGSCALE, "spectrum", out, "--vector", "v1#branch", "--fund", "1000",
                 "--periods", str(PERIODS), "--run", "run"])
            with h5py.File(out, "r") as f:
                self.assertEqual(sorted(f["run/spectrum"].keys()), ["i(v1)", "v(out)"])
                self.assertEqual(f["run/spectrum/i(v1)"].attrs["unit"], "A")
                self.assertEqual(len(f["spectrum_metrics"]), 2)
                # the plots are untouched
                self.assertEqual(sorted(k for k in f["run"].keys() if k != "spectrum"), ["tran1"])
            p = run([NGSCALE, "spectrum", out, "--vector", "v(nope)"], check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("v(nope)", p.stderr)
            self.assertIn("v(out)", p.stderr)   # the names there are
            self.assertIn("v(in)", p.stderr)
            p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--window", "triangle"],
                    check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("triangle", p.stderr)
            p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--run", "nope"], check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("nope", p.stderr)

    def test_a_plot_whose_scale_is_not_time_is_refused(self):
        """--plot dc1 analysed a DC sweep as if its volts were seconds and wrote a spectrum
        in 'Hz' (20 periods over 1 V: '20 Hz'), exit 0; an AC plot said 'not a real 1-D
        vector'. Both are now refused, naming the scale, and the file is left as it was."""
        with TempDir() as d:
            _, out = simulate_text(d, "sweep", "sweep\nV1 in 0 DC 0\nB1 out 0 V=sin(2*3.14159265*20*v(in))\n"
                                               "R1 out 0 1k\n.dc V1 0 1 0.001\n.end\n")
            for extra in ([], ["--run", "run"]):
                p = run([NGSCALE, "spectrum", out, "--vector", "out", "--plot", "dc1"] + extra, check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("the scale of dc1 is v(v-sweep) (voltage), not time", p.stderr)
                with h5py.File(out, "r") as f:
                    self.assertEqual(list(f["run"].keys()), ["dc1"])
                    self.assertNotIn("spectrum_metrics", f)

    def test_export_after_spectrum_gives_the_same_raw_file(self):
        # spectrum/ sits beside the plots: export once wrote it as an empty plot that
        # neither ngspice nor ngscale could read back
        with TempDir() as d:
            _, out = self.simulate(d)
            before, after = os.path.join(d, "before.raw"), os.path.join(d, "after.raw")
            run([NGSCALE, "export", out, before])
            run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--fund", "1000", "--periods", str(PERIODS)])
            run([NGSCALE, "export", out, after])
            with open(before, "rb") as a, open(after, "rb") as b:
                self.assertEqual(a.read(), b.read())
            # a RAW file is replaced; a result file (or any other) is not
            run([NGSCALE, "export", out, after])
            other = os.path.join(d, "other.h5")
            with open(out, "rb") as src, open(other, "wb") as dst:
                dst.write(src.read())
            p = run([NGSCALE, "export", out, other], check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("is not a RAW file", p.stderr)
            with h5py.File(other, "r") as f:
                self.assertIn("run", f)

    def test_a_record_of_few_periods_finds_no_tone_rather_than_a_wrong_one(self):
        """Four periods of 1 kHz put the tone inside a Blackman-Harris window's DC lobe:
        a search found its skirt (1125 Hz, 0.75 V) and reported it; now it says so. Under
        8 periods (2L) the lobes of DC, the tone and its harmonics overlap: 6 periods
        were reported, a little off; from 8 on the tone is measured."""
        with TempDir() as d:
            for stop, found in (("4m", False), ("2m", False), ("30u", False), ("6m", False), ("9m", True)):
                _, out = simulate_text(d, "s" + stop, "sine\nV1 in 0 SIN(0.5 1 1k)\nR1 in 0 1k\n.tran 10u %s\n.end\n"
                                       % stop)
                p = run([NGSCALE, "spectrum", out, "--vector", "v(in)"])
                with h5py.File(out, "r") as f:
                    fund = float(f["spectrum_metrics"]["fundamental_hz"][0])
                    amp = float(f["spectrum_metrics"]["amplitude"][0])
                if found:
                    self.assertAlmostEqual(fund, 1000, delta=1)
                    self.assertAlmostEqual(amp, 1, delta=1e-3)
                else:
                    self.assertTrue(np.isnan(fund), (stop, fund))
                    self.assertIn("no tone of 8 or more periods stands out", p.stdout)
                    # a given fundamental is refused too (a narrower window takes fewer periods)
                    p = run([NGSCALE, "spectrum", out, "--vector", "v(in)", "--fund", "1k"], check=False)
                    self.assertEqual(p.returncode, 2)
                    self.assertIn("8 periods of 1000 Hz need", p.stderr)
                    if stop in ("2m", "4m"):
                        run([NGSCALE, "spectrum", out, "--vector", "v(in)", "--fund", "1k", "--window", "rect"])
                        with h5py.File(out, "r") as f:
                            self.assertAlmostEqual(float(f["spectrum_metrics"]["amplitude"][0]), 1, delta=1e-3)
            # a slow drift fills the DC lobe too, but a tone of many periods stays found
            _, out = simulate_text(d, "drift", DRIFT)
            run([NGSCALE, "spectrum", out, "--vector", "v(in)"])
            with h5py.File(out, "r") as f:
                self.assertAlmostEqual(float(f["spectrum_metrics"]["fundamental_hz"][0]), 1000, delta=1)

    def test_one_period_gives_no_tone_with_any_window(self):
        """One period of 1 MHz in a 1 us record: its power sits in the DC lobe, and the
        largest bin of the floor around it (resampling error, 137 dB down) was reported
        as the fundamental with five of the seven windows: '15 MHz, THD 57 %'. With
        hamming, a 1 kHz tone on a drift was reported at 979 Hz and 12 % low."""
        with TempDir() as d:
            _, out = simulate_text(d, "one", "one period\nV1 in 0 SIN(0 1 1meg)\nR1 in out 1k\nC1 out 0 1p\n"
                                             ".tran 0.1u 1u 0 0.1u\n.end\n")
            _, drift = simulate_text(d, "drift", DRIFT)
            for window in ("blackman-harris", "hann", "rect", "hamming", "blackman", "flattop", "kaiser"):
                p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--window", window])
                self.assertIn("or more periods stands out", p.stdout, window)
                with h5py.File(out, "r") as f:
                    self.assertTrue(np.isnan(float(f["spectrum_metrics"]["fundamental_hz"][0])), window)
                p = run([NGSCALE, "spectrum", drift, "--vector", "v(in)", "--window", window, "--no-write"])
                rows = [line.split() for line in p.stdout.splitlines() if line.startswith("run ") and "[" not in line]
                if "stands out" not in p.stdout:  # found: then right
                    self.assertAlmostEqual(float(rows[0][1]), 1000, delta=1, msg=window)
                    self.assertAlmostEqual(float(rows[0][2]), 1e-3, delta=1e-5, msg=window)

    def test_gpu_backend_works_or_says_why(self):
        with TempDir() as d:
            _, out = self.simulate(d)
            p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--fund", "1000",
                     "--periods", str(PERIODS), "--backend", "gpu"], check=False)
            if p.returncode != 0:
                self.assertIn("CUDA", p.stderr)
                return
            with h5py.File(out, "r") as f:
                self.assertEqual(spectrum_group(f, "run").attrs["backend"], "gpu")

    def test_cuda_is_loaded_only_for_the_gpu(self):
        # neither the command nor the library needs cuFFT or the CUDA runtime to start:
        # linked in, they were mapped by every process (286 MB of cuFFT) and a machine
        # without them could run nothing
        lib = os.path.join(BUILD, "libngscale.so")
        for binary in [NGSCALE] + ([lib] if os.path.exists(lib) else []):
            needed = run(["readelf", "-d", binary]).stdout
            self.assertIn("NEEDED", needed, binary)
            self.assertNotRegex(needed, r"libcufft|libcudart", binary)
        with TempDir() as d:
            _, out = self.simulate(d)
            args = [NGSCALE, "spectrum", out, "--vector", "v(out)", "--no-write"]
            module = os.path.join(BUILD, "libngscale-cuda.so")  # there when built with CUDA
            gone = dict(os.environ, NGSCALE_CUDA_MODULE=os.path.join(d, "no-such-module.so"))
            p = run(args + ["--backend", "gpu"], check=False, env=gone)
            self.assertEqual(p.returncode, 1)
            # says what it could not load
            self.assertIn("no-such-module.so" if os.path.exists(module) else "built without CUDA", p.stderr)
            self.assertIn("--backend auto or cpu", p.stderr)
            p = run(args, env=gone)  # auto: FFTW, the same table
            self.assertIn("backend cpu", p.stdout)
            self.assertIn(" 1000 ", p.stdout)
            if os.path.exists(module):  # found beside the command
                p = run(args + ["--backend", "gpu"], check=False)
                self.assertNotIn("cannot be loaded", p.stderr)

    def test_batch_file_one_row_per_job(self):
        with TempDir() as d:
            cir = os.path.join(d, "clip.cir")
            write(cir, CLIPPER)
            csv = os.path.join(d, "amps.csv")
            amps = [0.4, 0.8, 1.6]
            write(csv, "amp\n" + "\n".join(str(a) for a in amps) + "\n")
            out = os.path.join(d, "b.h5")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out, "-j", "2"])
            run([NGSCALE, "spectrum", out, "--vector", "out", "--fund", "1000",
                 "--periods", str(PERIODS)])
            with h5py.File(out, "r") as f:
                table = f["spectrum_metrics"][()]
                summary = f["summary"][()]
                self.assertEqual(sorted(int(j) for j in table["job"]), [0, 1, 2])
                self.assertTrue(all(r.decode().startswith("job_") for r in table["run"]))
                by_amp = {}
                for row in table:
                    s = summary[summary["job"] == row["job"]][0]
                    by_amp[float(s["amp"])] = float(row["thd_db"])
                    g = spectrum_group(f, row["run"].decode())
                    self.assertEqual(int(g.attrs["periods"]), PERIODS)
                # more drive, more clipping
                self.assertLess(by_amp[0.4], by_amp[0.8])
                self.assertLess(by_amp[0.8], by_amp[1.6])
            help_text = run([NGSCALE, "--help"]).stdout
            if "--spectrum" not in help_text:
                print("test_batch_file_one_row_per_job: 'batch --spectrum' not in ngscale --help, not checked",
                      file=sys.stderr)
                return
            out2 = os.path.join(d, "b2.h5")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out2, "-j", "2",
                 "--spectrum", "v(out)"])
            with h5py.File(out2, "r") as f:
                table = f["spectrum_metrics"][()]
                self.assertEqual(sorted(int(j) for j in table["job"]), [0, 1, 2])
                self.assertTrue(np.all(np.isfinite(table["thd_db"])))

    def test_a_failed_job_is_skipped_and_periods_find_the_fundamental_of_the_rest(self):
        """A job whose netlist failed (negative resistor) ends its transient early: it is
        skipped and listed, by default and when --periods finds the fundamental (which
        used to fail the whole command: "no fundamental found in one of the runs")."""
        with TempDir() as d:
            cir = os.path.join(d, "clip.cir")
            write(cir, CLIPPER.replace("R1 in out 1k", "R1 in out {rs}").replace(".param amp=0.8",
                                                                             ".param amp=0.8 rs=1k"))
            csv = os.path.join(d, "p.csv")
            write(csv, "amp,rs\n0.4,1k\n2,-1\n1.6,1k\n")
            out = os.path.join(d, "b.h5")
            p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out, "-j", "2"], check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            for extra in ([], ["--periods", "8"]):
                p = run([NGSCALE, "spectrum", out, "--vector", "v(out)"] + extra)
                self.assertRegex(p.stdout, r"job_00000001  skipped: its plot tran1 is failed")
                with h5py.File(out, "r") as f:
                    table = f["spectrum_metrics"][()]
                    self.assertEqual(sorted(int(j) for j in table["job"]), [0, 2])
                    self.assertTrue(np.all(np.abs(table["fundamental_hz"] - 1000) < 1))
            # named, it is analysed for what it has: here too little
            p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--run", "job_00000001", "--fund", "1k"],
                    check=False)
            self.assertEqual(p.returncode, 2)

    def test_the_file_is_written_only_when_it_can_be_and_nothing_else_is_lost(self):
        with TempDir() as d:
            cir, out = self.simulate(d)
            # a fundamental the sampling cannot hold (it would fold) or too few periods for the window
            for args, says in ((["--fund", "1e9"], "too close to half the sampling rate"),
                               (["--fund", "1e300"], "give --points 5e+298 or more"),  # not 299 digits
                               (["--fund", "1e300"], "run run, plot tran1: 1e+300 Hz"),  # not "vector 0"
                               (["--fund", "1k", "--periods", "8", "--window", "kaiser:30"], "needs 20 or more"),
                               (["--points", "4"], "too few for the blackman-harris window: give --points 26 or more")):
                p = run([NGSCALE, "spectrum", out, "--vector", "v(out)"] + args, check=False)
                self.assertEqual(p.returncode, 2, args)
                self.assertIn(says, p.stderr)
            # a reader holding the file: named as such, and nothing is written
            with h5py.File(out, "r"):
                p = run([NGSCALE, "spectrum", out, "--vector", "v(out)"], check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("another program has the file open", p.stderr)
            with h5py.File(out, "r") as f:
                self.assertNotIn("spectrum", f["run"])
            # a run named like the metrics table: refused, and one that is there is kept
            p = run([NGSCALE, "run", "-q", cir, "-o", out, "--append", "--group", "spectrum_metrics"], check=False)
            self.assertEqual(p.returncode, 2)
            with h5py.File(out, "a") as f:
                f.copy("run", "spectrum_metrics")
            p = run([NGSCALE, "spectrum", out, "--vector", "v(out)"], check=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn("a group named 'spectrum_metrics' is in the place of the metrics table", p.stderr)
            with h5py.File(out, "r") as f:
                self.assertIn("tran1", f["spectrum_metrics"])
                self.assertNotIn("spectrum", f["run"])

    def test_no_write_prints_the_table_of_a_file_it_cannot_write(self):
        """A file a reader has open (or a read-only one) gave no spectrum at all: the
        spectrum is written into the file. --no-write opens it read-only, prints the
        same table and leaves the file byte for byte as it was."""
        with TempDir() as d:
            _, out = self.simulate(d)
            with open(out, "rb") as f:
                before = f.read()
            with h5py.File(out, "r"):
                p = run([NGSCALE, "spectrum", out, "--vector", "v(out)"], check=False)
                self.assertEqual(p.returncode, 3)
                self.assertIn("or print the spectrum only with --no-write", p.stderr)
                p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--fund", "1k", "--no-write"])
            with open(out, "rb") as f:
                self.assertEqual(f.read(), before)
            def rows_of(stdout):  # the run's row, not the header's
                return [line.split() for line in stdout.splitlines() if line.startswith("run ") and "[" not in line]
            rows = rows_of(p.stdout)
            self.assertEqual(len(rows), 1, p.stdout)
            self.assertIn("not written: %s was left as it was" % out, p.stdout)
            # the same numbers as a run that writes them
            p = run([NGSCALE, "spectrum", out, "--vector", "v(out)", "--fund", "1k"])
            self.assertEqual(rows_of(p.stdout), rows)
            with h5py.File(out, "r") as f:
                self.assertIn("spectrum", f["run"])

    def test_messages_say_spectrum_once(self):
        """The engine's and the library's messages start 'spectrum: ', which the library
        and the CLI prefixed again: 'ngscale spectrum: spectrum: spectrum: N = 5 ...'."""
        with TempDir() as d:
            _, out = self.simulate(d)
            for args, says in ((["--points", "5"], "N = 5 points are too few"),
                               (["--window", "tri"], "unknown window 'tri'"),
                               (["--fund", "1meg"], "too close to half the sampling rate")):
                p = run([NGSCALE, "spectrum", out, "--vector", "v(out)"] + args, check=False)
                self.assertEqual(p.returncode, 2, args)
                self.assertTrue(p.stderr.startswith("ngscale spectrum: "), p.stderr)
                self.assertIn(says, p.stderr)
                self.assertEqual(p.stderr.count("spectrum: "), 1, p.stderr)

    def test_a_truncated_file_is_named_so_not_a_killed_writer(self):
        """A file cut short (a copy stopped, a full disk) was said to be 'marked as open for
        writing ... its writer was killed. Run h5clear -s --increment', advice that would
        let HDF5 write past a hole where the data it indexes should be."""
        with TempDir() as d:
            _, out = self.simulate(d)
            with open(out, "rb") as f:
                whole = f.read()
            cut = os.path.join(d, "cut.h5")
            with open(cut, "wb") as f:
                f.write(whole[:len(whole) // 2])
            p = run([NGSCALE, "spectrum", cut, "--vector", "v(out)"], check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("the file is truncated", p.stderr)
            self.assertIn("stored_eof = %d" % len(whole), p.stderr)
            self.assertNotIn("h5clear", p.stderr)
            with open(cut, "rb") as f:
                self.assertEqual(f.read(), whole[:len(whole) // 2])
            # info and export open it through the same helper: said the same way
            for args in (["info", cut], ["export", cut, os.path.join(d, "cut.raw")]):
                p = run([NGSCALE] + args, check=False)
                self.assertEqual(p.returncode, 3, args)
                self.assertIn("cut.h5: the file is truncated", p.stderr)
                self.assertIn("stored_eof = %d" % len(whole), p.stderr)
                self.assertNotIn("h5clear", p.stderr)


if __name__ == "__main__":
    if not have_spectrum_command():
        print("skip: 'ngscale spectrum --help' does not exit 0 (the command is not wired yet)")
        sys.exit(77)
    unittest.main()
