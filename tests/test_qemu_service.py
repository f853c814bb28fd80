"""edgefw as a systemd service on the emulated ARM64 board
(tests/helpers/qemu_systemd.py: Debian bookworm with systemd, gpio-sim
lines named as the rpi4's, i2c-stub with a BME280 and an ADXL345).

``edgefw service install`` in the guest; systemd starts it and it reports
READY; the permit stays low until a reset press; a ``kill -9`` of the
service is followed by a restart by systemd, with the permit low in
between and after (a restart never re-energizes by itself); a stopped
loop (SIGSTOP: no cycle runs, no watchdog ping) is killed by systemd's
watchdog and restarted; ``systemctl stop`` leaves the permit low.

Host packages: qemu-system-arm, gcc-aarch64-linux-gnu (the README's test
command installs them); downloads are cached under EDGEFW_QEMU_CACHE
(default ~/.cache/edgefw/qemu)."""

import json
import os
import time

import pytest

from tests.helpers import qemu_systemd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = "/usr/local/lib/edgefw-guest/board.py"
CONFIG = {
    "period_ms": 50,
    # under the unit's WatchdogSec= this feeds systemd's watchdog
    "interlock": {"watchdog_ms": 1000, "stall_ms": 2000, "max_consecutive_overruns": 20, "readback": {"enabled": True, "grace_ms": 300}},
    "record": {"journal": "/var/lib/edgefw/journal"},
}
WATCHDOG_S = 2

pytestmark = [pytest.mark.slow, pytest.mark.qemu]


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    g, _disk, vm = qemu_systemd.first_boot(tmp_path_factory.mktemp("qemu"), ROOT)
    yield g, vm
    vm.power_cut()


def board(vm, *args, timeout=60):
    return vm.json("python3 %s %s" % (BOARD, " ".join(args)), timeout)


def show(vm, *props):
    rc, out = vm.ssh("systemctl show edgefw.service -p %s" % ",".join(props))
    assert rc == 0, out
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def arm(vm):
    """Close the e-stop chain and press reset; the seconds until the
    permit came up (None: it did not within 10 s). gpio-sim turns a
    requested bias into the line's simulated pull, so the chain is closed
    again after each start of the service, which asks for a pull-up."""
    board(vm, "estop", "off")
    time.sleep(0.3)
    board(vm, "reset")
    return board(vm, "wait-permit", "1", "10")["s"]


def wait_active(vm, after_pid, timeout_s):
    """Seconds until the service is active (READY) with a main PID other
    than ``after_pid``, or None."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        s = show(vm, "ActiveState", "SubState", "MainPID")
        if s.get("ActiveState") == "active" and s.get("SubState") == "running" and s.get("MainPID") not in ("0", after_pid):
            return time.monotonic() - t0, s["MainPID"]
        time.sleep(0.3)
    return None, None


def journal_times(vm):
    """From the guest's journal (its own clock): seconds from each end of
    the service's process to the next READY, by how it ended."""
    rc, out = vm.ssh("journalctl -u edgefw --no-pager -o short-monotonic")
    ended = None
    times = {}
    for line in out.splitlines():
        if not line.startswith("["):
            continue
        t = float(line[1 : line.index("]")])
        if "Main process exited" in line:
            ended = (t, line.split("status=", 1)[1].split()[0].rstrip(".") if "status=" in line else "?")
        elif "Watchdog timeout" in line:
            times["watchdog_fired_after_stop_s"] = t
        elif "Started edgefw.service" in line and ended is not None:
            times["exit_%s_to_ready_s" % ended[1].replace("/", "_")] = round(t - ended[0], 2)
            ended = None
    return times


def test_service_ready_restart_watchdog(guest, capsys):
    g, vm = guest
    figures = {"boot_to_ssh_s": vm.boot_s}
    rc, out = vm.ssh("mkdir -p /etc/edgefw && echo %s > /etc/edgefw/edgefw.json" % json.dumps(json.dumps(CONFIG)))
    assert rc == 0, out
    t0 = time.monotonic()
    rc, out = vm.ssh("edgefw service install --board rpi4 --watchdog-s %d" % WATCHDOG_S, timeout=180)
    assert rc == 0, out + vm.console()
    figures["install_to_ready_s"] = round(time.monotonic() - t0, 1)
    # Type=notify: "active" only once edgefw sent READY=1 (after its self-test and first cycle)
    s = show(vm, "ActiveState", "SubState", "MainPID", "Type", "WatchdogUSec", "NRestarts", "StatusText")
    log = lambda: vm.ssh("systemctl status edgefw --no-pager; journalctl -u edgefw --no-pager -o cat | grep -v \"OK(\\|cycles/s\" | tail -40; journalctl -u edgefw --no-pager -o cat | tail -5")[1]  # noqa: E731
    if (s["ActiveState"], s["SubState"], s["Type"], s["NRestarts"]) != ("active", "running", "notify", "0"):
        pytest.fail("not started once and READY: %s\n%s" % (s, log()))
    assert s["WatchdogUSec"] == "%ds" % WATCHDOG_S, s
    rc, out = vm.ssh("ps -o user= -p %s" % s["MainPID"])
    assert out.strip() == "edgefw", out
    time.sleep(1)
    assert board(vm, "permit")["permit"] is False, "the permit must wait for a reset press"
    assert arm(vm) is not None, log()

    # kill -9: systemd restarts it (Restart=on-failure); the permit drops
    # when the process dies and stays low until the next reset press
    pid = s["MainPID"]
    # the watcher first (python starts slowly under emulation), then the kill
    rc, out = vm.ssh("rm -f /tmp/w.on; (python3 %s watch 12 /tmp/w.on > /tmp/watch.json 2>&1 &); while [ ! -e /tmp/w.on ]; do sleep 0.1; done; kill -9 %s" % (BOARD, pid))
    assert rc == 0, out
    dt, pid2 = wait_active(vm, pid, 60)
    assert dt is not None, log()
    time.sleep(max(0.0, 13 - dt))
    watch = json.loads(vm.ssh("cat /tmp/watch.json")[1])
    if not (watch["changes"][0][1] is True and [c[1] for c in watch["changes"][1:]] == [False]):
        pytest.fail("the permit around kill -9: %s\n%s" % (watch, log()))
    assert board(vm, "permit")["permit"] is False, "a restarted service re-energized without a reset"
    assert int(show(vm, "NRestarts")["NRestarts"]) == int(s["NRestarts"]) + 1
    assert arm(vm) is not None, log()

    # a stopped loop: no cycle and no watchdog ping; systemd's watchdog
    # aborts it (then kills it: a stopped process cannot take SIGABRT)
    rc, out = vm.ssh("kill -STOP %s; cut -d' ' -f1 /proc/uptime" % pid2)
    stopped_at = float(out.split()[-1])
    assert rc == 0, out
    dt, pid3 = wait_active(vm, pid2, 90)
    assert dt is not None, log()
    rc, log = vm.ssh("journalctl -u edgefw --no-pager -o cat")
    assert "Watchdog timeout" in log, log[-3000:]
    assert board(vm, "permit")["permit"] is False

    # an orderly stop: STOPPING, outputs safe, no restart
    assert arm(vm) is not None, log()
    rc, out = vm.ssh("systemctl stop edgefw", timeout=60)
    assert rc == 0, out
    assert board(vm, "permit")["permit"] is False
    s = show(vm, "ActiveState", "Result")
    assert s["ActiveState"] in ("inactive", "failed") and s["Result"] in ("success", "exit-code"), s
    figures.update(journal_times(vm))
    if "watchdog_fired_after_stop_s" in figures:
        figures["watchdog_fired_after_stop_s"] = round(figures["watchdog_fired_after_stop_s"] - stopped_at, 2)
    with capsys.disabled():
        print("\nqemu systemd guest: %s; prepare %s" % (json.dumps(figures), json.dumps(g.times)))
