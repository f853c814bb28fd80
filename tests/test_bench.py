"""The hardware-facing bench suite (bench/tests) on each virtual target,
as ``pytest --lg-env bench/<target>.yaml bench/tests`` runs it, with its
JUnit XML and its report."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from tests.conftest import ROOT

# what each target skips, and why (the rest must pass)
SKIPS = {"sim": {}, "micropython": {}, "micropython32": {"test_after_a_power_cycle_the_next_boot_appends_to_the_journal": "lacks: power_cycle"}}


@pytest.mark.parametrize("target", sorted(SKIPS))
def test_bench_suite_on(target, tmp_path):
    xml = tmp_path / "junit.xml"
    rep = tmp_path / "report"
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lg-env", "bench/%s.yaml" % target, "bench/tests", "--junitxml", str(xml), "--bench-report", str(rep), "--basetemp", str(tmp_path / "t")]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout[-6000:] + p.stderr[-3000:]
    suite = ET.parse(xml).getroot().find("testsuite")
    cases = suite.findall("testcase")
    skipped = {c.get("name"): c.find("skipped").get("message") for c in cases if c.find("skipped") is not None}
    assert set(skipped) == set(SKIPS[target]), skipped
    for name, why in SKIPS[target].items():
        assert why in skipped[name]
    assert int(suite.get("failures")) == 0 and int(suite.get("errors")) == 0
    assert len(cases) >= 29
    # a timeline per scenario: the 13 fault scenarios and the injected one
    pngs = sorted(f.name for f in rep.glob("*.png"))
    assert len(pngs) == 14 and "estop_press.png" in pngs and "injected.png" in pngs
    assert all((rep / n).stat().st_size > 10000 for n in pngs)
    assert "estop at 1.00" in (rep / "index.html").read_text()
