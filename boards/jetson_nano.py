"""NVIDIA Jetson Nano Developer Kit (T210), J41 40-pin header. Lines are on
the gpiochip labelled ``tegra-gpio``; the same header pins as the Pi boards
are used, so one wiring harness fits all of them. Each pin is requested by its Tegra
port name (``PG.02``) and, where the kernel's driver leaves lines unnamed,
by its offset (``line``) on that chip."""

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
    "RELAY_PERMIT": {"line": 50, "name": "PG.02", "header": 11, "mode": "out"},
    "ESTOP": {"line": 14, "name": "PB.06", "header": 13, "mode": "in", "pull": "up"},
    "RESET": {"line": 194, "name": "PY.02", "header": 15, "mode": "in", "pull": "down"},
    "RELAY_READBACK": {"line": 232, "name": "PDD.00", "header": 16, "mode": "in", "pull": "down"},
    "STATUS_LED": {"line": 149, "name": "PS.05", "header": 29, "mode": "out"},
}
WDT = {"device": "/dev/watchdog", "max_timeout_s": 60}
