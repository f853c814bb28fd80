"""Raw records kept at the gateway, and pulling them upstream later.

    edgefw pull --broker HOST:PORT --gateway GW --key-file GW.key \\
                --node N [--boot HEX] --from-s 120 --to-s 180

A channel that goes upstream as summaries leaves its raw records at the
gateway: ``kept/`` holds them (each node batch part a summary counts, as
``raw/`` holds it) under ``store.kept_s`` and ``store.kept_cap_bytes``.
It is an archive, not part of either hop's guarantee: it is synced on the
gateway's tick, not before a node's receipt, so a crash loses its newest
second or so (the summaries still count those records).

A pull request is the CBOR map ``{"id", "cmd": "pull", "node", "boot",
"from_t", "to_t", "utc_ms"}`` on ``edgefw/<gateway>/cmd``, followed by an
HMAC-SHA256 tag over ``b"edgefw command" | map`` under the gateway's own
seal key (the one its upstream batches are sealed with, which the next
tier holds). ``from_t``/``to_t`` are the node's own record times
(microseconds since its start, the ``t`` of its records and of the
summaries that stand for them); ``boot`` (8 bytes, or null for every run
the gateway keeps) picks the run. A node's records carry no UTC of their
own (a batch's ``utc_ms`` is when it was sent, hours later for a
backlog), so the range is in the clock the summaries use.

The gateway answers by relaying the records in range upstream as the
node's own batches (``out/``, telemetry, sealed with the node's key: the
next tier stores each once under (node, seq), so pulling twice is
harmless), then a ``pull`` event of its own: ``{"k": "pull", "id",
"node", "boot", "from_t", "to_t", "records", "truncated", "utc_ms"}``,
``truncated`` when ``out/`` refused more or ``MAX_RECORDS`` was reached.
Every request refused is counted by reason in
``edgefw_gateway_pull_refused_total{reason}``: a tag that does not verify
under the gateway's key, a replayed ``id`` (the last 64 are kept), a
``utc_ms`` more than ten minutes from the gateway's clock, a map that is
not a request; those are not answered (anyone the broker lets publish
there could fill ``out/`` with answers). An authentic request past the
``QUEUE`` waiting is answered with a ``pull`` event ``"refused": "busy"``.
"""

import os
import sys
import threading
import time

from edgefw.gateway import commands
from firmware import cbor
from firmware.store.journal import PRIO_TELEMETRY

TAG_LEN = 32
MAX_AGE_MS = 600000
MAX_RECORDS = 200000
# requests waiting behind the one being answered
QUEUE = 4
# a gateway's command topic is a node's (edgefw/<id>/cmd), its tag the same
topic_for = commands.topic_for
_tag = commands.tag


def make(node, from_t, to_t, key, boot=None, utc_ms=None):
    body = cbor.dumps(
        {
            "id": os.urandom(8),
            "cmd": "pull",
            "node": node,
            "boot": boot,
            "from_t": int(from_t),
            "to_t": int(to_t),
            "utc_ms": int(time.time() * 1000) if utc_ms is None else utc_ms,
        }
    )
    return body + _tag(key, body)


def check(raw, key, seen, now_ms=None):
    """(request, None) or (None, why refused)."""
    from firmware.uplink.seal import _same

    raw = bytes(raw)
    if len(raw) <= TAG_LEN or not _same(_tag(key, raw[:-TAG_LEN]), raw[-TAG_LEN:]):
        return None, "bad tag"
    try:
        m = cbor.loads(raw[:-TAG_LEN])
    except Exception:
        return None, "not a request"
    if not isinstance(m, dict) or m.get("cmd") != "pull":
        return None, "not a request"
    if not isinstance(m.get("id"), bytes) or len(m["id"]) != 8:
        return None, "not a request"
    if m["id"] in seen:
        return None, "replay"
    now_ms = int(time.time() * 1000) if now_ms is None else now_ms
    if not isinstance(m.get("utc_ms"), int) or abs(now_ms - m["utc_ms"]) > MAX_AGE_MS:
        return None, "stale"
    ok = (
        isinstance(m.get("node"), str)
        and (m.get("boot") is None or isinstance(m.get("boot"), bytes))
        and isinstance(m.get("from_t"), int)
        and isinstance(m.get("to_t"), int)
        and m["from_t"] <= m["to_t"]
    )
    if not ok:
        return None, "not a request"
    return m, None


class Kept:
    """``kept/``: raw node records (journal records as ``raw/`` holds them,
    plus ``at``, the gateway's clock in seconds) under a TTL and a byte
    cap. Never acknowledged but by age: the cap drops the oldest segment."""

    EXPIRE_EVERY_S = 30.0

    def __init__(self, journal, keep_s):
        self.j = journal
        self.keep_s = keep_s
        self.lock = threading.Lock()
        self.dirty = False
        self._expired_at = 0.0
        self.expired = 0

    def add(self, rec):
        r = dict(rec, at=int(time.time()))
        with self.lock:
            self.j.append(r, PRIO_TELEMETRY)
            self.dirty = True

    def tick(self, now=None):
        now = time.time() if now is None else now
        with self.lock:
            if self.dirty:
                self.j.flush()
                self.dirty = False
            if self.keep_s is None or now - self._expired_at < self.EXPIRE_EVERY_S:
                return
            self._expired_at = now
            acked = self.j.acked(PRIO_TELEMETRY)
            last = None
            # oldest first, segment by segment: stops at the first young one
            for seq, r in self.j.records(PRIO_TELEMETRY):
                if seq <= acked:
                    continue
                if now - r.get("at", 0) < self.keep_s:
                    break
                last = seq
                self.expired += len(r.get("recs", ()))
            if last is not None:
                self.j.ack(PRIO_TELEMETRY, last)

    def find(self, node, boot, from_t, to_t):
        """(batch, [(raw, rec), ...]) per kept batch part with records of
        ``node`` (and run ``boot``) whose ``t`` is in [from_t, to_t]."""
        from edgefw.gateway.store import _batch_of
        from firmware.store.scan import scan

        with self.lock:
            self.j.flush()
            acked = self.j.acked(PRIO_TELEMETRY)
            paths = [seg.path for seg in self.j._segs[PRIO_TELEMETRY]]
        # read without the lock, a segment at a time: node batches go on
        # being kept meanwhile (a torn frame at the tail ends its scan)
        for path in paths:
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                # the cap or the TTL took it meanwhile
                continue
            for _o, seq, _c, payload in scan(data):
                if seq <= acked:
                    continue
                r = cbor.loads(payload)
                if r.get("dev") != node or (boot is not None and r.get("boot") != boot):
                    continue
                b = _batch_of(r)
                picks = [(x, d) for x, d in zip(b.raw, b.recs, strict=True) if isinstance(d.get("t"), int) and from_t <= d["t"] <= to_t]
                if picks:
                    yield b, picks

    def close(self):
        with self.lock:
            self.j.close()


class Puller:
    """Takes the pull requests the upstream client received and answers
    them one at a time on a thread of its own (a pull reads the whole
    archive: neither the receiver nor the summaries wait for it)."""

    def __init__(self, gateway):
        self.gw = gateway
        self.seen = []
        self.waiting = []
        self.counts = {"answered": 0, "refused": 0, "records": 0}
        self.refusals = {}
        self._thread = None

    def poll(self):
        cmds = self.gw.up.client.commands
        while cmds:
            # the client's thread only appends
            raw = cmds.pop(0)
            req, why = check(raw, self.gw.key, self.seen)
            if req is None:
                # counted, not answered with an event: anyone the broker
                # lets publish there could otherwise fill out/ with them
                self._count(why)
                continue
            self.seen.append(req["id"])
            del self.seen[:-64]
            if len(self.waiting) >= QUEUE:
                self._refuse(req, "busy")
                continue
            self.waiting.append(req)
        if self.waiting and (self._thread is None or not self._thread.is_alive()):
            req = self.waiting.pop(0)
            self._thread = threading.Thread(target=self._answer, args=(req,), name="edgefw-gateway-pull", daemon=True)
            self._thread.start()

    def _event(self, req, **kw):
        from firmware.clocks import utc_ms
        from firmware.store.journal import PRIO_EVENT

        ev = {"k": "pull", "t": 0, "utc_ms": utc_ms()}
        for f in ("id", "node", "boot", "from_t", "to_t"):
            if f in req:
                ev[f] = req[f]
        ev.update(kw)
        self.gw.store.append_own(ev, PRIO_EVENT)

    def _count(self, why):
        self.counts["refused"] += 1
        self.refusals[why] = self.refusals.get(why, 0) + 1

    def _refuse(self, req, why):
        self._count(why)
        self._event(req, refused=why)
        if self.gw.log:
            self.gw.log.write("edgefw gateway: pull request refused: %s\n" % why)

    def stats(self):
        return dict(self.counts, refusals=dict(self.refusals), waiting=len(self.waiting))

    def _answer(self, req):
        st = self.gw.store
        n = 0
        truncated = False
        if st.kept is not None:
            for b, picks in st.kept.find(req["node"], req["boot"], req["from_t"], req["to_t"]):
                if n + len(picks) > MAX_RECORDS:
                    truncated = True
                    break
                with st.lock:
                    ok = st._relay(b, [x for x, _ in picks], [d for _, d in picks])
                if not ok:
                    truncated = True
                    break
                n += len(picks)
        st.sync()
        self.counts["answered"] += 1
        self.counts["records"] += n
        self._event(req, records=n, truncated=truncated, kept=st.kept is not None)


def add_parser(p):
    p.add_argument("--broker", required=True, metavar="HOST:PORT", help="the broker the gateway's upstream client is connected to")
    p.add_argument("--gateway", required=True, metavar="ID", help="the gateway's id")
    p.add_argument("--key-file", required=True, metavar="FILE", help="the gateway's seal key (its upstream batches' key)")
    p.add_argument("--node", required=True, metavar="ID", help="the node whose raw records to pull")
    p.add_argument("--boot", metavar="HEX", help="the node's run (16 hex digits, a summary's boot); default every run kept")
    p.add_argument("--from-s", type=float, required=True, metavar="S", help="from this record time, seconds since the node's start")
    p.add_argument("--to-s", type=float, required=True, metavar="S", help="to this record time (inclusive)")
    p.add_argument("--tls-ca", metavar="FILE")
    p.add_argument("--tls-cert", metavar="FILE")
    p.add_argument("--tls-key", metavar="FILE")
    p.add_argument("--client-id", default="edgefw-pull", help="MQTT client id (default edgefw-pull)")
    return p


def main(args):
    from firmware.config import parse_broker
    from firmware.uplink.uplink import make_client, read_key
    from hal.errors import ConfigError

    def fail(msg):
        print("edgefw pull: %s" % msg, file=sys.stderr)
        return 2

    try:
        host, port = parse_broker(args.broker)
    except ConfigError as e:
        return fail("--broker: %s" % e)
    boot = None
    if args.boot is not None:
        try:
            boot = bytes.fromhex(args.boot)
        except ValueError:
            boot = b""
        if len(boot) != 8:
            return fail("--boot %r: 16 hex digits (a summary's boot, as ingest shows it)" % args.boot)
    if args.to_s < args.from_s:
        return fail("--to-s %g is before --from-s %g" % (args.to_s, args.from_s))
    try:
        key = read_key(args.key_file)
    except (OSError, ValueError) as e:
        return fail("--key-file %s: %s" % (args.key_file, e))
    tls = {"ca": args.tls_ca, "cert": args.tls_cert, "key": args.tls_key} if args.tls_ca else None
    msg = make(args.node, round(args.from_s * 1e6), round(args.to_s * 1e6), key, boot)
    c = make_client(host, port, args.client_id, tls=tls, timeout_ms=5000)
    try:
        c.connect()
        ok = c.wait(c.publish(topic_for(args.gateway), msg), 5000)
    except OSError as e:
        return fail("%s:%d: %s" % (host, port, e))
    finally:
        c.disconnect()
    if not ok:
        return fail("the broker did not acknowledge the request in 5 s")
    print("edgefw pull: asked %s for %s's records, t %g..%g s; its pull event upstream says what came" % (args.gateway, args.node, args.from_s, args.to_s))
    return 0


if __name__ == "__main__":
    import argparse

    sys.exit(main(add_parser(argparse.ArgumentParser(prog="edgefw pull")).parse_args()))
