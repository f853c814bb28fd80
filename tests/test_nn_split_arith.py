"""The requantization without 64-bit products (kernels.srdhm_split,
mbqm, _mulhi_hi and the softmax's reciprocal on 15-bit halves) against
the straightforward formulas on Python's unbounded ints: the same value
for every input tried (edges, a dense sweep, random and hypothesis)."""

import array
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.nn import fixedpoint as fp
from firmware.nn import kernels as k

I32 = (-(1 << 31), (1 << 31) - 1)
EDGE_A = [0, 1, -1, 2, -2, 0x7FFF, 0x8000, -0x8000, 0x3FFFFFFF, -0x3FFFFFFF, -(1 << 30), 1 << 30, I32[0], I32[1], I32[0] + 1]
EDGE_B = [0, 1, 0x7FFF, 0x8000, 0x3FFFFFFF, 1 << 30, (1 << 30) + 1, I32[1], I32[1] - 1, 1518500250]


def direct_srdhm(a, b):
    """SaturatingRoundingDoublingHighMul as gemmlowp writes it (int64)."""
    if a == b == I32[0]:
        return I32[1]
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    v = ab + nudge
    return v >> 31 if v >= 0 else -((-v) >> 31)


def direct_mbqm(x, q, shift):
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    y = (x << left) & 0xFFFFFFFF
    y = y - (1 << 32) if y & 0x80000000 else y
    return k.rdbpot(direct_srdhm(y, q), right)


def split(a, b):
    h, lo = k.split_multiplier(b)
    return k.srdhm_split(a, h, lo)


def test_edges():
    for a in EDGE_A:
        for b in EDGE_B:
            assert split(a, b) == direct_srdhm(a, b) == k.srdhm(a, b), (a, b)


def test_a_dense_sweep_of_small_accumulators():
    # every accumulator in -2**12..2**12 against multipliers across the range
    bs = list(range(1 << 30, 1 << 31, (1 << 30) // 257)) + EDGE_B
    for b in bs:
        h, lo = k.split_multiplier(b)
        for a in range(-(1 << 12), 1 << 12):
            assert k.srdhm_split(a, h, lo) == direct_srdhm(a, b), (a, b)


def test_random():
    rnd = random.Random(31)
    for _ in range(200000):
        a = rnd.randint(*I32) >> rnd.randrange(32)
        b = rnd.randrange(1 << 31)
        assert split(a, b) == direct_srdhm(a, b), (a, b)


@settings(max_examples=5000, deadline=None)
@given(st.integers(*I32), st.integers(0, I32[1]), st.integers(-31, 8))
def test_mbqm_is_the_reference(x, q, shift):
    h, lo = k.split_multiplier(q)
    assert k.mbqm(x, h, lo, shift) == direct_mbqm(x, q, shift)


@settings(max_examples=5000, deadline=None)
@given(st.integers(-(1 << 30) + 1, (1 << 30) - 1), st.integers(0, 40))
def test_rdbpot_past_29_bits(x, e):
    mask = (1 << e) - 1
    want = (x >> e) + (1 if (x & mask) > (mask >> 1) + (1 if x < 0 else 0) else 0)
    assert k.rdbpot(x, e) == want


@settings(max_examples=5000, deadline=None)
@given(st.integers(0, I32[1]), st.integers(0, I32[1]))
def test_mulhi_of_two_q31_values(a, b):
    assert k._mulhi_hi(a >> 15, a & 0x7FFF, b >> 15, b & 0x7FFF) == direct_srdhm(a, b) >> 15


def test_softmax_rows_against_the_direct_path():
    # every row kind the kernel meets: depths 1..40, scales, zero points,
    # rows of equal values, one high value, and random ones
    rnd = random.Random(7)
    for depth in list(range(1, 41)) + [100, 256]:
        for beta, scale in ((1.0, 0.1), (1.0, 0.05), (1.0, 0.5), (0.5, 0.02), (2.0, 1.0), (1.0, 0.00390625)):
            mult, shift, diff_min = k.softmax_params(beta, scale)
            tables = k.softmax_tables(mult, shift, diff_min)
            rows = [[0] * depth, [127] + [-128] * (depth - 1), [-128] * depth]
            rows += [[rnd.randint(-128, 127) for _ in range(depth)] for _ in range(6)]
            rows += [[rnd.randint(100, 127) for _ in range(depth)] for _ in range(3)]
            src = array.array("b", [v for r in rows for v in r])
            got, want = array.array("b", bytes(len(src))), array.array("b", bytes(len(src)))
            k.softmax(src, got, depth, mult, shift, diff_min, tables)
            for base in range(0, len(src), depth):
                k._softmax_direct(src, want, depth, mult, shift, diff_min, base)
            assert got == want, (depth, beta, scale)


def test_the_reciprocal_on_every_sum_a_short_row_can_have():
    # a row of up to 8 values sums 2**19 (its max) plus up to 7 terms of at
    # most 2**19: every ninth sum from 2**19 to 2**22, through the
    # split path (a one-row softmax whose table makes that sum) and fp
    mult, shift, diff_min = k.softmax_params(1.0, 0.1)
    eh, el, e12 = k.softmax_tables(mult, shift, diff_min)
    src = array.array("b", [0, -1])
    out, ref = array.array("b", bytes(2)), array.array("b", bytes(2))
    e12b = array.array("i", e12)
    n = 0
    for total in range(1 << 19, 1 << 22, 9):
        e12b[254] = total - e12[255]  # the second value's term
        k.softmax(src, out, 2, mult, shift, diff_min, (eh, el, e12b))
        # the same row the direct way, with that sum
        t = total
        headroom = k._clz32(t)
        shifted = fp._w(((t << headroom) & 0xFFFFFFFF) - (1 << 31))
        scale = fp.one_over_one_plus_x(shifted)
        for c in range(2):
            e = (eh[255 - c] << 15) | el[255 - c]
            v = k.rdbpot(k.srdhm(scale, e), 12 - headroom + 31 - 8) - 128
            ref[c] = -128 if v < -128 else (127 if v > 127 else v)
        assert out == ref, total
        n += 1
    assert n > 400000
