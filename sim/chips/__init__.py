"""Register-level chip models, shared by the tests and the simulator.

Each model is a register array that reacts to writes the way the chip
does, with ``set_channel(quantity, value)`` in real units and per-register
fault injection::

    m = BME280Model(0x76)
    m.set_channel("temperature_c", 85.0)
    m.inject_fault(0xF7)          # reads touching 0xF7 raise OSError(EIO)
    m.clear_faults()

Conversions happen in ``tick(now_us)``, called as virtual time moves, so a
register read during sensing is a plain copy and allocates nothing.
"""

import errno


class RegisterModel:
    """A chip seen from the bus: 256 byte-wide registers."""

    READ_ONLY = ()

    def __init__(self, address):
        self.address = address
        self.regs = bytearray(256)
        # per register, once a fault is first injected (most runs inject none)
        self.faults = None
        self.n_faults = 0
        self.absent = False
        self.stuck = False
        self.pointer = 0
        self.reads = 0
        self._eio = OSError(errno.EIO, "I/O error")

    def inject_fault(self, reg=None):
        """Make transactions touching ``reg`` (or every register, when
        None) fail with EIO."""
        if self.faults is None:
            self.faults = bytearray(256)
        if reg is None:
            for i in range(256):
                self.faults[i] = 1
        else:
            self.faults[reg] = 1
        self.n_faults = sum(self.faults)

    def clear_faults(self):
        if self.faults is not None:
            for i in range(256):
                self.faults[i] = 0
        self.n_faults = 0

    def _check(self, mem, n):
        if self.n_faults:
            f = self.faults
            i = 0
            while i < n:
                if f[(mem + i) & 0xFF]:
                    e = self._eio
                    if hasattr(e, "__traceback__"):
                        e.__traceback__ = None
                    raise e
                i += 1

    def read_into(self, mem, buf):
        n = len(buf)
        self._check(mem, n)
        self.reads += 1
        self.before_read(mem, n)
        r = self.regs
        i = 0
        while i < n:
            buf[i] = r[(mem + i) & 0xFF]
            i += 1
        self.after_read(mem, n)

    def write(self, mem, data):
        n = len(data)
        self._check(mem, n)
        for i in range(n):
            reg = (mem + i) & 0xFF
            if reg not in self.READ_ONLY:
                self.regs[reg] = data[i]
            self.on_write(reg, data[i])

    def before_read(self, mem, n):
        pass

    def after_read(self, mem, n):
        pass

    def on_write(self, reg, value):
        pass

    def tick(self, now_us):
        pass

    def set_channel(self, quantity, value):
        raise ValueError("%s has no channel %r" % (type(self).__name__, quantity))
