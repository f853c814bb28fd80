"""Hop 2: the gateway's journal to the next tier, deleted on its receipt.

The upstream link is ``firmware.uplink.uplink.Uplink`` (batching, the
in-flight window, PUBACK and receipt tracking, resends on a receipt
timeout, backoff with jitter, the rate cap, drain); this subclass changes
only what one message is and whose key checks a receipt:

* a journal record of kind ``relay`` (one node batch, stored by the
  receiver before the node's receipt) goes up as that node's batch, on
  ``edgefw/<node>/up``, with the node's header (queue, first, last, boot,
  clocks) and records byte for byte, sealed with the node's key under a
  fresh id and nonce. The next tier (``edgefw ingest`` or another gateway)
  cannot tell it from the node's own: ingest stores each record under
  (node, seq), its idempotent key, and receipts on
  ``edgefw/<node>/receipt`` naming (node, queue, first, last, id);
* the gateway's own records (summaries, site events, losses) go in
  batches of their own under the gateway's id and key, like a device's.

Either may go compressed (``edgefw.gateway.codec``: the codec named in
the batch map, records as they were when expanded).

The journal's ack cursor moves over a relay record only once the
receipt naming it has come and verified with that node's key.
"""

import os

from firmware import cbor
from firmware.clocks import boot_id, utc_ms
from firmware.store.outbox import live_lane
from firmware.uplink import receipt
from firmware.uplink.seal import Sealer
from firmware.uplink.uplink import _DONE, Uplink, topic_for
from hal.clock import ticks_diff, ticks_ms

RELAY = "relay"


def relay_record(batch):
    """The journal record holding one checked node batch (verify.Batch)."""
    r = batch.header()
    r["k"] = RELAY
    r["recs"] = batch.raw
    return r


class Backlog:
    """Per node, its records the gateway holds that are not yet accounted
    for upstream (relayed and receipted, or summarized and receipted)."""

    def __init__(self):
        import threading

        self.lock = threading.Lock()
        self.n = {}

    def add(self, dev, k):
        with self.lock:
            self.n[dev] = self.n.get(dev, 0) + k

    def snapshot(self):
        with self.lock:
            return dict(self.n)


class Relay(Uplink):
    def __init__(self, journal, client, gateway_id, key=None, node_keys=None, packer=None, **kw):
        Uplink.__init__(self, journal, client, gateway_id, key=key, receipts=True, **kw)
        from edgefw.gateway.codec import Packer

        self.packer = packer or Packer()
        # receipts for the nodes' batches come on their own topics
        client.receipt_topic = "edgefw/+/receipt"
        self.node_keys = node_keys
        self._sealers = {}
        # batch id -> the device it went up as: a receipt must name it
        self._dev_of = {}
        self._count_of = {}
        # node -> its records at the gateway not yet accounted for upstream
        self.backlog = Backlog()
        # told (queue, from, to, reason) when expired records are skipped
        self.on_dropped = None

    def _key_of(self, dev):
        if dev == self.device:
            return self.key
        return self.node_keys.get(dev) if self.node_keys is not None else None

    def _sealer(self, dev):
        s = self._sealers.get(dev)
        if s is None:
            s = self._sealers[dev] = Sealer(self._key_of(dev), dev)
        return s

    def _read(self):
        with self.j.lock:
            before = (self.j.acked(0), self.j.acked(1), self.j.dropped_ttl)
            q, recs = self.j.read_batch_after(self._sent_to, 1, self.batch_bytes)
            if recs and cbor.loads(recs[0][1]).get("k") != RELAY:
                q, recs = self.j.read_batch_after(self._sent_to, self.batch_records, self.batch_bytes)
            live = self.j._live.get(q) if recs else None
            if self.on_dropped is not None and self.j.dropped_ttl != before[2]:
                # reading skips expired records by moving the cursor past them
                for qq in (0, 1):
                    if self.j.acked(qq) != before[qq]:
                        self.on_dropped(qq, before[qq], self.j.acked(qq), "ttl")
        return q, recs, live

    def _batch(self):
        q, recs, live = self._read()
        if not recs:
            self._waiting_since = None
            return None
        head = cbor.loads(recs[0][1])
        bid = os.urandom(8)
        if head.get("k") == RELAY:
            recs = recs[:1]
            dev = head["dev"]
            m = self.packer.pack({"dev": dev, "q": head["q"], "first": head["first"], "last": head["last"], "id": bid, "boot": head["boot"], "utc_ms": head["utc_ms"], "mono_ms": head["mono_ms"]}, head["recs"])
            n = len(head["recs"])
            hq, hfirst, hlast = head["q"], head["first"], head["last"]
        else:
            # the gateway's own records, up to the next relayed batch
            for i in range(1, len(recs)):
                if cbor.loads(recs[i][1]).get("k") == RELAY:
                    recs = recs[:i]
                    break
            nbytes = sum(len(p) for _s, p in recs)
            if len(recs) < self.batch_records and nbytes < self.batch_bytes * 3 // 4:
                if self._waiting_since is None:
                    self._waiting_since = ticks_ms()
                if ticks_diff(ticks_ms(), self._waiting_since) < self.batch_ms:
                    return None
            self._waiting_since = None
            dev = self.device
            hq, hfirst, hlast = q, recs[0][0], recs[-1][0]
            m = self.packer.pack({"dev": dev, "q": q, "first": hfirst, "last": hlast, "id": bid, "boot": boot_id(), "utc_ms": utc_ms(), "mono_ms": ticks_ms()}, [p for _s, p in recs])
            n = len(recs)
        body = cbor.dumps(m)
        if self._key_of(dev) is not None:
            body = self._sealer(dev).seal(hq, hfirst, hlast, body)
        elif self.node_keys is not None:
            # a node with no key on a sealed gateway was refused at hop 1
            raise OSError("no key for %r: cannot seal its batch" % dev)
        if len(self._dev_of) > 4 * self.window:
            live_ids = set(x.id for x in self._inflight)
            self._dev_of = {k: v for k, v in self._dev_of.items() if k in live_ids}
            self._count_of = {k: v for k, v in self._count_of.items() if k in live_ids}
        self._dev_of[bid] = dev
        self._count_of[bid] = (dev, n) if head.get("k") == RELAY else None
        # Uplink.pump publishes on self.topic right after this returns
        self.topic = topic_for(dev)
        lane = live_lane(q) if live is not None and recs[0][0] >= live[0] else q
        return q, lane, recs[0][0], recs[-1][0], n, body, bid

    def stats(self):
        s = Uplink.stats(self)
        # the window and deadline in use, which follow the next tier (kept
        # out of the device's stats: a node's heap has no room for them)
        s["window"] = self._cwnd
        s["receipt_deadline_ms"] = self._rto
        return s

    def _collect(self, block):
        before = list(self._inflight)
        acked = Uplink._collect(self, block)
        # what went is a run of receipted batches from the front
        left = acked
        for b in before:
            if left <= 0 or b.state != _DONE:
                break
            left -= b.n
            c = self._count_of.pop(b.id, None)
            if c is not None:
                self.backlog.add(c[0], -c[1])
        return acked

    def _take_receipts(self, timeout_ms):
        for blob in self.client.receipts(timeout_ms):
            r = receipt.parse(blob)
            if r is None:
                self.bad_receipts += 1
                continue
            i = self._find(r.get("id"))
            if i is None:
                # another gateway's node on a shared upstream broker, or a
                # receipt for a batch already sent again
                continue
            b = self._inflight[i]
            dev = self._dev_of.get(b.id)
            if r.get("dev") != dev:
                self.bad_receipts += 1
                continue
            key = self._key_of(dev)
            if key is not None:
                r = receipt.parse(blob, key)
            if r["ok"]:
                if not r["verified"]:
                    self.bad_receipts += 1
                elif b.state != _DONE:
                    # the deadline follows the upstream's receipts, as the
                    # device's does (Uplink._take_receipts)
                    self._timed(ticks_diff(ticks_ms(), b.t))
                    b.state = _DONE
                continue
            self.last_rejection = str(r.get("why"))
            self.last_error = "upstream refused a batch: %s" % self.last_rejection
            self.rejected += b.n
            self._drop_from(i)
            self._pause = self._backoff(self._refusals)
            self._refusals += 1
