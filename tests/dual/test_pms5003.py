"""PMS5003 frames: the driver's parser against the protocol model, and the
sensor in the loop on the sim board (CPython and MicroPython alike)."""

import errno

from firmware.config import load_config
from hal.drivers.pms5003 import PMS5003, checksum
from sim.board import SimUART
from sim.chips.pms5003 import PMS5003Model
from tests.dual._util import firmware, raises, run

AIR = {"name": "air", "type": "pms5003", "bus": "UART0", "stale_ms": 3000}


def _sensors(extra):
    # the default sensors (the default interlock rules name them) plus one
    return load_config(None)["sensors"] + [extra]


def _driver():
    u = SimUART()
    return PMS5003(u), u


def test_a_frame_split_anywhere_and_after_noise_is_read():
    m = PMS5003Model()
    m.set_channel("pm1_ugm3", 7)
    m.set_channel("pm2_5_ugm3", 123)
    m.set_channel("pm10_ugm3", 456)
    f = m.frame()
    assert len(f) == 32 and f[:2] == b"BM" and (f[30] << 8 | f[31]) == checksum(f)
    for cut in (1, 2, 5, 31):
        d, u = _driver()
        u.write(b"\x00\x42\x42\x13" + f[:cut])  # noise, a false start
        assert d.fetch() is False
        u.write(f[cut:])
        assert d.fetch() is True
        vals = [0, 0, 0]
        d.read_into(vals, 0)
        assert vals == [7000, 123000, 456000]
        assert d.fetch() is False  # nothing new: not fresh


def test_bad_checksum_is_an_eio_fault_then_the_next_frame_reads():
    m = PMS5003Model()
    d, u = _driver()
    m.corrupt = True
    u.write(m.frame())
    e = raises(OSError, d.fetch)
    assert e.args[0] == errno.EIO
    m.corrupt = False
    m.set_channel("pm2_5_ugm3", 42)
    u.write(m.frame())
    assert d.fetch() is True and d.pm2_5 == 42 and d.errors == 1


def test_bad_length_field_is_a_fault():
    f = bytearray(PMS5003Model().frame())
    f[3] = 20
    s = checksum(f)
    f[30], f[31] = s >> 8, s & 0xFF
    d, u = _driver()
    u.write(bytes(f))
    raises(OSError, d.fetch)


def test_config_takes_a_uart_sensor_without_address():
    cfg = load_config(None, {"sensors": _sensors(AIR)})
    assert cfg["sensors"][-1]["stale_ms"] == 3000
    from hal.errors import ConfigError

    bad = dict(AIR)
    bad["address"] = 0x12
    raises(ConfigError, load_config, None, {"sensors": _sensors(bad)})
    short = dict(AIR)
    short["stale_ms"] = 500  # below the sensor's 2.3 s frame interval
    raises(ConfigError, load_config, None, {"sensors": _sensors(short)})


def _fw(events):
    return firmware(
        events=[{"at_s": 0.1, "press": "RESET", "for_s": 0.05}] + events,
        overrides={"sensors": _sensors(AIR), "interlock": {"channels": {"air.pm2_5_ugm3": {"high": 100}}}},
    )


def test_high_dust_trips_within_one_frame():
    fw = run(_fw([{"at_s": 1.0, "set": {"air.pm2_5_ugm3": 250}}]), until_us=2000000)
    assert [t["cause"] for t in fw.trips] == ["air.pm2_5_ugm3:high"]
    # frames every 200 ms: seen at the first frame after the step
    assert 1000000 <= fw.trips[0]["t_us"] <= 1200000 + 10000


def test_checksum_errors_and_silence_are_sensor_faults():
    fw = run(_fw([{"at_s": 1.0, "fault": {"sensor": "air", "kind": "eio"}, "for_s": 0.3}]), until_us=2000000)
    assert fw.trips and fw.trips[0]["cause"] == "air:bus"
    fw = run(_fw([{"at_s": 1.0, "fault": {"sensor": "air", "kind": "stuck"}}]), until_us=5000000)
    assert fw.trips and fw.trips[0]["cause"] == "air:stale"
    # stale_ms (3 s) after the last frame, sent at 0.8 s or 1.0 s
    assert 3800000 < fw.trips[0]["t_us"] <= 4000000 + 10000
