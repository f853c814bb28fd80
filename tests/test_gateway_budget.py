"""Budgets: with the next tier away and the gateway's store capped, the
oldest telemetry goes first, events stay, every drop is counted and
reported upstream as a loss event, and the metrics file says so."""

import json
import time

import pytest

from firmware import cbor
from tests.helpers.gateway_rig import GW, Rig

NODES = ["node-a", "node-b"]


# the store's cap, or telemetry's own within a total it never reaches
CAPS = {"total": {"cap_bytes": 65536}, "telemetry": {"cap_bytes": 1 << 20, "telemetry_cap_bytes": 65536}}


@pytest.fixture(params=sorted(CAPS))
def rig(tmp_path, request):
    r = Rig(
        tmp_path,
        NODES,
        gw_cfg={
            "store": dict(CAPS[request.param], path=str(tmp_path / "gw-store"), segment_bytes=8192),
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
    # the backlog drains, and the loss event with the final totals follows
    # it (one is pending upstream at a time: the next goes once the last
    # is receipted)
    def prom_value(name):
        for ln in (tmp_path / "gw.prom").read_text().splitlines():
            if ln.startswith(name + " ") or ln.startswith(name + "{"):
                return int(float(ln.split()[-1]))
        return None

    def reported():
        return max((cbor.loads(r[2])["out_dropped_cap"] for r in rig.rows(GW) if r[1] == "loss"), default=-1)

    t0 = time.monotonic()
    while time.monotonic() - t0 < 60 and not (
        prom_value("edgefw_gateway_upstream_connected") == 1
        and prom_value("edgefw_gateway_upstream_backlog_records") == 0
        and reported() == prom_value('edgefw_gateway_lost_total{journal="out",reason="dropped_cap"}')
    ):
        time.sleep(0.2)
    gw = rig.stop_gateway()
    print(json.dumps({k: gw[k] for k in ("losses", "upstream", "store", "site")}))
    losses = [cbor.loads(r[2]) for r in rig.rows(GW) if r[1] == "loss"]
    dropped = gw["losses"]["out_dropped_cap"]
    assert dropped > 0 and gw["left"] == 0
    # the last loss event upstream carries the totals the gateway counted
    assert losses and max(x["out_dropped_cap"] for x in losses) == dropped
    kept = 0
    for n in NODES:
        rows = rig.rows(n)
        kinds = [r[1] for r in rows]
        assert len({r[0] for r in rows}) == len(rows)
        # every event survived: telemetry is shed first
        assert kinds.count("trip") == 2000 // 50
        # telemetry went oldest first, so what arrived of a node's is its
        # newest (all of one node's may be gone when it ran well ahead of
        # the other on a loaded machine: the oldest are shed, whosever)
        ns = sorted(cbor.loads(r[2])["n"] for r in rows if r[1] == "win")
        assert not ns or (ns[-1] == 1999 and ns == [x for x in range(ns[0], 2000) if x % 50]), ns[:5]
        kept += len(ns)
    assert 0 < kept < len(NODES) * (2000 - 2000 // 50)
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
    lost = 0
    for n in NODES:
        have = {r[0] for r in rig.rows(n)}
        total = stats[n]["next_seq"] - 1
        missing = set(range(1, total + 1)) - have
        assert missing <= named.get(n, set())
        lost += len(missing)
    assert lost > 0
    # the metrics said it while it happened
    assert 'edgefw_gateway_lost_total{journal="out",reason="dropped_cap"}' in prom
    assert "edgefw_gateway_upstream_connected 0" in prom
    line = [x for x in prom.splitlines() if x.startswith('edgefw_gateway_lost_total{journal="out",reason="dropped_cap"}')][0]
    assert int(line.split()[-1]) > 0
    assert 'edgefw_gateway_node_backlog_records{node="node-a"}' in prom
    # a restart goes on from what it had dropped and named: the same
    # totals, no loss event again, and a loss after it adds to them
    n_events = len(losses)
    rig.start_gateway()
    time.sleep(2)
    again = rig.stop_gateway()
    assert again["losses"] == gw["losses"], (again["losses"], gw["losses"])
    assert len([r for r in rig.rows(GW) if r[1] == "loss"]) == n_events
    saved = json.loads((tmp_path / "gw-store" / "losses.json").read_text())
    assert saved["totals"]["out_dropped_cap"] == dropped
    assert {q for a, b in saved["nodes"]["cap"].get("node-a", []) for q in range(a, b + 1)} == named.get("node-a", set())


def test_a_damaged_loss_record_stops_the_gateway_with_its_name(tmp_path):
    rig = Rig(tmp_path, NODES)
    (tmp_path / "gw-store").mkdir(exist_ok=True)
    (tmp_path / "gw-store" / "losses.json").write_text('{"totals": {"out_dropped_cap": "many"}, "nodes": {}}')
    try:
        p = rig.start_gateway()
        _out, err = p.communicate(timeout=60)
    finally:
        rig.close()
    assert p.returncode == 2
    assert "losses.json: not the gateway's record of its losses" in err and "move it aside" in err, err
