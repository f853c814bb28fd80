"""``edgefw bench ingest``: a fleet on loopback -> mosquitto -> K ingest
workers (``--share``) -> PostgreSQL, and the same devices into SQLite
(one worker: SQLite has one writer), beside two peers in the same run.

Devices: ``--devices N`` simulated devices in a few processes, each the
real ``firmware.uplink.uplink.Uplink`` (batches, AES+HMAC seal, window,
receipts checked with the device key, resends) over the real paho client,
reading from an in-memory journal instead of flash: a backlog of
``--records`` window records each, sent as fast as receipts come back.
The clock runs from the start signal until every device has every record
receipted (so deleted on the device).

Receipt latency: per batch, from its publish to its receipt arriving at
the device (the batches in flight before it, up to the uplink's window, 4 unless
``--window`` says otherwise, are part of it).

Peers:
- naive: one paho subscriber inserting one row per message (autocommit),
  fed one QoS 1 message per record;
- copy: the same rows COPYed by PostgreSQL from one process, no broker,
  into a copy of the schema (records only; ours also writes record_keys).

CPU seconds per component come from /proc/PID/stat (utime + stime) of the
ingest workers, mosquitto, the postmaster and its backends, and the device
processes; they share the machine, so records/s is what a box of this size
does with the fleet simulator on it too.
"""

import collections
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

KEY = bytes(range(100, 132))
TARGETS = {"postgresql_records_per_s": 50000, "receipt_p99_ms": 1000, "vs_copy": 0.30, "vs_naive": 25}


# ----------------------------------------------------------------- devices
class MemJournal:
    """What ``Uplink`` needs of a journal, in memory: one telemetry queue
    holding records 1..n, acknowledged in order. With ``rate`` (records/s)
    the records appear at that pace from ``start()`` on, as a device
    measuring them would append them; without, all are there at once (a
    backlog)."""

    def __init__(self, n, payload, rate=None):
        self.lock = threading.Lock()
        self._live = {}
        self.n = n
        self.acked = 0
        self.payload = payload
        self.rate = rate
        self.t0 = None

    def start(self):
        self.t0 = time.perf_counter()

    def available(self):
        if not self.rate or self.t0 is None:
            return self.n
        return min(self.n, int(self.rate * (time.perf_counter() - self.t0)))

    def tick(self):
        pass

    def flush(self):
        pass

    def read_batch_after(self, after, max_records=100, max_bytes=65536):
        start = max(self.acked, after.get(1, 0), after.get(3, 0)) + 1
        top = self.available()
        if start > top:
            return None, []
        out, size = [], 0
        for s in range(start, min(top, start + max_records - 1) + 1):
            p = self.payload(s)
            if out and size + len(p) > max_bytes:
                break
            out.append((s, p))
            size += len(p)
        return 1, out

    def ack(self, q, seq):
        self.acked = max(self.acked, seq)

    def pending(self, q=None):
        return self.n - self.acked


def _payload_fn():
    import cbor2

    from edgefw.perf.store import RECORD

    # the record with "seq" last, as the journal appends it: a fixed head
    # and the sequence number's own CBOR
    full = cbor2.dumps(dict(RECORD, seq=0))
    head = full[:-1]
    cache = {}

    def payload(s):
        p = cache.get(s)
        if p is None:
            p = head + cbor2.dumps(s)
            if len(cache) > 4096:
                cache.clear()
            cache[s] = p
        return p

    return payload


def _device_main(argv):
    """python -m edgefw.perf.ingest device PORT RECORDS RATE BATCH WINDOW DEV...: connect
    every device, say "ready", wait for a line on stdin, send everything
    (RATE records/s each, 0: all at once), print one JSON line."""
    from firmware.linux.paho_client import Client
    from firmware.uplink import receipt
    from firmware.uplink.uplink import Uplink

    port, n, rate, batch, window = int(argv[0]), int(argv[1]), float(argv[2]), int(argv[3]), int(argv[4])
    # 200 threads (100 devices and paho's for each) take turns at the GIL:
    # a longer slice before a forced switch cost the simulator less (6
    # alternating pairs of 1,000-device runs: 6.6 against 7.1 CPU s, the
    # medians; 57,174 against 55,387 records/s committed)
    sys.setswitchinterval(0.05)
    devs = argv[5:]
    payload = _payload_fn()

    class Stamped(collections.deque):
        # paho's callback appends each receipt here as it arrives: its
        # arrival time is the receipt's, however late the device polls
        def append(self, x):
            collections.deque.append(self, (x, time.perf_counter()))

    class Timed(Client):
        def __init__(self, *a, **kw):
            Client.__init__(self, *a, **kw)
            self._inbox = Stamped()
            self.up = None
            self.sent_at = {}
            self.lat = []
            self.holds = []

        def publish(self, topic, body):
            h = Client.publish(self, topic, body)
            self.sent_at[h.mid] = time.perf_counter()
            return h

        def receipts(self, timeout_ms=0):
            if not self._inbox and timeout_ms:
                self._arrived.wait(timeout_ms / 1000)
            self._arrived.clear()
            out = []
            while self._inbox:
                blob, t_in = self._inbox.popleft()
                out.append(blob)
                r = receipt.parse(blob, KEY)
                if not r or not r.get("ok"):
                    continue
                if r.get("hold"):
                    self.holds.append(r["hold"])
                for b in self.up._inflight:
                    if b.id == r.get("id"):
                        t = self.sent_at.pop(b.handle.mid, None)
                        if t is not None:
                            self.lat.append(t_in - t)
                        break
            return out

    ups = []
    for d in devs:
        c = Timed("127.0.0.1", port, d, timeout_ms=20000)
        # a paced device batches as a real one does (up to --batch-records or
        # 1 s); a backlog goes out in full batches at once
        up = Uplink(
            MemJournal(n, payload, rate or None),
            c,
            d,
            key=KEY,
            batch_records=batch,
            batch_ms=1000 if rate else 0,
            window=window,
            ack_timeout_ms=20000,
            receipt_timeout_ms=20000,
        )
        c.up = up
        up._ensure_connected()
        ups.append((up, c))
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.time()
    cpu0 = os.times()
    done = []

    def run(up, c):
        up.j.start()
        while up.j.pending():
            up.pump()
            if rate:
                # a paced device has a part-filled batch waiting most of the
                # time (it goes when full or at 1 s): look four times a
                # second, or at a receipt's arrival. Receipt times are
                # taken on arrival regardless; 1,000 devices polling
                # every 20 ms left the simulator short of the rate offered
                c._arrived.wait(0.25)
            else:
                # the window is full, all is sent, or the receiver said to
                # hold: nothing to do until a receipt comes or the hold
                # ends. Wait for its arrival (paho's thread sets the
                # event), not in a poll: a thousand device threads polling
                # each millisecond cost the machine more CPU than ingest
                # and the database together (a due resend waits at most
                # this long)
                nap = up._idle_ms(5)
                c._arrived.wait(1.0 if nap is None else nap / 1000)
        done.append(time.time())
        c.disconnect()

    ts = [threading.Thread(target=run, args=uc) for uc in ups]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    lat = [x for _u, c in ups for x in c.lat]
    cpu1 = os.times()
    cpu = cpu1.user + cpu1.system - cpu0.user - cpu0.system
    print(json.dumps({"t0": t0, "t1": max(done), "records": n * len(devs), "lat": lat, "resent": sum(u.resent for u, _c in ups), "cpu_s": cpu, "holds": [h for _u, c in ups for h in c.holds]}))


# ----------------------------------------------------------------- /proc
_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return (int(parts[11]) + int(parts[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return 0.0


def _children(ppid):
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == ppid:
                        out.append(int(d))
            except (OSError, IndexError, ValueError):
                pass
    return out


class CpuMeter:
    """CPU seconds of named groups of processes between ``start`` and
    ``stop``; a group is a list of pids or a callable giving one."""

    def __init__(self, groups):
        self.groups = groups

    def _read(self):
        out = {}
        for name, g in self.groups.items():
            pids = g() if callable(g) else g
            out[name] = {p: _cpu(p) for p in pids}
        return out

    def start(self):
        self.a = self._read()

    def stop(self):
        b = self._read()
        return {name: round(sum(v - self.a[name].get(p, 0.0) for p, v in b[name].items()), 2) for name in b}


# ----------------------------------------------------------------- runs
def _pct(xs, q):
    if not xs:
        return None
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def _spread(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return None
    return {"median": round(statistics.median(xs), 1), "min": round(min(xs), 1), "max": round(max(xs), 1), "runs": [round(x, 1) for x in xs]}


def _env():
    from edgefw.util import ROOT

    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env, str(ROOT)


def _fleet_run(port, db, devices, records, workers, tmp, tag, procs_per=None, pg_pid=None, count_rows=None, mosquitto_pid=None, rate=0, batch=200, window=4, pace_ms=0):
    """One run: K workers on ``db``, the fleet sends its backlog; returns
    the figures."""
    env, root = _env()
    names = ["bench-%04d" % i for i in range(devices)]
    keys = tmp / "keys.json"
    keys.write_text(json.dumps({d: KEY.hex() for d in names}))
    ws = []
    for k in range(workers):
        log = open(tmp / ("%s-w%d.log" % (tag, k)), "w")
        args = [
            sys.executable,
            "-m",
            "edgefw.cli",
            "ingest",
            "--broker",
            "127.0.0.1:%d" % port,
            "--db",
            db,
            "--keys",
            str(keys),
            "--client-id",
            "%s-w%d" % (tag, k),
            "--metrics-port",
            "0",
        ]
        if workers > 1:
            args += ["--share", "bench-" + tag]
        if pace_ms:
            args += ["--pace-ms", str(pace_ms)]
        ws.append(subprocess.Popen(args, cwd=root, env=env, stderr=log))
        log.close()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not all("subscribed" in (tmp / ("%s-w%d.log" % (tag, k))).read_text() for k in range(workers)):
        time.sleep(0.05)
    # at most 100 devices (200 threads with paho's) to a process: 250 to a
    # process spent most of their CPU taking turns at the GIL
    nproc = procs_per or min(16, max(1, -(-devices // 100)))
    groups = [names[i::nproc] for i in range(nproc)]
    ds = [
        subprocess.Popen(
            [sys.executable, "-m", "edgefw.perf.ingest", "device", str(port), str(records), str(rate), str(batch), str(window)] + g,
            cwd=root,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for g in groups
        if g
    ]
    for d in ds:
        line = d.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("a device process did not start: %r" % line)
    # the device processes report their own CPU: they have exited when the meter reads
    cpu_groups = {"ingest_workers": [w.pid for w in ws]}
    if pg_pid:
        cpu_groups["postgres"] = lambda: [pg_pid] + _children(pg_pid)
    if mosquitto_pid:
        cpu_groups["mosquitto"] = [mosquitto_pid]
    meter = CpuMeter(cpu_groups)
    rows0 = count_rows() if count_rows else None
    meter.start()
    for d in ds:
        d.stdin.write("go\n")
        d.stdin.flush()
    outs = [json.loads(d.communicate(timeout=1800)[0].strip().splitlines()[-1]) for d in ds]
    cpu = meter.stop()
    cpu["devices"] = round(sum(o["cpu_s"] for o in outs), 2)
    hist = _ingest_histogram(tmp, tag, workers)
    t0 = min(o["t0"] for o in outs)
    t1 = max(o["t1"] for o in outs)
    for w in ws:
        w.send_signal(signal.SIGTERM)
    for w in ws:
        try:
            w.wait(30)
        except subprocess.TimeoutExpired:
            w.kill()
            w.wait()
    rows1 = count_rows() if count_rows else None
    n = sum(o["records"] for o in outs)
    lat = [x for o in outs for x in o["lat"]]
    dt = t1 - t0
    res = {
        "records": n,
        "seconds": round(dt, 3),
        "records_per_s": n / dt,
        "receipt_p50_ms": _pct(lat, 0.50) * 1000 if lat else None,
        "receipt_p99_ms": _pct(lat, 0.99) * 1000 if lat else None,
        "batches": len(lat),
        "resent_records": sum(o["resent"] for o in outs),
        # receipts that told a device to hold its next batch (--pace-ms),
        # and how long: time the backlog waited on the devices
        "holds": sum(len(o["holds"]) for o in outs),
        "hold_p50_ms": _pct([h for o in outs for h in o["holds"]], 0.50) if any(o["holds"] for o in outs) else 0,
        "cpu_s": cpu,
        # ingest's own share: batch arrived -> receipt published (bucket bounds)
        "ingest_side_receipt_p50_ms": _hist_pct(hist, 0.50),
        "ingest_side_receipt_p99_ms": _hist_pct(hist, 0.99),
    }
    if rows0 is not None:
        res["db_rows"] = rows1 - rows0
        res["db_rows_per_s"] = (rows1 - rows0) / dt
    return res


def _ingest_histogram(tmp, tag, workers):
    """Every worker's receipt latency histogram, summed: {le: count}."""
    import re
    import urllib.request

    total = {}
    for k in range(workers):
        m = re.search(r"metrics at (http://[0-9.]+:[0-9]+/metrics)", (tmp / ("%s-w%d.log" % (tag, k))).read_text())
        if not m:
            continue
        try:
            with urllib.request.urlopen(m.group(1), timeout=5) as r:
                text = r.read().decode()
        except OSError:
            continue
        for le, n in re.findall(r'edgefw_ingest_receipt_latency_seconds_bucket\{le="([^"]+)"\} (\d+)', text):
            total[le] = total.get(le, 0) + int(n)
    return total


def _hist_pct(hist, q):
    """The upper bound (ms) of the bucket holding quantile ``q``."""
    if not hist:
        return None
    n = hist.get("+Inf", 0)
    if not n:
        return None
    for le, c in sorted(((float(k), v) for k, v in hist.items()), key=lambda kv: kv[0]):
        if c >= q * n:
            return le * 1000
    return None


def _naive(port, url, n):
    """Peer (a): one QoS 1 message per record, a paho subscriber inserting
    each as one row and committing it."""
    import cbor2
    import paho.mqtt.client as mqtt
    import psycopg

    from edgefw.ingest.db.postgres import to_json

    payload = _payload_fn()
    conn = psycopg.connect(url, autocommit=True)
    got = [0]
    done = threading.Event()

    def on_message(cl, u, m):
        rec = cbor2.loads(m.payload)
        conn.execute(
            "INSERT INTO records (device, priority, seq, kind, t_us, received, body, data) VALUES (%s, 1, %s, %s, %s, now(), %s, %s) ",
            ("naive", rec["seq"], rec.get("k"), rec.get("t"), m.payload, to_json(rec)),
        )
        got[0] += 1
        if got[0] >= n:
            done.set()

    ready = threading.Event()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="naive-sub", protocol=mqtt.MQTTv311)
    sub.on_connect = lambda cl, u, f, rc, p: cl.subscribe("bench/naive", qos=1)
    sub.on_subscribe = lambda *a: ready.set()
    sub.on_message = on_message
    sub.connect("127.0.0.1", port)
    sub.loop_start()
    ready.wait(10)
    pub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="naive-pub", protocol=mqtt.MQTTv311)
    pub.max_inflight_messages_set(1000)
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    t0 = time.perf_counter()
    for s in range(1, n + 1):
        pub.publish("bench/naive", payload(s), qos=1)
    done.wait(600)
    dt = time.perf_counter() - t0
    from edgefw.util import end_mqtt

    for c in (pub, sub):
        end_mqtt(c)
    conn.close()
    return got[0] / dt


def _copy_peer(url, n_rows):
    """Peer (b): PostgreSQL's COPY of the same rows, one process, no
    broker: the rows ours committed, read back, COPYed into a copy of the
    schema (partitioned records, its index) in transactions of 10,000."""
    import psycopg

    from edgefw.ingest.db.postgres import SCHEMA

    cols = "device, priority, seq, kind, t_us, received, boot, device_utc_ms, device_mono_ms, body, data"
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP SCHEMA IF EXISTS peer CASCADE")
        c.execute("CREATE SCHEMA peer")
        c.execute("SET search_path TO peer")
        c.execute(SCHEMA)
        c.execute("CREATE TABLE peer.records_all PARTITION OF peer.records FOR VALUES FROM ('2000-01-01') TO ('2100-01-01')")
        buf = bytearray()
        with c.cursor().copy("COPY (SELECT %s FROM public.records WHERE device LIKE 'bench-%%' LIMIT %d) TO STDOUT" % (cols, n_rows)) as cp:
            for chunk in cp:
                buf += chunk
    lines = bytes(buf).splitlines(keepends=True)
    chunks = [b"".join(lines[i : i + 10000]) for i in range(0, len(lines), 10000)]
    with psycopg.connect(url) as c:
        c.execute("SET synchronous_commit TO on")
        c.commit()
        t0 = time.perf_counter()
        for ch in chunks:
            with c.cursor().copy("COPY peer.records (%s) FROM STDIN" % cols) as cp:
                cp.write(ch)
            c.commit()
        dt = time.perf_counter() - t0
    with psycopg.connect(url, autocommit=True) as c:
        c.execute("DROP SCHEMA peer CASCADE")
    return len(lines) / dt


def bench_ingest(devices=20, records=10000, workers=2, repeat=3, naive_records=3000, pg_url=None, sqlite=True, rate=0, progress=print, batch=200, window=4, pace_ms=0):
    """``rate``: records/s per device (0: each device's records are a
    backlog sent as fast as receipts come back: the throughput case).
    ``batch``, ``window``: each device's uplink ``batch_records`` and
    ``window`` (batches in flight). ``pace_ms``: ingest's ``--pace-ms``
    (0: off)."""
    from edgefw.emul.broker import Mosquitto

    for name, v in (("--devices", devices), ("--records", records), ("--workers", workers), ("--repeat", repeat), ("--batch-records", batch), ("--window", window)):
        if v < 1:
            raise SystemExit("edgefw bench ingest: %s %d: give 1 or more" % (name, v))
    if pace_ms < 0:
        raise SystemExit("edgefw bench ingest: --pace-ms %d: give 0 (off) or more" % pace_ms)
    tmp = Path(tempfile.mkdtemp(prefix="edgefw-bench-ingest-"))
    pg = None
    res = {
        "devices": devices,
        "records_per_device": records,
        "rate_per_device": rate,
        "batch_records": batch,
        "window": window,
        "pace_ms": pace_ms,
        "workers": workers,
        "repeat": repeat,
        "machine": {"cpus": os.cpu_count(), "loadavg_start": os.getloadavg()},
    }
    try:
        if pg_url is None:
            try:
                from tests.helpers.postgres import Postgres
            except ImportError:
                raise SystemExit("edgefw bench ingest: no private PostgreSQL helper (tests/helpers/postgres.py): run from a source checkout, or pass --pg-url")
            pg = Postgres().start()
            url, pg_pid = pg.url, pg.proc.pid
        else:
            url, pg_pid = pg_url, None
        import psycopg

        def count_rows():
            with psycopg.connect(url, autocommit=True) as c:
                return c.execute("SELECT count(*) FROM records").fetchone()[0]

        # the schema made once, before any clock runs
        from edgefw.ingest.db.postgres import PostgresStore

        PostgresStore(url).close()
        if pg is not None:
            # a server just made writes its first WAL into files it must
            # create, zero-filled, 16 MB each; one in service recycles
            # them. The first run paid for that (receipt p99 over 1 s in
            # 6 of 8 first runs on a new server, 4 of 15 later ones): a
            # gigabyte of WAL, written and checkpointed before any clock
            # runs, leaves the files a server in service has
            progress("private PostgreSQL: writing 1 GB of WAL once, so its files exist as on a server in service")
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("CREATE TABLE edgefw_warm AS SELECT g, repeat('x', 500) AS x FROM generate_series(1, 2000000) g")
                c.execute("DROP TABLE edgefw_warm")
                c.execute("CHECKPOINT")
        # a broker of its own for each run: one shared across runs queued
        # every later run's batches for the earlier runs' workers too
        def broker(tag):
            return Mosquitto.fresh(tmp, "broker-" + tag)

        runs = {"postgresql": [], "sqlite": []}
        for r in range(repeat):
            with psycopg.connect(url, autocommit=True) as c:
                c.execute("TRUNCATE records, record_keys")
            progress("run %d/%d: %d devices x %d records -> mosquitto -> %d ingest workers -> PostgreSQL" % (r + 1, repeat, devices, records, workers))
            tag = "pg%d" % r
            with broker(tag) as b:
                runs["postgresql"].append(
                    _fleet_run(b.port, url, devices, records, workers, tmp, tag, pg_pid=pg_pid, count_rows=count_rows, mosquitto_pid=b.proc.pid, rate=rate, batch=batch, window=window, pace_ms=pace_ms)
                )
            progress("  %.0f records/s, receipt p99 %.0f ms" % (runs["postgresql"][-1]["records_per_s"], runs["postgresql"][-1]["receipt_p99_ms"] or -1))
            if sqlite:
                db = str(tmp / ("sqlite-%d.sqlite" % r))
                progress("run %d/%d: the same devices -> 1 ingest worker -> SQLite" % (r + 1, repeat))
                tag = "lite%d" % r
                with broker(tag) as b:
                    runs["sqlite"].append(_fleet_run(b.port, db, devices, records, 1, tmp, tag, mosquitto_pid=b.proc.pid, rate=rate, batch=batch, window=window, pace_ms=pace_ms))
                progress("  %.0f records/s, receipt p99 %.0f ms" % (runs["sqlite"][-1]["records_per_s"], runs["sqlite"][-1]["receipt_p99_ms"] or -1))
        peers = {"naive_paho_row_per_message": [], "copy_one_process": []}
        for r in range(repeat):
            progress("peer copy %d/%d" % (r + 1, repeat))
            peers["copy_one_process"].append(_copy_peer(url, devices * records))
            progress("peer naive %d/%d: %d records, one message and one committed row each" % (r + 1, repeat, naive_records))
            with broker("naive%d" % r) as b:
                peers["naive_paho_row_per_message"].append(_naive(b.port, url, naive_records))
    finally:
        if pg is not None:
            pg.close()
        shutil.rmtree(tmp, ignore_errors=True)

    def summary(rs):
        if not rs:
            return None
        keys = ("records_per_s", "receipt_p50_ms", "receipt_p99_ms", "ingest_side_receipt_p50_ms", "ingest_side_receipt_p99_ms", "db_rows_per_s")
        out = {k: _spread([x[k] for x in rs]) for k in keys if k in rs[0]}
        out["cpu_s"] = {k: _spread([x["cpu_s"][k] for x in rs]) for k in rs[0]["cpu_s"]}
        out["seconds"] = _spread([x["seconds"] for x in rs])
        out["resent_records"] = [x["resent_records"] for x in rs]
        out["holds"] = [x["holds"] for x in rs]
        out["hold_p50_ms"] = [x["hold_p50_ms"] for x in rs]
        out["records"] = rs[0]["records"]
        return out

    res["postgresql"] = summary(runs["postgresql"])
    res["sqlite"] = summary(runs["sqlite"])
    res["peers"] = {k: {"records_per_s": _spread(v)} for k, v in peers.items()}
    ours = res["postgresql"]["records_per_s"]["median"]
    res["ratios"] = {
        "vs_copy": round(ours / res["peers"]["copy_one_process"]["records_per_s"]["median"], 3),
        "vs_naive": round(ours / res["peers"]["naive_paho_row_per_message"]["records_per_s"]["median"], 1),
    }
    res["targets"] = TARGETS
    res["machine"]["loadavg_end"] = os.getloadavg()
    return res


def print_ingest(res):
    m = res["machine"]
    pace = "%g records/s each" % res["rate_per_device"] if res.get("rate_per_device") else "each a backlog"
    if res.get("pace_ms"):
        pace += "; ingest paces them, --pace-ms %d" % res["pace_ms"]
    print(
        "%d devices x %d records (%s; batches of up to %d, %d in flight), %d workers, %d runs; %d CPUs, load average %.1f at start, %.1f at end"
        % (
            res["devices"],
            res["records_per_device"],
            pace,
            res["batch_records"],
            res["window"],
            res["workers"],
            res["repeat"],
            m["cpus"],
            m["loadavg_start"][0],
            m["loadavg_end"][0],
        )
    )
    for name in ("postgresql", "sqlite"):
        r = res.get(name)
        if not r:
            continue
        s = r["records_per_s"]
        print("%-11s %9.0f records/s committed (median; %.0f..%.0f)" % (name, s["median"], s["min"], s["max"]))
        print(
            "            receipt p50 %.0f ms, p99 %.0f ms (medians of runs; p99 %.0f..%.0f)"
            % (r["receipt_p50_ms"]["median"], r["receipt_p99_ms"]["median"], r["receipt_p99_ms"]["min"], r["receipt_p99_ms"]["max"])
        )
        i50, i99 = r.get("ingest_side_receipt_p50_ms"), r.get("ingest_side_receipt_p99_ms")
        if i50 and i99:
            print(
                "            of which in ingest (arrival -> receipt published): p50 <= %.0f ms, p99 <= %.0f ms (histogram buckets)"
                % (i50["median"], i99["median"])
            )
        if any(r.get("holds") or ()):
            print(
                "            held by ingest's pacing: %s receipts (runs), hold p50 %s ms: batches waited on the devices before their publish"
                % ("/".join(map(str, r["holds"])), "/".join("%.0f" % h for h in r["hold_p50_ms"]))
            )
        if "db_rows_per_s" in r:
            print("            database: %.0f rows/s into records" % r["db_rows_per_s"]["median"])
        print("            CPU s: " + ", ".join("%s %.1f" % (k, v["median"]) for k, v in r["cpu_s"].items()))
    for k, v in res["peers"].items():
        s = v["records_per_s"]
        print("peer %-26s %9.0f records/s (median; %.0f..%.0f)" % (k, s["median"], s["min"], s["max"]))
    t = res["targets"]
    if res.get("rate_per_device"):
        print("(paced devices: records/s is the offered load, the ratios below are not throughput comparisons)")
    print(
        "ours / COPY: %.3f (target >= %.2f); ours / naive: %.1fx (target >= %d)"
        % (res["ratios"]["vs_copy"], t["vs_copy"], res["ratios"]["vs_naive"], t["vs_naive"])
    )


if __name__ == "__main__" and len(sys.argv) > 1 and sys.argv[1] == "device":
    _device_main(sys.argv[2:])
