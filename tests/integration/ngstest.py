"""Shared helpers for ngscale's integration tests (run by ctest with /usr/bin/python3).

The environment comes from CMake: NGSCALE (the command), NGSCALE_EMBED (the embedding
example), NGSCALE_SOURCE_DIR, NGSCALE_BUILD_DIR, HDF5_PLUGIN_PATH (our zstd plugin).
"""
import atexit
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile

import numpy as np

SRC = os.environ.get("NGSCALE_SOURCE_DIR", os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))
BUILD = os.environ.get("NGSCALE_BUILD_DIR", os.path.join(SRC, "build"))
NGSCALE = os.environ.get("NGSCALE", os.path.join(BUILD, "ngscale"))
NETLISTS = os.path.join(SRC, "tests", "netlists")
PLUGIN_DIR = os.environ.get("HDF5_PLUGIN_PATH", os.path.join(BUILD, "hdf5-plugins"))
os.environ["HDF5_PLUGIN_PATH"] = PLUGIN_DIR

import h5py  # noqa: E402  (after HDF5_PLUGIN_PATH is set)

# Every ngscale a test starts makes its private directories in here, and so do the
# tests' own temporary directories: the tests that kill ngscale outright leave nothing
# in the machine's /tmp.
SESSION_TMP = tempfile.mkdtemp(prefix="ngscale-tests-")
os.environ["TMPDIR"] = SESSION_TMP
tempfile.tempdir = SESSION_TMP
atexit.register(shutil.rmtree, SESSION_TMP, True)


def write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def netlist(name):
    return os.path.join(NETLISTS, name)


class TempDir:
    def __enter__(self):
        self.path = tempfile.mkdtemp(prefix="ngscale-test-")
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)


def run(args, cwd=None, check=True, timeout=600, env=None):
    """Runs a command; returns CompletedProcess with text output."""
    p = subprocess.run(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       text=True, timeout=timeout, env=env)
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(args), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def peak_rss_kib(args, cwd=None):
    """Peak RSS (KiB) of one command, measured in a fresh child interpreter."""
    code = ("import resource,subprocess,sys\n"
            "r=subprocess.run(sys.argv[1:],stdout=subprocess.DEVNULL,stderr=subprocess.DEVNULL)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run([sys.executable, "-c", code] + list(args), cwd=cwd,
                         stdout=subprocess.PIPE, text=True, check=True).stdout.split()
    if int(out[0]) != 0:
        raise AssertionError("%s failed (exit %s)" % (" ".join(args), out[0]))
    return int(out[1])


def read_raw(path):
    """Parses an ngspice RAW file (binary or ASCII, several plots) into a list of
    dicts: {plotname, flags, names, types, data: {name: ndarray}}."""
    with open(path, "rb") as fh:
        blob = fh.read()
    plots, pos = [], 0
    while pos < len(blob):
        m = re.compile(rb"(Binary|Values):\n").search(blob, pos)
        if not m:
            break
        header = blob[pos:m.start()].decode("latin-1")
        fields, names, types = {}, [], []
        in_vars = False
        for line in header.splitlines():
            if in_vars and line.startswith("\t"):
                parts = line.split("\t")
                names.append(parts[2])
                types.append(parts[3].split()[0])  # `write` puts " grid=3" here
                continue
            in_vars = False
            if ":" in line:
                k, v = line.split(":", 1)
                fields[k.strip()] = v.strip()
                if k.strip() == "Variables":
                    in_vars = True
        nvar = int(fields["No. Variables"])
        npts = int(fields["No. Points"])
        cplx = "complex" in fields.get("Flags", "")
        assert len(names) == nvar, (names, nvar)
        width = 2 if cplx else 1
        if m.group(1) == b"Binary":
            nbytes = npts * nvar * width * 8
            arr = np.frombuffer(blob, dtype="<f8", count=npts * nvar * width, offset=m.end())
            arr = arr.reshape(npts, nvar * width)
            pos = m.end() + nbytes
        else:
            raise NotImplementedError("ASCII RAW")
        data = {}
        for i, n in enumerate(names):
            if cplx:
                data[n] = arr[:, 2 * i] + 1j * arr[:, 2 * i + 1]
            else:
                data[n] = arr[:, i].copy()
        plots.append({"plotname": fields.get("Plotname"), "flags": fields.get("Flags"),
                      "names": names, "types": types, "data": data})
    return plots


def read_h5_plots(path, group="run"):
    """Plots of one run, in order: list of {name, attrs, names, data}."""
    out = []
    with h5py.File(path, "r") as f:
        run_group = f[group]
        plots = sorted((g for g in run_group.values() if "plot_name" in g.attrs),
                       key=lambda g: g.attrs["index"])
        for g in plots:
            dsets = sorted(g.values(), key=lambda d: d.attrs["index"])
            out.append({"name": g.name.split("/")[-1], "attrs": dict(g.attrs),
                        "names": [d.attrs["name"] for d in dsets],
                        "types": [d.attrs["type"] for d in dsets],
                        "data": {d.attrs["name"]: d[()] for d in dsets}})
        run_attrs = dict(run_group.attrs)
    return out, run_attrs


def bits_equal(a, b):
    """Bit-for-bit equality of two float64/complex128 arrays."""
    a = np.ascontiguousarray(a)
    b = np.ascontiguousarray(b)
    if a.shape != b.shape:
        return False
    if np.iscomplexobj(a) != np.iscomplexobj(b):
        return False
    return a.view(np.uint64).tobytes() == b.view(np.uint64).tobytes()
