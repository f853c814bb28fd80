"""The ``edgefw`` command as a user runs it."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT


def edgefw():
    exe = shutil.which("edgefw")
    if exe is None:
        pytest.fail("the edgefw command is not installed: pip install -e . (the README's commands do)")
    return exe


def run(*args, timeout=120):
    return subprocess.run([edgefw(), *args], capture_output=True, text=True, timeout=timeout)


def last_json(out):
    return json.loads(out.strip().splitlines()[-1])


def test_run_2000_cycles_reports_the_trip_within_one_cycle(tmp_path):
    p = run("run", "--cycles", "2000", "--json", "--journal", str(tmp_path / "j.bin"))
    assert p.returncode == 0, p.stderr
    s = last_json(p.stdout)
    assert s["cycles"] == 2000 and s["overruns"] == 0
    assert isinstance(s["records"], int) and s["records"] > 0
    (trip,) = s["trips"]
    assert 0 <= trip["t_us"] - 8000000 <= 10000
    assert trip["cause"] == "env.temperature_c:high"
    assert s["refused_resets"] == 1 and s["resets"] == 2
    assert sum(f.stat().st_size for f in (tmp_path / "j.bin").rglob("*.seg")) == s["journal_bytes"]


def test_run_under_micropython_gives_the_same_summary(tmp_path):
    cp = last_json(run("run", "--cycles", "2000", "--json", "--journal", str(tmp_path / "a.bin")).stdout)
    p = run("run", "--target", "micropython", "--cycles", "2000", "--json", "--journal", str(tmp_path / "b.bin"))
    assert p.returncode == 0, p.stderr
    mp = last_json(p.stdout)
    assert mp["target"] == "micropython"
    for k in ("cycles", "trips", "records", "journal_bytes"):
        assert mp[k] == cp[k]


def _sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_live_status_and_ctrl_c_leave_the_permit_off(tmp_path):
    # preexec: as from a terminal (a suite started in the background inherits SIGINT ignored)
    proc = subprocess.Popen([edgefw(), "run", "--speed", "1", "--journal", str(tmp_path / "j.bin")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_sigint_default)
    time.sleep(2.5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    status = [line for line in err.splitlines() if "cycles/s" in line]
    assert len(status) >= 3  # refreshed several times a second
    assert "permit" in status[-1] and "journal" in status[-1]
    assert "permit off" in err
    assert "permit off" in out


def test_bad_config_names_file_and_field(tmp_path):
    cfg = tmp_path / "edgefw.json"
    cfg.write_text(json.dumps({"period_ms": "fast"}))
    p = run("run", "--cycles", "10", "--config", str(cfg))
    assert p.returncode == 2
    assert str(cfg) in p.stderr and "period_ms" in p.stderr and "an integer" in p.stderr
    assert "Traceback" not in p.stderr


def test_bad_scenario_and_board_are_clear_errors(tmp_path):
    sc = tmp_path / "s.json"
    sc.write_text(json.dumps({"events": [{"at_s": 1, "press": "START"}]}))
    p = run("run", "--cycles", "10", "--scenario", str(sc))
    assert p.returncode == 2 and "events[0].press" in p.stderr
    p = run("run", "--cycles", "10", "--board", "rpi3")
    assert p.returncode == 2 and "known boards" in p.stderr
    p = run("run", "--cycles", "10", "--board", "rpi4")
    assert p.returncode == 2 and "--board sim" in p.stderr


def test_environment_override_picks_the_board(tmp_path):
    env = dict(os.environ, EDGEFW_BOARD="jetson_orin_nano")
    p = subprocess.run([edgefw(), "run", "--cycles", "5"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 2 and "jetson_orin_nano" in p.stderr


def test_module_entry_point_matches(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "firmware.app", "--cycles", "300", "--json", "--journal", str(tmp_path / "j.bin")], cwd=ROOT, capture_output=True, text=True
    )
    assert p.returncode == 0
    assert last_json(p.stdout)["cycles"] == 300


def test_run_forwards_to_a_broker_and_ingest_stores_it(tmp_path, broker):
    key = "ab" * 32
    (tmp_path / "device.key").write_text(key + "\n")
    (tmp_path / "keys.json").write_text(json.dumps({"sim-0001": key}))
    cfg = tmp_path / "edgefw.json"
    cfg.write_text(json.dumps({"uplink": {"key_file": str(tmp_path / "device.key"), "batch_ms": 50}}))
    db = tmp_path / "ingest.sqlite"
    ingest = subprocess.Popen(
        [edgefw(), "ingest", "--broker", "127.0.0.1:%d" % broker.port, "--keys", str(tmp_path / "keys.json"), "--db", str(db), "--idle-exit", "3", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)  # subscribed before the device starts
    p = run("run", "--cycles", "2000", "--json", "--config", str(cfg), "--broker", "127.0.0.1:%d" % broker.port, "--journal", str(tmp_path / "j"))
    assert p.returncode == 0, p.stderr
    s = last_json(p.stdout)
    # the loop's records and the run's boot event, every one receipted
    assert s["journal_pending"] == 0 and s["uplink"]["records"] == s["records"] + 1 and s["uplink"]["receipts"]
    out, err = ingest.communicate(timeout=60)
    counts = json.loads(out.strip().splitlines()[-1])
    assert counts["records"] == s["records"] + 1 and counts["tampered"] == 0
    import sqlite3

    kinds = [r[0] for r in sqlite3.connect(db).execute("SELECT kind FROM records WHERE device='sim-0001' ORDER BY seq")]
    assert kinds.count("trip") == 1 and kinds.count("win") == 20 and kinds[0] == "boot"


def test_ingest_refuses_a_bad_keys_file(tmp_path):
    (tmp_path / "keys.json").write_text(json.dumps({"d": "zz"}))
    p = run("ingest", "--keys", str(tmp_path / "keys.json"), "--idle-exit", "0.1")
    assert p.returncode != 0 and "hex string" in p.stderr


@pytest.mark.slow
def test_bench_infer_json_names_every_model_and_backend():
    # the benchmark's shape, not its timings: these machines are shared
    p = subprocess.run([edgefw(), "bench", "infer", "--n", "4", "--json"], capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr
    res = json.loads(p.stdout.strip().splitlines()[-1])
    assert {"vib_dense", "vib_conv1d", "vib_autoencoder"} <= set(res["models"])
    for row in res["models"].values():
        assert row["micro_scalar"]["median_us"] > 0 and row["micro_numpy"]["median_us"] > 0
        for target in ("micro_micropython", "micro_micropython_pure", "micro_micropython32"):
            assert row[target]["median_us"] > 0, target
            lo, hi = row[target]["spread_us"]
            assert 0 < lo <= row[target]["median_us"] <= hi, (target, row[target])
            # invoke allocates nothing, on the 64-bit and the 32-bit port
            assert row[target]["alloc_bytes_per_invoke"] == 0 and row[target]["heap_locked_failures"] == "0/10", (target, row[target])
        # the unix port runs its native kernels unless told not to; the wasm port has none
        assert [row[t]["kernels"] for t in ("micro_micropython", "micro_micropython_pure", "micro_micropython32")] == ["kernels_native", "kernels", "kernels"]
        lo, hi = row["micro_scalar"]["spread_us"]
        assert lo <= row["micro_scalar"]["median_us"] <= hi
        assert row["overhead_vs_bare_invoke"]["micro"]["ratio"] > 0
    for name in ("vib_dense", "vib_conv1d", "vib_autoencoder"):
        ins = res["models"][name]["instructions_per_invoke"]
        # counted, not timed: positive, each way, and the ratios are the counts'
        assert ins["unix_pure_kernels"] == "kernels" and ins["unix_native_kernels"] == "kernels_native", ins
        assert ins["unix_pure"] > 0 and ins["unix_native"] > 0 and ins["tflm"] > 0, ins
        assert ins["pure_over_native"] == round(ins["unix_pure"] / ins["unix_native"], 2), ins
        assert ins["native_over_tflm"] == round(ins["unix_native"] / ins["tflm"], 2), ins


@pytest.mark.parametrize("target", ["cpython", "micropython"])
def test_run_shows_the_anomaly_score_of_the_shipped_model(tmp_path, target):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"inference": {"enabled": True, "backend": "micro"}}))
    p = subprocess.run(
        [edgefw(), "run", "--config", str(cfg), "--cycles", "500", "--target", target, "--journal", str(tmp_path / "j")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stderr
    m = re.search(r"anomaly score (-?[0-9.]+) after (\d+) windows \(micro backend, arena (\d+) B", p.stdout)
    assert m, p.stdout
    # the default scenario shakes the accelerometer from 3 s: the score is high and trips.
    # On CPython the model runs beside the loop and a window that comes
    # while it is busy is skipped, never waited for: on a loaded machine
    # 8 of 10 were seen, so a few windows are asked for, not all
    assert float(m.group(1)) > 0 and int(m.group(2)) >= 3
    # the trip is the model's, after the shake began, and no later than a
    # full window plus k windows in a row (2), one more for each window
    # skipped and one for the model's own latency: 10 ms cycles, hop 32
    dropped = int(re.search(r"; (\d+) dropped", p.stdout).group(1))
    trip = re.search(r"trip at t=([0-9.]+) s: inference", p.stdout)
    assert trip, p.stdout
    assert 3.0 <= float(trip.group(1)) <= 3.0 + (64 + (2 + dropped + 1) * 32) * 0.010, p.stdout
