"""The PMS5003 end to end over a real pseudo-terminal pair: the protocol
model writes frames into the master side at 9600 baud pacing, the driver
reads them through pyserial (hal.linux.uart) on the slave side, inside the
firmware loop with the interlock, in real time."""

import asyncio
import os
import threading
import time
import tty
import types

import boards
from firmware.config import load_config
from firmware.start import firmware
from hal.linux.hardware import LinuxHardware
from hal.linux.uart import LinuxUART
from sim.chips.adxl345 import ADXL345Model
from sim.chips.bme280 import BME280Model
from sim.chips.pms5003 import PMS5003Model
from tests.helpers.linux_fakes import FakeChip, FakeGpiod, FakeSMBus
from tests.test_linux_hal import RPI_NAMES


class FarSide(threading.Thread):
    """The sensor: a frame every ``interval_s`` into the pty master."""

    def __init__(self, fd, model, interval_s=0.1):
        super().__init__(daemon=True)
        self.fd, self.model, self.interval_s = fd, model, interval_s
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            if not self.model.stuck:
                f = self.model.frame()
                # two writes: the driver must put a frame together across reads
                os.write(self.fd, f[:13])
                time.sleep(0.005)
                os.write(self.fd, f[13:])
            self.stop.wait(self.interval_s)


def _pty():
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    return master, slave, os.ttyname(slave)


def test_linux_uart_reads_a_pty_without_blocking():
    master, slave, name = _pty()
    try:
        u = LinuxUART(name, baudrate=9600)
        assert u.read() is None and u.any() == 0
        os.write(master, b"\x42\x4d\x00")
        deadline = time.monotonic() + 5
        while not u.any() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert u.read(2) == b"\x42\x4d" and u.read() == b"\x00"
        buf = bytearray(4)
        assert u.readinto(buf) is None
        u.close()
    finally:
        os.close(master)
        os.close(slave)


def test_pms5003_over_a_pty_trips_on_dust_checksum_errors_and_silence(tmp_path):
    master, slave, name = _pty()
    model = PMS5003Model()
    far = FarSide(master, model)
    far.start()
    try:
        chip = FakeChip(str(tmp_path / "gpiochip0"), "pinctrl-bcm2711", RPI_NAMES)
        (tmp_path / "gpiochip0").write_bytes(b"")
        rpi4 = boards.get("rpi4")
        board = types.SimpleNamespace(**{k: getattr(rpi4, k) for k in dir(rpi4) if k.isupper()})
        board.UART = {"UART0": {"device": name}}
        fake = FakeSMBus([BME280Model(0x76), ADXL345Model(0x53)])
        hw = LinuxHardware(board, dev_dir=str(tmp_path), env={}, gpiod=FakeGpiod([chip]), smbus={"/dev/i2c-1": fake})
        sensors = load_config(None)["sensors"] + [{"name": "air", "type": "pms5003", "bus": "UART0", "stale_ms": 2500}]
        cfg = load_config(None, {"sensors": sensors, "interlock": {"watchdog_ms": 0, "channels": {"air.pm2_5_ugm3": {"high": 100}}}})
        fw = firmware(hw, cfg)
        phases = []

        def world(fw):
            from gpiod.line import Value

            chip.drive_input("GPIO23", chip.levels[17] == Value.ACTIVE)  # relay contact
            t = fw.cycles
            # 10 ms cycles: reset at 0.3 s, dust at 1 s, reset at 2 s,
            # corrupt frames at 3 s, reset at 4 s, silence at 5 s
            if t in (30, 200, 400):
                chip.drive_input("GPIO22", 1)
            elif t in (31, 201, 401):
                chip.drive_input("GPIO22", 0)
            elif t == 100:
                model.set_channel("pm2_5_ugm3", 300)
            elif t == 150:
                model.set_channel("pm2_5_ugm3", 20)
            elif t == 300:
                model.corrupt = True
            elif t == 330:
                model.corrupt = False
            elif t == 500:
                model.stuck = True
            if t in (99, 199, 299, 399, 499):
                phases.append(fw.permit)

        asyncio.run(fw.run(cycles=850, on_status=world, status_every=1))
        hw.close()
    finally:
        far.stop.set()
        far.join(5)
        os.close(master)
        os.close(slave)
    causes = [t["cause"] for t in fw.trips]
    assert causes[:3] == ["air.pm2_5_ugm3:high", "air:bus", "air:stale"], fw.trips
    # energized before each fault, by the resets
    assert phases[0] == 1 and phases[2] == 1 and phases[4] == 1, phases
    d = fw.drivers[-1]
    assert d.frames >= 20 and d.errors >= 1
