"""Every vector ngscale writes equals, bit for bit, what `ngspice -b -r` writes to RAW.

Covers tran, ac (complex), dc (nested sweep), op, noise (two plots) and several
analyses in one netlist; with and without .control blocks (a .control reference is
made by ngspice itself with `write` after each analysis), and every codec."""
import os
import re
import unittest

from ngstest import NGSCALE, TempDir, bits_equal, netlist, read_h5_plots, read_raw, run

CARD_NETLISTS = ["tran_rc.cir", "ac_rlc.cir", "dc_sweep.cir", "op_divider.cir",
                 "noise_amp.cir", "multi.cir", "small_signal.cir", "xspice_gain.cir",
                 "ac_device_current.cir", "ac_savecurrents.cir"]
ANALYSIS_CMDS = ("tran", "ac", "dc", "op", "noise", "tf", "sens", "pz")


def control_reference(src_path, dst_path, raw_path):
    """Copy of a .control netlist with `write raw` after each analysis command."""
    out, in_control = [], False
    with open(src_path) as fh:
        src_lines = fh.read().splitlines()
    for line in src_lines:
        word = line.strip().split(" ")[0].lower()
        if word == ".control":
            in_control = True
            out.append(line)
            out.append("set appendwrite")
            continue
        if word == ".endc":
            in_control = False
        out.append(line)
        if in_control and word in ANALYSIS_CMDS:
            out.append("write %s" % raw_path)
    with open(dst_path, "w") as fh:
        fh.write("\n".join(out) + "\n")


class RunMatchesRaw(unittest.TestCase):
    def compare(self, h5_path, raw_path, garbage_scale_imag=True):
        """garbage_scale_imag: `ngspice -r` leaves the imaginary part of a complex
        scale (AC frequency) uninitialised in the RAW file (it differs from run to
        run); ngspice's `write` and ngscale store 0. Compare its real part then."""
        raw = read_raw(raw_path)
        h5, run_attrs = read_h5_plots(h5_path)
        self.assertEqual(run_attrs["status"], "complete", run_attrs.get("message"))
        self.assertEqual(len(h5), len(raw), "plot count")
        for rp, hp in zip(raw, h5):
            self.assertEqual(hp["attrs"]["plotname"], rp["plotname"])
            self.assertEqual(hp["names"], rp["names"], "vector names and order")
            self.assertEqual(hp["types"], rp["types"], "vector types")
            self.assertEqual(hp["attrs"]["flags"], rp["flags"].split()[0])
            for i, name in enumerate(rp["names"]):
                ours, ref = hp["data"][name], rp["data"][name]
                if garbage_scale_imag and i == 0 and rp["flags"].startswith("complex"):
                    self.assertTrue(bits_equal(ours.real, ref.real), "scale %s" % name)
                    self.assertTrue((ours.imag == 0).all())
                    continue
                self.assertTrue(bits_equal(ours, ref),
                                "%s: %s differs (%d vs %d points)" % (hp["name"], name,
                                len(hp["data"][name]), len(rp["data"][name])))
            self.assertEqual(hp["attrs"]["points"], len(rp["data"][rp["names"][0]]))

    def test_cards_match_ngspice_raw(self):
        for name in CARD_NETLISTS:
            with self.subTest(netlist=name), TempDir() as d:
                raw = os.path.join(d, "ref.raw")
                run(["ngspice", "-b", "-r", raw, netlist(name)], cwd=d)
                h5 = os.path.join(d, "out.h5")
                run([NGSCALE, "run", "-q", netlist(name), "-o", h5], cwd=d)
                self.compare(h5, raw)

    def test_every_codec_is_lossless(self):
        for codec in ("zstd", "deflate", "none"):
            with self.subTest(codec=codec), TempDir() as d:
                raw = os.path.join(d, "ref.raw")
                run(["ngspice", "-b", "-r", raw, netlist("multi.cir")], cwd=d)
                h5 = os.path.join(d, "out.h5")
                run([NGSCALE, "run", "-q", "--codec", codec, "--chunk", "100",
                     netlist("multi.cir"), "-o", h5], cwd=d)
                self.compare(h5, raw)

    def test_control_blocks_match(self):
        for name, mode in (("ctrl_flat.cir", "flat"), ("ctrl_meas.cir", "keep")):
            with self.subTest(netlist=name), TempDir() as d:
                raw = os.path.join(d, "ref.raw")
                ref = os.path.join(d, "ref.cir")
                control_reference(netlist(name), ref, raw)
                # ngspice -b exits 1 on a .control deck without .print: judge by its file
                run(["ngspice", "-b", ref], cwd=d, check=False)
                self.assertTrue(os.path.exists(raw), "ngspice wrote no reference")
                h5 = os.path.join(d, "out.h5")
                p = run([NGSCALE, "run", netlist(name), "-o", h5], cwd=d)
                self.compare(h5, raw, garbage_scale_imag=False)
                _, attrs = read_h5_plots(h5)
                self.assertEqual(attrs["memory_mode"], mode, attrs["memory_reason"])
                if name == "ctrl_meas.cir":
                    # the script's own output still works: meas and print saw the vectors
                    self.assertRegex(p.stdout, r"half\s*=\s*4\.\d+e-01")

    def test_an_analysis_ngspice_sends_no_point_of(self):
        # ngspice 39 sends no point of a plot whose first vector stays empty (@r1[i] in
        # an AC analysis): with vectors kept they are read from ngspice (above, the
        # .save card); flat, they are lost, and the run says so instead of "complete"
        with TempDir() as d:
            h5 = os.path.join(d, "out.h5")
            p = run([NGSCALE, "run", "-q", "--memory", "flat", netlist("ac_device_current.cir"), "-o", h5],
                    cwd=d, check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            self.assertIn("computed 16 points of ac1 but sent none", p.stderr)
            plots, attrs = read_h5_plots(h5)
            self.assertEqual(attrs["status"], "failed")
            self.assertEqual(plots[0]["attrs"]["status"], "failed")
            self.assertIn("sent none", plots[0]["attrs"]["message"])

    def test_memory_mode_keep_matches_too(self):
        with TempDir() as d:
            raw = os.path.join(d, "ref.raw")
            run(["ngspice", "-b", "-r", raw, netlist("multi.cir")], cwd=d)
            h5 = os.path.join(d, "out.h5")
            run([NGSCALE, "run", "-q", "--memory", "keep", netlist("multi.cir"), "-o", h5], cwd=d)
            self.compare(h5, raw)


if __name__ == "__main__":
    unittest.main()
