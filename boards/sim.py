"""The simulated board: register-level chip models on a virtual I2C bus and
virtual GPIO that records every transition in virtual time (see ``sim/``).
The default board wherever no hardware is detected."""

NAME = "sim"
DESCRIPTION = "edgefw simulated board"
FAMILY = "sim"
FEATURES = ("i2c", "uart", "gpio", "wdt", "readback", "virtual_time", "fault_injection")

I2C = {
    "I2C0": {"id": 0},
    "I2C1": {"id": 1},
}
UART = {
    "UART0": {"id": 0},
}
PINS = {
    "RELAY_PERMIT": {"line": 0, "mode": "out"},
    "ESTOP": {"line": 1, "mode": "in", "pull": "up"},
    "RESET": {"line": 2, "mode": "in", "pull": "down"},
    "RELAY_READBACK": {"line": 3, "mode": "in", "pull": "down"},
    "STATUS_LED": {"line": 4, "mode": "out"},
}
WDT = {"max_timeout_s": 60}
