"""Budgets: with the next tier away and the gateway's store capped, the
oldest telemetry goes first, events stay, every drop is counted and
reported upstream as a loss event, and the metrics file says so."""

import json
import time

import pytest

from firmware import cbor
from tests.helpers.gateway_rig import GW, Rig

NODES = ["node-a", "node-b"]


@pytest.fixture
def rig(tmp_path):
    r = Rig(
        tmp_path,
        NODES,
        gw_cfg={
            "store": {"path": str(tmp_path / "gw-store"), "cap_bytes": 65536, "segment_bytes": 8192},
            "aggregate": {"window_s": 0},
            "metrics": {"path": str(tmp_path / "gw.prom"), "every_s": 0.2},
        },
    )
    yield r
    r.close()


def test_cap_sheds_oldest_telemetry_keeps_events_and_reports_losses(rig, tmp_path):
    rig.upb.stop()
    rig.start_gateway()
    for n in NODES:
        rig.node(n, 2000)
    stats = {}
    for n, p in zip(NODES, rig.procs, strict=True):
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        stats[n] = json.loads(out.strip().splitlines()[-1])
        # the nodes lost nothing: the gateway took (and receipted) it all
        assert stats[n]["pending"] == 0 and stats[n]["dropped_cap"] == 0
    time.sleep(1)
    prom = (tmp_path / "gw.prom").read_text()
    rig.upb.start()
    # the backlog drains: the nodes' newest telemetry (n 2000 is a trip) arrives
    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 and not all(any(r[1] == "win" and cbor.loads(r[2])["n"] == 1999 for r in rig.rows(n)) for n in NODES):
        time.sleep(0.2)
    gw = rig.stop_gateway()
    print(json.dumps({k: gw[k] for k in ("losses", "upstream", "store", "site")}))
    losses = [cbor.loads(r[2]) for r in rig.rows(GW) if r[1] == "loss"]
    dropped = gw["losses"]["out_dropped_cap"]
    assert dropped > 0 and gw["left"] == 0
    # the last loss event upstream carries the totals the gateway counted
    assert losses and max(x["out_dropped_cap"] for x in losses) == dropped
    for n in NODES:
        rows = rig.rows(n)
        kinds = [r[1] for r in rows]
        assert len({r[0] for r in rows}) == len(rows)
        # every event survived: telemetry is shed first
        assert kinds.count("trip") == 2000 // 50
        # telemetry went oldest first: what arrived is the newest
        ns = sorted(cbor.loads(r[2])["n"] for r in rows if r[1] == "win")
        assert ns and ns[-1] == 1999 and len(ns) < 2000 - 2000 // 50
    # and which: every record a node made is upstream, or named in a loss
    # event (a record named lost that was in flight may have arrived too)
    named = {}
    # each loss event carries everything since start: the last one counts
    for x in losses[-1:]:
        assert not x.get("truncated")
        for _reason, per_node in x["nodes"].items():
            for node, rs in per_node.items():
                if not node:
                    continue  # the gateway's own events, by kind
                named.setdefault(node, set()).update(q for a, b in rs for q in range(a, b + 1))
    for n in NODES:
        have = {r[0] for r in rig.rows(n)}
        total = stats[n]["next_seq"] - 1
        missing = set(range(1, total + 1)) - have
        assert missing and missing <= named.get(n, set())
    # the metrics said it while it happened
    assert 'edgefw_gateway_lost_total{journal="out",reason="dropped_cap"}' in prom
    assert "edgefw_gateway_upstream_connected 0" in prom
    line = [x for x in prom.splitlines() if x.startswith('edgefw_gateway_lost_total{journal="out",reason="dropped_cap"}')][0]
    assert int(line.split()[-1]) > 0
    assert 'edgefw_gateway_node_backlog_records{node="node-a"}' in prom
