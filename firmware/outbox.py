"""The reading side of the journal: batches for the uplink, records and
statistics. Kept apart so a device that only records never loads it;
``Journal.read_batch``, ``records``, ``stats`` and ``pending`` call here."""

from firmware import cbor
from firmware.journal import PRIORITIES, scan


def _frames(j, seg):
    c = j._cache
    if c[0] == seg.path and c[1] == seg.size:
        return c[2]
    for f in j._f.values():
        f.flush()
    with open(seg.path, "rb") as f:
        data = f.read()
    frames = [(seq, created, payload) for _o, seq, created, payload in scan(data)]
    j._cache = (seg.path, seg.size, frames)
    return frames


def read_batch(j, max_records, max_bytes, after=None):
    """Records after the ack cursor, or after ``after[q]`` (what is already
    in flight) when that is further on."""
    now = j.now()
    for q in PRIORITIES:
        ttl = j.ttl_s.get(q)
        floor = j._acked[q]
        if after and after.get(q, 0) > floor:
            floor = after[q]
        acked = floor
        out = []
        nbytes = 0
        skipped_to = 0
        full = False
        for seg in j._segs[q]:
            if seg.last <= acked:
                continue
            for seq, created, payload in _frames(j, seg):
                if seq <= acked:
                    continue
                if seq > j.synced_seq:
                    # not yet synced: a power cut could still take it back
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
                if out and (len(out) >= max_records or nbytes + len(payload) > max_bytes):
                    full = True
                    break
                out.append((seq, payload))
                nbytes += len(payload)
            if full:
                break
        if skipped_to and floor == j._acked[q]:
            # nothing in flight before them: the expired records are done
            j.ack(q, skipped_to)
        if out:
            return q, out
    return None, []


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
        for seg in j._segs[qq]:
            if seg.first > acked:
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
        "dropped_cap": j.dropped_cap,
        "dropped_ttl": j.dropped_ttl,
        "refused": j.refused,
        "lost_io": j.lost_io,
        "unsynced": len(j._pend),
        "corrupt_skipped": j.corrupt_skipped,
        "recovered_bytes": j.recovered_bytes,
    }
