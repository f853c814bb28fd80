"""The journal's less frequent work: reading frames back out of a segment
(recovery at open in firmware/store/recovery.py, the uplink's reads in
firmware/store/outbox.py) and making room when the journal is full. Apart from
firmware/store/journal.py so that a device that only appends does not keep this
code on its heap.
"""

import binascii
import struct

from firmware.store.journal import HDR, MAX_RECORD, PRIO_EVENT, PRIO_TELEMETRY


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


def scan(data, stats=None):
    """Yield (offset, seq, created, payload) for every intact frame. A
    damaged region is skipped up to the next intact frame; its size goes
    to ``stats["skipped"]``, and ``stats["end"]`` is where the last intact
    frame ends (anything after it is a torn tail)."""
    i = 0
    n = len(data)
    end = 0
    skipped = 0
    while i + HDR <= n:
        f = _frame_at(data, i, n)
        if f is None:
            # resynchronise: the next offset where a whole frame checks out
            j = i + 1
            while j + HDR <= n and _frame_at(data, j, n) is None:
                j += 1
            if j + HDR > n:
                break
            skipped += j - i
            i = j
            continue
        length, seq, created = f
        yield i, seq, created, data[i + HDR : i + HDR + length]
        i += HDR + length
        end = i
    if stats is not None:
        stats["skipped"] = skipped
        stats["end"] = end


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
    i = 0
    end = 0
    skipped = 0
    while i + HDR <= size:
        f = _frame_in(fh, i, size, hdr, chunk)
        if f is None:
            j = i + 1
            while j + HDR <= size and _frame_in(fh, j, size, hdr, chunk) is None:
                j += 1
            if j + HDR > size:
                break
            skipped += j - i
            i = j
            continue
        length, seq, created = f
        yield i, seq, created
        i += HDR + length
        end = i
    if stats is not None:
        stats["skipped"] = skipped
        stats["end"] = end


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
        seg = j._segs[victim][0]
        if seg.first > j._acked[victim]:
            unacked = seg.n
        else:
            unacked = count_after(seg, j._acked[victim])
        j.dropped_cap += unacked
        j._delete(victim, seg)
        if seg.last > j._acked[victim]:
            j._write_ack(victim, seg.last)
        total = j.size + j._pend_bytes
    j._size_hint = total
    return True
