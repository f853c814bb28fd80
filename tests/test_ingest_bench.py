"""``edgefw bench ingest`` runs end to end with a tiny fleet and reports
every figure it promises (not the bars: those depend on the machine)."""

import json
import subprocess
import sys

from tests.conftest import ROOT


def test_bench_ingest_tiny_fleet_reports_its_fields():
    p = subprocess.run(
        [sys.executable, "-m", "edgefw.cli", "bench", "ingest", "--devices", "2", "--records", "400", "--repeat", "2", "--naive-records", "50", "--json"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr[-3000:]
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert res["devices"] == 2 and res["repeat"] == 2
    for db in ("postgresql", "sqlite"):
        r = res[db]
        assert r["records"] == 800
        for k in ("records_per_s", "receipt_p50_ms", "receipt_p99_ms"):
            assert len(r[k]["runs"]) == 2 and r[k]["min"] <= r[k]["median"] <= r[k]["max"], (db, k, r[k])
            assert r[k]["min"] > 0
        assert r["receipt_p50_ms"]["median"] <= r["receipt_p99_ms"]["median"]
        # ingest's own part of it, from the workers' histograms
        assert 0 < r["ingest_side_receipt_p50_ms"]["median"] <= r["ingest_side_receipt_p99_ms"]["median"]
        assert set(r["cpu_s"]) >= {"ingest_workers", "mosquitto", "devices"}
        assert all(v["min"] >= 0 for v in r["cpu_s"].values()), r["cpu_s"]
    pgr = res["postgresql"]
    # every record the devices had receipted is a row in the database
    assert pgr["db_rows_per_s"]["runs"] == pgr["records_per_s"]["runs"]
    assert "postgres" in pgr["cpu_s"]
    for peer in ("naive_paho_row_per_message", "copy_one_process"):
        assert res["peers"][peer]["records_per_s"]["median"] > 0
    assert set(res["ratios"]) == {"vs_copy", "vs_naive"} and all(v > 0 for v in res["ratios"].values())
    assert res["machine"]["cpus"] >= 1 and len(res["machine"]["loadavg_start"]) == 3
    assert "records/s committed" in p.stdout
