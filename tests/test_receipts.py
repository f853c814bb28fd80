"""End-to-end receipts with real parts: a device deletes a record only
once the receiver has it in its database.

Each test ends with every record in the ingest database exactly once and
nothing deleted from the journal that was not stored."""

import json
import os
import random
import signal
import subprocess
import sys
import time

from tests.test_store_forward import DEV, KEY, IngestWorker, _bodies, device


def _stats(p, timeout=180):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def _exactly_once(rows, stats, count):
    seqs = [s for s, _r in rows]
    assert seqs == list(range(1, stats["next_seq"])), "gaps or duplicates"
    assert set(r["n"] for _s, r in rows) == set(range(1, count + 1))


def test_ingest_started_after_the_device_gets_everything(tmp_path, broker):
    # the README's order: the device first. mosquitto acknowledges batches
    # nobody subscribes to; without receipts they were deleted and lost
    p = device(tmp_path / "journal", broker.port, 1500, drain_s=60, env={"EDGEFW_TEST_APPEND_S": "0.001"})
    time.sleep(1.5)
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite", client_id="late-ingest")
    stats = _stats(p)
    assert worker.wait_for(stats["next_seq"] - 1)
    rows = _bodies(worker.ing)
    worker.close()
    _exactly_once(rows, stats, 1500)
    assert stats["pending"] == 0
    # what went while nobody listened was sent again after its receipt was due
    assert stats["uplink"]["resent"] > 0


def test_no_receiver_means_nothing_is_deleted(tmp_path, broker):
    p = device(tmp_path / "journal", broker.port, 300, drain_s=2)
    stats = _stats(p)
    # the broker has PUBACKed it all; no receipt came, so all of it stays
    assert stats["uplink"]["records"] == 0 and stats["pending"] == 300
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite")
    stats = _stats(device(tmp_path / "journal", broker.port, 300))
    assert worker.wait_for(300)
    rows = _bodies(worker.ing)
    worker.close()
    _exactly_once(rows, stats, 300)
    assert stats["pending"] == 0


def _ingest_process(port, db, keys):
    args = [sys.executable, "-m", "edgefw", "ingest", "--broker", "127.0.0.1:%d" % port, "--db", str(db), "--keys", str(keys), "--client-id", "killed-ingest"]
    return subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_ingest_killed_again_and_again_loses_nothing(tmp_path, broker):
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({DEV: KEY.hex()}))
    db = tmp_path / "ingest.sqlite"
    rng = random.Random(3)
    count = 3000
    p = device(tmp_path / "journal", broker.port, count, drain_s=120, env={"EDGEFW_TEST_APPEND_S": "0.002", "EDGEFW_TEST_RECEIPT_MS": "500"})
    kills = 0
    ing = _ingest_process(broker.port, db, keys)
    while kills < 25:
        time.sleep(rng.uniform(0.1, 0.4))
        ing.send_signal(signal.SIGKILL)
        ing.wait()
        kills += 1
        time.sleep(rng.uniform(0.0, 0.2))
        ing = _ingest_process(broker.port, db, keys)
    stats = _stats(p)
    ing.send_signal(signal.SIGTERM)
    ing.wait(10)
    assert stats["pending"] == 0, stats
    # the device finished while ingest ran, and the database has every
    # record exactly once
    from edgefw.ingest.server import Ingest

    check = Ingest(str(db), {DEV: KEY}, log=None)
    rows = _bodies(check)
    check.close()
    _exactly_once(rows, stats, count)
    assert kills == 25


def test_keyed_ingest_refuses_unsealed_batches_and_the_device_keeps_them(tmp_path, broker):
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite")  # keyed
    stats = _stats(device_unsealed(tmp_path, broker.port, 200))
    up = stats["uplink"]
    # refused, counted and said why; nothing deleted
    assert up["records"] == 0 and up["rejected"] > 0 and "not a sealed edgefw batch" in up["last_rejection"]
    assert stats["pending"] == stats["next_seq"] - 1
    assert worker.ing.counts["records"] == 0 and worker.ing.counts["refusals"] > 0
    # the device gets its key: everything it kept goes, exactly once
    stats = _stats(device(tmp_path / "journal", broker.port, 200))
    assert worker.wait_for(stats["next_seq"] - 1)
    rows = _bodies(worker.ing)
    worker.close()
    _exactly_once(rows, stats, 200)
    assert stats["pending"] == 0


def device_unsealed(tmp_path, port, count):
    args = [sys.executable, "-m", "tests.helpers.device", str(tmp_path / "journal"), str(port), DEV, "-", str(count), str(64 << 20), "3"]
    from tests.conftest import ROOT

    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, EDGEFW_TEST_RECEIPT_MS="300"))


def test_a_receiver_behind_its_deadline_gets_fewer_resends_each_time(tmp_path, broker):
    # ingest's persistent session holds what comes while it is away: the
    # receipts are late, not lost. At a fixed deadline and window the
    # device sent its whole window again every 300 ms (about 7,000 records
    # in 3 s); now it starts with one batch in flight, and each time the
    # deadline doubles and the window halves
    from firmware.store.journal import Journal
    from firmware.uplink.uplink import Uplink, make_client

    IngestWorker(broker.port, tmp_path / "ingest.sqlite", client_id="away").close()
    j = Journal(str(tmp_path / "j"))
    for i in range(2000):
        j.append({"k": "win", "n": i + 1})
    up = Uplink(j, make_client("127.0.0.1", broker.port, DEV), DEV, key=KEY, batch_records=100, batch_ms=0, window=8, receipt_timeout_ms=300)
    assert not up.drain(3000)
    # sent again: its one batch at 0.3 s, 0.9 s and 2.1 s (the next at 4.5 s)
    resent = up.stats()["resent"]
    assert 0 < resent <= 300, resent
    worker = IngestWorker(broker.port, tmp_path / "ingest.sqlite", client_id="away")
    # the receipts of batches given up on count for what went again
    assert up.drain(30000)
    rows = _bodies(worker.ing)
    worker.close()
    up.client.disconnect()
    assert [s for s, _r in rows] == list(range(1, 2001))
    assert [r["n"] for _s, r in rows] == list(range(1, 2001))
    assert j.pending() == 0
