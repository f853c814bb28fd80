"""A hung broker must not hold up the safety loop: measured on a wall clock.

The firmware runs on the sim board in real time with a journal written
every cycle and the uplink forwarding it to a real mosquitto beside it.
The sensor's world runs in a thread of its own (sim.latency, threaded),
so a loop that stalls meets each over-temperature late. Then mosquitto is
stopped with SIGSTOP (it keeps its sockets: connects are accepted by the
kernel and never answered, PUBACKs never come), before the uplink
connects and while it is connected, with and without the inference stage.
"""

import itertools
import os
import signal
import time

import pytest

from firmware.linux.forwarder import Forwarder
from firmware.store.journal import Journal
from firmware.uplink.uplink import Uplink, make_client
from sim.latency import measure

PERIOD_MS = 10
_runs = itertools.count()
TRIALS = 60


def _run(tmp_path, broker, hang=None, stalled=False):
    """hang: None (healthy), "before" (stopped before the uplink starts)
    or "after" (stopped once it is connected)."""
    seen = {}

    def attach(fw):
        up = Uplink(fw.journal, make_client("127.0.0.1", broker.port, "rt-dev", timeout_ms=5000), "rt-dev", batch_records=20, batch_ms=20)
        fwd = Forwarder(fw.journal, up)
        if hang == "before":
            os.kill(broker.proc.pid, signal.SIGSTOP)
        fwd.start()
        if hang == "after":
            t0 = time.monotonic()
            while not up.connected and time.monotonic() - t0 < 5:
                time.sleep(0.01)
            assert up.connected
            os.kill(broker.proc.pid, signal.SIGSTOP)

        def detach():
            # the uplink's state at the end, before stopping it
            seen.update(up.stats())
            fwd.stop()

        return detach

    j = Journal(str(tmp_path / ("j-%s-%s-%d" % (hang, stalled, next(_runs)))), "group")
    try:
        res = measure(PERIOD_MS, TRIALS, stalled=stalled, journal=j, window_ms=PERIOD_MS, attach=attach, threaded=True)
    finally:
        if hang:
            os.kill(broker.proc.pid, signal.SIGCONT)
    res["uplink"] = seen
    res["records"] = j.appended
    j.close()
    return res


# The firmware's own stall cause (interlock.stall_ms, default 200): a gap
# between cycles past it is a stall by the firmware's own measure. Every
# run must stay under it; before the fix, a hung broker gave a 4.99 s trip
# and 10 s between two cycles.
STALL_MS = 200
# What a run on a quiet machine stays under; a shared machine's jitter can
# pass it once in a while (52 ms seen in one CI run), so it gets retries.
QUIET_MS = 5 * PERIOD_MS


def _check(res):
    """What must hold in every run: no trip missed, nothing near a stall,
    and the record stage ran every cycle, its records in the journal."""
    assert res["missed"] == 0, res
    assert res["trials"] == TRIALS
    assert res["max_ms"] < STALL_MS, res
    assert res["max_gap_ms"] < STALL_MS, res
    assert res["records"] >= res["cycles"] * 0.9


def _p99_within(run, healthy, tries=3):
    """A quiet run: p99 trip latency within one period and 0.5 ms, or what
    a healthy broker gave in this run (plus 2 ms for a shared machine's
    noise), and no trip or gap between cycles as long as five periods. One
    run's p99 is its second-worst trip and its max is one trip, so a noisy
    machine gets up to ``tries`` runs; a stall shows in every one of them."""
    bound = max(PERIOD_MS + 0.5, healthy["p99_ms"]) + 2.0
    seen = []
    for _ in range(tries):
        res = run()
        _check(res)
        seen.append((res["p99_ms"], res["max_ms"], res["max_gap_ms"]))
        if res["p99_ms"] <= bound and res["max_ms"] < QUIET_MS and res["max_gap_ms"] < QUIET_MS:
            return res
    raise AssertionError("(p99 trip, max trip, max gap) in ms per run: %s; bounds %.2f, %d, %d" % (seen, bound, QUIET_MS, QUIET_MS))


@pytest.mark.slow
def test_hung_broker_does_not_delay_a_trip(tmp_path, broker):
    healthy = _run(tmp_path, broker)
    assert healthy["uplink"]["connected"] and healthy["uplink"]["errors"] == 0
    _check(healthy)
    for hang in ("before", "after"):
        res = _p99_within(lambda hang=hang: _run(tmp_path, broker, hang), healthy)
        # the uplink did meet the hung broker: what the loop recorded is
        # still in the journal, not acknowledged
        assert res["uplink"]["records"] < res["records"] // 2, res["uplink"]
        if hang == "before":
            assert not res["uplink"]["connected"] and "timeout" in res["uplink"]["last_error"]


@pytest.mark.slow
def test_hung_broker_with_inference_on(tmp_path, broker):
    healthy = _run(tmp_path, broker, stalled=True)
    _check(healthy)
    res = _p99_within(lambda: _run(tmp_path, broker, "after", stalled=True), healthy)
    assert res["inference_windows"] > 0
