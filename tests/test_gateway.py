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
    for name, p in zip(NODES, rig.procs, strict=True):
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
        assert all(b["seq"] == r[0] for b, r in zip(bodies, rows, strict=True))
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


def test_tiers_chain_node_gateway_gateway_ingest(tmp_path):
    """A second gateway between the first and ingest takes the first's
    relays as node batches: nothing new on the wire."""
    from edgefw.emul.broker import Mosquitto
    from tests.helpers.gateway_rig import key_of

    rig = Rig(tmp_path, NODES)
    (tmp_path / "mid").mkdir()
    mid = Mosquitto(tmp_path / "mid").start()
    gw2 = None
    try:
        cfg1 = json.loads(rig.cfg_path.read_text())
        up = cfg1["upstream"]["broker"]
        cfg1["upstream"]["broker"] = "127.0.0.1:%d" % mid.port
        # the first hop compressed: the second gateway expands it
        cfg1["upstream"]["codec"] = "zlib"
        rig.cfg_path.write_text(json.dumps(cfg1))
        keys2 = json.loads((tmp_path / "node-keys.json").read_text())
        keys2[GW] = key_of(GW).hex()
        (tmp_path / "keys2.json").write_text(json.dumps(keys2))
        (tmp_path / "gw2.key").write_text(key_of("gw-2").hex())
        cfg2 = {
            "gateway": {"id": "gw-2", "key_file": str(tmp_path / "gw2.key")},
            "site": {"broker": "127.0.0.1:%d" % mid.port, "keys": str(tmp_path / "keys2.json")},
            "upstream": dict(cfg1["upstream"], broker=up, codec="none"),
            "store": {"path": str(tmp_path / "gw2-store")},
        }
        (tmp_path / "gw2.json").write_text(json.dumps(cfg2))
        rig.ing.keys["gw-2"] = key_of("gw-2")
        import subprocess
        import sys

        from tests.conftest import ROOT

        gw2 = subprocess.Popen([sys.executable, "-m", "edgefw.gateway.cli", "--config", str(tmp_path / "gw2.json"), "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        rig.start_gateway()
        for name in NODES:
            rig.node(name, 800)
        stats = _finish_nodes(rig)
        _exactly_once(rig, stats, 800)
        # both gateways' own streams arrived, the first's through the second
        assert _wait_boots(rig, 1)
        assert [r[1] for r in rig.rows("gw-2")][:1] == ["boot"]
        s1 = rig.stop_gateway()
        assert s1["left"] == 0
        assert s1["codec"]["codec"] == "zlib" and s1["codec"]["bytes_out"] < s1["codec"]["bytes_in"]
        gw2.terminate()
        out, err = gw2.communicate(timeout=60)
        assert gw2.returncode == 0, err
        s2 = json.loads(out.strip().splitlines()[-1])
        assert s2["left"] == 0 and set(s2["nodes"]) == set(NODES) | {GW}
    finally:
        if gw2 is not None and gw2.poll() is None:
            gw2.kill()
            gw2.wait()
        rig.close()
        mid.stop()


def test_unsealed_trusted_network(tmp_path):
    rig = Rig(tmp_path, NODES, sealed=False)
    try:
        rig.start_gateway()
        for name in NODES:
            rig.node(name, 500)
        stats = _finish_nodes(rig)
        _exactly_once(rig, stats, 500)
        assert rig.stop_gateway()["left"] == 0
    finally:
        rig.close()
