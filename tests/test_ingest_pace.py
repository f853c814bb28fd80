"""Ingest pacing a fleet's backlog (``--pace-ms``): the schedule and its
rate (``edgefw.ingest.pace``), and a device keeping to the hold its
receipt names, against a real mosquitto."""

import json
import threading
import time

import paho.mqtt.client as mqtt

from edgefw.ingest.pace import Pace
from edgefw.ingest.verify import make_receipt, open_batch
from firmware.store.journal import Journal
from firmware.uplink import receipt
from firmware.uplink.uplink import Uplink, make_client
from tests.test_store_forward import IngestWorker

KEY = bytes(range(32))


# ------------------------------------------------------------ the schedule
def test_batches_slower_than_the_rate_are_never_held():
    p = Pace(rate=1000, size=100)
    # 100-record batches 0.2 s apart: 500 records/s against 1000
    assert [p.admit("d%d" % i, 100, None, 10.0 + 0.2 * i) for i in range(20)] == [0] * 20
    assert p.held == 0


def test_a_burst_is_spread_at_the_rate():
    p = Pace(rate=1000, size=100)
    holds = [p.admit("d%d" % i, 100, None, 50.0) for i in range(10)]
    # each batch books the next slot for its device, 100 ms apart
    assert holds == [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]
    assert p.held == 9


def test_a_batch_smaller_than_lately_books_a_slot_as_large_as_lately():
    # a device's first batch after boot is smaller than its others: its
    # next is full size, and so is the slot booked for it
    p = Pace(rate=1000, size=200)
    h = [p.admit("d%d" % i, 25, None, 7.0) for i in range(3)]
    # (what "lately" is fades by a thousandth a batch: 199.8, 199.6)
    assert h[0] == 0 and 199 <= h[1] <= 200 and 398 <= h[2] <= 400, h


def test_no_hold_is_longer_than_the_cap():
    p = Pace(rate=200, size=200)
    holds = [p.admit("d%d" % i, 200, None, 0.0) for i in range(100)]
    assert max(holds) == int(Pace.MAX_HOLD_S * 1000)
    assert holds[:3] == [0, 1000, 2000]


def test_over_the_target_the_rate_falls_a_step_at_a_time_to_under_what_was_committed():
    p = Pace(target_s=0.4, rate=50000)
    p.admit("d", 200, None, 99.5)
    p.settled(100.0, 0.05, 0)
    # a second in which 20,000 records/s were committed and a batch waited
    # 0.8 s: the rate falls, but by at most 15 % a step (what is booked
    # shows only when its holds end)
    p.admit("d", 200, None, 100.5)
    p.settled(101.0, 0.8, 20000)
    assert p.rate == 50000 * Pace.STEP_DOWN
    rates = []
    for i in range(2, 20):
        p.settled(100.0 + i, 0.8, 20000)
        rates.append(p.rate)
    # step by step to under what was committed, enough under it to work
    # the excess off (0.8 s against 0.4: 0.7 of it), and it stays there
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] == 20000 * 0.7
    # a cut is never below half of what was committed: no collapse when
    # the excess is large
    for i in range(20, 40):
        p.settled(100.0 + i, 9.0, 20000)
    assert p.rate == 10000


def test_under_the_target_the_rate_grows_back_to_what_ingest_has_shown_and_a_little_past():
    p = Pace(target_s=0.4, rate=10000)
    p.admit("d", 200, None, 0.0)
    p.admit("e", 200, None, 0.0)
    p.settled(0.0, 0.0, 0)
    # busy (a queue of 0.3 s): 30,000 records/s is what ingest can do
    p.settled(1.0, 0.3, 30000)
    assert p.cap == 30000
    # a half second's burst counts for a part of it, not all
    p.settled(2.0, 0.3, 60000)
    assert 30000 < p.cap < 60000
    p.settled(3.0, 0.3, 30000)
    cap = p.cap
    rates = []
    # holds being given, batches quick: more each time, 5 % a step while
    # far under it, then 1 %, up to 5 % past it (more is found only by
    # trying more)
    for i in range(4, 60):
        p.admit("d", 200, None, float(i))
        p.admit("e", 200, None, float(i))
        p.next = i + 5.0
        p.settled(float(i), 0.05, 10000)
        rates.append(p.rate)
    assert rates[0] == 10000 * Pace.STEP_UP[0]
    assert rates == sorted(rates)
    assert max(rates) == Pace.PROBE * cap
    # near it, smaller steps
    near = [b / a for a, b in zip(rates[:-1], rates[1:], strict=True) if 0.9 * cap < a < b < Pace.PROBE * cap]
    assert near and max(near) <= Pace.STEP_UP[1] + 1e-9


def test_what_was_booked_done_with_no_queue_raises_what_ingest_can_do_by_a_part():
    # no queue ever forms (a worker that keeps up): its estimate must still
    # grow, or the rate would stay pinned under it for good
    p = Pace(target_s=0.4, rate=20000)
    p.settled(0.0, 0.0, 0)
    p.settled(1.0, 0.01, 21000)
    assert p.cap == 21000
    p.settled(2.0, 0.01, 31000)
    assert p.cap == 21000 + Pace.CAP_RISE * 10000
    # less than was booked: no sign of more
    cap = p.cap
    p.settled(3.0, 0.01, 10000)
    assert p.cap == cap


def test_a_half_second_of_devices_first_batches_moves_neither_rate_nor_cap():
    # a fleet starting together: its first batches were paced by nothing,
    # so the queue they make is no sign of the rate being too high
    p = Pace(target_s=0.4, rate=20000)
    p.settled(0.0, 0.0, 0)
    for i in range(100):
        p.admit("d%d" % i, 6, None, 0.2)
    p.settled(1.0, 0.9, 600)
    assert p.rate == 20000 and p.cap == 0
    # the same queue from devices on their schedule: a cut
    for i in range(100):
        p.admit("d%d" % i, 200, None, 1.2)
    p.settled(2.0, 0.9, 20000)
    assert p.rate < 20000 and p.cap == 20000


def test_time_in_the_broker_counts_from_each_devices_own_least_gap():
    # device clocks are off by whatever they are off by: only a gap above
    # a device's least counts as waiting in the broker
    p = Pace(target_s=0.4, rate=50000)
    t = 1000.0
    p.admit("fast", 10, int((t - 3600) * 1000), t)  # an hour behind
    p.admit("slow", 10, int((t + 5) * 1000), t)  # 5 s ahead
    assert p.queued == 0
    p.settled(0.0, 0.0, 0)
    p.admit("fast", 10, int((t + 1 - 3600 - 0.9) * 1000), t + 1)
    assert abs(p.queued - 0.9) < 0.01
    p.settled(1.0, 0.05, 40000)
    # 0.05 s in ingest and 0.9 s in the broker: over the target (the first
    # step down is a step)
    assert p.rate == 50000 * Pace.STEP_DOWN


# ------------------------------------------------------------ the device
class _Receiver:
    """A receiver that answers every batch of ``dev1`` at once, with the
    holds given in turn (then none), noting when each batch came."""

    def __init__(self, port, holds):
        self.holds = list(holds)
        self.arrivals = []
        self.lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="pace-receiver")
        sub = threading.Event()
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe("edgefw/dev1/up", qos=1)
        c.on_subscribe = lambda *a: sub.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert sub.wait(10)
        self.c = c

    def _on_message(self, c, u, m):
        b = open_batch(m.payload, {"dev1": KEY}, "dev1", time.time())
        with self.lock:
            hold = self.holds.pop(0) if self.holds else 0
            self.arrivals.append((time.monotonic(), len(b.recs)))
        c.publish(receipt.topic_for("dev1"), make_receipt("dev1", b.q, b.first, b.last, b.id, True, key=KEY, hold=hold), qos=1)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def test_a_device_holds_its_next_batch_as_long_as_its_receipt_says(tmp_path, broker):
    j = Journal(str(tmp_path / "j"))
    for i in range(201):
        j.append({"k": "win", "i": i})
    r = _Receiver(broker.port, [700, 60000])
    up = Uplink(j, make_client("127.0.0.1", broker.port, "dev1"), "dev1", key=KEY, batch_records=40, window=4, backoff_max_ms=1500)
    try:
        assert up.drain(30000)
    finally:
        up.client.disconnect()
        r.close()
    a = r.arrivals
    # the first batch after boot is a thirty-second of the others (at least 1)
    assert [n for _t, n in a] == [1, 40, 40, 40, 40, 40]
    # held 700 ms, then one batch only (the receiver booked one slot)
    assert 0.65 <= a[1][0] - a[0][0] <= 2.0, a
    # a hold past the device's longest backoff waits that long, no longer
    assert 1.45 <= a[2][0] - a[1][0] <= 3.0, a
    assert j.pending() == 0


def test_a_device_with_its_window_open_sends_one_batch_a_hold_once_held(tmp_path, broker):
    """Receipts without holds open the window to 4 batches; then every
    receipt holds 500 ms: once what was in flight is in, the device sends
    one batch a hold, never its whole window at once."""
    j = Journal(str(tmp_path / "j"))
    for i in range(1 + 40 * 16):
        j.append({"k": "win", "i": i})
    r = _Receiver(broker.port, [0] * 8 + [500] * 100)
    up = Uplink(j, make_client("127.0.0.1", broker.port, "dev1"), "dev1", key=KEY, batch_records=40, window=4)
    try:
        assert up.drain(30000)
    finally:
        up.client.disconnect()
        r.close()
    t = [x[0] for x in r.arrivals]
    assert len(t) == 17
    # the first 8 went with the window opening: some of them together
    assert min(t[i + 1] - t[i] for i in range(7)) < 0.1
    # from the 8th receipt on, up to 4 were in flight; after them, each
    # batch waited out the hold of the one before
    gaps = [t[i + 1] - t[i] for i in range(12, len(t) - 1)]
    assert gaps and min(gaps) >= 0.45, gaps


def test_a_paced_device_gets_every_record_in_once(tmp_path, broker):
    """A device appending as it sends, over mosquitto into ingest pacing it
    at a low rate: holds are given, and every record is in the database
    once."""
    from tests.test_store_forward import DEV, device
    from tests.test_store_forward import KEY as DKEY

    keys = {DEV: DKEY}
    w = IngestWorker(broker.port, tmp_path / "i.sqlite", keys=keys, pace=Pace(rate=400, size=100))
    try:
        p = device(tmp_path / "j", broker.port, 1000)
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert w.wait_for(1000)
        with w.ing.lock:
            seqs = [s for (s,) in w.ing.db.execute("SELECT seq FROM records WHERE device=? ORDER BY seq", (DEV,))]
    finally:
        w.close()
    assert seqs == list(range(1, 1001))
    assert w.ing.pace.held > 0
    assert json.loads(out.strip().splitlines()[-1])["pending"] == 0


def test_pace_ms_must_be_whole_milliseconds(capsys):
    import argparse

    import pytest

    from edgefw.ingest.server import add_parser

    p = add_parser(argparse.ArgumentParser(prog="edgefw ingest"))
    assert p.parse_args([]).pace_ms == 0
    assert p.parse_args(["--pace-ms", "400"]).pace_ms == 400
    for bad in ("-1", "0.5", "fast"):
        with pytest.raises(SystemExit):
            p.parse_args(["--pace-ms", bad])
        assert "--pace-ms" in capsys.readouterr().err


def test_pacing_is_in_the_metrics(tmp_path):
    from edgefw.ingest.server import Ingest

    ing = Ingest(str(tmp_path / "i.sqlite"), None, log=None, pace=Pace(rate=1000, size=100))
    for i in range(3):
        ing.pace.admit("d%d" % i, 100, None, 5.0)
    text = ing.metrics.render(ing.counts, ing.pace)
    ing.close()
    assert "edgefw_ingest_pace_rate_records_per_second 1000.0" in text
    assert "edgefw_ingest_held_receipts_total 2" in text
    assert "edgefw_ingest_hold_seconds_total 0.3" in text
    # without --pace-ms, none of them
    assert "pace" not in Ingest(str(tmp_path / "j.sqlite"), None, log=None).metrics.render({**ing.counts})


def test_a_batch_smaller_than_the_devices_last_books_no_slot():
    # its journal ran dry: no next batch will use a slot
    p = Pace(rate=1000, size=100)
    assert p.admit("a", 100, None, 1.0) == 0
    assert p.admit("b", 100, None, 1.0) == 100
    assert p.admit("a", 40, None, 1.0) == 0
    # and the schedule did not move for it
    assert p.admit("c", 100, None, 1.0) == 200
