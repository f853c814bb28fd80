"""Trip latency in real time: onset in the sensor -> permit low.

Runs the firmware on the sim board with a ``WallClock``: the chips and the
loop share real time. A world task waits a random fraction of time, writes
an over-limit temperature into the BME280 model's registers (the onset),
and the permit pin notes the wall tick at which it is driven low. Then it
cools the sensor, presses reset and waits for the permit to return.

    from sim.latency import measure
    res = measure(period_ms=10, trials=100, stalled=False)
    res["p99_ms"]

Dual-target: ``edgefw bench interlock`` runs it on CPython and under the
MicroPython unix port.
"""

import sys

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None

import boards
from firmware.start import firmware
from hal.clock import ticks_diff
from hal.compat import IS_MICROPYTHON
from sim.board import SimHardware
from sim.wallclock import WallClock

MP = IS_MICROPYTHON


class EdgePin:
    """Wraps the permit pin; records the wall tick of each falling edge."""

    def __init__(self, pin, clock):
        self.pin = pin
        self.clock = clock
        self.level = 0
        self.fell_at = None
        self.rose = False

    def value(self, v=None):
        if v is None:
            return self.pin.value()
        if self.level and not v:
            self.fell_at = self.clock._wall.ticks_us()
        if v and not self.level:
            self.rose = True
        self.level = v
        self.pin.value(v)


def _config(period_ms, window_ms=1000):
    from firmware.config import load_config

    return load_config(
        None,
        {
            "period_ms": period_ms,
            "startup": "auto",
            "sensors": [{"name": "env", "type": "bme280", "bus": "I2C0", "address": 0x76, "stale_ms": 1000}],
            "interlock": {
                "channels": {"env.temperature_c": {"high": 60.0, "hysteresis": 2.0}},
                "readback": {"enabled": False, "grace_ms": 50},
                "watchdog_ms": 0,
                "stall_ms": 0,
                "max_consecutive_overruns": 1000,
            },
            "record": {"window_ms": window_ms, "journal": "-", "durability": "none"},
        },
    )


def _stalled_stage(channels, period_ms, kind="stall"):
    from firmware.infer.stage import InferenceStage

    if MP:

        async def infer(window):
            # 100 ms of model work in 1 ms layers, yielding between them
            import time

            for _ in range(100):
                t = time.ticks_ms()
                while time.ticks_diff(time.ticks_ms(), t) < 1:
                    pass
                await asyncio.sleep(0)
            return 0.0

    elif kind == "raise":

        def infer(window):
            raise ValueError("model failed")

    elif kind == "hang":

        def infer(window):
            import threading

            threading.Event().wait()

    else:
        import time

        def infer(window):
            # a pure-Python model stuck for 100 ms: holds the GIL, as a
            # CPU-bound interpreter does
            t = time.perf_counter()
            x = 0
            while time.perf_counter() - t < 0.1:
                x += 1
            return 0.0

    return InferenceStage(channels, ["env.temperature_c"], window=4, hop=1, infer=infer, threshold=1.0)


def _percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = int(round(q * (len(sorted_vals) - 1)))
    return sorted_vals[k]


def measure(period_ms=10, trials=100, stalled=False, seed=1, mode=None, kind="stall", journal=None, window_ms=1000, attach=None, threaded=False):
    """``journal``: record into it (the record stage then runs every cycle
    with ``window_ms`` = period); ``attach(fw)`` is called before the loop
    starts and may return a function called after it ends (an uplink
    beside the loop, say). ``p99_gap_ms`` and ``max_gap_ms``: wall time
    between the starts of two cycles. ``threaded`` (CPython): the world
    (onsets, resets) runs in a thread of its own, so a loop that stalls
    meets the onset late instead of holding the world up with it."""
    import random

    random.seed(seed)
    cfg = _config(period_ms, window_ms)
    clock = WallClock()
    hw = SimHardware(boards.get("sim"), sensors=cfg["sensors"], clock=clock)
    chip = hw.chips["env"]
    stage = _stalled_stage(["env.temperature_c", "env.humidity_pct", "env.pressure_hpa"], period_ms, kind) if stalled else None
    if stage is not None and mode:
        stage.mode = mode
    fw = firmware(hw, cfg, journal, stage)
    pin = EdgePin(fw.permit_pin, clock)
    fw.permit_pin = pin
    gaps = []
    last = [None]
    cycle = fw.safety_cycle

    def timed_cycle(now, stall):
        t = clock._wall.ticks_us()
        if last[0] is not None:
            gaps.append(ticks_diff(t, last[0]))
        last[0] = t
        return cycle(now, stall)

    fw.safety_cycle = timed_cycle
    detach = attach(fw) if attach is not None else None
    period_us = period_ms * 1000
    lat_us = []
    missed = [0]

    async def world():
        await asyncio.sleep(5 * period_ms / 1000)
        for _ in range(trials):
            # onset at a random phase of the cycle
            await asyncio.sleep((2 * period_us + random.randint(0, period_us)) / 1000000)
            onset = hot()
            while pin.fell_at is None and ticks_diff(clock._wall.ticks_us(), onset) < 2000000:
                await asyncio.sleep(0)
            cool(onset)
            await asyncio.sleep(3 * period_ms / 1000)
            hw.press("RESET", 1)
            await asyncio.sleep(3 * period_ms / 1000)
            hw.press("RESET", 0)
            t0 = clock._wall.ticks_us()
            while not pin.rose and ticks_diff(clock._wall.ticks_us(), t0) < 2000000:
                await asyncio.sleep(0)
        fw_task.cancel()

    def world_thread():
        # the sensor's world on its own clock, as a real one is: a loop
        # that stalls is seen late, not spared the onset
        import time

        time.sleep(5 * period_ms / 1000)
        for _ in range(trials):
            time.sleep((2 * period_us + random.randint(0, period_us)) / 1000000)
            onset = hot()
            while pin.fell_at is None and ticks_diff(clock._wall.ticks_us(), onset) < 10000000:
                time.sleep(0.0001)
            cool(onset)
            # the reset is pressed once the loop has seen the cool reading
            # (counted in its cycles, not in time: a loaded machine may run
            # it late), and pressed again if it was refused
            for _press in range(5):
                cycles(3)
                hw.press("RESET", 1)
                cycles(3)
                hw.press("RESET", 0)
                t0 = clock._wall.ticks_us()
                while not pin.rose and ticks_diff(clock._wall.ticks_us(), t0) < 20 * period_us:
                    time.sleep(0.0001)
                if pin.rose:
                    break
        done[0] = True

    def cycles(n):
        import time

        c0 = fw.cycles
        t0 = clock._wall.ticks_us()
        while fw.cycles - c0 < n and ticks_diff(clock._wall.ticks_us(), t0) < 10000000:
            time.sleep(0.0002)

    def hot():
        pin.fell_at = None
        chip.set_channel("temperature_c", 75.0)
        chip.tick(None)
        return clock._wall.ticks_us()

    def cool(onset):
        if pin.fell_at is None:
            missed[0] += 1
        else:
            lat_us.append(ticks_diff(pin.fell_at, onset))
        chip.set_channel("temperature_c", 20.0)
        chip.tick(None)
        pin.rose = False

    done = [False]

    async def until_done():
        while not done[0]:
            await asyncio.sleep(0.01)
        fw_task.cancel()

    async def main():
        global fw_task
        fw_task = asyncio.create_task(fw.run())
        if threaded:
            import threading

            threading.Thread(target=world_thread, daemon=True).start()
        try:
            await asyncio.gather(until_done() if threaded else world(), fw_task)
        except asyncio.CancelledError:
            pass

    try:
        asyncio.run(main())
    finally:
        if detach is not None:
            detach()
    lat_us.sort()
    res = {
        "period_ms": period_ms,
        "stalled_inference": stalled,
        "trials": len(lat_us),
        "missed": missed[0],
        "p50_ms": _percentile(lat_us, 0.5) / 1000 if lat_us else None,
        "p99_ms": _percentile(lat_us, 0.99) / 1000 if lat_us else None,
        "max_ms": lat_us[-1] / 1000 if lat_us else None,
        "overruns": fw.overruns,
        "cycles": fw.cycles,
    }
    gaps.sort()
    res["p99_gap_ms"] = _percentile(gaps, 0.99) / 1000 if gaps else None
    res["max_gap_ms"] = gaps[-1] / 1000 if gaps else None
    if stage is not None:
        res["inference_windows"] = stage.windows
        res["inference_errors"] = stage.errors
    return res


if __name__ == "__main__":
    import json

    args = sys.argv[1:]
    print(json.dumps(measure(int(args[0]), int(args[1]), args[2] == "stalled")))
