"""Raspberry Pi 4 Model B, 40-pin header. GPIO numbers are BCM lines on
the gpiochip labelled ``pinctrl-bcm2711``, requested by their line names
(``GPIO17``: the device tree's ``gpio-line-names``); ``header`` is the
physical pin."""

NAME = "rpi4"
DESCRIPTION = "Raspberry Pi 4 Model B"
FAMILY = "linux"
FEATURES = ("i2c", "uart", "gpio", "wdt", "readback", "systemd")
GPIOCHIP = "pinctrl-bcm2711"

I2C = {
    "I2C0": {"id": 1, "device": "/dev/i2c-1", "sda": 2, "scl": 3, "header": (3, 5)},
}
UART = {
    "UART0": {"device": "/dev/serial0", "tx": 14, "rx": 15, "header": (8, 10)},
}
PINS = {
    "RELAY_PERMIT": {"name": "GPIO17", "line": 17, "header": 11, "mode": "out"},
    "ESTOP": {"name": "GPIO27", "line": 27, "header": 13, "mode": "in", "pull": "up"},
    "RESET": {"name": "GPIO22", "line": 22, "header": 15, "mode": "in", "pull": "down"},
    "RELAY_READBACK": {"name": "GPIO23", "line": 23, "header": 16, "mode": "in", "pull": "down"},
    "STATUS_LED": {"name": "GPIO5", "line": 5, "header": 29, "mode": "out"},
}
WDT = {"device": "/dev/watchdog", "max_timeout_s": 15}
