"""`ngscale convert` (RAW -> HDF5) and `ngscale export` (HDF5 -> RAW) against real ngspice.

- RAW -> HDF5 -> RAW gives back the same bytes for files ngspice wrote: `-b -r` output of
  tran, ac (complex), dc, op, noise (two plots), tf/sens/pz and several analyses in one
  file, binary and ASCII, and files of the `write` command (with appended plots);
- a converted file says what `ngscale run` says about the same netlist (plot names,
  analysis, vector names, types, units, scale) and holds the same values bit for bit;
- a file from `ngscale run` exports to RAW that ngspice itself loads, with the values of
  `ngspice -b -r`;
- truncated and corrupt input, run selection, and peak memory on a large file.

Skipped (exit 77) until the CLI has the commands (`ngscale convert --help` fails)."""
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time
import unittest

import numpy as np

from ngstest import (NGSCALE, TempDir, bits_equal, h5py, netlist, peak_rss_kib,
                     read_h5_plots, read_raw, run)

CARD_NETLISTS = ["tran_rc.cir", "ac_rlc.cir", "dc_sweep.cir", "op_divider.cir",
                 "noise_amp.cir", "multi.cir", "small_signal.cir"]
SANITIZED = os.environ.get("NGSCALE_SANITIZED") == "1"


def cli_has_convert():
    try:
        ok = True
        for cmd in ("convert", "export"):
            p = subprocess.run([NGSCALE, cmd, "--help"], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, timeout=60)
            ok = ok and p.returncode == 0
        return ok
    except OSError:
        return False


def ngspice_raw(d, cir, name="ref.raw", ascii=False):
    raw = os.path.join(d, name)
    env = dict(os.environ, HOME=d)
    if ascii:
        env["SPICE_ASCIIRAWFILE"] = "1"
    run(["ngspice", "-b", "-r", raw, cir], cwd=d, env=env)
    return raw


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        x, y = fa.read(), fb.read()
    if x == y:
        return None
    i = next((k for k in range(min(len(x), len(y))) if x[k] != y[k]), min(len(x), len(y)))
    return "differ at byte %d (sizes %d, %d): %r vs %r" % (i, len(x), len(y), x[i:i + 40],
                                                         y[i:i + 40])


def headers(path):
    """Every plot header of a binary RAW file, without the Date: lines."""
    with open(path, "rb") as f:
        blob = f.read()
    return [re.sub(rb"Date: [^\n]*\n", b"", m.group(0))
            for m in re.finditer(rb"Title:.*?Binary:\n", blob, re.S)]


def write_synthetic_raw(path, npoints, nvars=8):
    """A binary ngspice-style transient RAW file of smooth waveforms (fast, numpy)."""
    with open(path, "wb") as f:
        f.write(("Title: synthetic\nDate: Thu Jan  1 00:00:00  2026\nPlotname: Transient "
                 "Analysis\nFlags: real\nNo. Variables: %d\nNo. Points: %-8d\nVariables:\n"
                 % (nvars, npoints)).encode())
        f.write(b"\t0\ttime\ttime\n")
        for j in range(1, nvars):
            f.write(b"\t%d\tv(n%d)\tvoltage\n" % (j, j))
        f.write(b"Binary:\n")
        block = 1 << 16
        rng = np.random.default_rng(1)
        for first in range(0, npoints, block):
            n = min(block, npoints - first)
            k = np.arange(first, first + n, dtype=np.float64)
            rows = np.empty((n, nvars))
            rows[:, 0] = k * 1e-9
            for j in range(1, nvars):
                rows[:, j] = np.sin(k * 1e-4 * j) + 1e-9 * rng.random(n)
            f.write(rows.astype("<f8").tobytes())


class Convert(unittest.TestCase):
    def roundtrip(self, d, raw, codec=None):
        """Each plot comes back in the encoding it was read in, without options."""
        h5 = os.path.join(d, "conv.h5")
        back = os.path.join(d, "back.raw")
        args = [NGSCALE, "convert", raw, h5] + (["--codec", codec] if codec else [])
        run(args, cwd=d)
        run([NGSCALE, "export", h5, back], cwd=d)
        diff = same_bytes(raw, back)
        self.assertIsNone(diff, "%s: round trip %s" % (os.path.basename(raw), diff))
        return h5

    def test_roundtrip_ngspice_batch_files(self):
        for name in CARD_NETLISTS:
            for ascii in (False, True):
                with self.subTest(netlist=name, ascii=ascii), TempDir() as d:
                    raw = ngspice_raw(d, netlist(name), ascii=ascii)
                    h5 = self.roundtrip(d, raw)
                    # Either encoding can be forced on every plot; not both.
                    forced = os.path.join(d, "forced.raw")
                    flag = "--binary" if ascii else "--ascii"
                    run([NGSCALE, "export", h5, forced, flag], cwd=d)
                    with open(forced, "rb") as f, open(raw, "rb") as g:
                        blob, plots = f.read(), g.read().count(b"\nPlotname: ")
                    self.assertEqual(blob.count(b"\nBinary:\n" if ascii else b"\nValues:\n"),
                                     plots)
                    p = run([NGSCALE, "export", h5, forced, "--ascii", "--binary"], cwd=d,
                            check=False)
                    self.assertEqual(p.returncode, 2, p.stderr)

    def test_roundtrip_every_codec(self):
        for codec in ("zstd", "deflate", "none"):
            with self.subTest(codec=codec), TempDir() as d:
                raw = ngspice_raw(d, netlist("multi.cir"))
                h5 = self.roundtrip(d, raw, codec=codec)
                _, attrs = read_h5_plots(h5)
                self.assertEqual(attrs["codec"], codec)

    def test_roundtrip_write_command(self):
        """Files of ngspice's `write` (own header layout), with an appended plot, and one
        of a binary and an ASCII plot (filetype changed between writes)."""
        with TempDir() as d:
            cir = os.path.join(d, "w.cir")
            with open(cir, "w") as f:
                f.write("write command\nV1 in 0 DC 1 AC 1 SIN(0 1 1k)\nR1 in out 1k\n"
                        "C1 out 0 100n\n.control\nac dec 10 10 100k\nwrite w_ac.raw\n"
                        "write w_mix.raw\ntran 10u 3m\nwrite w.raw\nset appendwrite\n"
                        "dc V1 0 1 0.1\nwrite w.raw\nset filetype=ascii\nwrite w_mix.raw\n"
                        "unset appendwrite\nwrite w_asc.raw\n.endc\n.end\n")
            run(["ngspice", "-b", cir], cwd=d, check=False, env=dict(os.environ, HOME=d))
            for name in ("w_ac.raw", "w.raw", "w_asc.raw", "w_mix.raw"):
                with self.subTest(file=name):
                    raw = os.path.join(d, name)
                    self.assertTrue(os.path.exists(raw), "ngspice wrote no %s" % name)
                    self.roundtrip(d, raw)
            self.assertEqual(len(read_raw(os.path.join(d, "w.raw"))), 2)
            with open(os.path.join(d, "w_mix.raw"), "rb") as f:
                blob = f.read()
            self.assertEqual((blob.count(b"\nBinary:\n"), blob.count(b"\nValues:\n")), (1, 1))

    def test_converted_matches_run(self):
        """Same netlist, `ngscale run` vs `ngspice -r` + `ngscale convert`: same schema
        attributes and the same values, bit for bit (a complex scale's imaginary part
        aside: ngspice -r leaves it uninitialised, the converter keeps it as it is)."""
        for name in CARD_NETLISTS:
            with self.subTest(netlist=name), TempDir() as d:
                raw = ngspice_raw(d, netlist(name))
                conv = os.path.join(d, "conv.h5")
                ran = os.path.join(d, "run.h5")
                run([NGSCALE, "convert", raw, conv], cwd=d)
                run([NGSCALE, "run", "-q", netlist(name), "-o", ran], cwd=d)
                cp, cattrs = read_h5_plots(conv)
                rp, _ = read_h5_plots(ran)
                self.assertEqual(cattrs["status"], "complete")
                self.assertEqual(cattrs["source_raw"], os.path.realpath(raw))
                self.assertEqual(cattrs["points"], sum(p["attrs"]["points"] for p in cp))
                self.assertNotIn("netlist", cattrs)
                self.assertEqual([p["name"] for p in cp], [p["name"] for p in rp])
                for c, r in zip(cp, rp):
                    for key in ("plot_name", "plotname", "analysis", "flags", "title",
                                "index", "points", "status"):
                        self.assertEqual(c["attrs"][key], r["attrs"][key], (c["name"], key))
                    if len(r["names"]) > 1:  # ngscale run marks no scale in 1-vector plots
                        self.assertEqual(c["attrs"]["scale"], r["attrs"]["scale"])
                    self.assertEqual(c["names"], r["names"])
                    self.assertEqual(c["types"], r["types"])
                    for i, vec in enumerate(c["names"]):
                        a, b = c["data"][vec], r["data"][vec]
                        if i == 0 and c["attrs"]["flags"] == "complex" and c["attrs"]["analysis"] == "ac":
                            self.assertTrue(bits_equal(a.real, b.real), vec)
                            continue
                        self.assertTrue(bits_equal(a, b), "%s/%s" % (c["name"], vec))
                # units and ngspice names agree too
                with h5py.File(conv, "r") as fc, h5py.File(ran, "r") as fr:
                    for pname, g in fr["run"].items():
                        for dname, ds in g.items():
                            for key in ("unit", "ngspice_name", "index", "is_scale"):
                                if key == "is_scale" and len(g) == 1:
                                    continue
                                self.assertEqual(fc["run"][pname][dname].attrs[key],
                                                 ds.attrs[key], (pname, dname, key))

    def test_export_of_run_loads_in_ngspice(self):
        """`ngscale run` -> `ngscale export`: ngspice loads the file, and its data equal
        `ngspice -b -r`'s (the check of test_run_vs_raw.py)."""
        with TempDir() as d:
            ran = os.path.join(d, "run.h5")
            run([NGSCALE, "run", "-q", netlist("multi.cir"), "-o", ran], cwd=d)
            exported = os.path.join(d, "exported.raw")
            run([NGSCALE, "export", ran, exported], cwd=d)
            ref = read_raw(ngspice_raw(d, netlist("multi.cir")))
            ours = read_raw(exported)
            self.assertEqual(len(ours), len(ref))
            for o, r in zip(ours, ref):
                self.assertEqual((o["plotname"], o["flags"], o["names"], o["types"]),
                                 (r["plotname"], r["flags"], r["names"], r["types"]))
                for i, vec in enumerate(r["names"]):
                    if i == 0 and r["flags"] == "complex":
                        self.assertTrue(bits_equal(o["data"][vec].real, r["data"][vec].real))
                        self.assertTrue((o["data"][vec].imag == 0).all())
                    else:
                        self.assertTrue(bits_equal(o["data"][vec], r["data"][vec]), vec)
            # Same headers as ngspice's, but for the date.
            self.assertEqual(headers(exported), headers(os.path.join(d, "ref.raw")))
            # ngspice itself loads it.
            plots, _ = read_h5_plots(ran)
            tran = next(p for p in plots if p["attrs"]["analysis"] == "tran")
            want = tran["data"]["v(out)"][7]
            ctl = os.path.join(d, "load.cir")
            with open(ctl, "w") as f:
                f.write("load test\n.control\nload exported.raw\nsetplot %s\nprint v(out)[7]\n"
                        ".endc\n.end\n" % tran["name"])
            p = run(["ngspice", "-b", ctl], cwd=d, check=False, env=dict(os.environ, HOME=d))
            m = re.search(r"v\(out\)\[7\]\s*=\s*(\S+)", p.stdout)
            self.assertIsNotNone(m, p.stdout + p.stderr)
            self.assertAlmostEqual(float(m.group(1)), want, delta=abs(want) * 1e-6 + 1e-15)

    def test_ascii_export_of_run(self):
        with TempDir() as d:
            ran = os.path.join(d, "run.h5")
            run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", ran], cwd=d)
            out = os.path.join(d, "a.raw")
            run([NGSCALE, "export", ran, out, "--ascii"], cwd=d)
            with open(out, "rb") as f:
                text = f.read()
            self.assertIn(b"\nValues:\n0\t\t", text)
            back = os.path.join(d, "back.h5")
            run([NGSCALE, "convert", out, back], cwd=d)
            a, _ = read_h5_plots(ran)
            b, _ = read_h5_plots(back)
            for vec in a[0]["names"]:
                np.testing.assert_allclose(b[0]["data"][vec], a[0]["data"][vec], rtol=1e-15,
                                           atol=1e-300)

    def test_truncated_input(self):
        with TempDir() as d:
            raw = ngspice_raw(d, netlist("tran_rc.cir"))
            size = os.path.getsize(raw)
            cut = os.path.join(d, "cut.raw")
            with open(raw, "rb") as f, open(cut, "wb") as g:
                g.write(f.read()[:size * 2 // 3 + 5])
            h5 = os.path.join(d, "cut.h5")
            p = run([NGSCALE, "convert", cut, h5], cwd=d, check=False)
            # Distinct from success, from usage errors (2) and from unreadable input (3).
            self.assertNotIn(p.returncode, (0, 2, 3), p.stderr)
            self.assertIn("truncated", p.stderr)
            plots, attrs = read_h5_plots(h5)
            self.assertEqual(attrs["status"], "incomplete")
            self.assertRegex(attrs["message"], r"truncated at byte \d+ inside a point: \d+ of \d+ "
                                               r"points recovered")
            full = read_raw(raw)[0]
            n = plots[0]["attrs"]["points"]
            self.assertGreater(n, 0)
            for vec in full["names"]:
                self.assertTrue(bits_equal(plots[0]["data"][vec], full["data"][vec][:n]))
            # Its export says the run is incomplete and exits as convert did (5).
            back = os.path.join(d, "back.raw")
            p = run([NGSCALE, "export", h5, back], cwd=d, check=False)
            self.assertEqual(p.returncode, 5, p.stderr)
            self.assertIn("run run is incomplete: plot 1 (Transient Analysis): the RAW file is "
                          "truncated at byte", p.stderr)
            self.assertIn("the RAW file holds the %d points written" % n, p.stderr)
            self.assertEqual(len(read_raw(back)[0]["data"]["time"]), n)
            p = run([NGSCALE, "export", "--help"], check=False)
            self.assertIn("export: the run exported is\nnot complete", p.stdout)

    def test_count_past_next_header(self):
        """A binary plot whose No. Points exceeds the points before the next header: the
        header is not read as points; the plot is cut there (exit 5, "incomplete") and
        the later plots are converted. A 0 count not in the last plot is no cut."""
        def plot(name, decl, rows):
            return (("Title: t\nDate: d\nPlotname: %s\nFlags: real\nNo. Variables: 2\n"
                     "No. Points: %d\nVariables:\n\t0\ttime\ttime\n\t1\tv(a)\tvoltage\n"
                     "Binary:\n" % (name, decl)).encode()
                    + np.array(rows, dtype="<f8").tobytes())
        with TempDir() as d:
            for decl, code in ((3, 5), (0, 0)):
                with self.subTest(declared=decl):
                    raw = os.path.join(d, "np%d.raw" % decl)
                    with open(raw, "wb") as f:
                        f.write(plot("Transient Analysis", decl, [(0, 1), (1, 2)])
                                + plot("AC Analysis", 2, [(0, 5), (1, 6)])
                                + plot("Operating Point", 1, [(0, 7)]))
                    h5 = os.path.join(d, "np%d.h5" % decl)
                    p = run([NGSCALE, "convert", raw, h5], cwd=d, check=False)
                    self.assertEqual(p.returncode, code, p.stderr)
                    plots, attrs = read_h5_plots(h5)
                    self.assertEqual([q["name"] for q in plots], ["tran1", "ac1", "op1"])
                    self.assertEqual(list(plots[0]["data"]["v(a)"]), [1, 2])
                    self.assertEqual(list(plots[1]["data"]["v(a)"]), [5, 6])
                    self.assertEqual(list(plots[2]["data"]["v(a)"]), [7])
                    if code:
                        self.assertIn("2 of 3 points recovered", p.stderr)
                        self.assertEqual(attrs["status"], "incomplete")
                        self.assertEqual(plots[0]["attrs"]["status"], "incomplete")
                    else:
                        self.assertEqual(attrs["status"], "complete")

    def test_corrupt_input(self):
        with TempDir() as d:
            bad = os.path.join(d, "bad.raw")
            with open(bad, "w") as f:
                f.write("Title: t\nDate: d\nPlotname: p\nFlags: real\nNo. Variables: two\n")
            p = run([NGSCALE, "convert", bad, os.path.join(d, "o.h5")], cwd=d, check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("byte 41 (line 5): 'No. Variables' is not a number", p.stderr)
            self.assertFalse(os.path.exists(os.path.join(d, "o.h5")))
            p = run([NGSCALE, "convert", os.path.join(d, "missing.raw"), os.path.join(d, "o.h5")],
                    cwd=d, check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("missing.raw", p.stderr)
            p = run([NGSCALE, "export", os.path.join(d, "missing.h5"), os.path.join(d, "o.raw")],
                    cwd=d, check=False)
            self.assertEqual(p.returncode, 3)

    def multi_converted(self, d, ascii):
        """ngspice's RAW file of multi.cir (ac, dc, op, tran), converted: (h5, bytes)."""
        raw = ngspice_raw(d, netlist("multi.cir"), ascii=ascii)
        ref = os.path.join(d, "ref.h5")
        run([NGSCALE, "convert", raw, ref], cwd=d)
        with open(raw, "rb") as f:
            return ref, f.read()

    def assert_same_plots(self, h5, ref, names=None):
        """The plots of h5 are those of ref (names, attributes that say what they hold,
        values bit for bit); names: only those of ref's plots."""
        got, _ = read_h5_plots(h5)
        want, _ = read_h5_plots(ref)
        want = [w for w in want if names is None or w["name"] in names]
        got = [g for g in got if names is None or g["name"] in names]
        self.assertEqual([q["name"] for q in got], [q["name"] for q in want])
        for g, w in zip(got, want):
            self.assertEqual(g["attrs"]["points"], w["attrs"]["points"], g["name"])
            self.assertEqual(g["names"], w["names"])
            for vec in w["names"]:
                self.assertTrue(bits_equal(g["data"][vec], w["data"][vec]), (g["name"], vec))

    def test_ascii_text_after_the_declared_points(self):
        """An ASCII plot followed by text that is no point (a note, a log line) before
        the next plot or the end: the whole file was refused ('data continues after the
        41 points declared', exit 3). The plots are converted now, the text reported as
        skipped bytes (warning with their byte, raw_warning; exit 0, as for junk between
        plots)."""
        with TempDir() as d:
            ref, blob = self.multi_converted(d, ascii=True)
            second = blob.index(b"Title:", 1)
            note = b"-- simulation finished in 0.02 s\n"
            junk = os.path.join(d, "junk.raw")
            with open(junk, "wb") as f:
                f.write(blob[:second] + note + blob[second:] + b"42 extra\n")
            h5 = os.path.join(d, "junk.h5")
            p = run([NGSCALE, "convert", junk, h5], cwd=d, check=False)
            self.assertEqual(p.returncode, 0, p.stderr)
            msg = ("%d bytes in 2 places (the first at byte %d) are not a RAW plot and were "
                   "not converted" % (len(note) + 9, second))
            self.assertIn("warning: " + msg, p.stderr)
            self.assert_same_plots(h5, ref)
            with h5py.File(h5, "r") as f:
                self.assertEqual(f["run"].attrs["raw_warning"], msg)
                self.assertEqual(f["run"].attrs["status"], "complete")

    def test_a_corrupt_plot_header_loses_only_that_plot(self):
        """A plot whose header cannot be read ('No. Variables: x2') made convert refuse
        the whole file (exit 3, nothing written), the good plots before and after it
        with it. They are converted now; the message names the header's byte and why,
        the run says incomplete and the exit status is 5 (as for a cut file)."""
        with TempDir() as d:
            for ascii in (False, True):
                ref, blob = self.multi_converted(d, ascii=ascii)
                starts = [m.start() for m in re.finditer(rb"Title:", blob)]
                self.assertEqual(len(starts), 4)  # ac, dc, op, tran
                for bad, lost in ((2, "op1"), (0, "ac1")):
                    with self.subTest(ascii=ascii, plot=bad + 1):
                        at = blob.index(b"No. Variables: ", starts[bad]) + 15
                        h5 = os.path.join(d, "bad%d.h5" % bad)
                        cut = os.path.join(d, "bad.raw")
                        with open(cut, "wb") as f:
                            f.write(blob[:at] + b"x" + blob[at:])
                        p = run([NGSCALE, "convert", cut, h5], cwd=d, check=False)
                        self.assertEqual(p.returncode, 5, p.stderr)
                        msg = ("the plot header at byte %d (plot %d) is corrupt, byte %d "
                               % (starts[bad], bad + 1, at - 15))
                        self.assertIn(msg, p.stderr)
                        self.assertIn("'No. Variables' is not a number: %d bytes up to the "
                                      "next plot header were not converted"
                                      % (starts[bad + 1] + 1 - starts[bad]), p.stderr)
                        keep = {"ac1", "dc1", "op1", "tran1"} - {lost}
                        self.assert_same_plots(h5, ref, keep)
                        self.assertEqual(len(read_h5_plots(h5)[0]), 3)
                        with h5py.File(h5, "r") as f:
                            self.assertEqual(f["run"].attrs["status"], "incomplete")
                            self.assertIn(msg, f["run"].attrs["message"])
                            self.assertEqual(f["run"].attrs["plots"], 3)
                        # the rest goes back to RAW (exit 5: the run is incomplete)
                        back = os.path.join(d, "back.raw")
                        p = run([NGSCALE, "export", h5, back], cwd=d, check=False)
                        self.assertEqual(p.returncode, 5, p.stderr)

    def test_info_lists_every_file_it_can(self):
        """`ngscale info *.h5` stopped at the first file it could not list: the files
        after it were never shown. Each is now listed or reported, exit status 3."""
        with TempDir() as d:
            good = os.path.join(d, "good.h5")
            write_synthetic_raw(os.path.join(d, "in.raw"), 10, nvars=2)
            run([NGSCALE, "convert", "-q", os.path.join(d, "in.raw"), good], cwd=d)
            foreign = os.path.join(d, "foreign.h5")
            with h5py.File(foreign, "w") as f:
                f["x"] = [1, 2, 3]
            p = run([NGSCALE, "info", foreign, os.path.join(d, "missing.h5"), good], cwd=d,
                    check=False)
            self.assertEqual(p.returncode, 3, p.stderr)
            self.assertIn("foreign.h5: an HDF5 file, but not written by ngscale", p.stderr)
            self.assertIn("missing.h5: cannot open as HDF5", p.stderr)
            self.assertIn("good.h5: ngscale format 1", p.stdout)
            self.assertIn("plot tran1 (Transient Analysis): 10 points, 2 vectors, complete",
                          p.stdout)
            p = run([NGSCALE, "info", good, good], cwd=d)
            self.assertEqual(p.stdout.count("plot tran1"), 2)

    def test_an_ascii_value_that_is_no_number_ends_only_its_plot(self):
        """A damaged value in an ASCII plot ('1.2e.e-03') made convert refuse the whole
        file (exit 3, nothing written). The plot now ends before that point, as a cut
        one does (exit 5, 'incomplete', the byte and point in the message), and the
        other plots are converted whole."""
        with TempDir() as d:
            ref, blob = self.multi_converted(d, ascii=True)
            # point 20 of the first plot (AC, complex: "20\tre,im")
            at = blob.index(b"\n20\t", blob.index(b"Plotname: AC Analysis")) + 4
            at = blob.index(b"e", at)
            bad = os.path.join(d, "bad.raw")
            with open(bad, "wb") as f:
                f.write(blob[:at] + b"e." + blob[at:])
            h5 = os.path.join(d, "bad.h5")
            p = run([NGSCALE, "convert", bad, h5], cwd=d, check=False)
            self.assertEqual(p.returncode, 5, p.stderr)
            self.assertRegex(p.stderr, r"plot 1 \(AC Analysis\): byte \d+ \(line \d+\): "
                                       r"'[^']*e\.[^']*' is not a complex value 're,im' \(point "
                                       r"20, frequency\): 20 of 41 points recovered")
            self.assert_same_plots(h5, ref, {"dc1", "op1", "tran1"})
            got, attrs = read_h5_plots(h5)
            want, _ = read_h5_plots(ref)
            self.assertEqual(attrs["status"], "incomplete")
            self.assertEqual(got[0]["attrs"]["status"], "incomplete")
            for vec in want[0]["names"]:
                self.assertTrue(bits_equal(got[0]["data"][vec], want[0]["data"][vec][:20]))

    def test_info_shows_long_names_whole(self):
        """`ngscale info` read attributes into fixed buffers: a Plotname of 300
        characters was cut at 127, a vector type at 63, a run message at 511."""
        with TempDir() as d:
            raw = ngspice_raw(d, netlist("tran_rc.cir"))
            with open(raw, "rb") as f:
                blob = f.read()
            plotname = "Transient Analysis " + "p" * 300 + " end"
            vtype = "voltage-" + "t" * 100 + "-end"
            blob = blob.replace(b"Plotname: Transient Analysis",
                                b"Plotname: " + plotname.encode(), 1)
            blob = blob.replace(b"\tv(out)\tvoltage", b"\tv(out)\t" + vtype.encode(), 1)
            long_raw = os.path.join(d, "long.raw")
            with open(long_raw, "wb") as f:
                f.write(blob)
            h5 = os.path.join(d, "long.h5")
            run([NGSCALE, "convert", "-q", long_raw, h5], cwd=d)
            message = "m" * 600 + " the end"
            with h5py.File(h5, "r+") as f:
                f["run"].attrs["message"] = message
            p = run([NGSCALE, "info", h5], cwd=d)
            self.assertIn("plot tran1 (%s): " % plotname, p.stdout)
            self.assertRegex(p.stdout, r"\n      v\(out\) +%s +real" % vtype)
            self.assertIn(" - %s\n" % message, p.stdout)

    def test_info_lists_groups_without_creation_order(self):
        """A file rewritten by h5py (groups without track_order: no creation-order
        index) listed its runs but not one plot: `ngscale info` iterated by creation
        order only. Plots and vectors are now listed in name order there."""
        with TempDir() as d:
            raw = ngspice_raw(d, netlist("multi.cir"))
            h5 = os.path.join(d, "conv.h5")
            run([NGSCALE, "convert", "-q", "--codec", "deflate", raw, h5], cwd=d)
            plain = os.path.join(d, "plain.h5")

            def copy(src, dst):
                dst.attrs.update(src.attrs)
                for name, obj in src.items():
                    if isinstance(obj, h5py.Group):
                        copy(obj, dst.create_group(name, track_order=False))
                    else:
                        dst.create_dataset(name, data=obj[()]).attrs.update(obj.attrs)
            with h5py.File(h5, "r") as f, h5py.File(plain, "w", track_order=False) as g:
                copy(f, g)
                self.assertEqual(g["run/tran1"].id.get_create_plist().get_link_creation_order(), 0)
            want = run([NGSCALE, "info", h5], cwd=d).stdout
            got = run([NGSCALE, "info", plain], cwd=d).stdout
            plot_lines = [l for l in want.splitlines() if l.startswith("    plot ")]
            self.assertEqual(len(plot_lines), 4)
            for line in want.splitlines()[1:-1]:  # the same lines, vectors by name
                self.assertIn(line + "\n", got)
            self.assertEqual(len(got.splitlines()), len(want.splitlines()))
            self.assertRegex(got, r"\n    plot ac1 .*\n      frequency .*\n      i\(v1\) ")

    def test_export_to_a_full_disk_says_why(self):
        """An export that cannot be written said "OUT.raw.tmp-PID-0: write failed: ..." (a
        file the user never named, removed by then) when the disk filled mid-file, and
        only "OUT.raw: cannot finish the file" when it filled at the last write. Both now
        name OUT.raw and the reason; nothing is left behind. (A file size limit stands
        for the full disk.)"""
        import resource

        def limit(cap):
            resource.setrlimit(resource.RLIMIT_FSIZE, (cap, cap))
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

        with TempDir() as d:
            # 1.3 MB: fails while writing; 900 bytes: at the end, one byte short
            for n, cap in ((20000, 100000), (10, None)):
                raw, h5 = os.path.join(d, "in.raw"), os.path.join(d, "in.h5")
                write_synthetic_raw(raw, n, nvars=8)
                run([NGSCALE, "convert", "-q", raw, h5], cwd=d)
                cap = cap or os.path.getsize(raw) - 1
                out = os.path.join(d, "sub", "out.raw")
                os.makedirs(os.path.dirname(out), exist_ok=True)
                p = subprocess.run([NGSCALE, "export", h5, out], cwd=d,
                                   preexec_fn=lambda: limit(cap), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, universal_newlines=True, timeout=120)
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertIn("out.raw: write failed: File too large", p.stderr)
                self.assertNotIn("tmp-", p.stderr)
                self.assertEqual(os.listdir(os.path.dirname(out)), [])

    def test_export_into_a_pipe_or_fifo(self):
        """An output that is not a regular file is written in place. The export wrote a
        temporary file beside it and renamed that over it: `export IN.h5 /dev/null` (as
        root) put a regular file where /dev/null was, a FIFO a reader waited on was
        replaced, and /dev/stdout on a pipe failed with "out of memory" (realpath of
        pipe:[N])."""
        with TempDir() as d:
            h5 = os.path.join(d, "run.h5")
            run([NGSCALE, "run", "-q", netlist("multi.cir"), "-o", h5], cwd=d)
            ref = os.path.join(d, "ref.raw")
            run([NGSCALE, "export", h5, ref], cwd=d)
            with open(ref, "rb") as f:
                want = f.read()
            # /dev/stdout on a pipe: the RAW bytes come through it
            p = subprocess.run([NGSCALE, "export", h5, "/dev/stdout"], cwd=d,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=120)
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertEqual(p.stdout, want)
            # a FIFO stays a FIFO, and its reader gets the file
            fifo = os.path.join(d, "fifo")
            os.mkfifo(fifo)
            reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE)
            p = run([NGSCALE, "export", h5, fifo], cwd=d, check=False)
            got = reader.communicate(timeout=120)[0]
            self.assertEqual(p.returncode, 0, p.stderr)
            self.assertTrue(stat.S_ISFIFO(os.stat(fifo).st_mode))
            self.assertEqual(got, want)
            self.assertEqual(sorted(os.listdir(d)), ["fifo", "ref.raw", "run.h5"])

    def test_export_picks_the_run(self):
        with TempDir() as d:
            h5 = os.path.join(d, "two.h5")
            run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", h5, "--group", "a"], cwd=d)
            run([NGSCALE, "run", "-q", netlist("ac_rlc.cir"), "-o", h5, "--group", "b",
                 "--append"], cwd=d)
            out = os.path.join(d, "o.raw")
            p = run([NGSCALE, "export", h5, out], cwd=d, check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("a, b", p.stderr)
            run([NGSCALE, "export", h5, out, "--group", "b"], cwd=d)
            self.assertEqual(read_raw(out)[0]["plotname"], "AC Analysis")
            p = run([NGSCALE, "export", h5, out, "--group", "c"], cwd=d, check=False)
            self.assertEqual(p.returncode, 2)
            # A batch's thousands of groups: the list says how many it leaves out (it
            # was cut at 256 bytes without a word, as if those were all the groups).
            with h5py.File(h5, "a") as f:
                for i in range(40):
                    f.create_group("job_%08d" % i)
            p = run([NGSCALE, "export", h5, out, "--group", "job_00000077"], cwd=d, check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertRegex(p.stderr, r"\(groups: a, b, job_00000000, .*job_\d{8}, \.\.\. "
                             r"and \d+ more: ngscale info lists them\)")
            m = re.search(r"(\d+) more", p.stderr)
            self.assertEqual(p.stderr.count("job_") - 1 + int(m.group(1)), 40, p.stderr)

    def test_a_signal_stops_a_conversion_with_a_readable_file(self):
        """SIGTERM used to kill convert mid-write: exit 143 and a file HDF5 would not open
        without h5clear. It now stops between blocks: exit 130, the points converted kept,
        the run and its plot marked as not complete."""
        with TempDir() as d:
            raw, h5 = os.path.join(d, "big.raw"), os.path.join(d, "big.h5")
            write_synthetic_raw(raw, 1_000_000, nvars=8)
            p = subprocess.Popen([NGSCALE, "convert", "--level", "19", raw, h5],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 60
            while not os.path.exists(h5) and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(0.3)
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 130, err)
            self.assertIn("interrupted", err)
            with h5py.File(h5, "r") as f:
                self.assertNotEqual(f["run"].attrs["status"], "complete")
                self.assertNotEqual(f["run/tran1"].attrs["status"], "complete")
                self.assertLess(f["run/tran1/time"].shape[0], 1_000_000)

    def cut_while_converting(self, raw, h5, *args):
        """Converts raw (write_synthetic_raw, 1M points of 8 vectors) into h5 and, once
        some points are converted, cuts raw at point 400k, inside a page (whose tail
        then reads as zeros). The conversion is stopped (SIGSTOP) meanwhile, so the cut
        always lands ahead of the reader. Returns the exit status, stderr, where the
        data start and the size before and after."""
        size = os.path.getsize(raw)
        mtime = os.path.getmtime(h5) if os.path.exists(h5) else None
        p = subprocess.Popen([NGSCALE, "convert", "--level", "19", raw, h5] + list(args),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        d, name = os.path.split(h5)

        def started():  # the output, or the file written beside it, was created or written
            return any(n.startswith(name) and os.path.getmtime(os.path.join(d, n)) != mtime
                       for n in os.listdir(d))
        deadline = time.time() + 60
        while not started() and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(0.3)  # some points converted; 40% take seconds at level 19
        os.kill(p.pid, signal.SIGSTOP)
        with open(raw, "rb") as f:
            data = f.read().index(b"Binary:\n") + 8
        cut = data + 64 * 400_000 + 3
        os.truncate(raw, cut)
        os.kill(p.pid, signal.SIGCONT)
        _, err = p.communicate(timeout=300)
        return p.returncode, err, data, size, cut

    def test_input_cut_short_while_converted(self):
        """Another program truncating the RAW file during a conversion killed ngscale with
        SIGBUS (the reader maps the file), leaving an HDF5 file that did not open. Now a
        clear error (exit 3), and the file keeps the points converted, status failed."""
        with TempDir() as d:
            raw, h5 = os.path.join(d, "big.raw"), os.path.join(d, "big.h5")
            write_synthetic_raw(raw, 1_000_000, nvars=8)
            code, err, data, size, cut = self.cut_while_converting(raw, h5)
            self.assertEqual(code, 3, err)
            self.assertIn("big.raw shrank while being read (%d bytes when opened, %d now)"
                          % (size, cut), err)
            with h5py.File(h5, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "failed")
                self.assertIn("shrank while being read", f["run"].attrs["message"])
                self.assertEqual(f["run/tran1"].attrs["status"], "failed")
                n = f["run/tran1/time"].shape[0]
                self.assertTrue(0 < n < 400_000, n)
                got = f["run/tran1/v(n3)"][:]
            rows = np.fromfile(raw, dtype="<f8", count=n * 8, offset=data).reshape(n, 8)
            self.assertTrue(bits_equal(got, rows[:, 3]))

    def test_a_failed_conversion_keeps_the_file_it_would_replace(self):
        """convert recreated an existing output at once: a failure or an interrupt lost
        the good file there. A finished conversion now replaces it (written beside it,
        renamed over it); an unfinished one leaves it as it was and is removed."""
        with TempDir() as d:
            small = ngspice_raw(d, netlist("tran_rc.cir"))
            raw, h5 = os.path.join(d, "big.raw"), os.path.join(d, "out.h5")
            run([NGSCALE, "convert", small, h5], cwd=d)
            with open(h5, "rb") as f:
                good = f.read()
            listing = sorted(os.listdir(d) + ["big.raw"])

            write_synthetic_raw(raw, 1_000_000, nvars=8)
            code, err, *_ = self.cut_while_converting(raw, h5)
            self.assertEqual(code, 3, err)
            self.assertIn("shrank while being read", err)
            self.assertIn("out.h5 was left as it was (the unfinished conversion was removed)",
                          err)
            with open(h5, "rb") as f:
                self.assertTrue(f.read() == good, "the file there was changed")
            self.assertEqual(sorted(os.listdir(d)), listing)

            write_synthetic_raw(raw, 1_000_000, nvars=8)
            p = subprocess.Popen([NGSCALE, "convert", "--level", "19", raw, h5],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(1)
            p.send_signal(signal.SIGTERM)
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 130, err)
            self.assertIn("interrupted", err)
            self.assertIn("out.h5 was left as it was", err)
            with open(h5, "rb") as f:
                self.assertTrue(f.read() == good, "the file there was changed")
            self.assertEqual(sorted(os.listdir(d)), listing)

            run([NGSCALE, "convert", raw, h5], cwd=d)
            with h5py.File(h5, "r") as f:
                self.assertEqual(f["run/tran1/time"].shape[0], 1_000_000)
            self.assertEqual(sorted(os.listdir(d)), listing)

            # As `run -o`: an input, or a file that is not HDF5, is refused (exit 2).
            notes = os.path.join(d, "notes.txt")
            with open(notes, "w") as f:
                f.write("notes\n")
            for out, why in ((notes, "notes.txt exists and is not an HDF5 file: not "
                                     "overwriting it"),
                             (small, "is also an input")):
                p = run([NGSCALE, "convert", small, out], cwd=d, check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(why, p.stderr)
            with open(notes) as f:
                self.assertEqual(f.read(), "notes\n")

    def test_append_that_fails_keeps_the_other_runs(self):
        """--append writes into the file in place (a copy of a large file would cost
        more than the conversion): a failure marks the new group failed, and the runs
        already there stay as they were."""
        with TempDir() as d:
            small = ngspice_raw(d, netlist("tran_rc.cir"))
            raw, h5 = os.path.join(d, "big.raw"), os.path.join(d, "out.h5")
            run([NGSCALE, "convert", small, h5], cwd=d)
            before, _ = read_h5_plots(h5)
            write_synthetic_raw(raw, 1_000_000, nvars=8)
            code, err, *_ = self.cut_while_converting(raw, h5, "--append", "--group", "big")
            self.assertEqual(code, 3, err)
            self.assertIn("shrank while being read", err)
            with h5py.File(h5, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "complete")
                self.assertEqual(f["big"].attrs["status"], "failed")
                self.assertEqual(f["big/tran1"].attrs["status"], "failed")
                self.assertLess(f["big/tran1/time"].shape[0], 400_000)
            after, _ = read_h5_plots(h5)
            for vec in before[0]["names"]:
                self.assertTrue(bits_equal(after[0]["data"][vec], before[0]["data"][vec]))

    @unittest.skipIf(SANITIZED, "peak RSS is meaningless under AddressSanitizer")
    def test_memory_bounded(self):
        """320 MB of RAW: conversion and export stay far below the data size."""
        with TempDir() as d:
            raw = os.path.join(d, "big.raw")
            write_synthetic_raw(raw, 5_000_000, nvars=8)
            h5 = os.path.join(d, "big.h5")
            rss_conv = peak_rss_kib([NGSCALE, "convert", raw, h5])
            back = os.path.join(d, "back.raw")
            rss_exp = peak_rss_kib([NGSCALE, "export", h5, back])
            print("RAW %d MB: peak RSS convert %d KiB, export %d KiB"
                  % (os.path.getsize(raw) >> 20, rss_conv, rss_exp))
            self.assertLess(rss_conv, 64 * 1024)
            self.assertLess(rss_exp, 64 * 1024)
            self.assertIsNone(same_bytes(raw, back))

    @unittest.skipIf(SANITIZED, "peak RSS is meaningless under AddressSanitizer")
    def test_memory_wide(self):
        """20k vectors (a post-layout plot): conversion and export stay bounded, where each
        vector used to cost ~20 KB (HDF5's open datasets and metadata cache, and a column
        block of 1024 points per vector: 490 MB for this 46 MB file)."""
        nvars, npoints = 20000, 300
        with TempDir() as d:
            raw = os.path.join(d, "wide.raw")
            write_synthetic_raw(raw, npoints, nvars=nvars)
            h5 = os.path.join(d, "wide.h5")
            t0 = time.time()
            rss_conv = peak_rss_kib([NGSCALE, "convert", raw, h5])
            t1 = time.time()
            back = os.path.join(d, "back.raw")
            rss_exp = peak_rss_kib([NGSCALE, "export", h5, back])
            print("%d vectors, RAW %d MB: peak RSS convert %d KiB (%.1f s), export %d KiB "
                  "(%.1f s)" % (nvars, os.path.getsize(raw) >> 20, rss_conv, t1 - t0, rss_exp,
                                time.time() - t1))
            self.assertLess(rss_conv, 150 * 1024)
            self.assertLess(rss_exp, 150 * 1024)
            self.assertIsNone(same_bytes(raw, back))
            with h5py.File(h5, "r") as f:
                plot = f["run/tran1"]
                self.assertEqual(len(plot), nvars)
                # a 40 MB block of 256-point chunks: two blocks, the second partial
                self.assertEqual(plot["v(n%d)" % (nvars - 1)].chunks, (256,))
                self.assertEqual(plot["time"].shape, (npoints,))

if __name__ == "__main__":
    if not cli_has_convert():
        print("ngscale has no convert/export command yet: skipped")
        sys.exit(77)
    if not shutil.which("ngspice"):
        print("ngspice is not installed: skipped")
        sys.exit(77)
    unittest.main()
