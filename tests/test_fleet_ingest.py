"""Ingest reading the fleet registry (``edgefw ingest --fleet DIR``): a
revoked device's batches are authenticated and refused with a sealed
negative receipt naming the revocation, a rotated device's old seal key
opens batches through the overlap, and a replayed batch stores nothing
twice."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from edgefw.fleet import ops
from edgefw.ingest.fleet import fleet_keys
from edgefw.ingest.server import Ingest
from firmware import cbor
from firmware.uplink import receipt
from firmware.uplink.seal import Sealer
from tests.helpers.fleet import make_fleet


def _seal_key(root, dev):
    return bytes.fromhex(open(os.path.join(str(root), "creds", dev, "seal.key")).read().strip())


def _batch(dev, first, last, bid=b"i" * 8):
    recs = [cbor.dumps({"k": "win", "seq": s}) for s in range(first, last + 1)]
    return {"dev": dev, "q": 1, "first": first, "last": last, "id": bid, "boot": b"b" * 8, "utc_ms": None, "mono_ms": 5, "recs": recs}


def _sealed(key, m):
    return Sealer(key, m["dev"]).seal(m["q"], m["first"], m["last"], cbor.dumps(m))


def _rows(ing, dev):
    with ing.lock:
        return [s for (s,) in ing.db.execute("SELECT seq FROM records WHERE device=? ORDER BY seq", (dev,))]


def test_revoked_refused_with_a_sealed_negative_receipt(tmp_path):
    root = tmp_path / "fleet"
    make_fleet(root)
    key_b = _seal_key(root, "dev-b")
    ops.revoke(root, "dev-b", "lost")
    keys, revoked = fleet_keys(root)
    assert revoked == {"dev-b"} and sorted(keys) == ["dev-a", "dev-b"]
    ing = Ingest(tmp_path / "i.sqlite", keys, log=None, revoked=revoked)
    dev, blob = ing.handle(_sealed(key_b, _batch("dev-b", 1, 2)), "dev-b")
    r = receipt.parse(blob, key_b)
    # the device can trust the refusal (sealed with its key) and keeps its records
    assert dev == "dev-b" and r["ok"] is False and r["verified"] and "revoked" in r["why"]
    assert _rows(ing, "dev-b") == [] and ing.counts["revoked"] == 1
    # an active device is unaffected
    dev, blob = ing.handle(_sealed(_seal_key(root, "dev-a"), _batch("dev-a", 1, 2)), "dev-a")
    assert receipt.parse(blob, _seal_key(root, "dev-a"))["ok"] is True and _rows(ing, "dev-a") == [1, 2]


def test_rotated_device_old_key_accepted_through_the_overlap_and_a_replay_stores_nothing_twice(tmp_path):
    root = tmp_path / "fleet"
    make_fleet(root)
    old = _seal_key(root, "dev-a")
    ops.rotate(root, "dev-a")
    new = _seal_key(root, "dev-a")
    assert new != old
    keys, revoked = fleet_keys(root)
    assert keys["dev-a"] == [new, old] and not revoked
    ing = Ingest(tmp_path / "i.sqlite", keys, log=None, revoked=revoked)
    late = _sealed(old, _batch("dev-a", 1, 2, b"o" * 8))
    for blob, key in ((late, old), (_sealed(new, _batch("dev-a", 3, 4, b"n" * 8)), new)):
        _dev, rec = ing.handle(blob, "dev-a")
        # the receipt is sealed with the key that opened the batch: a
        # device that still holds only its old key can trust it
        r = receipt.parse(rec, key)
        assert r["ok"] is True and r["verified"]
        assert not receipt.parse(rec, new if key is old else old)["verified"]
    # the same sealed batch again (a replay, or a resend after a lost
    # receipt): receipted, stored once
    ing.handle(late, "dev-a")
    assert _rows(ing, "dev-a") == [1, 2, 3, 4]
    # a key that is not the device's is refused as tampering
    _dev, rec = ing.handle(_sealed(bytes(32), _batch("dev-a", 5, 5)), "dev-a")
    assert receipt.parse(rec)["ok"] is False and ing.counts["tampered"] == 1


def test_ingest_fleet_option_and_sighup_rereads_the_registry(tmp_path):
    """edgefw ingest --fleet over a real mosquitto: dev-a's batch is
    receipted; after `fleet revoke` and a SIGHUP, the next one is refused."""
    import paho.mqtt.client as mqtt

    from edgefw.emul.broker import Mosquitto

    root = tmp_path / "fleet"
    make_fleet(root)
    key = _seal_key(root, "dev-a")
    db = tmp_path / "i.sqlite"
    (tmp_path / "broker").mkdir()
    with Mosquitto(tmp_path / "broker") as b:
        ing = subprocess.Popen(
            [sys.executable, "-m", "edgefw", "ingest", "--broker", "127.0.0.1:%d" % b.port, "--db", str(db), "--fleet", str(root), "--client-id", "fi"],
            stdout=subprocess.PIPE,
            stderr=open(tmp_path / "ingest.log", "w"),
            text=True,
        )
        got = []
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="dev-a", protocol=mqtt.MQTTv311)
        c.on_message = lambda _c, _u, m: got.append(receipt.parse(m.payload, key))
        c.connect("127.0.0.1", b.port)
        c.subscribe("edgefw/dev-a/receipt", qos=1)
        c.loop_start()
        try:

            def send(first, last):
                n = len(got)
                deadline = time.monotonic() + 20
                while len(got) == n and time.monotonic() < deadline:
                    c.publish("edgefw/dev-a/up", _sealed(key, _batch("dev-a", first, last, os.urandom(8))), qos=1)
                    t = time.monotonic() + 2
                    while len(got) == n and time.monotonic() < t:
                        time.sleep(0.05)
                assert len(got) > n, "no receipt within 20 s"
                return got[-1]

            assert send(1, 2)["ok"] is True
            ops.revoke(root, "dev-a", "stolen")
            ing.send_signal(signal.SIGHUP)
            # the signal is handled when ingest's main thread next runs
            deadline = time.monotonic() + 20
            while "fleet registry read again" not in (tmp_path / "ingest.log").read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            r = send(3, 4)
            assert r["ok"] is False and r["verified"] and "revoked" in r["why"]
        finally:
            c.loop_stop()
            c.disconnect()
            ing.terminate()
            ing.communicate(timeout=30)
    assert "fleet registry read again" in (tmp_path / "ingest.log").read_text()
    seqs = [s for (s,) in sqlite3.connect(str(db)).execute("SELECT seq FROM records WHERE device='dev-a' ORDER BY seq")]
    assert seqs == [1, 2]
