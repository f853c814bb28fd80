"""Two tiers on loopback for the gateway's tests: a site broker, an
upstream broker with ``edgefw ingest`` behind it (in this process, its real
MQTT receiver), the gateway as a process of its own (so it can be killed),
and nodes (``tests.helpers.device`` processes) on the site broker."""

import itertools
import json
import os
import signal
import subprocess
import sys
import time

from edgefw.emul.broker import Mosquitto
from edgefw.ingest.server import Ingest, Receiver
from tests.conftest import ROOT

_ids = itertools.count(1)
GW = "gw-site1"


def key_of(name):
    # distinct per device, so a batch sealed with the wrong one fails
    return bytes((i * 7 + len(name) + sum(name.encode())) & 0xFF for i in range(32))


class Rig:
    def __init__(self, tmp_path, nodes, sealed=True, gw_cfg=None):
        self.tmp = tmp_path
        self.nodes = list(nodes)
        self.sealed = sealed
        self.gw = None
        self.procs = []
        (tmp_path / "site").mkdir()
        (tmp_path / "up").mkdir()
        self.site = Mosquitto(tmp_path / "site").start()
        self.upb = Mosquitto(tmp_path / "up")
        self.rx = self.ing = None
        try:
            self._setup(tmp_path, gw_cfg)
        except BaseException:
            self.close()
            raise

    def _setup(self, tmp_path, gw_cfg):
        self.upb.start()
        sealed = self.sealed
        keys = {n: key_of(n).hex() for n in self.nodes}
        (tmp_path / "node-keys.json").write_text(json.dumps(keys))
        (tmp_path / "gw.key").write_text(key_of(GW).hex())
        cfg = {
            "gateway": {"id": GW, "key_file": str(tmp_path / "gw.key") if sealed else None},
            "site": {"broker": "127.0.0.1:%d" % self.site.port, "keys": str(tmp_path / "node-keys.json") if sealed else None},
            "upstream": {"broker": "127.0.0.1:%d" % self.upb.port, "batch_ms": 50, "receipt_timeout_ms": 1000, "backoff_ms": 20, "backoff_max_ms": 300},
            "store": {"path": str(tmp_path / "gw-store")},
        }
        for sect, over in (gw_cfg or {}).items():
            if isinstance(over, dict):
                cfg.setdefault(sect, {}).update(over)
            else:
                cfg[sect] = over
        self.cfg_path = tmp_path / "gateway.json"
        self.cfg_path.write_text(json.dumps(cfg))
        ing_keys = {n: key_of(n) for n in self.nodes + [GW]} if sealed else None
        self.ing = Ingest(str(tmp_path / "ingest.sqlite"), ing_keys, log=None)
        self.rx = Receiver(self.ing, "127.0.0.1", self.upb.port, "ingest-%d" % next(_ids))
        self.rx.c.reconnect_delay_set(0.05, 0.5)
        self.rx.start()
        assert self.rx.subscribed.wait(10)

    def start_gateway(self, *extra):
        args = [sys.executable, "-m", "edgefw.gateway.cli", "--config", str(self.cfg_path), "--json"] + list(extra)
        self.gw = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
        return self.gw

    def kill_gateway(self):
        self.gw.send_signal(signal.SIGKILL)
        self.gw.wait()

    def stop_gateway(self, timeout=60):
        self.gw.send_signal(signal.SIGTERM)
        out, err = self.gw.communicate(timeout=timeout)
        assert self.gw.returncode == 0, err
        return json.loads(out.strip().splitlines()[-1])

    def node(self, name, count, env=None):
        keyhex = key_of(name).hex() if self.sealed else "-"
        args = [sys.executable, "-m", "tests.helpers.device", str(self.tmp / ("j-" + name)), str(self.site.port), name, keyhex, str(count), str(64 << 20), "90"]
        p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, **(env or {})))
        self.procs.append(p)
        return p

    def agg_node(self, name, count, trip_every, pace_s=0):
        args = [sys.executable, "-m", "tests.helpers.agg_node", str(self.tmp / ("j-" + name)), str(self.site.port), name, key_of(name).hex(), str(count), str(trip_every), str(pace_s)]
        p = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        return p

    def rows(self, dev):
        with self.ing.lock:
            return list(self.ing.db.execute("SELECT seq, kind, body FROM records WHERE device=? ORDER BY seq", (dev,)))

    def wait_rows(self, dev, n, timeout=60):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            with self.ing.lock:
                have = self.ing.db.execute("SELECT COUNT(*) FROM records WHERE device=?", (dev,)).fetchone()[0]
            if have >= n:
                return have
            time.sleep(0.1)
        return have

    def close(self):
        for p in self.procs + ([self.gw] if self.gw else []):
            if p.poll() is None:
                p.kill()
                p.wait()
        if self.rx is not None:
            self.rx.stop()
        if self.ing is not None:
            self.ing.close()
        self.site.stop()
        self.upb.stop()
