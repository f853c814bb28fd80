"""Q-format fixed-point arithmetic on int32, as gemmlowp defines it, for
LOGISTIC and SOFTMAX (TFLM's int8 reference kernels call into gemmlowp).
Its raws pass 2**30, so the kernels use it at load, to build their
tables, and not in ``invoke``.

A fixed-point value is its raw int32 and a number of integer bits; the
functions take raws and say which format they expect.

    from firmware.nn import fixedpoint as fp
    fp.exp_on_negative_values(raw_q5_26, 5)     # exp in Q0.31

It imports only firmware.nn.q31 (which imports nothing of firmware.nn).
"""

from firmware.nn.q31 import rdbpot, srdhm
from firmware.nn.q31 import wrap32 as _w
from hal.compat import const

_MIN = const(-0x80000000)
_MAX = const(0x7FFFFFFF)


def one(int_bits):
    return _MAX if int_bits == 0 else 1 << (31 - int_bits)


def pot(int_bits, exponent):
    return 1 << (31 - int_bits + exponent)


def mul_pot(x, exponent):
    """SaturatingRoundingMultiplyByPOT."""
    if exponent == 0:
        return x
    if exponent < 0:
        return rdbpot(x, -exponent)
    threshold = (1 << (31 - exponent)) - 1
    if x > threshold:
        return _MAX
    if x < -threshold:
        return _MIN
    return _w(x << exponent)


def rescale(x, src_bits, dst_bits):
    return mul_pot(x, src_bits - dst_bits)


def half_sum(a, b):
    s = a + b
    sign = 1 if s >= 0 else -1
    v = s + sign
    return v // 2 if v >= 0 else -((-v) // 2)


def _exp_quarter(a):
    """exp on [-1/4, 0), a in Q0.31."""
    const_term = 1895147668
    one_third = 715827883
    x = _w(a + pot(0, -3))
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    x4_over_4 = mul_pot(x4, -2)
    t = mul_pot(_w(srdhm(_w(x4_over_4 + x3), one_third) + x2), -1)
    return _w(const_term + srdhm(const_term, _w(x + t)))


_BARREL = ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308), (2, 39332535), (3, 720401), (4, 242))


def exp_on_negative_values(a, int_bits):
    """exp(a) for a <= 0 in Q(int_bits); result in Q0.31."""
    frac = 31 - int_bits
    quarter = pot(int_bits, -2)
    mask = quarter - 1
    a_mod = _w((a & mask) - quarter)
    result = _exp_quarter(rescale(a_mod, int_bits, 0))
    remainder = _w(a_mod - a)
    for exponent, mult in _BARREL:
        if int_bits > exponent and remainder & (1 << (frac + exponent)):
            result = srdhm(result, mult)
    if int_bits > 5:
        clamp = -(1 << (36 - int_bits))
        if a < clamp:
            result = 0
    if a == 0:
        result = one(0)
    return result


def one_over_one_plus_x(a):
    """1 / (1 + x) for x in [0, 1] in Q0.31; result in Q0.31."""
    half_den = half_sum(a, one(0))
    c48_17 = 1515870810
    cm32_17 = -1010580540
    x = _w(c48_17 + srdhm(half_den, cm32_17))
    for _ in range(3):
        hdx = srdhm(half_den, x)
        one_minus = _w(one(2) - hdx)
        x = _w(x + rescale(srdhm(x, one_minus), 4, 2))
    return rescale(x >> 1, 2, 0)


def logistic(a, int_bits):
    """The logistic function of a (Q int_bits) in Q0.31."""
    if a == 0:
        return 1 << 30
    absa = a if a > 0 else _w(-a)
    pos = one_over_one_plus_x(exp_on_negative_values(_w(-absa), int_bits))
    return pos if a > 0 else _w(one(0) - pos)
