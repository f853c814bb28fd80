"""``edgefw ingest``: the receiving end of the uplink (CPython).

    edgefw ingest --broker 127.0.0.1:1883 --keys keys.json --db ingest.sqlite

Subscribes to ``edgefw/+/up`` at QoS 1 (``--share GROUP`` subscribes to
``$share/GROUP/edgefw/+/up``, so several workers split the load), checks
each batch's seal with the device's key, refuses tampered batches and
replayed ones (a nonce already seen from that device), and stores each
record once per (device, seq) in SQLite or PostgreSQL (``--db``:
``PATH``, ``sqlite:PATH`` or ``postgresql://USER:PASSWORD@HOST:PORT/DB``;
``edgefw.ingest.db``). Rejections are counted and logged to stderr;
``--metrics-port`` serves the counts as Prometheus text
(``edgefw.ingest.metrics``).

Receipts: once a batch is committed to the database, a receipt goes to
``edgefw/<device>/receipt`` (QoS 1, ``firmware.uplink.receipt``); only then may
the device delete those records. A refused batch gets a negative receipt
with the reason, and the device keeps its records. The MQTT session is
persistent (clean session off, a stable client id: ``edgefw-ingest``, or
``edgefw-ingest-GROUP`` with ``--share``; give each worker of a group its
own ``--client-id``), so the broker queues batches while ingest is away
(``--clean-session`` turns that off: docs/ingest.md says when to).

``keys.json`` maps device ids to hex keys: ``{"sim-0001": "00112233..."}``.
Without ``--keys`` batches are taken as plain CBOR (for a trusted
network only; the log says so at start).

A database that is down or refuses a write (unreachable, wrong password,
read-only, full) gets no receipt sent for what it did not commit: the
verified batches wait in memory (up to ``Ingest.MAX_PENDING``; beyond, the
oldest are dropped unreceipted and their devices send them again), the
log and the metrics say why, and the writes are tried again with a
backoff until the database takes them.

SQLite schema (one file; PostgreSQL's is in ``edgefw.ingest.db.postgres``):

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
import sys
import threading
import time

from edgefw.ingest.db import StoreError, open_store
from edgefw.ingest.metrics import Metrics
from edgefw.ingest.verify import Refused, make_receipt, open_batch, topic_device
from edgefw.util import calm_gc, end_mqtt

__all__ = ["Ingest", "Receiver", "load_keys", "topic_device", "add_parser", "run"]


class Ingest:
    """Checks and stores batches; thread-safe ``handle(payload)``, which
    returns the receipt to send (``firmware.uplink.receipt``), or None when the
    batch names no device to send it to (or, with ``commit`` on, when the
    database did not take it: nothing may be receipted then).

    ``db``: a SQLite path or a ``--db`` URL. ``lock`` guards the database
    connection (``db`` is SQLite's, for readers in this process)."""

    # verified batches held while the database is away; beyond, the
    # oldest go unreceipted (their devices resend them)
    MAX_PENDING = 5000

    def __init__(self, db, keys=None, log=sys.stderr, revoked=(), firmware=None, pace=None):
        self.store = open_store(str(db), log)
        # edgefw.ingest.pace.Pace: receipts carry when each device's next
        # batch is due while the fleet offers more than is committed
        self.pace = pace
        # {device: expected firmware hash or None} from the fleet registry;
        # None: no registry, boot events' hashes are stored unchecked
        self.firmware = firmware
        self.db = getattr(self.store, "db", None)
        self.lock = self.store.lock
        self.keys = keys
        # devices the fleet registry revoked: refused with a negative receipt
        self.revoked = frozenset(revoked)
        self.log = log
        self.metrics = Metrics()
        self.db_error = None
        self._pending = []  # (batch or None for a refusal, (dev, receipt), arrived)
        self._plock = threading.Lock()
        self.counts = {
            "batches": 0,
            "records": 0,
            "duplicates": 0,
            "tampered": 0,
            "replayed": 0,
            "malformed": 0,
            "unknown_device": 0,
            "revoked": 0,
            "receipts": 0,
            "refusals": 0,
        }

    def _say(self, msg):
        if self.log:
            self.log.write("edgefw ingest: %s\n" % msg)
            try:
                self.log.flush()
            except Exception:
                pass

    def _reject(self, kind, msg, dev=None, head=None, key=None):
        self.counts[kind] += 1
        self._say("rejected (%s): %s" % (kind, msg))
        if dev is None:
            return None
        q, first, last, bid = head or (None, None, None, None)
        self.counts["refusals"] += 1
        return dev, self._receipt(dev, q, first, last, bid, False, "%s: %s" % (kind, msg), key)

    def _receipt(self, dev, q, first, last, bid, ok, why=None, key=None, hold=0):
        if key is None:
            key = self.keys.get(dev) if self.keys else None
            if isinstance(key, list):
                key = key[0]
        return make_receipt(dev, q, first, last, bid, ok, why, key, hold)

    def handle(self, payload, topic_dev=None, commit=True):
        """Check one batch and stage it. Returns (device, receipt bytes) to
        publish, or None. ``topic_dev`` is the device named by the topic it
        came on: where a refused batch's receipt goes. ``commit=False``
        only stages it: the caller sends the receipts ``commit()`` returns
        (several batches then share one transaction and one sync)."""
        t = time.time()
        try:
            b = open_batch(payload, self.keys, topic_dev, t)
        except Refused as r:
            out = self._reject(r.kind, r.msg, r.dev, r.head)
            if not commit and out is not None:
                with self._plock:
                    self._pending.append((None, out, t))
            return out
        if b.dev in self.revoked:
            out = self._reject("revoked", "device %r is revoked in the fleet registry" % b.dev, b.dev, (b.q, b.first, b.last, b.id), b.key)
            if not commit:
                with self._plock:
                    self._pending.append((None, out, t))
            return out
        hold = self.pace.admit(b.dev, len(b.recs), b.utc_ms, t) if self.pace is not None else 0
        out = b.dev, self._receipt(b.dev, b.q, b.first, b.last, b.id, True, key=b.key, hold=hold)
        with self._plock:
            self._pending.append((b, out, t))
            if len(self._pending) > self.MAX_PENDING:
                self._shed()
            self.metrics.pending = len(self._pending)
        if not commit:
            return out
        sent = self.commit()
        if any(o is out for o, _t in sent):
            return out
        return b.refusal

    def _shed(self):
        # under _plock: the oldest verified batch goes without a receipt
        for i, (b, _o, _t) in enumerate(self._pending):
            if b is not None:
                del self._pending[i]
                self.metrics.shed += 1
                return

    def commit(self):
        """Write what is staged in one transaction. Returns [(device,
        receipt), arrival time] to publish: refusals always, batches only
        once committed. When the database fails, its batches stay staged
        for the next call and ``db_error`` says why. When it refuses the
        data itself (``data``: not an outage), each batch is written
        alone, so one it cannot take does not hold up the others: that
        one is refused to its device."""
        with self._plock:
            held, self._pending = self._pending, []
        out = [(o, t) for b, o, t in held if b is None]
        work = [(b, o, t) for b, o, t in held if b is not None]
        if not work:
            return out
        try:
            done = self._write(work)
        except StoreError as e:
            if e.reason != "data":
                return out + self._failed(work, e)
            done = []
            for i, w in enumerate(work):
                try:
                    done += self._write([w])
                except StoreError as e1:
                    if e1.reason != "data":
                        return out + done + self._failed(work[i:], e1)
                    b = w[0]
                    self.metrics.db_failed(e1.reason, str(e1))
                    ref = self._reject(
                        "malformed", "batch %s..%s from %r: the database refused it: %s" % (b.first, b.last, b.dev, e1), b.dev, (b.q, b.first, b.last, b.id), b.key
                    )
                    b.refusal = ref
                    if ref is not None:
                        done.append((ref, w[2]))
        with self._plock:
            self.metrics.pending = len(self._pending)
        return out + done

    def _attestations(self, work):
        """Rows for the ``attestations`` table: each boot event that names
        its image (``firmware.attest``), against what the registry expects.
        Boot events travel in the events queue (0): only those batches are
        looked through."""
        rows = []
        for b, _o, _t in work:
            if b.q != 0:
                continue
            for rec, _raw in b.recs:
                if rec.get("k") != "boot" or not isinstance(rec.get("fw"), str):
                    continue
                want = self.firmware.get(b.dev) if self.firmware else None
                boot = rec.get("boot")
                rows.append((b.dev, rec["seq"], bytes(boot) if isinstance(boot, (bytes, bytearray)) else None, rec["fw"][:64], want, None if want is None else rec["fw"] == want, b.received))
        return rows

    def _attested(self, rows):
        for dev, seq, _boot, got, want, match, _t in rows:
            if self.metrics.attested(dev, seq, match) and match is False:
                self._say("firmware mismatch: device %r booted image %s, the fleet registry expects %s" % (dev, got, want))

    def _write(self, work):
        """One transaction for ``work``; the receipts it frees."""
        att = self._attestations(work)
        new, dup, replayed = self.store.write([b for b, _o, _t in work], att)
        if att:
            self._attested(att)
        if self.db_error is not None:
            self._say("database back: %d batches committed" % len(work))
        self.db_error = None
        self.metrics.db_ok()
        for i in sorted(replayed):
            b = work[i][0]
            self._reject("replayed", "batch %s..%s from %r seen before" % (b.first, b.last, b.dev))
        self.counts["batches"] += len(work) - len(replayed)
        self.counts["records"] += new
        self.counts["duplicates"] += dup
        self.counts["receipts"] += len(work)
        self.metrics.seen([b for b, _o, _t in work])
        return [(o, t) for _b, o, t in work]

    def _failed(self, work, e):
        """The database is away or refusing: ``work`` waits for the next
        try, unreceipted."""
        with self._plock:
            self._pending[:0] = work
            while len(self._pending) > self.MAX_PENDING:
                self._shed()
            self.metrics.pending = len(self._pending)
        if self.db_error is None or self.db_error[0] != e.reason:
            self._say("database refused the write (%s): %s; %d batches wait unreceipted, retrying" % (e.reason, e, len(work)))
        self.db_error = (e.reason, str(e))
        self.metrics.db_failed(e.reason, str(e))
        return []

    def seqs(self, device):
        return self.store.seqs(device)

    def close(self):
        self.store.close()


class Receiver:
    """``Ingest`` behind an MQTT subscription: stores each batch, then
    publishes its receipt. ``receipts=False`` sends none (for devices in
    PUBACK-only mode)."""

    # batches that arrive within this long share one commit (one sync of
    # the database); their receipts go after it
    COMMIT_S = 0.005
    # after a failed commit: first wait, and the longest
    RETRY_S = (0.2, 5.0)

    def __init__(
        self,
        ing,
        host,
        port,
        client_id="edgefw-ingest",
        share=None,
        username=None,
        password=None,
        tls_ca=None,
        receipts=True,
        clean_session=False,
        tls_cert=None,
        tls_key=None,
    ):
        import paho.mqtt.client as mqtt

        self.ing = ing
        self.receipts = receipts
        self._work = threading.Event()
        self._stop = threading.Event()
        self._committer = None
        self.topic = "edgefw/+/up"
        if share:
            self.topic = "$share/%s/%s" % (share, self.topic)
        # a persistent session: the broker keeps what comes while we are away
        # (unless ``clean_session``: see --clean-session)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean_session)
        if username:
            c.username_pw_set(username, password)
        if tls_ca:
            c.tls_set(ca_certs=tls_ca, certfile=tls_cert, keyfile=tls_key)
        # receipts of a large group go out in one burst
        c.max_inflight_messages_set(1000)
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
        self.ing.handle(m.payload, topic_device(m.topic), commit=False)
        self._work.set()

    def _commit_loop(self):
        from firmware.uplink.receipt import topic_for

        wait = 0
        while not self._stop.is_set():
            if not self._work.wait(0.2):
                continue
            time.sleep(self.COMMIT_S)
            self._work.clear()
            # on disk first: only then may a device delete what it sent
            done_before = self.ing.counts["records"]
            sent = self.ing.commit()
            now = time.time()
            if self.receipts:
                for (dev, body), t in sent:
                    self.c.publish(topic_for(dev), body, qos=1)
                    self.ing.metrics.receipt(now - t)
                if sent and self.ing.pace is not None:
                    self.ing.pace.settled(now, now - min(t for _o, t in sent), self.ing.counts["records"] - done_before)
            if self.ing.db_error is not None:
                # what failed is still staged: try again, later each time
                wait = min(self.RETRY_S[1], max(self.RETRY_S[0], wait * 2))
                self._stop.wait(wait)
                self._work.set()
            else:
                wait = 0

    def start(self):
        self._committer = threading.Thread(target=self._commit_loop, name="edgefw-ingest-commit", daemon=True)
        self._committer.start()
        self.c.connect_async(self.host, self.port, keepalive=30)
        self.c.loop_start()
        return self

    def stop(self):
        # no new batches, then what is staged is committed and receipted
        self.c.on_message = None
        self._stop.set()
        self._work.set()
        if self._committer is not None:
            self._committer.join(5)
        if self.ing.db_error is None:
            from firmware.uplink.receipt import topic_for

            for (dev, body), _t in self.ing.commit():
                if self.receipts:
                    self.c.publish(topic_for(dev), body, qos=1)
        end_mqtt(self.c)


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
    if bool(args.tls_cert) != bool(args.tls_key) or (args.tls_cert and not args.tls_ca):
        print("edgefw ingest: --tls-cert and --tls-key go together, and with --tls-ca (the fleet's ca.pem)", file=sys.stderr)
        return 2
    host, _, port = args.broker.partition(":")
    port = int(port or 1883)
    if args.keys and args.fleet:
        print("edgefw ingest: give --keys or --fleet, not both (--fleet reads the seal keys from the registry)", file=sys.stderr)
        return 2
    revoked = ()
    firmware = None
    if args.fleet:
        from edgefw.fleet import FleetError
        from edgefw.ingest.fleet import fleet_firmware, fleet_keys

        try:
            keys, revoked = fleet_keys(args.fleet)
            firmware = fleet_firmware(args.fleet)
        except FleetError as e:
            print("edgefw ingest: --fleet: %s" % e, file=sys.stderr)
            return 2
    else:
        keys = load_keys(args.keys) if args.keys else None
    if keys is None:
        print("edgefw ingest: no --keys or --fleet: taking batches unsealed (trusted network only)", file=sys.stderr)
    pace = None
    if args.pace_ms:
        from edgefw.ingest.pace import Pace

        pace = Pace(args.pace_ms / 1000.0)
    ing = Ingest(args.db, keys, revoked=revoked, firmware=firmware, pace=pace)
    if args.metrics_port is not None:
        from edgefw.ingest.metrics import serve

        srv = serve(ing, args.metrics_port, args.metrics_host)
        print("edgefw ingest: metrics at http://%s:%d/metrics" % srv.server_address[:2], file=sys.stderr, flush=True)
    import signal

    def _term(*_a):
        raise KeyboardInterrupt

    # a service manager's stop commits and receipts what is staged
    signal.signal(signal.SIGTERM, _term)
    if args.fleet:

        def _reread(*_a):
            # `edgefw fleet revoke|rotate --reload` signals the broker; the
            # same SIGHUP here makes ingest read the registry again
            try:
                ing.keys, ing.revoked = fleet_keys(args.fleet)
                ing.revoked = frozenset(ing.revoked)
                ing.firmware = fleet_firmware(args.fleet)
                ing._say("fleet registry read again: %d devices, %d revoked" % (len(ing.keys), len(ing.revoked)))
            except FleetError as e:
                ing._say("fleet registry not read again, keeping the keys held: %s" % e)

        signal.signal(signal.SIGHUP, _reread)
    cid = args.client_id or ("edgefw-ingest-" + args.share if args.share else "edgefw-ingest")
    calm_gc()
    r = Receiver(
        ing,
        host,
        port,
        cid,
        args.share,
        args.username,
        args.password,
        args.tls_ca,
        receipts=not args.no_receipts,
        clean_session=args.clean_session,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    ).start()
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
    """--db: a SQLite file in a directory that exists, or a PostgreSQL URL."""
    from edgefw.ingest.db import parse

    try:
        parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))
    return text


def _port(text):
    try:
        n = int(text)
    except ValueError:
        n = -1
    if not 0 <= n <= 65535:
        raise argparse.ArgumentTypeError("expected a port number 0..65535, got %r" % text)
    return n


def _ms(text):
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError("expected milliseconds, a whole number 0 or more, got %r" % text)
    return n


def _readable(text):
    if not os.path.isfile(text):
        raise argparse.ArgumentTypeError("%r: no such file" % text)
    return text


def add_parser(p):
    p.add_argument("--broker", type=_broker, default="127.0.0.1:1883", help="HOST:PORT of the MQTT broker")
    p.add_argument("--keys", help="JSON file: device id -> hex key")
    p.add_argument(
        "--fleet",
        metavar="DIR",
        help="take the seal keys from this fleet registry (edgefw fleet): a revoked device's batches are refused, a rotated one's old key is accepted through its overlap",
    )
    p.add_argument(
        "--db",
        type=_db,
        default="edgefw-ingest.sqlite",
        help="where to commit: a SQLite file (PATH or sqlite:PATH; its directory must exist) or postgresql://USER:PASSWORD@HOST:PORT/DBNAME",
    )
    p.add_argument("--share", metavar="GROUP", help="join shared subscription GROUP (several workers)")
    p.add_argument("--client-id", help="MQTT client id of the persistent session (default edgefw-ingest, or edgefw-ingest-GROUP with --share)")
    p.add_argument(
        "--clean-session",
        action="store_true",
        help="no persistent session: with --share, a worker that dies stops getting its share at once"
        " (mosquitto keeps queueing a dead persistent member's share until it returns); needs receipts: devices resend what a dead worker held",
    )
    p.add_argument("--no-receipts", action="store_true", help="send no receipts (for devices with uplink.receipts off)")
    p.add_argument("--username")
    p.add_argument("--password")
    p.add_argument("--tls-ca", type=_readable, help="CA certificate file: connect with TLS")
    p.add_argument("--tls-cert", type=_readable, help="client certificate (PEM), for a broker that requires one (edgefw fleet add-service --role ingest)")
    p.add_argument("--tls-key", type=_readable, help="the client certificate's private key (PEM)")
    p.add_argument(
        "--pace-ms",
        type=_ms,
        default=0,
        metavar="MS",
        help="pace a fleet's backlog: while devices offer more than is committed, each receipt says when that device's next"
        " batch is due, aiming at under MS in the broker and ingest together; the backlog waits on the devices (edgefw.ingest.pace;"
        " default 0: off, devices send as their windows allow)",
    )
    p.add_argument("--idle-exit", type=float, help="exit after this many seconds with no batch")
    p.add_argument("--json", action="store_true", help="print the counts as JSON at exit")
    p.add_argument("--metrics-port", type=_port, metavar="PORT", help="serve Prometheus metrics at http://HOST:PORT/metrics (0: any free port)")
    p.add_argument("--metrics-host", default="127.0.0.1", help="address the metrics listen on (default 127.0.0.1)")
    return p


def main(args):
    return run(args)
