"""The rollout plan's checks, the stage arithmetic (properties) and the
dry run. Pure and fast: no device, no SSH."""

import json
import math
import os
import textwrap
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from edgefw.rollout import cli
from edgefw.rollout import plan as P
from edgefw.rollout import stages as ST

INVENTORY = """
[ssh]
user = "root"
options = ["StrictHostKeyChecking=no"]
%s
"""


def _inventory(tmp_path, n=20):
    rows = "".join(
        '\n[[device]]\nid = "n%02d"\nboard = "%s"\naddress = "10.0.0.%d"\nlabels = {site = "%s"}\n' % (i, "rpi4" if i % 5 else "rpi5", i + 1, "north" if i < 12 else "south")
        for i in range(n)
    )
    p = tmp_path / "fleet.toml"
    p.write_text(INVENTORY % rows)
    return p


def _plan(tmp_path, body):
    _inventory(tmp_path)
    p = tmp_path / "plan.toml"
    p.write_text(textwrap.dedent(body))
    return str(p)


GOOD = """
bundle = "v2.edgefw"
rollback_bundles = ["v1.edgefw"]
inventory = "fleet.toml"
stages = [1, "10%", "50%", {size = "100%", healthy_s = 30}]
[targets]
boards = ["rpi4"]
[stage_defaults]
deadline_s = 600
healthy_s = 10
max_failed = "10%"
min_sample = 5
[offline]
policy = "wait"
wait_s = 60
"""


def test_a_good_plan_loads_with_paths_from_its_directory(tmp_path):
    p = P.load(_plan(tmp_path, GOOD))
    assert p.bundle == str(tmp_path / "v2.edgefw") and p.inventory == str(tmp_path / "fleet.toml")
    assert [s.healthy_s for s in p.stages] == [10, 10, 10, 30]
    assert p.stages[0].max_failed == Fraction(10) and p.offline == "wait" and p.offline_wait_s == 60
    devs = p.devices()
    assert len(devs) == 16 and all(d.board == "rpi4" for d in devs)


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda s: "colour = 'red'\n" + s, "unknown field colour"),
        (lambda s: s.replace("[targets]", "[targets]\nsite = 'x'"), "unknown field targets.site"),
        (lambda s: s.replace("min_sample = 5", "min_sample = 5\nmin_samples = 3"), "unknown field stage_defaults.min_samples"),
        (lambda s: s.replace("healthy_s = 30}", "healthy = 30}"), "unknown field stages[3].healthy"),
        (lambda s: s.replace('bundle = "v2.edgefw"\n', ""), "bundle is required"),
        (lambda s: s.replace('"10%"', '"ten%"', 1), "stages[1]"),
        (lambda s: s.replace('"50%"', '"150%"'), "stages[2]"),
        (lambda s: s.replace("[1,", "[0,"), "stages[0]"),
        (lambda s: s.replace('max_failed = "10%"', 'max_failed = "110%"'), "max_failed"),
        (lambda s: s.replace("min_sample = 5", "min_sample = 0"), "min_sample must be at least 1"),
        (lambda s: s.replace("healthy_s = 10", "healthy_s = 600"), "healthy_s (600) must be shorter than deadline_s"),
        (lambda s: s.replace('policy = "wait"', 'policy = "retry"'), "offline.policy must be one of fail, wait, skip"),
        (lambda s: s.replace("wait_s = 60", ""), "offline.wait_s is required"),
        (lambda s: s.replace('policy = "wait"', 'policy = "skip"'), "offline.wait_s is only allowed"),
        (lambda s: s.replace("deadline_s = 600", 'deadline_s = "10m"'), "stage_defaults.deadline_s must be a number"),
        (lambda s: s.replace("stages = [1", "stages = [true"), "stages[0]"),
        (lambda s: s + "[health]\ningest_db = 'nowhere/i.sqlite'\n", "health.ingest_db"),
        (lambda s: s + "[health]\ningest_db = 'postgresql://h:99999/x'\n", "health.ingest_db"),
        (lambda s: s + "[health]\ningest = 'i.sqlite'\n", "unknown field health.ingest"),
    ],
)
def test_a_bad_plan_is_refused_naming_the_file_and_field(tmp_path, edit, message):
    path = _plan(tmp_path, edit(GOOD))
    with pytest.raises(P.PlanError) as e:
        P.load(path)
    assert str(e.value).startswith(path + ": ") and message in str(e.value), str(e.value)


def test_the_ingest_health_source_is_read_from_the_plans_directory(tmp_path):
    p = P.load(_plan(tmp_path, GOOD + "[health]\ningest_db = 'sqlite:i.sqlite'\n"))
    assert p.ingest_db == str(tmp_path / "i.sqlite")
    assert P.load(_plan(tmp_path, GOOD)).ingest_db is None


def test_json_plans_are_read_too(tmp_path):
    _inventory(tmp_path)
    p = tmp_path / "plan.json"
    p.write_text(json.dumps({"bundle": "b.edgefw", "inventory": "fleet.toml", "stages": ["100%"], "offline": {"policy": "skip"}}))
    assert P.load(str(p)).offline == "skip"
    p.write_text(json.dumps({"bundle": "b.edgefw", "inventory": "fleet.toml", "stages": ["100%"], "extra": 1}))
    with pytest.raises(P.PlanError, match="unknown field extra"):
        P.load(str(p))


def test_a_bad_inventory_names_its_file_and_field(tmp_path):
    path = _plan(tmp_path, GOOD)
    (tmp_path / "fleet.toml").write_text('[[device]]\nid = "a"\nboard = "rpi4"\naddress = "x"\nprot = 22\n')
    with pytest.raises(ValueError, match=r"fleet.toml: unknown field device\[0\].prot"):
        P.load(path).devices()


# --- stage arithmetic: properties --------------------------------------------------
SIZES = hs.one_of(
    hs.integers(1, 500),
    hs.fractions(min_value=Fraction(1, 100), max_value=100, max_denominator=100).map(lambda f: "%s%%" % f),
)


@settings(max_examples=300, deadline=None)
@given(n=hs.integers(1, 2000), sizes=hs.lists(SIZES, min_size=1, max_size=6))
def test_cumulative_stages_grow_never_exceed_the_fleet_and_start_at_one(n, sizes):
    cum = ST.cumulative(n, sizes)
    counts = [c for _, c in cum]
    assert counts and counts[0] >= 1
    assert all(a < b for a, b in zip(counts, counts[1:], strict=False))
    assert counts[-1] <= n
    assert sum(b for _, b in ST.batches(n, sizes)) == counts[-1]
    # every stage covers at least what it asks for (capped by the fleet),
    # and a stage is dropped only when the ones before already cover it
    got = dict(cum)
    best = 0
    for i, s in enumerate(sizes):
        kind, v = ST.parse_size(s)
        want = min(n, max(1, v if kind == "count" else math.ceil(v * n / 100)))
        best = max(best, want)
        if i in got:
            assert got[i] == best
        else:
            assert best <= max([c for j, c in cum if j < i] or [0])


@given(n=hs.integers(1, 5000), p=hs.fractions(min_value=Fraction(1, 100), max_value=100, max_denominator=1000))
def test_a_percentage_rounds_up_never_below_one(n, p):
    (_, c), = ST.cumulative(n, ["%s%%" % p])
    assert c >= 1 and c * 100 >= p * n and (c - 1) * 100 < p * n or c == 1


def test_stage_examples():
    assert ST.cumulative(20, [1, "10%", "50%", "100%"]) == [(0, 1), (1, 2), (2, 10), (3, 20)]
    assert ST.batches(15, [1, "10%", "100%"]) == [(0, 1), (1, 1), (2, 13)]  # 10 % of 15 rounds up to 2
    assert ST.batches(3, [1, "10%", "50%", "100%"]) == [(0, 1), (2, 1), (3, 1)]  # 10 % of 3 is the canary again
    assert ST.batches(5, [10]) == [(0, 5)]  # a count larger than the fleet is the fleet
    assert ST.batches(50, ["50%"]) == [(0, 25)]  # a plan may stop short of the fleet


@given(judged=hs.integers(0, 500), p=hs.fractions(min_value=0, max_value=100, max_denominator=100), m=hs.integers(1, 100), data=hs.data())
def test_threshold_is_exceeded_not_equalled(judged, p, m, data):
    failed = data.draw(hs.integers(0, judged))
    denom = max(judged, m)
    assert ST.exceeded(failed, judged, p, m) == (Fraction(failed, denom) > p / 100)
    # exactly at the threshold (when a whole count lands there) goes on; one more stops
    at = p * denom / 100
    if at.denominator == 1 and at <= judged:
        assert not ST.exceeded(int(at), judged, p, m)
        if at + 1 <= judged:
            assert ST.exceeded(int(at) + 1, judged, p, m)


def test_threshold_examples_both_sides():
    assert not ST.exceeded(1, 10, 10, 1)  # 10 % of 10 at a 10 % threshold: equal, goes on
    assert ST.exceeded(2, 10, 10, 1)  # 20 %
    assert not ST.exceeded(0, 0, 0, 1)  # nothing judged yet
    assert ST.exceeded(1, 1, 0, 1)  # a 0 % threshold: any failure stops


def test_minimum_sample_is_the_smallest_denominator():
    # one failure in a canary of 1: 100 % alone, 10 % against a sample of 10
    assert ST.exceeded(1, 1, 10, 1)
    assert not ST.exceeded(1, 1, 10, 10)
    assert ST.exceeded(2, 2, 10, 10)  # two of the ten-sample: 20 %
    # past the minimum the real count is the denominator
    assert not ST.exceeded(2, 20, 10, 10) and ST.exceeded(3, 20, 10, 10)
    with pytest.raises(ST.StageError):
        ST.exceeded(3, 2, 10, 1)


@given(b=hs.integers(1, 300), p=hs.fractions(min_value=0, max_value=100, max_denominator=100), m=hs.integers(1, 50), data=hs.data())
def test_the_ansible_percentage_stops_where_the_rule_stops(b, p, m, data):
    f = data.draw(hs.integers(0, b))
    mfp = ST.ansible_percentage(p, b, m)
    assert (Fraction(f, b) * 100 > mfp) == ST.exceeded(f, b, p, m)


# --- dry run ----------------------------------------------------------------------
def test_dry_run_prints_stages_and_devices_and_changes_nothing(tmp_path, capsys):
    path = _plan(tmp_path, GOOD)
    before = sorted(os.listdir(tmp_path))
    import argparse

    ap = argparse.ArgumentParser()
    cli.add_parser(ap)
    assert cli.main(ap.parse_args(["rollout", path, "--dry-run"])) == 0
    out = capsys.readouterr().out
    assert "16 devices" in out
    lines = out.splitlines()
    stage_lines = [ln for ln in lines if ln.startswith("stage ")]
    assert len(stage_lines) == 4
    assert stage_lines[0].startswith("stage 1 (1): 1 devices, 1 of 16") and "more than 10% " in stage_lines[0] and "minimum sample 5" in stage_lines[0]
    assert stage_lines[1].startswith("stage 2 (10%): 1 devices, 2 of 16")
    assert stage_lines[2].startswith("stage 3 (50%): 6 devices, 8 of 16")
    assert stage_lines[3].startswith("stage 4 (100%): 8 devices, 16 of 16") and "healthy 30 s" in stage_lines[3]
    assert lines[lines.index(stage_lines[0]) + 1].split() == ["n01"]
    assert sorted(os.listdir(tmp_path)) == before


def test_dry_run_refuses_a_bad_plan_with_exit_1(tmp_path, capsys):
    path = _plan(tmp_path, "bogus = 1\n" + GOOD)
    import argparse

    ap = argparse.ArgumentParser()
    cli.add_parser(ap)
    assert cli.main(ap.parse_args(["rollout", path, "--dry-run"])) == 1
    assert "unknown field bogus" in capsys.readouterr().err
