"""Raspberry Pi 5. The 40-pin header has the Pi 4's layout, so the role
tables are the Pi 4's; what differs is the chip behind it: the RP1, with
BCM-numbered lines on the gpiochip labelled ``pinctrl-rp1`` (its chip
number changed between kernel releases, so it is found by label), and
the header UART at /dev/ttyAMA0."""

from boards.rpi4 import I2C, PINS, WDT  # noqa: F401  (the same header)

NAME = "rpi5"
DESCRIPTION = "Raspberry Pi 5"
FAMILY = "linux"
FEATURES = ("i2c", "uart", "gpio", "wdt", "readback", "systemd")
GPIOCHIP = "pinctrl-rp1"

UART = {
    "UART0": {"device": "/dev/ttyAMA0", "tx": 14, "rx": 15, "header": (8, 10)},
}
