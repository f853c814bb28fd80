"""Bytes upstream through the gateway against a mosquitto bridge.

    edgefw bench gateway [--nodes 20] [--hz 100] [--hours 1] [--json]

Simulated, time compressed, in one process: each node records as the
firmware does by default (``record.window_ms`` 1000: one ``win`` record a
second of its channels' [count, min, mean, max] over ``hz`` samples; the
default board's six channels) plus its events (a ``boot``, a trip and a
reset every 10 to 20 minutes), and its uplink sends a sealed batch per
queue each second (``uplink.batch_ms`` 1000). A mosquitto bridge
forwards those batches as they are: its upstream bytes and messages are
the nodes'. The gateway's path is the real code (``verify.check``, the
store's two journals on a tmpfs, the 60 s windows, ``forward.Relay``)
with a client that stands in for the broker and the next tier's
receipts; its upstream is summaries and events, measured as published.
Sample values are a seeded random walk, not a sensor's.
"""

import json
import os
import random
import shutil
import tempfile
import time

from firmware import cbor
from firmware.uplink import receipt
from firmware.uplink.seal import Sealer, open_sealed

CHANNELS = ["env.temperature_c", "env.humidity_pct", "env.pressure_hpa", "vib.accel_x_g", "vib.accel_y_g", "vib.accel_z_g"]
BASE = [21000, 45000, 1013000, 0, 0, 1000]
SPREAD = [50, 200, 100, 30, 30, 30]


class _NextTier:
    """The broker and the next tier in one: takes each publish, opens it,
    and hands back the receipt ingest would send."""

    def __init__(self, keys):
        self.keys = keys
        self.receipt_topic = None
        self.timeout_s = 5.0
        self.bytes = 0
        self.messages = 0
        self._out = []

    def connect(self):
        pass

    def disconnect(self):
        pass

    def publish(self, topic, payload):
        self.bytes += len(payload)
        self.messages += 1
        dev, q, first, last, _n, plain = open_sealed(payload, self.keys)
        m = cbor.loads(plain)
        self._out.append(receipt.make(dev, q, first, last, m["id"], True, key=self.keys[dev]))
        return True

    def wait(self, handle, timeout_ms):
        return True

    def receipts(self, timeout_ms=0):
        out, self._out = self._out, []
        return out


def _node_key(i):
    return bytes((i * 31 + k) & 0xFF for k in range(32))


def run(nodes=20, hz=100, hours=1.0, window_s=60, codec="none", batch_ids=True):
    from edgefw.gateway.aggregate import Aggregator
    from edgefw.gateway.codec import Packer
    from edgefw.gateway.forward import Relay
    from edgefw.gateway.store import Store
    from edgefw.gateway.verify import check
    from firmware.store.journal import Journal

    rng = random.Random(1)
    names = ["node-%02d" % i for i in range(nodes)]
    keys = {n: _node_key(i) for i, n in enumerate(names)}
    gw_key = _node_key(999)
    keys["gw"] = gw_key
    sealers = {n: Sealer(keys[n], n) for n in names}
    seq = {n: 0 for n in names}
    boot = {n: os.urandom(8) for n in names}
    level = {n: list(BASE) for n in names}
    next_event = {n: rng.uniform(600, 1200) for n in names}
    tripped = {n: False for n in names}
    base_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
    tmp = tempfile.mkdtemp(prefix="edgefw-gw-bench-", dir=base_dir)
    t_wall = time.monotonic()
    try:
        never = 1 << 30
        out = Journal(tmp + "/out", "group", cap_bytes=1 << 30, group_records=never, group_ms=never)
        raw = Journal(tmp + "/raw", "group", cap_bytes=1 << 30, group_records=never, group_ms=never)
        agg = Aggregator(window_s, close_idle_s=1e9, batch_ids=batch_ids)
        store = Store(out, raw, agg)
        tier = _NextTier(keys)
        packer = Packer(codec)
        up = Relay(out, tier, "gw", key=gw_key, node_keys=keys, packer=packer, batch_records=200, batch_ms=0, window=64)
        store.backlog = up.backlog
        node_bytes = node_msgs = node_records = 0

        def send(n, q, recs, t_s):
            nonlocal node_bytes, node_msgs, node_records
            first, last = recs[0]["seq"], recs[-1]["seq"]
            m = {"dev": n, "q": q, "first": first, "last": last, "id": os.urandom(8), "boot": boot[n], "utc_ms": 1767225600000 + int(t_s * 1000), "mono_ms": int(t_s * 1000), "recs": [cbor.dumps(r) for r in recs]}
            blob = sealers[n].seal(q, first, last, cbor.dumps(m))
            node_bytes += len(blob)
            node_msgs += 1
            node_records += len(recs)
            store.take(check(blob, keys, n))

        def rec(n, r):
            seq[n] += 1
            r["seq"] = seq[n]
            return r

        for n in names:
            send(n, 0, [rec(n, {"k": "boot", "t": 0, "boot": boot[n], "utc_ms": 1767225600000})], 0)
        for s in range(int(hours * 3600)):
            for n in names:
                lv = level[n]
                ch = {}
                for c, name in enumerate(CHANNELS):
                    lv[c] += rng.randint(-SPREAD[c] // 10, SPREAD[c] // 10)
                    lo = lv[c] - rng.randint(0, SPREAD[c])
                    hi = lv[c] + rng.randint(0, SPREAD[c])
                    ch[name] = [hz, lo, lv[c], hi]
                t_us = s * 1000000
                if s >= next_event[n]:
                    kind = "reset" if tripped[n] else "trip"
                    tripped[n] = not tripped[n]
                    ev = {"k": kind, "t": t_us, "causes": [[0x1000, "env.temperature_c:high"]] if kind == "trip" else []}
                    send(n, 0, [rec(n, ev)], s)
                    next_event[n] = s + rng.uniform(600, 1200)
                send(n, 1, [rec(n, {"k": "win", "t": t_us, "ch": ch, "dt": 1000000})], s)
            store.sync()
            store.tick(now=s)
            up.pump()
        store.tick(now=0, all_open=True)
        for _ in range(100000):
            up.pump()
            store.tick(now=0)
            with out.lock:
                if out.pending() == 0:
                    break
        res = {
            "nodes": nodes,
            "hz": hz,
            "simulated_s": int(hours * 3600),
            "node_records": node_records,
            "node_messages": node_msgs,
            "node_bytes": node_bytes,
            "bridge_bytes": node_bytes,
            "bridge_messages": node_msgs,
            "gateway_bytes": tier.bytes,
            "gateway_messages": tier.messages,
            "gateway_over_nodes": round(tier.bytes / node_bytes, 4),
            "summaries": agg.emitted,
            "codec": codec,
            "batch_ids": batch_ids,
            "codec_bytes_in": packer.bytes_in,
            "codec_bytes_out": packer.bytes_out,
            "left_pending": out.pending(),
            "wall_s": round(time.monotonic() - t_wall, 1),
        }
        out.close()
        raw.close()
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def add_arguments(p):
    """``edgefw bench gateway``'s options."""
    p.add_argument("--nodes", type=int, default=20, help="nodes at the site (default 20)")
    p.add_argument("--hz", type=int, default=100, help="samples per second per node (default 100)")
    p.add_argument("--hours", type=float, default=1.0, help="simulated hours, time compressed (default 1)")
    p.add_argument("--window-s", type=float, default=60, help="summary window (default 60 s)")
    p.add_argument("--codec", default="none", help="upstream codec: none, zlib, zstd (default none)")
    p.add_argument("--no-batch-ids", action="store_true", help="summaries without the node batch ids (seq ranges only)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object on the last line")


def main(a):
    res = run(a.nodes, a.hz, a.hours, a.window_s, a.codec, not a.no_batch_ids)
    print(json.dumps(res) if a.json else "\n".join("%s: %s" % kv for kv in res.items()))
    return 0
