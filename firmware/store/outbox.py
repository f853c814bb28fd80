"""The reading side of the journal: batches for the uplink, records and
statistics. Kept apart so a device that only records never loads it;
``Journal.read_batch``, ``records``, ``stats`` and ``pending`` call here."""

from firmware import cbor
from firmware.store.format import PRIORITIES
from firmware.store.scan import scan
from hal.compat import IS_MICROPYTHON

# segments whose frames are kept (the newest of each queue, mostly); one
# on a small heap
_KEEP = 1 if IS_MICROPYTHON else 4


def _frames(j, seg):
    """The segment's frames as (seq, created, payload). The newest segment
    grows while it is read: only what was written since the last read is
    read and checked, so a read under the journal's lock stays short."""
    c = j._cache.get(seg.path)
    if c is not None and c[0] == seg.size:
        return c[1]
    for f in j._f.values():
        f.flush()
    start, frames = 0, []
    if c is not None and c[0] < seg.size:
        # whole frames only are ever appended: c[0] is a frame boundary
        start, frames = c
    with open(seg.path, "rb") as f:
        if start:
            f.seek(start)
        data = f.read(seg.size - start)
    frames.extend((seq, created, payload) for _o, seq, created, payload in scan(data))
    if c is None and len(j._cache) >= _KEEP:
        del j._cache[next(iter(j._cache))]
    j._cache[seg.path] = (seg.size, frames)
    return frames


def live_lane(q):
    """The key, in a reader's in-flight map, of queue ``q``'s live range
    (``q`` itself is its backlog's)."""
    return q + len(PRIORITIES)


def read_batch(j, max_records, max_bytes, after=None):
    """Records after the ack cursor, or after ``after[q]`` (what is already
    in flight) when that is further on. While a queue has a live range
    (``start_live``), its records from ``start`` on go before the backlog;
    ``after[live_lane(q)]`` is what of them is in flight."""
    after = after or {}
    for q in PRIORITIES:
        live = j._live.get(q)
        if live is not None:
            out = _collect(j, q, live[1], after.get(live_lane(q), 0), None, max_records, max_bytes)
            if out:
                return q, out
            out = _collect(j, q, j._acked[q], after.get(q, 0), live[0], max_records, max_bytes)
        else:
            out = _collect(j, q, j._acked[q], max(after.get(q, 0), after.get(live_lane(q), 0)), None, max_records, max_bytes)
        if out:
            return q, out
    return None, []


def _first_after(frames, floor):
    """Index of the first frame whose seq is past ``floor`` (frames are in
    seq order): a batch read starts there instead of walking the segment."""
    lo, hi = 0, len(frames)
    while lo < hi:
        mid = (lo + hi) // 2
        if frames[mid][0] <= floor:
            lo = mid + 1
        else:
            hi = mid
    return lo


def _collect(j, q, acked, in_flight, below, max_records, max_bytes):
    """Synced records of queue ``q`` after the range's cursor ``acked`` and
    what is ``in_flight`` (and before ``below``)."""
    floor = max(acked, in_flight)
    now = j.now()
    ttl = j.ttl_s.get(q)
    # the last record this read may take: synced (a power cut cannot take
    # it back), and before the live range when reading the backlog
    stop = j.synced_seq if below is None else min(j.synced_seq, below - 1)
    out = []
    n = 0
    nbytes = 0
    skipped_to = 0
    full = False
    for seg in j._segs[q]:
        if seg.last <= floor:
            continue
        frames = _frames(j, seg)
        k = _first_after(frames, floor)
        end = len(frames)
        while k < end:
            seq, created, payload = frames[k]
            k += 1
            if seq > stop:
                full = True
                break
            if ttl is not None and now - created > ttl:
                if not out:
                    skipped_to = seq
                    j.dropped_ttl += 1
                    continue
                # an expired record after live ones: the next batch
                # starts with it and skips it
                full = True
                break
            size = len(payload)
            if n and (n >= max_records or nbytes + size > max_bytes):
                full = True
                break
            out.append((seq, payload))
            n += 1
            nbytes += size
        if full:
            break
    if skipped_to and floor == acked:
        # nothing in flight before them: the expired records are done
        j.ack(q, skipped_to)
    return out


def start_live(j):
    """Live before backlog: for every queue with records waiting, the
    records appended from now on are sent before that backlog (Azure IoT
    Edge users asked for this: iotedge #2486). Each range keeps its own
    cursor; when the backlog catches up, the two become one again."""
    for q in PRIORITIES:
        if q not in j._live and pending(j, q):
            j._live[q] = [j.next_seq, j.next_seq - 1]
            j._write_ack(q, j._acked[q])


def ack_live(j, q, seq):
    start, hi = j._live[q]
    lo = j._acked[q]
    if seq >= start:
        j._live[q][1] = max(hi, seq)
    elif seq > lo:
        lo = seq
    if not _backlog_left(j, q, lo, start):
        # the backlog has caught up: one range again
        lo = max(lo, j._live[q][1])
        del j._live[q]
    j._write_ack(q, lo)
    j._gc(q)


def _backlog_left(j, q, lo, start):
    # sequence numbers are per device, not per queue: the backlog is done
    # when no record of this queue lies between the cursor and the start
    for seg in j._segs[q]:
        if seg.last > lo and seg.first < start:
            for s, _c, _p in _frames(j, seg):
                if lo < s < start:
                    return True
    return False


def records(j, q=None):
    for f in j._f.values():
        f.flush()
    qs = PRIORITIES if q is None else (q,)
    for qq in qs:
        for seg in list(j._segs[qq]):
            with open(seg.path, "rb") as fh:
                data = fh.read()
            for _o, seq, _c, payload in scan(data):
                yield seq, cbor.loads(payload)


def pending(j, q=None):
    qs = PRIORITIES if q is None else (q,)
    n = 0
    for qq in qs:
        acked = j._acked[qq]
        live = j._live.get(qq)
        for seg in j._segs[qq]:
            if live is not None:
                n += sum(1 for s, _c, _p in _frames(j, seg) if s > acked and not live[0] <= s <= live[1])
            elif seg.first > acked:
                n += seg.n
            elif seg.last > acked:
                n += sum(1 for s, _c, _p in _frames(j, seg) if s > acked)
    return n


def stats(j):
    return {
        "records": j.count,
        "bytes": j.size,
        "pending": pending(j),
        "next_seq": j.next_seq,
        "acked": [j._acked[q] for q in PRIORITIES],
        "live": [j._live.get(q) for q in PRIORITIES],
        "dropped_cap": j.dropped_cap,
        "dropped_ttl": j.dropped_ttl,
        "refused": j.refused,
        "lost_io": j.lost_io,
        "unsynced": len(j._pend),
        "corrupt_skipped": j.corrupt_skipped,
        "recovered_bytes": j.recovered_bytes,
        "ack_repaired": j.ack_repaired,
    }
