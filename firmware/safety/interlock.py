"""The safety interlock: deterministic rules, latched trips, manual reset.

    il = Interlock.from_sections(cfg["sensors"], cfg["interlock"], cfg["startup"])
    permit = il.step(now, values, status, estop, reset, readback,
                     deadline, stall, inference)

``step`` is the whole decision. It is a function of its arguments and of
the state held in this object, does integer arithmetic only, and
allocates nothing, so it can be tested exhaustively and run with the heap
locked. Its result is the permit: 1 = energize, 0 = tripped. Outputs are
de-energize-to-trip, so every failure that removes power, drive or the
process leaves the load off.

Causes (each has one diagnostic code, listed in docs/records.md):

* per channel: HIGH / LOW limit (hysteresis, on-delay in samples), ROC
  (rate of change), IMPLAUSIBLE (outside the plausible range: the sensor,
  not the process, is wrong)
* per sensor: BUS (the read raised OSError), STALE (no fresh sample
  within stale_ms)
* voting group: VOTE (``need`` of its channels vote trip; 2oo3 by
  default). A member votes trip when it has a cause or its sensor has one;
  its own causes do not trip alone. With one member faulted the group runs
  degraded as 1oo2 of the remaining two.
* global: ESTOP (normally-closed chain open or broken), DEADLINE
  (consecutive overruns over the limit), STALL (the loop stopped longer
  than stall_ms), READBACK (relay contact disagrees with the command past
  the grace time), INFERENCE (the model asked for a trip), SITE (the
  site's gateway commanded a trip: ``site_req``, firmware.uplink.command)

A cause trips at once and the trip latches. A reset is a rising edge on the
reset input; it is honoured only when no cause is active, and refused (and
recorded) otherwise. Inference can add the INFERENCE cause; nothing it does
can clear a trip or hold one off. A gateway's trip command is the same: it
raises ``site_req`` (its handler, in the uplink, is the only writer), and
the next ``step`` sees the SITE cause for that one evaluation, so the trip
latches and the node's own reset clears it.
"""

import array

from hal.clock import ticks_diff
from hal.compat import const

# channel causes
_C_HIGH = const(1)
_C_LOW = const(2)
_C_ROC = const(4)
_C_IMPLAUSIBLE = const(8)
# sensor causes
_S_BUS = const(1)
_S_STALE = const(2)
# global causes
_G_ESTOP = const(1)
_G_DEADLINE = const(2)
_G_STALL = const(4)
_G_READBACK = const(8)
_G_INFERENCE = const(16)
_G_SITE = const(32)

# sensor status as reported by the sense stage
_NO_DATA = const(0)
_FRESH = const(1)
_BUS_ERROR = const(2)

# event kinds
_EV_TRIP = const(1)
_EV_RESET = const(2)
_EV_RESET_REFUSED = const(3)
_EV_CAUSE = const(4)
_EV_CAP = const(16)
# rule enable bits: firmware/safety/setup.py's EN_*, folded here where the
# safety path tests them (a const is folded only in its own module)
_EN_HIGH = const(1)
_EN_LOW = const(2)
_EN_ROC = const(4)
_EN_PLAUS = const(8)


class Interlock:
    def __init__(self, channels, sensors, rules, sensor_of, stale_ms, estop=True, readback=False, readback_grace_ms=50, startup="manual", votes=(), site_trip=True):
        """``channels``/``sensors``: names; ``rules``: channel -> rule dict in
        real units; ``sensor_of[i]``: sensor index of channel i; ``votes``:
        list of {"name", "channels", "need"} voting groups."""
        n = len(channels)
        self.channels = channels
        self.sensors = sensors
        self.n = n
        self.ns = len(sensors)
        z = [0] * n
        self.en = bytearray(n)
        self.hi = array.array("i", z)
        self.lo = array.array("i", z)
        self.hyst = array.array("i", z)
        self.ondelay = array.array("i", [1] * n)
        self.roc = array.array("i", z)
        self.plaus_lo = array.array("i", z)
        self.plaus_hi = array.array("i", z)
        self.sensor_of = bytearray(sensor_of)
        self.stale_us = array.array("i", [ms * 1000 for ms in stale_ms])
        # rule compilation runs once; its module is dropped on small heaps
        from firmware.safety import setup

        setup.compile_rules(self, rules)
        setup.init_votes(self, votes, rules)
        self.use_estop = estop
        self.use_readback = readback
        self.grace_us = readback_grace_ms * 1000
        self.startup = startup
        # whether a gateway's trip command is honoured (interlock.site_trip)
        self.use_site = site_trip
        # state
        self.on_count = array.array("i", z)
        self.lcnt = array.array("i", z)
        self.chan_causes = bytearray(n)
        self.cprev = bytearray(n)
        self.lastv = array.array("i", z)
        self.lastt = array.array("i", z)
        self.has_last = bytearray(n)
        self.sensor_causes = bytearray(self.ns)
        self.sprev = bytearray(self.ns)
        self.last_fresh = array.array("i", [0] * self.ns)
        self.global_causes = 0
        self.gprev = 0
        self.vote_trips = 0
        self.vprev = 0
        self.tripped = 1
        self.trips = 0
        self.resets = 0
        self.refused = 0
        self._reset_prev = 0
        self._mismatch_since = 0
        self._mismatch = 0
        self._started = 0
        # raised by the command handler (another thread on CPython); a
        # counter, so a raise between this step's read and its write is
        # seen by the next step rather than lost
        self.site_req = 0
        self._site_seen = 0
        # event ring: kind, slot, global mask, then sensor and channel masks
        self.ev_kind = bytearray(_EV_CAP)
        self.ev_slot = array.array("i", [0] * _EV_CAP)
        self.ev_g = bytearray(_EV_CAP)
        self.ev_v = array.array("i", [0] * _EV_CAP)
        self.ev_s = bytearray(_EV_CAP * max(1, self.ns))
        self.ev_c = bytearray(_EV_CAP * max(1, n))
        self.ev_head = 0
        self.ev_count = 0
        self.ev_dropped = 0
        self.slot = 0

    @classmethod
    def from_sections(cls, sensors, interlock, startup="manual"):
        """From the config's ``sensors`` list, its ``interlock`` section
        and its ``startup`` mode, checked."""
        from firmware.safety import setup

        return setup.from_sections(cls, sensors, interlock, startup)

    # ------------------------------------------------------------------
    def step(self, now, values, status, estop, reset, readback, deadline, stall, inference):
        """One evaluation. ``now``: ticks_us; ``values``: channel values in
        thousandths; ``status[s]``: _NO_DATA / _FRESH / _BUS_ERROR per sensor;
        the rest are 0/1 levels or flags. Returns the permit (0 or 1)."""
        if not self._started:
            self._started = 1
            for s in range(self.ns):
                self.last_fresh[s] = now
            if self.startup != "manual":
                self.tripped = 0
        # sensors
        s = 0
        while s < self.ns:
            st = status[s]
            act = 0
            if st == 1:
                self.last_fresh[s] = now
            elif st == 2:
                act = _S_BUS
            if ticks_diff(now, self.last_fresh[s]) > self.stale_us[s]:
                act |= _S_STALE
            self.sensor_causes[s] = act
            s += 1
        # channels: rules advance only on a fresh sample
        i = 0
        while i < self.n:
            en = self.en[i]
            if en and status[self.sensor_of[i]] == 1:
                self.chan_causes[i] = self._channel(i, en, values[i], now)
            i += 1
        # global
        g = 0
        if self.use_estop and estop:
            g |= _G_ESTOP
        if deadline:
            g |= _G_DEADLINE
        if stall:
            g |= _G_STALL
        if inference:
            g |= _G_INFERENCE
        r = self.site_req
        if r != self._site_seen:
            self._site_seen = r
            g |= _G_SITE
        if self.use_readback:
            commanded = 0 if self.tripped else 1
            if readback != commanded:
                if not self._mismatch:
                    self._mismatch = 1
                    self._mismatch_since = now
                elif ticks_diff(now, self._mismatch_since) >= self.grace_us:
                    g |= _G_READBACK
            else:
                self._mismatch = 0
        self.global_causes = g
        # voting groups
        v = 0
        k = 0
        while k < self.n_votes:
            votes = 0
            m = self.vote_start[k]
            while m < self.vote_start[k + 1]:
                i = self.vote_members[m]
                if self.chan_causes[i] or self.sensor_causes[self.sensor_of[i]]:
                    votes += 1
                m += 1
            if votes >= self.vote_need[k]:
                v |= 1 << k
            k += 1
        self.vote_trips = v
        # decision
        active = g | v
        new = (g & ~self.gprev) | (v & ~self.vprev)
        i = 0
        while i < self.n:
            if not self.voted[i]:
                c = self.chan_causes[i]
                active |= c
                new |= c & ~self.cprev[i]
            i += 1
        s = 0
        while s < self.ns:
            if not self.svoted[s]:
                c = self.sensor_causes[s]
                active |= c
                new |= c & ~self.sprev[s]
            s += 1
        edge = reset and not self._reset_prev
        self._reset_prev = 1 if reset else 0
        if self.tripped and edge:
            if active:
                self.refused += 1
                self._event(_EV_RESET_REFUSED)
            else:
                self.tripped = 0
                self.resets += 1
                # the relay is now commanded on: its contact gets its grace
                self._mismatch = 0
                self._event(_EV_RESET)
        if active and not self.tripped:
            self.tripped = 1
            self.trips += 1
            self._event(_EV_TRIP)
        elif new and self.tripped:
            self._event(_EV_CAUSE)
        self.gprev = g
        self.vprev = v
        i = 0
        while i < self.n:
            self.cprev[i] = self.chan_causes[i]
            i += 1
        s = 0
        while s < self.ns:
            self.sprev[s] = self.sensor_causes[s]
            s += 1
        return 0 if self.tripped else 1

    def _channel(self, i, en, v, now):
        act = self.chan_causes[i]
        if en & _EN_HIGH:
            if v > self.hi[i]:
                c = self.on_count[i] + 1
                if c >= self.ondelay[i]:
                    act |= _C_HIGH
                    c = self.ondelay[i]
                self.on_count[i] = c
            else:
                self.on_count[i] = 0
                if v <= self.hi[i] - self.hyst[i]:
                    act &= ~_C_HIGH
        if en & _EN_LOW:
            if v < self.lo[i]:
                c = self.lcnt[i] + 1
                if c >= self.ondelay[i]:
                    act |= _C_LOW
                    c = self.ondelay[i]
                self.lcnt[i] = c
            else:
                self.lcnt[i] = 0
                if v >= self.lo[i] + self.hyst[i]:
                    act &= ~_C_LOW
        if en & _EN_PLAUS:
            if v < self.plaus_lo[i] or v > self.plaus_hi[i]:
                act |= _C_IMPLAUSIBLE
            else:
                act &= ~_C_IMPLAUSIBLE
        if en & _EN_ROC:
            if self.has_last[i]:
                dt = ticks_diff(now, self.lastt[i])
                dv = v - self.lastv[i]
                if dv < 0:
                    dv = -dv
                # |dv|/dt > roc, without division: both in thousandths, dt in us
                if dt > 0 and dv * 1000000 > self.roc[i] * dt:
                    act |= _C_ROC
                else:
                    act &= ~_C_ROC
            self.has_last[i] = 1
            self.lastv[i] = v
            self.lastt[i] = now
        return act

    def _event(self, kind):
        if self.ev_count >= _EV_CAP:
            self.ev_dropped += 1
            return
        k = (self.ev_head + self.ev_count) % _EV_CAP
        self.ev_kind[k] = kind
        self.ev_slot[k] = self.slot
        self.ev_g[k] = self.global_causes
        self.ev_v[k] = self.vote_trips
        base = k * self.ns
        s = 0
        while s < self.ns:
            self.ev_s[base + s] = self.sensor_causes[s]
            s += 1
        base = k * self.n
        i = 0
        while i < self.n:
            self.ev_c[base + i] = self.chan_causes[i]
            i += 1
        self.ev_count += 1

    # ------------------------------------------------------------------
    # Outside the safety path (they allocate): firmware/safety/diag.py, loaded on
    # the first event.
    def active_causes(self):
        """(code, name) of the causes active now."""
        from firmware.safety import diag

        return diag.names(self, self.global_causes, self.vote_trips, self.sensor_causes, 0, self.chan_causes, 0)

    def pop_events(self):
        """Drain the event ring: a list of (kind name, slot, [(code, cause)])."""
        from firmware.safety import diag

        return diag.pop_events(self)
