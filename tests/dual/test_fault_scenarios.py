"""Every fault scenario in sim/scenarios/faults trips with the expected
cause within one loop period of the moment it names."""

import os

import sim
from firmware.app import build
from sim.scenario import load_scenario
from tests.dual._util import run, tmp_path

FAULTS = sim.__file__.rsplit("/", 1)[0] + "/scenarios/faults"


def _check(name):
    path = FAULTS + "/" + name + ".json"
    fw, sc = build("sim", FAULTS + "/config.json", path, tmp_path("j.bin"))
    run(fw, until_us=sc["duration_us"])
    got = [(t["cause"].split("+")[0], t["t_us"]) for t in fw.trips]
    want = sc["expect"]
    assert len(got) == len(want), (name, got)
    for i in range(len(want)):
        (cause, t), w = got[i], want[i]
        assert cause == w["cause"], (name, got)
        assert 0 <= t - w["at_us"] <= fw.period_us, (name, t, w["at_us"])
    # a tripped permit stays low to the end: no re-energizing without reset
    assert [v for _t, _n, v in fw.hw.gpio.transitions("RELAY_PERMIT")][-2:] == [1, 0]


def test_every_fault_scenario():
    names = sorted(n[:-5] for n in os.listdir(FAULTS) if n.endswith(".json") and n != "config.json")
    assert len(names) >= 13
    for n in names:
        _check(n)
    # the scenario loader is exercised for all of them
    assert load_scenario(FAULTS + "/estop_press.json")["expect"][0]["cause"] == "estop"
