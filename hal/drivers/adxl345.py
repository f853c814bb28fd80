"""Analog Devices ADXL345 3-axis accelerometer over I2C.

    from hal.drivers.adxl345 import ADXL345
    acc = ADXL345(i2c, address=0x53, range_g=16, rate_hz=800)
    if acc.fetch():                # True when a new sample was ready
        acc.x_mg, acc.y_mg, acc.z_mg

Full-resolution mode: 256 LSB/g at every range. ``fetch`` reads
INT_SOURCE and the six data registers in one burst (0x30..0x37), so the
DATA_READY flag and the sample come from the same transaction; a chip that
stops converting is seen as stale, not as a repeated old sample.
"""

from hal.compat import const
from hal.errors import SensorError

_REG_DEVID = const(0x00)
_REG_BW_RATE = const(0x2C)
_REG_POWER_CTL = const(0x2D)
_REG_INT_SOURCE = const(0x30)
_REG_DATA_FORMAT = const(0x31)
CHIP_ID = const(0xE5)
_MEASURE = const(0x08)
_FULL_RES = const(0x08)
_DATA_READY = const(0x80)

_RANGES = {2: 0, 4: 1, 8: 2, 16: 3}
# Output data rate codes from the datasheet's BW_RATE table.
_RATES = {25: 0x08, 50: 0x09, 100: 0x0A, 200: 0x0B, 400: 0x0C, 800: 0x0D, 1600: 0x0E, 3200: 0x0F}

BUS = "i2c"
QUANTITIES = ("accel_x_g", "accel_y_g", "accel_z_g")
ID_REGISTER = _REG_DEVID
# extra config fields: (name, default, allowed values)
OPTIONS = (("range_g", 16, (2, 4, 8, 16)), ("rate_hz", 800, (25, 50, 100, 200, 400, 800, 1600, 3200)))


def sample_ms(spec):
    """A new sample every 1/rate_hz."""
    return -(-1000 // spec["rate_hz"])


def raw_to_mg(lo, hi):
    v = lo | (hi << 8)
    if v & 0x8000:
        v -= 0x10000
    # 256 LSB/g in full resolution: 1000/256 mg per LSB
    return (v * 125) >> 5


class ADXL345:
    def __init__(self, i2c, address=0x53, range_g=16, rate_hz=800):
        if range_g not in _RANGES:
            raise ValueError("ADXL345 range_g must be one of 2, 4, 8, 16, got %r" % (range_g,))
        if rate_hz not in _RATES:
            raise ValueError("ADXL345 rate_hz must be one of %s, got %r" % (sorted(_RATES), rate_hz))
        self.i2c = i2c
        self.address = address
        one = bytearray(1)
        i2c.readfrom_mem_into(address, _REG_DEVID, one)
        if one[0] != CHIP_ID:
            raise SensorError("ADXL345 at 0x%02x: device id 0x%02x, expected 0x%02x" % (address, one[0], CHIP_ID))
        i2c.writeto_mem(address, _REG_BW_RATE, bytes((_RATES[rate_hz],)))
        i2c.writeto_mem(address, _REG_DATA_FORMAT, bytes((_FULL_RES | _RANGES[range_g],)))
        i2c.writeto_mem(address, _REG_POWER_CTL, bytes((_MEASURE,)))
        self.rate_hz = rate_hz
        self._buf = bytearray(8)
        self.x_mg = self.y_mg = self.z_mg = 0

    def fetch(self):
        """Read a sample if one is ready. Returns True when fresh."""
        b = self._buf
        self.i2c.readfrom_mem_into(self.address, _REG_INT_SOURCE, b)
        if not b[0] & _DATA_READY:
            return False
        self.x_mg = raw_to_mg(b[2], b[3])
        self.y_mg = raw_to_mg(b[4], b[5])
        self.z_mg = raw_to_mg(b[6], b[7])
        return True

    def read_into(self, values, base):
        values[base] = self.x_mg
        values[base + 1] = self.y_mg
        values[base + 2] = self.z_mg


def from_spec(bus, spec):
    return ADXL345(bus, spec["address"], range_g=spec["range_g"], rate_hz=spec["rate_hz"])
