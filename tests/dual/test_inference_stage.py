"""The inference stage can request a trip, never clear or delay one
(cooperative task runner: deterministic in virtual time, both targets)."""

from firmware.infer.stage import InferenceStage
from tests.dual._util import RESET_AT_0_1, firmware, run

HOT = {"at_s": 1.0, "set": {"env.temperature_c": 75.0}}


def _stage(fw, infer, threshold=0.5, k=2):
    st = InferenceStage(fw.channels, ["vib.accel_x_g"], window=10, hop=10, infer=infer, threshold=threshold, k=k)
    st.mode = "task"
    fw.inference = st
    return st


def test_stage_requests_a_trip_after_k_windows():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.5, "set": {"vib.accel_x_g": 2.0}}])

    def score(w):
        return max(abs(v) for v in w) / 1000.0

    st = _stage(fw, score)
    run(fw, until_us=1500000)
    assert [t["cause"] for t in fw.trips] == ["inference"]
    assert st.windows > 10 and st.request == 1
    # two windows of 10 cycles over the threshold, within a few windows
    assert 500000 < fw.trips[0]["t_us"] <= 500000 + 4 * 100000


def test_request_withdrawn_does_not_clear_the_trip():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.5, "set": {"vib.accel_x_g": 2.0}}, {"at_s": 1.0, "set": {"vib.accel_x_g": 0.0}}])
    st = _stage(fw, lambda w: max(abs(v) for v in w) / 1000.0)
    run(fw, until_us=2000000)
    assert st.request == 0
    assert fw.interlock.tripped == 1 and fw.interlock.resets == 1


def test_a_model_that_raises_changes_nothing():
    fw = firmware([RESET_AT_0_1, HOT])

    def broken(w):
        raise ValueError("bad tensor")

    st = _stage(fw, broken)
    run(fw, until_us=1500000)
    assert st.errors > 5 and "bad tensor" in st.last_error
    assert [(t["cause"], t["t_us"]) for t in fw.trips] == [("env.temperature_c:high", 1000000)]


def test_a_model_that_never_returns_changes_nothing():
    fw = firmware([RESET_AT_0_1, HOT])

    async def hang(w):
        import asyncio

        await asyncio.Event().wait()

    st = _stage(fw, hang)
    run(fw, until_us=1500000)
    assert st.windows == 0 and st.dropped > 5
    assert [(t["cause"], t["t_us"]) for t in fw.trips] == [("env.temperature_c:high", 1000000)]


def test_a_quiet_model_cannot_hold_off_a_trip():
    fw = firmware([RESET_AT_0_1, HOT])
    st = _stage(fw, lambda w: 0.0)
    run(fw, until_us=1500000)
    assert st.windows > 10 and st.request == 0
    assert [(t["cause"], t["t_us"]) for t in fw.trips] == [("env.temperature_c:high", 1000000)]
