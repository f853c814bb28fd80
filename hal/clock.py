"""Clocks: the tick arithmetic of MicroPython's ``time`` module, everywhere.

Ticks wrap at ``TICKS_PERIOD`` (2**30, as on MicroPython) on every target,
so code that forgets ``ticks_diff`` breaks in tests, not after 18 minutes in
the field. A clock provides::

    ticks_us() -> int                 wrapping microsecond counter
    ticks_diff(a, b) -> int           signed a - b, wrap-aware
    ticks_add(t, delta) -> int
    sleep_ms(ms)                      blocking
    async wait_us(us)                 yield to other tasks for ``us``

``sim.clock.VirtualClock`` is the same interface in virtual time.
"""

import time

try:
    import asyncio
except ImportError:  # pragma: no cover - every supported port has asyncio
    asyncio = None

TICKS_PERIOD = 1 << 30
TICKS_MAX = TICKS_PERIOD - 1
_TICKS_HALF = TICKS_PERIOD >> 1


def ticks_diff(a, b):
    return ((a - b + _TICKS_HALF) & TICKS_MAX) - _TICKS_HALF


def ticks_add(t, delta):
    return (t + delta) & TICKS_MAX


if hasattr(time, "ticks_ms"):
    ticks_ms = time.ticks_ms
    sleep_ms = time.sleep_ms
else:

    def ticks_ms():
        """A millisecond tick, wrapping as ``ticks_us`` does (for timeouts
        outside the loop: the journal's group commit, the uplink)."""
        return (time.monotonic_ns() // 1000000) & TICKS_MAX

    def sleep_ms(ms):
        time.sleep(ms / 1000)


class RealClock:
    """Wall-clock ticks: ``time.ticks_us`` on MicroPython, the monotonic
    clock on CPython."""

    ticks_diff = staticmethod(ticks_diff)
    ticks_add = staticmethod(ticks_add)

    def __init__(self):
        if hasattr(time, "ticks_us"):
            self._ticks = time.ticks_us
        else:
            mono = time.monotonic_ns

            def _ticks():
                return (mono() // 1000) & TICKS_MAX

            self._ticks = _ticks

    def ticks_us(self):
        return self._ticks()

    def sleep_ms(self, ms):
        if hasattr(time, "sleep_ms"):
            time.sleep_ms(ms)
        else:
            time.sleep(ms / 1000)

    async def wait_us(self, us):
        if us <= 0:
            await asyncio.sleep(0)
        else:
            await asyncio.sleep(us / 1000000)
