"""Rollouts over a fleet on this machine: 20 Linux "devices", each its
own network namespace with its own sshd and root directory
(tests/helpers/netns_fleet.py). The tests run in order on one fleet:

1. 2.0.0 in stages [1, 10%, 50%, 100%]; the rollout process is killed
   (SIGKILL, with its ssh children) in stage 3 and run again: it resumes,
   the earlier stages are not installed again, a third run does nothing.
2. 3.0.0, whose self-test fails on three devices: stage 2 lands exactly
   on the threshold and goes on, stage 3 exceeds it; the rollout stops,
   stage 4 is never touched, every device updated is back on 2.0.0.
3. 4.0.0 with two devices' links down mid-rollout under the "wait"
   policy: one comes back in time and is updated, the other is counted
   failed, below the threshold.
"""

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from edgefw.deploy import bundle as DB
from edgefw.rollout import engine as E
from edgefw.rollout import plan as P
from edgefw.rollout import state as S
from firmware.linux import update as U
from tests.conftest import ROOT
from tests.helpers import netns_fleet
from tests.test_update import FAST, READY, quiet

N = 20
# fails its self-test where the device's root holds etc/edgefw/flaky
FLAKY = ["{python}", "-c", "import os, sys; f = os.path.join(os.environ['EDGEFW_ROOT'], 'etc/edgefw/flaky'); sys.exit(1) if os.path.exists(f) else print('READY', flush=True)"]
TIMES = {}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    why = netns_fleet.missing()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("fleet")
    DB.keygen(str(d / "rel"))
    (d / "keys").mkdir()
    os.link(d / "rel.pub", d / "keys" / "rel.pub")
    b = {}
    for v, health in (("1.0.0", READY), ("2.0.0", READY), ("3.0.0", FLAKY), ("4.0.0", READY)):
        b[v] = str(d / ("v%s.edgefw" % v))
        DB.build("rpi4", str(d / "rel.key"), b[v], version=v, health=health)
    t0 = time.monotonic()
    with netns_fleet.Fleet(d, N, str(d / "keys")) as f:
        TIMES["fleet up"] = time.monotonic() - t0
        # the fleet as it was before any rollout: 1.0.0 everywhere
        for dev in f.devices:
            assert U.install(dev["root"], b["1.0.0"], progress=quiet, **FAST) == U.OK
        f.bundles = b
        f.inv = f.inventory(d / "fleet.toml", sys.executable)
        yield f
    print("\ntimings (s): " + ", ".join("%s %.1f" % kv for kv in TIMES.items()))


def _plan(f, name, version, extra=""):
    p = f.base / (name + ".toml")
    p.write_text(
        'bundle = "%s"\nrollback_bundles = [%s]\ninventory = "%s"\nstages = [1, "10%%", "50%%", "100%%"]\nparallel = 10\n%s\n'
        "[stage_defaults]\ndeadline_s = 150\nhealthy_s = 1\nmax_failed = \"20%%\"\nmin_sample = 5\n"
        "[install]\ntimeout_s = 15\nsettle_s = 0.2\nmax_restarts = 1\n"
        % (f.bundles[version], ", ".join('"%s"' % b for v, b in sorted(f.bundles.items()) if v < version), f.inv, extra)
        + ("" if "[offline]" in extra else "[offline]\npolicy = \"fail\"\n")
    )
    return str(p)


def versions(f):
    out = []
    for dev in f.devices:
        lay = U.Layout(dev["root"])
        cur = U.current_slot(lay)
        out.append(U.slot_manifest(lay, cur)["version"] if cur else None)
    return out


def copies(state_dir, dev_id):
    """How many times the bundle was copied to a device (its log)."""
    try:
        with open(os.path.join(state_dir, "logs", dev_id + ".log")) as fh:
            return sum(1 for ln in fh if " step copy " in ln)
    except FileNotFoundError:
        return 0


def _cli(plan, *more):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "edgefw", "fleet", "rollout", plan] + list(more), cwd=str(ROOT), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)


def test_staged_rollout_killed_in_stage_3_resumes(fleet):
    plan = _plan(fleet, "p2", "2.0.0")
    sd = S.default_dir(plan)
    t0 = time.monotonic()
    p = _cli(plan)
    killed_at = None
    deadline = time.monotonic() + 200
    try:
        while time.monotonic() < deadline and p.poll() is None:
            doc = S.read(sd)
            if doc and doc["stages_done"] == 2 and any(r["stage"] == 2 and r["state"] == "installing" for r in doc["devices"].values()):
                time.sleep(1.0)  # some of the stage's installs under way
                os.killpg(p.pid, signal.SIGKILL)
                killed_at = doc
                break
            time.sleep(0.1)
    finally:
        if p.poll() is None and killed_at is None:
            os.killpg(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    first = p.stdout.read()
    assert killed_at is not None, first
    TIMES["2.0.0 until killed"] = time.monotonic() - t0
    doc = S.read(sd)
    assert doc["status"] == "running" and doc["stages_done"] == 2, doc
    assert [r["state"] for r in doc["devices"].values() if r["stage"] < 2] == ["healthy", "healthy"]
    assert all(r["state"] == "pending" for r in doc["devices"].values() if r["stage"] == 3)
    t1 = time.monotonic()
    p = _cli(plan)
    out, _ = p.communicate(timeout=240)
    TIMES["2.0.0 resumed"] = time.monotonic() - t1
    assert p.returncode == 0, out
    assert "resuming the rollout of 2.0.0" in out and "stage 3/4: 8 devices" in out
    assert versions(fleet) == ["2.0.0"] * N
    doc = S.read(sd)
    assert doc["status"] == "done" and all(r["state"] == "healthy" and r["previous"] == "1.0.0" for r in doc["devices"].values())
    TIMES.update({"2.0.0 stage %d" % (int(k) + 1): v for k, v in doc["stage_times"].items()})
    # the stages judged before the kill were not installed again
    assert copies(sd, "n00") == 1 and copies(sd, "n01") == 1
    assert all(copies(sd, "n%02d" % i) == 1 for i in range(10, N))
    # stage order: no stage-4 device was touched before stage 3 was judged
    events = [__import__("json").loads(ln) for ln in open(os.path.join(sd, "events.jsonl"))]
    judged3 = next(i for i, e in enumerate(events) if e["k"] == "rollout" and e.get("stages_done") == 3)
    assert not any(e["k"] == "device" and e.get("state") == "installing" and int(e["id"][1:]) >= 10 for e in events[:judged3])
    # running it again is harmless: nothing contacted, nothing changed
    before = [copies(sd, "n%02d" % i) for i in range(N)]
    p = _cli(plan)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 0 and "already done: 20 healthy" in out, out
    assert [copies(sd, "n%02d" % i) for i in range(N)] == before


def test_a_failing_self_test_stops_the_rollout_and_rolls_back(fleet, capsys):
    for i in (1, 5, 6):  # one in stage 2, two in stage 3
        open(os.path.join(fleet.devices[i]["root"], "etc", "edgefw", "flaky"), "w").close()
    try:
        plan = P.load(_plan(fleet, "p3", "3.0.0"))
        t0 = time.monotonic()
        code = E.Rollout(plan).run()
        TIMES["3.0.0 stop + rollback"] = time.monotonic() - t0
    finally:
        for i in (1, 5, 6):
            os.unlink(os.path.join(fleet.devices[i]["root"], "etc", "edgefw", "flaky"))
    out = capsys.readouterr().out
    assert code == E.STOPPED, out
    # stage 2: 1 failed of 2 judged, against the minimum sample of 5 = 20 %: equal, goes on
    assert "stage 2: 1 failed of 2 judged (threshold 20%, minimum sample 5)" in out
    # stage 3: 3 of 10 = 30 % > 20 %: stop
    assert "STOPPED: stage 3: 3 failed of 10 judged exceeds 20%" in out
    assert "stage 4/4" not in out
    doc = S.read(S.default_dir(plan.path))
    devs = doc["devices"]
    assert doc["status"] == "rolled-back"
    for i in (1, 5, 6):
        r = devs["n%02d" % i]
        assert r["state"] == "failed" and r["reason"].startswith("the device rolled back: ") and "crash loop" in r["reason"], r
        assert r["rollback"] == "unchanged"  # its own installer had already gone back
    for i in (0, 2, 3, 4, 7, 8, 9):
        r = devs["n%02d" % i]
        assert r["state"] == "healthy" and r["rollback"] == "rolled-back" and r["rollback_reason"] == "back to 2.0.0", r
    for i in range(10, N):
        assert devs["n%02d" % i]["state"] == "pending" and devs["n%02d" % i]["rollback"] is None
        assert copies(S.default_dir(plan.path), "n%02d" % i) == 0
    assert versions(fleet) == ["2.0.0"] * N
    assert all(U.check_root(d["root"]) == [] for d in fleet.devices)


def test_devices_unreachable_mid_rollout_are_waited_for_then_failed(fleet, capsys):
    plan = P.load(_plan(fleet, "p4", "4.0.0", '[offline]\npolicy = "wait"\nwait_s = 20\n'))
    sd = S.default_dir(plan.path)
    down = (12, 17)  # both in stage 4
    stop = threading.Event()

    def cut():
        # when stage 3 starts, both links go down; one comes back 8 s later
        while not stop.is_set():
            doc = S.read(sd)
            if doc and doc["stages_done"] >= 2:
                for i in down:
                    fleet.link(i, up=False)
                time.sleep(8)
                fleet.link(down[0], up=True)
                return
            time.sleep(0.1)

    th = threading.Thread(target=cut)
    th.start()
    t0 = time.monotonic()
    try:
        code = E.Rollout(plan).run()
    finally:
        stop.set()
        th.join(timeout=60)
        for i in down:
            fleet.link(i, up=True)
    TIMES["4.0.0 with 2 links down"] = time.monotonic() - t0
    out = capsys.readouterr().out
    assert code == E.DONE, out
    doc = S.read(sd)
    came_back, gone = doc["devices"]["n%02d" % down[0]], doc["devices"]["n%02d" % down[1]]
    assert came_back["state"] == "healthy", came_back
    assert gone["state"] == "failed" and gone["reason"].startswith("unreachable for 20 s: "), gone
    # 1 failed of 20 judged: 5 %, under the threshold
    assert "stage 4: 1 failed of 20 judged" in out
    v = versions(fleet)
    assert v[down[1]] == "2.0.0" and v[: down[1]] + v[down[1] + 1 :] == ["4.0.0"] * (N - 1)
