"""End to end with real parts: journal -> uplink -> mosquitto -> ingest."""

import itertools
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

from edgefw.ingest.server import Ingest
from tests.conftest import ROOT

KEY = bytes(range(1, 33))
_ids = itertools.count(1)
DEV = "dev-crash"


class IngestWorker:
    """edgefw.ingest.server.Ingest behind its real MQTT receiver (receipts on), in
    this process."""

    def __init__(self, port, db, keys=None, topic="edgefw/+/up", client_id=None, receipts=True, pace=None):
        from edgefw.ingest.server import Receiver

        self.ing = Ingest(str(db), keys if keys is not None else {DEV: KEY}, log=None, pace=pace)
        share = topic.split("/")[1] if topic.startswith("$share/") else None
        cid = client_id or "ingest-%d" % next(_ids)
        self.r = Receiver(self.ing, "127.0.0.1", port, cid, share, receipts=receipts)
        self.r.c.reconnect_delay_set(0.05, 0.5)
        self.r.start()
        assert self.r.subscribed.wait(10)
        self.c = self.r.c

    def wait_for(self, n, timeout=30):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.ing.counts["records"] >= n:
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.r.stop()


def device(journal, port, count, cap=64 << 20, drain_s=60, env=None):
    args = [sys.executable, "-m", "tests.helpers.device", str(journal), str(port), DEV, KEY.hex(), str(count), str(cap), str(drain_s)]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, **(env or {})))


def _bodies(ing):
    from firmware import cbor

    with ing.lock:
        rows = list(ing.db.execute("SELECT seq, body FROM records WHERE device=? ORDER BY seq", (DEV,)))
    return [(seq, cbor.loads(body)) for seq, body in rows]


def _kill_cycles(tmp_path, broker, kills, count, seed, env=None):
    rng = random.Random(seed)
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite")
    journal = tmp_path / "journal"
    for _ in range(kills):
        p = device(journal, broker.port, count, env=env)
        time.sleep(rng.uniform(0.05, 0.4))
        p.send_signal(signal.SIGKILL)
        p.wait()
    p = device(journal, broker.port, count, env=env)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["pending"] == 0
    assert worker.wait_for(stats["next_seq"] - 1)
    rows = _bodies(worker.ing)
    worker.close()
    return rows, stats, worker.ing.counts


def test_sigkill_during_append_and_forward_loses_nothing(tmp_path, broker):
    rows, stats, counts = _kill_cycles(tmp_path, broker, kills=50, count=3000, seed=7)
    seqs = [s for s, _r in rows]
    # every record once, no gaps (nothing was dropped: no cap, no TTL)
    assert seqs == list(range(1, stats["next_seq"]))
    assert stats["dropped_cap"] == 0 and stats["dropped_ttl"] == 0
    ns = [r["n"] for _s, r in rows]
    # the stream itself is whole: every n from 1 to 3000 arrived, and one
    # torn record at most per kill was written again under the same n
    assert set(ns) == set(range(1, 3001))
    assert len(ns) - len(set(ns)) <= 50
    assert all(r["seq"] == s for s, r in rows)
    assert counts["tampered"] == 0 and counts["malformed"] == 0


def test_sigkill_with_live_first_loses_nothing(tmp_path, broker):
    # each restart finds a backlog and opens a live range: two ack cursors
    # in the ack file, killed at random moments
    rows, stats, counts = _kill_cycles(tmp_path, broker, kills=25, count=2000, seed=5, env={"EDGEFW_TEST_LIVE_FIRST": "1"})
    assert [s for s, _r in rows] == list(range(1, stats["next_seq"]))
    assert set(r["n"] for _s, r in rows) == set(range(1, 2001))
    assert stats["live"] == [None, None]
    assert counts["tampered"] == 0 and counts["malformed"] == 0


@pytest.mark.slow
def test_sigkill_many_times(tmp_path, broker):
    rows, stats, _ = _kill_cycles(tmp_path, broker, kills=200, count=6000, seed=11)
    assert [s for s, _r in rows] == list(range(1, stats["next_seq"]))


def _through_an_outage(tmp_path, broker, worker, count, up_s, down_s, env=None):
    """A device appending ``count`` records while the broker goes away for
    ``down_s`` after ``up_s``; its stats once it is done and the ingest
    has everything."""
    p = device(tmp_path / "journal", broker.port, count, env=env)
    time.sleep(up_s)
    broker.stop()
    time.sleep(down_s)
    broker.start()
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    stats = json.loads(out.strip().splitlines()[-1])
    assert worker.wait_for(stats["next_seq"] - 1, 60)
    return stats


def test_broker_outage_everything_delivered_in_order(tmp_path, broker):
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite", client_id="ingest-outage")
    stats = _through_an_outage(tmp_path, broker, worker, 4000, 0.3, 1.0)
    rows = _bodies(worker.ing)
    worker.close()
    assert [s for s, _r in rows] == list(range(1, stats["next_seq"]))
    # within each priority, the order they were written
    with worker.ing.lock:
        order = [tuple(r) for r in worker.ing.db.execute("SELECT queue, seq FROM records WHERE device=? ORDER BY received, seq", (DEV,))]
    for q in (0, 1):
        qs = [s for qq, s in order if qq == q]
        assert qs == sorted(qs)


def test_live_first_sends_new_records_before_the_backlog(tmp_path, broker):
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite", client_id="ingest-live")
    # down long enough for a backlog, with appends still coming after it
    stats = _through_an_outage(tmp_path, broker, worker, 3000, 0.5, 1.5, {"EDGEFW_TEST_LIVE_FIRST": "1", "EDGEFW_TEST_APPEND_S": "0.001"})
    rows = _bodies(worker.ing)
    # everything exactly once, and the two ranges merged again
    assert [s for s, _r in rows] == list(range(1, stats["next_seq"]))
    assert stats["live"] == [None, None] and stats["pending"] == 0
    with worker.ing.lock:
        order = [s for (s,) in worker.ing.db.execute("SELECT seq FROM records WHERE device=? AND queue=1 ORDER BY received, seq", (DEV,))]
    worker.close()
    # records appended after reconnecting arrived while older ones still waited
    assert order != sorted(order)


def test_byte_cap_held_and_drops_counted(tmp_path, broker):
    broker.stop()  # nothing can be sent: the journal fills
    p = device(tmp_path / "journal", broker.port, 3000, cap=65536, drain_s=0)
    out, err = p.communicate(timeout=120)
    offline = json.loads(out.strip().splitlines()[-1])
    size = sum(f.stat().st_size for f in (tmp_path / "journal").rglob("*.seg"))
    assert size <= 65536 and offline["bytes"] <= 65536
    assert offline["dropped_cap"] > 0
    broker.start()
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite")
    p = device(tmp_path / "journal", broker.port, 3000, cap=65536)
    out, err = p.communicate(timeout=120)
    stats = json.loads(out.strip().splitlines()[-1])
    assert worker.wait_for(1)
    time.sleep(1)
    rows = _bodies(worker.ing)
    worker.close()
    seqs = [s for s, _r in rows]
    # gaps only where records were dropped, and the events survived
    assert len(seqs) == len(set(seqs))
    assert stats["pending"] == 0
    # what arrived plus what was dropped is everything written
    assert len(seqs) + offline["dropped_cap"] == offline["next_seq"] - 1
    # the newest telemetry survived, and every event
    ns = {r["n"] for _s, r in rows}
    assert 3000 in ns and all(n in ns for n in range(50, 3001, 50))


def test_tampered_and_replayed_batches_are_refused(tmp_path, broker):
    from firmware import cbor
    from firmware.uplink.seal import Sealer

    ing = Ingest(str(tmp_path / "i.sqlite"), {DEV: KEY}, log=None)
    rec = cbor.dumps({"k": "win", "seq": 1})
    batch = cbor.dumps({"dev": DEV, "q": 1, "first": 1, "last": 1, "recs": [rec]})
    blob = Sealer(KEY, DEV).seal(1, 1, 1, batch)
    ing.handle(blob)
    ing.handle(blob)  # the same sealed batch again
    bad = bytearray(blob)
    bad[-40] ^= 1
    ing.handle(bytes(bad))
    ing.handle(Sealer(b"w" * 32, DEV).seal(1, 1, 1, batch))
    ing.handle(Sealer(b"w" * 32, "stranger").seal(1, 1, 1, batch))
    ing.handle(b"garbage")
    assert ing.counts == {
        "batches": 1,
        "records": 1,
        "duplicates": 0,
        "tampered": 2,
        "replayed": 1,
        "malformed": 1,
        "unknown_device": 1,
        "revoked": 0,
        # the stored batch and its replay are receipted; the two that fail
        # their tag are refused to the device they name
        "receipts": 2,
        "refusals": 2,
    }
    # a fresh seal of the same records (a resend after reconnect) is not a
    # replay: its records are duplicates, dropped by (device, seq)
    ing.handle(Sealer(KEY, DEV).seal(1, 1, 1, batch))
    assert ing.counts["batches"] == 2 and ing.counts["duplicates"] == 1 and ing.counts["records"] == 1


def test_shared_subscription_splits_the_load(tmp_path, broker):
    db = tmp_path / "shared.sqlite"
    a = IngestWorker(broker.port, db, topic="$share/ingest/edgefw/+/up")
    b = IngestWorker(broker.port, db, topic="$share/ingest/edgefw/+/up")
    p = device(tmp_path / "journal", broker.port, 2000)
    out, err = p.communicate(timeout=120)
    stats = json.loads(out.strip().splitlines()[-1])
    t0 = time.monotonic()
    while a.ing.counts["records"] + b.ing.counts["records"] < stats["next_seq"] - 1 and time.monotonic() - t0 < 30:
        time.sleep(0.05)
    assert a.ing.counts["batches"] > 0 and b.ing.counts["batches"] > 0
    assert a.ing.counts["records"] + b.ing.counts["records"] == stats["next_seq"] - 1
    a.close()
    b.close()
