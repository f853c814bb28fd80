"""Register model of the Analog Devices ADXL345.

Samples are produced in ``tick`` at the output data rate set in BW_RATE,
only while POWER_CTL's measure bit is set. DATA_READY in INT_SOURCE is set
by a new sample and cleared when the data registers are read, as on the
chip. A vibration is a sine added to the static acceleration of one axis
over a time window.
"""

import math

from sim.chips import RegisterModel

_RATE_HZ = {0x08: 25, 0x09: 50, 0x0A: 100, 0x0B: 200, 0x0C: 400, 0x0D: 800, 0x0E: 1600, 0x0F: 3200}
_AXES = ("accel_x_g", "accel_y_g", "accel_z_g")


class ADXL345Model(RegisterModel):
    READ_ONLY = (0x00, 0x30) + tuple(range(0x32, 0x3A))
    QUANTITIES = _AXES

    def __init__(self, address=0x53):
        RegisterModel.__init__(self, address)
        self.static_g = [0.0, 0.0, 1.0]
        self.vibrations = []
        self._last_sample_us = None
        self.samples = 0
        self._power_on()

    def _power_on(self):
        r = self.regs
        for i in range(256):
            r[i] = 0
        r[0x00] = 0xE5
        r[0x2C] = 0x0A
        r[0x30] = 0x02  # Watermark set after reset, per the datasheet

    def set_channel(self, quantity, value):
        if quantity not in _AXES:
            RegisterModel.set_channel(self, quantity, value)
        self.static_g[_AXES.index(quantity)] = float(value)

    def add_vibration(self, axis, amplitude_g, freq_hz, start_us, end_us):
        self.vibrations.append((_AXES.index(axis), amplitude_g, freq_hz, start_us, end_us))

    def rate_hz(self):
        return _RATE_HZ.get(self.regs[0x2C] & 0x0F, 100)

    def measuring(self):
        return bool(self.regs[0x2D] & 0x08)

    def _lsb_per_g(self):
        fmt = self.regs[0x31]
        if fmt & 0x08:
            return 256.0
        return 256.0 / (1 << (fmt & 0x03))

    def tick(self, now_us):
        if not self.measuring() or self.stuck:
            self._last_sample_us = None if not self.measuring() else self._last_sample_us
            return
        period = 1000000 // self.rate_hz()
        last = self._last_sample_us
        if last is None:
            last = now_us - period
        n = (now_us - last) // period
        if n <= 0:
            return
        t = last + n * period
        self._last_sample_us = t
        self.samples += n
        g = list(self.static_g)
        live = []
        for v in self.vibrations:
            axis, amp, f, t0, t1 = v
            if t1 > t:
                live.append(v)
            if t0 <= t < t1:
                g[axis] += amp * math.sin(2 * math.pi * f * (t - t0) / 1000000)
        self.vibrations = live
        k = self._lsb_per_g()
        full = int(k * (2 << (self.regs[0x31] & 0x03)))
        r = self.regs
        for i in range(3):
            raw = int(round(g[i] * k))
            raw = max(-full, min(full - 1, raw))  # saturates at full scale
            raw &= 0xFFFF
            r[0x32 + 2 * i] = raw & 0xFF
            r[0x33 + 2 * i] = raw >> 8
        r[0x30] |= 0x80

    def after_read(self, mem, n):
        # reading any data register clears DATA_READY
        if mem <= 0x37 and mem + n > 0x32:
            self.regs[0x30] &= 0x7F

    def on_write(self, reg, value):
        if reg == 0x2D and not value & 0x08:
            self._last_sample_us = None


def from_spec(spec):
    return ADXL345Model(spec["address"])
