"""The result cache around `ngscale run` and `ngscale batch`: hits replay the same
HDF5 content, any edit that can change the result is a miss, Redis shares entries
between machines, and a dead Redis or a corrupt entry never fails a run."""
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import time
import unittest

from ngstest import NGSCALE, TempDir, bits_equal, h5py, read_h5_plots, run, write

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"


def f_col(path, column):
    """One /summary column, in job order."""
    with h5py.File(path, "r") as f:
        rows = f["summary"][:]
    return [r[column] for r in sorted(rows, key=lambda r: r["job"])]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_design(d):
    write(os.path.join(d, "models.inc"), ".model dmod d(is=1e-14 n=1.05)\n")
    write(os.path.join(d, "top.cir"), "cached design\n.include models.inc\n.param rl=1k\n"
          "V1 in 0 SIN(0 1 10k)\nR1 in a {rl}\nD1 a 0 dmod\n.tran 1u 200u\n.end\n")
    return os.path.join(d, "top.cir")


def cached_run(cir, out, cache, cwd=None, check=True):
    p = run([NGSCALE, "run", cir, "-o", out, "--cache", cache], cwd=cwd, check=check)
    return p, p.stderr


def op_value(out, name="v(out)"):
    plots, _ = read_h5_plots(out)
    return float(plots[0]["data"][name][0])


DIVIDER = "v1 in 0 dc 1\nr1 in out 1k\nr2 out 0 1k\n"


@contextlib.contextmanager
def read_only_for_another_user(test, d, cache):
    """Makes the cache under d read-only and yields (command prefix, env, scratch dir)
    to run ngscale as a user who may not write it (root ignores file modes)."""
    setpriv = shutil.which("setpriv")
    if os.geteuid() == 0 and not setpriv:
        test.skipTest("root ignores file modes, and setpriv is missing to drop it")
    os.chmod(os.path.dirname(d), 0o711)  # the session's directory: let the other user through
    os.chmod(d, 0o777)
    for root, dirs, files in os.walk(cache):
        for name in dirs + files:
            os.chmod(os.path.join(root, name), 0o555 if name in dirs else 0o444)
    os.chmod(cache, 0o555)
    for name in os.listdir(d):
        if name.endswith((".cir", ".inc")):
            os.chmod(os.path.join(d, name), 0o644)
    scratch = os.path.join(d, "scratch")
    os.mkdir(scratch)
    os.chmod(scratch, 0o777)
    env = dict(os.environ, HOME=scratch, TMPDIR=scratch)
    as_user = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"] if os.geteuid() == 0 else []
    try:
        yield as_user, env, scratch
    finally:
        for root, dirs, _ in os.walk(cache):
            os.chmod(root, 0o755)


class CacheRuns(unittest.TestCase):
    def edits_are_misses(self, d, cir, name, text, cases=((0.5, "1k"), (0.75, "3k")), env=None):
        """Writes d/name as text % r2 for each (v(out) wanted, r2): each edit must be a
        miss giving the new value, then a hit giving it again (run from d)."""
        cache, out = os.path.join(d, "cache"), os.path.join(d, "o.h5")
        for want, r2 in cases:
            write(os.path.join(d, name), text % r2)
            for kind in ("miss", "hit"):
                p = run([NGSCALE, "run", cir, "-o", out, "--cache", cache], cwd=d, env=env)
                self.assertIn("cache " + kind, p.stderr)
                self.assertAlmostEqual(op_value(out), want, places=9)

    def test_an_unknown_command_runs_its_script_file_and_is_in_the_key(self):
        # ngspice runs a command it does not know as the script file of that name
        with TempDir() as d:
            cir = os.path.join(d, "s.cir")
            write(cir, "script\n" + DIVIDER + ".control\nMyScr\nop\n.endc\n.end\n")
            self.edits_are_misses(d, cir, "myscr", "*ng_script\nalter r2 %s\n", ((0.75, "3k"), (0.9, "9k")))

    def test_an_include_of_circbyline_is_in_the_key(self):
        with TempDir() as d:
            cir = os.path.join(d, "cbl.cir")
            write(cir, "circbyline\n.control\ncircbyline test circuit\ncircbyline .include part.inc\n"
                  "circbyline v1 in 0 dc 1\ncircbyline r1 in out 1k\ncircbyline .end\nop\n.endc\n.end\n")
            self.edits_are_misses(d, cir, "part.inc", "r2 out 0 %s\n")

    def test_an_include_in_a_control_block_is_in_the_key(self):
        # ngspice splices the file in where the .include stands; its lines run as commands
        with TempDir() as d:
            cir = os.path.join(d, "c.cir")
            write(cir, "ctl include\n" + DIVIDER + ".control\n.include ctl.inc\nop\n.endc\n.end\n")
            self.edits_are_misses(d, cir, "ctl.inc", "alter r2 %s\n")

    def test_what_spiceinit_sources_is_in_the_key(self):
        # ngspice runs ./.spiceinit as commands when it starts: a script it sources
        # (here setting the temperature) changes the result like the deck would
        with TempDir() as d:
            cir = os.path.join(d, "t.cir")
            write(cir, "tc\nv1 in 0 dc 1\nr1 in out 1k tc1=0.01\nr2 out 0 1k\n.op\n.end\n")
            write(os.path.join(d, ".spiceinit"), "* init\nsource other.cmd\n")
            self.edits_are_misses(d, cir, "other.cmd", "*ng_script\noption temp=%s\n",
                                  ((0.5, "27"), (1000 / 2730, "100")))
            write(os.path.join(d, ".spiceinit"), "shell true\n")
            p = run([NGSCALE, "run", cir, "-o", os.path.join(d, "o.h5"), "--cache", os.path.join(d, "cache")], cwd=d)
            self.assertIn("not cached: .spiceinit: 'shell'", p.stderr)

    def test_an_include_found_through_the_spiceinit_sourcepath_is_in_the_key(self):
        # a .spiceinit that adds a model directory to the sourcepath: an include found
        # only there made every run uncacheable ("file not found"), and where the
        # same name was also in NGSPICE_INPUT_DIR an edit there gave a stale hit
        with TempDir() as d:
            models, proj = os.path.join(d, "models"), os.path.join(d, "proj")
            os.makedirs(models)
            os.makedirs(proj)
            os.makedirs(os.path.join(d, "inp"))
            write(os.path.join(d, "inp", "m.inc"), "r2 out 0 1k\n")
            cir = os.path.join(proj, "top.cir")
            write(cir, "sp\n.include m.inc\nv1 in 0 dc 1\nr1 in out 1k\n.op\n.end\n")
            write(os.path.join(proj, ".spiceinit"), "set sourcepath = ( %s $sourcepath )\n" % models)
            self.edits_are_misses(proj, cir, "../models/m.inc", "r2 out 0 %s\n")
            env = dict(os.environ, NGSPICE_INPUT_DIR=os.path.join(d, "inp"))
            self.edits_are_misses(proj, cir, "../models/m.inc", "r2 out 0 %s\n", ((0.9, "9k"), (0.75, "3k")),
                                  env=env)

    def test_an_old_style_lib_file_is_in_the_key(self):
        # with `set ngbehavior=ps` (or lt) in .spiceinit, ngspice reads `.lib file` as
        # `.include file` (PSpice and LTspice libraries, KiCad users)
        with TempDir() as d:
            cir = os.path.join(d, "p.cir")
            write(cir, "pslib\n.lib parts.lib\nv1 in 0 dc 1\nr1 in out 1k\n.op\n.end\n")
            write(os.path.join(d, ".spiceinit"), "* init\nset ngbehavior=ps\n")
            self.edits_are_misses(d, cir, "parts.lib", "r2 out 0 %s\n")

    def test_the_spinit_spice_scripts_names_is_in_the_key(self):
        # ngspice reads spinit from $SPICE_SCRIPTS when set (over SPICE_LIB_DIR)
        with TempDir() as d:
            cir = os.path.join(d, "t.cir")
            write(cir, "tc\nv1 in 0 dc 1\nr1 in out 1k tc1=0.01\nr2 out 0 1k\n.op\n.end\n")
            os.makedirs(os.path.join(d, "scripts"))
            self.edits_are_misses(d, cir, "scripts/spinit", "* spinit\noption temp=%s\n",
                                  ((0.5, "27"), (1000 / 2730, "100")),
                                  env=dict(os.environ, SPICE_SCRIPTS=os.path.join(d, "scripts")))

    def test_hit_replays_identical_content(self):
        with TempDir() as d:
            cir, cache = make_design(d), os.path.join(d, "cache")
            _, err1 = cached_run(cir, os.path.join(d, "a.h5"), cache)
            _, err2 = cached_run(cir, os.path.join(d, "b.h5"), cache)
            self.assertIn("cache miss, stored", err1)
            self.assertIn("cache hit (local", err2)
            a, attrs_a = read_h5_plots(os.path.join(d, "a.h5"))
            b, attrs_b = read_h5_plots(os.path.join(d, "b.h5"))
            self.assertEqual(attrs_b["cache_hit"], 1)
            self.assertEqual(attrs_a["cache_hit"], 0)
            self.assertEqual(attrs_a["cache_key"], attrs_b["cache_key"])
            self.assertEqual(len(a), len(b))
            for pa, pb in zip(a, b):
                self.assertEqual(pa["names"], pb["names"])
                for k in ("plotname", "analysis", "points", "status", "flags", "scale"):
                    self.assertEqual(pa["attrs"][k], pb["attrs"][k])
                for n in pa["names"]:
                    self.assertTrue(bits_equal(pa["data"][n], pb["data"][n]), n)
            stats = run([NGSCALE, "cache", "stats", "--cache", cache]).stdout
            self.assertIn("hits 1", stats)
            self.assertIn("misses 1", stats)

    def test_edits_that_change_the_result_are_misses(self):
        with TempDir() as d:
            cir, cache = make_design(d), os.path.join(d, "cache")
            out = os.path.join(d, "o.h5")
            self.assertIn("miss", cached_run(cir, out, cache)[1])
            self.assertIn("hit", cached_run(cir, out, cache)[1])
            with open(cir) as f:
                text = f.read()
            edits = [
                ("included model file", lambda: write(os.path.join(d, "models.inc"),
                                                      ".model dmod d(is=2e-14 n=1.05)\n")),
                ("parameter", lambda: write(cir, text.replace("rl=1k", "rl=2k"))),
                ("analysis", lambda: write(cir, text.replace(".tran 1u 200u", ".tran 1u 300u"))),
                ("option", lambda: write(cir, text.replace(".end", ".options reltol=1e-4\n.end"))),
            ]
            for what, edit in edits:
                with self.subTest(edit=what):
                    edit()
                    self.assertIn("cache miss", cached_run(cir, out, cache)[1], what)
                    self.assertIn("cache hit", cached_run(cir, out, cache)[1], what)
            # and --save changes the result too
            p = run([NGSCALE, "run", cir, "-o", out, "--cache", cache, "--save", "v(a)"])
            self.assertIn("cache miss", p.stderr)

    def test_an_include_found_through_ngspice_input_dir_is_in_the_key(self):
        # ngspice -b finds a relative .include in $NGSPICE_INPUT_DIR (its sourcepath);
        # so must ngscale, and the included file's edits must be misses
        with TempDir() as d:
            lib, proj = os.path.join(d, "lib"), os.path.join(d, "proj")
            os.makedirs(lib)
            os.makedirs(proj)
            cir, cache, out = os.path.join(proj, "top.cir"), os.path.join(d, "cache"), os.path.join(d, "o.h5")
            write(cir, "top\n.include divider.inc\nV1 in 0 DC 1\n.op\n.end\n")
            write(os.path.join(lib, "divider.inc"), "R1 in out 1k\nR2 out 0 1k\n")
            env = dict(os.environ, NGSPICE_INPUT_DIR=lib)
            for want, r2 in ((0.5, "1k"), (0.75, "3k")):
                write(os.path.join(lib, "divider.inc"), "R1 in out 1k\nR2 out 0 %s\n" % r2)
                for kind in ("miss", "hit"):
                    p = run([NGSCALE, "run", cir, "-o", out, "--cache", cache], env=env)
                    self.assertIn("cache " + kind, p.stderr)
                    plots, _ = read_h5_plots(out)
                    self.assertAlmostEqual(float(plots[0]["data"]["v(out)"][0]), want, places=9)
            run([NGSCALE, "batch", "-q", "-j", "2", cir, cir, "-o", out], env=env)
            for job in ("job_00000000", "job_00000001"):
                plots, attrs = read_h5_plots(out, job)
                self.assertEqual(attrs["status"], "complete")
                self.assertAlmostEqual(float(plots[0]["data"]["v(out)"][0]), 0.75, places=9)

    def test_a_read_only_cache_still_gives_hits(self):
        # a team's cache shared read-only (or on a read-only mount): hits are served,
        # misses run and say they were not stored, nothing fails
        with TempDir() as d:
            cir, cache = make_design(d), os.path.join(d, "cache")
            other = os.path.join(d, "other.cir")
            write(other, "other\nV1 1 0 1\nR1 1 0 2k\n.op\n.end\n")
            self.assertIn("stored", cached_run(cir, os.path.join(d, "a.h5"), cache)[1])
            with read_only_for_another_user(self, d, cache) as (as_user, env, scratch):
                p = run(as_user + [NGSCALE, "run", cir, "-o", os.path.join(scratch, "b.h5"), "--cache", cache],
                        env=env)
                self.assertIn("cache hit", p.stderr)
                p = run(as_user + [NGSCALE, "run", other, "-o", os.path.join(scratch, "c.h5"), "--cache", cache],
                        env=env)
                self.assertIn("cache miss", p.stderr)
                self.assertIn("read-only here: the run was not stored", p.stderr)
                self.assertNotIn("unusable", p.stderr)
            a, _ = read_h5_plots(os.path.join(d, "a.h5"))
            b, _ = read_h5_plots(os.path.join(scratch, "b.h5"))
            self.assertTrue(all(bits_equal(a[0]["data"][k], b[0]["data"][k]) for k in a[0]["data"]))

    def test_what_the_key_cannot_cover_disables_the_cache(self):
        with TempDir() as d:
            cir = os.path.join(d, "rand.cir")
            write(cir, "random\n.param r = agauss(1k, 100, 1)\nV1 in 0 DC 1\nR1 in 0 {r}\n.op\n.end\n")
            _, err = cached_run(cir, os.path.join(d, "o.h5"), os.path.join(d, "cache"))
            self.assertIn("not cached", err)
            self.assertIn("seed", err)
            with h5py.File(os.path.join(d, "o.h5"), "r") as f:
                self.assertEqual(f["run"].attrs["status"], "complete")

    def test_a_seed_set_by_a_command_does_not_fix_the_netlists_draws(self):
        # the netlist's random values are drawn when it is parsed, before .control runs
        with TempDir() as d:
            cir, cache, out = os.path.join(d, "ss.cir"), os.path.join(d, "cache"), os.path.join(d, "o.h5")
            deck = "seed\nv1 in 0 dc 1\nr1 in out {agauss(1k, 100, 1)}\nr2 out 0 1k\n%s.control\n%s\n.endc\n.end\n"
            for card, control, said in (("", "op\nsetseed 5", "before the seed is set"),
                                        ("", "setseed 5\nop", "before the seed is set"),
                                        ("", "set rndseed=5\nop", "before the seed is set"),
                                        ("", "option seed=5\nop", "without a fixed seed"),
                                        ("", "let x = sgauss(0)\nsetseed 5\nop", "before the seed is set"),
                                        (".options seed=5\n", "op", None),
                                        ("", "pre_setseed 5\nop", None)):
                with self.subTest(control=control):
                    write(cir, deck % (card, control))
                    for _ in range(2):
                        err = cached_run(cir, out, cache)[1]
                        self.assertIn(said or "cache ", err)
                    self.assertIn("not cached" if said else "cache hit", err)

    def test_a_script_that_writes_files_is_not_cached(self):
        # a hit would not write them again
        with TempDir() as d:
            cir, cache, out = os.path.join(d, "w.cir"), os.path.join(d, "cache"), os.path.join(d, "o.h5")
            for control, made in (("print v(out)>out.txt", "out.txt"), ("echo hello>hello.txt", "hello.txt"),
                                  ("alias mysave write out2.raw\nmysave", "out2.raw")):
                with self.subTest(control=control):
                    write(cir, "writes\n" + DIVIDER + ".control\nop\n%s\n.endc\n.end\n" % control)
                    for _ in range(2):
                        if os.path.exists(os.path.join(d, made)):
                            os.remove(os.path.join(d, made))
                        self.assertIn("not cached", cached_run(cir, out, cache, cwd=d)[1])
                        self.assertTrue(os.path.exists(os.path.join(d, made)))

    def test_an_entry_over_the_size_cap_is_said_not_stored(self):
        with TempDir() as d:
            cir, cache = make_design(d), os.path.join(d, "cache")
            env = dict(os.environ, NGSCALE_CACHE_SIZE="1K")
            p = run([NGSCALE, "run", "-q", cir, "-o", os.path.join(d, "o.h5"), "--cache", cache], env=env)
            self.assertNotIn(", stored", p.stderr)
            self.assertRegex(p.stderr, r"not stored: entry of \d+ bytes is over the cache's size cap of 1024")
            stats = run([NGSCALE, "cache", "stats", "--cache", cache], env=env).stdout
            self.assertIn("stored 0", stats)

    def test_a_file_edited_while_the_run_reads_it_is_not_stored(self):
        """The key is computed before the run; a script sourced after a long transient,
        edited meanwhile, gave a result of the new script stored under the old one's key."""
        with TempDir() as d:
            cir, cache, out = os.path.join(d, "t.cir"), os.path.join(d, "cache"), os.path.join(d, "o.h5")
            late = os.path.join(d, "late.scr")
            write(cir, "toctou\n" + DIVIDER + "c1 out 0 1n\n.control\ntran 0.1u 60m\nsource late.scr\nop\n.endc\n.end\n")
            write(late, "*ng_script\nalter r2 3k\n")
            p = subprocess.Popen([NGSCALE, "run", cir, "-o", out, "--cache", cache], cwd=d,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.time() + 60
            while not os.path.exists(out) and time.time() < deadline:  # the key is computed by then
                time.sleep(0.01)
            write(late, "*ng_script\nalter r2 9k\n")
            _, err = p.communicate(timeout=120)
            self.assertEqual(p.returncode, 0, err)
            self.assertIn("not stored: a file the run reads changed while it ran", err)
            write(late, "*ng_script\nalter r2 3k\n")
            err = cached_run(cir, out, cache, cwd=d)[1]
            self.assertIn("cache miss", err)
            with h5py.File(out, "r") as f:
                self.assertAlmostEqual(float(f["run/op1/v(out)"][0]), 0.75, places=9)

    def test_corrupt_entry_is_a_miss_not_a_crash(self):
        with TempDir() as d:
            cir, cache = make_design(d), os.path.join(d, "cache")
            out = os.path.join(d, "o.h5")
            cached_run(cir, out, cache)
            entries = glob.glob(os.path.join(cache, "*", "*.ngsc"))
            self.assertEqual(len(entries), 1)
            with open(entries[0], "r+b") as f:
                f.seek(200)
                f.write(b"\xff" * 16)
            p, err = cached_run(cir, out, cache)
            self.assertIn("cache miss", err)
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], "complete")
            self.assertIn("cache hit", cached_run(cir, out, cache)[1])  # stored again
            stats = run([NGSCALE, "cache", "stats", "--cache", cache]).stdout
            self.assertIn("corrupt 1", stats)

    def test_two_processes_at_once_leave_one_valid_entry(self):
        with TempDir() as d:
            cir, cache = make_design(d), os.path.join(d, "cache")
            procs = [subprocess.Popen([NGSCALE, "run", "-q", cir, "-o", os.path.join(d, "p%d.h5" % i),
                                       "--cache", cache]) for i in range(2)]
            self.assertEqual([p.wait(timeout=120) for p in procs], [0, 0])
            self.assertEqual(len(glob.glob(os.path.join(cache, "*", "*.ngsc"))), 1)
            run([NGSCALE, "cache", "gc", "--cache", cache])
            self.assertIn("hit", cached_run(cir, os.path.join(d, "o.h5"), cache)[1])
            self.assertIn("entries 1", run([NGSCALE, "cache", "stats", "--cache", cache]).stdout)
            run([NGSCALE, "cache", "clear", "--cache", cache])
            self.assertIn("miss", cached_run(cir, os.path.join(d, "o.h5"), cache)[1])

    def test_gc_and_clear_do_not_follow_a_linked_shard(self):
        with TempDir() as d:
            cir, cache, elsewhere = make_design(d), os.path.join(d, "cache"), os.path.join(d, "elsewhere")
            cached_run(cir, os.path.join(d, "o.h5"), cache)
            os.mkdir(elsewhere)
            outside = [os.path.join(elsewhere, "ab" * 32 + ext) for ext in (".ngsc", ".meta")]
            for path in outside:
                write(path, "not the cache's\n")
            os.symlink(elsewhere, os.path.join(cache, "ab"))
            for cmd in ("gc", "clear"):
                run([NGSCALE, "cache", cmd, "--cache", cache])
                self.assertTrue(all(os.path.exists(path) for path in outside), cmd)
            self.assertIn("entries 0", run([NGSCALE, "cache", "stats", "--cache", cache]).stdout)

    def test_batch_consults_the_cache_per_job(self):
        with TempDir() as d:
            cir, cache = make_design(d), os.path.join(d, "cache")
            csv = os.path.join(d, "p.csv")
            write(csv, "rl\n1k\n2k\n3k\n")
            for name in ("b1.h5", "b2.h5"):
                p = run([NGSCALE, "batch", cir, "--params", csv, "-o", os.path.join(d, name),
                         "--cache", cache, "-j", "2"])
            self.assertIn("3 cache hits", p.stderr)
            for name, expect in (("b1.h5", [0, 0, 0]), ("b2.h5", [1, 1, 1])):
                with h5py.File(os.path.join(d, name), "r") as f:
                    hits = [f[k].attrs["cache_hit"] for k in sorted(f) if k.startswith("job_")]
                    summary = sorted(f["summary"][:].tolist())
                self.assertEqual(hits, expect)
                self.assertEqual([row[0] for row in summary], [0, 1, 2])
                self.assertEqual([int(r) for r in f_col(os.path.join(d, name), "cache_hit")], expect)

    def test_a_cache_batch_cannot_use_is_said_once_even_with_q(self):
        with TempDir() as d:
            cir = make_design(d)
            csv = os.path.join(d, "p.csv")
            write(csv, "rl\n1k\n2k\n3k\n")
            not_a_dir = os.path.join(d, "notes.txt")
            write(not_a_dir, "my notes\n")
            for args in (["--cache", not_a_dir], ["--cache", os.path.join(d, "c") + ",redis://127.0.0.1:%d/0"
                                                  % free_port()]):
                p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", os.path.join(d, "o.h5")] + args)
                self.assertEqual(p.stderr.count("warning"), 1, p.stderr)
                self.assertIn("said once for the batch", p.stderr)
            self.assertIn("Not a directory", run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o",
                                                  os.path.join(d, "o.h5"), "--cache", not_a_dir]).stderr)
            with open(not_a_dir) as f:
                self.assertEqual(f.read(), "my notes\n")

    def test_a_kind_of_warning_is_said_once_though_its_numbers_differ(self):
        with TempDir() as d:
            cir = make_design(d)
            csv = os.path.join(d, "p.csv")
            write(csv, "rl\n1k\n2k\n3k\n5k\n")  # recordings of different sizes
            p = run([NGSCALE, "batch", "-q", cir, "--params", csv, "-o", os.path.join(d, "o.h5"), "--cache",
                     os.path.join(d, "c")], env=dict(os.environ, NGSCALE_CACHE_SIZE="1K"))
            self.assertEqual(p.stderr.count("not stored"), 1, p.stderr)
            self.assertEqual(p.stderr.count("said once for the batch"), 1, p.stderr)

    def test_a_wrong_cache_is_refused_before_anything_is_written(self):
        """A directory with other files is never taken over (its 'stats' would be replaced,
        and the cache tag hides it from backups); a malformed spec is a usage error that
        leaves an existing output as it was; looking at a cache creates none."""
        with TempDir() as d:
            cir = make_design(d)
            out = os.path.join(d, "o.h5")
            run([NGSCALE, "run", "-q", cir, "-o", out])
            with h5py.File(out, "r") as f:
                before = f["run"].attrs["status"]
            write(os.path.join(d, "stats"), "my numbers\n")
            for spec, message in ((d, "not an ngscale cache"), ("", "empty cache spec"),
                                  ("redis://127.0.0.1:99999/0", "bad Redis URL"), ("c1,,", "redis://")):
                for cmd in (["run", "-q", cir, "-o", out], ["batch", "-q", cir, cir, "-o", out]):
                    p = run([NGSCALE] + cmd + ["--cache", spec], check=False)
                    self.assertEqual(p.returncode, 2, (spec, cmd, p.stderr))
                    self.assertIn(message, p.stderr, spec)
            with open(os.path.join(d, "stats")) as f:
                self.assertEqual(f.read(), "my numbers\n")
            self.assertFalse(os.path.exists(os.path.join(d, "CACHEDIR.TAG")))
            with h5py.File(out, "r") as f:
                self.assertEqual(f["run"].attrs["status"], before)
            missing = os.path.join(d, "no-such-cache")
            p = run([NGSCALE, "cache", "stats", "--cache", missing], check=False)
            self.assertEqual(p.returncode, 3)
            self.assertIn("no cache at", p.stderr)
            self.assertFalse(os.path.exists(missing))
            p = run([NGSCALE, "cache", "clear", "--cache", "redis://127.0.0.1:%d/0" % free_port()], check=False)
            self.assertEqual(p.returncode, 2)
            self.assertIn("Redis is never cleared", p.stderr)
            p = run([NGSCALE, "cache", "--help"])
            self.assertIn("stats|list|clear|gc", p.stdout)


@unittest.skipUnless(os.path.exists(REDIS), "redis-server not installed")
class RedisTier(unittest.TestCase):
    def setUp(self):
        self.dir = TempDir().__enter__()
        self.port = free_port()
        self.redis = subprocess.Popen([REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
                                       "--save", "", "--appendonly", "no", "--dir", self.dir],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.1).close()
                break
            except OSError:
                time.sleep(0.05)

    def tearDown(self):
        self.redis.kill()
        self.redis.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def test_second_machine_hits_through_redis(self):
        d = self.dir
        cir = make_design(d)
        url = "redis://127.0.0.1:%d/0" % self.port
        machine_a, machine_b = os.path.join(d, "a-cache"), os.path.join(d, "b-cache")
        _, err = cached_run(cir, os.path.join(d, "a.h5"), machine_a + "," + url)
        self.assertIn("stored", err)
        _, err = cached_run(cir, os.path.join(d, "b.h5"), machine_b + "," + url)
        self.assertIn("cache hit (redis", err)
        a, _ = read_h5_plots(os.path.join(d, "a.h5"))
        b, _ = read_h5_plots(os.path.join(d, "b.h5"))
        for n in a[0]["names"]:
            self.assertTrue(bits_equal(a[0]["data"][n], b[0]["data"][n]))
        _, err = cached_run(cir, os.path.join(d, "c.h5"), machine_b + "," + url)
        self.assertIn("cache hit (local", err)   # now also in B's local store

    def test_a_read_only_local_cache_still_takes_hits_from_redis(self):
        # a team's local cache shared read-only, and its Redis: what only Redis has
        # is served (through a directory of the run's own), not run again
        d = self.dir
        cir = make_design(d)
        url = "redis://127.0.0.1:%d/0" % self.port
        _, err = cached_run(cir, os.path.join(d, "a.h5"), os.path.join(d, "a-cache") + "," + url)
        self.assertIn("stored", err)
        shared = os.path.join(d, "shared")
        cached_run(cir, os.path.join(d, "x.h5"), shared)
        with open(cir) as f:
            text = f.read()
        write(cir, text.replace("rl=1k", "rl=2k"))  # a run only Redis will have
        _, err = cached_run(cir, os.path.join(d, "a2.h5"), os.path.join(d, "a-cache") + "," + url)
        self.assertIn("stored", err)
        with read_only_for_another_user(self, d, shared) as (as_user, env, scratch):
            p = run(as_user + [NGSCALE, "run", cir, "-o", os.path.join(scratch, "b.h5"),
                               "--cache", shared + "," + url], env=env)
            self.assertIn("cache hit (redis", p.stderr)
            self.assertEqual(os.listdir(scratch), ["b.h5"])  # the staged hit was removed
        a, _ = read_h5_plots(os.path.join(d, "a2.h5"))
        b, _ = read_h5_plots(os.path.join(scratch, "b.h5"))
        self.assertTrue(all(bits_equal(a[0]["data"][k], b[0]["data"][k]) for k in a[0]["data"]))

    def test_dead_redis_is_a_warning_and_the_run_goes_on(self):
        d = self.dir
        cir = make_design(d)
        dead = "redis://127.0.0.1:%d/0" % free_port()
        t0 = time.time()
        p, err = cached_run(cir, os.path.join(d, "o.h5"), os.path.join(d, "c") + "," + dead)
        self.assertEqual(p.returncode, 0)
        self.assertIn("warning", err)
        self.assertLess(time.time() - t0, 30)
        _, err = cached_run(cir, os.path.join(d, "o.h5"), os.path.join(d, "c") + "," + dead)
        self.assertIn("cache hit (local", err)


if __name__ == "__main__":
    unittest.main()
