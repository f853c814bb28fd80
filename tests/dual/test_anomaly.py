"""The shipped vibration model in the loop, on both targets."""

from firmware.app import build
from tests.dual._util import run, tmp_path


def test_shipped_model_scores_the_vibration_burst_and_requests_a_trip():
    fw, sc = build("sim", journal=tmp_path("j"), overrides={"inference": {"enabled": True}})
    fw.inference.mode = "task"  # deterministic in virtual time on CPython too
    run(fw, cycles=700)
    s = fw.summary()
    # the default scenario shakes vib.accel_x_g from 3.0 s to 5.0 s
    assert [t["cause"] for t in s["trips"]] == ["inference"]
    assert 3000000 < s["trips"][0]["t_us"] < 4000000
    assert s["inference"]["windows"] >= 19 and s["inference"]["errors"] == 0
    parts, _state, _causes = fw.status_line()
    assert parts[0].startswith("anomaly=")


def test_quiet_sensor_scores_low():
    fw, sc = build("sim", journal=tmp_path("j"), overrides={"inference": {"enabled": True}})
    fw.inference.mode = "task"
    run(fw, cycles=290)
    assert fw.trips == [] and fw.inference.score is not None and fw.inference.score < 0
