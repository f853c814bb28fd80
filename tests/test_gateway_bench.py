"""The gateway bench's smoke test: a few nodes, a few simulated minutes."""

from edgefw.gateway.bench import run


def test_bench_small_run_accounts_and_shrinks():
    r = run(nodes=2, hz=100, hours=0.05, window_s=60)
    assert r["left_pending"] == 0
    # 180 s of node time: three 60 s windows per node
    assert r["summaries"] == 2 * 3
    assert r["node_records"] == 2 * (1 + 180)
    assert r["bridge_bytes"] == r["node_bytes"] and r["gateway_bytes"] < r["node_bytes"] / 10
    lean = run(nodes=2, hz=100, hours=0.05, window_s=60, batch_ids=False)
    assert lean["gateway_bytes"] < r["gateway_bytes"]
