"""The gateway's windows and its two journals, without brokers: late data
revises a summary, a resent batch is not counted twice, raw records go
only after their summary is receipted, and a restart rebuilds what was
not finished and nothing that was."""

import os

import pytest

from edgefw.gateway.aggregate import Aggregator
from edgefw.gateway.store import Store
from edgefw.gateway.verify import Batch
from firmware import cbor
from firmware.store.journal import Journal
from hal.errors import JournalError

W = 10  # seconds


def _batch(seqs_ts, q=1, dev="n1", boot=b"B" * 8):
    b = Batch()
    recs = [{"k": "win", "t": int(t * 1e6), "dt": 1000000, "ch": {"x": [10, 1, int(t * 100), 900]}, "seq": s} for s, t in seqs_ts]
    b.dev, b.q, b.boot, b.id = dev, q, boot, os.urandom(8)
    b.first, b.last = min(s for s, _ in seqs_ts), max(s for s, _ in seqs_ts)
    b.utc_ms = b.mono_ms = None
    b.raw = [cbor.dumps(r) for r in recs]
    b.recs = recs
    return b


def _store(tmp_path):
    out = Journal(str(tmp_path / "out"), "group", group_records=1 << 30, group_ms=1 << 30)
    raw = Journal(str(tmp_path / "raw"), "group", group_records=1 << 30, group_ms=1 << 30)
    return Store(out, raw, Aggregator(W, keep_s=0, close_idle_s=1000))


def _sums(st):
    return [(s, r) for s, r in st.out.records(1) if r.get("k") == "sum"]


def test_late_data_revises_and_resends_are_not_counted_twice(tmp_path):
    st = _store(tmp_path)
    b1 = _batch([(i + 1, i) for i in range(1, 10)])  # seqs 2..10, t 1..9 s: window 0
    assert st.take(b1)
    assert st.take(_batch([(20, 11)]))  # window 1: the stream passed window 0's end
    st.sync()
    ((s0, r0),) = _sums_after(st, st.tick(now=0))
    assert (r0["w"], r0["rev"], r0["n"], r0["seqs"]) == (0, 0, 9, [[2, 10]])
    assert r0["batches"] == [b1.id]
    # the same batch again (its receipt was lost): nothing changes
    assert st.take(b1)
    assert st.tick(now=0) == [] and st.agg.duplicates == 9
    # a late record of window 0 (a backlog after an outage)
    assert st.take(_batch([(30, 9.5)]))
    (rev,) = st.tick(now=0)
    assert (rev["w"], rev["rev"], rev["n"], rev["seqs"]) == (0, 1, 10, [[2, 10], [30, 30]])
    assert rev["ch"]["x"][0] == 100 and rev["ch"]["x"][4] == 950  # last: the newest window's mean
    assert st.agg.revisions == 1


def _sums_after(st, wrote):
    return [(s, r) for s, r in _sums(st) if r in wrote]


def test_raw_goes_only_after_the_summary_is_receipted_and_restart_rebuilds_the_rest(tmp_path):
    st = _store(tmp_path)
    st.take(_batch([(2, 1), (3, 2)]))  # raw 1: window 0
    st.take(_batch([(4, 11)]))  # raw 2: window 1 (stays open)
    st.take(_batch([(5, 3)]))  # raw 3: window 0 again
    st.sync()
    st.tick(now=0)
    assert st.raw.pending() == 3
    # nothing receipted upstream yet: the raw records stay
    st.tick(now=0)
    assert st.raw.acked(1) == 0
    # the upstream receipt for window 0's summary
    last = max(s for s, _ in _sums(st))
    st.out.ack(1, last)
    st.tick(now=0)
    # raw 1 goes; raw 3 waits behind raw 2 (window 1 not summarized yet)
    assert st.raw.acked(1) == 1
    st.out.close()
    st.raw.close()

    # restart: window 1 is rebuilt from raw 2; window 0 is done (its marker)
    st2 = _store(tmp_path)
    folded, relayed = st2.recover()
    assert (folded, relayed) == (1, 0)
    (s1,) = st2.tick(now=0, all_open=True)
    assert (s1["w"], s1["n"], s1["seqs"]) == (1, 1, [[4, 4]])
    # window 0 came back from its marker: a record it never counted
    # revises it whole; one it counted is a duplicate
    st2.take(_batch([(7, 4), (2, 1)]))
    st2.sync()
    (rev,) = st2.tick(now=0, all_open=True)
    assert (rev["w"], rev["rev"], rev["n"], rev["seqs"]) == (0, 1, 4, [[2, 3], [5, 5], [7, 7]])
    assert rev["ch"]["x"][0] == 40
    assert not [r for _s, r in st2.out.records(1) if r.get("k") == "relay"]
    assert st2.agg.late_raw == 0 and st2.agg.duplicates == 1


def test_a_revision_receipted_whose_marker_a_crash_took_is_made_again_whole(tmp_path):
    st = _store(tmp_path)
    st.take(_batch([(2, 1), (3, 2)]))  # raw 1: window 0
    st.take(_batch([(4, 12)]))  # raw 2: window 1 (the stream passed window 0)
    st.sync()
    st.tick(now=0)
    st.out.ack(1, max(s for s, _ in _sums(st)))
    st.tick(now=0)  # window 0 receipted: its marker (raw 3)
    st.take(_batch([(5, 3)]))  # raw 4: late, for window 0
    st.sync()
    (rev,) = st.tick(now=0)
    assert (rev["rev"], rev["seqs"]) == (1, [[2, 3], [5, 5]])
    # the revision receipted upstream, and the gateway killed before the
    # marker saying so is on disk
    st.out.ack(1, max(s for s, _ in _sums(st)))
    st.out.close()
    st.raw.close()
    st2 = _store(tmp_path)
    assert st2.recover() == (2, 0)
    # nothing goes up raw (the revision upstream counts record 5): window
    # 0 is summarized again whole, and, newer, stands for it
    got = {r["w"]: (r["rev"], r["n"], r["seqs"]) for r in st2.tick(now=0, all_open=True)}
    assert got == {0: (1, 3, [[2, 3], [5, 5]]), 1: (0, 1, [[4, 4]])}
    assert not [r for _s, r in st2.out.records(1) if r.get("k") == "relay"]


def test_a_record_for_a_window_long_closed_and_gone_goes_up_raw(tmp_path):
    st = _store(tmp_path)  # keep_s 0: a done window leaves memory at once
    st.take(_batch([(2, 1)]))  # window 0
    st.take(_batch([(3, 12)]))  # window 1: the stream passed window 0
    st.sync()
    far = 1e12
    st.tick(now=far, all_open=True)
    st.out.ack(1, max(s for s, _ in _sums(st)))
    st.tick(now=far)
    st.tick(now=far)
    # window 1 stays: its node may still send records for it in order
    assert (list(st.agg.windows), list(st.agg.done_keys)) == ([("n1", b"B" * 8, 1)], [("n1", b"B" * 8, 0)])
    st.take(_batch([(4, 5)]))
    st.sync()
    relays = [r for _s, r in st.out.records(1) if r.get("k") == "relay"]
    assert len(relays) == 1 and (relays[0]["first"], relays[0]["last"]) == (4, 4)
    assert st.agg.late_raw == 1 and st.tick(now=0) == []


def _event(seq, t, dev="n1", boot=b"B" * 8):
    b = _batch([(seq, t)], q=0, dev=dev, boot=boot)
    b.recs = [{"k": "trip", "t": int(t * 1e6), "causes": [[4096, "x:high"]], "seq": seq}]
    b.raw = [cbor.dumps(r) for r in b.recs]
    return b


def test_raw_around_events_before_and_after(tmp_path):
    out = Journal(str(tmp_path / "out"), "group", group_records=1 << 30, group_ms=1 << 30)
    raw = Journal(str(tmp_path / "raw"), "group", group_records=1 << 30, group_ms=1 << 30)
    st = Store(out, raw, Aggregator(W, modes={"x": "around"}, keep_s=0, close_idle_s=1000), {"before_s": 3, "after_s": 2, "kinds": ["trip"]})
    for t in range(1, 7):  # seqs 2..7 at t 1..6 s
        st.take(_batch([(t + 1, t)]))
    st.take(_event(100, 6))
    for t in range(7, 12):  # seqs 8..12 at t 7..11 s
        st.take(_batch([(t + 1, t)]))
    st.sync()
    relayed = sorted(cbor.loads(x)["t"] // 1000000 for _s, r in out.records(1) if r.get("k") == "relay" for x in r["recs"])
    # 3 s before the trip at 6 s (held in the raw journal) and 2 s after
    assert relayed == [3, 4, 5, 6, 7, 8]
    assert st.around_relayed == 6
    # the summaries still count every record
    st.tick(now=0, all_open=True)
    assert sum(r["n"] for _s, r in out.records(1) if r.get("k") == "sum") == 11


def test_raw_held_for_events_that_may_still_come(tmp_path):
    out = Journal(str(tmp_path / "out"), "group", group_records=1 << 30, group_ms=1 << 30)
    raw = Journal(str(tmp_path / "raw"), "group", group_records=1 << 30, group_ms=1 << 30)
    st = Store(out, raw, Aggregator(W, modes={"x": "around"}, keep_s=0, close_idle_s=1000), {"before_s": 5, "after_s": 0, "kinds": ["trip"]})
    for t in range(1, 13):  # raw seqs 1..12, t 1..12 s: window 0 (1..9), window 1 (10..12)
        st.take(_batch([(t + 1, t)]))
    st.sync()
    st.tick(now=0)  # window 0 summarized: the stream passed its end
    st.out.ack(1, max(s for s, _ in _sums(st)))
    st.tick(now=0)
    # window 0 is done, but a trip up to 5 s after t = 7 could still want
    # those records: only t <= 7 s (12 - 5) go
    assert st.raw.acked(1) == 7


def _boot(seq, boot, dev="n1"):
    b = _batch([(seq, 0)], q=0, dev=dev, boot=boot)
    b.recs = [{"k": "boot", "t": 0, "boot": boot, "seq": seq}]
    b.raw = [cbor.dumps(r) for r in b.recs]
    return b


def test_a_rebooted_nodes_backlog_is_summarized_in_the_run_that_recorded_it(tmp_path):
    A, B = b"A" * 8, b"B" * 8
    st = _store(tmp_path)
    st.take(_boot(1, A))
    st.take(_batch([(2, 1), (3, 2)], boot=A))
    # the node reboots with seqs 4 and 5 unsent: its new run sends them
    # in its own batches, after its boot event (events go first)
    st.take(_boot(6, B))
    st.take(_batch([(4, 3), (5, 4)], boot=B))
    st.take(_batch([(7, 1), (8, 2)], boot=B))
    st.sync()
    got = {(r["boot"], r["w"]): (r["n"], r["seqs"]) for r in st.tick(now=0, all_open=True)}
    assert got == {(A, 0): (4, [[2, 5]]), (B, 0): (2, [[7, 8]])}
    st.out.close()
    st.raw.close()
    # a restarted gateway rebuilds the same windows: it kept the runs
    st2 = _store(tmp_path)
    st2.recover()
    got = {(r["boot"], r["w"]): (r["n"], r["seqs"]) for r in st2.tick(now=0, all_open=True)}
    assert got == {(A, 0): (4, [[2, 5]]), (B, 0): (2, [[7, 8]])}
    # a record from before every boot event known, in run B's batch: its
    # run (and so its time base) is unknown, it goes up raw
    st2.take(_batch([(0, 5)], boot=B))
    assert st2.agg.other_run_raw == 1
    # unless a window counts it already
    st2.agg.runs["n1"] = [[6, B]]
    st2.take(_batch([(5, 9)], boot=B))
    assert st2.agg.other_run_raw == 1 and st2.agg.duplicates == 1


def test_a_window_closed_idle_is_not_summarized_afresh_after_a_restart(tmp_path):
    out = Journal(str(tmp_path / "out"), "group", group_records=1 << 30, group_ms=1 << 30)
    raw = Journal(str(tmp_path / "raw"), "group", group_records=1 << 30, group_ms=1 << 30)
    st = Store(out, raw, Aggregator(W, keep_s=0, close_idle_s=1))
    st.take(_batch([(2, 1), (3, 2)]))  # raw 1: n1's window 0, then n1 pauses
    st.sync()
    far = 1e12
    (s0,) = st.tick(now=far)  # closed idle: the stream did not pass its end
    st.out.ack(1, max(s for s, _ in _sums(st)))
    st.tick(now=far)  # receipted: a done marker (raw 2); raw 1 goes
    assert st.raw.acked(1) == 1 and st.raw.pending() == 1
    # another node's window, summarized and receipted: its raw record comes
    # after the marker, so the cursor passes the marker, with a copy after
    st.take(_batch([(2, 1), (3, 11)], dev="n2"))
    st.sync()
    st.tick(now=far)
    st.out.ack(1, max(s for s, _ in _sums(st)))
    st.tick(now=far)
    assert st.raw.acked(1) >= 3
    marks = [r for s, r in st.raw.records(1) if s > st.raw.acked(1) and r.get("k") == "done" and r["node"] == "n1"]
    assert marks and marks[-1]["seqs"] == [[2, 3]]
    st.out.close()
    st.raw.close()
    # restarted: n1's next record of window 0 revises it, whole (a summary
    # made afresh would, newer, stand for it without 2, 3)
    st2 = _store(tmp_path)
    st2.recover()
    st2.take(_batch([(4, 3)]))
    st2.sync()
    got = [(r["w"], r["rev"], r["seqs"]) for r in st2.tick(now=0, all_open=True) if r["node"] == "n1"]
    assert got == [(0, 1, [[2, 4]])]
    assert st2.agg.late_raw == 0


def test_a_damaged_runs_file_is_named(tmp_path):
    (tmp_path / "runs.json").write_text("{not json")
    with pytest.raises(JournalError, match="runs.json.*delete it"):
        _store(tmp_path)


def test_queue_cap_drops_that_queues_oldest_only(tmp_path):
    """out/ with events capped at 16 KiB inside a 1 MiB total: a flood of
    events loses its own oldest segments; telemetry keeps every record."""
    from edgefw.gateway.store import QueueCapped
    from firmware.store.journal import PRIO_EVENT, PRIO_TELEMETRY

    j = QueueCapped(str(tmp_path / "out"), "group", queue_caps={PRIO_EVENT: 16384, PRIO_TELEMETRY: None}, segment_bytes=4096, cap_bytes=1 << 20, group_records=1 << 30, group_ms=1 << 30)
    for i in range(600):
        j.append({"k": "trip", "n": i, "pad": "x" * 40}, PRIO_EVENT)
        j.append({"k": "win", "n": i, "pad": "y" * 40}, PRIO_TELEMETRY)
        if i % 10 == 9:
            j.flush()
    j.flush()
    ev = [r["n"] for _s, r in j.records(PRIO_EVENT) if _s > j.acked(PRIO_EVENT)]
    tel = [r["n"] for _s, r in j.records(PRIO_TELEMETRY)]
    assert sum(sg.size for sg in j._segs[PRIO_EVENT]) <= 16384 + 4096
    assert tel == list(range(600))
    # the newest events stay, the oldest went, every one counted
    assert ev == list(range(600 - len(ev), 600)) and 0 < len(ev) < 600
    assert j.dropped_cap == 600 - len(ev)
    j.close()
