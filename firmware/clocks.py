"""What a record needs to be placed in time: which run it is from, and
the wall clock, when there is one.

``boot_id()`` is eight random bytes, the same for the whole run (the
``boot`` event at start and every batch header carry it); ``utc_ms()`` is
UTC in milliseconds, or None while the clock is not set (a device's clock
starts at its epoch until NTP or an RTC sets it).
"""

import os
import time

from hal.compat import IS_MICROPYTHON

# a clock before this (2024-01-01) has not been set
_CLOCK_SET_S = 1704067200
_BOOT = None


def boot_id():
    global _BOOT
    if _BOOT is None:
        try:
            _BOOT = os.urandom(8)
        except AttributeError:  # a port without urandom
            _BOOT = (time.ticks_us() & 0xFFFFFFFF).to_bytes(4, "little") + bytes(4)
    return _BOOT


def utc_ms():
    t = time.time()
    if IS_MICROPYTHON:
        if time.gmtime(0)[0] == 2000:
            # the ESP32 port counts from 2000, not 1970
            t += 946684800
    if t < _CLOCK_SET_S:
        return None
    return int(t * 1000)


