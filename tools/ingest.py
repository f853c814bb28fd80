"""``edgefw ingest``: the receiving end of the uplink (CPython).

    edgefw ingest --broker 127.0.0.1:1883 --keys keys.json --db ingest.sqlite

Subscribes to ``edgefw/+/up`` at QoS 1 (``--share GROUP`` subscribes to
``$share/GROUP/edgefw/+/up``, so several workers split the load), checks
each batch's seal with the device's key, refuses tampered batches and
replayed ones (a nonce already seen from that device), and stores each
record once per (device, seq) in SQLite. Rejections are counted and logged
to stderr.

``keys.json`` maps device ids to hex keys: ``{"sim-0001": "00112233..."}``.
Without ``--keys`` batches are taken as plain CBOR (for a trusted
network only; the log says so at start).

SQLite schema (one file):

    records(device TEXT, seq INTEGER, queue INTEGER, kind TEXT, t_us INTEGER,
            body BLOB, received REAL, PRIMARY KEY (device, seq))
    nonces(device TEXT, nonce BLOB, received REAL, PRIMARY KEY (device, nonce))

``body`` is the record's CBOR exactly as the device wrote it.
"""

import argparse
import json
import os
import sqlite3
import sys
import threading
import time


def _loads(b):
    # cbor2's C decoder: ingest sees every record of every device
    import cbor2

    v = cbor2.loads(b)
    if not isinstance(v, dict):
        raise ValueError("expected a CBOR map, got %s" % type(v).__name__)
    return v


SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    device TEXT NOT NULL, seq INTEGER NOT NULL, queue INTEGER NOT NULL,
    kind TEXT, t_us INTEGER, body BLOB NOT NULL, received REAL NOT NULL,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    device TEXT NOT NULL, nonce BLOB NOT NULL, received REAL NOT NULL,
    PRIMARY KEY (device, nonce)
) WITHOUT ROWID;
"""


class Ingest:
    """Checks and stores batches; thread-safe ``handle(payload)``."""

    def __init__(self, db_path, keys=None, log=sys.stderr):
        self.db = sqlite3.connect(db_path, check_same_thread=False)
        self.db.executescript(SCHEMA)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.keys = keys
        self.log = log
        self.lock = threading.Lock()
        self.counts = {"batches": 0, "records": 0, "duplicates": 0, "tampered": 0, "replayed": 0, "malformed": 0, "unknown_device": 0}

    def _reject(self, kind, msg):
        self.counts[kind] += 1
        if self.log:
            self.log.write("edgefw ingest: rejected (%s): %s\n" % (kind, msg))

    def handle(self, payload):
        from firmware.seal import SealError, open_sealed, parse_header

        nonce = None
        if self.keys is not None:
            try:
                dev = parse_header(payload)[0]
            except (SealError, UnicodeError) as e:
                return self._reject("malformed", str(e))
            if dev not in self.keys:
                return self._reject("unknown_device", "no key for device %r" % dev)
            try:
                dev, q, first, last, nonce, plain = open_sealed(payload, self.keys)
            except SealError as e:
                return self._reject("tampered", str(e))
        else:
            plain = payload
        try:
            batch = _loads(plain)
            dev_b, q_b, recs = batch["dev"], batch["q"], batch["recs"]
            bodies = [(_loads(r), r) for r in recs]
        except Exception as e:  # cbor2 raises several types for bad input
            return self._reject("malformed", "batch does not decode: %s" % e)
        if self.keys is not None and (dev_b != dev or q_b != q or batch.get("first") != first or batch.get("last") != last):
            return self._reject("tampered", "sealed header and batch disagree for %r" % dev)
        now = time.time()
        with self.lock:
            cur = self.db.cursor()
            if nonce is not None:
                cur.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)", (dev_b, nonce, now))
                if cur.rowcount == 0:
                    return self._reject("replayed", "batch %d..%d from %r seen before" % (batch.get("first"), batch.get("last"), dev_b))
            before = self.db.total_changes
            cur.executemany(
                "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?)",
                [(dev_b, rec.get("seq"), q_b, rec.get("k"), rec.get("t"), bytes(raw), now) for rec, raw in bodies],
            )
            new = self.db.total_changes - before
            self.db.commit()
            self.counts["batches"] += 1
            self.counts["records"] += new
            self.counts["duplicates"] += len(bodies) - new

    def seqs(self, device):
        with self.lock:
            return [r[0] for r in self.db.execute("SELECT seq FROM records WHERE device=? ORDER BY seq", (device,))]

    def close(self):
        self.db.close()


def load_keys(path):
    try:
        f = open(path)
    except OSError as e:
        raise SystemExit("edgefw ingest: --keys %s: cannot read it (%s)" % (path, e.strerror or e))
    with f:
        try:
            doc = json.load(f)
        except ValueError as e:
            raise SystemExit("edgefw ingest: %s: not valid JSON (%s)" % (path, e))
        except RecursionError:
            raise SystemExit("edgefw ingest: %s: JSON nested too deeply" % path)
    if not isinstance(doc, dict):
        raise SystemExit(
            'edgefw ingest: %s: expected a JSON object of device id -> hex key, e.g. {"sim-0001": "0011..."}, got a %s' % (path, type(doc).__name__)
        )
    keys = {}
    for dev, hexkey in doc.items():
        try:
            keys[dev] = bytes.fromhex(hexkey)
        except (TypeError, ValueError):
            raise SystemExit("edgefw ingest: %s: key of device %r must be a hex string" % (path, dev))
        if len(keys[dev]) < 16:
            raise SystemExit("edgefw ingest: %s: key of device %r is %d bytes; at least 16 are needed" % (path, dev, len(keys[dev])))
    return keys


def run(args):
    import paho.mqtt.client as mqtt

    host, _, port = args.broker.partition(":")
    port = int(port or 1883)
    keys = load_keys(args.keys) if args.keys else None
    if keys is None:
        print("edgefw ingest: no --keys: taking batches unsealed (trusted network only)", file=sys.stderr)
    ing = Ingest(args.db, keys)
    topic = "edgefw/+/up"
    if args.share:
        topic = "$share/%s/%s" % (args.share, topic)
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=args.client_id or "", protocol=mqtt.MQTTv311, clean_session=True)
    if args.username:
        c.username_pw_set(args.username, args.password)
    if args.tls_ca:
        c.tls_set(ca_certs=args.tls_ca)
    subscribed = threading.Event()

    def on_connect(cl, u, f, rc, p):
        if rc.is_failure:
            print("edgefw ingest: broker refused the connection: %s" % rc, file=sys.stderr)
            return
        cl.subscribe(topic, qos=1)

    c.on_connect = on_connect
    c.on_subscribe = lambda *a: subscribed.set()
    c.on_message = lambda cl, u, m: ing.handle(m.payload)
    c.reconnect_delay_set(0.2, 10)
    c.connect_async(host, port, keepalive=30)
    c.loop_start()
    last = -1
    t_last_change = time.monotonic()
    try:
        while True:
            time.sleep(0.2)
            n = ing.counts["batches"] + sum(v for k, v in ing.counts.items() if k not in ("batches", "records", "duplicates"))
            if n != last:
                last, t_last_change = n, time.monotonic()
                if subscribed.is_set():
                    print("edgefw ingest: %s" % json.dumps(ing.counts), file=sys.stderr, flush=True)
            if args.idle_exit and subscribed.is_set() and time.monotonic() - t_last_change > args.idle_exit:
                break
    except KeyboardInterrupt:
        pass
    finally:
        c.disconnect()
        c.loop_stop()
    if args.json:
        print(json.dumps(ing.counts))
    ing.close()
    return 0


def _broker(text):
    """--broker: HOST or HOST:PORT (port 1..65535; 1883 when omitted)."""
    from firmware.config import parse_broker

    try:
        parse_broker(text if ":" in text else text + ":1883")
    except ValueError as e:
        raise argparse.ArgumentTypeError("expected %s, got %r" % (e, text))
    return text


def _db(text):
    """--db: a file in a directory that exists."""
    d = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(d):
        raise argparse.ArgumentTypeError("%r: directory %s does not exist" % (text, d))
    if os.path.isdir(text):
        raise argparse.ArgumentTypeError("%r is a directory; name a file in it" % text)
    return text


def _readable(text):
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError("%r: no such file" % text)
    return text


def add_parser(sub):
    p = sub.add_parser("ingest", help="receive, verify and store device batches (SQLite)")
    p.add_argument("--broker", type=_broker, default="127.0.0.1:1883", help="HOST:PORT of the MQTT broker")
    p.add_argument("--keys", help="JSON file: device id -> hex key")
    p.add_argument("--db", type=_db, default="edgefw-ingest.sqlite", help="SQLite file (its directory must exist)")
    p.add_argument("--share", metavar="GROUP", help="join shared subscription GROUP (several workers)")
    p.add_argument("--client-id", help="MQTT client id")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--tls-ca", type=_readable, help="CA certificate file: connect with TLS")
    p.add_argument("--idle-exit", type=float, help="exit after this many seconds with no batch")
    p.add_argument("--json", action="store_true", help="print the counts as JSON at exit")
    p.set_defaults(fn=run)
    return p
