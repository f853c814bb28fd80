"""Sensor drivers. Each is handed a bus object (``machine.I2C`` or any
object with the same methods), checks the chip ID, and keeps the bus code
apart from the maths (``*_maths.py`` modules are pure integer functions)."""
