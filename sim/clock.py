"""Virtual time with the tick interface of ``hal.clock``.

Time moves only when the firmware waits (``wait_us``/``sleep_ms``) or a
scenario injects a stall. Everything that happens in the simulated world
(scenario events, chip conversions, the watchdog) is a hook called as time
advances, so reading a sensor is a plain register copy::

    clk = VirtualClock()
    clk.add_hook(lambda now_us: ...)
    await clk.wait_us(10000)       # the world moves 10 ms
    clk.now_us                     # absolute virtual time, never wraps

With ``speed`` > 0 waits are also paced against the wall clock (1.0 = real
time), so a person can watch the firmware run.
"""

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None

from hal.clock import TICKS_MAX, RealClock, ticks_add, ticks_diff


class VirtualClock:
    ticks_diff = staticmethod(ticks_diff)
    ticks_add = staticmethod(ticks_add)

    def __init__(self, speed=0.0):
        self.now_us = 0
        self.speed = speed
        self._hooks = []
        self._stall_us = 0
        self.load_us = 0
        self._wall = RealClock()
        self._wall_t0 = None

    def add_hook(self, fn):
        """``fn(now_us)`` is called each time virtual time moves."""
        self._hooks.append(fn)

    def stall(self, us):
        """The next tick read finds ``us`` more elapsed: the CPU was busy."""
        self._stall_us += us

    def set_load(self, us):
        """From now on every wait is followed by ``us`` of busy CPU: each
        cycle's work takes that long. 0 ends the load."""
        self.load_us = us

    def ticks_us(self):
        if self._stall_us:
            s = self._stall_us
            self._stall_us = 0
            self.advance(s)
        return self.now_us & TICKS_MAX

    def advance(self, us):
        self.now_us += us
        for h in self._hooks:
            h(self.now_us)

    def sleep_ms(self, ms):
        self.advance(ms * 1000)

    async def wait_us(self, us):
        if us > 0:
            self.advance(us)
        self._stall_us += self.load_us
        if self.speed > 0:
            w = self._wall
            if self._wall_t0 is None:
                self._wall_t0 = w.ticks_us()
                self._virt_t0 = self.now_us
            due = (self.now_us - self._virt_t0) / self.speed
            late = ticks_diff(w.ticks_us(), self._wall_t0)
            if due > late:
                await asyncio.sleep((due - late) / 1000000)
                return
        await asyncio.sleep(0)
