"""The BME280 and ADXL345 drivers against the chips on the board (the
register models on virtual targets)."""

import pytest

POINTS = [
    ["env.temperature_c", -12.5],
    ["env.temperature_c", 61.25],
    ["env.humidity_pct", 42.0],
    ["env.pressure_hpa", 987.6],
    ["vib.accel_x_g", 1.5],
    ["vib.accel_z_g", -2.0],
]
# driver resolution, in thousandths: BME280 0.01 degC / 1/1024 %RH / ~0.01 hPa; ADXL345 full resolution 3.9 mg/LSB
TOL = {"temperature_c": 10, "humidity_pct": 50, "pressure_hpa": 10, "accel_x_g": 4, "accel_z_g": 4}


@pytest.mark.needs("i2c", "fault_injection")
def test_drivers_read_what_the_chip_holds(probe, runner):
    got = probe("drivers", "set_and_read", board=runner.runtime.board, points=POINTS)
    assert len(got) == len(POINTS)
    for channel, value, read in got:
        q = channel.split(".", 1)[1]
        assert abs(read - value * 1000) <= TOL[q], (channel, value, read)


@pytest.mark.needs("i2c", "fault_injection")
@pytest.mark.parametrize("sensor,register", [("env", 0xF7), ("vib", 0x32)])
def test_driver_faults_are_oserrors_and_clear(probe, runner, sensor, register):
    got = probe("drivers", "faults", board=runner.runtime.board, sensor=sensor, register=register)
    assert got["absent"] in ("SensorError (SensorError)", "OSError"), got
    assert got["eio"] in ("OSError", "SensorError"), got
    assert got["after"] is True
