"""``edgefw run`` with the uplink, as a user meets it: the README's order
(device first, ingest later), short runs, repairs and losses in the
summary, the uplink's trouble on the status line, clocks in the database."""

import json
import sqlite3
import subprocess
import time

from edgefw.emul.broker import free_port
from tests.test_cli import edgefw, last_json, run


def _ingest(port, db, idle=4):
    return subprocess.Popen(
        [edgefw(), "ingest", "--broker", "127.0.0.1:%d" % port, "--db", str(db), "--idle-exit", str(idle), "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _rows(db):
    return list(sqlite3.connect(db).execute("SELECT seq, kind, boot, device_utc_ms, received FROM records WHERE device='sim-0001' ORDER BY seq"))


def test_readme_quick_try_in_the_order_written(tmp_path, broker):
    j = str(tmp_path / "j")
    db = tmp_path / "ingest.sqlite"
    # 1. the device, with no receiver yet: the broker takes the batches,
    # the journal keeps them
    p = run("run", "--broker", "127.0.0.1:%d" % broker.port, "--cycles", "500", "--json", "--journal", j, "--drain-s", "1")
    assert p.returncode == 0, p.stderr
    first = last_json(p.stdout)
    assert first["uplink"]["records"] == 0 and first["journal_pending"] == first["records"] + 1
    # 2. ingest, then the device's next start: both runs' records arrive
    ing = _ingest(broker.port, db)
    time.sleep(1.0)
    p = run("run", "--broker", "127.0.0.1:%d" % broker.port, "--cycles", "500", "--json", "--journal", j, "--drain-s", "10")
    assert p.returncode == 0, p.stderr
    second = last_json(p.stdout)
    assert second["journal_pending"] == 0
    out, _err = ing.communicate(timeout=60)
    rows = _rows(db)
    total = first["records"] + second["records"] + 2  # and two boot events
    assert [r[0] for r in rows] == list(range(1, total + 1))
    assert json.loads(out.strip().splitlines()[-1])["records"] == total
    # each run's boot event names its run; the database has the device's
    # clock and its own for every record
    boots = [r for r in rows if r[1] == "boot"]
    assert len(boots) == 2
    now = time.time()
    for _seq, _k, boot, dev_utc, received in rows:
        assert len(boot) == 8 and abs(dev_utc / 1000 - now) < 120 and abs(received - now) < 120


def test_short_runs_leave_nothing_pending(tmp_path, broker):
    db = tmp_path / "ingest.sqlite"
    ing = _ingest(broker.port, db, idle=6)
    time.sleep(1.0)
    j = str(tmp_path / "j")
    total = 0
    for _ in range(5):
        p = run("run", "--broker", "127.0.0.1:%d" % broker.port, "--cycles", "300", "--json", "--journal", j)
        assert p.returncode == 0, p.stderr
        s = last_json(p.stdout)
        # synced and receipted within the default --drain-s 2
        assert s["journal_pending"] == 0, s["uplink"]
        total += s["records"] + 1
    ing.communicate(timeout=60)
    assert len(_rows(db)) == total


def test_uplink_trouble_is_shown(tmp_path):
    port = free_port()  # nothing listens there
    p = subprocess.run(
        [edgefw(), "run", "--broker", "127.0.0.1:%d" % port, "--speed", "4", "--cycles", "600", "--journal", str(tmp_path / "j"), "--drain-s", "0.5"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    status = [line for line in p.stderr.splitlines() if "cycles/s" in line]
    assert status and "uplink retrying in" in status[-1] and "refused" in status[-1].lower(), status[-1:]
    summary = [line for line in p.stdout.splitlines() if line.startswith("uplink:")]
    assert summary and "retrying in" in summary[0] and "refused" in summary[0].lower()
    assert "left pending" in p.stdout


def test_repairs_and_losses_are_reported(tmp_path):
    j = tmp_path / "j"
    p = run("run", "--cycles", "300", "--json", "--journal", str(j))
    assert p.returncode == 0
    # a torn tail and an ack file that makes no sense
    seg = sorted((j / "q1").glob("*.seg"))[-1]
    with open(seg, "ab") as f:
        f.write(b"\x55" * 13)
    (j / "q1" / "ack").write_bytes(b"99999999999999999999\n")
    cfg = tmp_path / "c.json"
    # and a journal too small for the run: records refused and counted
    cfg.write_text(json.dumps({"record": {"cap_bytes": 4096, "segment_bytes": 2048, "full_policy": "pause", "window_ms": 100}}))
    p = run("run", "--cycles", "2000", "--json", "--journal", str(j), "--config", str(cfg))
    assert p.returncode == 0, p.stderr
    st = last_json(p.stdout)["store"]
    assert st["recovered_bytes"] == 13 and st["ack_repaired"] == 1 and st["refused"] > 0
    plain = run("run", "--cycles", "100", "--journal", str(j), "--config", str(cfg))
    assert "journal:" in plain.stdout and "refused (journal full, pause)" in plain.stdout
    from firmware.store.journal import Journal

    kinds = [r["k"] for _s, r in Journal(str(j)).records(0)]
    assert "repair" in kinds


def test_ingest_with_no_broker_says_so_and_idle_exit_still_fires(tmp_path):
    port = free_port()  # nothing listens there
    t0 = time.monotonic()
    p = subprocess.run(
        [edgefw(), "ingest", "--broker", "127.0.0.1:%d" % port, "--db", str(tmp_path / "i.sqlite"), "--idle-exit", "3"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 0 and time.monotonic() - t0 < 30
    assert "127.0.0.1:%d connecting" % port in p.stderr, p.stderr
