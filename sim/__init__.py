"""Co-simulation: register-level chip models, a virtual I2C bus, virtual
GPIO and a virtual clock, driven by scenario files (see docs/scenarios.md).

The modules ``clock``, ``i2c``, ``gpio``, ``chips``, ``scenario`` and
``board`` are dual-target: the MicroPython tests run the firmware on them.
"""
