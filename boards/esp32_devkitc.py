"""Espressif ESP32-DevKitC (ESP32-WROOM-32). Numbers are ESP32 GPIOs.
Strapping pins (0, 2, 5, 12, 15) and input-only pins (34-39, no pull-ups)
are avoided for the safety roles. The DevKitC has no user LED: STATUS_LED
is GPIO2, where most ESP32 boards put one; fit an LED there if wanted."""

NAME = "esp32_devkitc"
DESCRIPTION = "Espressif ESP32-DevKitC"
FAMILY = "micropython"
FEATURES = ("i2c", "uart", "gpio", "wdt", "readback", "littlefs")

I2C = {
    "I2C0": {"id": 0, "sda": 21, "scl": 22, "freq": 400000},
}
UART = {
    "UART0": {"id": 2, "tx": 17, "rx": 16},
}
PINS = {
    "RELAY_PERMIT": {"line": 26, "mode": "out"},
    "ESTOP": {"line": 27, "mode": "in", "pull": "up"},
    "RESET": {"line": 25, "mode": "in", "pull": "down"},
    "RELAY_READBACK": {"line": 33, "mode": "in", "pull": "down"},
    "STATUS_LED": {"line": 2, "mode": "out"},
}
WDT = {"max_timeout_s": 60}
