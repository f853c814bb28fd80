"""Plantower PMS5003 particulate sensor on a UART (9600 8N1).

    from hal.drivers.pms5003 import PMS5003
    pm = PMS5003(uart)             # machine.UART or hal.linux.uart.LinuxUART
    if pm.fetch():                 # True when a whole, valid frame arrived
        pm.pm2_5                   # ug/m3, atmospheric environment

In its default active mode the sensor sends a 32-byte frame by itself,
every 200 ms to 2.3 s: ``42 4D``, a frame length of 28, thirteen
big-endian 16-bit words (PM1.0/2.5/10 standard particle, the same under
atmospheric environment, six particle counts, reserved) and a 16-bit sum
of every byte before it. ``fetch`` never waits: it takes what the UART
has, resynchronises on ``42 4D``, and raises ``OSError(EIO)`` for a frame
whose length or checksum is wrong: a sensor fault for the interlock, as
an I2C error is. A sensor that stops sending is ``stale`` after the
config's ``stale_ms``.
"""

from hal.compat import const

_FRAME = const(32)
_LEN = const(28)

BUS = "uart"
QUANTITIES = ("pm1_ugm3", "pm2_5_ugm3", "pm10_ugm3")
OPTIONS = ()


def sample_ms(spec):
    """The longest gap between two frames in active mode."""
    return 2300


def checksum(frame, n=30):
    s = 0
    i = 0
    while i < n:
        s += frame[i]
        i += 1
    return s & 0xFFFF


class PMS5003:
    def __init__(self, uart):
        self.uart = uart
        self._frame = bytearray(_FRAME)
        self._rx = bytearray(_FRAME)
        self._n = 0
        self.pm1 = self.pm2_5 = self.pm10 = 0
        self.frames = 0
        self.errors = 0

    def _word(self, i):
        f = self._frame
        return (f[i] << 8) | f[i + 1]

    def feed(self, data, n):
        """Take ``n`` received bytes; returns 1 when a valid frame
        completed, raises ``OSError`` for a corrupt one."""
        f = self._frame
        fresh = 0
        i = 0
        while i < n:
            b = data[i]
            i += 1
            k = self._n
            if k == 0:
                if b == 0x42:
                    f[0] = b
                    self._n = 1
                continue
            if k == 1:
                if b == 0x4D:
                    f[1] = b
                    self._n = 2
                elif b != 0x42:
                    self._n = 0
                continue
            f[k] = b
            self._n = k + 1
            if self._n < _FRAME:
                continue
            self._n = 0
            if self._word(2) != _LEN or self._word(30) != checksum(f):
                self.errors += 1
                raise OSError(5, "PMS5003 frame: bad length or checksum")  # EIO
            self.pm1 = self._word(10)
            self.pm2_5 = self._word(12)
            self.pm10 = self._word(14)
            self.frames += 1
            fresh = 1
        return fresh

    def fetch(self):
        """Read what has arrived. True when a valid frame completed."""
        fresh = 0
        while True:
            n = self.uart.readinto(self._rx)
            if not n:
                return fresh == 1
            if self.feed(self._rx, n):
                fresh = 1

    def read_into(self, values, base):
        values[base] = self.pm1 * 1000
        values[base + 1] = self.pm2_5 * 1000
        values[base + 2] = self.pm10 * 1000


def from_spec(bus, spec):
    return PMS5003(bus)
