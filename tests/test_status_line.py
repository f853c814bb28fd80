"""The live status line as a person reads it: what matters first, labels
alike, the journal as this run's records, no runtime chatter in it."""

import io
import json
import subprocess

import pytest

from tests.test_cli import edgefw


def _line(tmp_path, **kw):
    from firmware.app import build
    from firmware.linux.run import Status
    from tests.dual._util import run

    fw, _ = build("sim", journal=str(tmp_path / "j"))
    run(fw, cycles=300)
    return Status(io.StringIO(), **kw).line(fw, 100.0), fw


def test_state_and_journal_fit_80_columns_and_labels_agree(tmp_path):
    line, fw = _line(tmp_path)
    head = line[:80]
    assert "permit" in head or "TRIPPED" in head
    assert "journal %d rec" % fw.recorder.appended in head
    # every reading labelled the same way: the quantity, not sensor.quantity
    vals = line.split("  ")[-1].split()
    assert vals and all("." not in v.split("=")[0] for v in vals), vals
    assert "accel_x_g=" in line and "temperature_c=" in line


def test_journal_count_is_this_runs_records(tmp_path):
    _line(tmp_path)  # an earlier run's records stay in the journal
    line, fw = _line(tmp_path)
    assert fw.journal.count > fw.recorder.appended
    assert "journal %d rec" % fw.recorder.appended in line


def test_litert_says_nothing_into_the_display(tmp_path):
    pytest.importorskip("ai_edge_litert")
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"inference": {"enabled": True, "backend": "litert"}}))
    p = subprocess.run([edgefw(), "run", "--config", str(cfg), "--cycles", "200", "--journal", str(tmp_path / "j")], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "litert backend" in p.stdout
    assert "INFO: Created TensorFlow Lite" not in p.stderr + p.stdout
