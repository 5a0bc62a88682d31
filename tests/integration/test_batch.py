"""`ngscale batch`: parameter sweeps, Monte Carlo and netlist lists on parallel ngspice
instances, one HDF5 file with a group per job and /summary."""
import glob
import os
import re
import resource
import signal
import subprocess
import sys
import time
import unittest

import numpy as np

from ngstest import NGSCALE, SRC, TempDir, bits_equal, h5py, netlist, run, write

sys.path.insert(0, os.path.join(SRC, "bench"))
import gen_circuits  # noqa: E402


def jobs_of(path):
    """{label: {vector path: array}} and the summary rows, from a batch file."""
    out = {}
    with h5py.File(path, "r") as f:
        summary = f["summary"][()]
        for name, g in f.items():
            if not name.startswith("job_"):
                continue
            data = {}
            g.visititems(lambda n, o: data.__setitem__(n, o[()]) if isinstance(o, h5py.Dataset) else None)
            out[g.attrs["job_label"]] = (dict(g.attrs), data)
    return out, summary


def superblock_eoa(path):
    """The end-of-allocation address in a version 2 or 3 superblock, the last thing a
    flush writes."""
    with open(path, "rb") as f:
        sb = f.read(48)
    assert sb[:8] == b"\x89HDF\r\n\x1a\n" and sb[8] in (2, 3), sb[:9]
    return int.from_bytes(sb[28:36], "little")


def kill_after_a_flush(proc, path):
    """SIGKILL just after a flush of path ends: a kill while one is being written can
    leave HDF5's metadata half written (SCHEMA.md), outside one the file keeps it all."""
    eoa, deadline = superblock_eoa(path), time.time() + 10
    while superblock_eoa(path) == eoa and time.time() < deadline:
        time.sleep(0.002)
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=60)


# v(out) = 1k / (r1 + 1k)
DIVIDER = "rc\n.param r1=1k\nV1 in 0 DC 1\nR1 in out {r1}\nR2 out 0 1k\n.op\n.end\n"


class Batch(unittest.TestCase):
    def test_param_sweep_with_temp_and_summary(self):
        with TempDir() as d:
            csv = os.path.join(d, "sweep.csv")
            long_label = "c" + "\u00e9" * 200  # 401 bytes of UTF-8: labels are kept whole
            write(csv, "# a comment\nR1val,temp,label\n1k,27,a\n2k,85,b\n500,-40,%s\n" % long_label)
            cir = os.path.join(d, "div.cir")
            write(cir, "divider\n.param R1val=10k\nV1 in 0 DC 1\nR1 in out {R1val}\nR2 out 0 1k tc1=0.01\n.op\n.end\n")
            out = os.path.join(d, "b.h5")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out, "-j", "2"])
            jobs, summary = jobs_of(out)
            self.assertEqual(sorted(jobs), ["a", "b", long_label])
            self.assertEqual(sorted(s.decode() for s in summary["label"]), ["a", "b", long_label])
            self.assertTrue(all(s == b"complete" for s in summary["status"]))
            self.assertEqual(sorted(summary["R1val"]), [500.0, 1000.0, 2000.0])
            info = run([NGSCALE, "info", out]).stdout
            self.assertIn("label: b\n    params: R1val=2k, temp=85\n", info)
            for label, r1, t in (("a", 1e3, 27), ("b", 2e3, 85), (long_label, 500, -40)):
                attrs, data = jobs[label]
                r2 = 1e3 * (1 + 0.01 * (t - 27))   # tc1 makes .temp visible in the result
                self.assertAlmostEqual(float(data["op1/v(out)"][0]), r2 / (r1 + r2), places=9)
                self.assertEqual(attrs["status"], "complete")

    def test_each_jobs_meas_results_are_in_its_log(self):
        """A sweep whose answer is a .meas result: ngspice prints it, so the job's log
        keeps it (batch shows no job's output), on a cache hit too."""
        with TempDir() as d:
            csv = os.path.join(d, "c.csv")
            write(csv, "cval\n10n\n20n\n")
            cir = os.path.join(d, "rc.cir")
            write(cir, "rc\n.param cval=1n\nV1 in 0 PULSE(0 1 0 1u 1u 50u 100u)\nR1 in out 1k\n"
                       "C1 out 0 {cval}\n.tran 0.5u 60u\n.meas tran vmax max v(out)\n.end\n")
            for name in ("b1.h5", "b2.h5"):
                out = os.path.join(d, name)
                run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out, "--cache", os.path.join(d, "cache")])
                jobs, _ = jobs_of(out)
                vmax = {}
                for label in ("0", "1"):
                    attrs, data = jobs[label]
                    m = re.search(r"^vmax\s*=\s*(\S+)", attrs["log"], re.M)
                    self.assertTrue(m, attrs["log"])
                    vmax[label] = float(m.group(1))
                    self.assertAlmostEqual(vmax[label], float(np.max(data["tran1/v(out)"])), places=5)
                self.assertGreater(vmax["0"], vmax["1"])  # the larger C charges less in 50 us
            self.assertEqual(jobs["0"][0]["cache_hit"], 1)

    def test_a_job_with_no_analysis_completes_with_a_note(self):
        with TempDir() as d:
            noan = os.path.join(d, "noan.cir")
            write(noan, "no analysis\nR1 a 0 1k\n.end\n")
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "batch", "-q", noan, noan, netlist("tran_rc.cir"), "-o", out])
            self.assertEqual(p.stderr.count("no analysis ran"), 1, p.stderr)
            with h5py.File(out, "r") as f:
                rows = {int(r["job"]): r for r in f["summary"][()]}
                self.assertEqual([rows[i]["status"] for i in range(3)], [b"complete"] * 3)
                self.assertIn(b"no analysis ran", rows[0]["message"])
                self.assertEqual(rows[2]["message"], b"")
                self.assertIn("no analysis ran", f["job_00000001"].attrs["warning"])
                self.assertNotIn("warning", f["job_00000002"].attrs)

    def test_parallel_equals_serial_bit_for_bit(self):
        with TempDir() as d:
            csv = os.path.join(d, "sweep.csv")
            write(csv, "rval\n" + "\n".join("%dk" % (i + 1) for i in range(8)) + "\n")
            cir = os.path.join(d, "rc.cir")
            write(cir, "rc\n.param rval=1k\nV1 in 0 PULSE(0 1 0 1n 1n 5u 10u)\nR1 in out {rval}\n"
                       "C1 out 0 1n\n.tran 10n 40u\n.ac dec 10 1k 1meg\n.end\n")
            one, many = os.path.join(d, "j1.h5"), os.path.join(d, "j2.h5")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", one, "-j", "1"])
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", many, "-j", "2"])
            a, _ = jobs_of(one)
            b, _ = jobs_of(many)
            self.assertEqual(sorted(a), sorted(b))
            for label in a:
                self.assertEqual(sorted(a[label][1]), sorted(b[label][1]))
                for vec in a[label][1]:
                    self.assertTrue(bits_equal(a[label][1][vec], b[label][1][vec]), (label, vec))
            # and `ngscale run` of the netlist (rval=1k, the first row): its writer has a
            # file of its own, a batch's writers share one file and take turns on it
            single = os.path.join(d, "run.h5")
            run([NGSCALE, "run", "-q", cir, "-o", single])
            first = next(data for attrs, data in b.values() if attrs["param.rval"] == "1k")
            self.assertIn("tran1/v(out)", first)
            with h5py.File(single, "r") as f:
                for vec, values in first.items():
                    self.assertIn(vec, f["run"])
                    self.assertTrue(bits_equal(values, f["run"][vec][()]), vec)

    @unittest.skipUnless(os.environ.get("NGSCALE_MIMALLOC"), "ngscale built without mimalloc")
    def test_the_instances_allocate_with_mimalloc(self):
        # the private copies are dlopen'ed: their calloc must bind to the command's
        # mimalloc, not to glibc's, which takes an arena lock per call once the process
        # has threads (ngspice callocs ~23 times per point)
        with TempDir() as d:
            cir = os.path.join(d, "rc.cir")
            write(cir, "rc\nV1 in 0 PULSE(0 1 0 1n 1n 5u 10u)\nR1 in out 1k\nC1 out 0 1n\n.tran 10n 20u\n.end\n")
            log = os.path.join(d, "ld")
            env = dict(os.environ, LD_DEBUG="bindings", LD_DEBUG_OUTPUT=log)
            run([NGSCALE, "batch", "-q", cir, "-o", os.path.join(d, "o.h5"), "-j", "1"], env=env)
            text = ""
            for path in glob.glob(log + ".*"):
                with open(path, errors="replace") as f:
                    text += f.read()
            binds = re.findall(r"binding file \S*libngspice\S* \[\d+\] to (\S+) \[\d+\]: normal symbol `calloc'", text)
            self.assertTrue(binds, "no calloc binding of a libngspice copy in LD_DEBUG's output")
            self.assertTrue(all("libmimalloc" in b for b in binds), binds)

    def test_xspice_code_models_in_concurrent_instances(self):
        # also with the user's SPICE_SCRIPTS, which ngspice prefers for its spinit:
        # instances loaded the shared .cm files then, and the batch crashed
        scripts = "/usr/share/ngspice/scripts"
        envs = [None] + ([dict(os.environ, SPICE_SCRIPTS=scripts)] if os.path.exists(scripts + "/spinit") else [])
        with TempDir() as d:
            csv = os.path.join(d, "gains.csv")
            write(csv, "g\n" + "\n".join(str(g) for g in (1, 2, 3, 5, 8, 13, 21, 34) * 2) + "\n")
            out = os.path.join(d, "x.h5")
            for env in envs:
                run([NGSCALE, "batch", "-q", netlist("xspice_gain.cir"), "--params", csv, "-o", out, "-j", "2"],
                    env=env)
                jobs, _ = jobs_of(out)
                self.assertEqual(len(jobs), 16)
                for attrs, data in jobs.values():
                    g = float(attrs["param.g"])
                    vin, vout = data["tran1/v(in)"], data["tran1/v(out)"]
                    self.assertGreater(np.abs(vin).max(), 0.9)
                    np.testing.assert_allclose(vout, g * vin, rtol=0, atol=1e-12 * g)

    def test_monte_carlo_is_reproducible_per_seed(self):
        with TempDir() as d:
            cir = os.path.join(d, "mc.cir")
            write(cir, "mc\n.param rv = agauss(1k, 100, 1)\nV1 in 0 DC 1\nR1 in out {rv}\nR2 out 0 1k\n.op\n.end\n")
            runs = []
            # two instances seeding at once once took each other's numbers (libc's
            # srand/rand are process-wide): repeat the batch to give that a chance
            for name, seed in (("a", "7"), ("b", "7"), ("c", "8"), ("d", "7"), ("e", "7")):
                out = os.path.join(d, name + ".h5")
                run([NGSCALE, "batch", "-q", "-j", "2", cir, "--monte-carlo", "8" if seed == "7" else "4",
                     "--seed", seed, "-o", out])
                jobs, summary = jobs_of(out)
                runs.append({int(s["seed"]): float(jobs[s["label"].decode()][1]["op1/v(out)"][0])
                             for s in summary})
            for other in (runs[1], runs[3], runs[4]):
                self.assertEqual(runs[0], other)                 # same seeds, same results
            runs[0] = {k: v for k, v in runs[0].items() if k < 11}
            self.assertEqual(sorted(runs[0]), [7, 8, 9, 10])
            self.assertEqual(len(set(runs[0].values())), 4)     # each job its own draw
            self.assertEqual(runs[0][8], runs[2][8])             # seed 8 in both batches
            self.assertNotEqual(runs[0][7], runs[2][11])

    def test_monte_carlo_of_a_circuit_that_draws_nothing_warns(self):
        # every job would give the same result: said once, the jobs still run
        with TempDir() as d:
            fixed, drawn = os.path.join(d, "fixed.cir"), os.path.join(d, "drawn.cir")
            write(fixed, "fixed\nV1 in 0 DC 1\nR1 in out 1k\nR2 out 0 1k\n.op\n.end\n")
            write(drawn, "drawn\n.include values.inc\nV1 in 0 DC 1\nR1 in out {rv}\nR2 out 0 1k\n.op\n.end\n")
            write(os.path.join(d, "values.inc"), ".param rv = agauss(1k, 100, 1)\n")
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "batch", "-q", "-j", "1", fixed, "--monte-carlo", "3", "-o", out])
            self.assertEqual(p.stderr.count("names none of ngspice's random functions"), 1, p.stderr)
            self.assertIn("fixed.cir", p.stderr)
            jobs, summary = jobs_of(out)
            self.assertEqual([s["status"].decode() for s in summary], ["complete"] * 3)
            # a draw in an included file counts
            p = run([NGSCALE, "batch", "-q", "-j", "1", drawn, "--monte-carlo", "3", "-o", out])
            self.assertNotIn("random functions", p.stderr)

    def test_gaussian_trrandom_jobs_equal_ngspice_run_alone(self):
        # ngspice's gaussian generator keeps a spare draw: a reused instance gave job i
        # the state job i-1 left, unlike `ngspice -b` of the same netlist and seed
        with TempDir() as d:
            cir = os.path.join(d, "trr.cir")
            write(cir, "trr\nVR in 0 DC 0 TRRANDOM(2 10u 0 1 0)\nR1 in out 1k\nC1 out 0 10n\n"
                       ".tran 1u 300u\n.end\n")
            out = os.path.join(d, "j1.h5")
            run([NGSCALE, "batch", "-q", "-j", "1", cir, "--monte-carlo", "3", "-o", out])
            for seed in (1, 2, 3):
                ref = os.path.join(d, "ref%d" % seed)
                write(ref + ".cir", open(cir).read().replace(".end", ".options seed=%d\n.end" % seed))
                run(["ngspice", "-b", "-r", ref + ".raw", ref + ".cir"])
                run([NGSCALE, "convert", "-q", ref + ".raw", ref + ".h5"])
                with h5py.File(ref + ".h5", "r") as f, h5py.File(out, "r") as g:
                    self.assertTrue(bits_equal(g["job_%08d/tran1/v(in)" % (seed - 1)][()],
                                               f["run/tran1/v(in)"][()]), "seed %d" % seed)

    def test_overrides_ngspice_would_not_apply_are_refused(self):
        with TempDir() as d:
            out, own = os.path.join(d, "o.h5"), os.path.join(d, "own.cir")
            circuit = "own seed\n.param r1=agauss(1k, 100, 1)\nV1 in 0 DC 1\nR1 in out {r1}\nR2 out 0 1k\n"
            write(os.path.join(d, "opts.inc"), ".options seed=42\n")

            def refused(netlist_file, extra, why):
                p = run([NGSCALE, "batch", "-q", netlist_file, "-o", out] + extra, check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn(why, p.stderr)
                self.assertFalse(os.path.exists(out))

            # a seed of its own: in a card, in an included file, or set by its script
            for own_seed in (".options seed=42\n.op\n", ".include opts.inc\n.op\n",
                             ".control\nsetseed 3\nop\n.endc\n"):
                write(own, circuit + own_seed + ".end\n")
                refused(own, ["--monte-carlo", "2"], "sets its own random seed")
            # an included file found through NGSPICE_INPUT_DIR, as the run finds it
            os.makedirs(os.path.join(d, "lib"))
            write(os.path.join(d, "lib", "seeded.inc"), ".options seed=42\n")
            write(own, circuit + ".include seeded.inc\n.op\n.end\n")
            p = run([NGSCALE, "batch", "-q", own, "-o", out, "--monte-carlo", "2"], check=False,
                    env=dict(os.environ, NGSPICE_INPUT_DIR=os.path.join(d, "lib")))
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("sets its own random seed", p.stderr)
            # parameters given to a command script
            script, params = os.path.join(d, "s.sp"), os.path.join(d, "p.csv")
            write(script, "*ng_script\nsource %s\nop\n" % netlist("op_divider.cir"))
            write(params, "r1\n1k\n2k\n")
            refused(script, ["--params", params], "*ng_script deck")

    def test_a_temp_that_the_netlists_script_sets_again_is_refused(self):
        """`set temp` or `option temp` in .control wins over the job's `.temp` card: the
        jobs ran at the script's temperature while /summary showed the CSV's."""
        with TempDir() as d:
            out, cir, csv = os.path.join(d, "o.h5"), os.path.join(d, "t.cir"), os.path.join(d, "t.csv")
            circuit = "tc\nV1 in 0 DC 1\nR1 in out 1k tc1=0.01\nR2 out 0 1k\n"
            write(csv, "temp\n27\n77\n")
            for command in ("option temp=100", "set temp = 100", "options reltol=1e-4 TEMP=100"):
                write(cir, circuit + ".control\n%s\nop\n.endc\n.end\n" % command)
                p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out], check=False)
                self.assertEqual(p.returncode, 2, command + ": " + p.stderr)
                self.assertIn("sets the temperature", p.stderr)
                self.assertFalse(os.path.exists(out))
            # a variable that only starts like it, or a script that sets no temperature,
            # runs each job at its own
            write(cir, circuit + ".control\nset temp_dir = /tmp\noption reltol=1e-4\nop\n.endc\n.end\n")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out])
            jobs, summary = jobs_of(out)
            self.assertAlmostEqual(float(jobs["0"][1]["op1/v(out)"][0]), 0.5, places=9)
            self.assertAlmostEqual(float(jobs["1"][1]["op1/v(out)"][0]), 1 / 2.5, places=9)

    def test_a_sweep_runs_the_netlist_as_it_was_when_the_batch_started(self):
        with TempDir() as d:
            cir = os.path.join(d, "slow.cir")
            text = ("slow\n.param r1=1k\nV1 in 0 DC 1\nR1 in out {r1}\nR2 out 0 1k\n"
                    ".control\nop\nshell sleep 0.3\n.endc\n.end\n")
            write(cir, text)
            params = os.path.join(d, "p.csv")
            write(params, "r1\n" + "1k\n" * 6)
            out = os.path.join(d, "o.h5")
            proc = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "1", cir, "--params", params, "-o", out],
                                    stderr=subprocess.PIPE)
            time.sleep(0.8)  # a few jobs in: the user edits the circuit for the next experiment
            write(cir, text.replace("R2 out 0 1k", "R2 out 0 3k"))
            self.assertEqual(proc.wait(timeout=120), 0, proc.stderr.read().decode())
            jobs, _ = jobs_of(out)
            values = {float(v[1]["op1/v(out)"][0]) for v in jobs.values()}
            self.assertEqual(values, {0.5})

    def test_failing_jobs_are_recorded_and_the_rest_complete(self):
        with TempDir() as d:
            long_cir = os.path.join(d, "long.cir")
            write(long_cir, gen_circuits.rc_ladder(300, "5000u", "1n"))
            files = [netlist("tran_rc.cir"), netlist("bad_syntax.cir"), netlist("quit_ctrl.cir"),
                     netlist("subckt_unbalanced.cir"), long_cir, netlist("tran_fail.cir"),
                     netlist("ac_rlc.cir")]
            out = os.path.join(d, "f.h5")
            p = run([NGSCALE, "batch", "-q", "--timeout", "3", "-j", "2"] + files + ["-o", out], check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            _, summary = jobs_of(out)
            status = {os.path.basename(s["label"].decode()): (s["status"].decode(), s["message"].decode())
                      for s in summary}
            self.assertEqual(status["tran_rc.cir"][0], "complete")
            self.assertEqual(status["ac_rlc.cir"][0], "complete")
            self.assertEqual(status["quit_ctrl.cir"][0], "complete")
            self.assertEqual(status["bad_syntax.cir"][0], "failed")
            self.assertIn("line 4", status["bad_syntax.cir"][1])
            self.assertEqual(status["tran_fail.cir"][0], "failed")
            self.assertIn("too small", status["tran_fail.cir"][1])
            self.assertEqual(status["long.cir"][0], "timeout")
            # ngspice gives up while reading this one, on the worker's own thread: the
            # copy is replaced at once (the next job once waited a minute for that
            # thread to end)
            self.assertEqual(status["subckt_unbalanced.cir"][0], "failed")
            self.assertIn("ngspice exited", status["subckt_unbalanced.cir"][1])
            self.assertIn(".subckt", status["subckt_unbalanced.cir"][1])
            self.assertLess(max(s["wall_s"] for s in summary), 30)
            info = run([NGSCALE, "info", out]).stdout
            self.assertIn("batch: 7 jobs (3 complete, 3 failed, 1 timeout), each in /summary", info)
            self.assertRegex(info, r"ngspice rejected the netlist:\n      \S")  # its lines indented

    def test_a_long_error_is_whole_in_the_summary(self):
        """/summary's message was cut at 511 bytes while the job's group kept ngspice's
        whole text: the lines that said what happened were lost."""
        with TempDir() as d:
            cir, out = os.path.join(d, "long_error.cir"), os.path.join(d, "o.h5")
            write(cir, "t\nX1 a b sub_%s\n.op\n.end\n" % ("n" * 700))
            p = run([NGSCALE, "batch", "-q", cir, "-o", out], check=False)
            self.assertEqual(p.returncode, 1, p.stderr)
            with h5py.File(out, "r") as f:
                message = f["summary"][0]["message"].decode()
                self.assertEqual(message, f["job_00000000"].attrs["message"])
            self.assertGreater(len(message.encode()), 700)
            self.assertTrue(message.endswith("Simulation interrupted due to error!"), message[-80:])

    def test_a_control_loop_that_ignores_halt_times_out_and_the_batch_goes_on(self):
        """bg_halt stops analyses, not a .control `while` loop: its instance is given up
        (the batch once waited for it forever, Ctrl-C included)."""
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            files = [netlist("endless_ctrl.cir"), netlist("tran_rc.cir"), netlist("ac_rlc.cir")]
            p = run([NGSCALE, "batch", "-q", "-j", "1", "--timeout", "1"] + files + ["-o", out],
                    check=False, timeout=120)
            self.assertEqual(p.returncode, 1, p.stderr)
            jobs, summary = jobs_of(out)
            status = {os.path.basename(s["label"].decode()): (s["status"].decode(), s["message"].decode())
                      for s in summary}
            self.assertEqual(status["endless_ctrl.cir"][0], "timeout")
            self.assertIn("did not stop", status["endless_ctrl.cir"][1])
            self.assertEqual(status["tran_rc.cir"][0], "complete")
            self.assertEqual(status["ac_rlc.cir"][0], "complete")
            # the operating point it computed before the loop is kept
            endless = jobs[netlist("endless_ctrl.cir")][1]
            self.assertIn("op1/v(out)", endless)
            self.assertEqual(float(endless["op1/v(out)"][0]), 0.5)
            with h5py.File(out, "r") as f:  # the analysis ended before the loop: complete
                job = [g for g in f if g.startswith("job_") and
                       f[g].attrs["job_netlist"].endswith("endless_ctrl.cir")][0]
                self.assertEqual(f[job + "/op1"].attrs["status"], "complete")

            # Ctrl-C reaches it too, with no --timeout
            proc = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "1", netlist("endless_ctrl.cir"),
                                     netlist("tran_rc.cir"), "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(1)
            proc.send_signal(signal.SIGINT)
            proc.wait(timeout=60)
            err = proc.stderr.read().decode()
            self.assertEqual(proc.returncode, 130, err)
            _, summary = jobs_of(out)
            self.assertEqual(sorted(s["status"].decode() for s in summary), ["interrupted", "not run"])
            # the stopped job is no failure of its own
            self.assertIn("0/2 jobs done, 0 failed, 1 interrupted", err)

    def test_an_abandoned_instance_touches_no_later_job(self):
        """Callbacks under way when a copy is abandoned are waited for (they used the
        engine that the next job's copy gets: a crash, or the old plots in the next
        job's group), and a copy that may still draw random numbers makes later jobs
        that draw fail instead of giving values that cannot be reproduced."""
        with TempDir() as d:
            ladder = ["ladder op loop", "V1 n0 0 DC 1"]
            for i in range(300):
                ladder += ["R%d n%d n%d 1k" % (i, i, i + 1), "RG%d n%d 0 100k" % (i, i + 1)]
            ladder += [".control", "while 1", "op", "end", ".endc", ".end"]
            loop = os.path.join(d, "loop.cir")
            write(loop, "\n".join(ladder) + "\n")
            seeding = os.path.join(d, "seeding.cir")
            write(seeding, "seeding loop\nV1 a 0 DC 1\nR1 a 0 1k\n.control\nwhile 1\nsetseed 5\nend\n.endc\n.end\n")
            div = os.path.join(d, "div.cir")
            write(div, DIVIDER)
            mc = os.path.join(d, "mc.cir")
            write(mc, "mc\n.param r1=agauss(1k, 0.1k, 3)\nV1 in 0 DC 1\nR1 in out {r1}\nR2 out 0 1k\n.op\n.end\n")
            out = os.path.join(d, "o.h5")
            files = [loop, div, loop, div, seeding, div, mc]
            p = run([NGSCALE, "batch", "-q", "-j", "1", "--timeout", "0.4", "--save", "v(n1) v(out)"] + files
                    + ["-o", out], check=False, timeout=300)
            self.assertEqual(p.returncode, 1, p.stderr)  # not a crash
            with h5py.File(out, "r") as f:
                rows = sorted(f["summary"][()], key=lambda s: s["job"])
                for s in rows:
                    job = "job_%08d" % s["job"]
                    if s["netlist"].decode().endswith("div.cir"):
                        self.assertEqual(s["status"], b"complete", s)
                        self.assertEqual(sorted(f[job]), ["op1"], "only its own plot")
                        self.assertEqual(float(f[job + "/op1/v(out)"][0]), 0.5)
                self.assertEqual([s["status"].decode() for s in rows if b"loop" in s["netlist"] or
                                  b"seeding" in s["netlist"]], ["timeout"] * 3)
                # a loop that runs analyses calls back: its thread ends there and uses
                # no core after; one that only sets seeds never does and runs on
                for s in rows:
                    if s["netlist"].decode().endswith("loop.cir"):
                        self.assertIn("and its thread ended", s["message"].decode())
                    if s["netlist"].decode().endswith("seeding.cir"):
                        self.assertIn("keeps a core", s["message"].decode())
                self.assertEqual(rows[-1]["status"], b"failed")
                self.assertIn("could not be reproduced", rows[-1]["message"].decode())

    def test_ctrl_c_keeps_finished_jobs_in_a_valid_file(self):
        with TempDir() as d:
            cir = os.path.join(d, "long.cir")
            write(cir, gen_circuits.rc_ladder(100, "40u", "1n"))
            out = os.path.join(d, "i.h5")
            t0 = time.time()  # one job's length, to interrupt after a few have finished
            run([NGSCALE, "batch", "-q", "-j", "1", cir, "-o", os.path.join(d, "one.h5")])
            one_job = time.time() - t0
            proc = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "2", "--monte-carlo", "40", cir, "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            time.sleep(4 * one_job + 0.5)
            self.assertIsNone(proc.poll(), "the batch should still be running")
            # twice at once, as timeout(1) or a kill of the process group delivers it:
            # the second is the same request, not a kill in the middle of the last flush
            proc.send_signal(signal.SIGINT)
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=120)
            self.assertEqual(proc.returncode, 130, proc.stderr.read().decode())
            jobs, summary = jobs_of(out)  # opens: the file was closed properly
            status = [s.decode() for s in summary["status"]]
            self.assertEqual(len(status), 40)
            self.assertIn("not run", status)
            self.assertGreaterEqual(status.count("complete"), 1)
            complete = [s["label"].decode() for s in summary if s["status"] == b"complete"]
            for label in complete:
                self.assertEqual(jobs[label][0]["status"], "complete")
            self.assertEqual(sorted(os.listdir(d)), ["i.h5", "long.cir", "one.h5"], "nothing left beside the output")

    def test_ctrl_c_while_the_instances_start_leaves_nothing_behind(self):
        with TempDir() as d:
            tmp = os.path.join(d, "tmp")
            os.mkdir(tmp)
            env = dict(os.environ, TMPDIR=tmp)
            for delay in (0.02, 0.05, 0.1, 0.2):
                with self.subTest(delay=delay):
                    proc = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "8", "--monte-carlo", "8",
                                             netlist("tran_rc.cir"), "-o", os.path.join(d, "o.h5")],
                                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                    time.sleep(delay)
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=60)
                    # killed before the handler was in place (nothing made yet), or stopped
                    self.assertIn(proc.returncode, (130, -signal.SIGINT, 0), proc.stderr.read().decode())
                    self.assertEqual(os.listdir(tmp), [], "an instance's private directory was left")

    def test_a_killed_batch_keeps_the_jobs_of_its_last_flush(self):
        with TempDir() as d:
            cir = os.path.join(d, "k.cir")
            write(cir, gen_circuits.rc_ladder(100, "40u", "1n"))
            out = os.path.join(d, "k.h5")
            t0 = time.time()
            run([NGSCALE, "batch", "-q", "-j", "1", cir, "-o", os.path.join(d, "one.h5")])
            one_job = time.time() - t0
            proc = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "2", "--monte-carlo", "60", cir, "-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(max(2.5, 6 * one_job))  # past at least two of the once-a-second flushes
            self.assertIsNone(proc.poll(), "the batch should still be running")
            kill_after_a_flush(proc, out)
            subprocess.run(["h5clear", "-s", out], check=True)
            jobs, summary = jobs_of(out)
            self.assertGreaterEqual(len(summary), 1, "rows of the last flush")
            for row in summary:
                self.assertEqual(row["status"], b"complete")
                attrs, data = jobs[row["label"].decode()]
                self.assertEqual(attrs["status"], "complete")
                self.assertEqual(len(data["tran1/time"]), row["points"])
                self.assertTrue(np.all(np.diff(data["tran1/time"]) > 0))

    def test_finished_jobs_reach_the_file_while_a_long_one_runs(self):
        with TempDir() as d:
            quick = []
            for i in range(4):
                quick.append(os.path.join(d, "q%d.cir" % i))
                write(quick[-1], "quick %d\nV1 in 0 DC %d\nR1 in out 1k\nR2 out 0 1k\n.op\n.end\n" % (i, i + 1))
            long_cir = os.path.join(d, "long.cir")
            write(long_cir, gen_circuits.rc_ladder(300, "5000u", "1n"))
            out = os.path.join(d, "l.h5")
            proc = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "2", long_cir] + quick + ["-o", out],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(3.5)  # the quick jobs are done, a flush or two has passed, long.cir runs
            self.assertIsNone(proc.poll(), "the long job should still be running")
            # a batch writes without SWMR: info says so, not "left by a killed writer"
            p = run([NGSCALE, "info", out], check=False)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("being written without SWMR", p.stderr)
            kill_after_a_flush(proc, out)
            subprocess.run(["h5clear", "-s", out], check=True)
            jobs, summary = jobs_of(out)
            done = sorted(row["label"].decode() for row in summary)
            self.assertEqual(done, sorted(quick), "the quick jobs are in /summary")
            for q in quick:
                self.assertEqual(jobs[q][0]["status"], "complete")

    def test_instances_that_cannot_start_give_a_clear_error_and_leave_nothing(self):
        with TempDir() as d:
            tmp = os.path.join(d, "tmp")
            os.mkdir(tmp)
            not_a_library = os.path.join(d, "libngspice.so")
            write(not_a_library, "not an ELF file\n")
            out = os.path.join(d, "o.h5")
            env = dict(os.environ, NGSCALE_LIBNGSPICE=not_a_library, TMPDIR=tmp)
            # the instances start side by side: each fails, each is cleaned up
            p = run([NGSCALE, "batch", "-j", "3", netlist("tran_rc.cir"), "-o", out], check=False, env=env)
            self.assertNotEqual(p.returncode, 0)
            self.assertIn("cannot start ngspice instance 1", p.stderr)
            self.assertIn(not_a_library, p.stderr)
            self.assertEqual(os.listdir(tmp), [], "no private directory left behind")
            self.assertFalse(os.path.exists(out), "no output without an instance")

    def test_usage_errors(self):
        p = run([NGSCALE, "batch", netlist("tran_rc.cir")], check=False)
        self.assertEqual(p.returncode, 2)
        with TempDir() as d:
            bad = os.path.join(d, "bad.csv")
            write(bad, "a,b\n1,2\n3\n")
            p = run([NGSCALE, "batch", netlist("tran_rc.cir"), "--params", bad, "-o", os.path.join(d, "o.h5")],
                    check=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn("line 3", p.stderr)
            good = os.path.join(d, "good.csv")
            write(good, "R\n1k\n")
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "batch", netlist("tran_rc.cir"), "--params", good, "--params", good, "-o", out],
                    check=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn("--params is given twice", p.stderr)
            # a directory among the netlists is refused before any job runs, like a missing file
            for bad_netlist, code, message in ((d, 3, "is a directory"), (os.path.join(d, "nope.cir"), 3, "nope.cir")):
                p = run([NGSCALE, "batch", "-q", netlist("tran_rc.cir"), bad_netlist, "-o", out], check=False)
                self.assertEqual(p.returncode, code, p.stderr)
                self.assertIn(message, p.stderr)
                self.assertFalse(os.path.exists(out))

    def test_help_names_every_option_batch_takes(self):
        """--abs-err, --rel-err, --bits and -q were taken by batch but its part of --help
        named none of them."""
        help_text = run([NGSCALE, "--help"]).stdout
        section = help_text[help_text.index("Options of batch"):help_text.index("Options of spectrum")]
        for option in ("--output", "--jobs", "--params", "--monte-carlo", "--seed", "--spectrum", "--quiet",
                       "--codec", "--level", "--abs-err", "--rel-err", "--bits", "--save", "--memory",
                       "--timeout", "--cache"):
            self.assertIn(option, section)

    def test_an_empty_params_path_says_so(self):
        """`--params "$CSV"` with CSV unset said "ngscale batch: : No such file or directory"."""
        with TempDir() as d:
            p = run([NGSCALE, "batch", "-q", netlist("tran_rc.cir"), "-o", os.path.join(d, "o.h5"), "--params", ""],
                    check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("ngscale batch: --params: the CSV path is empty", p.stderr)

    def test_an_empty_spectrum_vector_is_refused_before_any_job_runs(self):
        """`--spectrum "$V"` with V unset ran the whole batch, then failed its last step
        with "ngscale spectrum: no vector given" (exit 2)."""
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "batch", "-q", netlist("tran_rc.cir"), "-o", out, "--spectrum", ""], check=False)
            self.assertEqual(p.returncode, 2, p.stderr)
            self.assertIn("ngscale batch: --spectrum needs a vector", p.stderr)
            self.assertFalse(os.path.exists(out), "no job runs")

    def test_bad_values_are_refused_before_any_job_runs(self):
        """A value ngspice would ignore or misread (seed 0 or 'abc', temp 'abc', an empty
        parameter, '3x') is a usage error that names it, and no output is written."""
        cir = netlist("tran_rc.cir")
        with TempDir() as d:
            out = os.path.join(d, "o.h5")
            cases = [
                ("R,seed\n1k,7\n2k,abc\n", [], "line 3: seed 'abc'"),
                ("R,seed\n1k,0\n", [], "line 2: seed '0'"),
                ("R,seed\n1k,2147483648\n", [], "seed '2147483648'"),
                ("R,seed\n,7\n", [], "line 2: no value for R"),
                ("R,,seed\n1k,2,7\n", [], "column 2 has no name"),
                # `.param r1=5k x=2k` set r1 to 5k, and /summary said r1 was 2k
                ('"r1=5k x"\n2k\n', [], "line 1: column 'r1=5k x' is not a parameter name"),
                ('seed,"R 1"\n7,2k\n', [], "column 'R 1' is not a parameter name"),
                # a spreadsheet's CSV where ';' separates (a decimal comma locale)
                ("R;seed\n1k;7\n", [], "separated by commas, not ';'"),
                ("R,temp\n1k,27C\n2k,abc\n", [], "line 3: temp 'abc' is not a number"),
                (None, ["--monte-carlo", "3x"], "--monte-carlo"),
                (None, ["--monte-carlo", "3", "--seed", "0"], "--seed"),
                (None, ["--monte-carlo", "3", "--seed", "2147483646"], "2147483646..2147483648"),
                ("R\n1k\n", ["--monte-carlo", "3"], "not both"),
                (None, ["-j", "2x"], "-j"),
            ]
            for i, (text, args, message) in enumerate(cases):
                extra = list(args)
                if text is not None:
                    csv = os.path.join(d, "p%d.csv" % i)
                    write(csv, text)
                    extra += ["--params", csv]
                p = run([NGSCALE, "batch", "-q", cir, "-o", out] + extra, check=False)
                self.assertEqual(p.returncode, 2, (text, args, p.stderr))
                self.assertIn(message, p.stderr, (text, args))
                self.assertFalse(os.path.exists(out), (text, args))

    def test_an_output_that_is_an_input_or_not_hdf5_is_left_alone(self):
        with TempDir() as d:
            cir = os.path.join(d, "rc.cir")
            write(cir, DIVIDER)
            csv = os.path.join(d, "p.csv")
            write(csv, "r1\n2k\n")
            notes = os.path.join(d, "notes.txt")
            write(notes, "not HDF5\n")
            good = os.path.join(d, "good.h5")
            run([NGSCALE, "batch", "-q", cir, "-o", good])
            clash = os.path.join(d, "clash.csv")
            write(clash, "points\n2k\n")
            before = {p: open(p, "rb").read() for p in (cir, csv, notes, good)}
            for args, message in (
                    (["batch", cir, "-o", cir], "also an input"),
                    (["batch", cir, "--params", csv, "-o", csv], "also an input"),
                    (["run", cir, "-o", cir], "also an input"),
                    (["batch", cir, "-o", notes], "not an HDF5 file"),
                    (["run", cir, "-o", notes], "not an HDF5 file"),
                    # a bad parameter name is found before the output is created
                    (["batch", cir, "--params", clash, "-o", good], "has the name of a /summary column")):
                p = run([NGSCALE] + args[:1] + ["-q"] + args[1:], check=False)
                self.assertEqual(p.returncode, 2, (args, p.stderr))
                self.assertIn(message, p.stderr, args)
                self.assertNotIn("jobs done", p.stderr, "no tally of a batch that never started")
            for path, data in before.items():
                self.assertEqual(open(path, "rb").read(), data, path)

    def test_a_netlist_in_a_directory_with_quotes_and_shell_characters_finds_its_includes(self):
        """ngspice's command line mangles $, ;, !, `, \\ and a ' with a " in a path,
        even quoted: the sourcepath set for the netlist's directory broke, and its
        relative .include was not found."""
        with TempDir() as d:
            for name in ("it's a \"dir\"", "x$HOME;y!z`w\\v"):
                sub = os.path.join(d, name)
                os.mkdir(sub)
                write(os.path.join(sub, "load.inc"), "* the load\nR2 out 0 1k\n")
                cir = os.path.join(sub, "rc.cir")
                write(cir, "rc\n.param r1=1k\n.include load.inc\nV1 in 0 DC 1\nR1 in out {r1}\n.op\n.end\n")
                csv = os.path.join(d, "p.csv")
                write(csv, "r1\n3k\n")
                out = os.path.join(d, "o.h5")
                for args in ([cir, cir], [cir, "--params", csv]):
                    p = run([NGSCALE, "batch", "-q"] + args + ["-o", out], check=False)
                    self.assertEqual(p.returncode, 0, (name, args, p.stderr))
                    _, summary = jobs_of(out)
                    self.assertTrue(all(s == b"complete" for s in summary["status"]), (name, summary))
                jobs, _ = jobs_of(out)
                self.assertAlmostEqual(float(jobs["0"][1]["op1/v(out)"][0]), 0.25, places=12)
                p = run([NGSCALE, "run", "-q", cir, "-o", out], check=False)
                self.assertEqual(p.returncode, 0, (name, p.stderr))

    def test_csv_quotes_bom_and_summary_numbers(self):
        with TempDir() as d:
            cir = os.path.join(d, "rc.cir")
            write(cir, DIVIDER)
            csv = os.path.join(d, "p.csv")
            out = os.path.join(d, "o.h5")
            # what spreadsheets write: a byte-order mark, quoted cells, CRLF, or CR alone
            # (Excel's 'CSV (Macintosh)': it was read as one header line and refused)
            for end in (b"\r\n", b"\r"):
                with open(csv, "wb") as f:
                    f.write(b'\xef\xbb\xbf"r1","label"\r\n"3k","a, ""quoted"" label"\r\n1kohm,b\r\n{2*1k},c\r\n'
                            .replace(b"\r\n", end))
                run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out])
                jobs, summary = jobs_of(out)
                self.assertEqual(sorted(jobs), ['a, "quoted" label', "b", "c"])
                self.assertIn("r1", summary.dtype.names)
                for label, r1 in (('a, "quoted" label', 3e3), ("b", 1e3), ("c", 2e3)):
                    self.assertAlmostEqual(float(jobs[label][1]["op1/v(out)"][0]), 1e3 / (r1 + 1e3), places=12)
                r1 = {s["label"].decode(): float(s["r1"]) for s in summary}
                self.assertEqual(r1['a, "quoted" label'], 3000.0)
                self.assertEqual(r1["b"], 1000.0)
                self.assertTrue(np.isnan(r1["c"]), "an expression is not a number in /summary")
            for text, message in (('r1,R1\n2k,3k\n', "given twice"), ('r1\n"2k\n', "quote is not closed"),
                                  ('r1,label,LABEL\n2k,a,b\n', "given twice")):
                write(csv, text)
                p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out], check=False)
                self.assertEqual(p.returncode, 2, text)
                self.assertIn(message, p.stderr, text)

    def test_a_value_with_the_micro_sign_is_a_number_in_the_summary(self):
        """ngspice reads 2\u00b5 as 2u; /summary had NaN ("not a number") for it."""
        with TempDir() as d:
            cir, csv, out = os.path.join(d, "v.cir"), os.path.join(d, "p.csv"), os.path.join(d, "o.h5")
            write(cir, "v\n.param v=1\nV1 in 0 DC {v}\nR1 in 0 1\n.op\n.end\n")
            write(csv, "v,label\n2\u00b5,micro\n3u,u\n")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out])
            jobs, summary = jobs_of(out)
            for row in summary:
                label = row["label"].decode()
                simulated = float(jobs[label][1]["op1/v(in)"][0])
                self.assertAlmostEqual(simulated, {"micro": 2e-6, "u": 3e-6}[label], places=15)
                self.assertAlmostEqual(float(row["v"]) / simulated, 1.0, places=12, msg=label)

    def test_a_csv_that_is_not_text_says_so(self):
        """Excel's 'Unicode text' / UTF-16 CSV, or a spreadsheet file given by mistake,
        has NUL bytes: each line was cut at the first one and the file refused with
        "needs a header line and at least one row", which it had."""
        with TempDir() as d:
            cir, csv, out = os.path.join(d, "rc.cir"), os.path.join(d, "p.csv"), os.path.join(d, "o.h5")
            write(cir, DIVIDER)
            for data in ("\ufeffr1,label\r\n1k,a\r\n2k,b\r\n".encode("utf-16-le"),
                         "r1\n1k\n".encode("utf-16-be"),
                         b"PK\x03\x04\x14\x00\x06\x00\x08\x00\x00\x00!\x00[Content_Types].xml\n"):
                with open(csv, "wb") as f:
                    f.write(data)
                p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out], check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("p.csv: line 1: NUL bytes: not a text CSV", p.stderr)
                self.assertNotIn("needs a header line", p.stderr)
                self.assertFalse(os.path.exists(out))

    def test_the_random_generator_is_back_once_an_abandoned_thread_has_ended(self):
        """An abandoned copy whose loop draws random numbers and calls back only every
        6 s outlives its abandonment: a job that draws meanwhile is refused, one that
        comes after the loop's next callback (which ends its thread) runs."""
        with TempDir() as d:
            def write_deck(name, text):
                path = os.path.join(d, name)
                write(path, text)
                return path
            loop = write_deck("loop.cir", "slow caller\nV1 in 0 DC 1\nR1 in out 1k\nR2 out 0 1k\n.control\nop\n"
                                          "let x = sunif(0)\nwhile 1\n  shell sleep 6\n  echo tick\nend\n"
                                          ".endc\n.end\n")
            # sleeps, within the time limit, until the loop has called back
            sleeper = write_deck("sleeper.cir", "sleeper\nV1 a 0 DC 1\nR1 a 0 1k\n.control\nshell sleep 1.8\n"
                                                "op\n.endc\n.end\n")
            mc = write_deck("mc.cir", "mc\n.param r1=agauss(1k, 0.1k, 3)\nV1 in 0 DC 1\nR1 in out {r1}\n"
                                      "R2 out 0 1k\n.op\n.end\n")
            out = os.path.join(d, "o.h5")
            # halt at 2 s, abandoned at 4 s, its thread still running at 4.5 s; it calls
            # back (and ends) at 6 s, before the second mc job at about 8 s
            p = run([NGSCALE, "batch", "-q", "-j", "1", "--timeout", "2", loop, mc, sleeper, sleeper, mc,
                     "-o", out], check=False, timeout=120)
            self.assertEqual(p.returncode, 1, p.stderr)
            _, summary = jobs_of(out)
            rows = sorted(summary, key=lambda s: s["job"])
            self.assertEqual([s["status"].decode() for s in rows],
                             ["timeout", "failed", "complete", "complete", "complete"])
            self.assertIn("had not yet", rows[0]["message"].decode())
            self.assertIn("could not be reproduced", rows[1]["message"].decode())

    def test_a_csv_column_no_card_uses_is_warned_about(self):
        """A column whose name no card of the netlist mentions (a typo) would run the
        same circuit in every job: the batch says so, and still runs."""
        with TempDir() as d:
            write(os.path.join(d, "load.inc"), "* the load\nR2 out 0 {Rload}\n")
            cir = os.path.join(d, "rc.cir")
            # seed=random makes the deck uncacheable before the include: the names are
            # looked for in the rest of the deck all the same
            write(cir, "rc\n.param r1=1k\n.options seed=random\n* ghost is only in a comment\n"
                       ".include load.inc\nV1 in 0 DC 1\nR1 in out {R1}\n.op\n"
                       ".control\nrun\nlet scaled = v(out) * 1 ; echo $&ctl_gain\n.endc\n.end\n")
            csv = os.path.join(d, "p.csv")
            write(csv, "r1,rload,ghost,rl0ad,ctl_gain,temp,label\n1k,1k,1,2,3,27,a\n3k,1k,1,2,3,27,b\n")
            out = os.path.join(d, "o.h5")
            p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out])
            warned = sorted(re.findall(r"column '([^']+)' appears nowhere", p.stderr))
            self.assertEqual(warned, ["ghost", "rl0ad"], p.stderr)
            jobs, _ = jobs_of(out)
            self.assertAlmostEqual(float(jobs["b"][1]["op1/v(out)"][0]), 0.25, places=12)

    def test_a_timeout_does_not_count_the_wait_for_another_jobs_random_numbers(self):
        """A job that draws random numbers waits while another job's .control script
        draws (the generator is the process's); its time limit starts when it runs."""
        with TempDir() as d:
            drawing_script = os.path.join(d, "a.cir")
            write(drawing_script, "a\n.param r1=agauss(1k, 0.1k, 3)\nV1 in 0 DC 1\nR1 in out {r1}\n"
                                  "C1 out 0 1u\n.control\ntran 1n 10\n.endc\n.end\n")
            drawing_netlist = os.path.join(d, "b.cir")
            write(drawing_netlist, "b\n.param r1=agauss(1k, 0.1k, 3)\nV1 in 0 PULSE(0 1 0 1n 1n 5u 10u)\n"
                                   "R1 in out {r1}\nC1 out 0 1n\n.tran 10n 1m\n.end\n")  # ~0.25 s
            out = os.path.join(d, "o.h5")
            # the second worker's first b may beat a to the lock; its next ones wait for a.
            # A b runs ~0.25 s (a few under AddressSanitizer on a loaded machine): well
            # within the limit once it runs, long past it counting the wait
            p = run([NGSCALE, "batch", "-q", "-j", "2", "--timeout", "6", drawing_script] + [drawing_netlist] * 3
                    + ["-o", out], check=False, timeout=120)
            self.assertEqual(p.returncode, 1, p.stderr)
            _, summary = jobs_of(out)
            status = sorted((int(s["job"]), s["status"].decode()) for s in summary)
            self.assertEqual(status, [(0, "timeout"), (1, "complete"), (2, "complete"), (3, "complete")])
            self.assertGreater(max(float(s["wall_s"]) for s in summary if s["job"] > 0), 5.0,
                               "a b job waited for a (else this test shows nothing)")

    def test_empty_temp_seed_and_label_cells_keep_the_netlists_own(self):
        with TempDir() as d:
            csv = os.path.join(d, "p.csv")
            write(csv, "r1,temp,seed,label\n1k,,,\n2k,50,5,hot\n")
            cir = os.path.join(d, "r.cir")
            write(cir, DIVIDER)
            out = os.path.join(d, "o.h5")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out])
            jobs, summary = jobs_of(out)
            self.assertEqual(sorted(jobs), ["0", "hot"])
            plain, hot = jobs["0"][0], jobs["hot"][0]
            self.assertNotIn(".temp", plain["netlist"])
            self.assertNotIn("seed", plain["netlist"])
            self.assertNotIn("param.temp", plain)
            self.assertIn(".temp 50", hot["netlist"])
            self.assertIn(".options seed=5", hot["netlist"])
            row = {int(r["job"]): r for r in summary}
            self.assertEqual(int(row[0]["seed"]), -1)
            self.assertTrue(np.isnan(row[0]["temp"]))
            self.assertEqual((int(row[1]["seed"]), float(row[1]["temp"])), (5, 50.0))
            self.assertTrue(all(s == b"complete" for s in summary["status"]))


    def test_a_one_column_csvs_empty_cell_is_a_row_not_a_skipped_line(self):
        """A spreadsheet writes a one-column table's empty cell as a blank line: it was
        skipped as blank, and its job lost (3 rows, 2 jobs; an empty parameter ran
        nothing instead of being refused). Blank lines at the end are still no rows."""
        with TempDir() as d:
            cir = os.path.join(d, "r.cir")
            write(cir, DIVIDER.replace("R2 out 0 1k", "R2 out 0 1k tc1=0.01"))
            csv = os.path.join(d, "p.csv")
            out = os.path.join(d, "o.h5")
            with open(csv, "wb") as f:
                f.write(b"temp\r\n50\r\n\r\n80\r\n\r\n\n")
            run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out])
            jobs, summary = jobs_of(out)
            self.assertEqual(len(summary), 3)
            self.assertNotIn("param.temp", jobs["1"][0], "the empty cell keeps the netlist's own")
            self.assertAlmostEqual(float(jobs["1"][1]["op1/v(out)"][0]), 0.5, places=12)
            self.assertAlmostEqual(float(jobs["2"][1]["op1/v(out)"][0]), 1.53 / 2.53, places=12)
            os.remove(out)
            for text in (b"r1\n1k\n\n3k\n", b"r1\r1k\r\r3k"):
                with open(csv, "wb") as f:
                    f.write(text)
                p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", out], check=False)
                self.assertEqual(p.returncode, 2, p.stderr)
                self.assertIn("line 3: no value for r1", p.stderr)
                self.assertFalse(os.path.exists(out))

    def test_an_output_that_cannot_grow_fails_with_a_status_not_a_crash(self):
        """A full disk (here: a file size limit set once the output exists) failed the
        output's last flush and close; HDF5's H5close at exit then crashed on the file
        it could not close (SIGSEGV, exit 139) instead of ngscale exiting 3."""
        with TempDir() as d:
            cir = os.path.join(d, "slow.cir")
            write(cir, "slow\nV1 in 0 SIN(0 1 1k)\nR1 in out 1k\nC1 out 0 1u\n.tran 1u 50m\n"
                       ".control\nshell sleep 1.5\nrun\n.endc\n.end\n")
            out = os.path.join(d, "o.h5")

            def ignore_sigxfsz():  # writes past the limit then fail with EFBIG, as on a full disk
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            p = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "2", cir, cir, "-o", out],
                                 stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigxfsz)
            deadline = time.time() + 60
            while not os.path.exists(out) and p.poll() is None and time.time() < deadline:
                time.sleep(0.005)
            time.sleep(0.5)  # the output is open and the jobs sleep: nothing written yet
            size = os.path.getsize(out) + 4096
            resource.prlimit(p.pid, resource.RLIMIT_FSIZE, (size, size))
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 3, err[-3000:])
            self.assertIn("disk full", err)
            self.assertIn("h5clear -s", err)  # what its last flush left is kept
            self.assertNotIn("HDF5-DIAG", err)

    def test_a_batch_that_fails_leaves_the_file_it_would_replace(self):
        """The output file was truncated as the batch opened it: a batch that then could
        not write (full disk) or was killed lost the results of the one before. It is
        now written beside it and renamed over it when the batch ends."""
        with TempDir() as d:
            cir = os.path.join(d, "slow.cir")
            write(cir, "slow\nV1 in 0 SIN(0 1 1k)\nR1 in out 1k\nC1 out 0 1u\n.tran 1u 50m\n"
                       ".control\nshell sleep 1.5\nrun\n.endc\n.end\n")
            old = os.path.join(d, "o.h5")
            run([NGSCALE, "batch", "-q", "-j", "1", netlist("op_divider.cir"), "-o", old])
            with open(old, "rb") as f:
                before = f.read()

            def ignore_sigxfsz():  # writes past the limit then fail with EFBIG, as on a full disk
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            p = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "2", cir, cir, "-o", old],
                                 stderr=subprocess.PIPE, text=True, preexec_fn=ignore_sigxfsz)
            deadline = time.time() + 60
            while not glob.glob(old + ".tmp-*") and p.poll() is None and time.time() < deadline:
                time.sleep(0.005)
            time.sleep(0.5)  # the new file is open and the jobs sleep: nothing written yet
            tmp = glob.glob(old + ".tmp-*")
            self.assertEqual(len(tmp), 1)
            size = os.path.getsize(tmp[0]) + 4096
            resource.prlimit(p.pid, resource.RLIMIT_FSIZE, (size, size))
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 3, err[-3000:])
            self.assertIn("disk full", err)
            self.assertIn("o.h5 was left as it was", err)
            with open(old, "rb") as f:
                self.assertEqual(f.read(), before)
            self.assertEqual(glob.glob(old + ".tmp-*"), [])

            # killed: the old file stays whole
            p = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "2", cir, cir, "-o", old],
                                 stderr=subprocess.PIPE, text=True)
            while not glob.glob(old + ".tmp-*") and p.poll() is None and time.time() < deadline + 60:
                time.sleep(0.005)
            p.kill()
            p.communicate(timeout=60)
            with open(old, "rb") as f:
                self.assertEqual(f.read(), before)
            for t in glob.glob(old + ".tmp-*"):
                os.remove(t)

            # one that ends replaces it: interrupted, with its jobs marked so...
            long_cir = os.path.join(d, "long.cir")  # no `shell`: system() ignores SIGINT
            write(long_cir, "long\nV1 in 0 SIN(0 1 1k)\nR1 in out 1k\nC1 out 0 1u\n.tran 1u 2 0 1u\n.end\n")
            p = subprocess.Popen([NGSCALE, "batch", "-q", "-j", "1", long_cir, "-o", old],
                                 stderr=subprocess.PIPE, text=True)
            while not glob.glob(old + ".tmp-*") and p.poll() is None and time.time() < deadline + 120:
                time.sleep(0.005)
            time.sleep(0.3)
            info = run([NGSCALE, "info", old]).stdout  # the old results, and a word on the new
            self.assertIn("to be replaced: %s" % glob.glob(old + ".tmp-*")[0], info)
            self.assertIn("op_divider.cir", info)
            p.send_signal(signal.SIGINT)
            _, err = p.communicate(timeout=60)
            self.assertEqual(p.returncode, 130, err[-3000:])
            jobs, summary = jobs_of(old)
            self.assertEqual([s["status"].decode() for s in summary], ["interrupted"])
            # ...or complete
            run([NGSCALE, "batch", "-q", "-j", "1", cir, "-o", old])
            jobs, summary = jobs_of(old)
            self.assertEqual(len(summary), 1)
            self.assertIn("tran1/v(out)", next(iter(jobs.values()))[1])
            self.assertEqual(glob.glob(old + ".tmp-*"), [])

if __name__ == "__main__":
    unittest.main()
