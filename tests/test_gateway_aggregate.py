"""Aggregation at the gateway, end to end (real brokers, ingest, node
processes): events pass through raw, telemetry arrives as summaries whose
seq ranges and values account for every node window record exactly once,
also across SIGKILLs of the gateway."""

import json
import random
import time

import pytest

from firmware import cbor
from tests.helpers.agg_node import expected
from tests.helpers.gateway_rig import GW, Rig

NODES = ["node-a", "node-b", "node-c"]
COUNT = 400
TRIP_EVERY = 37
WINDOW_S = 10


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, NODES, gw_cfg={"aggregate": {"window_s": WINDOW_S, "close_idle_s": 0.5}})
    yield r
    r.close()


def _finish(rig):
    out = {}
    for name, p in zip(NODES, rig.procs, strict=True):
        o, err = p.communicate(timeout=180)
        assert p.returncode == 0, err
        out[name] = json.loads(o.strip().splitlines()[-1])
        assert out[name]["drained"] and out[name]["pending"] == 0
    return out


def _authoritative(rig):
    """(node, w, boot) -> the summary with the highest gateway seq."""
    best = {}
    for seq, kind, body in rig.rows(GW):
        if kind != "sum":
            continue
        s = cbor.loads(body)
        k = (s["node"], s["w"], bytes(s["boot"]))
        if k not in best or seq > best[k][0]:
            best[k] = (seq, s)
    return {k: s for k, (_seq, s) in best.items()}


def _check_accounting(rig, stats, timeout=60):
    """Waits until ingest accounts for every record, then checks how."""
    t0 = time.monotonic()
    while True:
        try:
            return _accounting(rig, stats)
        except AssertionError:
            if time.monotonic() - t0 > timeout:
                raise
            time.sleep(0.3)


def _accounting(rig, stats, nodes=NODES):
    """Every record of ``nodes`` (``stats[node]["next_seq"]``: the node's
    journal after it finished) is in ingest raw once or counted in exactly
    one authoritative summary. For tests.helpers.agg_node's nodes (their
    stats say ``count``), also: every event raw, one boot per run."""
    summ = _authoritative(rig)
    for n in nodes:
        total = stats[n]["next_seq"] - 1
        rows = rig.rows(n)
        if "count" in stats[n]:
            count, trips, boots = stats[n]["count"], stats[n]["count"] // stats[n]["trip_every"], stats[n]["boots"]
            assert total == boots + count + trips
            events = [r for r in rows if r[1] != "win"]
            # every event raw, once: each run's boot and each trip
            assert sorted(r[1] for r in events) == sorted(["boot"] * boots + ["trip"] * trips), n
        raw_seqs = {r[0] for r in rows}
        sum_seqs = []
        for (node, _w, _boot), s in summ.items():
            if node != n:
                continue
            seqs = [q for a, b in s["seqs"] for q in range(a, b + 1)]
            assert len(seqs) == s["n"]
            sum_seqs += seqs
        # every window record counted in exactly one summary, or raw once
        assert len(sum_seqs) == len(set(sum_seqs))
        both = set(sum_seqs) & raw_seqs
        assert not both, (n, sorted(both)[:20], len(both))
        missing = set(range(1, total + 1)) - set(sum_seqs) - raw_seqs
        assert set(sum_seqs) | raw_seqs == set(range(1, total + 1)), (n, sorted(missing)[:20], len(missing))
    return summ


def _check_values(summ):
    for (node, w, _boot), s in summ.items():
        idx = [i for i in range(w * WINDOW_S, (w + 1) * WINDOW_S) if 1 <= i <= COUNT]
        assert s["n"] == len(idx), (node, w)
        for ch in ("temp_c", "vib_rms"):
            vals = [expected(i)[ch] for i in idx]
            k, lo, hi, mean, last = s["ch"][ch]
            assert k == sum(v[0] for v in vals)
            assert lo == min(v[1] for v in vals) and hi == max(v[3] for v in vals)
            assert mean == sum(v[2] * v[0] for v in vals) // k
            assert last == vals[-1][2]


def _wait_boots(rig, n, timeout=30):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if [r[1] for r in rig.rows(GW)].count("boot") >= n:
            return True
        time.sleep(0.02)
    return False


def test_summaries_account_for_every_record(rig):
    rig.start_gateway()
    for n in NODES:
        rig.agg_node(n, COUNT, TRIP_EVERY)
    stats = _finish(rig)
    summ = _check_accounting(rig, stats)
    _check_values(summ)
    # no window record went up raw: the summaries stand for them all
    assert all(r[1] != "win" for n in NODES for r in rig.rows(n))
    gw = rig.stop_gateway()
    assert gw["left"] == 0
    assert gw["aggregate"]["summaries"] >= len(summ)
    _restart_adds_nothing(rig)


def _restart_adds_nothing(rig):
    """What raw/ still holds (windows kept for late data, their done
    markers) comes back on a restart as it was: nothing is summarized again
    or sent up raw."""
    rig.start_gateway()
    time.sleep(1.0)
    gw = rig.stop_gateway()
    a = gw["aggregate"]
    assert (gw["left"], a["summaries"], a["late_raw"], a["other_run_raw"]) == (0, 0, 0, 0), a


def test_sigkill_gateway_while_aggregating(rig):
    rng = random.Random(5)
    rig.start_gateway()
    for n in NODES:
        # paced: windows close, are summarized and receipted all along
        rig.agg_node(n, COUNT, TRIP_EVERY, 0.01)
    for run in range(1, 6):
        assert _wait_boots(rig, run)
        time.sleep(rng.uniform(0.2, 1.0))
        rig.kill_gateway()
        rig.start_gateway()
    stats = _finish(rig)
    summ = _check_accounting(rig, stats)
    # windows summarized whole are right; a window some of whose records
    # went up raw after a restart counts only the rest
    whole = {k: s for k, s in summ.items() if s["n"] == len([i for i in range(k[1] * WINDOW_S, (k[1] + 1) * WINDOW_S) if 1 <= i <= COUNT])}
    _check_values(whole)
    print("summaries in ingest", sum(1 for r in rig.rows(GW) if r[1] == "sum"), "windows", len(summ), "whole", len(whole), "raw win", sum(1 for n in NODES for r in rig.rows(n) if r[1] == "win"))
    assert len(whole) >= len(summ) - 3
    gw = rig.stop_gateway()
    print(gw["aggregate"])
    assert gw["left"] == 0
    _restart_adds_nothing(rig)


def test_quorum_rule_sends_site_event_upstream_and_trip_commands(tmp_path):
    import threading

    import paho.mqtt.client as mqtt

    from edgefw.gateway.commands import _DOMAIN
    from firmware.uplink.seal import derive, hmac_sha256
    from tests.helpers.gateway_rig import key_of

    rule = {"name": "two-hot", "kind": "quorum", "match": {"k": "trip", "cause": "temp_c"}, "nodes": NODES, "need": 2, "window_s": 5, "then": ["event", "trip"]}
    rig = Rig(tmp_path, NODES, gw_cfg={"aggregate": {"window_s": WINDOW_S, "close_idle_s": 0.5}, "rules": [rule]})
    got = []
    subscribed = threading.Event()
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="cmd-watch")
    c.on_message = lambda cl, u, m: got.append((m.topic, m.payload))
    c.on_subscribe = lambda *a: subscribed.set()
    c.connect("127.0.0.1", rig.site.port)
    c.subscribe("edgefw/+/cmd", qos=1)
    c.loop_start()
    try:
        assert subscribed.wait(10)
        rig.start_gateway("--drain-s", "30")
        for n in NODES:
            rig.agg_node(n, 100, TRIP_EVERY)
        _finish(rig)
        t0 = time.monotonic()
        while time.monotonic() - t0 < 30 and not [r for r in rig.rows(GW) if r[1] == "site"]:
            time.sleep(0.1)
        # a later firing may still be on its way up: the gateway drains at
        # stop, and only then are all its events in ingest
        gw = rig.stop_gateway()
        assert gw["left"] == 0
        sites = [cbor.loads(r[2]) for r in rig.rows(GW) if r[1] == "site"]
        assert sites and all(s["rule"] == "two-hot" and len(s["nodes"]) >= 2 for s in sites)
        assert gw["rules"]["actions"]["event"] == len(sites)
        # each firing told every node of the rule to trip, tagged with its key
        assert len(got) == gw["rules"]["actions"]["commands"] == 3 * len(sites)
        for topic, payload in got:
            node = topic.split("/")[1]
            body, tag = payload[:-32], payload[-32:]
            assert hmac_sha256(derive(key_of(node))[1], _DOMAIN + body) == tag
            assert cbor.loads(body)["cmd"] == "trip"
    finally:
        c.loop_stop()
        c.disconnect()
        rig.close()


def _pull(rig, node, from_s, to_s, key=None, extra=()):
    import subprocess
    import sys

    from tests.conftest import ROOT

    kf = rig.tmp / "gw.key" if key is None else key
    args = [sys.executable, "-m", "edgefw", "pull", "--broker", "127.0.0.1:%d" % rig.upb.port, "--gateway", GW, "--key-file", str(kf), "--node", node, "--from-s", str(from_s), "--to-s", str(to_s)]
    return subprocess.run(args + list(extra), cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_pull_sends_a_nodes_kept_raw_records_for_a_time_range(rig):
    """Summaries only, then ``edgefw pull`` for node-b's records t 100..129.5 s:
    exactly those 30 come up raw, under node-b's id and seqs; a pull the
    gateway's key did not tag brings nothing."""
    rig.start_gateway()
    for n in NODES:
        rig.agg_node(n, COUNT, TRIP_EVERY)
    stats = _finish(rig)
    _check_accounting(rig, stats)
    assert all(r[1] != "win" for n in NODES for r in rig.rows(n))
    # tagged with another key: refused, nothing comes
    (rig.tmp / "wrong.key").write_text(bytes(32).hex())
    r = _pull(rig, "node-b", 0, 1000, key=rig.tmp / "wrong.key")
    assert r.returncode == 0, r.stderr
    r = _pull(rig, "node-b", 100, 129.5)
    assert r.returncode == 0, r.stderr
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and not [x for x in rig.rows(GW) if x[1] == "pull"]:
        time.sleep(0.2)
    evs = [cbor.loads(b) for _s, k, b in rig.rows(GW) if k == "pull"]
    assert len(evs) == 1 and evs[0]["records"] == 30 and not evs[0]["truncated"], evs
    assert evs[0]["node"] == "node-b" and evs[0]["from_t"] == 100000000 and evs[0]["to_t"] == 129500000
    t0 = time.monotonic()
    while time.monotonic() - t0 < 30 and len([x for x in rig.rows("node-b") if x[1] == "win"]) < 30:
        time.sleep(0.2)
    wins = [cbor.loads(b) for _s, k, b in rig.rows("node-b") if k == "win"]
    assert sorted(w["t"] // 1000000 for w in wins) == list(range(100, 130))
    # nothing of the other nodes
    assert all(x[1] != "win" for n in ("node-a", "node-c") for x in rig.rows(n))
    gw = rig.stop_gateway()
    assert gw["pulls"]["answered"] == 1 and gw["pulls"]["records"] == 30
    assert gw["pulls"]["refusals"] == {"bad tag": 1}
    assert gw["kept"]["bytes"] > 0
