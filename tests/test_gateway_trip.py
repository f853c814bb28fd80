"""A gateway's rule trips a node that saw nothing itself: two nodes report
over-temperature trips, the gateway's quorum rule fires, and the third
node, the CPython firmware on the sim board in real time (``python -m
firmware.linux run``), trips with the SITE cause from the gateway's
command; only its own reset input clears it. Real mosquitto (site and
upstream), the gateway as its own process, ingest behind it. About 25 s."""

import json
import os
import subprocess
import sys
import time

from firmware import cbor
from tests.conftest import ROOT
from tests.helpers.gateway_rig import GW, Rig, key_of

HOT = ["node-a", "node-b"]
FW = "node-c"
DURATION_S = 20.0
RESET_AT_S = 19.0


def _firmware(rig):
    t = rig.tmp
    (t / "c.key").write_text(key_of(FW).hex())
    cfg = {
        "device_id": FW,
        "uplink": {"enabled": True, "broker": "127.0.0.1:%d" % rig.site.port, "batch_ms": 200, "key_file": str(t / "c.key")},
    }
    (t / "c.json").write_text(json.dumps(cfg))
    sc = {
        "description": "nothing hot here: a reset to start, and one near the end",
        "duration_s": DURATION_S,
        "events": [{"at_s": 0.2, "press": "RESET", "for_s": 0.1}, {"at_s": RESET_AT_S, "press": "RESET", "for_s": 0.1}],
    }
    (t / "c-sc.json").write_text(json.dumps(sc))
    args = [sys.executable, "-m", "firmware.linux", "run", "--board", "sim", "--config", str(t / "c.json"), "--scenario", str(t / "c-sc.json"), "--journal", str(t / "j-c"), "--speed", "1", "--json", "--drain-s", "5"]
    return subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def test_quorum_of_two_trips_the_third_node_until_its_own_reset(tmp_path):
    rule = {"name": "two-hot", "kind": "quorum", "match": {"k": "trip", "cause": "temp_c"}, "nodes": HOT + [FW], "need": 2, "window_s": 5, "then": ["event", "trip"]}
    rig = Rig(tmp_path, HOT + [FW], gw_cfg={"aggregate": {"window_s": 10, "close_idle_s": 0.5}, "rules": [rule]})
    try:
        rig.start_gateway()
        # the gateway's boot event upstream: it is subscribed on the site
        assert rig.wait_rows(GW, 1, timeout=30) >= 1
        fw = _firmware(rig)
        # the node is subscribed to its commands once its boot event is up
        assert rig.wait_rows(FW, 1, timeout=30) >= 1, "the firmware node's boot event never arrived"
        t_hot = time.monotonic()
        hot = [rig.agg_node(n, 80, 37) for n in HOT]
        for p in hot:
            _o, err = p.communicate(timeout=120)
            assert p.returncode == 0, err
        assert time.monotonic() - t_hot < RESET_AT_S - 3, "the hot nodes took too long: the test's reset would come first"
        out, err = fw.communicate(timeout=DURATION_S + 60)
        assert fw.returncode == 0, err
        s = json.loads(out.strip().splitlines()[-1])
        gw = rig.stop_gateway()
        fired = gw["rules"]["actions"]["event"]
        assert fired >= 1 and gw["rules"]["actions"]["commands"] == 3 * fired
        # one trip, the gateway's: the node's own inputs never tripped it
        assert [t["cause"] for t in s["trips"]] == ["site"], (s["trips"], json.dumps(s["uplink"]))
        assert s["trips"][0]["codes"] == [0x3005]
        # every firing's command was taken (a second one, while tripped,
        # is a new cause on the latched trip, not a second trip)
        u = s["uplink"]
        assert u["commands_taken"] == fired and u["commands_refused"] == 0, u
        # the trip held until the node's own reset at RESET_AT_S cleared it
        assert s["trips"][0]["t_us"] < RESET_AT_S * 1e6
        # (the permit output is off at the end of every run: the loop ends safe)
        assert s["resets"] == 2 and not s["tripped"], s
        # and its trip event went up through the gateway, cause and all
        trips = [cbor.loads(b) for _q, k, b in rig.rows(FW) if k == "trip"]
        assert [t["causes"] for t in trips] == [[[0x3005, "site"]]]
    finally:
        rig.close()
