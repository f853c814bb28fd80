"""The dual-target tests under two real MicroPythons, the 64-bit unix port
and the 32-bit wasm port (where small integers are 31-bit, as on an
ESP32), the heap-lock test on both, and the 10,000-cycle run in a 128 KB
heap, and again in 116 KB: the 128 KB runs' 12 KB margin, tested (unix
port: the wasm port's heap is not capped)."""

import json
import re
from pathlib import Path

import cbor2
import pytest

from tests.conftest import ROOT, TARGETS, run_micropython

pytestmark = pytest.mark.micropython

DUAL = sorted(p.stem for p in (ROOT / "tests" / "dual").glob("test_*.py"))


def _counts(out):
    m = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
    assert m, out
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("module", DUAL)
def test_dual_module_under_micropython(module, target, tmp_path):
    p = TARGETS[target](["tests/dual/run.py", "tests.dual." + module])
    assert p.returncode == 0, p.stdout + p.stderr
    passed, failed = _counts(p.stdout)
    assert failed == 0, p.stdout + p.stderr
    # every test function of the module ran
    src = (ROOT / "tests" / "dual" / (module + ".py")).read_text()
    assert passed == len(re.findall(r"^def test_", src, re.M))


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_safety_path_allocates_nothing(target):
    p = TARGETS[target](["tests/mp_only/heap_lock.py"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "allocation failures 0" in p.stdout
    assert _counts(p.stdout) == (1, 0)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_bme280_compensation_allocates_nothing(target):
    p = TARGETS[target](["tests/mp_only/bme280_sweep.py"])
    assert p.returncode == 0, p.stdout + p.stderr
    assert "allocation failures 0" in p.stdout
    assert _counts(p.stdout) == (1, 0)


# the 128 KB runs' margin, tested: the same runs pass in 12 KB less
MARGIN_HEAP = "116k"


@pytest.mark.slow
def test_ten_thousand_cycles_in_a_128k_heap(tmp_path):
    _ten_thousand_cycles(tmp_path, "128k")


@pytest.mark.slow
def test_ten_thousand_cycles_with_12k_of_the_128k_heap_to_spare(tmp_path):
    _ten_thousand_cycles(tmp_path, MARGIN_HEAP)


def _ten_thousand_cycles(tmp_path, heap):
    # precompiled as on a device: the chip never compiles source
    from edgefw.build.mpy import build

    build(tmp_path / "mpy")
    journal = tmp_path / "mpy" / "j"
    # relative paths, as on a device: every module keeps its path in
    # __file__, and long temporary paths alone cost the heap kilobytes
    p = run_micropython(["-m", "firmware.app", "--cycles", "10000", "--json", "--journal", "j"], heap=heap, cwd=tmp_path / "mpy", path=".")
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["cycles"] == 10000
    assert s["t_us"] == 100000000
    assert len(s["trips"]) == 1 and 0 <= s["trips"][0]["t_us"] - 8000000 <= 10000
    assert sum(f.stat().st_size for f in Path(journal).rglob("*.seg")) == s["journal_bytes"]


def _ten_thousand_over_the_journal(cwd, heap="128k"):
    p = run_micropython(["-m", "firmware.app", "--cycles", "10000", "--json", "--journal", "j"], heap=heap, cwd=cwd, path=".")
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["cycles"] == 10000 and len(s["trips"]) == 1
    return s


@pytest.mark.slow
def test_a_128k_device_restarts_over_its_own_journal(tmp_path):
    _restarts_over_its_own_journal(tmp_path, "128k")


@pytest.mark.slow
def test_a_device_restarts_over_its_own_journal_with_12k_of_128k_to_spare(tmp_path):
    _restarts_over_its_own_journal(tmp_path, MARGIN_HEAP)


def _restarts_over_its_own_journal(tmp_path, heap):
    # a device keeps its journal across reboots: the second and third
    # starts recover it (frame by frame) in the heap the loop runs in
    from edgefw.build.mpy import build

    build(tmp_path / "mpy")
    sizes = []
    for _ in range(3):
        _ten_thousand_over_the_journal(tmp_path / "mpy", heap)
        sizes.append(sum(f.stat().st_size for f in (tmp_path / "mpy" / "j").rglob("*.seg")))
    assert sizes[0] < sizes[1] < sizes[2]


@pytest.mark.slow
def test_a_128k_device_restarts_over_a_journal_at_its_cap(tmp_path):
    _restarts_over_a_journal_at_its_cap(tmp_path, "128k")


@pytest.mark.slow
def test_a_device_restarts_over_a_journal_at_its_cap_with_12k_of_128k_to_spare(tmp_path):
    _restarts_over_a_journal_at_its_cap(tmp_path, MARGIN_HEAP)


def _restarts_over_a_journal_at_its_cap(tmp_path, heap):
    from edgefw.build.mpy import build

    cfg = tmp_path / "cap.json"
    cfg.write_text(json.dumps({"record": {"cap_bytes": 16384, "segment_bytes": 4096}}))
    build(tmp_path / "mpy", config=cfg)
    first = _ten_thousand_over_the_journal(tmp_path / "mpy", heap)
    # the first run filled it: the next ones start over a full journal and
    # make room as they go
    assert first["store"]["dropped_cap"] > 0 and first["journal_bytes"] > 16384 - 4096
    for _ in range(2):
        s = _ten_thousand_over_the_journal(tmp_path / "mpy", heap)
        assert s["store"]["dropped_cap"] > 0 and s["journal_bytes"] <= 16384


def test_micropython_and_cpython_agree_on_the_default_run(tmp_path):
    p = run_micropython(["-m", "firmware.app", "--cycles", "2000", "--json", "--journal", str(tmp_path / "mp.bin")], heap="1M")
    mp = json.loads(p.stdout.strip().splitlines()[-1])
    from firmware.app import build
    from tests.dual._util import run

    fw, _ = build("sim", journal=str(tmp_path / "cp.bin"))
    run(fw, cycles=2000)
    fw.journal.close()
    cp = fw.summary()
    for k in ("cycles", "overruns", "records", "journal_bytes", "trips", "resets", "refused_resets"):
        assert mp[k] == cp[k], k
    from firmware.store.journal import Journal

    # the same records, byte for byte in CBOR (the frames differ only in
    # their wall-clock creation time)
    # their wall-clock creation time), after each run's boot event, which
    # names the run and its clock
    mp_all = list(Journal(str(tmp_path / "mp.bin")).records())
    cp_all = list(Journal(str(tmp_path / "cp.bin")).records())
    for recs in (mp_all, cp_all):
        boot = recs[0][1]
        assert boot["k"] == "boot" and len(boot["boot"]) == 8 and boot["utc_ms"] > 1.7e12
    assert mp_all[0][1]["boot"] != cp_all[0][1]["boot"]
    mp_recs = [(s, cbor2.dumps(r, canonical=True)) for s, r in mp_all[1:]]
    cp_recs = [(s, cbor2.dumps(r, canonical=True)) for s, r in cp_all[1:]]
    assert mp_recs == cp_recs and len(mp_recs) == mp["records"]


@pytest.mark.slow
def test_peak_heap_of_the_loop_with_inference_on_32_bit(tmp_path):
    """The figure that predicts an ESP32's heap: the whole loop with the
    inference stage on, from .mpy as on a device, on the 32-bit target,
    collected between task steps (tests/mp_only/peak_heap.py)."""
    import shutil

    from edgefw.build.mpy import build
    from edgefw.emul import wasm32

    why = wasm32.missing()
    if why:
        pytest.fail("the 32-bit MicroPython target cannot run: " + why)
    d = tmp_path / "mpy"
    build(d)
    shutil.copy(ROOT / "tests" / "mp_only" / "peak_heap.py", d)
    (d / "firmware" / "models").mkdir(parents=True)
    shutil.copy(ROOT / "firmware" / "models" / "vib_dense.tflite", d / "firmware" / "models")
    code = "import sys; sys.argv.append('--no-run'); exec(open('peak_heap.py').read()); import asyncio; asyncio.create_task(measure(3000))"
    p = wasm32.run(["-c", code], root=d, step=True, timeout=600)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _counts(p.stdout) == (1, 0), p.stdout
    m = re.search(r"peak heap (\d+) bytes; built (\d+)", p.stdout)
    print(p.stdout)
    peak, built = int(m.group(1)), int(m.group(2))
    # measured 127,456 (built 117,920): a regression guard, not the goal
    assert built <= peak <= 136 * 1024, p.stdout


def test_the_device_entry_point_refuses_a_cycle_count_below_one(tmp_path):
    p = run_micropython(["-m", "firmware.app", "--cycles", "-5", "--journal", str(tmp_path / "j")], heap="1M")
    assert p.returncode == 2 and "--cycles needs a whole number of at least 1, got -5" in p.stderr
