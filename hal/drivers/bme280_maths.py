"""BME280 compensation, the datasheet's integer formulas.

Pure functions of the trimming parameters and raw ADC values, no bus. The
32-bit pressure variant is used (not the 64-bit one): its intermediates stay
within MicroPython's small-int range on 64-bit ports, so reading a sample
allocates nothing.

Units: temperature in 0.01 degC, pressure in Pa, humidity in 1/1024 %RH.
"""


def calib_from_bytes(c1, c2):
    """Trimming parameters from registers 0x88..0xA1 (``c1``, 26 bytes) and
    0xE1..0xE7 (``c2``, 7 bytes), as a tuple
    (T1, T2, T3, P1..P9, H1..H6)."""

    def u16(b, i):
        return b[i] | (b[i + 1] << 8)

    def s16(b, i):
        v = b[i] | (b[i + 1] << 8)
        return v - 0x10000 if v & 0x8000 else v

    def s12(v):
        return v - 0x1000 if v & 0x800 else v

    def s8(v):
        return v - 0x100 if v & 0x80 else v

    t = (u16(c1, 0), s16(c1, 2), s16(c1, 4))
    p = (u16(c1, 6),) + tuple(s16(c1, 8 + 2 * i) for i in range(8))
    h1 = c1[25]
    h2 = s16(c2, 0)
    h3 = c2[2]
    h4 = s12((c2[3] << 4) | (c2[4] & 0x0F))
    h5 = s12((c2[5] << 4) | (c2[4] >> 4))
    h6 = s8(c2[6])
    return t + p + (h1, h2, h3, h4, h5, h6)


def t_fine(cal, adc_t):
    t1 = cal[0]
    var1 = (((adc_t >> 3) - (t1 << 1)) * cal[1]) >> 11
    d = (adc_t >> 4) - t1
    var2 = (((d * d) >> 12) * cal[2]) >> 14
    return var1 + var2


def temperature_centi(tf):
    return (tf * 5 + 128) >> 8


def pressure_pa(cal, tf, adc_p):
    var1 = (tf >> 1) - 64000
    q = (var1 >> 2) * (var1 >> 2)
    var2 = ((q >> 11) * cal[8]) + ((var1 * cal[7]) << 1)
    var2 = (var2 >> 2) + (cal[6] << 16)
    var1 = (((cal[5] * (q >> 13)) >> 3) + ((cal[4] * var1) >> 1)) >> 18
    var1 = ((32768 + var1) * cal[3]) >> 15
    if var1 == 0:
        return 0  # the datasheet's guard against division by zero
    p = (((1048576 - adc_p) - (var2 >> 12)) * 3125) & 0xFFFFFFFF
    if p < 0x80000000:
        p = (p << 1) // var1
    else:
        p = (p // var1) * 2
    var1 = (cal[11] * (((p >> 3) * (p >> 3)) >> 13)) >> 12
    var2 = ((p >> 2) * cal[10]) >> 13
    return p + ((var1 + var2 + cal[9]) >> 4)


def humidity_q10(cal, tf, adc_h):
    # one name at a time: a tuple on the right would be allocated
    h1 = cal[12]
    h2 = cal[13]
    h3 = cal[14]
    h4 = cal[15]
    h5 = cal[16]
    h6 = cal[17]
    v = tf - 76800
    a = (((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15
    b = ((((((v * h6) >> 10) * (((v * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14
    v = a * b
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4)
    if v < 0:
        v = 0
    elif v > 419430400:
        v = 419430400
    return v >> 12
