"""A disk that refuses writes (file-size limit: EFBIG, as ENOSPC would):
the journal reports it, keeps what it had, and recovers cleanly."""

import json
import subprocess
import sys

from firmware.store.journal import Journal
from tests.conftest import ROOT


def _fill_under_a_limit(journal, *durability):
    """1,000 appends under a 20,000-byte file-size limit; the device's report."""
    p = subprocess.run(
        [sys.executable, "-m", "tests.helpers.fsize_device", str(journal), "20000", "1000", *durability],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_write_errors_are_reported_and_nothing_is_corrupted(tmp_path):
    r = _fill_under_a_limit(tmp_path / "j")
    assert r["appended"] > 100 and r["errors"] > 0
    assert r["appended"] + r["errors"] == 1000
    assert "record was not stored" in r["last_error"]
    j = Journal(str(tmp_path / "j"))
    recs = [rec for _s, rec in j.records()]
    # exactly what was reported stored, intact, in order, no torn frame
    assert len(recs) == r["appended"]
    assert [rec["seq"] for rec in recs] == list(range(1, r["appended"] + 1))
    assert j.corrupt_skipped == 0 and j.recovered_bytes == 0
    assert sum(f.stat().st_size for f in (tmp_path / "j").rglob("*.seg")) <= 20000
    j.close()


def test_group_durability_write_errors_lose_whole_groups_counted(tmp_path):
    r = _fill_under_a_limit(tmp_path / "j", "group")
    assert r["errors"] > 0 and r["lost_io"] > 0 and "record was not stored" in r["last_error"]
    j = Journal(str(tmp_path / "j"))
    seqs = [rec["seq"] for _s, rec in j.records()]
    # every record numbered is either on disk, intact, or counted as lost
    assert len(seqs) + r["lost_io"] == r["next_seq"] - 1
    # what is on disk is the stream's prefix: the lost groups came last
    assert seqs == list(range(1, len(seqs) + 1))
    assert j.corrupt_skipped == 0 and j.recovered_bytes == 0
    assert sum(f.stat().st_size for f in (tmp_path / "j").rglob("*.seg")) <= 20000
    j.close()
