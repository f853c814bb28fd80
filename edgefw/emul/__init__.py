"""Stand-ins for what a workstation lacks: a virtual ESP32, the 32-bit MicroPython, a private broker."""
