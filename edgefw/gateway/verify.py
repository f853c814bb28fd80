"""Checking a node's batch as ``edgefw ingest`` does, without storing it.

    v = check(payload, keys, topic_dev)    # a Batch, or raises Refused

The checks are ingest's (``edgefw.ingest.verify.open_batch``): the seal
(``firmware.uplink.seal``), the device named by the topic, the sealed
header against the map inside, and every record decoding to a CBOR map
with a sequence number. A compressed batch (another gateway's,
``edgefw.gateway.codec``) is expanded first, by ingest too.
"""

from edgefw.ingest.verify import Refused, open_batch

__all__ = ("Batch", "Refused", "check")


class Batch:
    """A checked batch: its header fields, its records' CBOR exactly as the
    node wrote them (``raw``), decoded (``recs``), and the seal's nonce."""

    __slots__ = ("dev", "q", "first", "last", "id", "boot", "utc_ms", "mono_ms", "raw", "recs", "nonce", "key")

    def header(self):
        return {"dev": self.dev, "q": self.q, "first": self.first, "last": self.last, "id": self.id, "boot": self.boot, "utc_ms": self.utc_ms, "mono_ms": self.mono_ms}


def check(payload, keys=None, topic_dev=None, dicts=None):
    """Ingest's own checks (``edgefw.ingest.verify.open_batch``), so the two
    tiers refuse the same batches for the same reasons; Refused as ingest's."""
    ib = open_batch(payload, keys, topic_dev, None, dicts)
    b = Batch()
    b.dev, b.q, b.first, b.last, b.id = ib.dev, ib.q, ib.first, ib.last, ib.id
    b.boot, b.utc_ms, b.mono_ms, b.nonce = ib.boot, ib.utc_ms, ib.mono_ms, ib.nonce
    # the seal key that opened it, for its receipt
    b.key = ib.key
    b.raw = [raw for _rec, raw in ib.recs]
    b.recs = [rec for rec, _raw in ib.recs]
    return b
