"""Runs in the systemd guest at boot (guest-board.service), as root: the
board's devices. gpio-sim lines named and labelled as the rpi4's, i2c-stub
at 0x76 and 0x53 holding a BME280 and an ADXL345 register image
(/etc/edgefw-guest/regs.json, written by the host), the device nodes given
to the gpio and i2c groups as a board's udev rules give them, and
/run/edgefw-guest/board.json naming the simulated lines for board.py.
The initrd guest's check (qemu_guest_check.py) uses gpio_lines, i2c_stub,
read and write from here too."""

import grp
import json
import os
import subprocess
import sys

import boards

MODULES = "/usr/local/lib/edgefw-guest/modules"
SIM = "/sys/kernel/config/gpio-sim/edgefw"
OUT = "/run/edgefw-guest"


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def read(path):
    with open(path) as f:
        return f.read().strip()


def insmod(name, *params):
    if os.path.exists("/sys/module/" + name.replace("-", "_")):
        return
    subprocess.run(["insmod", os.path.join(MODULES, name + ".ko")] + list(params), check=True)


def gpio_lines(board):
    """The gpio-sim chip labelled and its lines named as ``board``'s (made
    once through configfs): (its chip name, {role: its sim_gpio dir})."""
    if not os.path.exists(SIM):
        os.mkdir(SIM)
        bank = SIM + "/bank0"
        os.mkdir(bank)
        write(bank + "/label", board.GPIOCHIP)
        write(bank + "/num_lines", "32")
        for _role, spec in board.PINS.items():
            os.mkdir("%s/line%d" % (bank, spec["line"]))
            write("%s/line%d/name" % (bank, spec["line"]), spec["name"])
        write(SIM + "/live", "1")
    chip = read(SIM + "/bank0/chip_name")
    base = "/sys/devices/platform/%s/%s" % (read(SIM + "/dev_name"), chip)
    return chip, {role: "%s/sim_gpio%d" % (base, spec["line"]) for role, spec in board.PINS.items()}


def i2c_stub(board, regs):
    """i2c-stub's adapter as ``board``'s bus device, its chips holding the
    register images: (adapter number, device node)."""
    import smbus2

    adapter = None
    for d in sorted(os.listdir("/sys/bus/i2c/devices")):
        if d.startswith("i2c-") and "stub" in read("/sys/bus/i2c/devices/%s/name" % d).lower():
            adapter = int(d[4:])
    if adapter is None:
        raise RuntimeError("no i2c-stub adapter")
    dev = board.I2C["I2C0"]["device"]
    if not os.path.exists(dev):
        os.mknod(dev, 0o020600, os.makedev(89, adapter))
    with smbus2.SMBus(adapter) as bus:
        for addr, image in ((0x76, regs["bme280"]), (0x53, regs["adxl345"])):
            for r in range(0, 256, 32):
                bus.write_i2c_block_data(addr, r, list(image[r : r + 32]))
    return adapter, dev


def main():
    for m in ("configfs", "i2c-dev", "irq_sim", "gpio-sim"):
        insmod(m)
    insmod("i2c-stub", "chip_addr=0x76,0x53")
    if not os.path.ismount("/sys/kernel/config"):
        subprocess.run(["mount", "-t", "configfs", "none", "/sys/kernel/config"], check=True)
    board = boards.get("rpi4")
    chip, lines = gpio_lines(board)
    # the e-stop chain closed, the reset button up
    write(lines["ESTOP"] + "/pull", "pull-down")
    write(lines["RESET"] + "/pull", "pull-down")
    with open("/etc/edgefw-guest/regs.json") as f:
        regs = json.load(f)
    adapter, dev = i2c_stub(board, regs)
    for node, group in ((dev, "i2c"), ("/dev/" + chip, "gpio")):
        os.chown(node, 0, grp.getgrnam(group).gr_gid)
        os.chmod(node, 0o660)
    os.makedirs(OUT, exist_ok=True)
    write(OUT + "/board.json", json.dumps({"lines": lines, "chip": chip, "adapter": adapter, "hot": regs["hot"], "cool": regs["cool"]}))
    print("guest board: %s, i2c-%d as %s" % (chip, adapter, dev), flush=True)


if __name__ == "__main__":
    sys.exit(main())
