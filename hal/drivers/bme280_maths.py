"""BME280 compensation, the datasheet's integer formulas.

Pure functions of the trimming parameters and raw ADC values, no bus. The
32-bit pressure variant is used (not the 64-bit one), computed in pieces
that stay below 2**30, so that reading a sample allocates nothing on a
32-bit port too (past 2**30 MicroPython allocates a long integer).

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


def _mul2_shr(a, b, c, d, e, n):
    # (a*b + c*d + e) >> n, n >= 11, exact for any ints; every
    # intermediate is a small int for |a|, |c| < 2**20, |b|, |d| <= 2**16
    return ((a >> 11) * b + (c >> 11) * d + (((a & 2047) * b + (c & 2047) * d + e) >> 11)) >> (n - 11)


def pressure_pa(cal, tf, adc_p):
    # The datasheet's 32-bit formula, rearranged so that no intermediate
    # passes 2**30 (a long int, allocated, on a 32-bit port) for a t_fine
    # of -40..85 degC and any trimming values; the result is the same for
    # every input (tests/test_bme280_maths.py).
    v = (tf >> 1) - 64000
    a = v >> 2
    h = a >> 11
    lo = a & 2047
    q11 = ((h * h) << 11) + ((h * lo) << 1) + ((lo * lo) >> 11)  # (a*a) >> 11
    # var2 >> 12 of the datasheet, whole
    w = _mul2_shr(q11, cal[8], v << 1, cal[7], 0, 14) + (cal[6] << 4)
    # floor(A / 8) + floor(B / 2) == floor((A + 4*B - 4*(B & 1)) / 8)
    b = cal[4]
    d = _mul2_shr(q11 >> 2, cal[5], v << 2, b, -((b & v & 1) << 2), 21)
    d = _mul2_shr(32768 + d, cal[3], 0, 0, 0, 15)
    if d == 0:
        return 0  # the datasheet's guard against division by zero
    # x = ((1048576 - adc_p - w) * 3125) mod 2**32 in 16-bit halves
    z = 1048576 - adc_p - w
    lo = (z & 0xFFFF) * 3125
    hi = ((z >> 16) * 3125 + (lo >> 16)) & 0xFFFF
    lo &= 0xFFFF
    twice = hi < 0x8000
    if twice:  # p = 2x // d, else p = (x // d) * 2
        hi = (hi << 1) | (lo >> 15)
        lo = (lo << 1) & 0xFFFF
    m = -d if d < 0 else d
    p = hi // m  # long division by m, 8 bits at a time
    r = hi - p * m
    r = (r << 8) | (lo >> 8)
    h = r // m
    p = (p << 8) + h
    r = ((r - h * m) << 8) | (lo & 255)
    h = r // m
    p = (p << 8) + h
    if d < 0:  # floor division by a negative divisor
        p = -p if r == h * m else -p - 1
    if not twice:
        p <<= 1
    a = p >> 3
    h = a >> 13
    lo = a & 8191
    q11 = ((h * h) << 13) + ((h * lo) << 1) + ((lo * lo) >> 13)  # (a*a) >> 13
    return p + ((_mul2_shr(q11, cal[11], 0, 0, 0, 12) + _mul2_shr(p >> 2, cal[10], 0, 0, 0, 13) + cal[9]) >> 4)


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
    # a * b passes 2**30 only on a saturated reading: from 2**29 to 2**32
    # what follows is above the clamp for any H1 (and below 0 for a * b < 0)
    v = _mul2_shr(a, b, 0, 0, 0, 15)
    if v < 0:
        return 0
    if (1 << 14) <= v < (1 << 17):
        return 419430400 >> 12
    v = a * b
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4)
    if v < 0:
        v = 0
    elif v > 419430400:
        v = 419430400
    return v >> 12
