"""Real time for the simulated world (used by ``sim.latency``)."""

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None

from hal.clock import TICKS_MAX, ticks_diff
from sim.clock import VirtualClock


class WallClock(VirtualClock):
    """The simulated world in real time: ``now_us`` follows the wall clock
    and the hooks run as it moves, so chips convert and scenarios play
    while the firmware runs on real ticks. Used to measure latencies.

    ``wait_us`` sleeps most of the wait and spins the last ``spin_us``
    (``asyncio.sleep(0)`` in a loop): event-loop timers have millisecond
    granularity, too coarse for a 1 kHz loop.
    """

    def __init__(self, spin_us=1500):
        VirtualClock.__init__(self)
        self.spin_us = spin_us
        self._last = self._wall.ticks_us()

    def _sync(self):
        t = self._wall.ticks_us()
        d = ticks_diff(t, self._last)
        if d > 0:
            self._last = t
            self.advance(d)

    def ticks_us(self):
        self._sync()
        return self.now_us & TICKS_MAX

    def stall(self, us):
        due = self.now_us + us
        while self.now_us < due:
            self._sync()

    async def wait_us(self, us):
        self._sync()
        due = self.now_us + us
        if us > self.spin_us:
            await asyncio.sleep((us - self.spin_us) / 1000000)
            self._sync()
        while self.now_us < due:
            await asyncio.sleep(0)
            self._sync()
