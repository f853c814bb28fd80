"""The journal's on-disk layout, shared by every module of the store: the
frame, its header size and bounds, the priority queues, and the in-memory
record of one segment file. It imports no other store module, so the
journal and the modules it loads when needed (outbox, recovery, scan)
all import from here and never from each other.

A frame, integers little-endian::

    u32 payload length
    u32 CRC-32 of the rest of the frame (length, seq, created, payload)
    u64 sequence number (per device, increasing across restarts)
    u32 created, wall-clock seconds (for TTL)
    payload: one CBOR record
"""

import binascii
import struct

HDR = 20
MAX_RECORD = 1 << 20
PRIO_EVENT = 0
PRIO_TELEMETRY = 1
PRIORITIES = (PRIO_EVENT, PRIO_TELEMETRY)


def frame(seq, payload, created=0):
    n = len(payload)
    # the CRC covers length, seq, created and payload: all but itself
    crc = binascii.crc32(payload, binascii.crc32(struct.pack("<IQI", n, seq, created))) & 0xFFFFFFFF
    return struct.pack("<IIQI", n, crc, seq, created) + payload


class Segment:
    """One segment file of a queue: its first and last sequence numbers,
    its size in bytes (whole frames only) and its number of frames."""

    __slots__ = ("first", "last", "path", "size", "n")

    def __init__(self, first, path):
        self.first = first
        self.last = 0
        self.path = path
        self.size = 0
        self.n = 0
