"""tools/flash.py against the virtual ESP32 (edgefw sim-esp32): esptool
writes and verifies a MicroPython image on the mock ROM bootloader,
mpremote copies the bundle (a second flash copies nothing), the firmware
boots on the unix port's sim board, prints READY, trips on a scripted
excursion and forwards its journal through mosquitto to edgefw ingest
with receipts; with the broker stopped (SIGSTOP) no cycle waits."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from edgefw.util import ROOT
from firmware import cbor
from tests.test_micropython_coop import DEV, EXCURSIONS_US, KEY, PERIOD_US, SCENARIO, device_files
from tests.test_store_forward import IngestWorker

pytestmark = [pytest.mark.micropython, pytest.mark.slow]


@pytest.fixture
def vesp32(tmp_path):
    from bench.lab.virtual import start, stop

    p, ports = start(str(tmp_path / "dev"))
    yield ports
    stop(p)


def flash(tmp_path, ports, *extra):
    args = [sys.executable, str(ROOT / "tools" / "flash.py"), "--board", "esp32_devkitc", "--port", ports["repl"], "--rom-port", ports["rom"]]
    args += ["--config", str(tmp_path / "cfg.json"), "--scenario", str(tmp_path / "sc.json"), "--out", str(tmp_path / "out")] + list(extra)
    t0 = time.monotonic()
    p = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout, time.monotonic() - t0


def read_done(port, timeout=40):
    import serial

    s = serial.Serial(port, 115200, timeout=0.2)
    buf = b""
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            buf += s.read(512)
            for line in buf.decode("utf-8", "replace").splitlines():
                if line.startswith("EDGEFW DONE ") and line.rstrip().endswith("}"):
                    return json.loads(line[len("EDGEFW DONE ") :])
    finally:
        s.close()
    raise AssertionError("no EDGEFW DONE within %d s: %r" % (timeout, buf[-800:]))


def check_run(s):
    assert len(s["trips"]) == 2 and all(0 <= t["t_us"] - e <= PERIOD_US for t, e in zip(s["trips"], EXCURSIONS_US, strict=True)), s["trips"]
    assert s["refused_resets"] == 1 and s["resets"] == 2
    u = s["uplink"]
    # a stall is seconds; a shared machine's jitter a few ms (as tests/test_realtime_uplink.py)
    # the slice's journal I/O is not bounded by it (see test_micropython_coop)
    assert u["max_gap_us"] < 5 * PERIOD_US and u["longest_slice_us"] < 5 * PERIOD_US, u
    # all of it sent and receipted: nothing left in the journal
    assert u["pending"] == 0 and u["records"] > 0, u


def test_flash_boot_trip_forward(tmp_path, broker, vesp32):
    device_files(tmp_path, broker.port)
    fw = tmp_path / "micropython.bin"
    fw.write_bytes(b"\xe9" + os.urandom((1 << 20) - 1))  # an image-sized blob with the ESP image magic
    w = IngestWorker(broker.port, tmp_path / "i.sqlite", keys={DEV: KEY})
    try:
        out, t_first = flash(tmp_path, vesp32, "--firmware", str(fw))
        assert "chip: ESP32" in out and "written and verified (1048576 bytes" in out, out
        n_files = len(json.loads((tmp_path / "out" / "manifest.json").read_text())["files"])
        assert "copying %d of %d files" % (n_files, n_files) in out, out
        ready = [x.strip() for x in out.splitlines() if "EDGEFW READY" in x]
        bundle = json.loads((tmp_path / "out" / "manifest.json").read_text())["bundle"]
        assert ready and "board=esp32_devkitc" in ready[0] and "bundle=" + bundle in ready[0] and "uplink=on" in ready[0], out
        s1 = read_done(vesp32["repl"])
        check_run(s1)
        assert w.wait_for(s1["journal_records"])
        # the device's files are the bundle's, byte for byte
        dev_fs = tmp_path / "dev" / "fs"
        for rel, f in json.loads((tmp_path / "out" / "manifest.json").read_text())["files"].items():
            assert (dev_fs / rel).stat().st_size == f["size"], rel

        # again, without --firmware: nothing to copy; this time the broker hangs
        out, t_second = flash(tmp_path, vesp32)
        assert "copying 0 of %d files" % n_files in out and "esptool" not in out, out
        time.sleep(1.0)
        os.kill(broker.proc.pid, signal.SIGSTOP)
        n0 = w.ing.counts["records"]
        time.sleep(3.0)
        stalled = w.ing.counts["records"] - n0
        os.kill(broker.proc.pid, signal.SIGCONT)
        s2 = read_done(vesp32["repl"])
        check_run(s2)
        assert stalled == 0
        # the journal survived the reset: its sequence runs on over both boots
        assert w.wait_for(s2["journal_records"]) and s2["journal_records"] > s1["journal_records"]
        with w.ing.lock:
            recs = [cbor.loads(r[0]) for r in w.ing.db.execute("SELECT body FROM records WHERE device=?", (DEV,))]
        assert [r["k"] for r in recs].count("trip") == 4
        assert [r["cause"] for r in recs if r["k"] == "reset_cause"] == ["soft", "soft"]
        assert w.ing.counts["tampered"] == 0
    finally:
        os.kill(broker.proc.pid, signal.SIGCONT)
        w.close()
    print("first flash %.1f s, second %.1f s; hung broker: longest gap between cycles %.1f ms, longest slice %.1f ms" % (
        t_first, t_second, s2["uplink"]["max_gap_us"] / 1000, s2["uplink"]["longest_slice_us"] / 1000))


def test_flash_errors(tmp_path, vesp32):
    (tmp_path / "sc.json").write_text(json.dumps(SCENARIO))
    (tmp_path / "cfg.json").write_text(json.dumps({"device_id": DEV}))
    base = [sys.executable, str(ROOT / "tools" / "flash.py"), "--board", "esp32_devkitc", "--config", str(tmp_path / "cfg.json"), "--out", str(tmp_path / "out")]
    p = subprocess.run(base + ["--port", "/dev/does-not-exist"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "no device on /dev/does-not-exist" in p.stderr, p.stderr
    p = subprocess.run(base + ["--port", vesp32["repl"], "--rom-port", "/dev/nothing", "--firmware", str(tmp_path / "sc.json")], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 1 and "no device on /dev/nothing" in p.stderr, p.stderr
    # a Linux board goes to its own method, where --port is the SSH port
    p = subprocess.run(base + ["--board", "rpi4", "--port", vesp32["repl"]], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "on a Linux board it is the SSH port" in p.stderr, p.stderr
    # a device that never prints READY: nothing flashed yet, so no main.py
    from edgefw.deploy.flash import ESP32, FlashError

    with pytest.raises(FlashError, match="no READY line within 2 s"):
        ESP32("esp32_devkitc", vesp32["repl"], vesp32["rom"]).boot("0", 2)
    p = subprocess.run(base + ["--build-only"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0 and (tmp_path / "out" / "manifest.json").exists()


def test_wrong_chip_is_refused(tmp_path):
    from edgefw.deploy.flash import ESP32, FlashError
    from edgefw.emul.sim_esp32 import start_rom

    rom, port = start_rom("esp32s3", timeout=60)
    try:
        (tmp_path / "fw.bin").write_bytes(b"\xe9" + bytes(4095))
        with pytest.raises(FlashError, match="wrong chip on .*ESP32-S3.*esp32_devkitc is an ESP32"):
            ESP32("esp32_devkitc", "/dev/null", port).write_firmware(tmp_path / "fw.bin")
    finally:
        rom.kill()
        rom.wait(5)
