"""The `ngscale` command: errors come back as exit codes with ngspice's message, and
data already written is never lost."""
import glob
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import unittest

import numpy as np

from ngstest import BUILD, NGSCALE, SRC, TempDir, h5py, netlist, read_h5_plots, run, write

sys.path.insert(0, os.path.join(SRC, "bench"))
import gen_circuits  # noqa: E402


class Cli(unittest.TestCase):
    def test_help_and_version(self):
        p = run([NGSCALE, "--help"])
        for word in ("run NETLIST", "--codec", "--save", "--memory", "Exit status", "HDF5_PLUGIN_PATH"):
            self.assertIn(word, p.stdout)
        p = run([NGSCALE, "--version"])
        self.assertRegex(p.stdout, r"ngscale \d+\.\d+\.\d+")
        self.assertIn("ngspice-", p.stdout)

    def test_usage_errors_exit_2(self):
        for args in ([], ["run"], ["run", netlist("tran_rc.cir")], ["bogus"],
                     ["run", "--codec", "lzma", netlist("tran_rc.cir"), "-o", "x.h5"],
                     ["run", "--memory", "sometimes", netlist("tran_rc.cir"), "-o", "x.h5"],
                     ["run", "--timeout", "nan", netlist("tran_rc.cir"), "-o", "x.h5"]):
            with self.subTest(args=args):
                p = run([NGSCALE] + args, check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertTrue(p.stderr.strip())

    def test_missing_netlist_exit_3(self):
        with TempDir() as d:
            p = run([NGSCALE, "run", os.path.join(d, "nope.cir"), "-o", os.path.join(d, "o.h5")],
                    check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("nope.cir", p.stderr)
            p = run([NGSCALE, "run", d, "-o", os.path.join(d, "o.h5")], check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("is a directory, not a netlist", p.stderr)

    def test_an_empty_netlist_path_is_a_usage_error(self):
        # "$NETLIST" unset: it said "cannot read : No such file or directory" (exit 3)
        with TempDir() as d:
            for cmd in ("run", "batch"):
                p = run([NGSCALE, cmd, "", "-o", os.path.join(d, "o.h5")], check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("ngscale %s: a netlist path is empty" % cmd, p.stderr)
                self.assertFalse(os.path.exists(os.path.join(d, "o.h5")))

    def test_bad_netlist_reports_ngspice_message_with_user_line_number(self):
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "run", "-q", netlist("bad_syntax.cir"), "-o", out], check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("rejected the netlist", p.stderr)
            self.assertIn("line 4", p.stderr)  # the user's line, not ours
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "failed")
                self.assertIn("line 4", f["run"].attrs["message"])
                # ...and what is wrong there: the card and ngspice's reason, which
                # follow "Error on line 4 or its substitute:" on lines of their own
                self.assertIn("m1 out in 0 0 nosuchmodel", f["run"].attrs["message"])
                self.assertIn("could not find a valid modelname", f["run"].attrs["message"])
            tail = p.stderr[p.stderr.rindex("ngscale: "):]
            self.assertIn("could not find a valid modelname", tail)
            for card, reason in ((".tran 1u 0", "TSTOP is invalid"), ("R1 in out {rr}", "Undefined parameter [rr]")):
                deck = os.path.join(d, "e.cir")
                write(deck, "bad\nV1 in 0 DC 1\n%s\nR2 out 0 1k\n.tran 1u 1m\n.end\n" % card)
                p = run([NGSCALE, "run", "-q", deck, "-o", out], check=False)
                self.assertEqual(p.returncode, 1, p.stderr)
                with h5py.File(out, "r") as f:
                    self.assertIn(reason, f["run"].attrs["message"])
                    self.assertRegex(f["run"].attrs["message"], r"line (no\. )?3\b")

    def test_ngscales_own_cleanup_commands_print_nothing(self):
        # after a netlist that loaded no circuit, the run's `remcirc` made ngspice say
        # "there is no circuit loaded. Command 'remcirc' is ignored." on the terminal
        # and in the run's log, a command the user never wrote
        with TempDir() as d:
            deck, out = os.path.join(d, "i.cir"), os.path.join(d, "o.h5")
            write(deck, "inc\n.include nosuch.lib\nV1 in 0 1\nR1 in 0 1k\n.op\n.end\n")
            p = run([NGSCALE, "run", deck, "-o", out], check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("nosuch.lib", p.stderr)
            self.assertNotIn("remcirc", p.stdout + p.stderr)
            with h5py.File(out, "r") as f:
                self.assertIn("nosuch.lib", f["run"].attrs["log"])
                self.assertNotIn("remcirc", f["run"].attrs["log"])

    def test_failed_analysis_keeps_status_and_message(self):
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "run", "-q", netlist("tran_fail.cir"), "-o", out], check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("too small", p.stderr)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "failed")

    def test_quit_in_control_block_is_a_clean_end(self):
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            run([NGSCALE, "run", "-q", netlist("quit_ctrl.cir"), "-o", out])
            plots, attrs = read_h5_plots(out)
            self.assertEqual(attrs["status"], "complete")
            self.assertEqual([p["attrs"]["analysis"] for p in plots], ["op"])

    def test_quit_with_a_status_fails_the_run_and_says_the_status(self):
        with TempDir() as d:
            deck, out = os.path.join(d, "q.cir"), os.path.join(d, "o.h5")
            write(deck, "checks\nV1 in 0 DC 1\nR1 in 0 1k\n.control\nop\nquit 3\n.endc\n.end\n")
            p = run([NGSCALE, "run", "-q", deck, "-o", out], check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("quit with status 3", p.stderr)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "failed")
                self.assertIn("quit with status 3", f["run"].attrs["message"])

    def test_a_failed_control_command_says_why_in_the_message(self):
        # ngspice's reason is two lines, "Command 'source' failed:" and the system's
        # "nosuch.cir: No such file or directory", before a generic "interrupted"
        with TempDir() as d:
            deck, out = os.path.join(d, "s.cir"), os.path.join(d, "o.h5")
            write(deck, "src\nV1 in 0 DC 1\nR1 in 0 1k\n.control\nsource nosuch.cir\nop\n.endc\n.end\n")
            p = run([NGSCALE, "run", "-q", deck, "-o", out], check=False)
            self.assertEqual(p.returncode, 1)
            tail = p.stderr[p.stderr.rindex("ngscale: "):]
            self.assertIn("Command 'source' failed", tail)
            self.assertIn("nosuch.cir: No such file or directory", tail)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "failed")
                self.assertIn("nosuch.cir: No such file or directory", f["run"].attrs["message"])

    def test_control_block_without_endc_runs_as_written_with_a_warning(self):
        # ngspice warns, runs `.end` as a command and fails on it; the script meant
        # to end there, and a batch's .param overrides must not land inside it
        with TempDir() as d:
            deck, out = os.path.join(d, "n.cir"), os.path.join(d, "o.h5")
            write(deck, "open\n.param r=1k\nV1 in 0 DC 1\nR1 in out {r}\nR2 out 0 1k\n"
                        ".control\nop\nprint v(out)\n.end\n")
            p = run([NGSCALE, "run", "-q", deck, "-o", out])
            self.assertIn("line 6: .control has no .endc", p.stderr)
            plots, attrs = read_h5_plots(out)
            self.assertEqual(attrs["status"], "complete")
            self.assertIn("no .endc", attrs["warning"])
            self.assertAlmostEqual(float(plots[0]["data"]["v(out)"][0]), 0.5, places=9)
            params = os.path.join(d, "p.csv")
            write(params, "r\n3k\n")
            run([NGSCALE, "batch", "-q", deck, "--params", params, "-o", out])
            plots, attrs = read_h5_plots(out, "job_00000000")
            self.assertEqual(attrs["status"], "complete")
            self.assertAlmostEqual(float(plots[0]["data"]["v(out)"][0]), 0.25, places=9)

    def test_log_never_replaces_the_netlist_or_the_output(self):
        with TempDir() as d:
            cir, out = os.path.join(d, "amp.cir"), os.path.join(d, "o.h5")
            with open(netlist("tran_rc.cir")) as f:
                text = f.read()
            write(cir, text)
            for log, what in ((cir, "netlist"), (os.path.join(d, ".", "o.h5"), "output file")):
                p = run([NGSCALE, "run", "-q", cir, "-o", out, "--log", log], check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("names the " + what, p.stderr)
            with open(cir) as f:
                self.assertEqual(f.read(), text)
            self.assertFalse(os.path.exists(out))

    def test_save_keeps_only_named_vectors_and_the_scale(self):
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "run", "-q", "--save", "time v(out) i(v1)", netlist("multi.cir"), "-o", out])
            self.assertNotIn("--save", p.stderr)  # "time" names the tran plot's scale
            plots, _ = read_h5_plots(out)
            by = {p["attrs"]["analysis"]: p["names"] for p in plots}
            self.assertEqual(by["tran"], ["time", "v(out)", "i(v1)"])
            self.assertEqual(by["ac"], ["frequency", "v(out)", "i(v1)"])
            out2 = os.path.join(d, "o2.h5")
            run([NGSCALE, "run", "-q", "--save", "out", netlist("tran_rc.cir"), "-o", out2])
            plots, _ = read_h5_plots(out2)
            self.assertEqual(plots[0]["names"], ["time", "v(out)"])
            # a typo keeps only the scale: said, not silent
            p = run([NGSCALE, "run", "-q", "--save", "v(out) v(nothere)", netlist("tran_rc.cir"), "-o", out2])
            self.assertIn("--save: no vector named v(nothere) in any plot", p.stderr)
            self.assertIn("warning", p.stderr)
            p = run([NGSCALE, "batch", "-q", "--save", "v(nothere)", netlist("tran_rc.cir"), netlist("tran_rc.cir"),
                     "-o", out2])
            self.assertEqual(p.stderr.count("no vector named v(nothere)"), 1, p.stderr)
            # a cache hit warns as the run it replays did, and keeps the warning attribute
            cache = os.path.join(d, "cache")
            for attempt in ("miss", "hit"):
                p = run([NGSCALE, "run", "-q", "--cache", cache, "--save", "v(out) v(nothere)",
                         netlist("tran_rc.cir"), "-o", out2])
                self.assertIn("--save: no vector named v(nothere) in any plot", p.stderr, attempt)
                with h5py.File(out2, "r") as f:
                    self.assertEqual(int(f["run"].attrs["cache_hit"]), attempt == "hit")
                    self.assertIn("v(nothere)", f["run"].attrs["warning"], attempt)

    def test_append_adds_runs_and_refuses_a_taken_group(self):
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", out, "--group", "first"])
            run([NGSCALE, "run", "-q", netlist("ac_rlc.cir"), "-o", out, "--append", "--group", "second"])
            with h5py.File(out, "r") as f:
                self.assertEqual(sorted(f.keys()), ["first", "second"])
            p = run([NGSCALE, "run", "-q", netlist("ac_rlc.cir"), "-o", out, "--append",
                     "--group", "second"], check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("already exists", p.stderr)
            with h5py.File(out, "r") as f:  # what was there is intact
                self.assertEqual(f["second"].attrs["status"], "complete")
            info = run([NGSCALE, "info", out]).stdout
            self.assertIn("run first: complete", info)
            self.assertIn("run second: complete", info)
            self.assertIn("compression ratio", info)

    def test_timeout_exit_124_keeps_data(self):
        with TempDir() as d:
            cir = os.path.join(d, "long.cir")
            write(cir, gen_circuits.rc_ladder(300, "5000u", "1n"))
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "run", "-q", "--timeout", "2", cir, "-o", out], check=False)
            self.assertEqual(p.returncode, 124, p.stderr)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "incomplete")
                self.assertEqual(f["run/tran1"].attrs["status"], "incomplete")
                self.assertGreater(len(f["run/tran1/time"]), 100)

    def test_timeout_stops_a_control_loop_that_ignores_halt(self):
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "run", "-q", "--timeout", "1", netlist("endless_ctrl.cir"), "-o", out],
                    check=False, timeout=60)
            self.assertEqual(p.returncode, 124, p.stderr)
            self.assertIn("did not stop", p.stderr)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "incomplete")
                self.assertEqual(float(f["run/op1/v(out)"][0]), 0.5)

    def test_ctrl_c_exit_130_leaves_valid_file(self):
        with TempDir() as d:
            cir = os.path.join(d, "long.cir")
            write(cir, gen_circuits.rc_ladder(300, "5000u", "1n"))
            out = os.path.join(d, "o.h5")
            proc = subprocess.Popen([NGSCALE, "run", "-q", cir, "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(2)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            self.assertEqual(proc.returncode, 130)
            with h5py.File(out, "r") as f:  # opens without h5clear: closed properly
                self.assertEqual(f["run"].attrs["status"], "incomplete")
                n = len(f["run/tran1/time"])
                self.assertGreater(n, 100)
                self.assertEqual(f["run/tran1"].attrs["points"], n)

    def test_relative_include_from_another_directory_with_spaces(self):
        with TempDir() as d:
            sub = os.path.join(d, "my circuits")
            os.mkdir(sub)
            with open(os.path.join(sub, "load.inc"), "w") as f:
                f.write("R2 out 0 3k\n")
            with open(os.path.join(sub, "top.cir"), "w") as f:
                f.write("include test\nV1 in 0 DC 4\nR1 in out 1k\n.include load.inc\n.op\n.end\n")
            out = os.path.join(d, "o.h5")
            run([NGSCALE, "run", "-q", os.path.join(sub, "top.cir"), "-o", out], cwd="/")
            plots, _ = read_h5_plots(out)
            self.assertAlmostEqual(float(plots[0]["data"]["v(out)"][0]), 3.0, places=9)

    def test_an_included_file_counts_as_the_decks_own(self):
        """ngspice runs a .control block or a .meas card from an .include as if the
        netlist held it: memory mode, how the deck is run, and --timeout follow."""
        with TempDir() as d:
            sub = os.path.join(d, "lib")
            os.mkdir(sub)

            def deck(name, body, inc):
                with open(os.path.join(sub, name + ".inc"), "w") as f:
                    f.write(inc)
                path = os.path.join(d, name + ".cir")
                write(path, name + "\n" + body + ".include lib/%s.inc\n.end\n" % name)
                return path

            rc_pulse = "V1 in 0 PULSE(0 1 0 1n 1n 5u 10u)\nR1 in out 1k\nC1 out 0 1n\n"
            # .meas in an include: the vectors are kept, so the maximum is the true one
            # (with `.save none` it was the last point's value, 0.0067)
            meas = deck("meas", rc_pulse + ".tran 10n 20u\n", "* measures\n.meas tran vmax max v(out)\n")
            out = os.path.join(d, "m.h5")
            p = run([NGSCALE, "run", meas, "-o", out])
            vmax = float(p.stdout.split("vmax")[1].split("=")[1].split()[0])
            self.assertGreater(vmax, 0.99)
            with h5py.File(out, "r") as f:
                self.assertIn("in an included file", f["run"].attrs["memory_reason"])
            # a .control block that runs the analysis: run once, not again after it
            ctl = deck("ctl", rc_pulse + ".tran 10n 20u\n", ".control\nrun\n.endc\n")
            out = os.path.join(d, "c.h5")
            run([NGSCALE, "run", "-q", ctl, "-o", out])
            with h5py.File(out, "r") as f:
                self.assertEqual(sorted(f["run"]), ["tran1"])
            # a block that only sets up (pre_osdi in a model library) leaves the deck's
            # analysis cards to run
            setup = deck("setup", rc_pulse + ".tran 10n 20u\n", ".control\nset num_threads=1\n.endc\n")
            out = os.path.join(d, "s.h5")
            run([NGSCALE, "run", "-q", setup, "-o", out])
            with h5py.File(out, "r") as f:
                self.assertEqual(sorted(f["run"]), ["tran1"])
            # a loop in an included .control block: --timeout reaches it (it hung)
            loop = deck("loop", "V1 in 0 DC 1\nR1 in out 1k\nR2 out 0 1k\n",
                        ".control\nop\nlet i = 0\nwhile 1\n  let i = i + 1\nend\n.endc\n")
            t = time.time()
            p = run([NGSCALE, "run", "-q", "--timeout", "1", loop, "-o", os.path.join(d, "l.h5")],
                    check=False, timeout=60)
            self.assertEqual(p.returncode, 124, p.stderr)
            self.assertLess(time.time() - t, 30)

    def test_info_rejects_foreign_files(self):
        with TempDir() as d:
            foreign = os.path.join(d, "foreign.h5")
            with h5py.File(foreign, "w") as f:
                f["x"] = [1, 2, 3]
            p = run([NGSCALE, "info", foreign], check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("not written by ngscale", p.stderr)
            p = run([NGSCALE, "info", netlist("tran_rc.cir")], check=False)
            self.assertEqual(p.returncode, 3)

    def test_a_long_output_keeps_its_head_and_tail_in_the_log(self):
        with TempDir() as d:
            cir = os.path.join(d, "chatty.cir")
            write(cir, "chatty\nV1 in 0 DC 1\nR1 in 0 1k\n.control\nop\nlet i = 0\nwhile i < 5000\n"
                       "echo line $&i of output\nlet i = i + 1\nend\necho the end\n.endc\n.end\n")
            out = os.path.join(d, "o.h5")
            run([NGSCALE, "run", "-q", cir, "-o", out])
            with h5py.File(out, "r") as f:
                log = f["run"].attrs["log"]
            lines = log.splitlines()
            self.assertLess(len(log), 50 * 1024)
            self.assertIn("line 0 of output", lines)
            self.assertEqual(lines[-2:], ["line 4999 of output", "the end"])
            gap = [n for n in lines if n.startswith("[... ")]
            self.assertEqual(len(gap), 1, "one line says what was left out")
            first, last = lines.index(gap[0]) - 1, lines.index(gap[0]) + 1
            left_out = int(lines[last].split()[1]) - int(lines[first].split()[1]) - 1
            self.assertEqual(gap[0], "[... %d bytes of ngspice output left out ...]"
                             % sum(len("line %d of output\n" % i) for i in
                                   range(int(lines[first].split()[1]) + 1, int(lines[last].split()[1]))))
            self.assertGreater(left_out, 1000)

    def test_the_next_run_removes_what_a_killed_one_left(self):
        with TempDir() as d:
            tmp = os.path.join(d, "tmp")
            os.mkdir(tmp)
            env = dict(os.environ, TMPDIR=tmp)
            cir = os.path.join(d, "long.cir")
            write(cir, gen_circuits.rc_ladder(50, "5000u", "1n"))
            proc = subprocess.Popen([NGSCALE, "run", "-q", cir, "-o", os.path.join(d, "k.h5")], env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.time() + 30
            while not os.path.exists(os.path.join(d, "k.h5")) and time.time() < deadline:
                time.sleep(0.05)
            proc.kill()
            proc.wait()
            left = os.listdir(tmp)
            self.assertEqual(len(left), 1, "the killed run's private directory")
            with open(os.path.join(tmp, left[0], "owner")) as f:
                owner = f.read().split()
            self.assertEqual(int(owner[0]), proc.pid)
            os.mkdir(os.path.join(tmp, "ngscale-notour"))  # no owner file: not touched
            # the same dead pid on another machine sharing TMPDIR: it may well be alive there
            os.mkdir(os.path.join(tmp, "ngscale-remote"))
            with open(os.path.join(tmp, "ngscale-remote", "owner"), "w") as f:
                f.write(" ".join(owner[:3] + ["another-host"]) + "\n")
            run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", os.path.join(d, "o.h5")], env=env)
            self.assertEqual(sorted(os.listdir(tmp)), ["ngscale-notour", "ngscale-remote"])

    def test_an_output_in_use_is_not_replaced(self):
        """HDF5 truncates before it checks its lock: an output a reader has open, or a
        running ngscale writes (HDF5 unlocks SWMR files), must be refused untouched."""
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", out])
            size = os.path.getsize(out)
            with h5py.File(out, "r"):
                for cmd in (["run", "-q", netlist("tran_rc.cir")], ["batch", "-q", netlist("tran_rc.cir")]):
                    p = run([NGSCALE] + cmd + ["-o", out], check=False)
                    self.assertEqual(p.returncode, 3, p.stderr)
                    self.assertIn("open in another program", p.stderr)
            self.assertEqual(os.path.getsize(out), size)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "complete")

            cir = os.path.join(d, "long.cir")
            write(cir, gen_circuits.rc_ladder(50, "5000u", "1n"))
            live = os.path.join(d, "live.h5")
            first = subprocess.Popen([NGSCALE, "run", "-q", "--timeout", "3", cir, "-o", live],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 30
                while not os.path.exists(live) and time.time() < deadline:
                    time.sleep(0.05)
                time.sleep(0.5)
                p = run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", live], check=False)
                self.assertEqual(p.returncode, 3, p.stderr)
                self.assertIn("open in another program", p.stderr)
            finally:
                first.wait(timeout=60)
            self.assertEqual(first.returncode, 124)
            with h5py.File(live, "r") as f:  # the first run's file, whole
                self.assertGreater(len(f["run/tran1/time"]), 100)
            run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", live])  # no one has it now

    def test_a_full_disk_keeps_what_was_flushed_readable(self):
        """A write that failed (full disk) let HDF5's close write a superblock whose end
        lay past the data that did not fit: no reader, nor h5clear, opened the file
        again, though ngscale said it kept the plot; and HDF5's error stacks filled the
        terminal. The file is now frozen at its last flush."""
        with TempDir() as d:
            cir, out = os.path.join(d, "long.cir"), os.path.join(d, "o.h5")
            write(cir, "long\nV1 in 0 SIN(0 1 1k)\nR1 in out 1k\nC1 out 0 1u\n.tran 1u 2 0 1u\n.end\n")

            def ignore_sigxfsz():  # writes past the limit then fail with EFBIG, as on a full disk
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            p = subprocess.Popen([NGSCALE, "run", "-q", cir, "-o", out], stderr=subprocess.PIPE, text=True,
                                 preexec_fn=ignore_sigxfsz)
            deadline = time.time() + 60
            while not os.path.exists(out) and time.time() < deadline:
                time.sleep(0.005)
            time.sleep(2.5)  # a few flushes
            size = os.path.getsize(out) + 200000
            resource.prlimit(p.pid, resource.RLIMIT_FSIZE, (size, size))
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 3, err[-3000:])
            self.assertIn("disk full", err)
            self.assertIn("keeps what its last flush wrote", err)
            self.assertNotIn("HDF5-DIAG", err)
            p = run([NGSCALE, "info", out])
            self.assertRegex(p.stdout, r"tran1 \(Transient Analysis\): [1-9]\d* points")
            with h5py.File(out, "r", swmr=True) as f:
                t = f["run/tran1/time"][()]
                v = f["run/tran1/v(out)"][()]
            self.assertGreater(len(t), 10000)
            self.assertTrue((np.diff(t) > 0).all())
            self.assertTrue(np.isfinite(v).all() and np.abs(v).max() < 1)
            run(["h5clear", "-s", out])
            with h5py.File(out, "r") as f:
                self.assertEqual(len(f["run/tran1/time"]), len(t))
                self.assertEqual(f["run"].attrs["status"], "incomplete")

    def test_unwritable_output_exit_3(self):
        p = run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", "/nonexistent/dir/o.h5"], check=False)
        self.assertEqual(p.returncode, 3)
        self.assertIn("/nonexistent/dir/o.h5", p.stderr)
        with TempDir() as d:  # a FIFO: refused, not waited on
            fifo = os.path.join(d, "o.h5")
            os.mkfifo(fifo)
            p = run([NGSCALE, "run", "-q", netlist("tran_rc.cir"), "-o", fifo], check=False, timeout=60)
            self.assertEqual(p.returncode, 3)

    def test_embedding_example(self):
        embed = os.environ.get("NGSCALE_EMBED")
        if not embed or not os.path.exists(embed):
            self.skipTest("embed_example not built")
        with TempDir() as d:
            out = os.path.join(d, "embed.h5")
            p = run([embed, out])
            self.assertRegex(p.stdout, r"63\.2% reached at t = 0\.00099\d*|63\.2% reached at t = 0\.0010\d*")
            rows = int(p.stdout.split("points seen by the hook")[0].split()[-1])
            with h5py.File(out, "r") as f:
                self.assertEqual(len(f["run/tran1/v(out)"]), rows)

    def test_installed_library_links_with_pkg_config_shared_and_static(self):
        # what an embedder does: install, then `cc embed.c $(pkg-config ...)`; the
        # static link needs every library libngscale uses in Libs.private
        cmake, cc, pkgconf = (shutil.which(t) for t in ("cmake", "cc", "pkg-config"))
        if not (cmake and cc and pkgconf) or not os.path.exists(os.path.join(BUILD, "cmake_install.cmake")):
            self.skipTest("needs cmake, cc, pkg-config and a configured build directory")
        with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
            if "NGSCALE_ASAN:BOOL=ON" in f.read():
                self.skipTest("a sanitizer build: programs linking it need the sanitizer runtime")
        with TempDir() as d:
            prefix = os.path.join(d, "prefix")
            run([cmake, "--install", BUILD, "--prefix", prefix])
            pcdirs = [os.path.dirname(p) for p in glob.glob(os.path.join(prefix, "*", "**", "ngscale.pc"),
                                                            recursive=True)]
            self.assertEqual(len(pcdirs), 1, pcdirs)
            env = dict(os.environ, PKG_CONFIG_PATH=pcdirs[0])
            flags = run([pkgconf, "--cflags", "--libs", "ngscale"], env=env).stdout.split()
            static = run([pkgconf, "--static", "--libs", "ngscale"], env=env).stdout.split()
            libdir = [f[2:] for f in flags if f.startswith("-L")][0]
            self.assertTrue(os.path.exists(os.path.join(libdir, "libngscale.a")), libdir)
            src = os.path.join(SRC, "examples", "embed.c")
            shared_exe, static_exe = os.path.join(d, "embed_shared"), os.path.join(d, "embed_static")
            run([cc, "-std=c11", "-Wall", "-Wextra", "-Werror", src, "-o", shared_exe] + flags +
                ["-Wl,-rpath," + libdir])
            cflags = [f for f in flags if f.startswith("-I")]
            static = [os.path.join(libdir, "libngscale.a") if f == "-lngscale" else f for f in static]
            run([cc, "-std=c11", src, "-o", static_exe] + cflags + static)
            self.assertNotIn("libngscale", run(["ldd", static_exe]).stdout)
            for exe in (shared_exe, static_exe):
                out = exe + ".h5"
                p = run([exe, out])
                self.assertIn("points seen by the hook", p.stdout)
                with h5py.File(out, "r") as f:
                    self.assertEqual(f["run"].attrs["status"], "complete")


if __name__ == "__main__":
    unittest.main()
