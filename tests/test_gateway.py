"""The gateway end to end on loopback: real nodes (journal + Uplink
processes), a real site mosquitto, the gateway process, a real upstream
mosquitto and edgefw ingest. Every record every node made must be in
ingest's database exactly once, under the node's own id and seq."""

import json
import random
import time

import pytest

from firmware import cbor
from tests.helpers.gateway_rig import GW, Rig

NODES = ["node-a", "node-b", "node-c"]


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path, NODES)
    yield r
    r.close()


def _finish_nodes(rig, timeout=120):
    stats = {}
    for name, p in zip(NODES, rig.procs):
        out, err = p.communicate(timeout=timeout)
        assert p.returncode == 0, err
        stats[name] = json.loads(out.strip().splitlines()[-1])
    return stats


def _exactly_once(rig, stats, count):
    for name in NODES:
        s = stats[name]
        # the node itself holds nothing: all of it was receipted by the gateway
        assert s["pending"] == 0, (name, s)
        assert rig.wait_rows(name, s["next_seq"] - 1) == s["next_seq"] - 1
        rows = rig.rows(name)
        assert [r[0] for r in rows] == list(range(1, s["next_seq"])), name
        bodies = [cbor.loads(r[2]) for r in rows]
        assert all(b["seq"] == r[0] for b, r in zip(bodies, rows))
        # the node's stream is whole: every n it made, from 1 to count
        assert set(b["n"] for b in bodies) == set(range(1, count + 1)), name


def _wait_boots(rig, n, timeout=30):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if [r[1] for r in rig.rows(GW)].count("boot") >= n:
            return True
        time.sleep(0.02)
    return False


def test_two_hops_every_record_once(rig):
    rig.start_gateway()
    for name in NODES:
        rig.node(name, 1500)
    stats = _finish_nodes(rig)
    _exactly_once(rig, stats, 1500)
    gw = rig.stop_gateway()
    assert gw["left"] == 0
    assert gw["site"]["refused"] == 0
    assert sum(n["records"] for n in gw["nodes"].values()) >= 3 * 1500
    # the gateway's own stream: its boot event, under its own id
    assert [r[1] for r in rig.rows(GW)][:1] == ["boot"]
    assert rig.ing.counts["tampered"] == 0 and rig.ing.counts["malformed"] == 0


def test_sigkill_gateway_mid_forwarding_still_exactly_once(rig):
    rng = random.Random(3)
    rig.start_gateway()
    for name in NODES:
        rig.node(name, 3000, env={"EDGEFW_TEST_APPEND_S": "0.0005"})
    for run in range(1, 7):
        # up and forwarding (its boot event is in ingest), then killed at a
        # random moment while the nodes' batches stream through it
        assert _wait_boots(rig, run)
        time.sleep(rng.uniform(0.1, 0.8))
        rig.kill_gateway()
        rig.start_gateway()
    stats = _finish_nodes(rig)
    _exactly_once(rig, stats, 3000)
    gw = rig.stop_gateway()
    assert gw["left"] == 0
    # six boots and the last run's: each restart is in the gateway's stream
    assert [r[1] for r in rig.rows(GW)].count("boot") == 7
