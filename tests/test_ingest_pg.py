"""edgefw ingest into a real PostgreSQL (tests/helpers/postgres.py): the
schema, idempotent writes, the same rows as SQLite, receipts only after
commit, and a database that goes away or refuses."""

import json
import re
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from tests.conftest import ROOT
from tests.helpers.postgres import Postgres

KEY = bytes(range(1, 33))
DEV = "pg-dev"


@pytest.fixture
def pg():
    with Postgres() as p:
        yield p


def _record(seq, t=1000000):
    from edgefw.perf.store import RECORD

    return dict(RECORD, t=t * seq, seq=seq)


def _batch(dev, q, seqs, boot=b"B" * 8, utc_ms=1764763200123, mono_ms=42, key=KEY, recs=None):
    """A sealed batch as firmware/uplink/uplink.py builds it."""
    from firmware import cbor
    from firmware.uplink.seal import Sealer

    recs = recs if recs is not None else [cbor.dumps(_record(s)) for s in seqs]
    m = {"dev": dev, "q": q, "first": seqs[0], "last": seqs[-1], "id": bytes(8), "boot": boot, "utc_ms": utc_ms, "mono_ms": mono_ms, "recs": recs}
    return Sealer(key, dev).seal(q, seqs[0], seqs[-1], cbor.dumps(m))


def _ingest(url, keys=None):
    from edgefw.ingest.server import Ingest

    return Ingest(url, keys or {DEV: KEY}, log=None)


def _pg_rows(pg, dev=DEV):
    import psycopg

    with psycopg.connect(pg.url) as c:
        return c.execute(
            "SELECT device, seq, priority, kind, t_us, body, extract(epoch FROM received)::float8, boot, device_utc_ms, device_mono_ms"
            " FROM records WHERE device = %s ORDER BY seq",
            (dev,),
        ).fetchall()


def test_same_records_in_sqlite_and_postgresql(tmp_path, pg):
    from firmware import cbor

    lite = _ingest(str(tmp_path / "i.sqlite"))
    post = _ingest(pg.url)
    # an event batch, a telemetry batch, a run without a clock, and an
    # event record with bytes and text in it
    boot_rec = cbor.dumps({"k": "boot", "t": 0, "boot": b"\x00\x01\x02\x03\x04\x05\x06\x07", "utc_ms": None, "seq": 7})
    blobs = [
        _batch(DEV, 1, [1, 2, 3]),
        _batch(DEV, 0, [7], recs=[boot_rec], utc_ms=None),
        _batch(DEV, 1, [8, 9], boot=b"C" * 8, mono_ms=2**40),
    ]
    for blob in blobs:
        a, b = lite.handle(blob), post.handle(blob)
        assert a is not None and b is not None and a == b  # the same receipt
    # the arrival time is each database's own: made equal for the comparison
    lite_rows = [
        tuple(r)
        for r in lite.db.execute("SELECT device, seq, queue, kind, t_us, body, received, boot, device_utc_ms, device_mono_ms FROM records ORDER BY seq")
    ]
    pg_rows = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in _pg_rows(pg)]
    assert len(lite_rows) == len(pg_rows) == 6
    for lr, pr in zip(lite_rows, pg_rows, strict=True):
        assert abs(lr[6] - pr[6]) < 5
        assert lr[:6] + lr[7:] == pr[:6] + pr[7:]
    assert lite.counts == post.counts
    # the dashboard's columns: device clocks as a timestamp, readings by channel
    import psycopg

    with psycopg.connect(pg.url) as c:
        utc = c.execute("SELECT extract(epoch FROM device_utc)::float8 FROM records WHERE seq = 1").fetchone()[0]
        assert utc == pytest.approx(1764763200.123)
        assert c.execute("SELECT device_utc FROM records WHERE seq = 7").fetchone()[0] is None
        assert c.execute("SELECT data->>'boot', priority FROM records WHERE seq = 7").fetchone() == ("0001020304050607", 0)
        rd = c.execute("SELECT channel, n, min_milli, mean_milli, max_milli FROM readings WHERE seq = 2 ORDER BY channel").fetchall()
        assert rd == [
            ("env.humidity_pct", 100, 45000, 45006, 45010),
            ("env.pressure_hpa", 100, 1013200, 1013250, 1013300),
            ("env.temperature_c", 100, 21950, 22000, 22050),
        ]
    lite.close()
    post.close()


def test_resends_and_replays_are_stored_once(pg):
    post = _ingest(pg.url)
    blob = _batch(DEV, 1, list(range(1, 101)))
    assert post.handle(blob) is not None
    assert post.handle(blob) is not None  # the broker delivering it again
    # the device resending after a reboot: a new seal, another run id, and
    # a batch that reaches past the first
    assert post.handle(_batch(DEV, 1, list(range(51, 151)), boot=b"R" * 8)) is not None
    assert post.counts["records"] == 150 and post.counts["duplicates"] == 150
    assert [r[1] for r in _pg_rows(pg)] == list(range(1, 151))
    post.close()


def test_two_workers_committing_the_same_batch_at_once_store_it_once(pg):
    # two workers of a shared subscription each got a copy (a resend while
    # the first was committing): the key table decides, in both transactions
    ings = [_ingest(pg.url) for _ in range(2)]
    for round_ in range(20):
        seqs = list(range(round_ * 50 + 1, round_ * 50 + 51))
        for ing in ings:
            ing.handle(_batch(DEV, 1, seqs), commit=False)
        go = threading.Barrier(2)
        outs = []

        def commit(ing, go=go, outs=outs):
            go.wait()
            outs.append(ing.commit())

        ts = [threading.Thread(target=commit, args=(i,)) for i in ings]
        for t in ts:
            t.start()
        for t in ts:
            t.join(30)
        # both copies are receipted: each worker saw the batch committed
        assert [len(o) for o in outs] == [1, 1]
    assert sum(i.counts["records"] for i in ings) == 1000
    assert sum(i.counts["duplicates"] for i in ings) == 1000
    assert [r[1] for r in _pg_rows(pg)] == list(range(1, 1001))


def test_last_hour_of_a_device_uses_the_index_and_one_partition(pg):
    import psycopg

    post = _ingest(pg.url, {"d%03d" % i: KEY for i in range(40)})
    for i in range(40):
        for k in range(5):
            post.handle(_batch("d%03d" % i, 1, list(range(k * 100 + 1, k * 100 + 101))), commit=False)
    post.commit()
    assert post.counts["records"] == 40 * 500
    with psycopg.connect(pg.url, autocommit=True) as c:
        # yesterday's partition, so there is one to prune
        c.execute("CREATE TABLE IF NOT EXISTS records_p20000101 PARTITION OF records FOR VALUES FROM ('2000-01-01 00:00+00') TO ('2000-01-02 00:00+00')")
        c.execute("ANALYZE records")
        plan = "\n".join(
            r[0]
            for r in c.execute(
                "EXPLAIN SELECT received, data FROM records WHERE device = 'd007' AND received > now() - interval '1 hour' ORDER BY received"
            ).fetchall()
        )
        n = c.execute("SELECT count(*) FROM records WHERE device = 'd007' AND received > now() - interval '1 hour'").fetchone()[0]
    assert n == 500
    # today's partition, through its copy of the (device, received) index
    assert re.search(r"Index (Only )?Scan using records_p\d{8}_device_received_idx", plan) or re.search(
        r"Bitmap Index Scan on records_p\d{8}_device_received_idx", plan
    ), plan
    assert "Index" in plan and "Seq Scan" not in plan, plan
    assert "records_p20000101" not in plan, plan
    post.close()


def test_retention_drops_whole_days(pg):
    import psycopg

    post = _ingest(pg.url)
    post.handle(_batch(DEV, 1, [1, 2]))
    with psycopg.connect(pg.url, autocommit=True) as c:
        c.execute("CREATE TABLE records_p20000101 PARTITION OF records FOR VALUES FROM ('2000-01-01 00:00+00') TO ('2000-01-02 00:00+00')")
        c.execute("INSERT INTO records (device, priority, seq, received, body, data) VALUES ('old', 1, 1, '2000-01-01 12:00+00', '\\x00', '{}')")
        c.execute("INSERT INTO record_keys VALUES ('old', 1, '2000-01-01 12:00+00')")
        assert c.execute("SELECT edgefw_retain('30 days')").fetchone()[0] == 1
        assert c.execute("SELECT to_regclass('records_p20000101')").fetchone()[0] is None
        assert c.execute("SELECT device, count(*) FROM records GROUP BY device").fetchall() == [(DEV, 2)]
        assert c.execute("SELECT device FROM record_keys GROUP BY device").fetchall() == [(DEV,)]
    post.close()


def _ingest_cli(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "edgefw.cli", "ingest", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize(
    "url,says",
    [
        ("postgresql://u:secret@h:port/db", "port 'port' is not a number"),
        ("postgresql://u:secret@[::1/db", "not a PostgreSQL URL"),
        ("postgresql://u:secret@h/db?colour=red", "not a PostgreSQL URL"),
        ("mysql://u@h/db", "unknown database 'mysql'"),
    ],
)
def test_a_malformed_url_is_refused_at_start(url, says):
    p = _ingest_cli("--db", url, "--idle-exit", "1")
    assert p.returncode == 2
    assert "--db" in p.stderr and says in p.stderr, p.stderr
    assert "postgresql://USER:PASSWORD@HOST:PORT/DBNAME" in p.stderr
    assert "secret" not in p.stderr


def test_refusing_database_gets_no_receipt_until_it_takes_the_batch(pg):
    """Wrong password, then read-only, then a stopped server: each time no
    receipt, the reason in the metrics; then the same staged batch commits."""
    from edgefw.ingest.server import Ingest

    ing = Ingest(pg.url_with(password="wrong"), {DEV: KEY}, log=None)
    assert ing.handle(_batch(DEV, 1, [1, 2, 3])) is None
    assert ing.db_error[0] == "auth"
    assert ing.commit() == [] and ing.db_error[0] == "auth"
    ing.close()

    pg.sql("ALTER DATABASE edgefw SET default_transaction_read_only = on")
    ing = Ingest(pg.url, {DEV: KEY}, log=None)
    assert ing.handle(_batch(DEV, 1, [1, 2, 3])) is None
    assert ing.db_error[0] == "read_only", ing.db_error
    pg.stop()
    assert ing.commit() == [] and ing.db_error[0] == "unavailable", ing.db_error
    text = ing.metrics.render(ing.counts)
    assert 'edgefw_ingest_db_errors_total{reason="read_only"} ' in text and "edgefw_ingest_db_up 0" in text
    assert "edgefw_ingest_pending_batches 1" in text
    pg.start()
    pg.sql("ALTER DATABASE edgefw SET default_transaction_read_only = off")
    sent = ing.commit()
    assert ing.db_error is None and len(sent) == 1 and sent[0][0][0] == DEV
    assert ing.counts["records"] == 3 and ing.counts["receipts"] == 1
    assert [r[1] for r in _pg_rows(pg)] == [1, 2, 3]
    ing.close()


def device(journal, port, dev, count, drain_s=60, env=None):
    """A device process: real journal and uplink (tests/helpers/device.py)."""
    import os

    args = [sys.executable, "-m", "tests.helpers.device", str(journal), str(port), dev, KEY.hex(), str(count), str(64 << 20), str(drain_s)]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, **(env or {})))


def _metrics(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=5) as r:
        return r.read().decode()


def _scrape(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return None


def test_postgres_stopped_mid_load_every_record_once(tmp_path, broker, pg):
    """Three devices (real journal and uplink, tests/helpers/device.py)
    forward through mosquitto to an ingest process on PostgreSQL; the
    database stops for 3 s and starts again. Every record is stored once,
    each device's journal empties, and ingest said why on its log and
    metrics."""
    from edgefw.emul.broker import free_port

    keys = tmp_path / "keys.json"
    devs = ["pg-a", "pg-b", "pg-c"]
    keys.write_text(json.dumps({d: KEY.hex() for d in devs}))
    mport = free_port()
    log = open(tmp_path / "ingest.log", "w")
    ing = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "edgefw.cli",
            "ingest",
            "--broker",
            "127.0.0.1:%d" % broker.port,
            "--db",
            pg.url,
            "--keys",
            str(keys),
            "--client-id",
            "pg-ingest",
            "--metrics-port",
            str(mport),
        ],
        cwd=ROOT,
        stderr=log,
    )
    try:
        t0 = time.monotonic()
        while "subscribed" not in (tmp_path / "ingest.log").read_text() and time.monotonic() - t0 < 20:
            time.sleep(0.1)
        ps = [device(tmp_path / ("j-" + d), broker.port, d, 3000, env={"EDGEFW_TEST_APPEND_S": "0.001"}) for d in devs]
        time.sleep(1.0)
        pg.stop()
        time.sleep(3.0)
        down = _metrics(mport)
        pg.start()
        outs = [p.communicate(timeout=120) for p in ps]
        stats = [json.loads(o.strip().splitlines()[-1]) for o, _e in outs]
        assert all(p.returncode == 0 for p in ps), [e[-500:] for _o, e in outs]
        assert all(s["pending"] == 0 for s in stats), stats
        assert _scrape(down, "edgefw_ingest_db_up") == 0
        assert _scrape(down, 'edgefw_ingest_db_errors_total{reason="unavailable"}') >= 1
        import psycopg

        with psycopg.connect(pg.url) as c:
            for d, s in zip(devs, stats, strict=True):
                seqs = [r[0] for r in c.execute("SELECT seq FROM records WHERE device = %s ORDER BY seq", (d,)).fetchall()]
                assert seqs == list(range(1, s["next_seq"])), d
        up = _metrics(mport)
        assert _scrape(up, "edgefw_ingest_db_up") == 1
        assert _scrape(up, "edgefw_ingest_records_committed_total") == sum(s["next_seq"] - 1 for s in stats)
        for d in devs:
            assert 'edgefw_ingest_device_last_seen_timestamp_seconds{device="%s"}' % d in up
    finally:
        ing.terminate()
        ing.wait(20)
        log.close()
    assert "database refused the write (unavailable)" in (tmp_path / "ingest.log").read_text()


def test_full_disk_gets_no_receipt_and_commits_once_space_returns(pg):
    """Today's partition on a 4 MB tmpfs tablespace: writes fail with
    PostgreSQL's disk-full error (53100) until the tmpfs grows."""
    import os

    tiny = os.path.join(pg.dir, "tiny")
    os.mkdir(tiny)
    uid, gid = pg.user.pw_uid, pg.user.pw_gid
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4M,uid=%d,gid=%d,mode=0700" % (uid, gid), "tmpfs", tiny], check=True, timeout=30)
    try:
        post = _ingest(pg.url)
        pg.sql("CREATE TABLESPACE tiny LOCATION '%s'" % tiny, db="edgefw")
        for part in pg.sql(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'records'::regclass", db="edgefw"
        ).split():
            pg.sql("ALTER TABLE %s SET TABLESPACE tiny" % part, db="edgefw")
        sent = 0
        for k in range(200):
            if post.handle(_batch(DEV, 1, list(range(k * 200 + 1, k * 200 + 201)))) is None:
                break
            sent += 1
        assert 0 < sent < 200
        assert post.db_error[0] == "disk_full", post.db_error
        assert post.metrics.render(post.counts).count('edgefw_ingest_db_errors_total{reason="disk_full"} 1') == 1
        # still full: still no receipt, and the batch is still waiting
        assert post.commit() == [] and post.metrics.pending == 1
        subprocess.run(["mount", "-o", "remount,size=64M", tiny], check=True, timeout=30)
        out = post.commit()
        assert post.db_error is None and len(out) == 1
        assert [r[1] for r in _pg_rows(pg)] == list(range(1, (sent + 1) * 200 + 1))
        post.close()
    finally:
        pg.stop()
        subprocess.run(["umount", tiny], timeout=30)


def test_rows_the_database_refuses_do_not_hold_up_the_rest(pg):
    """A batch PostgreSQL refuses for its data (here a CHECK constraint the
    test adds) is refused to its device with a negative receipt; the
    batches committed with it in one group are stored and receipted.
    Text PostgreSQL cannot hold (NUL) and a device clock past any
    timestamp are stored, not refused."""
    from firmware import cbor
    from firmware.uplink import receipt

    post = _ingest(pg.url)
    pg.sql("ALTER TABLE records ADD CONSTRAINT test_no_poison CHECK (kind IS DISTINCT FROM 'poison')", db="edgefw")
    poison = [cbor.dumps({"k": "poison", "t": 1, "seq": 201})]
    nul = [cbor.dumps({"k": "ev\x00il", "t": 2, "msg": "a\x00b", "seq": 301})]
    post.handle(_batch(DEV, 1, list(range(1, 101))), commit=False)
    post.handle(_batch(DEV, 0, [201], recs=poison), commit=False)
    post.handle(_batch(DEV, 0, [301], recs=nul, utc_ms=2**62), commit=False)
    post.handle(_batch(DEV, 1, list(range(101, 201))), commit=False)
    sent = post.commit()
    assert post.db_error is None
    verdicts = [receipt.parse(body, KEY) for (dev, body), _t in sent]
    assert [(r["first"], r["ok"]) for r in verdicts] == [(1, True), (201, False), (301, True), (101, True)]
    assert "the database refused it" in verdicts[1]["why"] and "test_no_poison" in verdicts[1]["why"]
    assert post.counts["malformed"] == 1 and post.counts["records"] == 201
    import psycopg

    with psycopg.connect(pg.url) as c:
        assert [r[0] for r in c.execute("SELECT seq FROM records ORDER BY seq").fetchall()] == list(range(1, 201)) + [301]
        kind, msg, utc_ms, utc, body = c.execute("SELECT kind, data->>'msg', device_utc_ms, device_utc, body FROM records WHERE seq = 301").fetchone()
        assert (kind, msg, utc_ms, utc) == ("ev\ufffdil", "a\ufffdb", 2**62, None)
        assert bytes(body) == nul[0]  # the record's own bytes, NUL and all
    post.close()


def test_a_value_binary_copy_cannot_encode_is_a_data_error_and_the_next_write_goes_in(pg):
    """verify.open_batch lets no such batch through; should one reach the
    store all the same (a float queue number), it is the batch's data
    error, not an exception that stops the worker's commits."""
    from edgefw.ingest.db.errors import StoreError
    from edgefw.ingest.db.postgres import PostgresStore
    from edgefw.ingest.verify import Batch

    def batch(q, seq):
        rec = _record(seq)
        return Batch(DEV, q, seq, seq, b"i" * 8, b"B" * 8, None, 5, None, [(rec, b"raw")], time.time())

    store = PostgresStore(pg.url)
    with pytest.raises(StoreError) as e:
        store.write([batch(1.0, 1)])
    assert e.value.reason == "data"
    assert store.write([batch(1, 2)])[:2] == (1, 0)
    assert [r[1] for r in _pg_rows(pg)] == [2]
    store.close()


def test_a_database_made_while_data_was_jsonb_takes_records_as_before(pg):
    """Before ``data`` was json it was jsonb; such a database keeps its
    column, and binary COPY sends jsonb's own wire format to it."""
    import psycopg

    from edgefw.ingest.db.postgres import SCHEMA

    with psycopg.connect(pg.url, autocommit=True) as c:
        c.execute(SCHEMA.replace("data json NOT NULL", "data jsonb NOT NULL"))
    post = _ingest(pg.url)
    assert post.handle(_batch(DEV, 1, [1, 2, 3])) is not None
    post.close()
    with psycopg.connect(pg.url) as c:
        assert c.execute("SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = 'records'::regclass AND attname = 'data'").fetchone()[0] == "jsonb"
        assert c.execute("SELECT array_agg((data->>'seq')::int ORDER BY seq), bool_and(data @> '{\"k\": \"win\"}') FROM records").fetchone() == ([1, 2, 3], True)
        assert c.execute("SELECT count(*) FROM readings WHERE channel = 'env.temperature_c'").fetchone()[0] == 3


def test_the_fast_json_encoder_stores_what_json_stores(monkeypatch):
    """``data`` goes through orjson when it is installed; a record it
    cannot take as json would (a key that is not text, a tagged CBOR
    value, an integer beyond 64 bits, NUL) takes json's path. Either way
    the value jsonb stores is the same."""
    import datetime
    import decimal
    import random
    import uuid

    from edgefw.ingest.db import postgres as P

    if P.orjson is None:
        pytest.skip("orjson not installed: json encodes every record (pip install 'edgefw[postgres]')")
    rng = random.Random(7)

    def value(depth=0):
        pick = rng.randrange(12 if depth < 3 else 8)
        return [
            lambda: rng.randrange(-(1 << 70), 1 << 70) >> rng.randrange(72),
            lambda: rng.uniform(-1e20, 1e20) * 10 ** -rng.randrange(30),
            lambda: rng.choice([float("nan"), float("inf"), -float("inf"), 0.1, 1e16, -0.0]),
            lambda: "".join(rng.choice("ab\x00\u00e9\u4e2d\U0001f600\"\\\n") for _ in range(rng.randrange(6))),
            lambda: bytes(rng.randrange(256) for _ in range(rng.randrange(5))),
            lambda: rng.choice([None, True, False]),
            lambda: rng.choice([datetime.datetime(2026, 1, 2, tzinfo=datetime.timezone.utc), uuid.UUID(int=rng.randrange(1 << 64)), decimal.Decimal("1.25")]),
            lambda: rng.randrange(1 << 62),
            lambda: [value(depth + 1) for _ in range(rng.randrange(4))],
            lambda: {rng.choice(["k", "ch", "x\x00", "\u00e9"]) + str(i): value(depth + 1) for i in range(rng.randrange(4))},
            lambda: {rng.choice([1, 1.5, float("nan"), None, True]): value(depth + 1)},
            lambda: tuple(value(depth + 1) for _ in range(2)),
        ][pick]()

    records = [{"k": "win", "seq": i, "v": value()} for i in range(3000)]
    fast = [P.to_json(r) for r in records]
    monkeypatch.setattr(P, "orjson", None)
    slow = [P.to_json(r) for r in records]
    for r, a, b in zip(records, fast, slow, strict=True):
        # the text may spell a float differently (1e16, 1e+16), the value not
        assert json.loads(a) == json.loads(b), r
        assert "\\u0000" not in a
