"""Building what a device runs: .mpy images, MicroPython libraries, int8 models."""
