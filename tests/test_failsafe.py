"""Outputs safe when the process stops, however it stops."""

import signal
import subprocess
import time

from sim.bench import read
from tests.test_cli import edgefw


def _sigint_default():
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(tmp_path):
    bench = tmp_path / "bench.bin"
    proc = subprocess.Popen(
        [edgefw(), "run", "--speed", "1", "--bench", str(bench), "--journal", str(tmp_path / "j.bin")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # as from a terminal: a suite started in the background inherits SIGINT ignored
        preexec_fn=_sigint_default,
    )
    # the default scenario presses reset at 0.2 s: wait for the coil
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if bench.exists() and bench.stat().st_size and read(bench)["energized"]:
                return proc, bench
        except ValueError:
            pass  # sized but not yet written: the moment after ftruncate
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("the relay never energized: %s" % (proc.communicate()[1],))


def test_sigkill_drops_the_relay_by_construction(tmp_path):
    proc, bench = _start(tmp_path)
    proc.kill()  # SIGKILL: no handler, no finally, no atexit runs
    proc.wait(10)
    state = read(bench)
    # the process never wrote 0; the level it left behind is still 1
    assert state["level"] == 1
    time.sleep(state["hold_ms"] / 1000 + 0.05)
    assert not read(bench)["energized"]


def test_sigterm_drives_the_permit_low_before_exit(tmp_path):
    proc, bench = _start(tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM; permit off" in err
    assert read(bench)["level"] == 0


def test_sigint_drives_the_permit_low(tmp_path):
    proc, bench = _start(tmp_path)
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert proc.returncode == 130
    assert read(bench)["level"] == 0
