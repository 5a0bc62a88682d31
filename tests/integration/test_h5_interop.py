"""Stock tools read our files: h5py and h5dump for every codec (zstd through the
project's plugin, deflate and none without it); SWMR lets h5py follow a run live; a
killed run leaves a file readable up to its last flush."""
import os
import signal
import subprocess
import sys
import time
import unittest

import numpy as np

from ngstest import NGSCALE, PLUGIN_DIR, SRC, TempDir, h5py, netlist, run, write

sys.path.insert(0, os.path.join(SRC, "bench"))
import gen_circuits  # noqa: E402

PY = sys.executable


def env_without_plugin():
    env = dict(os.environ)
    env.pop("HDF5_PLUGIN_PATH", None)
    return env


def slow_ladder(path, stop="400u"):
    with open(path, "w") as f:
        f.write(gen_circuits.rc_ladder(300, stop, "1n"))


class Interop(unittest.TestCase):
    def test_h5py_and_h5dump_read_every_codec(self):
        with TempDir() as d:
            for codec in ("zstd", "deflate", "none"):
                out = os.path.join(d, codec + ".h5")
                run([NGSCALE, "run", "-q", "--codec", codec, netlist("multi.cir"), "-o", out])
                script = ("import h5py,sys\n"
                          "f=h5py.File(sys.argv[1],'r')\n"
                          "x=f['run/tran1/v(out)'][()]\n"
                          "print(len(x), x.dtype, abs(x).max())\n")
                env = None if codec == "zstd" else env_without_plugin()
                p = run([PY, "-c", script, out], env=env)
                n, dtype, peak = p.stdout.split()
                self.assertEqual(dtype, "float64")
                self.assertGreater(int(n), 100)
                self.assertGreater(float(peak), 0.1)
                dump = run(["h5dump", "-d", "/run/tran1/v(out)", "-c", "3", out], env=env).stdout
                self.assertIn("DATA", dump)
                self.assertRegex(dump, r"\(0\): [-0-9.e]+")
            # zstd without the plugin cannot be read by others: the reason to ship it
            p = run([PY, "-c", "import h5py;h5py.File('%s','r')['run/tran1/v(out)'][()]"
                     % os.path.join(d, "zstd.h5")], env=env_without_plugin(), check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("Can't read data", p.stderr)

    def test_complex_reads_as_complex128(self):
        with TempDir() as d:
            out = os.path.join(d, "ac.h5")
            run([NGSCALE, "run", "-q", netlist("ac_rlc.cir"), "-o", out])
            with h5py.File(out, "r") as f:
                v = f["run/ac1/v(out)"][()]
                self.assertEqual(v.dtype, np.complex128)
                self.assertEqual(f["run/ac1"].attrs["flags"], "complex")
                self.assertEqual(f["run/ac1"].attrs["scale"], "frequency")
                self.assertEqual(f["run/ac1/frequency"].attrs["is_scale"], 1)
                self.assertEqual(f.attrs["ngscale_format_version"], 1)

    def test_short_analysis_is_one_fixed_chunk_a_growing_one_stays_extendible(self):
        with TempDir() as d:
            short, grown = os.path.join(d, "short.h5"), os.path.join(d, "grown.h5")
            run([NGSCALE, "run", "-q", netlist("multi.cir"), "-o", short])
            run([NGSCALE, "run", "-q", "--chunk", "100", netlist("multi.cir"), "-o", grown])
            with h5py.File(short, "r") as f, h5py.File(grown, "r") as g:
                a, b = f["run/tran1/v(out)"], g["run/tran1/v(out)"]
                self.assertGreater(a.shape[0], 100)
                self.assertEqual(a.maxshape, a.shape)
                self.assertEqual(a.chunks, a.shape)
                self.assertEqual(b.maxshape, (None,))
                self.assertEqual(b.chunks, (100,))
                self.assertTrue(np.array_equal(a[()], b[()]))

    def test_readers_opening_all_the_time_never_fail_the_writer(self):
        """The writer reopens the file between plots; a reader that is opening it at that
        moment holds its lock briefly. The run must wait, not fail."""
        with TempDir() as d:
            cir = os.path.join(d, "plots.cir")
            with open(cir, "w") as f:
                f.write("many plots\nV1 in 0 DC 1 AC 1\nR1 in out 1k\nC1 out 0 1n\n.control\n" +
                        "op\ntran 10n 20u\nac dec 20 1k 1g\n" * 8 + ".endc\n.end\n")
            out = os.path.join(d, "busy.h5")
            proc = subprocess.Popen([NGSCALE, "run", "-q", "--flush", "0.05", cir, "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            attempts = 0
            try:
                while proc.poll() is None:
                    attempts += 1
                    try:
                        with h5py.File(out, "r", libver="latest", swmr=True):
                            pass
                    except (OSError, RuntimeError):
                        pass  # caught the writer between two modes: the writer must not care
            finally:
                proc.wait(timeout=120)
            self.assertEqual(proc.returncode, 0, proc.stderr.read().decode())
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "complete")
                self.assertEqual(f["run"].attrs["plots"], 24)
            print("reader attempts:", attempts)
            self.assertGreater(attempts, 10, "the reader kept trying while the run went")

    def test_swmr_reader_follows_a_live_run(self):
        with TempDir() as d:
            cir = os.path.join(d, "slow.cir")
            slow_ladder(cir)
            out = os.path.join(d, "live.h5")
            proc = subprocess.Popen([NGSCALE, "run", "-q", "--flush", "0.2", cir, "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            seen = []
            try:
                deadline = time.time() + 120
                while proc.poll() is None and time.time() < deadline:
                    time.sleep(0.3)
                    try:
                        with h5py.File(out, "r", libver="latest", swmr=True) as f:
                            if "run/tran1/time" in f:
                                ds = f["run/tran1/time"]
                                ds.refresh()
                                n = ds.shape[0]
                                if n:
                                    t = ds[:n]
                                    self.assertTrue(np.all(np.diff(t) > 0), "time grows")
                                seen.append(n)
                    except (OSError, KeyError):
                        pass  # between plots the file is briefly reopened
            finally:
                proc.wait(timeout=300)
            self.assertEqual(proc.returncode, 0, proc.stderr.read().decode())
            growing = sorted(set(n for n in seen if n > 0))
            print("sizes seen live:", growing[:10], "...")
            self.assertGreaterEqual(len(growing), 2, "the reader saw the dataset grow: %s" % seen)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "complete")
                self.assertGreater(f["run/tran1/time"].shape[0], growing[-1] - 1)

    def test_a_reader_that_keeps_the_file_open_never_fails_the_writer(self):
        """HDF5's file lock, which a SWMR reader holds while it has the file open, stopped
        the writer's reopen between plots: the run failed and its later plots were lost."""
        with TempDir() as d:
            cir = os.path.join(d, "plots.cir")
            write(cir, "plots\nV1 in 0 SIN(0 1 1k) AC 1\nR1 in out 1k\nC1 out 0 1u\n.control\n"
                       "tran 1u 300m\nop\nac dec 20 1 1meg\ntran 1u 300m\n.endc\n.end\n")
            out = os.path.join(d, "held.h5")
            proc = subprocess.Popen([NGSCALE, "run", "-q", "--flush", "0.1", cir, "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            reader, sizes = None, []
            try:
                deadline = time.time() + 120
                while proc.poll() is None and time.time() < deadline:
                    try:
                        if reader is None:
                            reader = h5py.File(out, "r", libver="latest", swmr=True)
                        if "run/tran1/time" in reader:
                            ds = reader["run/tran1/time"]
                            ds.refresh()
                            sizes.append(ds.shape[0])
                    except (OSError, KeyError, RuntimeError):
                        pass  # the reader may see the file mid-change: its problem, not the writer's
                    time.sleep(0.05)
            finally:
                proc.wait(timeout=300)
                if reader is not None:
                    reader.close()
            self.assertIsNotNone(reader, "the reader opened the live file")
            self.assertEqual(proc.returncode, 0, proc.stderr.read().decode())
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "complete")
                self.assertEqual(f["run"].attrs["plots"], 4)
                self.assertEqual(f["run/tran2"].attrs["status"], "complete")

    def test_killed_run_is_readable_up_to_last_flush(self):
        with TempDir() as d:
            cir = os.path.join(d, "slow.cir")
            slow_ladder(cir, "2000u")
            out = os.path.join(d, "killed.h5")
            proc = subprocess.Popen([NGSCALE, "run", "-q", "--flush", "0.2", cir, "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            # kill once a reader can see at least 1000 points (however loaded the machine)
            deadline = time.time() + 120
            while time.time() < deadline and proc.poll() is None:
                time.sleep(0.2)
                try:
                    with h5py.File(out, "r", libver="latest", swmr=True) as f:
                        if "run/tran1/time" in f and f["run/tran1/time"].shape[0] > 1000:
                            break
                except (OSError, KeyError):
                    pass
            self.assertIsNone(proc.poll(), "the run should still be going")
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # a killed SWMR writer: readable in SWMR mode, and after h5clear by anything
            with h5py.File(out, "r", libver="latest", swmr=True) as f:
                self.assertEqual(f["run"].attrs["status"], "incomplete")
                t = f["run/tran1/time"][()]
                v = f["run/tran1/v(n1)"][()]
            self.assertGreater(len(t), 1000)
            self.assertEqual(len(t), len(v))
            self.assertTrue(np.all(np.diff(t) > 0))
            self.assertTrue(np.all(np.isfinite(v)))
            run(["h5clear", "-s", out])
            with h5py.File(out, "r") as f:
                self.assertEqual(len(f["run/tran1/time"]), len(t))
            info = run([NGSCALE, "info", out]).stdout
            self.assertIn("incomplete", info)


if __name__ == "__main__":
    unittest.main()
