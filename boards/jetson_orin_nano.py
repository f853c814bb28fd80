"""NVIDIA Jetson Orin Nano Developer Kit (T234), 40-pin header. Line
offsets on ``tegra234-gpio`` differ between JetPack releases, so pins are
named by Tegra port (the names the tegra186 GPIO driver gives its lines)
and looked up by line name at run time."""

NAME = "jetson_orin_nano"
DESCRIPTION = "NVIDIA Jetson Orin Nano Developer Kit"
FAMILY = "linux"
FEATURES = ("i2c", "uart", "gpio", "wdt", "readback", "systemd")
GPIOCHIP = "tegra234-gpio"

I2C = {
    "I2C0": {"id": 7, "device": "/dev/i2c-7", "header": (3, 5)},
    "I2C1": {"id": 1, "device": "/dev/i2c-1", "header": (27, 28)},
}
UART = {
    "UART0": {"device": "/dev/ttyTHS0", "header": (8, 10)},
}
PINS = {
    "RELAY_PERMIT": {"name": "PR.04", "header": 11, "mode": "out"},
    "ESTOP": {"name": "PR.05", "header": 13, "mode": "in", "pull": "up"},
    "RESET": {"name": "PN.01", "header": 15, "mode": "in", "pull": "down"},
    "RELAY_READBACK": {"name": "PY.04", "header": 16, "mode": "in", "pull": "down"},
    "STATUS_LED": {"name": "PQ.05", "header": 29, "mode": "out"},
}
WDT = {"device": "/dev/watchdog", "max_timeout_s": 60}
