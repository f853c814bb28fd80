"""MicroPython backend: the ``machine`` objects themselves, no wrappers.

Only the board table is read here; the objects returned are
``machine.I2C``, ``machine.Pin`` and ``machine.WDT`` as they are.
"""

import machine

from hal.clock import RealClock
from hal.errors import BackendUnavailable, BoardError


class NativeHardware:
    def __init__(self, board, **_unused):
        if not hasattr(machine, "Pin"):
            # the unix port's machine module has no pins or buses
            raise BackendUnavailable(
                "board %r needs a device's machine.Pin and machine.I2C, which this MicroPython has not got; run here with --board sim" % board.NAME
            )
        self.board = board
        self.clock = RealClock()
        self._pins = {}

    def i2c(self, role):
        spec = self.board.I2C.get(role)
        if spec is None:
            raise BoardError("the %s board has no I2C bus %r" % (self.board.NAME, role))
        return machine.I2C(spec["id"], scl=machine.Pin(spec["scl"]), sda=machine.Pin(spec["sda"]), freq=spec.get("freq", 400000))

    def pin(self, role):
        if role in self._pins:
            return self._pins[role]
        spec = self.board.PINS.get(role)
        if spec is None:
            raise BoardError("the %s board has no pin role %r" % (self.board.NAME, role))
        if spec["mode"] == "out":
            # value=0 at construction: the output never glitches high
            p = machine.Pin(spec["line"], machine.Pin.OUT, value=0)
        else:
            pull = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}.get(spec.get("pull"))
            p = machine.Pin(spec["line"], machine.Pin.IN, pull)
        self._pins[role] = p
        return p

    def wdt(self, timeout):
        return machine.WDT(timeout=timeout)

    def uart(self, role):
        spec = self.board.UART[role]
        return machine.UART(spec["id"], baudrate=115200, tx=spec["tx"], rx=spec["rx"])
