"""The gateway bench's smoke test: a few nodes, a few simulated minutes,
the bridge peer measured through two real mosquittos."""

from edgefw.gateway.bench import repeat, run


def test_bench_small_run_accounts_and_shrinks():
    r = run(nodes=2, hz=100, hours=0.05, window_s=60)
    assert r["left_pending"] == 0
    # 180 s of node time: three 60 s windows per node
    assert r["summaries"] == 2 * 3
    assert r["node_records"] == 2 * (1 + 180)
    assert r["gateway_bytes"] < r["node_bytes"] / 10
    lean = run(nodes=2, hz=100, hours=0.05, window_s=60, batch_ids=False)
    assert lean["gateway_bytes"] < r["gateway_bytes"]


def test_bench_measures_a_real_bridge():
    r = repeat(2, nodes=2, hz=100, hours=0.05, window_s=60)
    assert r["runs"] == 2
    # every node batch crossed the bridge, whole
    assert r["bridge_messages"]["min"] == r["node_messages"]
    assert r["bridge_payload_bytes"]["min"] == r["bridge_payload_bytes"]["max"]
    # the broker's count has the MQTT framing on top of the payloads
    assert r["bridge_bytes"]["min"] > r["bridge_payload_bytes"]["min"]
    assert r["gateway_over_bridge"]["max"] < 0.1
