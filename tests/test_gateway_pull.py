"""Pull requests (edgefw.gateway.pull) and the raw records kept for them:
the request's checks, and kept/'s range, TTL and cap. End to end (a real
gateway, brokers and ingest): tests/test_gateway_aggregate.py."""

import time

from edgefw.gateway import pull
from edgefw.gateway.verify import Batch
from firmware import cbor
from firmware.store.journal import Journal

KEY = bytes(range(32))


def test_request_checks():
    seen = []
    m = pull.make("node-a", 5, 9, KEY, boot=b"\x01" * 8)
    req, why = pull.check(m, KEY, seen)
    assert why is None and req["node"] == "node-a" and (req["from_t"], req["to_t"]) == (5, 9) and req["boot"] == b"\x01" * 8
    assert pull.check(m, bytes(32), seen) == (None, "bad tag")
    assert pull.check(m[:-1] + bytes([m[-1] ^ 1]), KEY, seen) == (None, "bad tag")
    assert pull.check(m[:-32], KEY, seen) == (None, "bad tag")
    seen.append(req["id"])
    assert pull.check(m, KEY, seen) == (None, "replay")
    old = pull.make("node-a", 5, 9, KEY, utc_ms=int(time.time() * 1000) - pull.MAX_AGE_MS - 1000)
    assert pull.check(old, KEY, []) == (None, "stale")
    backwards = pull.make("node-a", 9, 5, KEY)
    assert pull.check(backwards, KEY, []) == (None, "not a request")
    # a map under a good tag that is not a pull
    body = cbor.dumps({"id": b"12345678", "cmd": "trip", "utc_ms": int(time.time() * 1000)})
    assert pull.check(body + pull._tag(KEY, body), KEY, []) == (None, "not a request")


def _rec(dev, boot, ts, first):
    b = Batch()
    b.dev, b.q, b.first, b.last, b.id, b.boot, b.utc_ms, b.mono_ms = dev, 1, first, first + len(ts) - 1, b"i" * 8, boot, None, 0
    r = b.header()
    r["k"] = "raw"
    r["recs"] = [cbor.dumps({"seq": first + i, "t": t, "k": "win"}) for i, t in enumerate(ts)]
    return r


def _kept(tmp_path, keep_s=None, cap=1 << 20):
    return pull.Kept(Journal(str(tmp_path / "kept"), "group", segment_bytes=16 << 10, cap_bytes=cap, group_records=1 << 30, group_ms=1 << 30), keep_s)


def test_kept_finds_a_node_run_and_time_range(tmp_path):
    k = _kept(tmp_path)
    b1, b2 = b"\x01" * 8, b"\x02" * 8
    k.add(_rec("a", b1, [10, 20, 30], 1))
    k.add(_rec("b", b1, [10, 20, 30], 1))
    k.add(_rec("a", b2, [15, 25], 4))
    got = [(b.dev, b.boot, [d["seq"] for _x, d in picks]) for b, picks in k.find("a", None, 20, 25)]
    assert got == [("a", b1, [2]), ("a", b2, [5])]
    got = [[d["t"] for _x, d in picks] for _b, picks in k.find("a", b1, 0, 100)]
    assert got == [[10, 20, 30]]
    # the raw bytes are the node's, unchanged
    (_b, picks), = list(k.find("b", b1, 30, 30))
    assert picks[0][0] == cbor.dumps({"seq": 3, "t": 30, "k": "win"})
    k.close()


def test_kept_expires_by_age_and_drops_the_oldest_at_its_cap(tmp_path):
    k = _kept(tmp_path, keep_s=60)
    for i in range(40):
        k.add(_rec("a", b"\x01" * 8, [i * 10 + j for j in range(8)], 1 + 8 * i))
    k.tick()
    now = time.time()
    k.EXPIRE_EVERY_S = 0
    # young: nothing goes
    k.tick(now)
    assert sum(len(p) for _b, p in k.find("a", None, 0, 1 << 40)) == 320 and k.expired == 0
    # a minute on, all of it is past keep_s
    k.tick(now + 61)
    assert list(k.find("a", None, 0, 1 << 40)) == [] and k.expired == 320
    k.close()
    small = _kept(tmp_path / "small", cap=1 << 16)
    for i in range(600):
        small.add(_rec("a", b"\x01" * 8, [i * 10 + j for j in range(8)], 1 + 8 * i))
        if i % 20 == 19:
            # the gateway's tick syncs it as often
            small.tick()
    ts = [d["t"] for _b, p in small.find("a", None, 0, 1 << 40) for _x, d in p]
    assert small.j.dropped_cap > 0 and small.j.refused == 0 and small.j.size <= 1 << 16
    # the newest are there, the oldest went
    assert ts[-1] == 5997 and ts[0] > 0 and ts == sorted(ts)
    small.close()
