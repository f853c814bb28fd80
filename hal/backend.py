"""Chooses the hardware backend, in one place.

Order: the ``name`` argument (``--board``), then the ``EDGEFW_BOARD``
environment variable, then detection: ``sys.platform`` on MicroPython
microcontrollers, the device tree's ``compatible`` list on Linux. When nothing is detected the sim
board is used, with a warning on stderr saying so.

    from hal.backend import open_board
    hw = open_board("sim", sensors=cfg["sensors"])

Families:
    micropython   the ``machine`` module itself (hal.native)
    sim           sim.board.SimHardware
    linux         Raspberry Pi and Jetson boards: not in this release; the
                  error says so and names the sim board as the way to run.
"""

import sys

import boards
from hal.errors import BackendUnavailable

DT_COMPATIBLE = "/proc/device-tree/compatible"


def _warn(msg):
    sys.stderr.write("edgefw: warning: " + msg + "\n")


def _getenv(name):
    try:
        import os

        return os.getenv(name)
    except (ImportError, AttributeError):
        return None


def detect_board(compatible_path=DT_COMPATIBLE):
    """The board this machine is, or None."""
    if sys.implementation.name == "micropython":
        name = boards.match_platform(sys.platform)
        if name:
            return name
    try:
        with open(compatible_path, "rb") as f:
            compat = f.read().decode("ascii", "replace")
    except OSError:
        return None
    return boards.match_compatible(compat)


def choose_board(name=None, compatible_path=DT_COMPATIBLE):
    """Board name by override, environment, detection, then sim."""
    if name:
        return boards.check(name)
    env = _getenv("EDGEFW_BOARD")
    if env:
        return boards.check(env)
    found = detect_board(compatible_path)
    if found:
        return found
    _warn("no known board detected; using the simulated board 'sim' (set EDGEFW_BOARD to choose)")
    return "sim"


def open_board(name=None, sensors=(), scenario=None, speed=0.0):
    """The hardware object for a board: ``.clock``, ``.i2c(role)``,
    ``.pin(role)``, ``.wdt(timeout_ms)``, ``.uart(role)``."""
    board = boards.get(choose_board(name))
    if board.FAMILY == "sim":
        from sim.board import SimHardware

        return SimHardware(board, sensors=sensors, scenario=scenario, speed=speed)
    if board.FAMILY == "micropython":
        if sys.implementation.name != "micropython":
            raise BackendUnavailable("board %r runs MicroPython; flash it with tools/flash.py, or run here with --board sim" % board.NAME)
        from hal.native import NativeHardware

        return NativeHardware(board)
    raise BackendUnavailable(
        "board %r needs the Linux backend (smbus2 for I2C, libgpiod for pins), which is not in this release yet; run with --board sim" % board.NAME
    )
