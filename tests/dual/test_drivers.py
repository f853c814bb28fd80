"""BME280 and ADXL345 drivers against the register-level models."""

import errno

from hal.drivers import bme280_maths as maths
from hal.drivers.adxl345 import ADXL345
from hal.drivers.bme280 import BME280
from hal.errors import SensorError
from sim.chips.adxl345 import ADXL345Model
from sim.chips.bme280 import DEFAULT_TRIM, BME280Model
from sim.clock import VirtualClock
from sim.i2c import SimI2C
from tests.dual._util import raises


def _float_reference(cal, adc_t, adc_p, adc_h):
    # the datasheet's double-precision formulas, independent of the
    # integer code under test
    T1, T2, T3, P1, P2, P3, P4, P5, P6, P7, P8, P9, H1, H2, H3, H4, H5, H6 = cal
    v1 = (adc_t / 16384.0 - T1 / 1024.0) * T2
    v2 = (adc_t / 131072.0 - T1 / 8192.0) * (adc_t / 131072.0 - T1 / 8192.0) * T3
    tf = v1 + v2
    t = tf / 5120.0
    v1 = tf / 2.0 - 64000.0
    v2 = v1 * v1 * P6 / 32768.0
    v2 = v2 + v1 * P5 * 2.0
    v2 = v2 / 4.0 + P4 * 65536.0
    v1 = (P3 * v1 * v1 / 524288.0 + P2 * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * P1
    p = 1048576.0 - adc_p
    p = (p - v2 / 4096.0) * 6250.0 / v1
    v1 = P9 * p * p / 2147483648.0
    v2 = p * P8 / 32768.0
    p = p + (v1 + v2 + P7) / 16.0
    h = tf - 76800.0
    h = (adc_h - (H4 * 64.0 + H5 / 16384.0 * h)) * (H2 / 65536.0 * (1.0 + H6 / 67108864.0 * h * (1.0 + H3 / 67108864.0 * h)))
    h = h * (1.0 - H1 * h / 524288.0)
    h = min(100.0, max(0.0, h))
    return t, p, h


def test_bme280_datasheet_worked_example():
    # the datasheet's example: trimming T1..T3, P1..P9 and these ADC codes
    cal = DEFAULT_TRIM
    tf = maths.t_fine(cal, 519888)
    assert tf == 128422
    assert maths.temperature_centi(tf) == 2508
    # the 32-bit pressure formula rounds coarser than the 64-bit one the
    # example was computed with (100653.27 Pa): a few Pa, 0.03 hPa
    p = maths.pressure_pa(cal, tf, 415148)
    assert abs(p - 100653) <= 5, p


def test_bme280_integer_maths_tracks_float_reference():
    cal = DEFAULT_TRIM
    for adc_t in (400000, 450000, 519888, 560000, 600000):
        for adc_p in (300000, 350000, 415148, 480000):
            for adc_h in (20000, 30000, 40000):
                tf = maths.t_fine(cal, adc_t)
                t, p, h = _float_reference(cal, adc_t, adc_p, adc_h)
                assert abs(maths.temperature_centi(tf) / 100 - t) < 0.011, (adc_t, t)
                assert abs(maths.pressure_pa(cal, tf, adc_p) - p) <= 5.0, (adc_t, adc_p, maths.pressure_pa(cal, tf, adc_p), p)
                assert abs(maths.humidity_q10(cal, tf, adc_h) / 1024 - h) < 0.05, (adc_t, adc_h, maths.humidity_q10(cal, tf, adc_h) / 1024, h)


def _bus_with(model):
    bus = SimI2C()
    bus.attach(model)
    return bus


def test_bme280_reads_what_the_model_holds():
    m = BME280Model(0x76)
    d = BME280(_bus_with(m), 0x76)
    for t in (-40.0, -5.5, 0.0, 22.0, 60.01, 85.0):
        for hum, hpa in ((10.0, 950.0), (55.5, 1013.25), (95.0, 1090.0)):
            m.set_channel("temperature_c", t)
            m.set_channel("humidity_pct", hum)
            m.set_channel("pressure_hpa", hpa)
            m.tick(0)
            assert d.fetch()
            assert abs(d.temperature_mc - t * 1000) <= 10, (t, d.temperature_mc)
            assert abs(d.humidity_mpct - hum * 1000) <= 50, (hum, d.humidity_mpct)
            assert abs(d.pressure_mhpa - hpa * 1000) <= 10, (hpa, d.pressure_mhpa)


def test_bme280_configures_normal_mode():
    m = BME280Model(0x76)
    BME280(_bus_with(m), 0x76)
    assert m.regs[0xF4] & 0x03 == 0x03
    assert m.regs[0xF2] == 0x01


def test_bme280_wrong_chip_id_is_a_sensor_error():
    m = BME280Model(0x76)
    m.regs[0xD0] = 0x58  # a BMP280
    e = raises(SensorError, BME280, _bus_with(m), 0x76)
    assert isinstance(e, OSError)
    assert "0x58" in str(e)


def test_missing_chip_is_enodev():
    e = raises(OSError, BME280, SimI2C(), 0x76)
    assert e.errno == errno.ENODEV


def test_register_fault_raises_eio_then_clears():
    m = BME280Model(0x77)
    d = BME280(_bus_with(m), 0x77)
    m.inject_fault(0xF9)  # inside the 8-byte data burst
    e = raises(OSError, d.fetch)
    assert e.errno == errno.EIO
    m.clear_faults()
    assert d.fetch()


def test_bme280_soft_reset_returns_to_sleep():
    m = BME280Model(0x76)
    d = BME280(_bus_with(m), 0x76)
    d.reset()
    assert m.regs[0xF4] == 0
    assert m.regs[0xFA] == 0x80  # data registers back to reset value


def test_adxl345_reads_one_g_and_data_ready():
    clk = VirtualClock()
    m = ADXL345Model(0x53)
    clk.add_hook(m.tick)
    a = ADXL345(_bus_with(m), 0x53, range_g=16, rate_hz=100)
    assert m.rate_hz() == 100 and m.measuring()
    clk.advance(10000)
    assert a.fetch()
    assert (a.x_mg, a.y_mg, a.z_mg) == (0, 0, 1000)
    # no new conversion yet: DATA_READY was cleared by the burst read
    assert not a.fetch()
    m.set_channel("accel_x_g", -2.5)
    clk.advance(10000)
    assert a.fetch()
    assert a.x_mg == -2500


def test_adxl345_stuck_chip_is_never_fresh():
    clk = VirtualClock()
    m = ADXL345Model(0x53)
    clk.add_hook(m.tick)
    a = ADXL345(_bus_with(m), 0x53, rate_hz=800)
    clk.advance(2000)
    assert a.fetch()
    m.stuck = True
    clk.advance(50000)
    assert not a.fetch()


def test_adxl345_saturates_at_full_scale():
    clk = VirtualClock()
    m = ADXL345Model(0x53)
    clk.add_hook(m.tick)
    a = ADXL345(_bus_with(m), 0x53, range_g=2, rate_hz=100)
    m.set_channel("accel_y_g", 5.0)
    clk.advance(10000)
    assert a.fetch()
    assert 1990 <= a.y_mg < 2000


def test_adxl345_rejects_bad_arguments_and_ids():
    m = ADXL345Model(0x53)
    bus = _bus_with(m)
    raises(ValueError, ADXL345, bus, 0x53, 3)
    raises(ValueError, ADXL345, bus, 0x53, 16, 123)
    m.regs[0] = 0x00
    raises(SensorError, ADXL345, bus, 0x53)


def test_bus_scan_lists_present_devices():
    bus = SimI2C()
    bus.attach(BME280Model(0x76))
    m = bus.attach(ADXL345Model(0x53))
    assert bus.scan() == [0x53, 0x76]
    m.absent = True
    assert bus.scan() == [0x76]
