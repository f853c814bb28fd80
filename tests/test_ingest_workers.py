"""Several ingest workers on one PostgreSQL through an MQTT shared
subscription (``--share``), one killed with SIGKILL mid-load."""

import json
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.helpers.postgres import Postgres
from tests.test_ingest_pg import KEY, _metrics, _scrape, device


@pytest.fixture
def pg():
    with Postgres() as p:
        yield p


def _worker(port, url, keys, cid, mport, log, clean=False):
    args = [
        sys.executable,
        "-m",
        "edgefw.cli",
        "ingest",
        "--broker",
        "127.0.0.1:%d" % port,
        "--db",
        url,
        "--keys",
        str(keys),
        "--share",
        "fleet",
        "--client-id",
        cid,
    ]
    args += ["--metrics-port", str(mport)] + (["--clean-session"] if clean else [])
    return subprocess.Popen(args, cwd=ROOT, stderr=log)


def _wait_subscribed(path, timeout=20):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if "subscribed" in path.read_text():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("mode", ["restarted", "clean"])
def test_worker_killed_mid_load_loses_and_duplicates_nothing(tmp_path, broker, pg, mode):
    """``restarted``: persistent sessions, and the killed worker comes back
    2 s later under its client id (as systemd's Restart= would bring it):
    mosquitto 2.0.11 queues a dead persistent member's share of a shared
    subscription for it, so until it returns devices wait out their
    receipt timeouts. ``clean``: --clean-session, the victim stays dead;
    the broker gives its share to the others at once, and what it held
    unreceipted comes again from the devices."""
    from edgefw.emul.broker import free_port

    devs = ["fleet-%d" % i for i in range(4)]
    keys = tmp_path / "keys.json"
    keys.write_text(json.dumps({d: KEY.hex() for d in devs}))
    workers, logs, mports = [], [], []
    for i in range(3):
        mports.append(free_port())
        logs.append(tmp_path / ("w%d.log" % i))
        workers.append(_worker(broker.port, pg.url, keys, "w%d" % i, mports[-1], open(logs[-1], "w"), mode == "clean"))
    try:
        assert all(_wait_subscribed(p) for p in logs)
        ps = [device(tmp_path / ("j-" + d), broker.port, d, 4000, drain_s=90, env={"EDGEFW_TEST_APPEND_S": "0.0005"}) for d in devs]
        # mid-load: the victim has committed batches (and so has receipts
        # in flight, and batches staged but not committed)
        t0 = time.monotonic()
        while (_scrape(_metrics(mports[1]), "edgefw_ingest_batches_committed_total") or 0) < 10 and time.monotonic() - t0 < 30:
            time.sleep(0.05)
        before = _scrape(_metrics(mports[1]), "edgefw_ingest_records_committed_total")
        assert before > 0
        # stopped first, so the broker hands it batches it will never
        # receipt (a kill between two batches would leave nothing to resend)
        workers[1].send_signal(signal.SIGSTOP)
        time.sleep(1.0)
        workers[1].send_signal(signal.SIGKILL)
        workers[1].wait()
        if mode == "restarted":
            time.sleep(2)
            workers.append(_worker(broker.port, pg.url, keys, "w1", free_port(), open(tmp_path / "w1-again.log", "w")))
        outs = [p.communicate(timeout=150) for p in ps]
        stats = [json.loads(o.strip().splitlines()[-1]) for o, _e in outs]
        assert all(p.returncode == 0 for p in ps), [e[-500:] for _o, e in outs]
        # every device saw every record receipted, and deleted it
        assert all(s["pending"] == 0 for s in stats), stats
        import psycopg

        with psycopg.connect(pg.url) as c:
            for d, s in zip(devs, stats, strict=True):
                seqs = [r[0] for r in c.execute("SELECT seq FROM records WHERE device = %s ORDER BY seq", (d,)).fetchall()]
                assert seqs == list(range(1, s["next_seq"])), d
            total = c.execute("SELECT count(*) FROM records").fetchone()[0]
        assert total == sum(s["next_seq"] - 1 for s in stats)
        # the survivors took the rest, and the devices did resend
        assert sum(_scrape(_metrics(mports[i]), "edgefw_ingest_records_committed_total") for i in (0, 2)) + before <= total
        assert sum(s["uplink"]["resent"] for s in stats) > 0
    finally:
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
                w.wait()
    for p in logs:
        assert "Traceback" not in p.read_text(), p.read_text()[-2000:]
