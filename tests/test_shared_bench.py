"""A shared bench on loopback: a labgrid coordinator and an exporter
exporting the MicroPython unix-port target as the place
``edgefw-bench``. One session acquires it, runs a scenario through the
coordinator and releases it; a second session, waiting meanwhile, gets
it after the release; a crashed session's lock is shown (labgrid keeps
it) and cleared (bench/shared.py). Every process is killed at the end."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from bench.shared import Place, client, holder
from tests.conftest import ROOT

PLACE = "edgefw-bench"


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.2)
    pytest.fail("%s: not within %.0f s" % (what, timeout))


@pytest.fixture
def lab(tmp_path):
    port = _free_port()
    coord = "127.0.0.1:%d" % port
    (tmp_path / "exporter.yaml").write_text("edgefw-bench:\n  EdgefwRuntime:\n    runtime: unix\n    board: sim\n")
    bindir = os.path.dirname(sys.executable)
    procs = []
    try:
        procs.append(subprocess.Popen([os.path.join(bindir, "labgrid-coordinator"), "-l", coord], stdout=open(tmp_path / "coordinator.log", "w"), stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 20, "the coordinator listening")
        procs.append(
            subprocess.Popen(
                [os.path.join(bindir, "labgrid-exporter"), "-c", coord, "-n", "ex1", "--hostname", "127.0.0.1", str(tmp_path / "exporter.yaml")],
                stdout=open(tmp_path / "exporter.log", "w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        _wait_for(lambda: "ex1/edgefw-bench/EdgefwRuntime" in client(coord, "resources").stdout, 30, "the exporter's resource at the coordinator")
        assert client(coord, "-p", PLACE, "create").returncode == 0
        assert client(coord, "-p", PLACE, "add-match", "ex1/edgefw-bench/*").returncode == 0
        yield coord
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def _scenario(coord, user):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LG_USERNAME=user, LG_HOSTNAME=socket.gethostname())
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lg-env", "bench/remote.yaml", "--lg-coordinator", coord, "bench/tests", "-k", "estop_press or board_the"]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_session_runs_a_scenario_and_the_waiting_one_gets_the_place_after(lab):
    first = Place(lab, PLACE, session="bench-%d-a" % os.getpid(), timeout=20)
    second = Place(lab, PLACE, session="bench-%d-b" % os.getpid(), timeout=60)
    times = {}
    with first:
        assert holder(lab, PLACE)[1] == first.user

        def wait_second():
            second.acquire()
            times["second"] = time.monotonic()

        t = threading.Thread(target=wait_second, daemon=True)
        t.start()
        p = _scenario(lab, first.user)
        assert p.returncode == 0 and "2 passed" in p.stdout, p.stdout[-3000:] + p.stderr[-2000:]
        assert t.is_alive(), "the second session got the place while the first held it"
        times["released"] = time.monotonic()
    t.join(60)
    assert "second" in times and times["second"] >= times["released"]
    assert holder(lab, PLACE)[1] == second.user
    # while the second holds it, the first cannot run there: the scenario fails cleanly
    p = _scenario(lab, first.user)
    assert p.returncode != 0
    second.release()
    assert holder(lab, PLACE) is None


def test_a_live_holder_is_waited_for_and_the_wait_times_out(lab):
    holder_place = Place(lab, PLACE, session="someone-else", timeout=10).acquire()
    t0 = time.monotonic()
    with pytest.raises(AssertionError, match="not acquired within 2 s .held by .*someone-else"):
        Place(lab, PLACE, session="bench-%d" % os.getpid(), timeout=2).acquire()
    assert time.monotonic() - t0 < 15
    assert holder(lab, PLACE)[1] == "someone-else"  # a live holder is never kicked
    holder_place.release()


def test_a_crashed_sessions_lock_stays_in_labgrid_and_the_next_session_clears_it(lab):
    # a session that acquires the place and dies before it releases it
    code = "import os, subprocess; subprocess.run(['labgrid-client', '-x', %r, '-p', %r, 'acquire'], check=True, env=dict(os.environ, LG_USERNAME='bench-%%d' %% os.getpid())); os.kill(os.getpid(), 9)" % (lab, PLACE)
    env = dict(os.environ, PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])
    crashed = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    dead = holder(lab, PLACE)
    assert dead is not None and dead[1].startswith("bench-")
    # labgrid itself keeps the lock: another user's acquire is refused
    p = client(lab, "-p", PLACE, "acquire", user="plain-labgrid-user")
    assert p.returncode != 0 and "already acquired" in p.stderr
    # the bench's session sees the holder's process is gone and kicks it
    mine = Place(lab, PLACE, session="bench-%d" % os.getpid(), timeout=20)
    with mine:
        assert mine.kicked == ["%s/%s" % dead]
        assert holder(lab, PLACE)[1] == mine.user
    assert holder(lab, PLACE) is None
