"""Real-time settings: SCHED_FIFO for the loop's thread only, memory
locked; the CPU hogs of edgefw bench interlock --load. Each check runs in
a subprocess so this process keeps its own scheduling."""

import json
import os
import subprocess
import sys
import time

import pytest

from edgefw.perf.load import Hogs

PROBE = r"""
import json, os, subprocess, sys, threading
from firmware.linux.rt import current, enable, disable
out = {"before": current()}
try:
    out["enable"] = enable(int(sys.argv[1]))
except OSError as e:
    print(json.dumps({"error": str(e), "errno": e.errno})); sys.exit(0)
out["loop_thread"] = current()
r = []
t = threading.Thread(target=lambda: r.append(current())); t.start(); t.join()
out["other_thread"] = r[0]
out["child"] = subprocess.run([sys.executable, "-c", "import os; print(os.sched_getscheduler(0))"], capture_output=True, text=True, timeout=30).stdout.strip()
with open("/proc/self/status") as f:
    out["VmLck_kB"] = int(next(l for l in f if l.startswith("VmLck")).split()[1])
disable()
out["after"] = current()
print(json.dumps(out))
"""


def _probe(priority):
    p = subprocess.run([sys.executable, "-c", PROBE, str(priority)], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout.strip().splitlines()[-1])


def test_fifo_for_the_loop_thread_only_and_memory_locked():
    r = _probe(60)
    if r.get("errno") == 1:
        pytest.skip("SCHED_FIFO not permitted here (needs root or CAP_SYS_NICE): %s" % r["error"])
    assert r["before"] == ["SCHED_OTHER", 0]
    assert r["loop_thread"] == ["SCHED_FIFO", 60]
    # started after enable: back at normal priority (SCHED_RESET_ON_FORK)
    assert r["other_thread"] == ["SCHED_OTHER", 0]
    assert r["child"] == str(os.SCHED_OTHER)
    assert r["VmLck_kB"] > 1000  # the interpreter's pages are locked
    assert r["after"] == ["SCHED_OTHER", 0]


def test_bad_priority_is_refused():
    r = _probe(0)
    assert r["errno"] == 22 and "1..99" in r["error"]


def test_run_refuses_rt_it_cannot_have_and_says_why(tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "edgefw", "run", "--cycles", "20", "--json", "--journal", str(tmp_path / "j"), "--rt-priority", "150"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2 and "real time" in p.stderr and "1..99" in p.stderr


def test_hogs_run_for_the_duration_and_are_gone_after():
    with Hogs(2) as h:
        time.sleep(0.3)
        assert h.alive() == 2
        pids = [p.pid for p in h.procs]
        # CPU-bound: each has used CPU time already
        ticks = [int(open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()[11]) for pid in pids]
    assert h.alive() == 0
    assert all(t > 0 for t in ticks), ticks
