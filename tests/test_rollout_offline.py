"""The offline policies "fail" and "skip" on three namespace devices,
one of them with its link down from the start, and the status command
reading the journal."""

import argparse
import os
import sys
import time

import pytest

from edgefw.deploy import bundle as DB
from edgefw.rollout import cli
from edgefw.rollout import engine as E
from edgefw.rollout import plan as P
from edgefw.rollout import state as S
from firmware.linux import update as U
from tests.helpers import netns_fleet
from tests.test_rollout_fleet import versions
from tests.test_update import FAST, READY, quiet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    why = netns_fleet.missing()
    if why:
        pytest.skip(why)
    d = tmp_path_factory.mktemp("ofleet")
    DB.keygen(str(d / "rel"))
    (d / "keys").mkdir()
    os.link(d / "rel.pub", d / "keys" / "rel.pub")
    b = {}
    for v in ("1.0.0", "2.0.0", "3.0.0"):
        b[v] = str(d / ("v%s.edgefw" % v))
        DB.build("rpi4", str(d / "rel.key"), b[v], version=v, health=READY)
    with netns_fleet.Fleet(d, 3, str(d / "keys")) as f:
        for dev in f.devices:
            assert U.install(dev["root"], b["1.0.0"], progress=quiet, **FAST) == U.OK
        f.bundles = b
        f.inv = f.inventory(d / "fleet.toml", sys.executable)
        f.link(2, up=False)
        yield f


def _plan(f, name, version, policy, max_failed):
    p = f.base / (name + ".toml")
    p.write_text(
        'bundle = "%s"\nrollback_bundles = ["%s"]\ninventory = "%s"\nstages = ["100%%"]\n'
        '[stage_defaults]\ndeadline_s = 120\nhealthy_s = 1\nmax_failed = "%s"\nmin_sample = 1\n'
        '[install]\ntimeout_s = 15\nsettle_s = 0.2\nmax_restarts = 1\n[offline]\npolicy = "%s"\n'
        % (f.bundles[version], f.bundles["1.0.0"], f.inv, max_failed, policy)
    )
    return P.load(str(p))


def test_skip_leaves_the_unreachable_device_out_of_the_count(fleet, capsys):
    # 0 % threshold: any failure would stop; the skipped device is no failure
    plan = _plan(fleet, "skip", "2.0.0", "skip", "0%")
    t0 = time.monotonic()
    assert E.Rollout(plan).run() == E.DONE
    print("\nskip policy, 3 devices: %.1f s" % (time.monotonic() - t0))
    out = capsys.readouterr().out
    assert "stage 1: 0 failed of 2 judged" in out
    doc = S.read(S.default_dir(plan.path))
    assert doc["devices"]["n02"]["state"] == "skipped" and doc["devices"]["n02"]["reason"].startswith("unreachable: ")
    assert versions(fleet) == ["2.0.0", "2.0.0", "1.0.0"]
    ap = argparse.ArgumentParser()
    cli.add_parser(ap)
    assert cli.main(ap.parse_args(["status", plan.path])) == 0
    st = capsys.readouterr().out.splitlines()
    assert st[0] == "2.0.0: done, ; 1 stages judged"
    assert st[3].split()[:4] == ["stage", "1", "n02", "skipped"]


def test_fail_counts_the_unreachable_device_and_stops(fleet, capsys):
    # 1 of 3 = 33 % > 30 %: stop, and the two updated devices go back
    plan = _plan(fleet, "fail", "3.0.0", "fail", "30%")
    assert E.Rollout(plan).run() == E.STOPPED
    out = capsys.readouterr().out
    assert "STOPPED: stage 1: 1 failed of 3 judged exceeds 30%" in out
    doc = S.read(S.default_dir(plan.path))
    r = doc["devices"]["n02"]
    assert r["state"] == "failed" and r["reason"].startswith("unreachable: ") and r["rollback"] is None  # never reached, nothing to undo
    for i in (0, 1):
        r = doc["devices"]["n%02d" % i]
        # each goes back to what it ran before this rollout, 2.0.0, whose
        # bundle this plan does not name (only 1.0.0's): reported, not guessed
        assert r["previous"] == "2.0.0" and r["rollback"] == "rollback-failed", r
        assert r["rollback_reason"] == "no rollback bundle for its previous version 2.0.0 (plan's rollback_bundles)"
    assert "2 devices could not be rolled back" in out
    assert versions(fleet) == ["3.0.0", "3.0.0", "1.0.0"]
