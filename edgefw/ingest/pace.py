"""Pacing a fleet's backlog from the receiving end.

A fleet back from an outage offers its backlogs faster than the database
commits them. Left alone, the excess waits in the broker: every batch's
receipt then comes after all the batches queued before it, seconds
later, and the queue holds copies a device already has in its journal.
Instead, ingest admits batches at the rate it commits them and tells
each device, in the receipt (``hold``, ms), when its next batch is due:
the backlog waits on the devices, where it is durable anyway, and a
batch that is sent is receipted in well under a second.

The schedule: each batch that arrives books the next slot for its
device's next batch (as large as batches have lately been), slots
``size / rate`` apart; the hold is how far ahead that slot is. While
batches come slower than ``rate``, slots are free and holds are zero.

The rate follows what is committed and the delay batches see: the time
in ingest (arrival to receipt) plus the time in the broker, which is the
batch's arrival less its device's send time (its ``utc_ms``) less the
least such gap that device has shown (its clock offset and the path's
own time), as LEDBAT measures one-way delay. Every half second: over
the target, the rate is set under what was committed meanwhile, by
enough to work off the excess in about two seconds, but falls at most
15 % a step (what is booked arrives only when its holds end, seconds
later: cuts made before the first shows would compound); under half the
target while holds are being given, it rises 5 % a step while far under
what ingest has shown it can do, then 2 %, up to 5 % past it. What
ingest can do is its commit rate while a queue stood (averaged), or
more when it did what was booked with no queue. A half second of mostly
devices' first batches (a fleet starting together, paced by nothing
yet) changes neither. A batch smaller than its device's last books no
slot: that device's journal ran dry.
"""

import threading

__all__ = ["Pace"]


class Pace:
    MAX_HOLD_S = 30.0
    RATE = (200.0, 5e6)
    # a device's least send-to-arrival gap creeps up this much per batch,
    # so a clock stepped forward is forgotten in time
    CREEP_S = 0.002
    # the rate is set again this often, from what was committed meanwhile
    EVERY_S = 0.5
    # the most the rate falls in one step; how much it rises in one, far
    # under what ingest has shown it can do and near it
    STEP_DOWN = 0.85
    STEP_UP = (1.05, 1.02)
    # how far past what ingest has shown it can do the rate may go
    PROBE = 1.05
    # the weight of each busy half second in what ingest can do: above
    # it, below it
    CAP_GAIN = (0.5, 0.2)
    # with no queue, the part of what was done past it that it rises by
    CAP_RISE = 0.5

    # the first rate, a worker's, before anything was committed (two
    # workers on a 2-core machine commit 55,000 to 70,000 records/s to
    # PostgreSQL together). A fleet starting together books its first
    # slots at it, seconds ahead (1,000 devices' batches of 200 at 50,000
    # records/s: 4 s), and no later rate moves them: a guess well under
    # what the database takes costs those seconds, one well over it
    # queues batches until they are used up
    def __init__(self, target_s=0.4, rate=25000.0, size=200):
        self.target = target_s
        self.rate = rate
        self.next = 0.0
        # a device's next batch, until batches show otherwise: the
        # uplink's default (a device's first batch after boot is smaller)
        self.size = float(size)
        self.base = {}
        # each device's last batch, in records
        self.last = {}
        self.queued = 0.0
        self.lock = threading.Lock()
        self.held = 0
        self.held_s = 0.0
        self._t0 = None
        self._n = 0
        self._worst = 0.0
        self.cap = 0.0
        # batches in this half second, and how many were a device's first
        # (sent before any hold could reach it)
        self._seen = 0
        self._fresh = 0

    def admit(self, dev, n, utc_ms, now):
        """A batch of ``n`` records from ``dev``, sent at ``utc_ms`` by the
        device's clock, arrived ``now`` (time.time()): the hold, in ms,
        for its receipt."""
        with self.lock:
            if isinstance(utc_ms, int):
                gap = now - utc_ms / 1000.0
                base = self.base.get(dev)
                base = gap if base is None or gap < base else base + self.CREEP_S
                self.base[dev] = base
                if gap - base > self.queued:
                    self.queued = gap - base
            self.size = max(float(n), self.size * 0.999)
            last, self.last[dev] = self.last.get(dev, 0), n
            self._seen += 1
            if not last:
                self._fresh += 1
            if n < last:
                # smaller than its last: the device's journal ran dry,
                # there is no next batch to book a slot for
                return 0
            slot = self.next if self.next > now else now
            self.next = slot + self.size / self.rate
            hold = min(slot - now, self.MAX_HOLD_S)
            if hold < 0.001:
                return 0
            self.held += 1
            self.held_s += hold
            return int(round(hold * 1000))

    def settled(self, now, in_ingest_s, records):
        """A commit's receipts went out: ``records`` committed, the longest
        any of its batches waited in ingest ``in_ingest_s``."""
        with self.lock:
            self._worst = max(self._worst, in_ingest_s + self.queued)
            self.queued = 0.0
            self._n += records
            if self._t0 is None:
                self._t0, self._seen, self._fresh = now, 0, 0
                return
            if now - self._t0 < self.EVERY_S:
                return
            done = self._n / (now - self._t0)
            delay, self._worst, self._n, self._t0 = self._worst, 0.0, 0, now
            fresh, self._seen, self._fresh = self._fresh * 2 > self._seen, 0, 0
            if fresh:
                # mostly devices' first batches, which no schedule paced
                # (a fleet starting together): their queue says nothing of
                # the rate, nor does what was committed of them
                return
            if delay > self.target / 4:
                # a queue formed: what was committed is what ingest can
                # do. Averaged: one half second's burst (a queue worked
                # off at full speed) is not a rate it keeps up; rising
                # faster than falling, as the first busy half seconds
                # (the small first batches after boot) show too little
                g = self.CAP_GAIN[0] if done > self.cap else self.CAP_GAIN[1]
                self.cap = done if not self.cap else (1 - g) * self.cap + g * done
            elif done > self.cap and done > 0.9 * self.rate:
                # what was booked was done, and no queue formed: ingest
                # can do more than was thought, by a part of the
                # difference (one half second's burst is not a rate)
                self.cap = done if not self.cap else self.cap + self.CAP_RISE * (done - self.cap)
            if delay > self.target:
                # under what was committed, by enough to work off the
                # excess in about two seconds; but at most a step at a
                # time: what is booked arrives only when its holds end,
                # seconds later, so cuts made before the first shows
                # would compound
                cut = done * max(0.5, 1 - (delay - self.target / 2) / 2)
                self.rate = max(self.RATE[0], self.rate * self.STEP_DOWN, min(self.rate, cut))
            elif delay < self.target / 2 and self.next > now:
                # slots go unused: more, quickly back towards what ingest
                # has shown it can do, then slowly (what is booked now
                # shows only when its holds end), a little past it: how
                # else would more be found
                up = self.rate * (self.STEP_UP[0] if self.cap and self.rate < 0.9 * self.cap else self.STEP_UP[1])
                if self.cap:
                    up = min(up, self.PROBE * self.cap)
                self.rate = min(self.RATE[1], max(self.rate, up))
