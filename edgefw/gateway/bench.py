"""Bytes upstream through the gateway against a mosquitto bridge.

    edgefw bench gateway [--nodes 20] [--hz 100] [--hours 1] [--json]

Simulated, time compressed, in one process: each node records as the
firmware does by default (``record.window_ms`` 1000: one ``win`` record a
second of its channels' [count, min, mean, max] over ``hz`` samples; the
default board's six channels) plus its events (a ``boot``, a trip and a
reset every 10 to 20 minutes), and its uplink sends a sealed batch per
queue each second (``uplink.batch_ms`` 1000). A mosquitto bridge
forwards those batches as they are, measured through a real one: two
mosquitto instances on loopback (a site broker bridged to an upstream
one, ``topic edgefw/+/up out 1``), every node batch published on the site
broker at QoS 1, and the upstream broker's own count of the bytes it
received (``$SYS/broker/bytes/received``, MQTT framing included) and a
subscriber there counting the messages and payload bytes that arrived.
The gateway's path is the real code (``verify.check``, the
store's two journals on a tmpfs, the 60 s windows, ``forward.Relay``)
with a client that stands in for the broker and the next tier's
receipts; its upstream is summaries and events, measured as published.
Sample values are a seeded random walk, not a sensor's.
"""

import json
import os
import random
import shutil
import sys
import tempfile
import time

from edgefw.ingest.verify import make_receipt
from firmware import cbor
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
        self._out.append(make_receipt(dev, q, first, last, m["id"], True, key=self.keys[dev]))
        return True

    def wait(self, handle, timeout_ms):
        return True

    def receipts(self, timeout_ms=0):
        out, self._out = self._out, []
        return out


def _node_key(i):
    return bytes((i * 31 + k) & 0xFF for k in range(32))


def _sys_bytes_received(port, timeout_s=30):
    """The broker's $SYS/broker/bytes/received (updated every
    ``sys_interval``): the first value published after this call."""
    import threading

    import paho.mqtt.client as mqtt

    got = []
    ev = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-sys-%d" % os.getpid())

    def on_message(_c, _u, m):
        got.append(int(m.payload))
        ev.set()

    c.on_message = on_message
    c.connect("127.0.0.1", port)
    c.subscribe("$SYS/broker/bytes/received")
    c.loop_start()
    try:
        # the retained value first, then a fresh one
        t0 = time.monotonic()
        while len(got) < 2 and time.monotonic() - t0 < timeout_s:
            ev.wait(0.5)
            ev.clear()
        if len(got) < 2:
            raise RuntimeError("mosquitto on port %d published no $SYS/broker/bytes/received in %d s" % (port, timeout_s))
        return got[-1]
    finally:
        c.loop_stop()
        c.disconnect()


def bridge(batches, timeout_s=600):
    """``batches`` ([(topic, payload)]) through a real mosquitto bridge on
    loopback: {"bytes": upstream broker's bytes received while they
    crossed, "payload_bytes", "messages": what a subscriber upstream got,
    "wall_s"}. Needs the mosquitto binary."""
    import threading

    import paho.mqtt.client as mqtt

    from edgefw.emul.broker import Mosquitto

    tmp = tempfile.mkdtemp(prefix="edgefw-bridge-bench-")
    up = site = None
    try:
        os.mkdir(tmp + "/up")
        os.mkdir(tmp + "/site")
        from pathlib import Path

        up = Mosquitto(Path(tmp) / "up")
        # $SYS every second, not persistent: only the live count matters
        # logs to a file: stderr is a pipe nobody reads while it runs
        log = "log_dest file %s\nlog_type error\nlog_type warning\n"
        up.conf.write_text("listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nsys_interval 1\n" % up.port + log % up.log + ("user root\n" if os.geteuid() == 0 else ""))
        up.start()
        site = Mosquitto(Path(tmp) / "site")
        site.conf.write_text(
            "listener %d 127.0.0.1\nallow_anonymous true\nmax_queued_messages 1000000\nmax_inflight_messages 64\n"
            "connection bench-bridge\naddress 127.0.0.1:%d\ntopic edgefw/+/up out 1\nbridge_protocol_version mqttv311\n"
            "cleansession true\nbridge_max_packet_size 0\n" % (site.port, up.port) + log % site.log + ("user root\n" if os.geteuid() == 0 else "")
        )
        site.start()
        n = [0, 0]
        done = threading.Event()
        probed = threading.Event()
        sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-count")

        def on_message(_c, _u, m):
            # the probes (several may cross before the first is seen) are
            # not counted
            if m.topic == "edgefw/probe/up":
                probed.set()
                return
            n[0] += 1
            n[1] += len(m.payload)
            if n[0] >= len(batches):
                done.set()

        sub.on_message = on_message
        subscribed = threading.Event()
        sub.on_subscribe = lambda *a: subscribed.set()
        sub.connect("127.0.0.1", up.port)
        sub.subscribe("edgefw/+/up", qos=1)
        sub.loop_start()
        if not subscribed.wait(10):
            raise RuntimeError("the counting subscriber could not subscribe on port %d" % up.port)
        # the bridge is up when a probe published on the site arrives upstream
        probe = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-pub")
        probe.max_inflight_messages_set(64)
        probe.max_queued_messages_set(0)
        probe.connect("127.0.0.1", site.port)
        probe.loop_start()
        t0 = time.monotonic()
        while not probed.is_set():
            probe.publish("edgefw/probe/up", b"", qos=1).wait_for_publish(5)
            probed.wait(0.2)
            if time.monotonic() - t0 > 30:
                raise RuntimeError("the bridge from port %d to %d did not connect in 30 s (%s)" % (site.port, up.port, site.log))
        # the probes still crossing are in before's count, not the batches'
        time.sleep(1.5)
        before = _sys_bytes_received(up.port)
        t0 = time.monotonic()
        # as a node would: a window of QoS 1 publishes in flight (paho's
        # own queue, handed 72,000 at once, left some of them unsent)
        window = []
        for topic, payload in batches + [(None, None)]:
            if payload is not None:
                window.append(probe.publish(topic, payload, qos=1))
            if len(window) >= 64 or (payload is None and window):
                for info in window:
                    info.wait_for_publish(60)
                    if not info.is_published():
                        raise RuntimeError("the site broker on port %d did not acknowledge a batch in 60 s" % site.port)
                window = []
        if not done.wait(timeout_s):
            raise RuntimeError("the bridge forwarded %d of %d batches in %d s" % (n[0], len(batches), timeout_s))
        wall = time.monotonic() - t0
        after = _sys_bytes_received(up.port)
        probe.loop_stop()
        probe.disconnect()
        sub.loop_stop()
        sub.disconnect()
        # the broker's count has the counting subscriber's PUBACKs in it
        # (4 bytes each, MQTT 3.1.1): taken out. The two $SYS readers' own
        # CONNECT and SUBSCRIBE (about a hundred bytes) stay in.
        return {"bytes": after - before - 4 * n[0], "payload_bytes": n[1], "messages": n[0], "wall_s": round(wall, 2)}
    finally:
        for b in (site, up):
            if b is not None:
                b.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def run(nodes=20, hz=100, hours=1.0, window_s=60, codec="none", batch_ids=True, keep_batches=False):
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
        batches = [] if keep_batches else None

        def send(n, q, recs, t_s):
            nonlocal node_bytes, node_msgs, node_records
            first, last = recs[0]["seq"], recs[-1]["seq"]
            m = {"dev": n, "q": q, "first": first, "last": last, "id": os.urandom(8), "boot": boot[n], "utc_ms": 1767225600000 + int(t_s * 1000), "mono_ms": int(t_s * 1000), "recs": [cbor.dumps(r) for r in recs]}
            blob = sealers[n].seal(q, first, last, cbor.dumps(m))
            node_bytes += len(blob)
            node_msgs += 1
            if batches is not None:
                batches.append(("edgefw/%s/up" % n, blob))
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
        if batches is not None:
            res["batches"] = batches
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
    p.add_argument("--repeat", type=int, default=3, help="runs (gateway and bridge each); median and spread reported (default 3)")
    p.add_argument("--no-bridge", action="store_true", help="skip the real mosquitto bridge (its bytes are then not measured)")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object on the last line")


def _spread(vals):
    vals = sorted(vals)
    n = len(vals)
    med = vals[n // 2] if n % 2 else (vals[n // 2 - 1] + vals[n // 2]) / 2
    return {"median": med, "min": vals[0], "max": vals[-1]}


def repeat(runs, bridge_too=True, progress=None, **kw):
    """``run`` and, on its batches, ``bridge``, ``runs`` times: each
    figure's median, min and max, and the last run's other fields."""
    per = []
    for i in range(runs):
        r = run(keep_batches=bridge_too, **kw)
        batches = r.pop("batches", None)
        if bridge_too:
            b = bridge(batches)
            r.update(bridge_bytes=b["bytes"], bridge_payload_bytes=b["payload_bytes"], bridge_messages=b["messages"], bridge_wall_s=b["wall_s"])
            r["gateway_over_bridge"] = round(r["gateway_bytes"] / b["bytes"], 4)
        if progress:
            progress("run %d of %d: %s" % (i + 1, runs, json.dumps(r)))
        per.append(r)
    res = dict(per[-1])
    res["runs"] = runs
    for k in ("gateway_bytes", "gateway_messages", "node_bytes", "wall_s", "bridge_bytes", "bridge_payload_bytes", "bridge_messages", "bridge_wall_s", "gateway_over_bridge", "gateway_over_nodes"):
        if k in res:
            res[k] = _spread([r[k] for r in per])
    return res


def main(a):
    if a.repeat < 1:
        print("edgefw bench gateway: --repeat needs at least 1, got %d" % a.repeat, file=sys.stderr)
        return 2
    if not a.no_bridge and not (shutil.which("mosquitto") or os.path.exists("/usr/sbin/mosquitto")):
        print("edgefw bench gateway: mosquitto not found (apt-get install mosquitto), or --no-bridge", file=sys.stderr)
        return 2
    res = repeat(a.repeat, not a.no_bridge, progress=lambda m: print(m, file=sys.stderr, flush=True), nodes=a.nodes, hz=a.hz, hours=a.hours, window_s=a.window_s, codec=a.codec, batch_ids=not a.no_batch_ids)
    print(json.dumps(res) if a.json else "\n".join("%s: %s" % kv for kv in res.items()))
    return 0
