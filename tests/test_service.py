"""edgefw service: the unit it writes for each Linux board, checked by
systemd's own parser (systemd-analyze verify), install/uninstall/status
under a temporary root."""

import re
import shutil
import subprocess
import sys

import pytest

import boards
from firmware.linux.service import devices, exec_line, render_unit

LINUX = [n for n in boards.KNOWN if boards.get(n).FAMILY == "linux"]


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edgefw", *args], capture_output=True, text=True, timeout=60)


def _verify(path):
    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.fail("systemd-analyze is missing: Debian's systemd package provides it (the README's test command installs it)")
    p = subprocess.run([exe, "verify", str(path)], capture_output=True, text=True, timeout=120)
    # verify exits 0 for directives it could not parse: it says so on stderr
    complaints = [ln for ln in (p.stdout + p.stderr).splitlines() if path.name in ln]
    return p.returncode, complaints


@pytest.mark.parametrize("name", LINUX)
def test_unit_per_board_passes_systemd_analyze_verify(name, tmp_path):
    p = _cli("service", "install", "--board", name, "--root", str(tmp_path), "--priority", "70", "--cpu", "1", "--metrics-port", "9105")
    assert p.returncode == 0, p.stderr
    unit = tmp_path / "etc/systemd/system/edgefw.service"
    text = unit.read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=2s",
        "Restart=on-failure",
        "User=edgefw",
        "SupplementaryGroups=gpio i2c dialout",
        "StateDirectory=edgefw",
        "ConfigurationDirectory=edgefw",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "DevicePolicy=closed",
        "CPUSchedulingPolicy=fifo",
        "CPUSchedulingPriority=70",
        "CPUAffinity=1",
        "DeviceAllow=char-gpiochip rw",
    ):
        assert line in text.splitlines(), line
    board = boards.get(name)
    allowed = re.findall(r"^DeviceAllow=(/dev/\S+) rw$", text, re.M)
    # exactly the board's buses, nothing else by path
    assert sorted(allowed) == sorted(devices(board)) and allowed
    assert "--board %s" % name in text and "--metrics-port 9105" in text
    assert (tmp_path / "etc/edgefw/edgefw.json").exists()
    rc, complaints = _verify(unit)
    assert rc == 0 and complaints == [], complaints


def test_verify_check_catches_a_bad_unit(tmp_path):
    # the check above can fail: the same unit with two broken directives
    text = render_unit(boards.get("rpi5"), exec_line(boards.get("rpi5")))
    bad = tmp_path / "edgefw.service"
    bad.write_text(text.replace("Type=notify", "Type=notifyy").replace("CPUSchedulingPolicy=fifo", "CPUSchedulingPolicy=fastest"))
    _rc, complaints = _verify(bad)
    assert len(complaints) == 2, complaints


def test_install_status_uninstall_under_a_root(tmp_path):
    root = str(tmp_path)
    assert _cli("service", "status", "--root", root).returncode == 3
    assert _cli("service", "install", "--board", "jetson_orin_nano", "--root", root).returncode == 0
    conf = tmp_path / "etc/edgefw/edgefw.json"
    conf.write_text('{"period_ms": 5}\n')
    p = _cli("service", "install", "--board", "jetson_orin_nano", "--root", root)
    assert "kept" in p.stdout and conf.read_text() == '{"period_ms": 5}\n'  # a second install keeps the config
    p = _cli("service", "status", "--root", root)
    assert p.returncode == 0 and "installed" in p.stdout
    p = _cli("service", "uninstall", "--root", root)
    assert p.returncode == 0
    assert not (tmp_path / "etc/systemd/system/edgefw.service").exists() and conf.exists()
    assert _cli("service", "status", "--root", root).returncode == 3


def test_install_refuses_non_linux_boards(tmp_path):
    p = _cli("service", "install", "--board", "sim", "--root", str(tmp_path))
    assert p.returncode == 2 and "Linux boards" in p.stderr
    assert not (tmp_path / "etc").exists()
