"""edgefw run on a Linux board: READY only after the self-test and the
first cycle, STOPPING with the permit low, the watchdog fed after on-time
cycles and closed with its magic character only on an orderly stop."""

import asyncio
import socket
import types

import pytest
from gpiod.line import Value

import boards
from firmware.config import load_config
from firmware.linux.selftest import LinuxRun, SelfTestFailed
from firmware.start import firmware
from hal.linux.hardware import LinuxHardware
from sim.chips.adxl345 import ADXL345Model
from sim.chips.bme280 import BME280Model
from tests.helpers.linux_fakes import FakeChip, FakeGpiod, FakeSMBus
from tests.test_linux_hal import RPI_NAMES


def _setup(tmp_path, env, watchdog_ms=500, models=None, board=None):
    chip = FakeChip(str(tmp_path / "gpiochip0"), "pinctrl-bcm2711", RPI_NAMES)
    (tmp_path / "gpiochip0").write_bytes(b"")
    fake = FakeSMBus(models if models is not None else [BME280Model(0x76), ADXL345Model(0x53)])
    hw = LinuxHardware(board or boards.get("rpi4"), dev_dir=str(tmp_path), env=env, gpiod=FakeGpiod([chip]), smbus={"/dev/i2c-1": fake})
    cfg = load_config(None, {"interlock": {"watchdog_ms": watchdog_ms}})
    return firmware(hw, cfg), chip


def _notify(tmp_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(tmp_path / "notify"))
    s.settimeout(0)
    return s, {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "1000000"}


def _drain(sock, into):
    while True:
        try:
            into.append(sock.recv(64))
        except BlockingIOError:
            return


def test_ready_after_first_cycle_and_stopping_with_permit_low(tmp_path):
    sock, env = _notify(tmp_path)
    fw, chip = _setup(tmp_path, env)
    msgs = []
    seen = {}
    hooks = LinuxRun(fw)

    def on_status(fw):
        _drain(sock, msgs)
        if b"READY=1" in msgs:
            seen.setdefault("ready_before_cycle", fw.cycles)
        hooks(fw)
        chip.drive_input("GPIO23", chip.levels[17] == Value.ACTIVE)  # relay contact
        if fw.cycles == 5:
            chip.drive_input("GPIO22", 1)
        elif fw.cycles == 6:
            chip.drive_input("GPIO22", 0)
        elif fw.cycles == 20:
            seen["permit"] = fw.permit

    asyncio.run(fw.run(cycles=30, on_status=on_status, status_every=1))
    # sent by the hook of cycle 1, so first seen at cycle 2's
    assert seen == {"ready_before_cycle": 2, "permit": 1}
    hooks.stop(orderly=True)
    # edgefw run also calls fw.safe at exit: with the lines released it
    # must not drive them (it raised inside atexit)
    fw.safe()
    _drain(sock, msgs)
    assert msgs.count(b"READY=1") == 1
    assert msgs[-1] == b"STOPPING=1" and chip.history[17][-1] == Value.INACTIVE
    assert msgs.count(b"WATCHDOG=1") >= 10
    assert all(r.released for r in chip.requests.values())


def test_self_test_refuses_a_welded_relay_and_never_says_ready(tmp_path):
    sock, env = _notify(tmp_path)
    fw, chip = _setup(tmp_path, env)
    chip.drive_input("GPIO23", 1)  # contact closed with the coil off
    hooks = LinuxRun(fw)
    with pytest.raises(SelfTestFailed, match="readback"):
        asyncio.run(fw.run(cycles=10, on_status=hooks, status_every=1))
    msgs = []
    _drain(sock, msgs)
    assert b"READY=1" not in msgs
    assert chip.levels[17] == Value.INACTIVE and fw.cycles == 1


def test_self_test_refuses_a_systemd_watchdog_nothing_feeds(tmp_path):
    # WatchdogSec= in the unit, interlock.watchdog_ms 0 in the config:
    # systemd would kill a healthy loop every WatchdogSec
    sock, env = _notify(tmp_path)
    fw, chip = _setup(tmp_path, env, watchdog_ms=0)
    with pytest.raises(SelfTestFailed, match="interlock.watchdog_ms"):
        asyncio.run(fw.run(cycles=10, on_status=LinuxRun(fw), status_every=1))
    msgs = []
    _drain(sock, msgs)
    assert b"READY=1" not in msgs and chip.levels[17] == Value.INACTIVE
    # without WATCHDOG_USEC (no WatchdogSec=) the same config is fine
    sock2, env2 = _notify(tmp_path / "b") if (tmp_path / "b").mkdir() is None else None
    env2.pop("WATCHDOG_USEC")
    fw2, _ = _setup(tmp_path / "b", env2, watchdog_ms=0)
    asyncio.run(fw2.run(cycles=3, on_status=LinuxRun(fw2), status_every=1))
    _drain(sock2, msgs)
    assert b"READY=1" in msgs


def test_self_test_refuses_a_sensor_that_stopped_answering(tmp_path):
    sock, env = _notify(tmp_path)
    bme = BME280Model(0x76)
    fw, chip = _setup(tmp_path, env, models=[bme, ADXL345Model(0x53)])
    bme.absent = True  # present when the driver checked its id, gone now
    with pytest.raises(SelfTestFailed, match="BME280"):
        asyncio.run(fw.run(cycles=10, on_status=LinuxRun(fw), status_every=1))


def test_kernel_watchdog_magic_close_only_when_orderly(tmp_path):
    dev = tmp_path / "watchdog"
    rpi4 = boards.get("rpi4")
    board = types.SimpleNamespace(**{k: getattr(rpi4, k) for k in dir(rpi4) if k.isupper()})
    board.WDT = {"device": str(dev)}
    for orderly, tail in ((True, b"V"), (False, b"\0")):
        dev.write_bytes(b"")
        fw, chip = _setup(tmp_path, {}, watchdog_ms=500, board=board)
        asyncio.run(fw.run(cycles=5))
        fw.hw.close(orderly=orderly)
        data = dev.read_bytes()
        # fed after on-time cycles; 'V' at the end only when orderly
        assert data.count(b"\0") >= 3 and data[-1:] == tail, (orderly, data)
