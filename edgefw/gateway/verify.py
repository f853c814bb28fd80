"""Checking a node's batch as ``edgefw ingest`` does, without storing it.

    v = check(payload, keys, topic_dev)    # a Batch, or raises Refused

The checks are ingest's (``edgefw.ingest.server.Ingest.handle``): the seal
(``firmware.uplink.seal``), the device named by the topic, the sealed
header against the map inside, and every record decoding to a CBOR map
with a sequence number. A compressed batch (another gateway's,
``edgefw.gateway.codec``) is expanded first. ``Ingest.handle`` checks and stores in one step;
the pieces it is made of are called here so the two tiers refuse the same
batches for the same reasons.
"""

from edgefw.gateway.codec import expand
from edgefw.ingest.server import _loads, _peek
from firmware.uplink.seal import SealError, open_sealed, parse_header


class Refused(Exception):
    """``kind`` is ingest's counter name (malformed, tampered,
    unknown_device); ``dev`` the device a negative receipt goes to (None:
    nobody to tell), ``head`` (q, first, last, id) for that receipt."""

    def __init__(self, kind, msg, dev=None, head=None):
        Exception.__init__(self, "%s: %s" % (kind, msg))
        self.kind = kind
        self.dev = dev
        self.head = head or (None, None, None, None)


class Batch:
    """A checked batch: its header fields, its records' CBOR exactly as the
    node wrote them (``raw``), decoded (``recs``), and the seal's nonce."""

    __slots__ = ("dev", "q", "first", "last", "id", "boot", "utc_ms", "mono_ms", "raw", "recs", "nonce")

    def header(self):
        return {"dev": self.dev, "q": self.q, "first": self.first, "last": self.last, "id": self.id, "boot": self.boot, "utc_ms": self.utc_ms, "mono_ms": self.mono_ms}


def check(payload, keys=None, topic_dev=None, dicts=None):
    nonce = None
    dev = None
    head = None
    if keys is not None:
        try:
            dev, q, first, last, nonce, _h = parse_header(payload)
            head = (q, first, last, None)
        except (SealError, UnicodeError) as e:
            raise Refused("malformed", str(e), topic_dev, _peek(payload))
        if dev not in keys:
            raise Refused("unknown_device", "no key for device %r" % dev)
        if topic_dev is not None and dev != topic_dev:
            raise Refused("tampered", "batch of %r on the topic of %r" % (dev, topic_dev))
        try:
            dev, q, first, last, nonce, plain = open_sealed(payload, keys)
        except SealError as e:
            raise Refused("tampered", str(e), dev, head)
    else:
        plain = payload
    try:
        m = _loads(plain)
        raw = [bytes(r) for r in expand(m, dicts)]
        recs = [_loads(r) for r in raw]
        if not isinstance(m["dev"], str):
            raise ValueError("device id is not text")
        if m["q"] not in (0, 1):
            raise ValueError("queue %r is not 0 or 1" % (m["q"],))
        for r in recs:
            if not isinstance(r.get("seq"), int):
                raise ValueError("a record without an integer seq")
    except Exception as e:  # cbor2 raises several types for bad input
        raise Refused("malformed", "batch does not decode: %s" % e, topic_dev if keys is None else dev, head)
    if keys is not None and (m["dev"] != dev or m["q"] != q or m.get("first") != first or m.get("last") != last):
        raise Refused("tampered", "sealed header and batch disagree for %r" % dev, dev, head)
    if topic_dev is not None and m["dev"] != topic_dev:
        raise Refused("tampered", "batch of %r on the topic of %r" % (m["dev"], topic_dev))
    b = Batch()
    b.dev, b.q, b.first, b.last, b.id = m["dev"], m["q"], m.get("first"), m.get("last"), m.get("id")
    b.boot, b.utc_ms, b.mono_ms = m.get("boot"), m.get("utc_ms"), m.get("mono_ms")
    b.raw, b.recs, b.nonce = raw, recs, nonce
    return b
