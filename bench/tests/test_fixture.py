"""The interlock on a board as the firmware runs it (``edgefw run``, real
time), driven by the bench's fixture instead of the sim: labgrid digital
outputs named ESTOP (opens the e-stop chain), RESET (presses the button)
and HEATER (makes the BME280 read hot: a heater on a relay; the emulated
Pi's board.py sets the chip's raw temperature), and RELAY_PERMIT, an
input watching the relay. The emulated Pi has them (bench/lab/fixture.py);
a real bench names its own drivers so in its environment file. Drawn in
the run's report from the board's journal."""

import json
import time

import pytest

from bench.helpers import Injector, wait_for_line, wait_level

LIMIT_C = 60.0  # env.temperature_c's high limit in the default config
# a 50 ms loop with room for overruns: an emulated CPU (and a Pi busy
# with the bench's SSH sessions) misses a 10 ms deadline now and then
CONFIG = {"period_ms": 50, "interlock": {"max_consecutive_overruns": 20}}


def _line(target, name):
    return target.get_driver("DigitalOutputProtocol", name=name)


@pytest.mark.needs("console", "gpio", "fixture")
def test_the_fixture_trips_the_interlock_and_a_reset_rearms_it(runner, target, tmp_path, report):
    permit, heater = _line(target, "RELAY_PERMIT"), _line(target, "HEATER")
    inj = Injector.for_target(target)
    j = str(tmp_path / "j")
    (tmp_path / "bench.json").write_text(json.dumps(CONFIG))
    t0 = time.monotonic()
    con = runner.start(["--config", str(tmp_path / "bench.json"), "--journal", j], share=(str(tmp_path),))
    try:
        # started: tripped until the first reset press
        wait_for_line(con, r"cycles/s\s+TRIPPED", timeout=120)
        assert permit.get() is False, "the permit must wait for a reset press"
        inj.press("RESET")
        wait_level(permit, 1, timeout=10)
        # the e-stop chain opened: a trip, the permit drops and stays low
        inj.press("ESTOP", for_s=0.5)
        wait_for_line(con, r"TRIPPED\([^)]*estop", timeout=15)
        wait_level(permit, 0, timeout=5)
        inj.press("RESET")
        wait_level(permit, 1, timeout=10)
        # over temperature: a trip; a reset while hot is refused
        heater.set(True)
        wait_for_line(con, r"TRIPPED\([^)]*temperature", timeout=15)
        wait_level(permit, 0, timeout=5)
        inj.press("RESET")
        time.sleep(1.0)
        assert permit.get() is False, "a reset while hot re-energized"
        heater.set(False)
        time.sleep(1.0)  # the chip reads cool again
        inj.press("RESET")
        wait_level(permit, 1, timeout=10)
    finally:
        heater.set(False)
        runner.off()  # a power cut of the process: the line is released
    wait_level(permit, 0, timeout=10)
    elapsed_us = int((time.monotonic() - t0) * 1e6)
    recs = runner.call("journal", "records", share=(str(tmp_path),), path=j)
    kinds = [r.get("k") for r in recs]
    trips = [r for r in recs if r.get("k") == "trip"]
    causes = [",".join(c[1] for c in t.get("causes", [])) for t in trips]
    assert len(trips) == 2 and "estop" in causes[0] and "temperature" in causes[1], causes
    assert kinds.count("reset_refused") >= 1 and kinds.count("reset") >= 3, kinds
    # the permit as the journal has it: up at each accepted reset, down at each trip
    pins = [[r["t"], "RELAY_PERMIT", 1 if r["k"] == "reset" else 0] for r in recs if r.get("k") in ("reset", "trip")]
    report.append(
        {
            "name": "fixture_estop_and_heat",
            "records": recs,
            "pins": pins,
            "trips": [{"cause": c, "t_us": t["t"]} for c, t in zip(causes, trips, strict=True)],
            "limits": {"env.temperature_c": {"high": LIMIT_C}},
            "duration_us": max([r.get("t", 0) for r in recs] + [elapsed_us]),
        }
    )
