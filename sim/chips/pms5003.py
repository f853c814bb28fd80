"""Protocol model of the Plantower PMS5003: the frames it sends.

    m = PMS5003Model(interval_ms=200)
    m.set_channel("pm2_5_ugm3", 35)
    m.frame()                 # the 32 bytes it sends for that
    m.corrupt = True          # frames go out with a wrong checksum
    m.stuck = True            # it stops sending

In the simulator it writes a frame into its UART (``attach``) every
``interval_ms`` of virtual time; over a real serial line or pty the test
writes ``frame()`` to the far end itself. Standard-particle (CF=1) words
equal the atmospheric ones here; particle counts are derived from PM2.5
only to make the frame look like the sensor's.
"""

from hal.drivers.pms5003 import QUANTITIES, checksum


class PMS5003Model:
    QUANTITIES = QUANTITIES

    def __init__(self, interval_ms=200):
        self.values = {"pm1_ugm3": 5.0, "pm2_5_ugm3": 8.0, "pm10_ugm3": 10.0}
        self.interval_us = interval_ms * 1000
        self.uart = None
        self.corrupt = False
        self.stuck = False
        self.absent = False
        self.sent = 0
        self._next = 0

    def set_channel(self, quantity, value):
        if quantity not in self.values:
            raise ValueError("PMS5003 has no quantity %r (has: %s)" % (quantity, ", ".join(QUANTITIES)))
        if not 0 <= value <= 65535:
            raise ValueError("PMS5003 %s must be 0..65535 ug/m3, got %r" % (quantity, value))
        self.values[quantity] = float(value)

    def frame(self):
        pm1 = int(self.values["pm1_ugm3"])
        pm25 = int(self.values["pm2_5_ugm3"])
        pm10 = int(self.values["pm10_ugm3"])
        words = (28, pm1, pm25, pm10, pm1, pm25, pm10, pm25 * 90, pm25 * 30, pm25 * 6, pm25, pm25 // 3, pm25 // 10, 0x9700)
        f = bytearray(32)
        f[0], f[1] = 0x42, 0x4D
        for i, w in enumerate(words):
            f[2 + 2 * i] = (w >> 8) & 0xFF
            f[3 + 2 * i] = w & 0xFF
        s = checksum(f)
        if self.corrupt:
            s ^= 0x0001
        f[30], f[31] = s >> 8, s & 0xFF
        return bytes(f)

    def attach(self, uart):
        self.uart = uart

    def inject_fault(self, register=None):
        self.corrupt = True

    def clear_faults(self):
        self.corrupt = False

    def tick(self, now_us):
        if now_us is None or self.uart is None or self.stuck or self.absent:
            return
        if now_us >= self._next:
            self._next = now_us + self.interval_us
            self.uart.write(self.frame())
            self.sent += 1


def from_spec(spec):
    return PMS5003Model()
