"""``edgefw ingest``: the receiving end of the uplink (CPython).

    edgefw ingest --broker 127.0.0.1:1883 --keys keys.json --db ingest.sqlite

Subscribes to ``edgefw/+/up`` at QoS 1 (``--share GROUP`` subscribes to
``$share/GROUP/edgefw/+/up``, so several workers split the load), checks
each batch's seal with the device's key, refuses tampered batches and
replayed ones (a nonce already seen from that device), and stores each
record once per (device, seq) in SQLite. Rejections are counted and logged
to stderr.

Receipts: once a batch is committed to the database, a receipt goes to
``edgefw/<device>/receipt`` (QoS 1, ``firmware.uplink.receipt``); only then may
the device delete those records. A refused batch gets a negative receipt
with the reason, and the device keeps its records. The MQTT session is
persistent (clean session off, a stable client id: ``edgefw-ingest``, or
``edgefw-ingest-GROUP`` with ``--share``; give each worker of a group its
own ``--client-id``), so the broker queues batches while ingest is away.

``keys.json`` maps device ids to hex keys: ``{"sim-0001": "00112233..."}``.
Without ``--keys`` batches are taken as plain CBOR (for a trusted
network only; the log says so at start).

SQLite schema (one file):

    records(device TEXT, seq INTEGER, queue INTEGER, kind TEXT, t_us INTEGER,
            body BLOB, received REAL, boot BLOB, device_utc_ms INTEGER,
            device_mono_ms INTEGER, PRIMARY KEY (device, seq))
    nonces(device TEXT, nonce BLOB, received REAL, PRIMARY KEY (device, nonce))

``body`` is the record's CBOR exactly as the device wrote it; ``received``
is this machine's UTC time (seconds) when the batch came; ``boot``,
``device_utc_ms`` (NULL when the device's clock was not set) and
``device_mono_ms`` are the batch header's: the run that sent it and the
device's clocks at that moment.
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
    boot BLOB, device_utc_ms INTEGER, device_mono_ms INTEGER,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    device TEXT NOT NULL, nonce BLOB NOT NULL, received REAL NOT NULL,
    PRIMARY KEY (device, nonce)
) WITHOUT ROWID;
"""


class Ingest:
    """Checks and stores batches; thread-safe ``handle(payload)``, which
    returns the receipt to send (``firmware.uplink.receipt``), or None when the
    batch names no device to send it to."""

    def __init__(self, db_path, keys=None, log=sys.stderr):
        self.db = sqlite3.connect(db_path, check_same_thread=False)
        self.db.executescript(SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(records)")}
        for col, kind in (("boot", "BLOB"), ("device_utc_ms", "INTEGER"), ("device_mono_ms", "INTEGER")):
            if col not in have:
                # a database from before batch headers carried clocks
                self.db.execute("ALTER TABLE records ADD COLUMN %s %s" % (col, kind))
        self.db.execute("PRAGMA journal_mode=WAL")
        # a receipt lets the device delete: the commit must be on disk first
        self.db.execute("PRAGMA synchronous=FULL")
        self.keys = keys
        self.log = log
        self.lock = threading.Lock()
        self.counts = {
            "batches": 0,
            "records": 0,
            "duplicates": 0,
            "tampered": 0,
            "replayed": 0,
            "malformed": 0,
            "unknown_device": 0,
            "receipts": 0,
            "refusals": 0,
        }

    def _reject(self, kind, msg, dev=None, head=None):
        self.counts[kind] += 1
        if self.log:
            self.log.write("edgefw ingest: rejected (%s): %s\n" % (kind, msg))
        if dev is None:
            return None
        q, first, last, bid = head or (None, None, None, None)
        self.counts["refusals"] += 1
        return dev, self._receipt(dev, q, first, last, bid, False, "%s: %s" % (kind, msg))

    def _receipt(self, dev, q, first, last, bid, ok, why=None):
        from firmware.uplink import receipt

        key = self.keys.get(dev) if self.keys else None
        return receipt.make(dev, q, first, last, bid, ok, why, key)

    def handle(self, payload, topic_dev=None, commit=True):
        """Check and store one batch. Returns (device, receipt bytes) to
        publish, or None. ``topic_dev`` is the device named by the topic it
        came on: where a refused batch's receipt goes. ``commit=False``
        leaves the transaction open: the caller must ``commit()`` before it
        sends the receipt (several batches then share one sync)."""
        from firmware.uplink.seal import SealError, open_sealed, parse_header

        nonce = None
        head = None
        if self.keys is not None:
            try:
                dev, q, first, last, nonce, _h = parse_header(payload)
                head = (q, first, last, None)
            except (SealError, UnicodeError) as e:
                return self._reject("malformed", str(e), topic_dev, _peek(payload))
            if dev not in self.keys:
                return self._reject("unknown_device", "no key for device %r" % dev)
            if topic_dev is not None and dev != topic_dev:
                return self._reject("tampered", "batch of %r on the topic of %r" % (dev, topic_dev))
            try:
                dev, q, first, last, nonce, plain = open_sealed(payload, self.keys)
            except SealError as e:
                return self._reject("tampered", str(e), dev, head)
        else:
            plain = payload
        try:
            batch = _loads(plain)
            dev_b, q_b, recs = batch["dev"], batch["q"], batch["recs"]
            bodies = [(_loads(r), r) for r in recs]
            if not isinstance(dev_b, str):
                raise ValueError("device id is not text")
        except Exception as e:  # cbor2 raises several types for bad input
            return self._reject("malformed", "batch does not decode: %s" % e, topic_dev if self.keys is None else dev, head)
        bid = batch.get("id")
        if self.keys is not None and (dev_b != dev or q_b != q or batch.get("first") != first or batch.get("last") != last):
            return self._reject("tampered", "sealed header and batch disagree for %r" % dev, dev, head)
        if topic_dev is not None and dev_b != topic_dev:
            return self._reject("tampered", "batch of %r on the topic of %r" % (dev_b, topic_dev))
        now = time.time()
        boot, utc, mono = batch.get("boot"), batch.get("utc_ms"), batch.get("mono_ms")
        with self.lock:
            cur = self.db.cursor()
            if nonce is not None:
                cur.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)", (dev_b, nonce, now))
                if cur.rowcount == 0:
                    # seen before (the broker sending again what we took
                    # before a crash, or a replay): its nonce was committed
                    # with its records, so they are stored and the receipt
                    # may say so
                    self._reject("replayed", "batch %s..%s from %r seen before" % (batch.get("first"), batch.get("last"), dev_b))
                    self.counts["receipts"] += 1
                    return dev_b, self._receipt(dev_b, q_b, batch.get("first"), batch.get("last"), bid, True)
            before = self.db.total_changes
            cur.executemany(
                "INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(dev_b, rec.get("seq"), q_b, rec.get("k"), rec.get("t"), bytes(raw), now, boot, utc, mono) for rec, raw in bodies],
            )
            new = self.db.total_changes - before
            if commit:
                self.db.commit()
            self.counts["batches"] += 1
            self.counts["records"] += new
            self.counts["duplicates"] += len(bodies) - new
            self.counts["receipts"] += 1
        return dev_b, self._receipt(dev_b, q_b, batch.get("first"), batch.get("last"), bid, True)

    def commit(self):
        with self.lock:
            self.db.commit()

    def seqs(self, device):
        with self.lock:
            return [r[0] for r in self.db.execute("SELECT seq FROM records WHERE device=? ORDER BY seq", (device,))]

    def close(self):
        self.db.close()


def _peek(payload):
    """(q, first, last, id) of an unsealed batch, for the receipt that
    refuses it; Nones where it does not decode."""
    try:
        b = _loads(payload)
        return b.get("q"), b.get("first"), b.get("last"), b.get("id")
    except Exception:
        return None


def topic_device(topic):
    """The device of an ``edgefw/<device>/up`` topic, or None."""
    parts = topic.split("/")
    return parts[1] if len(parts) == 3 and parts[0] == "edgefw" and parts[2] == "up" else None


class Receiver:
    """``Ingest`` behind an MQTT subscription: stores each batch, then
    publishes its receipt. ``receipts=False`` sends none (for devices in
    PUBACK-only mode)."""

    # batches that arrive within this long share one commit (one sync of
    # the database); their receipts go after it
    COMMIT_S = 0.005

    def __init__(self, ing, host, port, client_id="edgefw-ingest", share=None, username=None, password=None, tls_ca=None, receipts=True):
        import paho.mqtt.client as mqtt

        self.ing = ing
        self.receipts = receipts
        self._held = []
        self._held_lock = threading.Lock()
        self._work = threading.Event()
        self._stop = threading.Event()
        self._committer = None
        self.topic = "edgefw/+/up"
        if share:
            self.topic = "$share/%s/%s" % (share, self.topic)
        # a persistent session: the broker keeps what comes while we are away
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False)
        if username:
            c.username_pw_set(username, password)
        if tls_ca:
            c.tls_set(ca_certs=tls_ca)
        self.subscribed = threading.Event()
        self.refused = None
        self.last_error = None

        def on_connect(cl, u, f, rc, p):
            if rc.is_failure:
                self.refused = str(rc)
                return
            self.refused = None
            cl.subscribe(self.topic, qos=1)

        def on_disconnect(cl, u, f, rc, p):
            self.last_error = str(rc)

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(0.2, 10)
        self.c = c
        self.host, self.port = host, port

    def _on_message(self, cl, u, m):
        out = self.ing.handle(m.payload, topic_device(m.topic), commit=False)
        with self._held_lock:
            self._held.append(out)
        self._work.set()

    def _commit_loop(self):
        from firmware.uplink.receipt import topic_for

        while not self._stop.is_set() or self._held:
            if not self._work.wait(0.2):
                continue
            time.sleep(self.COMMIT_S)
            self._work.clear()
            with self._held_lock:
                held, self._held = self._held, []
            if not held:
                continue
            # on disk first: only then may a device delete what it sent
            self.ing.commit()
            if self.receipts:
                for out in held:
                    if out is not None:
                        dev, body = out
                        self.c.publish(topic_for(dev), body, qos=1)

    def start(self):
        self._committer = threading.Thread(target=self._commit_loop, name="edgefw-ingest-commit", daemon=True)
        self._committer.start()
        self.c.connect_async(self.host, self.port, keepalive=30)
        self.c.loop_start()
        return self

    def stop(self):
        self._stop.set()
        self._work.set()
        if self._committer is not None:
            self._committer.join(5)
        self.c.disconnect()
        self.c.loop_stop()


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
    host, _, port = args.broker.partition(":")
    port = int(port or 1883)
    keys = load_keys(args.keys) if args.keys else None
    if keys is None:
        print("edgefw ingest: no --keys: taking batches unsealed (trusted network only)", file=sys.stderr)
    ing = Ingest(args.db, keys)
    cid = args.client_id or ("edgefw-ingest-" + args.share if args.share else "edgefw-ingest")
    r = Receiver(ing, host, port, cid, args.share, args.username, args.password, args.tls_ca, receipts=not args.no_receipts).start()
    last = -1
    t_start = t_last_change = time.monotonic()
    said = None
    try:
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            state = "subscribed" if r.subscribed.is_set() else ("refused: %s" % r.refused if r.refused else "connecting")
            if state != said and (state != "connecting" or now - t_start > 2):
                # say where it stands: an unreachable broker is not silence
                print("edgefw ingest: %s:%d %s" % (host, port, state), file=sys.stderr, flush=True)
                said = state
            n = ing.counts["batches"] + sum(v for k, v in ing.counts.items() if k not in ("batches", "records", "duplicates", "receipts", "refusals"))
            if n != last:
                last, t_last_change = n, now
                if r.subscribed.is_set():
                    print("edgefw ingest: %s" % json.dumps(ing.counts), file=sys.stderr, flush=True)
            if args.idle_exit and now - t_last_change > args.idle_exit:
                break
    except KeyboardInterrupt:
        pass
    finally:
        r.stop()
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


def add_parser(p):
    p.add_argument("--broker", type=_broker, default="127.0.0.1:1883", help="HOST:PORT of the MQTT broker")
    p.add_argument("--keys", help="JSON file: device id -> hex key")
    p.add_argument("--db", type=_db, default="edgefw-ingest.sqlite", help="SQLite file (its directory must exist)")
    p.add_argument("--share", metavar="GROUP", help="join shared subscription GROUP (several workers)")
    p.add_argument("--client-id", help="MQTT client id of the persistent session (default edgefw-ingest, or edgefw-ingest-GROUP with --share)")
    p.add_argument("--no-receipts", action="store_true", help="send no receipts (for devices with uplink.receipts off)")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--tls-ca", type=_readable, help="CA certificate file: connect with TLS")
    p.add_argument("--idle-exit", type=float, help="exit after this many seconds with no batch")
    p.add_argument("--json", action="store_true", help="print the counts as JSON at exit")
    return p


def main(args):
    return run(args)
