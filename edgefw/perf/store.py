"""``edgefw bench store`` and ``edgefw bench forward``: the journal and the
uplink against their peers, measured side by side in one run.

store:   records/s appending a telemetry record (about 200 bytes of CBOR)
         - our journal, durability fsync / group / none
         - persist-queue SQLiteAckQueue(auto_commit=True)
         - litequeue
         - raw: append the same bytes to a file and fsync, per record
forward: records/s from a journal on disk to rows in the ingest database,
         through a real mosquitto on loopback
         - our uplink (sealed batches) -> edgefw ingest (its own
           process), committed -> its receipt -> deleted from the
           device's journal (the clock stops when the journal is empty)
         - paho publishing one QoS 1 message per record -> a subscriber
           (its own process) storing each in SQLite
         and the time to drain a 1,000,000-record backlog.
"""

import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgefw.util import ROOT

# a window record as firmware/record.py builds and appends it: keys already
# in CBOR's canonical order, appended as ``ordered`` (the encoder neither
# sorts nor checks)
RECORD = {
    "k": "win",
    "t": 123000000,
    "ch": {
        "env.humidity_pct": [100, 45000, 45006, 45010],
        "env.pressure_hpa": [100, 1013200, 1013250, 1013300],
        "env.temperature_c": [100, 21950, 22000, 22050],
    },
    "dt": 1000000,
}


GROUP_RECORDS = 1024
GROUP_MS = 200


def _rate(n, dt):
    return n / dt if dt > 0 else float("inf")


def bench_store(n_fast=20000, n_sync=1000, progress=print):
    from firmware import cbor
    from firmware.store.journal import PRIO_TELEMETRY, Journal

    payload = cbor.dumps(dict(RECORD, seq=1))
    tmp = Path(tempfile.mkdtemp(prefix="edgefw-bench-"))
    res = {}
    try:
        # each pair compared in alternating rounds, so a change in what else
        # the machine is doing lands on both sides alike
        rounds = 10
        from persistqueue import SQLiteAckQueue

        progress("journal fsync-each vs raw append + fsync: %d records each, %d rounds" % (n_sync, rounds))
        j = Journal(str(tmp / "j-fsync"), "fsync")
        fd = os.open(tmp / "raw.bin", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        t_j = t_raw = 0.0
        per = {"fsync_each_vs_raw_fsync": [], "group_commit_vs_persist_queue": []}
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(n_sync // rounds):
                j.append(dict(RECORD), PRIO_TELEMETRY, True)
            dj = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(n_sync // rounds):
                os.write(fd, payload)
                os.fsync(fd)
            dr = time.perf_counter() - t0
            t_j, t_raw = t_j + dj, t_raw + dr
            per["fsync_each_vs_raw_fsync"].append(dr / dj if dj > 0 else float("inf"))
        j.close()
        os.close(fd)
        res["journal_fsync"] = _rate(n_sync, t_j)
        res["raw_fsync_each"] = _rate(n_sync, t_raw)

        # group commit: one fsync per 1,024 records or 200 ms, whichever
        # comes first (printed with the results)
        progress("journal group commit (%d records) vs persist-queue SQLiteAckQueue(auto_commit=True) (%d), %d rounds" % (n_fast, n_sync, rounds))
        j = Journal(str(tmp / "j-group"), "group", group_records=GROUP_RECORDS, group_ms=GROUP_MS)
        q = SQLiteAckQueue(str(tmp / "pq"), auto_commit=True)
        t_j = t_pq = 0.0
        for _ in range(rounds):
            t0 = time.perf_counter()
            for _ in range(n_fast // rounds):
                j.append(dict(RECORD), PRIO_TELEMETRY, True)
            j.flush()
            dj = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(n_sync // rounds):
                q.put(payload)
            dq = time.perf_counter() - t0
            t_j, t_pq = t_j + dj, t_pq + dq
            # rates per round: n_fast // rounds appends against n_sync // rounds puts
            per["group_commit_vs_persist_queue"].append((n_fast / dj) / (n_sync / dq) if dj > 0 and dq > 0 else float("inf"))
        j.close()
        res["journal_group"] = _rate(n_fast, t_j)
        res["persist_queue"] = _rate(n_sync, t_pq)

        progress("journal, durability none: %d records" % n_fast)
        j = Journal(str(tmp / "j-none"), "none")
        t0 = time.perf_counter()
        for _ in range(n_fast):
            j.append(dict(RECORD), PRIO_TELEMETRY, True)
        j.close()
        res["journal_none"] = _rate(n_fast, time.perf_counter() - t0)

        import litequeue

        progress("litequeue: %d records" % n_sync)
        lq = litequeue.LiteQueue(str(tmp / "lq.sqlite"))
        t0 = time.perf_counter()
        for _ in range(n_sync):
            lq.put(payload.hex())
        res["litequeue"] = _rate(n_sync, time.perf_counter() - t0)
        lq.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "records_per_s": {k: round(v, 1) for k, v in res.items()},
        "ratios": {
            "group_commit_vs_persist_queue": round(res["journal_group"] / res["persist_queue"], 2),
            "fsync_each_vs_raw_fsync": round(res["journal_fsync"] / res["raw_fsync_each"], 3),
            "group_commit_vs_litequeue": round(res["journal_group"] / res["litequeue"], 2),
        },
        # the same ratios round by round (the pairs alternate): median and spread
        "ratios_per_round": {k: _spread(v) for k, v in per.items()},
        "targets": {"group_commit_vs_persist_queue": 40, "fsync_each_vs_raw_fsync": 0.8},
        "group_commit": {"records": GROUP_RECORDS, "ms": GROUP_MS},
    }


def _fill(journal_path, n, progress):
    """A journal of n telemetry records, written frame by frame (the
    content of each record is the same apart from its sequence number)."""
    from firmware import cbor
    from firmware.store.journal import Journal, frame

    j = Journal(journal_path, "none", segment_bytes=4 << 20, cap_bytes=1 << 40)
    base = dict(RECORD)
    # encode once per distinct seq width, then splice the seq in: building
    # a million-record backlog in pure Python would dominate the run
    chunk = 10000
    for start in range(1, n + 1, chunk):
        for seq in range(start, min(n, start + chunk - 1) + 1):
            rec = dict(base, seq=seq)
            j.append(rec) if seq < 3 else _append_raw(j, seq, cbor.dumps(rec), frame)
        if progress and start % 100000 == 1:
            progress("  backlog: %d records" % (start - 1))
    j.close()


def _append_raw(j, seq, payload, frame):
    # the record is already encoded: only the frame is written
    from firmware.store.journal import PRIO_TELEMETRY

    j._write_frame(PRIO_TELEMETRY, seq, frame(seq, payload, j.now()))


def _ingest_process(port, db, keys_file, client_id, log):
    """``edgefw ingest`` as its own process, as it runs beside a fleet:
    the device's uplink and ingest do not share a process (or a GIL)
    anywhere but in a test. Returns it once it has subscribed."""
    cmd = [sys.executable, "-m", "edgefw", "ingest", "--broker", "127.0.0.1:%d" % port, "--db", db, "--keys", keys_file, "--client-id", client_id]
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), cwd=str(ROOT), env=dict(os.environ, PYTHONPATH=str(ROOT)))
    t0 = time.monotonic()
    while "subscribed" not in Path(log).read_text():
        if p.poll() is not None or time.monotonic() - t0 > 30:
            p.kill()
            raise RuntimeError("edgefw ingest did not subscribe: " + Path(log).read_text()[-500:])
        time.sleep(0.05)
    return p


def _rows(db):
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT count(*) FROM records").fetchone()[0]
    finally:
        c.close()


def _ours(port, tmp, template, n, tag, key=b"k" * 32):
    """Drain a copy of the journal ``template`` (n records) through the
    uplink to a fresh ``edgefw ingest`` process; returns (records/s,
    seconds, records stored)."""
    from firmware.store.journal import Journal
    from firmware.uplink.uplink import Uplink, make_client

    path = str(tmp / ("journal-" + tag))
    shutil.copytree(template, path)
    keys = tmp / "keys.json"
    keys.write_text('{"bench": "%s"}' % key.hex())
    db = str(tmp / ("ingest-%s.sqlite" % tag))
    ing = _ingest_process(port, db, str(keys), "bench-ingest-%s-%d" % (tag, os.getpid()), str(tmp / ("ingest-%s.log" % tag)))
    j = Journal(path, "none", segment_bytes=4 << 20, cap_bytes=1 << 40)
    up = Uplink(j, make_client("127.0.0.1", port, "bench-" + tag), "bench", key=key, batch_records=2000, batch_bytes=1 << 20, window=8)
    try:
        t0 = time.perf_counter()
        # done when the journal is empty: every record stored, receipted and
        # deleted on the device
        drained = up.drain(600000)
        dt = time.perf_counter() - t0
    finally:
        # a client left connected keeps reconnecting in paho's thread; a
        # later run's client then fights it for the session: every run
        # ends its own
        up.client.disconnect()
        ing.terminate()
        ing.wait(60)
    got = _rows(db) if drained else 0
    j.close()
    shutil.rmtree(path, ignore_errors=True)
    return _rate(got, dt), dt, got


# the peer's subscriber, in its own process as ingest is: one row and one
# commit per QoS 1 message; prints READY once subscribed and DONE at n
PAHO_SUBSCRIBER = """
import sqlite3, sys, threading
import cbor2
import paho.mqtt.client as mqtt
port, db, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = sqlite3.connect(db, check_same_thread=False)
c.execute("CREATE TABLE r (seq INTEGER PRIMARY KEY, body BLOB)")
got = [0]
done = threading.Event()
def on_message(cl, u, m):
    c.execute("INSERT OR IGNORE INTO r VALUES (?, ?)", (cbor2.loads(m.payload)["seq"], m.payload))
    c.commit()
    got[0] += 1
    if got[0] >= n:
        done.set()
sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
sub.on_connect = lambda cl, u, f, rc, p: cl.subscribe("bench/per-record", qos=1)
sub.on_subscribe = lambda *a: print("READY", flush=True)
sub.on_message = on_message
sub.connect("127.0.0.1", port)
sub.loop_start()
done.wait(300)
print("DONE", got[0], flush=True)
sub.disconnect()
sub.loop_stop()
"""


def _paho_per_record(port, tmp, n, tag):
    import paho.mqtt.client as mqtt

    from firmware import cbor

    payloads = [cbor.dumps(dict(RECORD, seq=s)) for s in range(1, n + 1)]
    sub = subprocess.Popen(
        [sys.executable, "-c", PAHO_SUBSCRIBER, str(port), str(tmp / ("paho-%s.sqlite" % tag)), str(n)], stdout=subprocess.PIPE, text=True
    )
    try:
        if sub.stdout.readline().strip() != "READY":
            raise RuntimeError("the paho subscriber did not subscribe")
        pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        pub.connect("127.0.0.1", port)
        pub.loop_start()
        t0 = time.perf_counter()
        infos = [pub.publish("bench/per-record", p, qos=1) for p in payloads]
        for i in infos:
            i.wait_for_publish(60)
        line = sub.stdout.readline().split()
        dt = time.perf_counter() - t0
        pub.disconnect()
        pub.loop_stop()
        got = int(line[1]) if line[:1] == ["DONE"] else 0
    finally:
        if sub.poll() is None:
            sub.kill()
        sub.wait(30)
    return _rate(got, dt)


def _spread(xs):
    xs = sorted(xs)
    m = len(xs) // 2
    med = xs[m] if len(xs) % 2 else (xs[m - 1] + xs[m]) / 2
    return {"median": round(med, 2), "min": round(xs[0], 2), "max": round(xs[-1], 2), "runs": [round(x, 2) for x in xs]}


def bench_forward(n=20000, n_paho=5000, backlog=1000000, progress=print, runs=5):
    """Each measurement ``runs`` times, ours and the peer in alternation
    (a change in the machine's load lands on both alike); median, min and
    max of each, and of the ratio per round."""
    from edgefw.emul.broker import Mosquitto

    tmp = Path(tempfile.mkdtemp(prefix="edgefw-bench-"))
    ours, paho, ratio, drain_s = [], [], [], []
    res = {}
    # a broker of its own for each round: one shared by the rounds queued
    # every later round's batches for every earlier round's ingest as well
    def broker(tag):
        return Mosquitto.fresh(tmp, "broker-" + tag)

    try:
        progress("filling a journal of %d records" % n)
        small = str(tmp / "template-small")
        _fill(small, n, None)
        for r in range(runs):
            progress("round %d/%d: ours, journal -> uplink -> mosquitto -> ingest, %d records; paho, one QoS 1 message per record -> subscriber -> SQLite, %d records" % (r + 1, runs, n, n_paho))
            with broker("r%d" % r) as b:
                o, _dt, _ = _ours(b.port, tmp, small, n, "t%d" % r)
                p = _paho_per_record(b.port, tmp, n_paho, "p%d" % r)
            ours.append(o)
            paho.append(p)
            ratio.append(o / p if p else float("inf"))
        shutil.rmtree(small, ignore_errors=True)
        if backlog:
            progress("backlog: filling %d records..." % backlog)
            big = str(tmp / "template-backlog")
            _fill(big, backlog, progress)
            for r in range(runs):
                progress("backlog drain %d/%d" % (r + 1, runs))
                with broker("b%d" % r) as b:
                    _r, dt, got = _ours(b.port, tmp, big, backlog, "b%d" % r)
                res["backlog_records"] = got
                drain_s.append(dt * 1000000 / max(got, 1))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    res["runs"] = runs
    res["end_to_end_records_per_s"] = {"ours": _spread(ours), "paho_per_record": _spread(paho)}
    res["ratios"] = {"end_to_end_vs_paho_per_record": _spread(ratio)}
    if drain_s:
        res["backlog_1m_drain_s"] = _spread(drain_s)
    res["targets"] = {"end_to_end_vs_paho_per_record": 25, "backlog_1m_drain_s": 20}
    return res
