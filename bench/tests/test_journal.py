"""The journal on the target's file system."""

import pytest


@pytest.mark.needs("fs")
def test_records_survive_a_reopen_and_sequence_numbers_continue(probe, tmp_path):
    r = probe("journal", "roundtrip", path=str(tmp_path / "j"))
    assert r["appended"] == list(range(1, 22))
    # events first, then telemetry in order
    assert r["reopened"][0] == [21, "trip", 20000]
    assert [x[0] for x in r["reopened"][1:]] == list(range(1, 21))
    assert r["next"] == 22


@pytest.mark.needs("fs")
def test_a_torn_tail_is_cut_and_writing_goes_on(probe, tmp_path):
    r = probe("journal", "torn_tail", path=str(tmp_path / "j"), cut=7)
    assert r["count"] == 2 and r["next"] == 3
    assert r["recovered_bytes"] > 0
