"""Plays a parsed scenario (``sim.scenario.parse_scenario``) on a
``SimHardware`` as virtual time moves."""


class ScenarioPlayer:
    """Applies a parsed scenario to a ``SimHardware`` as time moves."""

    def __init__(self, scenario, hw):
        self.sc = scenario
        self.hw = hw
        self._next = 0
        self._ramps = []
        self._ends = []
        self.applied = 0
        for ch, v in scenario["initial"].items():
            hw.set_channel(ch, v)

    def __call__(self, now):
        if self._ramps:
            live = []
            for r in self._ramps:
                ch, t0, t1, v0, v1 = r
                if now >= t1:
                    self.hw.set_channel(ch, v1)
                else:
                    self.hw.set_channel(ch, v0 + (v1 - v0) * (now - t0) / (t1 - t0))
                    live.append(r)
            self._ramps = live
        evs = self.sc["events"]
        while self._next < len(evs) and evs[self._next]["at_us"] <= now:
            self._apply(evs[self._next], now)
            self._next += 1
            self.applied += 1
        if self._ends:
            live = []
            for end in self._ends:
                if now >= end[0]:
                    end[1]()
                else:
                    live.append(end)
            self._ends = live

    def _stop_ramp(self, ch):
        # a later set or ramp of the same channel takes over from a ramp
        self._ramps = [r for r in self._ramps if r[0] != ch]

    def _apply(self, e, now):
        hw = self.hw
        k, a = e["kind"], e["arg"]
        if k == "set":
            for ch, v in a.items():
                self._stop_ramp(ch)
                hw.set_channel(ch, v)
        elif k == "ramp":
            for ch, v in a.items():
                self._stop_ramp(ch)
                self._ramps.append((ch, e["at_us"], e["at_us"] + e["over_us"], hw.get_channel(ch), float(v)))
        elif k == "vibration":
            sensor, q = a["channel"].split(".", 1)
            hw.chip(sensor).add_vibration(q, a["amplitude_g"], a["freq_hz"], e["at_us"], e["at_us"] + e["for_us"])
        elif k == "fault":
            undo = hw.inject_fault(a["sensor"], a["kind"], a.get("register"))
            if e["for_us"] is not None:
                self._ends.append((e["at_us"] + e["for_us"], undo))
        elif k == "press":
            hw.press(a, 1)
            self._ends.append((e["at_us"] + e["for_us"], lambda: hw.press(a, 0)))
        elif k == "input":
            hw.set_input(a["role"], a["level"])
        elif k == "stall_ms":
            hw.clock.stall(int(a * 1000))
        elif k == "load_ms":
            hw.clock.set_load(int(a * 1000))
            self._ends.append((e["at_us"] + e["for_us"], lambda: hw.clock.set_load(0)))
        elif k == "relay":
            hw.relay_state = a
