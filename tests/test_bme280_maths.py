"""hal/drivers/bme280_maths.pressure_pa and humidity_q10, computed in
pieces below 2**30 (tests/mp_only/bme280_sweep.py checks that on the
32-bit target), give the same values as the datasheet's 32-bit formulas
evaluated directly (with Python's unbounded integers and the pressure
formula's one unsigned 32-bit step), for every input tried: a grid over
the raw pressure range and t_fine, corner and random trimming values, and
hypothesis."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hal.drivers.bme280_maths import pressure_pa
from sim.chips.bme280 import DEFAULT_TRIM


def direct(cal, tf, adc_p):
    """The datasheet's BME280_compensate_P_int32, term by term."""
    var1 = (tf >> 1) - 64000
    var2 = (((var1 >> 2) * (var1 >> 2)) >> 11) * cal[8]
    var2 = var2 + ((var1 * cal[7]) << 1)
    var2 = (var2 >> 2) + (cal[6] << 16)
    var1 = (((cal[5] * (((var1 >> 2) * (var1 >> 2)) >> 13)) >> 3) + ((cal[4] * var1) >> 1)) >> 18
    var1 = ((32768 + var1) * cal[3]) >> 15
    if var1 == 0:
        return 0
    p = (((1048576 - adc_p) - (var2 >> 12)) * 3125) & 0xFFFFFFFF
    if p < 0x80000000:
        p = (p << 1) // var1
    else:
        p = (p // var1) * 2
    var1 = (cal[11] * (((p >> 3) * (p >> 3)) >> 13)) >> 12
    var2 = ((p >> 2) * cal[10]) >> 13
    return p + ((var1 + var2 + cal[9]) >> 4)


S16 = (-32768, 32767)
# t_fine over the sensor's -40..85 degC and well past it
TFS = list(range(-300000, 600001, 7919)) + [-204800, 0, 128000, 435200]
ADCS = list(range(0, 1 << 20, 4099)) + [0, 1, 0x7FFFF, 0x80000, (1 << 20) - 1]


def _cal(p):
    return DEFAULT_TRIM[:3] + tuple(p) + DEFAULT_TRIM[12:]


def _check(cal, tfs=TFS, adcs=ADCS):
    n = 0
    for tf in tfs:
        for adc in adcs:
            assert pressure_pa(cal, tf, adc) == direct(cal, tf, adc), (cal[3:12], tf, adc)
            n += 1
    return n


def test_the_datasheet_example():
    # the datasheet's worked example: t_fine 128422, adc_P 415148 gives
    # 100653.27 Pa in floating point; the 32-bit integer formula is a few Pa off
    p = pressure_pa(DEFAULT_TRIM, 128422, 415148)
    assert p == direct(DEFAULT_TRIM, 128422, 415148)
    assert abs(p - 100653.27) < 5


def test_a_grid_of_raw_values_with_the_default_trim():
    assert _check(DEFAULT_TRIM) == len(TFS) * len(ADCS)


def test_every_trimming_value_at_its_extremes():
    # each of P1..P9 alone at its minimum and maximum, the rest as shipped
    p0 = list(DEFAULT_TRIM[3:12])
    for i in range(9):
        for v in ((0, 1, 65535) if i == 0 else S16 + (0, 1, -1)):
            p = list(p0)
            p[i] = v
            _check(_cal(p), TFS[::4], ADCS[::4])


def test_random_trimming_values():
    rnd = random.Random(280)
    for _ in range(300):
        p = [rnd.randrange(65536)] + [rnd.randint(*S16) for _ in range(8)]
        _check(_cal(p), rnd.sample(TFS, 8), rnd.sample(ADCS, 8))


@settings(max_examples=3000, deadline=None)
@given(
    st.integers(0, 65535),
    st.lists(st.integers(*S16), min_size=8, max_size=8),
    st.integers(-(1 << 21), 1 << 21),
    st.integers(0, (1 << 20) - 1),
)
def test_any_input(p1, p2_9, tf, adc):
    cal = _cal([p1] + p2_9)
    assert pressure_pa(cal, tf, adc) == direct(cal, tf, adc)


def direct_humidity(cal, tf, adc_h):
    h1, h2, h3, h4, h5, h6 = cal[12:18]
    v = tf - 76800
    v = (((((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15) * (((((((v * h6) >> 10) * (((v * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14))
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4)
    return min(max(v, 0), 419430400) >> 12


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 255), st.integers(-32768, 32767), st.integers(0, 255), st.integers(-2048, 2047), st.integers(-2048, 2047), st.integers(-128, 127), st.integers(-300000, 600000), st.integers(0, 65535))
def test_humidity_is_the_datasheet_formula(h1, h2, h3, h4, h5, h6, tf, adc):
    # including saturated readings, where the formula's product passes 2**30
    from hal.drivers.bme280_maths import humidity_q10

    cal = DEFAULT_TRIM[:12] + (h1, h2, h3, h4, h5, h6)
    assert humidity_q10(cal, tf, adc) == direct_humidity(cal, tf, adc)
    assert humidity_q10(DEFAULT_TRIM, tf, adc) == direct_humidity(DEFAULT_TRIM, tf, adc)
