"""Fixtures: the release CLI, the built-in small model as a .edq file, and the
golden vectors the CLI writes for it (docs/VECTORS.md)."""

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def _cli_path():
    exe = os.environ.get("EDGEDECODING_CLI")
    if exe:
        return pathlib.Path(exe)
    exe = REPO / "target" / "release" / "edgedecoding"
    # cheap when up to date; builds the CLI the comparisons run against
    subprocess.run(
        ["cargo", "build", "--release", "-q", "-p", "edgedecoding"],
        cwd=REPO,
        check=True,
    )
    return exe


@pytest.fixture(scope="session")
def cli():
    exe = _cli_path()

    def run(*args, check=True):
        p = subprocess.run(
            [str(exe), *map(str, args)], capture_output=True, text=True, check=False
        )
        if check and p.returncode != 0:
            raise AssertionError(f"edgedecoding {' '.join(map(str, args))} failed:\n{p.stderr}")
        return p

    return run


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("edq")


@pytest.fixture(scope="session")
def small_edq(cli, workdir):
    path = workdir / "small.edq"
    cli("convert", "--builtin", "small", "--out", path)
    return path


@pytest.fixture(scope="session")
def small(small_edq):
    import edgedecoding as ed

    return ed.Model.load(str(small_edq), threads=2)


class Golden:
    """The golden suite: cases by operator, tensors read with the manifest's
    dtype and shape."""

    def __init__(self, root):
        self.root = pathlib.Path(root)
        self.manifest = json.loads((self.root / "manifest.json").read_text())
        self.files = {}
        for f in self.manifest["files"]:
            self.files[(f["operator"], f["case"], f["name"])] = f

    def cases(self, operator):
        return [c for c in self.manifest["cases"] if c["operator"] == operator]

    def tensor(self, case, name):
        f = self.files[(case["operator"], case["case"], name)]
        dt = np.dtype(f["dtype"].replace("i", "int").replace("u", "uint")).newbyteorder("<")
        a = np.fromfile(self.root / f["path"], dtype=dt)
        return a.reshape(f["shape"]).astype(dt.newbyteorder("="))

    def has(self, case, name):
        return (case["operator"], case["case"], name) in self.files


@pytest.fixture(scope="session")
def golden(cli, small_edq, workdir):
    out = workdir / "golden"
    cli("vectors", "--model", small_edq, "--out", out)
    return Golden(out)
