"""``edgefw bench forward`` runs end to end at a small size: our uplink to
an ``edgefw ingest`` process and the paho peer to its subscriber process,
through a real mosquitto; every record is counted stored. Figures are the
benchmark's business, not this test's."""

from edgefw.perf.store import bench_forward


def test_bench_forward_small():
    said = []
    res = bench_forward(n=2000, n_paho=200, backlog=3000, progress=said.append, runs=1)
    assert res["backlog_records"] == 3000
    for side in ("ours", "paho_per_record"):
        assert res["end_to_end_records_per_s"][side]["median"] > 0
    assert res["ratios"]["end_to_end_vs_paho_per_record"]["runs"] and res["backlog_1m_drain_s"]["median"] > 0
    assert any("backlog drain" in s for s in said)
