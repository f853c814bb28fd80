"""Stand-ins for the kernel side of the Linux backend, for machines with no
/dev/i2c-N or /dev/gpiochipN: an smbus2.SMBus that answers from the sim
chip models the way the kernel's i2c-dev does (NACK as ENXIO, i2c_msg
buffers filled in place), and a gpiod module whose chips have named lines,
record every value set and queue edge events for inputs."""

import ctypes
import errno
import time

from gpiod.line import Direction, Edge, Value
from smbus2 import I2cFunc

from sim.i2c import SimI2C

BLOCK_FUNCS = I2cFunc.SMBUS_READ_BYTE | I2cFunc.SMBUS_READ_I2C_BLOCK | I2cFunc.SMBUS_WRITE_I2C_BLOCK | I2cFunc.SMBUS_WRITE_BYTE
PLAIN_FUNCS = I2cFunc.I2C | I2cFunc.SMBUS_READ_BYTE


class FakeSMBus:
    def __init__(self, models, funcs=BLOCK_FUNCS):
        self.sim = SimI2C()
        for m in models:
            self.sim.attach(m)
        self.funcs = funcs
        self.calls = []
        self.fail_errno = None
        self.closed = False
        self._t0 = time.monotonic()

    def _tick(self):
        now = int((time.monotonic() - self._t0) * 1e6)
        for m in self.sim.devices.values():
            m.tick(now)

    def _kernel(self, fn):
        self._tick()
        if self.fail_errno is not None:
            raise OSError(self.fail_errno, "injected")
        try:
            return fn()
        except OSError as e:
            if e.errno == errno.ENODEV:  # the kernel reports a NACK so
                raise OSError(errno.ENXIO, "No such device or address")
            raise

    def read_i2c_block_data(self, addr, reg, n):
        assert self.funcs & I2cFunc.SMBUS_READ_I2C_BLOCK and n <= 32
        self.calls.append(("block_read", addr, reg, n))
        buf = bytearray(n)
        self._kernel(lambda: self.sim.readfrom_mem_into(addr, reg, buf))
        return list(buf)

    def write_i2c_block_data(self, addr, reg, data):
        assert self.funcs & I2cFunc.SMBUS_WRITE_I2C_BLOCK
        self.calls.append(("block_write", addr, reg, bytes(data)))
        self._kernel(lambda: self.sim.writeto_mem(addr, reg, bytes(data)))

    def read_byte(self, addr):
        self.calls.append(("read_byte", addr))
        return self._kernel(lambda: self.sim.readfrom(addr, 1))[0]

    def write_byte(self, addr, v):
        self._kernel(lambda: self.sim.writeto(addr, bytes((v,))))

    def i2c_rdwr(self, *msgs):
        assert self.funcs & I2cFunc.I2C, "i2c_rdwr on an adapter without plain I2C"
        self.calls.append(("rdwr",) + tuple(("r" if m.flags & 1 else "w", m.addr, m.len) for m in msgs))

        def run():
            for m in msgs:
                if m.flags & 1:
                    data = self.sim.readfrom(m.addr, m.len)
                    ctypes.memmove(m.buf, data, m.len)
                else:
                    self.sim.writeto(m.addr, bytes(m))

        self._kernel(run)

    def close(self):
        self.closed = True


class _Event:
    class Type:
        RISING_EDGE = 1
        FALLING_EDGE = 2

    def __init__(self, kind):
        self.event_type = kind


class FakeRequest:
    def __init__(self, chip, offset, settings):
        self.chip = chip
        self.offset = offset
        self.settings = settings
        self.events = []
        self.released = False
        if settings.direction == Direction.OUTPUT:
            chip.levels[offset] = settings.output_value
            chip.history[offset].append(settings.output_value)

    def set_value(self, offset, v):
        assert offset == self.offset and not self.released
        if self.settings.direction != Direction.OUTPUT:
            raise PermissionError(1, "Operation not permitted")  # as the kernel answers for an input line
        self.chip.levels[offset] = v
        self.chip.history[offset].append(v)

    def get_value(self, offset):
        return self.chip.levels[offset]

    def wait_edge_events(self, timeout=None):
        return bool(self.events)

    def read_edge_events(self):
        ev, self.events = self.events, []
        return ev

    def release(self):
        self.released = True


class FakeChip:
    def __init__(self, path, label, names):
        self.path = path
        self.label = label
        self.names = dict(names)
        self.levels = {o: Value.INACTIVE for o in self.names.values()}
        self.history = {o: [] for o in self.names.values()}
        self.requests = {}
        self.closed = False

    def get_info(self):
        return type("Info", (), {"label": self.label})()

    def line_offset_from_id(self, name):
        if name not in self.names:
            raise OSError(errno.ENOENT, "no line %r" % name)
        return self.names[name]

    def request_lines(self, config, consumer=None):
        ((offset, settings),) = config.items()
        assert offset not in self.requests, "line requested twice"
        r = FakeRequest(self, offset, settings)
        r.consumer = consumer
        self.requests[offset] = r
        return r

    def drive_input(self, name, level):
        """What the world does to an input line: its level and, when the
        request asked for edges, the kernel's edge event."""
        o = self.names[name]
        new = Value.ACTIVE if level else Value.INACTIVE
        r = self.requests.get(o)
        if new != self.levels[o] and r is not None and r.settings.edge_detection == Edge.BOTH:
            r.events.append(_Event(_Event.Type.RISING_EDGE if level else _Event.Type.FALLING_EDGE))
        self.levels[o] = new

    def close(self):
        self.closed = True


class FakeGpiod:
    """The part of the gpiod module hal.linux.gpio uses, over FakeChips
    whose paths are files in a temporary /dev."""

    def __init__(self, chips):
        self.chips = {c.path: c for c in chips}
        import gpiod

        self.LineSettings = gpiod.LineSettings

    def is_gpiochip_device(self, path):
        return path in self.chips

    def Chip(self, path):
        c = self.chips[path]
        c.closed = False
        return c
