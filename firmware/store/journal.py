"""The store: a segmented, bounded, power-safe journal of records.

    j = Journal("edgefw-journal", durability="group", cap_bytes=4 << 20)
    seq = j.append({"k": "trip", "t": 8000000}, PRIO_EVENT)
    q, batch = j.read_batch(max_records=100, max_bytes=65536)   # events first
    ...publish, wait for the broker's PUBACK...
    j.ack(q, batch[-1][0])          # only now may those records go

Layout: one directory, a sub-directory per priority (``q0`` events, ``q1``
telemetry), each holding segment files named by their first sequence
number and an ``ack`` file with the last acknowledged sequence number.
The frame is described in firmware/store/format.py.

Power loss: opening scans every segment. A torn tail of the newest segment
is truncated (``recovered_bytes``); a damaged frame elsewhere is skipped up
to the next frame whose CRC holds, and counted (``corrupt_skipped``),
never delivered. The ack file is replaced atomically (write, sync,
rename). A record is deleted only when its whole segment is acknowledged.

Durability (``durability``): ``fsync`` writes and syncs every record.
``group`` writes and syncs records together every ``group_records``
records or ``group_ms`` milliseconds, whichever comes first (``tick``
checks the clock; the loop calls it every cycle). CPython holds the group
in memory (firmware/store/group.py writes it: one write per run, one
sync), so a crash or a power cut loses at most that group, and a write
that fails takes the rest of its group with it, counted in ``lost_io``;
MicroPython writes each record at once and syncs per group (a held group
could take more heap than a small device has). ``none`` writes every
record at once and leaves syncing to the OS. Readers stop at
``synced_seq``, the newest record whose sync has returned: with ``fsync``
and ``group`` nothing is sent that a power cut could take back (its
sequence number would otherwise be given to the next record). On the MicroPython
unix port a sync is a ``flush`` (there is no ``os.fsync``): data survive a
killed process, not a power cut. On a LittleFS flash filesystem ``flush``
commits the file, which is what makes it power-safe there.

Bounds: ``cap_bytes`` over all segments. When a record does not fit,
``full_policy`` ``drop_oldest`` deletes the oldest segment of the lowest
priority (telemetry before events) and counts its unacknowledged records
in ``dropped_cap``; ``pause`` refuses the new record and counts it in
``refused``. ``ttl_s`` (per priority, seconds or None) drops records
older than that before they are sent, counted in ``dropped_ttl``.
"""

import os
import time

from firmware import cbor
from firmware.store.format import PRIO_EVENT, PRIO_TELEMETRY, PRIORITIES, Segment, frame  # noqa: F401 (PRIO_EVENT, frame: the journal's API)
from hal.clock import ticks_diff, ticks_ms
from hal.compat import IS_MICROPYTHON, fsync
from hal.errors import JournalError


class _NoLock:
    """Stands in for a lock while one thread owns the journal."""

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


_NOLOCK = _NoLock()
DURABILITY = ("none", "group", "fsync")
FULL_POLICIES = ("drop_oldest", "pause")


def _wall_s():
    return int(time.time())


class Journal:
    def __init__(
        self,
        path,
        durability="none",
        segment_bytes=1 << 20,
        cap_bytes=64 << 20,
        full_policy="drop_oldest",
        ttl_s=None,
        group_records=64,
        group_ms=200,
        now=_wall_s,
    ):
        if durability not in DURABILITY:
            raise JournalError("journal durability must be one of %s, got %r" % (", ".join(DURABILITY), durability))
        if full_policy not in FULL_POLICIES:
            raise JournalError("journal full_policy must be one of %s, got %r" % (", ".join(FULL_POLICIES), full_policy))
        if segment_bytes > cap_bytes:
            raise JournalError("journal segment_bytes (%d) must not exceed cap_bytes (%d)" % (segment_bytes, cap_bytes))
        self.path = path
        self.durability = durability
        self.segment_bytes = segment_bytes
        self.cap_bytes = cap_bytes
        self.full_policy = full_policy
        self.ttl_s = ttl_s or {}
        self.group_records = group_records
        self.group_ms = group_ms
        self.now = now
        self.next_seq = 1
        self.recovered_bytes = 0
        self.corrupt_skipped = 0
        self.dropped_cap = 0
        self.dropped_ttl = 0
        self.refused = 0
        self.ack_repaired = 0
        self.appended = 0
        self._segs = {}
        self._acked = {}
        # queue -> [start, acked]: records from start on go first (outbox.py)
        self._live = {}
        self._f = {}
        self._unsynced = 0
        self._pend = []
        self._pend_bytes = 0
        # CPython holds a group in memory; a small heap writes at once
        self._hold = durability == "group" and not IS_MICROPYTHON
        self.lost_io = 0
        self._last_sync = ticks_ms()
        self._cache = {}  # segment path -> (size, frames): outbox.py
        self._size_hint = 0
        # taken around every append, read and acknowledgement; a real lock
        # once a second thread shares the journal (firmware.linux.forwarder)
        self.lock = _NOLOCK
        # recovery runs once; its module is dropped on small heaps
        from firmware.store import recovery

        recovery.makedirs(path)
        self._ack_file = {}
        for q in PRIORITIES:
            recovery.open_queue(self, q)
        recovery.check_acks(self)
        self._size_hint = self.size
        # the newest record whose sync has returned (open synced what it
        # kept): readers stop there
        self.synced_seq = self.next_seq - 1

    # --- opening ------------------------------------------------------------
    def _qdir(self, q):
        return self.path + "/q%d" % q

    # --- appending ------------------------------------------------------------
    @property
    def size(self):
        return sum(s.size for q in PRIORITIES for s in self._segs[q])

    def _fits(self, need):
        # the common case without walking the segments
        if self._size_hint + need <= self.cap_bytes:
            return True
        self._size_hint = self.size + self._pend_bytes
        return self._size_hint + need <= self.cap_bytes

    @property
    def count(self):
        return sum(s.n for q in PRIORITIES for s in self._segs[q])

    def pending(self, q=None):
        """Records not yet acknowledged."""
        from firmware.store import outbox

        return outbox.pending(self, q)

    def append(self, record, priority=PRIO_TELEMETRY, ordered=False):
        """Assign the next sequence number, append, and return it; 0 when
        the journal is full and the policy is ``pause``. ``ordered``: the
        caller built ``record`` in canonical CBOR form (every map's keys in
        canonical order, "seq" falling last, no floats), so the CPython
        encoder need not check it (see cbor.dumps_ordered)."""
        seq = self.next_seq
        record["seq"] = seq
        fr = frame(seq, cbor.dumps_ordered(record) if ordered else cbor.dumps(record), self.now())
        n = len(fr)
        if n > self.segment_bytes:
            raise JournalError("record of %d bytes exceeds segment_bytes %d" % (n, self.segment_bytes))
        if not self._fits(n) and not self._make_room(n):
            self.refused += 1
            del record["seq"]
            return 0
        self.appended += 1
        if self._hold:
            # held until the group is written and synced together: one
            # write per run of a queue and one sync per group
            self._pend.append((priority, seq, fr))
            self._pend_bytes += n
            self._size_hint += n
            self.next_seq = seq + 1
            self._unsynced += 1
            self.tick()
            return seq
        f = self._write_frame(priority, seq, fr)
        self._unsynced += 1
        if self.durability == "fsync":
            fsync(f)
            self._unsynced = 0
            self.synced_seq = seq
        elif self.durability == "group":
            self.tick()
        else:
            self.synced_seq = seq
        return seq

    def _write_frame(self, q, seq, fr):
        """Write one frame to queue ``q``'s current segment (rolling to a new
        one when full). Returns the file it went to."""
        segs = self._segs[q]
        if not segs or segs[-1].size + len(fr) > self.segment_bytes:
            self._roll(q, seq)
        f = self._write(q, fr, 1, seq)
        self._size_hint += len(fr)
        self.next_seq = seq + 1
        return f

    def _write(self, q, data, n_frames, last_seq):
        """Append ``data`` (whole frames) to queue ``q``'s current segment."""
        seg = self._segs[q][-1]
        f = self._f.get(q)
        if f is None:
            # unbuffered: a full disk fails this write, not a later flush
            f = self._f[q] = open(seg.path, "ab", 0)
        try:
            n = f.write(data)
            if n is not None and n != len(data):
                raise OSError(28, "short write (%d of %d bytes)" % (n, len(data)))
        except OSError as e:
            # ENOSPC or EFBIG: cut back to before this write (all of its
            # frames go, even whole ones: they are counted lost), keep going
            self._f.pop(q).close()
            from firmware.store import recovery

            recovery.cut_back(seg)
            raise JournalError("journal write failed (%s); the record was not stored" % (e,))
        seg.size += len(data)
        seg.n += n_frames
        seg.last = last_seq
        return f

    def _commit(self):
        # CPython only: MicroPython never holds records
        from firmware.store import group

        group.commit(self)

    def tick(self):
        """Group commit: write and sync when enough records or time have
        gathered. Call it now and then (the loop does, every cycle)."""
        if self._unsynced and (self._unsynced >= self.group_records or ticks_diff(ticks_ms(), self._last_sync) >= self.group_ms):
            if self._pend:
                self._commit()
            else:
                self._sync()

    def _sync(self):
        for f in self._f.values():
            fsync(f)
        self.synced_seq = self.next_seq - 1
        self._unsynced = 0
        self._last_sync = ticks_ms()

    def _roll(self, q, first_seq):
        f = self._f.pop(q, None)
        if f is not None:
            fsync(f)
            f.close()
        p = self._qdir(q) + "/%016d.seg" % first_seq
        self._segs[q].append(Segment(first_seq, p))
        with open(p, "wb"):
            pass

    def _make_room(self, need):
        # only when full: its code stays off the heap until then
        from firmware.store.scan import make_room

        return make_room(self, need)

    def _delete(self, q, seg):
        if self._segs[q] and self._segs[q][-1] is seg:
            f = self._f.pop(q, None)
            if f is not None:
                f.close()
        self._segs[q].remove(seg)
        self._cache.pop(seg.path, None)
        try:
            os.remove(seg.path)
        except OSError:
            pass

    # --- reading and acknowledging: firmware/store/outbox.py, loaded when used ---
    def read_batch(self, max_records=100, max_bytes=65536):
        """The oldest unacknowledged records of the most urgent queue:
        (queue, [(seq, payload), ...]); (None, []) when all is sent.
        Expired records are skipped (and acknowledged away)."""
        from firmware.store import outbox

        return outbox.read_batch(self, max_records, max_bytes)

    def read_batch_after(self, after, max_records=100, max_bytes=65536):
        """Like ``read_batch``, skipping what ``after`` (queue -> seq) says
        is already in flight."""
        from firmware.store import outbox

        return outbox.read_batch(self, max_records, max_bytes, after)

    def ack(self, q, seq):
        """The broker has every record of queue ``q`` up to ``seq`` (of the
        range ``seq`` is in, when live records go first: outbox.py)."""
        if q in self._live:
            from firmware.store import outbox

            return outbox.ack_live(self, q, seq)
        if seq <= self._acked[q]:
            return
        self._write_ack(q, seq)
        self._gc(q)

    def _write_ack(self, q, seq):
        d = self._qdir(q)
        tmp = d + "/ack.tmp"
        live = self._live.get(q)
        with open(tmp, "w") as f:
            # "acked" or, while live records go first, "acked start live_acked"
            f.write("%d\n" % seq if live is None else "%d %d %d\n" % (seq, live[0], live[1]))
            fsync(f)
        os.rename(tmp, d + "/ack")
        self._acked[q] = seq

    def acked(self, q):
        return self._acked[q]

    def _gc(self, q):
        segs = self._segs[q]
        # every segment wholly acknowledged goes, except the one being written
        live = self._live.get(q)
        for seg in list(segs[:-1]):
            if seg.last <= self._acked[q] or (live is not None and live[0] <= seg.first and seg.last <= live[1]):
                self._delete(q, seg)

    def records(self, q=None):
        """(seq, record) for every intact record on disk, oldest first per
        queue, acknowledged or not."""
        from firmware.store import outbox

        return outbox.records(self, q)

    def stats(self):
        from firmware.store import outbox

        return outbox.stats(self)

    def flush(self):
        if self._pend:
            self._commit()
        else:
            self._sync()

    def close(self):
        if self._pend:
            self._commit()
        if self._f:
            self._sync()
            for f in self._f.values():
                f.close()
            self._f = {}
