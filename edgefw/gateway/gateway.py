"""The gateway: receiver (hop 1), journal, relay (hop 2), wired from a
checked config (``edgefw.gateway.config``).

    gw = Gateway(cfg).start()
    ...
    gw.stop(drain_s=2)
"""

import json
import os
import sys
import threading
import time

from edgefw.gateway import commands, pull
from edgefw.gateway.aggregate import Aggregator
from edgefw.gateway.codec import Packer
from edgefw.gateway.forward import Relay
from edgefw.gateway.metrics import render
from edgefw.gateway.metrics import write as write_metrics
from edgefw.gateway.receiver import Receiver
from edgefw.gateway.rules import Rules
from edgefw.gateway.store import QueueCapped, Store, ranges
from firmware import cbor
from firmware.clocks import boot_id, utc_ms
from firmware.config import parse_broker
from firmware.linux.forwarder import Forwarder
from firmware.store.journal import PRIO_EVENT, Journal
from firmware.store.summary import LOSSES
from firmware.uplink.uplink import make_client, read_key
from hal.errors import JournalError

# the receiver syncs before every receipt itself; the journal's own group
# timer never needs to
_NEVER = 1 << 30


def load_node_keys(path):
    if path is None:
        return None
    from edgefw.ingest.server import load_keys

    return load_keys(path)


def fleet_node_keys(root, gateway_id):
    """From the fleet registry (``site.fleet``): ({node: [seal keys still
    accepted, newest first]}, {revoked node, ...}), limited to the devices
    the registry lets this gateway relay for when it is registered as a
    gateway service (``edgefw fleet add-service G --role gateway
    --devices ...``)."""
    from edgefw.fleet.registry import Fleet
    from edgefw.ingest.fleet import fleet_keys

    keys, revoked = fleet_keys(root)
    svc = (Fleet(root).load().doc.get("services") or {}).get(gateway_id)
    if svc and svc.get("role") == "gateway":
        mine = set(svc.get("devices") or ())
        keys = {d: k for d, k in keys.items() if d in mine}
        revoked = {d for d in revoked if d in mine}
    return keys, revoked


class Gateway:
    TICK_S = 0.1

    def __init__(self, cfg, log=sys.stderr):
        self.cfg = cfg
        self.log = log
        g, site, up, st = cfg["gateway"], cfg["site"], cfg["upstream"], cfg["store"]
        self.id = g["id"]
        # node -> the key its batches go upstream under; the receiver may
        # hold several per node (a rotation's overlap)
        self.revoked = frozenset()
        if site["fleet"] is not None:
            self.rx_keys, revoked = fleet_node_keys(site["fleet"], self.id)
            self.revoked = frozenset(revoked)
            self.node_keys = {d: ks[0] for d, ks in self.rx_keys.items()}
        else:
            self.node_keys = self.rx_keys = load_node_keys(site["keys"])
        self.key = read_key(g["key_file"])
        ttl = st["ttl_s"]
        self.j = QueueCapped(
            st["path"] + "/out",
            "group",
            queue_caps={0: st["event_cap_bytes"], 1: st["telemetry_cap_bytes"]},
            segment_bytes=st["segment_bytes"],
            cap_bytes=st["cap_bytes"],
            # events and telemetry expire apart: telemetry's TTL, and the
            # events' (default none: kept until the cap takes them, last)
            ttl_s={q: t for q, t in ((0, st["event_ttl_s"]), (1, ttl)) if t} or None,
            group_records=_NEVER,
            group_ms=_NEVER,
        )
        host, port = parse_broker(up["broker"])
        zdict = None
        self.dicts = None
        if up["zstd_dict"]:
            import zstandard

            with open(up["zstd_dict"], "rb") as f:
                zdict = f.read()
            self.dicts = {zstandard.ZstdCompressionDict(zdict).dict_id(): zdict}
        self.packer = Packer(up["codec"], up["level"], zdict)
        client = make_client(host, port, "edgefw-gw-%s-up" % self.id, timeout_ms=5000)
        # pull requests from the next tier (edgefw.gateway.pull)
        client.listen_commands = pull.topic_for(self.id)
        self.up = Relay(
            self.j,
            client,
            self.id,
            key=self.key,
            node_keys=self.node_keys,
            packer=self.packer,
            batch_records=up["batch_records"],
            batch_ms=up["batch_ms"],
            window=up["window"],
            rate_bytes_s=up["rate_bytes_s"],
            backoff_ms=up["backoff_ms"],
            backoff_max_ms=up["backoff_max_ms"],
            receipt_timeout_ms=up["receipt_timeout_ms"],
            live_first=up["live_first"],
        )
        self.fwd = Forwarder(self.j, self.up, period_ms=10)
        a = cfg["aggregate"]
        self.agg = None
        self.raw = None
        if a["window_s"]:
            modes = dict(a["channels"])
            self.agg = Aggregator(a["window_s"], modes, a["keep_s"], a["close_idle_s"], a["batch_ids"])
            self.raw = Journal(
                st["path"] + "/raw",
                "group",
                segment_bytes=min(st["segment_bytes"], st["raw_cap_bytes"]),
                cap_bytes=st["raw_cap_bytes"],
                group_records=_NEVER,
                group_ms=_NEVER,
            )
            self.raw.lock = threading.Lock()
        gone = None
        if self.agg is not None:
            # never acknowledged: the cap drops the oldest, which are
            # forgotten (GONE_KEPT windows take about 6 MB)
            gone = Journal(st["path"] + "/gone", "group", segment_bytes=512 << 10, cap_bytes=8 << 20, group_records=_NEVER, group_ms=_NEVER)
        kept = None
        if self.agg is not None and st["kept_cap_bytes"]:
            kept = pull.Kept(
                Journal(
                    st["path"] + "/kept",
                    "group",
                    segment_bytes=min(st["segment_bytes"], st["kept_cap_bytes"] // 4),
                    cap_bytes=st["kept_cap_bytes"],
                    group_records=_NEVER,
                    group_ms=_NEVER,
                ),
                st["kept_s"],
            )
        self.store = Store(self.j, self.raw, self.agg, cfg["aggregate"]["around"], gone, kept)
        self.loss_path = st["path"] + "/losses.json"
        self._base, self._named = self._load_losses()
        self.puller = pull.Puller(self)
        self.store.backlog = self.up.backlog
        self.up.on_dropped = self.store.note_dropped
        shost, sport = parse_broker(site["broker"])
        self.nodes = {}
        self.rx = Receiver(self.store, shost, sport, site["client_id"] or "edgefw-gw-%s" % self.id, self.rx_keys, self._seen, log, self.dicts)
        self.rx.revoked = self.revoked
        self.t0 = time.time()
        self.fatal = None
        self.rules = Rules(cfg["rules"]) if cfg["rules"] else None
        self._rules_lock = threading.Lock()
        self.actions = {"event": 0, "trip": 0, "commands": 0}

    def _seen(self, b):
        n = self.nodes.get(b.dev)
        if n is None:
            n = self.nodes[b.dev] = {"batches": 0, "records": 0, "last_seen": 0.0}
        n["batches"] += 1
        n["records"] += len(b.recs)
        n["last_seen"] = time.time()
        if self.rules is not None:
            with self._rules_lock:
                acts = self.rules.observe(b)
            self._act(acts)

    def _act(self, acts):
        for r, action, nodes, utc in acts:
            self.actions[action] += 1
            if action == "event":
                self.store.append_own({"k": "site", "t": 0, "rule": r["name"], "nodes": nodes, "utc_ms": utc}, PRIO_EVENT)
            elif action == "trip":
                # the gateway's clock when sent, not the rule's moment: a
                # node refuses a command older than a minute as stale
                sent = int(time.time() * 1000)
                for n in r["nodes"]:
                    key = self.node_keys.get(n) if self.node_keys else None
                    self.rx.c.publish(commands.topic_for(n), commands.make("trip", r["name"], sent, key), qos=1)
                    self.actions["commands"] += 1

    def reload_fleet(self):
        """Read the fleet registry again (SIGHUP): revocations and rotations
        take effect for the next batch. Returns a line for the log."""
        root = self.cfg["site"]["fleet"]
        if root is None:
            return "no site.fleet: nothing to read again"
        keys, revoked = fleet_node_keys(root, self.id)
        # the receiver reads these per batch: each is replaced whole
        self.rx.keys = keys
        self.rx.revoked = frozenset(revoked)
        self.node_keys.clear()
        self.node_keys.update({d: ks[0] for d, ks in keys.items()})
        self.up._sealers.clear()
        return "fleet registry read again: %d nodes, %d revoked" % (len(keys), len(revoked))

    def start(self):
        # the lock first: the forwarder's thread and the receiver's share it
        self.fwd.start()
        with self.j.lock:
            # a run starts with a boot event, as a device's does
            self.j.append({"k": "boot", "t": 0, "boot": boot_id(), "utc_ms": utc_ms()}, PRIO_EVENT)
            self.j.flush()
        # what waits in out/ from before, then the windows from raw/ (which
        # may relay late records: after the scan, so they count once)
        self._count_backlog()
        self.recovered = self.store.recover()
        self._reported = self._losses()
        self._loss_at = 0.0
        self._loss_seq = None
        self._metrics_at = 0.0
        self.rx.start()
        self._stop = threading.Event()
        self.beat = time.monotonic()
        self._ticker = threading.Thread(target=self._tick_loop, name="edgefw-gateway-tick", daemon=True)
        self._ticker.start()
        return self

    def _count_backlog(self):
        # relays waiting from before a restart; raw ones were counted by recover
        with self.j.lock:
            acked = {q: self.j.acked(q) for q in (0, 1)}
            for seq, r in self.j.records():
                q = 0 if r.get("q") == 0 else 1
                if seq <= acked[q]:
                    continue
                if r.get("k") == "relay":
                    self.up.backlog.add(r["dev"], len(r["recs"]))
                    what = ("relay", r["dev"], ranges(cbor.loads(x)["seq"] for x in r["recs"]))
                else:
                    # a summary waiting from before the restart: its window
                    # is rebuilt from raw/ and summarized again anyway
                    what = ("own", r.get("k"))
                self.store.meta[q].append((seq, what))

    def _losses(self):
        """Totals of what the gateway dropped, per journal and reason,
        since its store was made (runs before this one: losses.json)."""
        out = dict(self._base)
        for name, j in (("out", self.j), ("raw", self.raw)):
            if j is None:
                continue
            with j.lock:
                for k, _t in LOSSES:
                    if hasattr(j, k):
                        out[name + "_" + k] = out.get(name + "_" + k, 0) + getattr(j, k)
        return out

    def _load_losses(self):
        """What earlier runs dropped and named, so a restart neither forgets
        nor reports them again (a node's own counters restart; these are
        the site's record of what it lost)."""
        try:
            with open(self.loss_path) as f:
                doc = json.load(f)
            base, named = doc["totals"], doc["nodes"]
            if not all(isinstance(v, int) for v in base.values()) or not isinstance(named, dict):
                raise ValueError("totals must be counts, nodes an object")
        except FileNotFoundError:
            return {}, {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise JournalError(
                "%s: not the gateway's record of its losses (%s); move it aside to start counting again (the loss events already"
                " sent upstream keep what it said)" % (self.loss_path, e)
            ) from e
        return base, named

    def _save_losses(self, totals):
        tmp = self.loss_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"totals": totals, "nodes": self._named}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.loss_path)

    # loss events at most this often
    LOSS_EVERY_S = 1.0
    # a loss event larger than this lists fewer ranges (counts stay whole)
    LOSS_MAX_BYTES = 4096

    def _report_losses(self, force=False):
        """A ``loss`` event when something was dropped: totals per journal
        and reason, and the node records dropped, as seq ranges per reason
        and node, both since the store was made (losses.json). One is pending upstream at a time: a
        full store would otherwise drop telemetry to make room for events
        about dropping telemetry; the next one carries everything."""
        if not force and time.monotonic() - self._loss_at < self.LOSS_EVERY_S:
            return
        for reason, per_node in self.store.take_lost().items():
            mine = self._named.setdefault(reason, {})
            for node, rs in per_node.items():
                if node:
                    mine[node] = ranges(q for a, b in mine.get(node, []) + rs for q in range(a, b + 1))
                else:
                    mine[""] = mine.get("", []) + rs
        now = self._losses()
        if now == self._reported:
            return
        with self.j.lock:
            if self._loss_seq is not None and self.j.acked(0) < self._loss_seq:
                return
        self._loss_at = time.monotonic()
        self._reported = now
        # on disk first: a restart goes on from here
        self._save_losses(now)
        ev = dict(now, k="loss", t=0, utc_ms=utc_ms(), nodes=self._named)
        if len(cbor.dumps(ev)) > self.LOSS_MAX_BYTES:
            ev["nodes"] = {r: {n: rs[-8:] for n, rs in per.items()} for r, per in self._named.items()}
            ev["truncated"] = True
        self._loss_seq = self.store.append_own(ev, PRIO_EVENT) or None

    def _tick_loop(self):
        try:
            self._tick_loop_inner()
        except BaseException as e:
            # a bug: say so and stop (the command exits non-zero) rather
            # than go on without summaries, loss events or rules
            self.fatal = "%s: %s" % (type(e).__name__, e)
            if self.log:
                self.log.write("edgefw gateway: tick stopped: %s\n" % self.fatal)
            raise

    def _tick_loop_inner(self):
        while not self._stop.wait(self.TICK_S):
            # what the service's watchdog goes by (edgefw.gateway.cli)
            self.beat = time.monotonic()
            self.store.tick()
            if self.store.kept is not None:
                self.store.kept.tick()
            self.puller.poll()
            self._report_losses()
            m = self.cfg["metrics"]
            if m["path"] and time.monotonic() - self._metrics_at >= m["every_s"]:
                self._metrics_at = time.monotonic()
                try:
                    write_metrics(m["path"], render(self.stats()))
                except OSError as e:
                    self.metrics_error = str(e)
            if self.rules is not None:
                with self._rules_lock:
                    acts = self.rules.tick()
                self._act(acts)

    def alive(self, within_s=10.0):
        """The tick thread went round within ``within_s`` and the receiver's
        thread runs: what a service watchdog should be fed on."""
        rx = self.rx._thread
        return self.fatal is None and not self.rx.fatal and rx is not None and rx.is_alive() and time.monotonic() - self.beat < within_s

    def stop(self, drain_s=0):
        self.rx.stop()
        self._stop.set()
        self._ticker.join(5)
        self.store.tick()
        self._report_losses(force=True)
        left = self.fwd.stop(drain_s)
        # what the drain had receipted is marked done, so the raw records
        # behind it go now rather than being summarized again next start
        self.store.tick()
        self.j.close()
        if self.raw is not None:
            with self.raw.lock:
                self.raw.close()
            with self.store.lock:
                self.store.gone.close()
            if self.store.kept is not None:
                self.store.kept.close()
        return left

    def stats(self):
        with self.j.lock:
            js = self.j.stats()
        agg = None
        if self.agg is not None:
            with self.store.lock:
                agg = {
                    "windows_open": sum(1 for w in self.agg.windows.values() if w.rev < 0),
                    "summaries": self.agg.emitted,
                    "revisions": self.agg.revisions,
                    "late_raw": self.agg.late_raw,
                    "duplicates": self.agg.duplicates,
                    "other_run_raw": self.agg.other_run_raw,
                    "around_relayed": self.store.around_relayed,
                    "marks_held": len(self.store.marks),
                }
            with self.raw.lock:
                agg["raw"] = self.raw.stats()
        rules = None
        if self.rules is not None:
            rules = {"fired": dict(self.rules.fired_count), "actions": dict(self.actions)}
        p = self.packer
        codec = {
            "codec": p.codec,
            "bytes_in": p.bytes_in,
            "bytes_out": p.bytes_out,
            "ratio": round(p.bytes_in / p.bytes_out, 3) if p.bytes_out else None,
            "raw_batches": p.raw_batches,
        }
        return {
            "backlog": self.up.backlog.snapshot(),
            "losses": self._losses(),
            "aggregate": agg,
            "rules": rules,
            "codec": codec,
            "id": self.id,
            "uptime_s": round(time.time() - self.t0, 3),
            "site": dict(self.rx.counts, refusals=dict(self.rx.refusals)),
            "upstream": self.up.stats(),
            "store": js,
            "nodes": self.nodes,
            "pulls": self.puller.stats(),
            "kept": self._kept_stats(),
        }

    def _kept_stats(self):
        k = self.store.kept
        if k is None:
            return None
        with k.lock:
            return {"bytes": k.j.size, "expired": k.expired, "dropped_cap": k.j.dropped_cap}
