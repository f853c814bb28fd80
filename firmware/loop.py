"""The firmware loop: sense -> interlock -> inference -> record, each cycle.

    fw = Firmware(hw, cfg["sensors"], interlock, period_ms=10, window_ms=1000,
                  readback=True, watchdog_ms=500, stall_ms=200, max_overruns=3,
                  journal=journal)
    asyncio.run(fw.run(cycles=2000))
    fw.summary()

``safety_cycle`` (sense, decide, drive the permit) is the hot path: it
allocates nothing. The permit is driven low before anything else when the
firmware is built, and again whenever ``run`` ends, by return or by any
exception, including KeyboardInterrupt and task cancellation.

Its inputs are its arguments: the sensors (the config's ``sensors``), the
interlock built from them, and the settings it reads, each named;
``firmware.start.firmware(hw, cfg)`` takes them from a whole config.
"""

import array

from firmware.channels import SENSOR_TYPES, driver
from firmware.record import Recorder
from hal.clock import ticks_add, ticks_diff

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None


def build_driver(hw, spec):
    mod = driver(spec["type"])
    bus = hw.uart(spec["bus"]) if mod.BUS == "uart" else hw.i2c(spec["bus"])
    return mod.from_spec(bus, spec)


class Firmware:
    def __init__(self, hw, sensors, interlock, period_ms, window_ms, readback, watchdog_ms, stall_ms, max_overruns, journal=None, inference=None):
        """``sensors``: the config's sensor list; ``readback``: whether
        the relay's contact is read back; ``watchdog_ms`` (0: none),
        ``stall_ms`` (0: off) and ``max_overruns`` (consecutive, before
        the DEADLINE cause) supervise the loop's timing; ``window_ms``:
        the record stage's aggregation window."""
        self.hw = hw
        self.clock = hw.clock
        # outputs safe before anything else can fail
        self.permit_pin = hw.pin("RELAY_PERMIT")
        self.permit_pin.value(0)
        self.led = hw.pin("STATUS_LED") if "STATUS_LED" in hw.board.PINS else None
        self.estop_pin = hw.pin("ESTOP")
        self.reset_pin = hw.pin("RESET")
        self.readback_pin = hw.pin("RELAY_READBACK") if readback else None
        self.period_us = period_ms * 1000
        # the interlock's list: the same channels (channel_names(sensors)), one copy
        self.channels = interlock.channels
        self.drivers = []
        self.bases = []
        sensor_of = []
        base = 0
        for si, spec in enumerate(sensors):
            self.drivers.append(build_driver(hw, spec))
            self.bases.append(base)
            nq = len(SENSOR_TYPES[spec["type"]])
            sensor_of.extend([si] * nq)
            base += nq
        self.ns = len(self.drivers)
        self.values = array.array("i", [0] * len(self.channels))
        self.status = bytearray(self.ns)
        # built before everything else by firmware.start on small heaps:
        # its tables then sit in one piece at the bottom of the heap
        self.interlock = interlock
        self.recorder = Recorder(journal, self.channels, sensor_of, self.period_us, window_ms * 1000)
        self.journal = journal
        self.inference = inference
        self.max_consec = max_overruns
        self.stall_us = stall_ms * 1000
        self.wdt = hw.wdt(watchdog_ms) if watchdog_ms else None
        self.cycles = 0
        self.slot = 0
        self.stamp_slot = 0
        self.overruns = 0
        self.consec = 0
        self.deadline = 0
        self.permit = 0
        self.trips = []
        self.events = []

    def safe(self):
        self.permit_pin.value(0)
        self.permit = 0

    def sense(self):
        i = 0
        while i < self.ns:
            d = self.drivers[i]
            try:
                if d.fetch():
                    d.read_into(self.values, self.bases[i])
                    self.status[i] = 1
                else:
                    self.status[i] = 0
            except OSError:
                self.status[i] = 2
            i += 1

    def safety_cycle(self, now, stall):
        """Sense, decide, drive. Allocates nothing."""
        self.sense()
        inf = self.inference
        il = self.interlock
        il.slot = self.stamp_slot
        p = il.step(
            now,
            self.values,
            self.status,
            self.estop_pin.value(),
            self.reset_pin.value(),
            self.readback_pin.value() if self.readback_pin is not None else 0,
            self.deadline,
            stall,
            inf.request if inf is not None else 0,
        )
        self.permit_pin.value(p)
        if self.led is not None:
            self.led.value(p)
        self.permit = p
        return p

    def _record(self):
        self.recorder.sample(self.slot, self.values, self.status)
        if self.journal is not None:
            with self.journal.lock:
                self.journal.tick()
        if self.interlock.ev_count:
            for kind, slot, causes in self.interlock.pop_events():
                rec = self.recorder.event(kind, slot, causes)
                self.events.append(rec)
                if len(self.events) > 64:
                    # the journal has them all; keep memory flat
                    self.events.pop(0)
                if kind == "trip":
                    self.trips.append({"t_us": rec["t"], "cause": "+".join(n for _c, n in causes), "codes": [c for c, _n in causes]})

    async def run(self, cycles=None, until_us=None, on_status=None, status_every=25):
        clock = self.clock
        period = self.period_us
        if self.inference is not None:
            self.inference.start()
        try:
            next_t = clock.ticks_us()
            last_start = None
            while True:
                if cycles is not None and self.cycles >= cycles:
                    break
                if until_us is not None and self.slot * period >= until_us:
                    break
                start = clock.ticks_us()
                behind = ticks_diff(start, next_t)
                # events are stamped with the slot the cycle actually ran in,
                # which after a stall is later than the one it was due in
                self.stamp_slot = self.slot + (behind // period if behind > 0 else 0)
                stall = 1 if (self.stall_us and last_start is not None and ticks_diff(start, last_start) > self.stall_us) else 0
                last_start = start
                self.safety_cycle(start, stall)
                if self.inference is not None:
                    self.inference.submit(self.slot, self.values, self.status)
                self._record()
                self.cycles += 1
                late = ticks_diff(clock.ticks_us(), ticks_add(next_t, period))
                if late > 0:
                    self.overruns += 1
                    self.consec += 1
                    skip = late // period + 1
                else:
                    self.consec = 0
                    skip = 1
                    if self.wdt is not None:
                        self.wdt.feed()
                self.deadline = 1 if self.consec > self.max_consec else 0
                next_t = ticks_add(next_t, skip * period)
                self.slot += skip
                if on_status is not None and self.cycles % status_every == 0:
                    on_status(self)
                await clock.wait_us(ticks_diff(next_t, clock.ticks_us()))
        finally:
            self.safe()
            if self.inference is not None:
                self.inference.stop()
            if self.recorder.n_samples():
                self.recorder.close_window(self.slot)
            if self.journal is not None:
                self.journal.flush()

    def summary(self):
        j = self.journal
        return {
            "cycles": self.cycles,
            "overruns": self.overruns,
            "records": self.recorder.appended,
            "journal_records": j.count if j is not None else 0,
            "journal_bytes": j.size if j is not None else 0,
            "trips": self.trips,
            "resets": self.interlock.resets,
            "refused_resets": self.interlock.refused,
            "tripped": bool(self.interlock.tripped),
            "permit": self.permit,
            "t_us": self.slot * self.period_us,
            "inference": None if self.inference is None else self.inference.summary(),
        }

    def status_line(self):
        v = self.values
        parts = []
        for i, ch in enumerate(self.channels):
            parts.append("%s=%.2f" % (ch, v[i] / 1000))
        state = "TRIPPED" if self.interlock.tripped else "permit"
        causes = ",".join(n for _c, n in self.interlock.active_causes())
        if self.inference is not None and self.inference.score is not None:
            parts.insert(0, "anomaly=%.2f" % self.inference.score)
        return parts, state, causes
