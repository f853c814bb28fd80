"""The hardware-facing bench suite (bench/tests) on each virtual target,
as ``pytest --lg-env bench/<target>.yaml bench/tests`` runs it, with its
JUnit XML and its report; on the virtual ESP32, a second session does
not flash again and a changed bundle is flashed."""

import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import ROOT

# what each target skips, and why (the rest must pass)
NO_POWER = {"test_after_a_power_cycle_the_next_boot_appends_to_the_journal": "lacks: power_cycle"}
NO_NET = {"test_records_are_forwarded_to_ingest_and_receipted": "lacks: network"}
NO_FIXTURE = {"test_the_fixture_trips_the_interlock_and_a_reset_rearms_it": "lacks: fixture"}
SIM_ONLY = [
    "test_the_console_reports_the_scenario_passed", "test_a_wait_for_a_line_that_never_comes_fails_in_time", "test_after_a_power_cycle_the_next_boot_appends_to_the_journal",
    "test_drivers_read_what_the_chip_holds", "test_driver_faults_are_oserrors_and_clear", "test_the_list_is_every_fault_scenario", "test_fault_scenario",
    "test_injected_values_and_faults_trip_and_a_reset_is_refused_while_hot", "test_a_starved_watchdog_drops_the_outputs",
]
SKIPS = {
    "sim": NO_FIXTURE,
    "micropython": NO_FIXTURE,
    "micropython32": dict(NO_POWER, **NO_NET, **NO_FIXTURE),
    "esp32-virtual": dict(NO_POWER, **NO_FIXTURE),
    # the rpi4 board on the Linux backends: no sim (virtual_time,
    # fault_injection), no UART loopback; the fixture test runs instead
    "rpi-qemu": dict([(n, "lacks: ") for n in SIM_ONLY], test_uart_loopback="lacks: uart_loopback"),
}
SLOW = {"esp32-virtual": pytest.mark.micropython, "rpi-qemu": pytest.mark.qemu}


def bench_run(env_file, tmp_path, *args, timeout=300):
    xml = tmp_path / "junit.xml"
    rep = tmp_path / "report"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lg-env", str(env_file), "bench/tests", "--junitxml", str(xml), "--bench-report", str(rep), "--basetemp", str(tmp_path / "t")]
    p = subprocess.run(cmd + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    return xml, rep


@pytest.mark.parametrize("target", [pytest.param(t, marks=[pytest.mark.slow, SLOW[t]]) if t in SLOW else t for t in sorted(SKIPS)])
def test_bench_suite_on(target, tmp_path):
    # the virtual ESP32's device in the test's directory: flashed afresh
    env_file = _virtual_env(tmp_path, "esp32-virtual.yaml") if target == "esp32-virtual" else "bench/%s.yaml" % target
    xml, rep = bench_run(env_file, tmp_path, timeout=900 if target == "rpi-qemu" else 300)
    suite = ET.parse(xml).getroot().find("testsuite")
    cases = suite.findall("testcase")
    # a parametrized test's cases: by the test's name
    skipped = {c.get("name").split("[")[0]: c.find("skipped").get("message") for c in cases if c.find("skipped") is not None}
    assert set(skipped) == set(SKIPS[target]), skipped
    for name, why in SKIPS[target].items():
        assert why in skipped[name]
    assert int(suite.get("failures")) == 0 and int(suite.get("errors")) == 0
    assert len(cases) >= 30
    if target == "rpi-qemu":
        # the fixture's scenario, from the board's journal
        assert [f.name for f in rep.glob("*.png")] == ["fixture_estop_and_heat.png"]
        assert (rep / "fixture_estop_and_heat.png").stat().st_size > 10000
        assert "estop" in (rep / "index.html").read_text()
        return
    # a timeline per scenario: the 13 fault scenarios and the injected one
    pngs = sorted(f.name for f in rep.glob("*.png"))
    assert len(pngs) == 14 and "estop_press.png" in pngs and "injected.png" in pngs
    assert all((rep / n).stat().st_size > 10000 for n in pngs)
    assert "estop at 1.00" in (rep / "index.html").read_text()


def _virtual_env(tmp_path, name, config=None):
    """bench/esp32-virtual.yaml with its device in ``tmp_path`` (and a
    config built into the image)."""
    text = (ROOT / "bench" / "esp32-virtual.yaml").read_text().replace("$BASE/../build/vesp32", str(tmp_path / "vesp32"))
    if config:
        text = text.replace("image: esp32_devkitc", "image: esp32_devkitc\n        config: %s" % config)
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.slow
@pytest.mark.micropython
def test_esp32_virtual_is_flashed_only_when_the_bundle_differs(tmp_path):
    def session(n, env_file):
        d = tmp_path / ("s%d" % n)
        d.mkdir()
        _xml, rep = bench_run(env_file, d, "-k", "board_the_environment or i2c_scan")
        t = json.loads((rep / "target.json").read_text())
        return t["flash"], (rep / "index.html").read_text()

    env_file = _virtual_env(tmp_path, "a.yaml")
    first, _ = session(1, env_file)
    assert first["flashed"] and first["device_had"] is None and first["copied"] > 50, first
    assert "bundle=" + first["bundle"] in first["ready"]
    # the same bundle: the device reports its hash and nothing is written
    second, html = session(2, env_file)
    assert not second["flashed"] and second["device_had"] == first["bundle"] == second["bundle"], second
    assert "already on the device" in html
    # another config built in: another bundle, flashed (only the files that differ)
    (tmp_path / "cfg.json").write_text(json.dumps({"device_id": "bench-changed"}))
    third, html = session(3, _virtual_env(tmp_path, "b.yaml", config=tmp_path / "cfg.json"))
    assert third["flashed"] and third["device_had"] == first["bundle"] != third["bundle"], third
    assert 0 < third["copied"] < first["copied"], third
    assert "flashed: %d files" % third["copied"] in html


def test_the_real_pi_example_is_an_environment_the_ssh_runtime_uses():
    from labgrid import Environment

    from bench.lab.runner import BenchTimeout

    env = Environment(str(ROOT / "bench" / "examples" / "rpi-ssh.yaml"))
    t = env.get_target("main")
    runner = t.get_driver("EdgefwRunDriver", activate=False)
    assert runner.runtime.runtime == "ssh" and runner.runtime.board == "rpi4"
    assert runner.ssh.address == "192.0.2.20" and runner.guest is None
    argv = runner.ssh_argv()
    assert argv[-1] == "pi@192.0.2.20" and "BatchMode=yes" in argv and "StrictHostKeyChecking=no" not in argv
    strategy = t.get_driver("EdgefwStrategy", activate=False)
    assert strategy.device is None  # a real board: nothing to boot
    # no such Pi here (a documentation address): the session fails in time, naming the host
    with pytest.raises(BenchTimeout, match="no SSH connection to pi@192.0.2.20"):
        strategy.transition("ready")
    env.cleanup()


def test_the_real_esp32_example_is_an_environment_the_same_code_uses():
    from labgrid import Environment

    from bench.lab.runner import BenchTimeout

    env = Environment(str(ROOT / "bench" / "examples" / "esp32-usb.yaml"))
    t = env.get_target("main")
    runner = t.get_driver("EdgefwRunDriver", activate=False)
    assert runner.runtime.runtime == "esp32" and runner.runtime.board == "esp32_devkitc"
    assert runner.port.port.startswith("/dev/serial/by-id/")
    strategy = t.get_driver("EdgefwStrategy", activate=False)
    assert strategy.device is None  # a real board: nothing to start
    # no such board here: the session fails at once, naming the port
    with pytest.raises(BenchTimeout, match="no board on /dev/serial/by-id/usb-Silicon_Labs"):
        strategy.transition("ready")
    env.cleanup()
