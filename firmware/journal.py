"""The on-flash/on-disk record journal.

An append-only file of frames, all integers little-endian::

    u32  payload length
    u32  CRC-32 of everything else in the frame (length, seq, payload)
    u64  sequence number
    payload: one CBOR record (which carries the same ``seq``)

The sequence number is in the header so that recovery and the uplink can
walk the journal without decoding a record.

    j = Journal("edgefw-journal.bin", durability="fsync")
    seq = j.append({"k": "trip", "t": 8000000})   # seq is assigned here
    for seq, rec in j.records(): ...

Opening recovers from a power cut: the frames are scanned, a torn or
corrupt tail is truncated (``recovered_bytes`` says how much), and the next
sequence number continues after the last good record, so sequence numbers
keep increasing across restarts.

Durability: ``fsync`` syncs every record; ``none`` leaves it to the OS.
See ``hal.compat.fsync`` for what a sync means on each port.
"""

import binascii
import struct

from firmware import cbor
from hal.compat import fsync
from hal.errors import JournalError

_HDR = 16
MAX_RECORD = 1 << 20
DURABILITY = ("none", "fsync")


def _crc(length_bytes, seq_bytes, payload):
    return binascii.crc32(payload, binascii.crc32(seq_bytes, binascii.crc32(length_bytes))) & 0xFFFFFFFF


def frame(seq, payload):
    lb = struct.pack("<I", len(payload))
    sb = struct.pack("<Q", seq)
    return lb + struct.pack("<I", _crc(lb, sb, payload)) + sb + payload


def scan(data):
    """Yield (offset, seq, payload) for each intact frame from the start of
    ``data``; stop at the first torn or corrupt one."""
    i = 0
    n = len(data)
    while i + _HDR <= n:
        length, crc, seq = struct.unpack("<IIQ", data[i : i + _HDR])
        if length > MAX_RECORD or i + _HDR + length > n:
            return
        payload = data[i + _HDR : i + _HDR + length]
        if _crc(data[i : i + 4], data[i + 8 : i + 16], payload) != crc:
            return
        yield i, seq, payload
        i += _HDR + length


class Journal:
    def __init__(self, path, durability="none"):
        if durability not in DURABILITY:
            raise JournalError("journal durability must be one of %s, got %r" % (", ".join(DURABILITY), durability))
        self.path = path
        self.durability = durability
        self.next_seq = 1
        self.count = 0
        self.recovered_bytes = 0
        self._recover()
        try:
            self._f = open(path, "ab")
        except OSError as e:
            raise JournalError("cannot open journal %s for appending: %s" % (path, e))

    def _recover(self):
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except OSError:
            self.size = 0
            return
        good = 0
        for off, seq, payload in scan(data):
            good = off + _HDR + len(payload)
            self.count += 1
            if seq >= self.next_seq:
                self.next_seq = seq + 1
        if good < len(data):
            self.recovered_bytes = len(data) - good
            _truncate(self.path, data, good)
        self.size = good

    def append(self, record):
        """Give ``record`` (a dict) the next sequence number and append it.
        Returns the sequence number."""
        seq = self.next_seq
        record["seq"] = seq
        fr = frame(seq, cbor.dumps(record))
        self._f.write(fr)
        if self.durability == "fsync":
            fsync(self._f)
        self.next_seq = seq + 1
        self.count += 1
        self.size += len(fr)
        return seq

    def flush(self):
        fsync(self._f)

    def close(self):
        if self._f is not None:
            fsync(self._f)
            self._f.close()
            self._f = None

    def records(self):
        """(seq, record) for every intact record, oldest first."""
        self._f.flush()
        with open(self.path, "rb") as f:
            data = f.read()
        for _off, seq, payload in scan(data):
            yield seq, cbor.loads(payload)


def _truncate(path, data, good):
    import os

    if hasattr(os, "truncate"):
        os.truncate(path, good)
        return
    # MicroPython has no truncate: write the good part aside, then rename
    # over the original, so a power cut leaves one whole file or the other
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data[:good])
        fsync(f)
    os.rename(tmp, path)
