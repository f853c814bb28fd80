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
    sim           sim.board.SimHardware, playing scenarios (sim.scenario)
    linux         Raspberry Pi and Jetson on CPython: hal.linux.hardware
                  (smbus2, libgpiod v2, pyserial, systemd's watchdog)

A family is one row of ``FAMILIES``: the module and class of its hardware
object, the interpreter it needs and the module that loads its scenarios
(a simulated board's; real hardware plays none). Nothing else here, and
nothing in the firmware, names a family's modules: the firmware reaches
the simulator only through this table.
"""

import sys

import boards
from hal.errors import BackendUnavailable

DT = "/proc/device-tree/"

# family: (module, class, the sys.implementation.name it needs or None,
#          the module loading its scenarios or None)
FAMILIES = {
    "sim": ("sim.board", "SimHardware", None, "sim.scenario"),
    "micropython": ("hal.native", "NativeHardware", "micropython", None),
    "linux": ("hal.linux.hardware", "LinuxHardware", "cpython", None),
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


def backend_of(name):
    """(board module, hardware module name, class name, scenario module
    name or None) for board ``name``, its row of ``FAMILIES``; refused
    when this interpreter cannot run the board's backend. The scenario
    module (a simulated board's) has ``load_scenario(path, cfg)`` and
    ``default_path()``; the hardware object of such a board judges a
    scenario's ``expect`` block (``hw.check_expect``)."""
    board = boards.get(name)
    module, cls, needs, scenarios = FAMILIES[board.FAMILY]
    if needs is not None and sys.implementation.name != needs:
        raise BackendUnavailable(WHY[needs] % board.NAME)
    return board, module, cls, scenarios


def open_board(name=None, sensors=(), scenario=None, speed=0.0):
    """The hardware object for a board: ``.clock``, ``.i2c(role)``,
    ``.pin(role)``, ``.wdt(timeout_ms)``, ``.uart(role)``. It needs only
    the ``backend_of`` row (``firmware.start`` opens the board from it,
    once this module and the board table are dropped)."""
    board, module, cls, _scenarios = backend_of(choose_board(name))
    return getattr(__import__(module, None, None, [cls]), cls)(board, sensors=sensors, scenario=scenario, speed=speed)
