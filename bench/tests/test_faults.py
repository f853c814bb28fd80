"""Every interlock fault scenario trips with its expected cause within
one loop period of the moment it names, and the permit stays off; each
is drawn in the run's report."""

import pytest

from bench.helpers import assert_transitions

# the scenario files, listed here so each is its own test; a test below
# checks the list against the folder on the target
SCENARIOS = [
    "bus_error",
    "deadline",
    "estop_press",
    "estop_wire_break",
    "implausible",
    "loop_stall",
    "over_temperature",
    "rate_of_change",
    "relay_readback",
    "sensor_missing",
    "sensor_stuck",
    "under_temperature",
    "vibration",
]


@pytest.mark.needs("fault_injection", "virtual_time")
def test_the_list_is_every_fault_scenario(probe):
    assert probe("faults", "names") == SCENARIOS


@pytest.mark.needs("fault_injection", "virtual_time")
@pytest.mark.parametrize("name", SCENARIOS)
def test_fault_scenario(name, probe, tmp_path, report):
    r = probe("faults", "run", name=name, journal=str(tmp_path / "j"))
    report.append(r)
    got = [(t["cause"].split("+")[0], t["t_us"]) for t in r["trips"]]
    assert len(got) == len(r["expect"]), got
    for (cause, t), w in zip(got, r["expect"], strict=True):
        assert cause == w["cause"], got
        assert 0 <= t - w["at_us"] <= r["period_us"], (t, w)
    first = r["expect"][0]["at_us"]
    # the permit goes high after the start-up reset and low at the trip,
    # within one period, and stays low to the end
    assert_transitions(r["pins"], "RELAY_PERMIT", [1, 0], within_us=(0, first + r["period_us"]))
    assert_transitions(r["pins"], "RELAY_PERMIT", [], within_us=(first + r["period_us"] + 1, r["duration_us"]))
    # the journal holds the trip
    trips = [x for x in r["records"] if x.get("k") == "trip"]
    assert trips and trips[0]["t"] == r["trips"][0]["t_us"]


@pytest.mark.needs("fault_injection", "virtual_time")
def test_injected_values_and_faults_trip_and_a_reset_is_refused_while_hot(target, probe, tmp_path, report):
    import json

    from bench.helpers import Injector, assert_level

    inj = Injector.for_target(target)
    inj.press("RESET", at_s=0.1, for_s=0.05)
    inj.value("env.temperature_c", 75.0, at_s=0.5)
    inj.press("RESET", at_s=0.8, for_s=0.05)  # refused: still hot
    inj.value("env.temperature_c", 25.0, at_s=1.0)
    inj.press("RESET", at_s=1.3, for_s=0.05)  # accepted
    inj.fault("env", "eio", at_s=1.6, register=0xF7)
    path = tmp_path / "injected.json"
    path.write_text(json.dumps(inj.scenario(2.0)))
    r = probe("faults", "run_file", path=str(path), journal=str(tmp_path / "j"))
    report.append(r)
    causes = [t["cause"] for t in r["trips"]]
    assert len(causes) == 2 and causes[0].startswith("env.temperature_c"), causes
    assert "bus" in causes[1] or "env" in causes[1], causes
    kinds = [x["k"] for x in r["records"] if x["k"] in ("trip", "reset", "reset_refused")]
    assert kinds.count("reset_refused") >= 1 and "reset" in kinds, kinds
    assert_level(r["pins"], "RELAY_PERMIT", 0, at_us=700000)
    assert_level(r["pins"], "RELAY_PERMIT", 1, at_us=1500000)
    assert_level(r["pins"], "RELAY_PERMIT", 0, at_us=1990000)
