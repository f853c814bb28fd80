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


def _trips_on_the_burst(model, threshold):
    fw, sc = build("sim", journal=tmp_path("j"), overrides={"inference": {"enabled": True, "model": model, "threshold": threshold}})
    fw.inference.mode = "task"
    run(fw, cycles=700)
    s = fw.summary()
    assert s["inference"]["errors"] == 0, fw.inference.last_error
    assert [t["cause"] for t in s["trips"]] == ["inference"], s["trips"]
    assert 3000000 < s["trips"][0]["t_us"] < 4000000
    return fw


def test_the_raw_window_model_runs_in_the_loop():
    from firmware.infer.anomaly import Anomaly

    fw = _trips_on_the_burst("firmware/models/vib_conv1d.tflite", 0.0)
    # the quiet windows after the burst score low again
    assert fw.inference.score < 0
    with open("firmware/models/vib_conv1d.tflite", "rb") as f:
        a = Anomaly(f.read(), window=64, backend="micro")
    assert (a.kind, a.score_kind) == ("window", "output")


def test_the_autoencoder_scores_its_reconstruction_error_in_the_loop():
    from firmware.infer.anomaly import Anomaly

    fw = _trips_on_the_burst("firmware/models/vib_autoencoder.tflite", 1.0)
    assert 0 <= fw.inference.score < 1.0
    with open("firmware/models/vib_autoencoder.tflite", "rb") as f:
        a = Anomaly(f.read(), backend="micro")
    assert (a.kind, a.score_kind) == ("features", "reconstruction")
    # a flat window: features all zero, reconstructed as quiet operation
    assert 0 <= a.score([0] * 64) < 1.0


def test_a_window_the_model_does_not_take_is_refused_with_the_fix():
    from firmware.infer.anomaly import Anomaly
    from hal.errors import ModelError
    from tests.dual._util import raises

    with open("firmware/models/vib_conv1d.tflite", "rb") as f:
        data = f.read()
    e = raises(ModelError, Anomaly, data, 100, "micro", 32)
    assert "raw window of 32 samples" in str(e) and "set inference.window to 64" in str(e), e
