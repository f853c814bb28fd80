"""In real time, a model that stalls, raises or hangs does not delay trips.

The loop runs at 100 Hz on the wall clock with the sim chips; onsets come
at random phases. A trip is due within one period of its onset; the bound
asserted is five periods, loose enough for a shared machine, and ten
times tighter than the 100 ms a stalled model would add if the loop
waited for it. A run's max is one trip, which a shared machine's jitter
can push past the bound once in a while, so each case gets up to three
runs; a loop that waits for the model is late in every one of them.
"""

import pytest

from sim.latency import measure

BOUND_MS = 50


def _quiet_run(tries=3, **kw):
    """The first run whose slowest trip is under BOUND_MS, or fail with
    every run's slowest trip. Every run must miss nothing."""
    seen = []
    for _ in range(tries):
        r = measure(period_ms=10, trials=15, **kw)
        assert r["missed"] == 0 and r["trials"] == 15, r
        if r["max_ms"] < BOUND_MS:
            return r
        seen.append(r["max_ms"])
    raise AssertionError("slowest trip per run %s ms, bound %d ms" % (seen, BOUND_MS))


@pytest.mark.parametrize("mode,kind", [("process", "stall"), ("process", "raise"), ("process", "hang"), ("thread", "stall")])
def test_model_cannot_delay_a_trip(mode, kind):
    r = _quiet_run(stalled=True, mode=mode, kind=kind)
    if kind == "raise":
        assert r["inference_errors"] > 0
    if kind == "hang":
        assert r["inference_windows"] == 0


def test_unstalled_reference():
    _quiet_run()
