"""Hop 1: the nodes' batches from the site broker into the gateway's
journal, and only then their receipts.

Each batch is checked (``edgefw.gateway.verify``, ingest's checks) and
handed to the store (``edgefw.gateway.store``: events and raw telemetry
into the upstream journal, telemetry that summaries stand for into the
raw journal); batches that arrive together share one write and one sync
of each. After that
sync, and not before, each node gets its receipt on
``edgefw/<node>/receipt`` and the site broker its PUBACK (paho's manual
acknowledgement: a gateway killed between the two finds the broker
sending the batch again, not holding nothing). A batch the gateway
refuses gets a negative receipt with the reason, as ingest gives one:
the node keeps its records.

The MQTT session is persistent (clean session off, a stable client id),
so the site broker queues the nodes' batches while the gateway restarts.
"""

import sys
import threading
import time

from edgefw.gateway.verify import Refused, check
from edgefw.ingest.server import topic_device
from edgefw.ingest.verify import make_receipt
from edgefw.util import end_mqtt
from firmware.uplink import receipt


class Receiver:
    # batches arriving within this long share one sync
    COMMIT_S = 0.005

    def __init__(self, store, host, port, client_id, keys=None, on_batch=None, log=sys.stderr, dicts=None):
        import paho.mqtt.client as mqtt

        self.store = store
        self.dicts = dicts
        self.keys = keys
        # nodes the fleet registry revoked (site.fleet): refused with a
        # negative receipt sealed with their key, as ingest does
        self.revoked = frozenset()
        self.on_batch = on_batch
        self.log = log
        self._held = []
        self._held_lock = threading.Lock()
        self._work = threading.Event()
        self._stop = threading.Event()
        self._thread = None
        self.subscribed = threading.Event()
        self.counts = {"batches": 0, "records": 0, "bytes": 0, "refused": 0, "store_failed": 0, "receipts": 0}
        self.refusals = {}
        self.last_error = None
        self.fatal = None
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False, manual_ack=True)

        def on_connect(cl, u, f, rc, p):
            if rc.is_failure:
                self.last_error = "site broker refused: %s" % rc
                return
            cl.subscribe("edgefw/+/up", qos=1)

        def on_disconnect(cl, u, f, rc, p):
            self.subscribed.clear()
            self.last_error = "site broker: %s" % rc

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.on_message = self._on_message
        c.reconnect_delay_set(0.2, 10)
        self.c = c
        self.host, self.port = host, port

    def _on_message(self, cl, u, m):
        with self._held_lock:
            self._held.append((m.mid, m.qos, m.topic, m.payload))
        self._work.set()

    def _store(self, topic, payload):
        """(device, receipt) to publish, or None: nobody to tell."""
        try:
            b = check(payload, self.keys, topic_device(topic), self.dicts)
        except Refused as e:
            self.counts["refused"] += 1
            self.refusals[e.kind] = self.refusals.get(e.kind, 0) + 1
            if self.log:
                self.log.write("edgefw gateway: refused (%s: %s)\n" % (e.kind, e.msg))
            if e.dev is None:
                return None
            q, first, last, bid = e.head
            # as ingest's refusals read: the kind, then why
            return e.dev, self._receipt(e.dev, q, first, last, bid, False, "%s: %s" % (e.kind, e.msg))
        if b.dev in self.revoked:
            self.counts["refused"] += 1
            self.refusals["revoked"] = self.refusals.get("revoked", 0) + 1
            if self.log:
                self.log.write("edgefw gateway: refused (revoked: node %r is revoked in the fleet registry)\n" % b.dev)
            return b.dev, self._receipt(b.dev, b.q, b.first, b.last, b.id, False, "revoked: node %r is revoked in the fleet registry" % b.dev, b.key)
        try:
            stored = self.store.take(b)
        except OSError as e:
            stored = False
            self.last_error = str(e)
        if not stored:
            # not stored: the node keeps the records and tries again
            self.counts["store_failed"] += 1
            return b.dev, self._receipt(b.dev, b.q, b.first, b.last, b.id, False, "gateway store: %s" % (self.last_error or "full"), b.key)
        self.counts["batches"] += 1
        self.counts["records"] += len(b.recs)
        self.counts["bytes"] += len(payload)
        if self.on_batch is not None:
            self.on_batch(b)
        return b.dev, self._receipt(b.dev, b.q, b.first, b.last, b.id, True, None, b.key)

    def _receipt(self, dev, q, first, last, bid, ok, why=None, key=None):
        # sealed with the key that opened the batch: a node in a rotation's
        # overlap may hold only its old one
        if key is None:
            key = self.keys.get(dev) if self.keys else None
            if isinstance(key, list):
                key = key[0]
        return make_receipt(dev, q, first, last, bid, ok, why, key)

    def _commit_loop(self):
        try:
            self._commit_loop_inner()
        except BaseException as e:
            # a bug, not a broker or disk problem: stop taking batches and
            # say so, rather than leave the nodes waiting on a dead thread
            self.fatal = "%s: %s" % (type(e).__name__, e)
            if self.log:
                self.log.write("edgefw gateway: receiver stopped: %s\n" % self.fatal)
            raise

    def _commit_loop_inner(self):
        while not self._stop.is_set() or self._held:
            if not self._work.wait(0.2):
                continue
            time.sleep(self.COMMIT_S)
            self._work.clear()
            with self._held_lock:
                held, self._held = self._held, []
            if not held:
                continue
            outs = [self._store(topic, payload) for _mid, _qos, topic, payload in held]
            try:
                self.store.sync()
            except OSError as e:
                # nothing of this group is known to be on disk: no receipt,
                # no PUBACK; the broker and the nodes send them again
                self.last_error = str(e)
                self.counts["store_failed"] += len(held)
                continue
            for (mid, qos, _t, _p), out in zip(held, outs, strict=True):
                if out is not None:
                    dev, body = out
                    self.c.publish(receipt.topic_for(dev), body, qos=1)
                    self.counts["receipts"] += 1
                self.c.ack(mid, qos)

    def start(self):
        self._thread = threading.Thread(target=self._commit_loop, name="edgefw-gateway-rx", daemon=True)
        self._thread.start()
        self.c.connect_async(self.host, self.port, keepalive=30)
        self.c.loop_start()
        return self

    def stop(self):
        self._stop.set()
        self._work.set()
        if self._thread is not None:
            self._thread.join(5)
        end_mqtt(self.c)
