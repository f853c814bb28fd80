"""The plan run by ansible-playbook against four namespace devices
(tests/helpers/netns_fleet.py): stages as plays with serial and
max_fail_percentage, the role's health tasks, an unreachable device
made a failure, a failing stage stopped and rolled back."""

import os
import shutil
import sys
import time

import pytest

from edgefw.deploy import bundle as DB
from edgefw.rollout import ansible as A
from edgefw.rollout import engine as E
from edgefw.rollout import plan as P
from firmware.linux import update as U
from tests.helpers import netns_fleet
from tests.test_rollout_fleet import FLAKY, versions
from tests.test_update import FAST, READY, quiet

N = 4


def _ansible_playbook():
    return shutil.which("ansible-playbook") or (os.path.exists(os.path.join(os.path.dirname(sys.executable), "ansible-playbook")) or None)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    why = netns_fleet.missing()
    if why:
        pytest.skip(why)
    if not _ansible_playbook():
        pytest.skip("no ansible-playbook (pip install ansible-core)")
    d = tmp_path_factory.mktemp("afleet")
    DB.keygen(str(d / "rel"))
    (d / "keys").mkdir()
    os.link(d / "rel.pub", d / "keys" / "rel.pub")
    b = {}
    for v, health in (("1.0.0", READY), ("2.0.0", READY), ("3.0.0", FLAKY), ("4.0.0", READY)):
        b[v] = str(d / ("v%s.edgefw" % v))
        DB.build("rpi4", str(d / "rel.key"), b[v], version=v, health=health)
    with netns_fleet.Fleet(d, N, str(d / "keys")) as f:
        for dev in f.devices:
            assert U.install(dev["root"], b["1.0.0"], progress=quiet, **FAST) == U.OK
        f.bundles = b
        f.inv = f.inventory(d / "fleet.toml", sys.executable)
        yield f


def _plan(f, name, version, stages, max_failed, rollback=None, offline="fail"):
    p = f.base / (name + ".toml")
    p.write_text(
        'engine = "ansible"\nbundle = "%s"\nrollback_bundles = [%s]\ninventory = "%s"\nstages = %s\n'
        '[stage_defaults]\ndeadline_s = 300\nhealthy_s = 1\nmax_failed = "%s"\nmin_sample = 1\n'
        '[install]\ntimeout_s = 15\nsettle_s = 0.2\nmax_restarts = 1\n[offline]\npolicy = "%s"\n'
        % (f.bundles[version], '"%s"' % f.bundles[rollback] if rollback else "", f.inv, stages, max_failed, offline)
    )
    return P.load(str(p))


def test_dry_run_describes_the_plays(fleet):
    plan = _plan(fleet, "a0", "2.0.0", '[1, "100%"]', "0%")
    text = A.describe(plan, plan.devices())
    assert "play 1: hosts stage_1, serial 1, max_fail_percentage 0" in text
    assert "play 2: hosts stage_2, serial 3, max_fail_percentage 0" in text
    plays = A.playbook(plan, P.layout(plan, plan.devices()), "2.0.0", "installer.tar")
    assert [p["serial"] for p in plays] == [1, 3] and [p["hosts"] for p in plays] == ["stage_1", "stage_2"]


def test_ansible_rolls_out_in_stages(fleet):
    plan = _plan(fleet, "a2", "2.0.0", '[1, "100%"]', "0%")
    msgs = []
    t0 = time.monotonic()
    assert A.run(plan, plan.devices(), out=msgs.append) == E.DONE, "\n".join(msgs)
    print("\nansible, 4 devices in 2 stages: %.1f s" % (time.monotonic() - t0))
    assert versions(fleet) == ["2.0.0"] * N
    log = open(os.path.join(os.path.splitext(plan.path)[0] + ".rollout", "ansible", "rollout.log")).read()
    assert log.index("PLAY [edgefw 2.0.0, stage 1 of 2]") < log.index("PLAY [edgefw 2.0.0, stage 2 of 2]")


def test_a_failing_stage_stops_the_playbook_and_is_rolled_back(fleet):
    # stages 1, 1, 2 devices; n02 (stage 3) fails its self-test: 1 of 2 = 50 % > 40 %
    open(os.path.join(fleet.devices[2]["root"], "etc", "edgefw", "flaky"), "w").close()
    try:
        plan = _plan(fleet, "a3", "3.0.0", '[1, 2, "100%"]', "40%", rollback="2.0.0")
        msgs = []
        code = A.run(plan, plan.devices(), out=msgs.append)
    finally:
        os.unlink(os.path.join(fleet.devices[2]["root"], "etc", "edgefw", "flaky"))
    text = "\n".join(msgs)
    assert code == E.STOPPED, text
    assert "STOPPED at stage 3" in text
    line = next(m for m in msgs if " n02 " in m and "failed" in m)
    assert "crash loop" in line, line  # the device's own reason for rolling back
    for i in (0, 1, 3):
        assert any(m.split()[:2] == ["n%02d" % i, "rolled-back"] and m.endswith("to 2.0.0") for m in msgs), text
    assert versions(fleet) == ["2.0.0"] * N


def test_exactly_at_the_threshold_goes_on_and_an_unreachable_device_counts_as_failed(fleet):
    # one stage of 4, 25 %: the one unreachable device is 1 of 4 = 25 %, equal: goes on
    fleet.link(3, up=False)
    try:
        plan = _plan(fleet, "a4", "4.0.0", '["100%"]', "25%")
        msgs = []
        code = A.run(plan, plan.devices(), out=msgs.append)
    finally:
        fleet.link(3, up=True)
    text = "\n".join(msgs)
    assert code == E.DONE, text
    assert any(" n03 " in m and "failed" in m and "unreachable" in m for m in msgs), text
    assert versions(fleet) == ["4.0.0"] * 3 + ["2.0.0"]
