"""Register model of the Bosch BME280.

Holds a set of trimming parameters in its NVM registers; ``set_channel``
turns real units into the raw ADC codes that the datasheet's compensation
maps back to those units (found by bisection over the same formulas the
driver uses; the formulas themselves are checked against the datasheet's
worked example and the floating-point reference in the tests).
"""

from hal.drivers import bme280_maths as maths
from sim.chips import RegisterModel

# Trimming values of the datasheet's worked example (T and P), humidity
# values typical of production parts.
DEFAULT_TRIM = (27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000, 75, 362, 0, 313, 50, 30)


def _put16(r, i, v):
    v &= 0xFFFF
    r[i] = v & 0xFF
    r[i + 1] = v >> 8


def _bisect(f, lo, hi, target, increasing):
    # smallest code whose output reaches target (monotone f)
    while lo < hi:
        mid = (lo + hi) >> 1
        v = f(mid)
        if (v < target) if increasing else (v > target):
            lo = mid + 1
        else:
            hi = mid
    return lo


class BME280Model(RegisterModel):
    READ_ONLY = tuple(range(0x88, 0xA2)) + (0xD0,) + tuple(range(0xE1, 0xF0)) + (0xF3,) + tuple(range(0xF7, 0x100))
    QUANTITIES = ("temperature_c", "humidity_pct", "pressure_hpa")

    def __init__(self, address=0x76, trim=DEFAULT_TRIM):
        RegisterModel.__init__(self, address)
        self.trim = trim
        self.values = {"temperature_c": 22.0, "humidity_pct": 45.0, "pressure_hpa": 1013.25}
        self._adc = [0x80000, 0x80000, 0x8000]
        self._power_on()
        self._encode()

    def _power_on(self):
        r = self.regs
        for i in range(256):
            r[i] = 0
        r[0xD0] = 0x60
        t = self.trim
        for i in range(3):
            _put16(r, 0x88 + 2 * i, t[i])
        for i in range(9):
            _put16(r, 0x8E + 2 * i, t[3 + i])
        r[0xA1] = t[12]
        _put16(r, 0xE1, t[13])
        r[0xE3] = t[14]
        h4, h5 = t[15] & 0xFFF, t[16] & 0xFFF
        r[0xE4] = h4 >> 4
        r[0xE5] = (h4 & 0x0F) | ((h5 & 0x0F) << 4)
        r[0xE6] = h5 >> 4
        r[0xE7] = t[17] & 0xFF
        # data registers hold the reset values until the first conversion
        r[0xF7], r[0xF8], r[0xF9] = 0x80, 0x00, 0x00
        r[0xFA], r[0xFB], r[0xFC] = 0x80, 0x00, 0x00
        r[0xFD], r[0xFE] = 0x80, 0x00

    def _encode(self):
        cal = self.trim
        tc = int(round(self.values["temperature_c"] * 100))
        adc_t = _bisect(lambda a: maths.temperature_centi(maths.t_fine(cal, a)), 0, (1 << 20) - 1, tc, True)
        tf = maths.t_fine(cal, adc_t)
        pa = int(round(self.values["pressure_hpa"] * 100))
        adc_p = _bisect(lambda a: maths.pressure_pa(cal, tf, a), 0, (1 << 20) - 1, pa, False)
        hq = int(round(self.values["humidity_pct"] * 1024))
        adc_h = _bisect(lambda a: maths.humidity_q10(cal, tf, a), 0, 0xFFFF, hq, True)
        self._adc = [adc_t, adc_p, adc_h]

    def set_channel(self, quantity, value):
        if quantity not in self.values:
            RegisterModel.set_channel(self, quantity, value)
        self.values[quantity] = float(value)
        self._encode()

    def on_write(self, reg, value):
        if reg == 0xE0 and value == 0xB6:
            self._power_on()
        elif reg == 0xF4:
            self.tick(None)  # a conversion starts as soon as a mode is set

    def measuring(self):
        return self.regs[0xF4] & 0x03 != 0

    def tick(self, now_us):
        if self.stuck or not self.measuring():
            return
        adc_t, adc_p, adc_h = self._adc
        r = self.regs
        r[0xF7], r[0xF8], r[0xF9] = adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0x0F) << 4
        r[0xFA], r[0xFB], r[0xFC] = adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0x0F) << 4
        r[0xFD], r[0xFE] = adc_h >> 8, adc_h & 0xFF
        if self.regs[0xF4] & 0x03 == 0x01:
            # forced mode: one conversion, then back to sleep
            self.regs[0xF4] &= 0xFC


def from_spec(spec):
    return BME280Model(spec["address"])
