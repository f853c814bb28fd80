"""Signed A/B updates on the emulated ARM64 board (tests/helpers/qemu_systemd.py:
Debian bookworm with systemd and an SSH server reached only through one
forwarded loopback port, QEMU's user network with restrict=on).

With ``tools/flash.py --host``: version 1 installed, version 2 committed,
a deliberately broken version 3 (its self-test always fails) rolled back
to 2 by itself with the failure reported; a bundle with a tampered file
and one signed by an unknown key refused with nothing changed. Then power
cuts (QEMU killed, no shutdown) at steps of an update, each followed by a
boot: the device comes up consistent, running the old version or the new
committed one, never a half-installed one.

Host packages: qemu-system-arm, gcc-aarch64-linux-gnu."""

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time

import pytest

from edgefw.build.contents import DEVICE_PACKAGES
from edgefw.deploy import bundle as DB
from tests.helpers import qemu_systemd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOARD = "/usr/local/lib/edgefw-guest/board.py"
CONFIG = {
    "period_ms": 50,
    "interlock": {"watchdog_ms": 1000, "stall_ms": 2000, "max_consecutive_overruns": 20, "readback": {"enabled": True, "grace_ms": 300}},
}
# a sample of the installer's steps (firmware/linux/update.STEPS): before the
# switch, right after it, after READY but before commit, after commit
CUT_AT = ("extracting", "switched", "ready", "committed")

pytestmark = [pytest.mark.slow, pytest.mark.qemu]


def _broken_tree(dst):
    """This checkout with a self-test that always fails: a version that
    installs cleanly and never becomes healthy."""
    for top in DEVICE_PACKAGES + ("pyproject.toml",):
        src = os.path.join(ROOT, top)
        if os.path.isdir(src):
            shutil.copytree(src, os.path.join(dst, top), ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst)
    p = os.path.join(dst, "firmware", "linux", "selftest.py")
    with open(p) as f:
        text = f.read()
    marker = "    bad = []\n"
    assert marker in text
    with open(p, "w") as f:
        f.write(text.replace(marker, marker + '    bad.append("broken on purpose: this build\'s self-test always fails")\n', 1))
    return dst


def _tampered(src, dst):
    """``src`` with one payload file changed after signing."""
    with tarfile.open(src, "r:") as tin, tarfile.open(dst, "w") as tout:
        for m in tin.getmembers():
            data = tin.extractfile(m).read() if m.isfile() else None
            if m.name.endswith("firmware/loop.py"):
                data = data + b"\n# changed after signing\n"
                m.size = len(data)
            tout.addfile(m, None if data is None else __import__("io").BytesIO(data))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    d = tmp_path_factory.mktemp("bundles")
    for name in ("release", "stranger"):
        DB.keygen(str(d / name))
    cfg = d / "edgefw.json"
    cfg.write_text(json.dumps(CONFIG))
    out = {}
    for v in ("1.0.0", "1.1.0"):
        out[v] = str(d / ("v%s.edgefw" % v))
        DB.build("rpi4", str(d / "release.key"), out[v], version=v, config=str(cfg))
    out["broken"] = str(d / "v1.2.0.edgefw")
    DB.build("rpi4", str(d / "release.key"), out["broken"], version="1.2.0", config=str(cfg), src=_broken_tree(str(d / "broken-src")))
    out["tampered"] = str(d / "v1.3.0-tampered.edgefw")
    DB.build("rpi4", str(d / "release.key"), str(d / "v1.3.0.edgefw"), version="1.3.0", config=str(cfg))
    _tampered(str(d / "v1.3.0.edgefw"), out["tampered"])
    out["stranger"] = str(d / "v1.4.0-stranger.edgefw")
    DB.build("rpi4", str(d / "stranger.key"), out["stranger"], version="1.4.0", config=str(cfg))
    for i, _step in enumerate(CUT_AT):
        v = "2.%d.0" % i
        out[v] = str(d / ("v%s.edgefw" % v))
        DB.build("rpi4", str(d / "release.key"), out[v], version=v, config=str(cfg))
    out["pub"] = str(d / "release.pub")
    return out


@pytest.fixture(scope="module")
def guest(tmp_path_factory):
    g, disk, vm = qemu_systemd.first_boot(tmp_path_factory.mktemp("qemu"), ROOT)
    box = {"vm": vm, "g": g, "disk": disk}
    yield box
    box["vm"].power_cut()


def flash(vm, bundle, *extra, timeout=900):
    cmd = [sys.executable, os.path.join(ROOT, "tools", "flash.py"), "--board", "rpi4", "--host", "root@127.0.0.1", "--port", str(vm.port),
           "-i", vm.guest.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
           "--timeout", "90", "--settle", "5"] + list(extra) + [bundle]
    t0 = time.monotonic()
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return p.returncode, p.stdout + p.stderr, round(time.monotonic() - t0, 1)


def running(vm):
    """(the version ``current`` points at, the service's state, its PID)."""
    rc, out = vm.ssh("python3 -c 'import json; print(json.load(open(\"/opt/edgefw/current/manifest.json\"))[\"version\"])' 2>/dev/null || echo none; "
                     "systemctl show edgefw -p ActiveState,SubState,MainPID")
    lines = out.strip().splitlines()
    version = lines[0].strip() if lines and lines[0].strip() != "none" else None
    s = dict(ln.split("=", 1) for ln in lines[1:] if "=" in ln)
    return version, s.get("ActiveState"), s.get("MainPID")


def wait_running(vm, timeout_s=120):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        v, state, pid = running(vm)
        if state == "active" and pid not in (None, "0"):
            return v, round(time.monotonic() - t0, 1)
        time.sleep(1)
    return None, None


def status(vm):
    rc, out = vm.ssh("edgefw update status")
    assert rc == 0 and "{" in out, out
    return json.loads(out[out.index("{"):])


def test_install_upgrade_rollback_refusals(guest, bundles, capsys):
    vm = guest["vm"]
    figures = {}
    rc, out, figures["install_v1_s"] = flash(vm, bundles["1.0.0"], "--add-key", bundles["pub"])
    assert rc == 0, out + vm.console()
    assert "step service-started" in out and "committed 1.0.0" in out, out
    assert running(vm)[:2] == ("1.0.0", "active")
    # the service runs the slot, under systemd, as its own user
    rc, unit = vm.ssh("systemctl cat edgefw.service")
    assert "PYTHONPATH=/opt/edgefw/current/app" in unit and "Type=notify" in unit, unit

    rc, out, figures["upgrade_v2_s"] = flash(vm, bundles["1.1.0"])
    assert rc == 0, out
    assert running(vm)[:2] == ("1.1.0", "active")
    st = status(vm)
    assert st["last"]["result"] == "committed" and st["last"]["version"] == "1.1.0", st

    rc, out, figures["broken_v3_rollback_s"] = flash(vm, bundles["broken"])
    assert rc == 3, out  # firmware/linux/update.py: rolled back
    assert "broken on purpose" in out and "rolled back to slot" in out, out
    v, state, pid_before = running(vm)
    assert (v, state) == ("1.1.0", "active"), (v, state, vm.ssh("journalctl -u edgefw -n 20 --no-pager")[1])
    st = status(vm)
    assert st["last"]["result"] == "rolled-back" and st["last"]["version"] == "1.2.0" and "broken on purpose" in st["last"]["reason"], st
    rc, before = vm.ssh("cat /var/lib/edgefw/update.json; readlink /opt/edgefw/current")

    for name, why in (("tampered", "hash"), ("stranger", "key")):
        rc, out, _ = flash(vm, bundles[name])
        assert rc == 1, out
        assert "refused" in out and why in out.lower(), out
        rc, after = vm.ssh("cat /var/lib/edgefw/update.json; readlink /opt/edgefw/current")
        assert after == before, "a refused bundle changed the device"
        assert running(vm) == ("1.1.0", "active", pid_before), "a refused bundle touched the running service"
    with capsys.disabled():
        print("\nqemu update: %s" % json.dumps(figures))


def _put(vm, local, remote):
    with open(local, "rb") as f:
        p = subprocess.run(vm.ssh_argv() + ["cat > %s" % remote], stdin=f, capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr


def test_power_cut_at_steps_of_an_update(guest, bundles, capsys):
    g, disk = guest["g"], guest["disk"]
    cuts = []
    old = running(guest["vm"])[0]
    assert old == "1.1.0", "runs after the install test"
    for i, where in enumerate(CUT_AT):
        vm = guest["vm"]
        new = "2.%d.0" % i
        _put(vm, bundles[new], "/root/next.edgefw")
        # the cut comes through the test's own seam: the installer's progress
        _put(vm, os.path.join(ROOT, "tests", "helpers", "update_fault.py"), "/root/update_fault.py")
        cmd = vm.ssh_argv() + ["python3 /root/update_fault.py --pause-at %s install --rootfs / --timeout 90 --settle 3 /root/next.edgefw 2>&1" % where]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        seen = []
        t0 = time.monotonic()
        for line in p.stdout:
            seen.append(line.rstrip())
            if line.startswith("paused at "):
                break
            assert time.monotonic() - t0 < 300, seen
        assert seen and seen[-1] == "paused at %s" % where, seen
        vm.power_cut()
        p.kill()
        p.wait(10)
        vm = guest["vm"] = g.boot(disk, ROOT)
        v, up_s = wait_running(vm)
        rc, check = vm.ssh("edgefw update status --check")
        st = json.loads(check[check.index("{"):])
        want = new if where == "committed" else old
        cuts.append({"cut_at": where, "running": v, "boot_to_ssh_s": vm.boot_s, "service_up_after_ssh_s": up_s, "last": st["last"]["result"]})
        assert rc == 0 and st["problems"] == [] and st["txn"] is None, check
        assert v == want, (where, v, want, st)
        old = v
    with capsys.disabled():
        print("\nqemu power cuts: %s" % json.dumps(cuts))


def test_a_rollout_with_the_guest_as_one_member(guest, bundles, tmp_path, capsys):
    """``edgefw fleet rollout`` over a mixed fleet: the QEMU guest (systemd,
    its own kernel, reached over SSH on a forwarded port) as the first
    stage's one device, then three network-namespace devices. The guest
    is judged healthy by its service (same main PID and restart count
    through the healthy time), not by "installed"."""
    from edgefw.rollout import engine as E
    from edgefw.rollout import plan as P
    from edgefw.rollout import state as S
    from firmware.linux import update as U
    from tests.helpers import netns_fleet
    from tests.test_update import FAST, quiet

    why = netns_fleet.missing()
    if why:
        pytest.skip(why)
    vm = guest["vm"]
    if running(vm)[0] is None:
        # run alone: the guest first gets a release and the key
        rc, out, _s = flash(vm, bundles["1.1.0"], "--add-key", bundles["pub"])
        assert rc == 0, out
    keys = tmp_path / "keys"
    keys.mkdir()
    shutil.copy(bundles["pub"], keys / "release.pub")
    new = str(tmp_path / "v3.0.0.edgefw")
    DB.build("rpi4", bundles["pub"][: -len(".pub")] + ".key", new, version="3.0.0", config=str(os.path.join(os.path.dirname(bundles["pub"]), "edgefw.json")))
    import pathlib
    import tempfile

    # ssh's control sockets live in the fleet's directory: a short path
    base = pathlib.Path(tempfile.mkdtemp(prefix="qf"))
    with netns_fleet.Fleet(base, 3, str(keys)) as f:
        for dev in f.devices:
            assert U.install(dev["root"], bundles["1.1.0"], progress=quiet, **dict(FAST, timeout=60.0)) == U.OK
        inv = tmp_path / "fleet.toml"
        f.inventory(inv, sys.executable)
        guest_row = "\n".join([
            "[[device]]", 'id = "qemu-pi"', 'board = "rpi4"', 'address = "127.0.0.1"', "port = %d" % vm.port, 'identity = "%s"' % vm.guest.key,
            'options = ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR"]', 'python = "python3"', 'root = "/"',
        ])
        text = inv.read_text()
        head, sep, rest = text.partition("\n[[device]]")
        inv.write_text(head + "\n" + guest_row + "\n" + sep + rest)
        plan = tmp_path / "mixed.toml"
        plan.write_text(
            'bundle = "%s"\nrollback_bundles = ["%s"]\ninventory = "%s"\nstages = [1, "100%%"]\nparallel = 4\n'
            '[stage_defaults]\ndeadline_s = 400\nhealthy_s = 5\nmax_failed = "0%%"\nmin_sample = 1\n'
            '[install]\ntimeout_s = 90\nsettle_s = 5\nmax_restarts = 1\n[offline]\npolicy = "fail"\n' % (new, bundles["1.1.0"], inv)
        )
        t0 = time.monotonic()
        lines = []
        code = E.Rollout(P.load(str(plan)), out=lines.append).run()
        took = round(time.monotonic() - t0, 1)
        with capsys.disabled():
            print("\nqemu rollout member: %s s for the guest and 3 namespace devices" % took)
        doc = S.read(S.default_dir(str(plan)))
        assert code == E.DONE, "\n".join(lines)
        assert {d: r["state"] for d, r in doc["devices"].items()} == {"qemu-pi": "healthy", "n00": "healthy", "n01": "healthy", "n02": "healthy"}, doc
        # the guest was the first stage, alone
        assert doc["devices"]["qemu-pi"]["stage"] == 0 and all(r["stage"] == 1 for d, r in doc["devices"].items() if d != "qemu-pi"), doc
        assert running(vm)[:2] == ("3.0.0", "active")
        for dev in f.devices:
            lay = U.Layout(dev["root"])
            assert U.slot_manifest(lay, U.current_slot(lay))["version"] == "3.0.0"
    shutil.rmtree(base, ignore_errors=True)
