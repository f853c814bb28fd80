"""Health is "committed and unchanged for the healthy time", judged from
the device's own ``update status``: run here against real roots (the
status command is run with sh, as sshd would run it)."""

import subprocess
import sys
import threading
import time

import pytest

from edgefw.rollout import health as H
from edgefw.rollout.inventory import Device
from firmware.linux import update as U
from tests.conftest import ROOT
from tests.test_update import FAST, kit, new_root, quiet  # noqa: F401  (kit is a fixture)


class LocalStatus:
    """The SSH source's command, run by sh on this machine."""

    def __init__(self):
        self.down = False

    def observe(self, device):
        if self.down:
            raise H.Unreachable("link down")
        r = subprocess.run(["sh", "-c", H.status_command(device)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return H.parse_status(r.stdout)


def _dev(root):
    return Device(id="d", board="rpi4", address="127.0.0.1", python=sys.executable, root=root)


def test_nothing_installed_is_not_committed(tmp_path, kit):  # noqa: F811
    dev = _dev(new_root(tmp_path, kit))
    obs = LocalStatus().observe(dev)
    assert obs["version"] is None
    assert H.judge(obs, "1.0.0") == ("failed", "the device runs None (None), not 1.0.0 committed")


def test_committed_and_unchanged_for_the_healthy_time_is_healthy(tmp_path, kit):  # noqa: F811
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    src = LocalStatus()
    obs = src.observe(_dev(root))
    assert (obs["version"], obs["state"], obs["open"], obs["problems"]) == ("1.0.0", "committed", False, [])
    t0 = time.monotonic()
    assert H.watch(_dev(root), "1.0.0", 1.0, t0 + 30, [src], poll_s=0.2) == ("healthy", None)
    assert time.monotonic() - t0 >= 1.0
    # the wrong version is never healthy, however long it is held
    state, why = H.watch(_dev(root), "2.0.0", 0.0, time.monotonic() + 30, [src], poll_s=0.2)
    assert state == "failed" and "runs 1.0.0 (committed), not 2.0.0" in why


def test_a_device_rolled_back_by_its_installer_failed_with_its_reason(tmp_path, kit):  # noqa: F811
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    assert U.install(root, kit["v3bad"], progress=quiet, **FAST) == U.ROLLED_BACK
    state, why = H.watch(_dev(root), "3.0.0", 0.0, time.monotonic() + 30, [LocalStatus()], poll_s=0.2)
    assert state == "failed" and why.startswith("the device rolled-back 3.0.0: crash loop"), why


def test_a_change_within_the_healthy_time_fails(tmp_path, kit):  # noqa: F811
    # committed at first, then another install switches the slot: the
    # commit is not held for the healthy time
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    other = kit["make"]("v1again.edgefw", "1.0.0")
    argv = [sys.executable, "-m", "firmware.linux", "update", "install", "--rootfs", root, "--timeout", "10", "--settle", "0.2", other]
    threading.Timer(0.5, lambda: subprocess.run(argv, capture_output=True, timeout=60, cwd=ROOT)).start()
    state, why = H.watch(_dev(root), "1.0.0", 4.0, time.monotonic() + 30, [LocalStatus()], poll_s=0.2)
    assert state == "failed" and why.startswith("changed while being held healthy"), why


def test_the_stage_deadline_ends_the_wait(tmp_path, kit):  # noqa: F811
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    state, why = H.watch(_dev(root), "1.0.0", 10.0, time.monotonic() + 1.0, [LocalStatus()], poll_s=0.2)
    assert state == "deadline" and why.startswith("committed for only"), why


def test_unreachable_is_reported_or_waited_for(tmp_path, kit):  # noqa: F811
    root = new_root(tmp_path, kit)
    assert U.install(root, kit["v1"], progress=quiet, **FAST) == U.OK
    src = LocalStatus()
    src.down = True
    assert H.watch(_dev(root), "1.0.0", 0.5, time.monotonic() + 30, [src], poll_s=0.2)[0] == "unreachable"
    threading.Timer(1.0, lambda: setattr(src, "down", False)).start()
    t0 = time.monotonic()
    assert H.watch(_dev(root), "1.0.0", 0.5, t0 + 30, [src], wait_offline=True, poll_s=0.2) == ("healthy", None)
    assert time.monotonic() - t0 >= 1.0
    src.down = True
    state, why = H.watch(_dev(root), "1.0.0", 0.5, time.monotonic() + 1.0, [src], wait_offline=True, poll_s=0.2)
    assert state == "unreachable" and "stage deadline" in why


def test_a_systemd_unit_that_restarted_or_is_not_active_fails():
    base = {"slot": "a", "version": "2.0.0", "state": "committed", "open": False, "last": {"t": 5}, "problems": []}
    up = dict(base, unit={"ActiveState": "active", "MainPID": "10", "NRestarts": "0"})
    assert H.judge(up, "2.0.0") == ("committed", None)
    assert H.judge(dict(base, unit={"ActiveState": "activating"}), "2.0.0")[0] == "failed"
    assert H.fingerprint(up) != H.fingerprint(dict(base, unit={"ActiveState": "active", "MainPID": "11", "NRestarts": "1"}))
    assert H.judge(dict(base, installing=True), "2.0.0")[0] == "pending"
    assert H.judge(dict(base, open=True, txn={"phase": "trying"}), "2.0.0") == ("failed", "an interrupted update is open on the device (phase trying)")


def test_a_running_installer_is_seen_and_the_status_shell_is_not(tmp_path, kit):  # noqa: F811
    root = new_root(tmp_path, kit)
    dev = _dev(root)
    assert LocalStatus().observe(dev)["installing"] is False
    # a process whose command line is an installer's on this root
    p = subprocess.Popen(["bash", "-c", "exec -a 'python3 -m firmware.linux update install --rootfs %s --timeout 9' sleep 30" % root])
    try:
        time.sleep(0.3)
        assert LocalStatus().observe(dev)["installing"] is True
        assert LocalStatus().observe(_dev(root + "x"))["installing"] is False  # another root's installer is not this one's
    finally:
        p.kill()
        p.wait(timeout=10)


@pytest.mark.parametrize("root,app", [("/", "/opt/edgefw/current/app"), ("/srv/dev1/", "/srv/dev1/opt/edgefw/current/app")])
def test_the_status_command_runs_the_running_slots_own_code(root, app):
    cmd = H.status_command(Device(id="d", board="rpi4", address="x", root=root))
    assert "PYTHONPATH=%s python3 -m firmware.linux update status" % app in cmd


def test_what_reached_ingest_is_a_second_source(tmp_path):
    """``[health] ingest_db``: the device's boot events as ingest stored
    them (``attestations``), judged on a fake clock while the test plays
    the device: no boot event, then the old image, then the new one
    (committed), then a trip after it (failed); and a second boot during
    the healthy time (a restart: failed)."""
    import hashlib
    import os

    from edgefw.ingest.server import Ingest
    from firmware import cbor
    from firmware.uplink.seal import Sealer

    key = bytes(range(32))
    new, old = hashlib.sha256(b"v2").hexdigest(), hashlib.sha256(b"v1").hexdigest()
    ing = Ingest(tmp_path / "i.sqlite", {"d": key}, log=None)
    seq = [0]

    def send(*recs):
        first = seq[0] + 1
        body = []
        for r in recs:
            seq[0] += 1
            body.append(cbor.dumps(dict(r, seq=seq[0])))
        m = {"dev": "d", "q": 0, "first": first, "last": seq[0], "id": os.urandom(8), "boot": b"b" * 8, "utc_ms": None, "mono_ms": 1, "recs": body}
        assert ing.handle(Sealer(key, "d").seal(0, first, seq[0], cbor.dumps(m)), "d")

    src = H.IngestBoots(str(tmp_path / "i.sqlite"), new)
    dev = Device(id="d", board="esp32_devkitc", address="-")
    assert src.judge(src.observe(dev), "2.0.0")[0] == "pending"
    send({"k": "boot", "boot": b"one", "fw": old})
    assert src.judge(src.observe(dev), "2.0.0") == ("pending", "its last boot event at ingest names image %s, not %s" % (old[:16], new[:16]))
    send({"k": "boot", "boot": b"two", "fw": new})
    assert src.judge(src.observe(dev), "2.0.0") == ("committed", None)

    # held healthy for 10 s on a fake clock: the device's events arrive
    # while it is held
    def run(events):
        t = [0.0]
        plan = list(events)

        def sleep(dt):
            t[0] += dt
            while plan and plan[0][0] <= t[0]:
                send(*plan.pop(0)[1])

        return H.watch(dev, "2.0.0", 10.0, 60.0, [src], clock=lambda: t[0], sleep=sleep, poll_s=1.0)

    assert run([]) == ("healthy", None)
    result, why = run([(3.0, [{"k": "boot", "boot": b"three", "fw": new}])])
    assert result == "failed" and "changed while being held healthy" in why
    result, why = run([(2.0, [{"k": "trip", "causes": [[1, "vib high"]]}])])
    assert result == "failed" and "1 trips reached ingest" in why
    # an unreadable database is the device's status being unreachable
    with pytest.raises(H.Unreachable):
        H.IngestBoots(str(tmp_path / "absent.sqlite"), new).observe(dev)
