"""Hop 1 refuses what ingest refuses, for the same reasons."""

import pytest

from edgefw.gateway.codec import Packer
from edgefw.gateway.verify import Refused, check
from firmware import cbor
from firmware.uplink.seal import Sealer

KEY = bytes(range(32))
KEYS = {"n1": KEY}


def _batch(dev="n1", first=1, last=2, recs=None, **extra):
    recs = recs if recs is not None else [cbor.dumps({"k": "win", "seq": 1}), cbor.dumps({"k": "win", "seq": 2})]
    m = {"dev": dev, "q": 1, "first": first, "last": last, "id": b"i" * 8, "boot": b"b" * 8, "utc_ms": None, "mono_ms": 5, "recs": recs}
    m.update(extra)
    return m


def _sealed(m, key=KEY, dev="n1"):
    return Sealer(key, dev).seal(m["q"], m["first"], m["last"], cbor.dumps(m))


def test_good_batch():
    b = check(_sealed(_batch()), KEYS, "n1")
    assert (b.dev, b.q, b.first, b.last) == ("n1", 1, 1, 2) and [r["seq"] for r in b.recs] == [1, 2]


@pytest.mark.parametrize(
    "blob, topic, kind, tell",
    [
        (lambda: b"garbage", "n1", "malformed", "n1"),
        (lambda: _sealed(_batch(), key=b"w" * 32), "n1", "tampered", "n1"),
        (lambda: _sealed(_batch(dev="n2"), dev="n2"), "n2", "unknown_device", None),
        (lambda: _sealed(_batch()), "n3", "tampered", None),
        (lambda: _sealed(_batch())[:-1] + b"\0", "n1", "tampered", "n1"),
        (lambda: Sealer(KEY, "n1").seal(1, 1, 3, cbor.dumps(_batch())), "n1", "tampered", "n1"),
        (lambda: _sealed(_batch(recs=[cbor.dumps([1, 2])])), "n1", "malformed", "n1"),
        (lambda: _sealed(_batch(recs=[cbor.dumps({"k": "win"})])), "n1", "malformed", "n1"),
        # a queue equal to 1 that is not the integer (PostgreSQL's binary COPY takes no float for a smallint)
        (lambda: Sealer(KEY, "n1").seal(1, 1, 2, cbor.dumps(_batch(q=1.0))), "n1", "malformed", "n1"),
        (lambda: Sealer(KEY, "n1").seal(1, 1, 2, cbor.dumps(_batch(q=True))), "n1", "malformed", "n1"),
    ],
)
def test_refused_like_ingest(blob, topic, kind, tell):
    with pytest.raises(Refused) as e:
        check(blob(), KEYS, topic)
    assert e.value.kind == kind and e.value.dev == tell


def test_compressed_batch_from_another_gateway():
    m = Packer("zlib").pack({k: v for k, v in _batch().items() if k != "recs"}, _batch()["recs"] * 20)
    assert m.get("codec") == "zlib"
    b = check(_sealed(m), KEYS, "n1")
    assert len(b.recs) == 40
