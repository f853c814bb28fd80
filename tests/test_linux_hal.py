"""The Linux backend: smbus2 I2C, libgpiod v2 pins, the backend table.

This machine has no /dev/i2c-N or /dev/gpiochipN, so the kernel side is
tests/helpers/linux_fakes.py; what is real here is smbus2's and gpiod's
own code paths up to the ioctl, and the error paths on files that are not
adapters or chips."""

import asyncio
import errno
import socket

import pytest
from gpiod.line import Bias, Direction, Edge, Value

import boards
from firmware.config import load_config
from firmware.start import firmware
from hal.backend import open_board
from hal.drivers.bme280 import BME280
from hal.linux.gpio import LinuxPin, find_chip
from hal.linux.hardware import LinuxHardware
from hal.linux.i2c import LinuxI2C
from sim.chips.adxl345 import ADXL345Model
from sim.chips.bme280 import BME280Model
from tests.helpers.linux_fakes import BLOCK_FUNCS, PLAIN_FUNCS, FakeChip, FakeGpiod, FakeSMBus

RPI_NAMES = {"GPIO17": 17, "GPIO27": 27, "GPIO22": 22, "GPIO23": 23, "GPIO5": 5}


@pytest.mark.parametrize("funcs,kind", [(BLOCK_FUNCS, "block_read"), (PLAIN_FUNCS, "rdwr")])
def test_bme280_reads_through_either_transfer_kind(funcs, kind):
    m = BME280Model(0x76)
    m.set_channel("temperature_c", 31.5)
    fake = FakeSMBus([m], funcs)
    bus = LinuxI2C("/dev/i2c-1", smbus=fake)
    d = BME280(bus, 0x76)
    for _ in range(3):
        if d.fetch():
            break
    vals = [0, 0, 0]
    d.read_into(vals, 0)
    assert abs(vals[0] - 31500) <= 10
    kinds = {c[0] for c in fake.calls}
    assert kind in kinds
    # an adapter without plain I2C never sees i2c_rdwr, and the other way round
    assert ("rdwr" in kinds) == (funcs == PLAIN_FUNCS)
    if kind == "rdwr":
        # one combined write-then-read transaction per register read
        assert any(c[0] == "rdwr" and len(c) == 3 and c[1][0] == "w" and c[2][0] == "r" for c in fake.calls)


def test_combined_messages_are_built_once_per_register_read():
    fake = FakeSMBus([ADXL345Model(0x53)], PLAIN_FUNCS)
    bus = LinuxI2C("/dev/i2c-1", smbus=fake)
    buf = bytearray(8)
    for _ in range(5):
        bus.readfrom_mem_into(0x53, 0x30, buf)
    assert len(bus._reads) == 1


def test_nack_is_enodev_and_other_errnos_are_kept():
    fake = FakeSMBus([BME280Model(0x76)])
    bus = LinuxI2C("/dev/i2c-1", smbus=fake)
    with pytest.raises(OSError) as e:
        bus.readfrom_mem_into(0x50, 0xD0, bytearray(1))
    assert e.value.errno == errno.ENODEV and "0x50" in str(e.value)
    fake.fail_errno = errno.EREMOTEIO
    with pytest.raises(OSError) as e:
        bus.writeto_mem(0x76, 0xF4, b"\x27")
    assert e.value.errno == errno.ENODEV
    fake.fail_errno = errno.ETIMEDOUT
    with pytest.raises(OSError) as e:
        bus.readfrom_mem_into(0x76, 0xD0, bytearray(1))
    assert e.value.errno == errno.ETIMEDOUT
    fake.fail_errno = None
    assert bus.scan() == [0x76]


def test_real_smbus2_on_things_that_are_not_adapters(tmp_path):
    with pytest.raises(OSError) as e:
        LinuxI2C(str(tmp_path / "i2c-9"))
    assert e.value.errno == errno.ENOENT and "i2c-9" in str(e.value)
    f = tmp_path / "i2c-file"
    f.write_bytes(b"")
    with pytest.raises(OSError) as e:
        LinuxI2C(str(f))  # the I2C_FUNCS ioctl on a regular file
    assert e.value.errno == errno.ENOTTY


def test_real_gpiod_finds_no_chip_in_a_dir_of_plain_files(tmp_path):
    (tmp_path / "gpiochip0").write_bytes(b"")
    with pytest.raises(OSError) as e:
        find_chip("pinctrl-bcm2711", str(tmp_path))
    assert e.value.errno == errno.ENODEV and "pinctrl-bcm2711" in str(e.value)


def _dev(tmp_path, chips):
    for c in chips:
        (tmp_path / c.path.rsplit("/", 1)[1]).write_bytes(b"")
    return FakeGpiod(chips)


def test_chip_found_by_label_not_number(tmp_path):
    # the Pi 5's RP1 is not gpiochip0 (and its number moved between kernels)
    other = FakeChip(str(tmp_path / "gpiochip0"), "gpio-brcmstb@107d508500", {})
    rp1 = FakeChip(str(tmp_path / "gpiochip4"), "pinctrl-rp1", RPI_NAMES)
    g = _dev(tmp_path, [other, rp1])
    assert find_chip("pinctrl-rp1", str(tmp_path), g) is rp1
    assert other.closed
    with pytest.raises(OSError) as e:
        find_chip("tegra234-gpio", str(tmp_path), g)
    assert "gpiochip4=pinctrl-rp1" in str(e.value)


def test_chip_search_skips_chips_the_user_may_not_open(tmp_path):
    # seen in the emulated board: the service user is in the gpio group,
    # which owns the board's header chip but not every other gpiochip
    other = FakeChip(str(tmp_path / "gpiochip0"), "gpio-brcmstb@107d508500", {})
    chip = FakeChip(str(tmp_path / "gpiochip1"), "pinctrl-bcm2711", RPI_NAMES)
    g = _dev(tmp_path, [other, chip])
    opened = g.Chip

    def chip_or_denied(path):
        if path == other.path:
            raise PermissionError(errno.EACCES, "Permission denied", path)
        return opened(path)

    g.Chip = chip_or_denied
    assert find_chip("pinctrl-bcm2711", str(tmp_path), g) is chip
    with pytest.raises(OSError) as e:
        find_chip("pinctrl-rp1", str(tmp_path), g)
    assert e.value.errno == errno.EACCES and "gpiochip0" in str(e.value) and "gpiochip1=pinctrl-bcm2711" in str(e.value)


def test_lines_by_name_with_safe_output_and_input_bias_and_edges(tmp_path):
    chip = FakeChip(str(tmp_path / "gpiochip0"), "pinctrl-bcm2711", RPI_NAMES)
    g = _dev(tmp_path, [chip])
    permit = LinuxPin(chip, "GPIO17", LinuxPin.OUT, gpiod=g)
    s = chip.requests[17].settings
    assert s.direction == Direction.OUTPUT and s.output_value == Value.INACTIVE
    assert chip.history[17] == [Value.INACTIVE]  # requested low: no glitch
    permit.on()
    assert permit.value() == 1 and chip.levels[17] == Value.ACTIVE
    estop = LinuxPin(chip, "GPIO27", LinuxPin.IN, LinuxPin.PULL_UP, edges=True, gpiod=g)
    s = chip.requests[27].settings
    assert s.direction == Direction.INPUT and s.bias == Bias.PULL_UP and s.edge_detection == Edge.BOTH
    assert estop.value() == 0
    # a pulse shorter than a poll: the level is back to 0, the edge is not lost
    chip.drive_input("GPIO27", 1)
    chip.drive_input("GPIO27", 0)
    assert estop.value() == 1
    assert estop.value() == 0
    # a write to an input is ignored, as machine.Pin's (the kernel would refuse it)
    estop.value(1)
    estop.on()
    assert estop.value() == 0
    with pytest.raises(OSError) as e:
        LinuxPin(chip, "GPIO99", LinuxPin.IN, gpiod=g)
    assert e.value.errno == errno.ENODEV
    # a chip with unnamed lines: the board's offset is used
    assert LinuxPin(chip, "PG.02", LinuxPin.IN, offset=22, gpiod=g).offset == 22


def test_backend_table_loads_the_linux_family():
    # no gpiochip here: the Linux backend itself loads, and says what it lacks
    with pytest.raises(OSError) as e:
        open_board("rpi4").pin("RELAY_PERMIT")
    assert "pinctrl-bcm2711" in str(e.value)


def test_firmware_runs_on_linux_hardware_permit_follows_reset_and_estop(tmp_path):
    chip = FakeChip(str(tmp_path / "gpiochip0"), "pinctrl-bcm2711", RPI_NAMES)
    g = _dev(tmp_path, [chip])
    bme = BME280Model(0x76)
    fake = FakeSMBus([bme, ADXL345Model(0x53)])
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(0)
    env = {"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "500000"}
    hw = LinuxHardware(boards.get("rpi4"), dev_dir=str(tmp_path), env=env, gpiod=g, smbus={"/dev/i2c-1": fake})
    cfg = load_config(None)
    fw = firmware(hw, cfg)
    seen = {}
    msgs = []

    def drain():
        while True:
            try:
                msgs.append(notify.recv(64))
            except BlockingIOError:
                return

    def world(fw):
        drain()
        # the relay's auxiliary contact follows the permit coil
        chip.drive_input("GPIO23", chip.levels[17] == Value.ACTIVE)
        c = fw.cycles
        if c == 10:
            chip.drive_input("GPIO22", 1)  # reset pressed ...
        elif c == 11:
            chip.drive_input("GPIO22", 0)  # ... and released before the next poll
        elif c == 30:
            seen["permit_before_estop"] = fw.permit
            chip.drive_input("GPIO27", 1)  # e-stop chain opens
        elif c == 31:
            seen["permit_after_estop"] = fw.permit

    asyncio.run(fw.run(cycles=40, on_status=world, status_every=1))
    hw.close(orderly=True)
    assert seen == {"permit_before_estop": 1, "permit_after_estop": 0}, fw.trips
    h = chip.history[17]
    # requested low, energized once by the reset, low from the e-stop on
    first_on = h.index(Value.ACTIVE)
    assert Value.ACTIVE not in h[:first_on] and h[-1] == Value.INACTIVE
    assert h.index(Value.INACTIVE, first_on) > first_on
    assert fw.trips and "estop" in fw.trips[0]["cause"]
    assert fw.interlock.resets == 1
    drain()
    # fed after every on-time cycle (a loaded machine may make a few late)
    assert msgs.count(b"WATCHDOG=1") >= 20
    assert all(r.released for r in chip.requests.values()) and fake.closed
