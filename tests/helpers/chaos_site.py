"""The gateway chaos tests' site, in the three namespaces of
``tests.helpers.netns.Tiers``: a site broker and ``edgefw gateway`` in
the gateway tier, an upstream broker and ``edgefw ingest`` in the upstream
tier, and ten nodes in the nodes tier, all real processes:

* five ``tests.helpers.agg_node`` nodes on CPython (the firmware's journal
  and uplink);
* ``node-clock``, the same with its UTC clock 10 minutes ahead;
* ``node-reboot``, the same, restarting after window 205 (mid-window: the
  windows are 10 s of node time) as a new run on the same journal;
* ``mp-a`` and ``mp-b``: ``agg_node`` under the MicroPython unix port
  (umqtt.simple);
* ``fw-node``: the CPython firmware itself (``edgefw run``, sim board,
  a ``win`` record per 100 ms), forwarding with its uplink.

Every tier can be killed and started again (``kill_gateway``,
``power_cut``, ``restart_ingest``, ``restart_site_broker``); ``close()``
(from ``Tiers``) ends every process.
"""

import glob
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time

from edgefw.build import mpdeps
from edgefw.emul import micropython
from tests.conftest import ROOT
from tests.helpers.gateway_rig import GW, key_of
from tests.helpers.netns import mosquitto_conf

SITE = "10.77.1.2"
UP = "10.77.2.2"
COUNT = 400
TRIP_EVERY = 37
WINDOW_S = 10
PLAIN = ["node-a", "node-b", "node-c", "node-d", "node-e"]
CLOCK = "node-clock"
REBOOT = "node-reboot"
REBOOT_AT = 205
MP = ["mp-a", "mp-b"]
FW = "fw-node"
AGG = PLAIN + [CLOCK, REBOOT] + MP
NODES = AGG + [FW]
CLOCK_S = 600
STRACE = shutil.which("strace")


class DB:
    """Ingest's database, read only (ingest runs in another namespace)."""

    def __init__(self, path):
        self.path = path

    def query(self, sql, args=()):
        if not os.path.exists(self.path):
            return []
        db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True, timeout=5)
        try:
            return list(db.execute(sql, args))
        except sqlite3.OperationalError:
            return []
        finally:
            db.close()

    def rows(self, dev):
        return self.query("SELECT seq, kind, body FROM records WHERE device=? ORDER BY seq", (dev,))


def wait_file(path, text, timeout=20):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if os.path.exists(path) and text in open(path, errors="replace").read():
            return True
        time.sleep(0.1)
    return False


class Site:
    def __init__(self, tiers, d, pace_s=0.03, gw_cfg=None):
        # the MicroPython nodes need the unix port and umqtt.simple
        if micropython.executable() is None:
            raise RuntimeError(micropython.MISSING)
        if not mpdeps.installed():
            raise RuntimeError("umqtt.simple is missing: run 'edgefw mp-deps'")
        self.t = tiers
        self.d = d
        self.env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.mosq = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.gw = self.ingest = self.site_broker = None
        self.gw_starts = 0
        self.ingest_starts = 0
        for sub in ("site", "up"):
            (d / sub).mkdir()
        self._site_broker()
        tiers.popen("upstream", [self.mosq, "-c", mosquitto_conf(d / "up", UP, 1883)], stderr=subprocess.DEVNULL)
        assert self.wait_port("gateway", UP, 1883), "upstream broker did not start: " + str(d / "up")
        keys = {n: key_of(n).hex() for n in NODES}
        (d / "node-keys.json").write_text(json.dumps(keys))
        (d / "ingest-keys.json").write_text(json.dumps(dict(keys, **{GW: key_of(GW).hex()})))
        (d / "gw.key").write_text(key_of(GW).hex())
        self.db_path = str(d / "ingest.sqlite")
        self.db = DB(self.db_path)
        self.start_ingest()
        cfg = {
            "gateway": {"id": GW, "key_file": str(d / "gw.key")},
            "site": {"broker": "%s:1883" % SITE, "keys": str(d / "node-keys.json")},
            "upstream": {"broker": "%s:1883" % UP, "batch_ms": 50, "receipt_timeout_ms": 1500, "backoff_ms": 50, "backoff_max_ms": 500, "live_first": True},
            "store": {"path": str(d / "gw-store")},
            "aggregate": {"window_s": WINDOW_S, "close_idle_s": 0.5},
        }
        for sect, over in (gw_cfg or {}).items():
            cfg[sect].update(over)
        (d / "gw.json").write_text(json.dumps(cfg))
        self.start_gateway()
        self.nodes = {n: self._agg_node(n, pace_s) for n in AGG}
        self.nodes[FW] = self._fw_node()

    # --- processes ----------------------------------------------------------
    def wait_port(self, tier, host, port, timeout=20):
        probe = "import socket,sys; socket.create_connection((%r, %d), 0.5).close()" % (host, port)
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.t.popen(tier, [sys.executable, "-c", probe], stderr=subprocess.DEVNULL).wait() == 0:
                return True
            time.sleep(0.1)
        return False

    def _site_broker(self):
        self.site_broker = self.t.popen("gateway", [self.mosq, "-c", mosquitto_conf(self.d / "site", SITE, 1883)], stderr=subprocess.DEVNULL)
        assert self.wait_port("gateway", SITE, 1883), "site broker did not start: " + str(self.d / "site")

    @staticmethod
    def _kill(proc, down_s):
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        time.sleep(down_s)

    def restart_site_broker(self, down_s=1.0):
        """SIGKILL, then the same broker (its persistence) again."""
        self._kill(self.site_broker, down_s)
        self._site_broker()

    def start_ingest(self):
        self.ingest_starts += 1
        err = str(self.d / ("ingest%d.err" % self.ingest_starts))
        args = [sys.executable, "-m", "edgefw", "ingest", "--broker", "%s:1883" % UP, "--keys", str(self.d / "ingest-keys.json"), "--db", self.db_path, "--json"]
        self.ingest = self.t.popen("upstream", args, cwd=ROOT, env=self.env, stdout=open(self.d / "ingest.out", "a"), stderr=open(err, "w"))
        assert wait_file(err, "subscribed"), open(err).read()[-2000:]

    def restart_ingest(self, down_s=2.0):
        self._kill(self.ingest, down_s)
        self.start_ingest()

    def start_gateway(self):
        self.gw_starts += 1
        self.gw_err = self.d / ("gw%d.err" % self.gw_starts)
        args = [sys.executable, "-m", "edgefw.gateway.cli", "--config", str(self.d / "gw.json"), "--json", "--drain-s", "10"]
        # its own process group: a power cut takes the whole group
        self.gw = self.t.popen("gateway", args, cwd=ROOT, env=self.env, stdout=open(self.d / "gw.out", "a"), stderr=open(self.gw_err, "w"), start_new_session=True)

    def wait_gateway_up(self, timeout=30):
        """Until this run's boot event is in ingest: up and forwarding."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.gw_boots() >= self.gw_starts:
                return True
            time.sleep(0.05)
        return False

    def gw_boots(self):
        return len(self.db.query("SELECT seq FROM records WHERE device=? AND kind='boot'", (GW,)))

    def kill_gateway(self):
        os.killpg(self.gw.pid, signal.SIGKILL)
        self.gw.wait(10)

    def power_cut(self, nth_sync=3, tries=3):
        """The gateway's process group killed as the ``nth_sync``-th fsync
        of raw/'s segment being written (counted from now) begins: after
        the writes that sync was for, before it. strace's fault injection
        delivers the SIGKILL on entry to that syscall (``-P``: only calls
        on that file count; nothing in the gateway knows). Then what a
        power cut would take with it: the segment loses half of the bytes
        written to it since its last completed sync (a torn tail). A sync
        with nothing written before it tears nothing: then the gateway is
        started again and cut again, up to ``tries`` times. Returns
        {segment: bytes cut}."""
        for i in range(tries):
            segs = sorted(glob.glob(str(self.d / "gw-store" / "raw" / "q1" / "*.seg")))
            logs = str(self.d / ("strace%d" % i))
            st = subprocess.Popen(
                [STRACE, "-f", "-ff", "-ttt", "-y", "-s", "0", "-P", segs[-1], "-e", "trace=write,fsync,fdatasync", "-e", "inject=fsync,fdatasync:signal=SIGKILL:when=%d" % nth_sync, "-o", logs, "-p", str(self.gw.pid)],
                stdout=subprocess.DEVNULL,
                stderr=open(self.d / ("strace%d.err" % i), "w"),
            )
            try:
                self.gw.wait(15)
            except subprocess.TimeoutExpired:
                pass  # the segment filled and the next took over: cut anyway
            finally:
                try:
                    os.killpg(self.gw.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.gw.wait(10)
                st.wait(10)
            cut = torn_tails(glob.glob(logs + ".*"), str(self.d / "gw-store"))
            if cut or i == tries - 1:
                return cut
            self.start_gateway()
            assert self.wait_gateway_up(), self.gw_err.read_text()[-2000:]

    def _agg_node(self, n, pace_s):
        extra = []
        if n == CLOCK:
            extra.append("clock_s=%d" % CLOCK_S)
        if n == REBOOT:
            extra.append("reboot_at=%d" % REBOOT_AT)
        args = [str(self.d / ("j-" + n)), "1883", n, key_of(n).hex(), str(COUNT), str(TRIP_EVERY), str(pace_s), SITE] + extra
        out, err = open(self.d / (n + ".out"), "w"), open(self.d / (n + ".err"), "w")
        if n in MP:
            env = micropython.env(str(ROOT) + ":" + str(mpdeps.LIB))
            return self.t.popen("nodes", micropython.argv(["-m", "tests.helpers.agg_node"] + args, "8M"), cwd=ROOT, env=env, stdout=out, stderr=err)
        return self.t.popen("nodes", [sys.executable, "-m", "tests.helpers.agg_node"] + args, cwd=ROOT, env=self.env, stdout=out, stderr=err)

    def _fw_node(self):
        (self.d / "fw.key").write_text(key_of(FW).hex())
        cfg = {"device_id": FW, "record": {"window_ms": 100}, "uplink": {"key_file": str(self.d / "fw.key"), "batch_ms": 100, "receipt_timeout_ms": 2000}}
        (self.d / "fw.json").write_text(json.dumps(cfg))
        # 1500 cycles of 10 ms at real time: 15 s, 150 win records
        args = [sys.executable, "-m", "edgefw", "run", "--config", str(self.d / "fw.json"), "--journal", str(self.d / "j-fw"), "--cycles", "1500", "--speed", "1", "--broker", "%s:1883" % SITE, "--drain-s", "120", "--json"]
        return self.t.popen("nodes", args, cwd=ROOT, env=self.env, stdout=open(self.d / (FW + ".out"), "w"), stderr=open(self.d / (FW + ".err"), "w"))

    def finish_nodes(self, timeout=180):
        """Waits for every node; {node: stats with next_seq}."""
        from firmware.store.journal import Journal

        stats = {}
        t0 = time.monotonic()
        for n, p in self.nodes.items():
            rc = p.wait(max(1, timeout - (time.monotonic() - t0)))
            assert rc == 0, (n, open(self.d / (n + ".err")).read()[-2000:])
            last = open(self.d / (n + ".out")).read().strip().splitlines()[-1]
            stats[n] = json.loads(last)
        # the firmware's summary has no seq: its journal does
        j = Journal(str(self.d / "j-fw"))
        stats[FW]["next_seq"] = j.next_seq
        stats[FW]["pending"] = j.pending()
        j.close()
        for n in AGG:
            assert stats[n]["drained"] and stats[n]["pending"] == 0, (n, stats[n])
        assert stats[FW]["pending"] == 0, stats[FW]
        return stats

    def stop_gateway(self):
        self.gw.send_signal(signal.SIGTERM)
        assert self.gw.wait(60) == 0, self.gw_err.read_text()[-2000:]
        return json.loads(open(self.d / "gw.out").read().strip().splitlines()[-1])


_LINE = re.compile(r"^\d+\.\d+ (write|pwrite64|fsync|fdatasync)\(\d+<([^>]*)>.*= (-?\d+|\?)")


def torn_tails(logs, under):
    """From strace logs (one per thread, ``-ttt -y``): per journal segment
    under ``under``, the bytes written since its last completed sync; each
    such segment is cut back by half of them (the write that was not
    synced is torn, as a power cut leaves it). Segments are only appended
    to (``open(path, "ab")``); acks are a synced temporary file renamed,
    so a cut before their sync leaves the old ack: nothing to do."""
    events = []
    for log in logs:
        for line in open(log, errors="replace"):
            m = _LINE.match(line)
            if m:
                events.append((float(line.split(" ", 1)[0]), m.group(1), m.group(2), m.group(3)))
    events.sort()
    unsynced = {}
    for _t, call, path, ret in events:
        if not path.startswith(under) or not path.endswith(".seg"):
            continue
        if call in ("write", "pwrite64") and ret not in ("?",) and int(ret) > 0:
            unsynced[path] = unsynced.get(path, 0) + int(ret)
        elif call in ("fsync", "fdatasync") and ret == "0":
            unsynced[path] = 0
    cut = {}
    for path, n in unsynced.items():
        if n and os.path.exists(path):
            size = os.path.getsize(path)
            keep = max(0, size - n + n // 2)
            os.truncate(path, keep)
            cut[path] = size - keep
    return cut
