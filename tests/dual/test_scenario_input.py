"""Scenario files checked against the config at load, and the ``expect``
block checked against a run's trips."""

from firmware.config import load_config
from hal.errors import ConfigError
from sim.expect import check_trips
from sim.scenario import parse_scenario
from tests.dual._util import raises

CFG = load_config(None)


def _refused(doc, field, *words):
    msg = str(raises(ConfigError, parse_scenario, doc, "s.json", CFG))
    assert "'" + field + "'" in msg, msg
    for w in words:
        assert w in msg, (w, msg)


def test_a_misspelt_channel_is_refused_at_load_with_the_channels():
    _refused({"events": [{"at_s": 1, "set": {"env.temprature_c": 70}}]}, "events[0].set", "env.temperature_c")
    _refused({"initial": {"vib.accel_q_g": 1}}, "initial", "vib.accel_z_g")
    _refused({"events": [{"at_s": 1, "ramp": {"nope.x": 1}, "over_s": 1}]}, "events[0].ramp")
    v = {"channel": "env.temperature_c", "amplitude_g": 1, "freq_hz": 10}
    _refused({"events": [{"at_s": 1, "vibration": v, "for_s": 1}]}, "events[0].vibration.channel", "accelerometer")
    _refused({"events": [{"at_s": 1, "fault": {"sensor": "evn", "kind": "eio"}}]}, "events[0].fault.sensor", "env")
    _refused({"events": [{"at_s": 1, "input": {"role": "ESTP", "level": 1}}]}, "events[0].input", "ESTOP")
    # without a config only the form is checked, as before
    assert parse_scenario({"events": [{"at_s": 1, "set": {"env.temprature_c": 70}}]})["events"]


def test_events_and_expected_trips_after_the_end_are_refused():
    _refused({"duration_s": 2, "events": [{"at_s": 3, "press": "RESET"}]}, "events[0].at_s", "from 0 to 2")
    _refused({"duration_s": 2, "expect": {"trips": [{"cause": "estop", "at_s": 2.5}]}}, "expect.trips[0].at_s", "2")
    sc = parse_scenario({"duration_s": 2, "events": [{"at_s": 2, "press": "RESET"}]}, "s.json", CFG)
    assert sc["events"][0]["at_us"] == 2000000


def test_numbers_that_are_not_finite_are_refused():
    _refused({"events": [{"at_s": float("nan"), "press": "RESET"}]}, "events[0].at_s")
    _refused({"events": [{"at_s": float("inf"), "press": "RESET"}]}, "events[0].at_s")
    _refused({"duration_s": float("inf")}, "duration_s")
    _refused({"events": [{"at_s": 1, "set": {"env.temperature_c": float("nan")}}]}, "events[0].set.env.temperature_c")
    _refused({"events": [{"at_s": 1, "press": "RESET", "for_s": -1}]}, "events[0].for_s")
    _refused({"expect": {"trips": [{"cause": "estop", "at_s": 1, "extra": 1}]}}, "expect.trips[0].extra")


def _trip(cause, t_s):
    return {"cause": cause, "t_us": int(t_s * 1000000)}


def test_expect_passes_only_on_the_trips_it_names():
    want = parse_scenario({"expect": {"trips": [{"cause": "estop", "at_s": 1.0}]}})["expect"]
    assert check_trips(want, [_trip("estop", 1.005)], 10000) == []
    assert check_trips(want, [_trip("estop+env.temperature_c:high", 1.0)], 10000) == []
    (miss,) = check_trips(want, [], 10000)
    assert "did not happen" in miss and "estop" in miss
    (late,) = check_trips(want, [_trip("estop", 1.02)], 10000)
    assert "1.020" in late
    (wrong,) = check_trips(want, [_trip("stale:env", 1.0)], 10000)
    assert "expected estop" in wrong
    extra = check_trips(want, [_trip("estop", 1.0), _trip("estop", 3.0)], 10000)
    assert len(extra) == 1 and "unexpected trip 2" in extra[0]
    assert check_trips([], [_trip("estop", 1.0)], 10000)
