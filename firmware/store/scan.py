"""The journal's less frequent work: reading frames back out of a segment
(recovery at open in firmware/store/recovery.py, the uplink's reads in
firmware/store/outbox.py) and making room when the journal is full. Apart from
firmware/store/journal.py so that a device that only appends does not keep this
code on its heap.
"""

import binascii
import struct

from firmware.store.format import HDR, MAX_RECORD, PRIO_EVENT, PRIO_TELEMETRY


def _crc(frame_wo_crc_head, rest):
    return binascii.crc32(rest, binascii.crc32(frame_wo_crc_head)) & 0xFFFFFFFF


def _frame_at(data, i, n):
    """The frame at offset i as (length, seq, created), or None."""
    if i + HDR > n:
        return None
    length, crc, seq, created = struct.unpack("<IIQI", data[i : i + HDR])
    if length > MAX_RECORD or i + HDR + length > n:
        return None
    if _crc(data[i : i + 4], data[i + 8 : i + HDR + length]) != crc:
        return None
    return length, seq, created


def _frames_of(frame_at, n, stats, i=0):
    """Yield (offset, length, seq, created) for every intact frame of ``n``
    bytes from offset ``i`` (a frame boundary), ``frame_at(i)`` reading
    one. A damaged region is skipped up to the next intact frame; its size
    goes to ``stats["skipped"]``, and ``stats["end"]`` is where the last
    intact frame ends (anything after it is a torn tail)."""
    end = i
    skipped = 0
    while i + HDR <= n:
        f = frame_at(i)
        if f is None:
            # resynchronise: the next offset where a whole frame checks out
            j = i + 1
            while j + HDR <= n and frame_at(j) is None:
                j += 1
            if j + HDR > n:
                break
            skipped += j - i
            i = j
            continue
        yield i, f[0], f[1], f[2]
        i += HDR + f[0]
        end = i
    if stats is not None:
        stats["skipped"] = skipped
        stats["end"] = end


def scan(data, stats=None):
    """Yield (offset, seq, created, payload) for every intact frame of a
    segment's bytes (see ``_frames_of``)."""
    n = len(data)
    mv = memoryview(data)
    unpack = struct.unpack_from
    crc32 = binascii.crc32
    i = 0
    # the common case, every frame whole, in one loop: the uplink reads
    # each record through here, and a call per frame and per check cost
    # more than the checks
    while i + HDR <= n:
        length, crc, seq, created = unpack("<IIQI", data, i)
        end = i + HDR + length
        if length > MAX_RECORD or end > n or crc32(mv[i + 8 : end], crc32(mv[i : i + 4])) & 0xFFFFFFFF != crc:
            break
        yield i, seq, created, data[i + HDR : end]
        i = end
    else:
        if stats is not None:
            stats["skipped"] = 0
            stats["end"] = i
        return
    # a damaged or torn frame at i: from there, frame by frame with resync
    for k, length, seq, created in _frames_of(lambda k: _frame_at(data, k, n), n, stats, i):
        yield k, seq, created, data[k + HDR : k + HDR + length]


def _frame_in(fh, i, size, hdr, chunk):
    """The frame at offset i of an open file, as (length, seq, created),
    or None; read through two small buffers, never the whole frame."""
    if i + HDR > size:
        return None
    fh.seek(i)
    if fh.readinto(hdr) != HDR:
        return None
    length, crc, seq, created = struct.unpack("<IIQI", hdr)
    if length > MAX_RECORD or i + HDR + length > size:
        return None
    c = binascii.crc32(memoryview(hdr)[8:], binascii.crc32(memoryview(hdr)[:4]))
    left = length
    while left:
        n = fh.readinto(chunk) if left >= len(chunk) else fh.readinto(memoryview(chunk)[:left])
        if not n:
            return None
        c = binascii.crc32(memoryview(chunk)[:n], c)
        left -= n
    if c & 0xFFFFFFFF != crc:
        return None
    return length, seq, created


def scan_file(fh, size, stats=None):
    """``scan`` over an open segment file without reading it whole (a
    small heap cannot hold a segment): yields (offset, seq, created)."""
    hdr = bytearray(HDR)
    chunk = bytearray(256)
    for i, _length, seq, created in _frames_of(lambda i: _frame_in(fh, i, size, hdr, chunk), size, stats):
        yield i, seq, created


def file_size(path):
    import os

    return os.stat(path)[6]


def count_after(seg, acked):
    with open(seg.path, "rb") as f:
        return sum(1 for _o, seq, _c in scan_file(f, file_size(seg.path)) if seq > acked)


def make_room(j, need):
    """Drop the oldest records (telemetry first) until ``need`` bytes fit,
    counting the unacknowledged ones; False under the pause policy."""
    total = j.size + j._pend_bytes
    while total + need > j.cap_bytes:
        if j.full_policy == "pause":
            return False
        victim = None
        for q in (PRIO_TELEMETRY, PRIO_EVENT):
            if j._segs[q]:
                victim = q
                break
        if victim is None:
            return False
        drop_oldest(j, victim)
        total = j.size + j._pend_bytes
    j._size_hint = total
    return True


def drop_oldest(j, q):
    """Delete queue ``q``'s oldest segment, counting its unacknowledged
    records in ``dropped_cap``; the cursor moves past it."""
    seg = j._segs[q][0]
    if seg.first > j._acked[q]:
        unacked = seg.n
    else:
        unacked = count_after(seg, j._acked[q])
    j.dropped_cap += unacked
    j._delete(q, seg)
    if seg.last > j._acked[q]:
        j._write_ack(q, seg.last)
