"""NVIDIA Jetson Nano Developer Kit (T210), J41 40-pin header. Lines are on
the gpiochip labelled ``tegra-gpio``; the same header pins as the Pi boards
are used, so one wiring harness fits all of them."""

NAME = "jetson_nano"
DESCRIPTION = "NVIDIA Jetson Nano Developer Kit"
FAMILY = "linux"
FEATURES = ("i2c", "uart", "gpio", "wdt", "readback", "systemd")
GPIOCHIP = "tegra-gpio"

I2C = {
    "I2C0": {"id": 1, "device": "/dev/i2c-1", "header": (3, 5)},
    "I2C1": {"id": 0, "device": "/dev/i2c-0", "header": (27, 28)},
}
UART = {
    "UART0": {"device": "/dev/ttyTHS1", "header": (8, 10)},
}
PINS = {
    "RELAY_PERMIT": {"line": 50, "tegra": "PG.02", "header": 11, "mode": "out"},
    "ESTOP": {"line": 14, "tegra": "PB.06", "header": 13, "mode": "in", "pull": "up"},
    "RESET": {"line": 194, "tegra": "PY.02", "header": 15, "mode": "in", "pull": "down"},
    "RELAY_READBACK": {"line": 232, "tegra": "PDD.00", "header": 16, "mode": "in", "pull": "down"},
    "STATUS_LED": {"line": 149, "tegra": "PS.05", "header": 29, "mode": "out"},
}
WDT = {"device": "/dev/watchdog", "max_timeout_s": 60}
