"""Virtual GPIO with the ``machine.Pin`` interface.

Every level change of every line is recorded with its virtual timestamp in
a preallocated log, so driving a pin allocates nothing::

    gpio = SimGPIO(clock)
    permit = gpio.pin(0, SimPin.OUT, name="RELAY_PERMIT")
    permit.value(1)
    gpio.transitions()           # [(t_us, name, level), ...]

Inputs are driven by the simulated world with ``set_input``. ``hold_reset``
models a chip held in reset by its watchdog: outputs read 0 and ignore
writes, as a de-energized relay driver would.
"""

import struct

from hal.compat import const

_LOG = const(64)


class SimPin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, gpio, line, mode, pull=None, name=None):
        self._gpio = gpio
        self.line = line
        self.mode = mode
        self.name = name or ("P%d" % line)
        gpio.names[line] = self.name
        if mode == SimPin.IN and pull == SimPin.PULL_UP and not gpio.driven[line]:
            gpio.levels[line] = 1

    def value(self, v=None):
        if v is None:
            return self._gpio.levels[self.line]
        if self.mode == SimPin.OUT:
            self._gpio.drive(self.line, 1 if v else 0)
        return None

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class SimGPIO:
    def __init__(self, clock, lines=16, log=_LOG):
        self.clock = clock
        self.levels = bytearray(lines)
        self.driven = bytearray(lines)
        self.names = {}
        self.in_reset = False
        self._cap = log
        self._t = bytearray(8 * log)
        self._line = bytearray(log)
        self._level = bytearray(log)
        self._n = 0
        self.dropped = 0
        # mirror(line, level) is told of every output write (sim.bench)
        self.mirror = None

    def pin(self, line, mode, pull=None, name=None):
        return SimPin(self, line, mode, pull, name)

    def _log(self, line, level):
        i = self._n
        if i >= self._cap:
            self.dropped += 1
            return
        struct.pack_into("<q", self._t, 8 * i, self.clock.now_us)
        self._line[i] = line
        self._level[i] = level
        self._n = i + 1

    def drive(self, line, level):
        if self.in_reset and not self.driven[line]:
            level = 0
        if self.mirror is not None:
            self.mirror(line, level)
        if self.levels[line] != level:
            self.levels[line] = level
            self._log(line, level)

    def set_input(self, line, level):
        """The world drives an input line (a button, a contact)."""
        self.driven[line] = 1
        self.drive(line, level)

    def hold_reset(self):
        """Force every output low and keep it there (chip in reset)."""
        for line in range(len(self.levels)):
            if not self.driven[line]:
                self.drive(line, 0)
        self.in_reset = True

    def transitions(self, name=None):
        out = []
        for i in range(self._n):
            n = self.names.get(self._line[i], "P%d" % self._line[i])
            if name is None or n == name:
                out.append((struct.unpack_from("<q", self._t, 8 * i)[0], n, self._level[i]))
        return out
