"""Q31 fixed-point requantization, as TFLite's reference kernels do it:
the leaf that firmware.nn.kernels (every invoke) and firmware.nn.fixedpoint
(tables built at load) share, importing neither.

    q, shift = quantize_multiplier(0.0123)    # at load
    qh, ql = split_multiplier(q)
    y = mbqm(acc, qh, ql, shift)              # in a kernel: no 64-bit product

The kernels never form the 64-bit product: the plan holds each multiplier
as 15-bit halves and ``srdhm_split`` sums the product in 15-bit limbs, so
on a 32-bit MicroPython (small ints end at 2**30, a larger one is
allocated) ``invoke`` allocates nothing. ``srdhm`` is the direct formula,
used at load and by the tests. Constants are ``const()`` here, where the
hot functions read them (MicroPython folds a const only in its own module).
"""

import math

from hal.compat import const

_INT32_MIN = const(-0x80000000)
_INT32_MAX = const(0x7FFFFFFF)


def quantize_multiplier(real):
    """(q31 multiplier, shift) for a positive real multiplier."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)
    # std::round: half away from zero (q > 0 here)
    qf = math.floor(q * (1 << 31) + 0.5)
    if qf == 1 << 31:
        qf //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return qf, shift


def wrap32(x):
    """x as the int32 that C's wrapping arithmetic leaves."""
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x & 0x80000000 else x


def srdhm(a, b):
    """SaturatingRoundingDoublingHighMul for int32 a, b."""
    if a == _INT32_MIN and b == _INT32_MIN:
        return _INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else (1 - (1 << 30))
    v = ab + nudge
    # C integer division truncates toward zero
    q = v >> 31 if v >= 0 else -((-v) >> 31)
    return q


def split_multiplier(q):
    """A Q31 multiplier (0 <= q < 2**31) as the halves ``srdhm_split`` and
    ``mbqm`` take: (q >> 15, q & 0x7FFF), each a small int on 32-bit."""
    return (q >> 15, q & 0x7FFF)


def channel_multipliers(in_scale, w_scales, out_scale):
    """The requantization of a layer with one weight scale per output
    channel (or one for all): array('i') of halves ``qh0, ql0, qh1, ql1,
    ...`` and array('i') of shifts, as every kernel set reads them (the
    native kernels as plain int32 memory)."""
    import array

    mults = array.array("i", bytes(8 * len(w_scales)))
    shifts = array.array("i", bytes(4 * len(w_scales)))
    for k, s in enumerate(w_scales):
        q, sh = quantize_multiplier(in_scale * s / out_scale)
        mults[2 * k], mults[2 * k + 1] = split_multiplier(q)
        shifts[k] = sh
    return mults, shifts


def srdhm_split(a, bh, bl):
    """srdhm(a, b) for b = bh * 2**15 + bl >= 0 (0 <= bl < 2**15), without
    the 64-bit product: a * b + 2**30 is summed in 15-bit limbs, so for
    |a| < 2**30 no intermediate reaches 2**30 (on a 32-bit MicroPython,
    past that an int is allocated). Equal to srdhm for every int32 a."""
    s = 1 if a < 0 else 0
    m = -a if s else a
    mh = m >> 15
    ml = m & 0x7FFF
    b2 = bh >> 15
    b1 = bh & 0x7FFF
    u = mh * bl
    w = ml * b1
    c = mh * b1
    # m*b + 2**30 - s = sum of limbs x * 2**(15*k); then >> 31
    x = (ml * bl - s) >> 15
    x = ((x + (u & 0x7FFF) + (w & 0x7FFF)) >> 15) + (u >> 15) + (w >> 15) + (c & 0x7FFF) + ml * b2 + 1
    q = (((x >> 15) + (c >> 15) + mh * b2) << 14) + ((x & 0x7FFF) >> 1)
    return -q if s else q


def rdbpot(x, exponent):
    """RoundingDivideByPOT: x / 2**exponent, rounding half away from zero."""
    if exponent == 0:
        return x
    if exponent > 29 and -0x20000000 < x < 0x20000000:
        return 0  # |x| / 2**exponent < 1/2; and 1 << 30 would be a long int
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def mbqm(x, qh, ql, shift):
    """MultiplyByQuantizedMultiplier (reference, double rounding) by the
    multiplier qh * 2**15 + ql (``split_multiplier``)."""
    if shift > 0:
        x <<= shift
    if not -0x80000000 <= x <= 0x7FFFFFFF:
        # an int32 accumulator that overflowed (only a broken model's
        # weights get there) wraps, as in TFLM and the numpy kernels
        x = wrap32(x)
    if shift > 0:
        return srdhm_split(x, qh, ql)
    return rdbpot(srdhm_split(x, qh, ql), -shift)
