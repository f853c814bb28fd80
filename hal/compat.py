"""What differs between MicroPython and CPython, in one place."""

import sys

IS_MICROPYTHON = sys.implementation.name == "micropython"

try:
    from micropython import const  # noqa: F401
except ImportError:

    def const(x):
        return x


def int_from_le_signed(b0, b1):
    """Signed 16-bit little-endian from two bytes (MicroPython's
    ``int.from_bytes`` has no ``signed`` keyword)."""
    v = b0 | (b1 << 8)
    return v - 0x10000 if v & 0x8000 else v


if IS_MICROPYTHON:

    def fsync(f):
        """MicroPython's unix port has no ``os.fsync``: ``flush()`` hands
        the data to the OS (it survives a killed process, not a power cut).
        On a LittleFS device ``flush()`` commits the file's metadata, which
        is what makes it power-safe there."""
        f.flush()

else:
    import os as _os

    def fsync(f):
        """CPython: flush, then ``os.fsync``: on stable storage when this
        returns."""
        f.flush()
        _os.fsync(f.fileno())
