"""The record stage: aggregate readings per window, journal the events.

Outside the safety path; it may allocate, but only once per window or
event, never per cycle. Record shapes (CBOR maps; values in thousandths of
the channel's unit) are documented in docs/records.md.
"""

import array

from firmware.store.journal import PRIO_EVENT, PRIO_TELEMETRY


class Recorder:
    def __init__(self, journal, channels, sensor_of, period_us, window_us):
        self.journal = journal
        self.channels = channels
        self.sensor_of = sensor_of
        self.period_us = period_us
        self.window_slots = max(1, window_us // period_us)
        n = len(channels)
        self.counts = array.array("i", [0] * n)
        self.mins = array.array("i", [0] * n)
        self.maxs = array.array("i", [0] * n)
        self.sums = array.array("q", [0] * n)
        # channels in CBOR's canonical key order (length, then bytes): the
        # encoder then has nothing to sort
        self.order = sorted(range(n), key=lambda i: (len(channels[i]), channels[i]))
        self.win_start = 0
        self.appended = 0
        self.lost = 0
        self.reported = 0
        self.last_error = None

    def sample(self, slot, values, status):
        if slot - self.win_start >= self.window_slots:
            self.close_window(slot)
        i = 0
        n = len(self.channels)
        while i < n:
            if status[self.sensor_of[i]] == 1:
                v = values[i]
                if self.counts[i] == 0 or v < self.mins[i]:
                    self.mins[i] = v
                if self.counts[i] == 0 or v > self.maxs[i]:
                    self.maxs[i] = v
                self.counts[i] += 1
                self.sums[i] += v
            i += 1

    def n_samples(self):
        return sum(self.counts)

    def close_window(self, slot):
        ch = {}
        for i in self.order:
            k = self.counts[i]
            if k:
                ch[self.channels[i]] = [k, self.mins[i], self.sums[i] // k, self.maxs[i]]
            self.counts[i] = 0
            self.sums[i] = 0
        rec = {"k": "win", "t": self.win_start * self.period_us, "ch": ch, "dt": (slot - self.win_start) * self.period_us}
        self.win_start = slot
        self._append(rec, PRIO_TELEMETRY, True)
        j = self.journal
        if j is not None and j.dropped_cap + j.dropped_ttl + j.refused + j.lost_io + self.lost != self.reported:
            # losses so far, as an event: the receiver learns of them too
            self.reported = j.dropped_cap + j.dropped_ttl + j.refused + j.lost_io + self.lost
            rec = {"k": "loss", "t": rec["t"], "cap": j.dropped_cap, "ttl": j.dropped_ttl, "refused": j.refused, "io": j.lost_io, "unstored": self.lost}
            self._append(rec, PRIO_EVENT)

    def event(self, kind, slot, causes):
        rec = {"k": kind, "t": slot * self.period_us, "causes": [[c, name] for c, name in causes]}
        self._append(rec, PRIO_EVENT)
        return rec

    def _append(self, rec, prio, ordered=False):
        # the record is not kept here once journaled: a window's map would
        # stay on the heap until the next one
        if self.journal is not None:
            try:
                with self.journal.lock:
                    seq = self.journal.append(rec, prio, ordered)
                if seq:
                    self.appended += 1
            except OSError as e:
                # a full or failing disk must not stop the safety loop:
                # the record is lost and counted
                self.lost += 1
                self.last_error = str(e)
        else:
            self.appended += 1
