"""Reading frames back out of a journal segment: recovery at open
(firmware/journal_open.py), the uplink's reads (firmware/outbox.py) and
counting what a full journal drops. Apart from firmware/journal.py so that
a device that only appends does not keep this code loaded.
"""

import binascii
import struct

from firmware.journal import HDR, MAX_RECORD


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


def count_after(seg, acked):
    with open(seg.path, "rb") as f:
        data = f.read()
    return sum(1 for _o, seq, _c, _p in scan(data) if seq > acked)
