"""Chooses the hardware backend, in one place.

Order: the ``name`` argument (``--board``), then the ``EDGEFW_BOARD``
environment variable, then detection: ``sys.platform`` on MicroPython
microcontrollers, on Linux the device tree's ``compatible`` list, then its
``model`` (both under ``root``, ``/`` unless a test gives a fixture tree).
When nothing is detected the sim board is used, with a warning on stderr
saying so.

    from hal.backend import open_board
    hw = open_board("sim", sensors=cfg["sensors"])

Families:
    micropython   the ``machine`` module itself (hal.native)
    sim           sim.board.SimHardware
    linux         Raspberry Pi and Jetson on CPython: hal.linux.hardware
                  (smbus2, libgpiod v2, pyserial, systemd's watchdog)

A family is one row of ``FAMILIES``: the module and class of its hardware
object and the interpreter it needs; nothing else here names a family.
"""

import sys

import boards
from hal.errors import BackendUnavailable

DT = "/proc/device-tree/"

# family: (module, class, the sys.implementation.name it needs or None)
FAMILIES = {
    "sim": ("sim.board", "SimHardware", None),
    "micropython": ("hal.native", "NativeHardware", "micropython"),
    "linux": ("hal.linux.hardware", "LinuxHardware", "cpython"),
}
WHY = {
    "micropython": "board %r runs MicroPython; flash it with tools/flash.py, or run here with --board sim",
    "cpython": "board %r needs the Linux backend, which runs on CPython on the board itself; run here with --board sim",
}


def _warn(msg):
    sys.stderr.write("edgefw: warning: " + msg + "\n")


def _getenv(name):
    try:
        import os

        return os.getenv(name)
    except (ImportError, AttributeError):
        return None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("ascii", "replace")
    except OSError:
        return None


def detect_board(root="/"):
    """The board this machine is, or None. ``root`` holds ``proc/device-tree``."""
    if sys.implementation.name == "micropython":
        name = boards.match_platform(sys.platform)
        if name:
            return name
    base = root.rstrip("/") + DT
    compat = _read(base + "compatible")
    found = boards.match_compatible(compat) if compat else None
    if found is None:
        model = _read(base + "model")
        found = boards.match_model(model) if model else None
    return found


def choose_board(name=None, root="/"):
    """Board name by override, environment, detection, then sim."""
    if name:
        return boards.check(name)
    env = _getenv("EDGEFW_BOARD")
    if env:
        return boards.check(env)
    found = detect_board(root)
    if found:
        return found
    _warn("no known board detected; using the simulated board 'sim' (set EDGEFW_BOARD to choose)")
    return "sim"


def open_board(name=None, sensors=(), scenario=None, speed=0.0):
    """The hardware object for a board: ``.clock``, ``.i2c(role)``,
    ``.pin(role)``, ``.wdt(timeout_ms)``, ``.uart(role)``."""
    board = boards.get(choose_board(name))
    module, cls, needs = FAMILIES[board.FAMILY]
    if needs is not None and sys.implementation.name != needs:
        raise BackendUnavailable(WHY[needs] % board.NAME)
    mod = __import__(module, None, None, [cls])
    return getattr(mod, cls)(board, sensors=sensors, scenario=scenario, speed=speed)
