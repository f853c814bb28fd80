"""The virtual ESP32's ROM: what a real chip has and the image does not.

The virtual ESP32 (``edgefw sim-esp32``, edgefw/emul/sim_esp32.py) runs the
device image in the MicroPython unix port on the sim board. Its ROM
directory, on MICROPYPATH after the image, holds the simulator (``sim/``,
compiled) and the sim board's data as ``boards.sim`` (registered by
``_vesp32``, imported before anything else): the image stays exactly
what an ESP32 gets.

    build_rom(DIR)
    MICROPYPATH=.:lib:DIR EDGEFW_BOARD=sim micropython -c "import _vesp32; import main"
"""

import shutil
from pathlib import Path

from edgefw.build.mpy import ROOT, _compile, mpy_cross

ROM_BOOT = """# the virtual ESP32's ROM: the sim board's data under boards.sim
import sys

import _vesp32_board


def _register(imp=__import__):
    try:
        boards = imp("boards")
    except ImportError:
        return False  # nothing flashed yet, or not yet on sys.path
    sys.modules["boards.sim"] = _vesp32_board
    boards.sim = _vesp32_board
    return True


if not _register():
    # the A/B layout (otaboot.py) puts the image on sys.path only in
    # main.py: register the board when it is first asked for
    import builtins

    _import = builtins.__import__

    def _hooked(name, *args):
        if name == "boards" or name.startswith("boards."):
            if _register(_import):
                builtins.__import__ = _import
        return _import(name, *args)

    builtins.__import__ = _hooked


def start(run_main):
    # as a chip after a reset: boot.py, then main.py at the friendly REPL
    for name in ("boot.py", "main.py") if run_main else ("boot.py",):
        try:
            f = open(name)
        except OSError:
            continue
        src = f.read()
        f.close()
        try:
            exec(src, {"__name__": "__main__"})
        except KeyboardInterrupt:
            print("KeyboardInterrupt")
        except Exception as e:
            sys.print_exception(e)
"""


def build_rom(out, root=ROOT):
    exe = mpy_cross()
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for src in sorted((root / "sim").rglob("*")):
        rel = src.relative_to(root)
        if "__pycache__" in rel.parts or src.is_dir():
            continue
        if src.suffix == ".py":
            _compile(exe, root, rel.as_posix(), (out / rel).with_suffix(".mpy"))
        elif src.suffix == ".json":
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, out / rel)
    (out / "_vesp32_board.py").write_text((root / "boards" / "sim.py").read_text())
    _compile(exe, out, "_vesp32_board.py", out / "_vesp32_board.mpy")
    (out / "_vesp32_board.py").unlink()
    (out / "_vesp32.py").write_text(ROM_BOOT)
    _compile(exe, out, "_vesp32.py", out / "_vesp32.mpy")
    (out / "_vesp32.py").unlink()
    return out


def env(rom, cause="power"):
    """The environment the unix port runs the image in."""
    import os

    return dict(os.environ, MICROPYPATH=".frozen:.:lib:%s" % rom, EDGEFW_BOARD="sim", EDGEFW_RESET_CAUSE=cause)


BOOT_CMD = "import _vesp32\nimport main"
