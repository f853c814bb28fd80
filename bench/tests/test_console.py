"""The firmware as a device runs it: its console, and a power cut."""

import pytest

from bench.helpers import wait_for_line

FAULTS = "sim/scenarios/faults/"


@pytest.mark.needs("console", "virtual_time")
def test_the_console_reports_the_scenario_passed(runner, tmp_path):
    con = runner.start(["--config", FAULTS + "config.json", "--scenario", FAULTS + "estop_press.json", "--journal", str(tmp_path / "j")], share=(str(tmp_path),))
    try:
        m = wait_for_line(con, r"trips (\d+)\s+permit (\d)", timeout=60)
        assert m.groups() == ("1", "0")
        wait_for_line(con, r"expect: passed", timeout=30)
        assert con.wait(30) == 0
    finally:
        runner.off()


@pytest.mark.needs("console", "virtual_time")
def test_a_wait_for_a_line_that_never_comes_fails_in_time(runner, tmp_path):
    import time

    con = runner.start(["--config", FAULTS + "config.json", "--scenario", FAULTS + "estop_press.json", "--journal", str(tmp_path / "j")], share=(str(tmp_path),))
    t0 = time.monotonic()
    try:
        with pytest.raises(AssertionError, match="no console line matching"):
            wait_for_line(con, r"this line is never printed", timeout=3)
    finally:
        runner.off()
    assert time.monotonic() - t0 < 40


@pytest.mark.needs("console", "power_cycle", "virtual_time")
def test_after_a_power_cycle_the_next_boot_appends_to_the_journal(runner, tmp_path):
    j = str(tmp_path / "j")
    args = ["--config", FAULTS + "config.json", "--scenario", FAULTS + "estop_press.json", "--journal", j]
    con = runner.start(args)
    try:
        assert con.wait(60) == 0
        runner.cycle()  # a second boot over the same journal
        assert runner.console.wait(60) == 0
    finally:
        runner.off()
    from firmware.store.journal import Journal

    recs = [r for _s, r in Journal(j).records()]
    assert sum(1 for r in recs if r.get("k") == "boot") == 2
    assert sum(1 for r in recs if r.get("k") == "trip") == 2
