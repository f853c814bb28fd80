"""Raspberry Pi 5. The header is driven by the RP1 chip: BCM-numbered lines
on the gpiochip labelled ``pinctrl-rp1`` (its chip number changed between
kernel releases, so it is found by label, not number)."""

NAME = "rpi5"
DESCRIPTION = "Raspberry Pi 5"
FAMILY = "linux"
MATCH = ("raspberrypi,5-model-b",)
FEATURES = ("i2c", "uart", "gpio", "wdt", "readback", "systemd")
GPIOCHIP = "pinctrl-rp1"

I2C = {
    "I2C0": {"id": 1, "device": "/dev/i2c-1", "sda": 2, "scl": 3, "header": (3, 5)},
}
UART = {
    "UART0": {"device": "/dev/ttyAMA0", "tx": 14, "rx": 15, "header": (8, 10)},
}
PINS = {
    "RELAY_PERMIT": {"line": 17, "header": 11, "mode": "out"},
    "ESTOP": {"line": 27, "header": 13, "mode": "in", "pull": "up"},
    "RESET": {"line": 22, "header": 15, "mode": "in", "pull": "down"},
    "RELAY_READBACK": {"line": 23, "header": 16, "mode": "in", "pull": "down"},
    "STATUS_LED": {"line": 5, "header": 29, "mode": "out"},
}
WDT = {"device": "/dev/watchdog", "max_timeout_s": 15}
