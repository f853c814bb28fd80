"""The gateway: receiver (hop 1), journal, relay (hop 2), wired from a
checked config (``edgefw.gateway.config``).

    gw = Gateway(cfg).start()
    ...
    gw.stop(drain_s=2)
"""

import sys
import time

from edgefw.gateway.forward import Relay
from edgefw.gateway.receiver import Receiver
from firmware.clocks import boot_id, utc_ms
from firmware.config import parse_broker
from firmware.linux.forwarder import Forwarder
from firmware.store.journal import PRIO_EVENT, Journal
from firmware.uplink.uplink import make_client, read_key

# the receiver syncs before every receipt itself; the journal's own group
# timer never needs to
_NEVER = 1 << 30


def load_node_keys(path):
    if path is None:
        return None
    from edgefw.ingest.server import load_keys

    return load_keys(path)


class Gateway:
    def __init__(self, cfg, log=sys.stderr):
        self.cfg = cfg
        self.log = log
        g, site, up, st = cfg["gateway"], cfg["site"], cfg["upstream"], cfg["store"]
        self.id = g["id"]
        self.node_keys = load_node_keys(site["keys"])
        self.key = read_key(g["key_file"])
        ttl = st["ttl_s"]
        self.j = Journal(
            st["path"],
            "group",
            segment_bytes=st["segment_bytes"],
            cap_bytes=st["cap_bytes"],
            ttl_s={0: ttl, 1: ttl} if ttl else None,
            group_records=_NEVER,
            group_ms=_NEVER,
        )
        host, port = parse_broker(up["broker"])
        client = make_client(host, port, "edgefw-gw-%s-up" % self.id, timeout_ms=5000)
        self.up = Relay(
            self.j,
            client,
            self.id,
            key=self.key,
            node_keys=self.node_keys,
            batch_records=up["batch_records"],
            batch_ms=up["batch_ms"],
            window=up["window"],
            rate_bytes_s=up["rate_bytes_s"],
            backoff_ms=up["backoff_ms"],
            backoff_max_ms=up["backoff_max_ms"],
            receipt_timeout_ms=up["receipt_timeout_ms"],
        )
        self.fwd = Forwarder(self.j, self.up, period_ms=10)
        shost, sport = parse_broker(site["broker"])
        self.nodes = {}
        self.rx = Receiver(self.j, shost, sport, site["client_id"] or "edgefw-gw-%s" % self.id, self.node_keys, self._seen, log)
        self.t0 = time.time()

    def _seen(self, b):
        n = self.nodes.get(b.dev)
        if n is None:
            n = self.nodes[b.dev] = {"batches": 0, "records": 0, "last_seen": 0.0}
        n["batches"] += 1
        n["records"] += len(b.recs)
        n["last_seen"] = time.time()

    def start(self):
        # the lock first: the forwarder's thread and the receiver's share it
        self.fwd.start()
        with self.j.lock:
            # a run starts with a boot event, as a device's does
            self.j.append({"k": "boot", "t": 0, "boot": boot_id(), "utc_ms": utc_ms()}, PRIO_EVENT)
            self.j.flush()
        self.rx.start()
        return self

    def stop(self, drain_s=0):
        self.rx.stop()
        left = self.fwd.stop(drain_s)
        self.j.close()
        return left

    def stats(self):
        with self.j.lock:
            js = self.j.stats()
        return {"id": self.id, "uptime_s": round(time.time() - self.t0, 3), "site": dict(self.rx.counts, refusals=dict(self.rx.refusals)), "upstream": self.up.stats(), "store": js, "nodes": self.nodes}
