"""A shared bench on loopback: a labgrid coordinator and an exporter
exporting the MicroPython unix-port target, or the virtual ESP32's
serial port (through ser2net, as a real board's), as the place
``edgefw-bench``. One session acquires it, flashes (the virtual ESP32)
and runs a scenario through the coordinator and releases it; a second
session, waiting meanwhile, gets it after the release; a crashed
session's lock is shown (labgrid keeps it) and cleared (bench/shared.py),
and a live holder past its lease is kicked. Every process is killed at
the end."""

import json
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


UNIX = "edgefw-bench:\n  EdgefwRuntime:\n    runtime: unix\n    board: sim\n"
# the virtual ESP32's REPL pty, exported as a board's serial port is
ESP32 = "edgefw-bench:\n  RawSerialPort:\n    port: %s\n    speed: 115200\n  EdgefwRuntime:\n    runtime: esp32\n    board: sim\n    image: esp32_devkitc\n"


@pytest.fixture
def lab(tmp_path):
    yield from _lab(tmp_path, UNIX, "EdgefwRuntime")


@pytest.fixture
def vesp32(tmp_path):
    from bench.lab.virtual import start, stop

    p, ports = start(str(tmp_path / "vesp32"))
    yield ports
    stop(p)


@pytest.fixture
def esp32_lab(tmp_path, vesp32):
    import shutil

    if shutil.which("ser2net") is None and not os.path.exists("/usr/sbin/ser2net"):
        pytest.fail("ser2net not found: the exporter serves a serial port through it (apt-get install ser2net, as the README's test command does)")
    yield from _lab(tmp_path, ESP32 % vesp32["repl"], "NetworkSerialPort")


def _lab(tmp_path, exported, cls):
    port = _free_port()
    coord = "127.0.0.1:%d" % port
    (tmp_path / "exporter.yaml").write_text(exported)
    bindir = os.path.dirname(sys.executable)
    procs = []
    try:
        # in the test's directory: the coordinator keeps its places.yaml in its working directory
        procs.append(subprocess.Popen([os.path.join(bindir, "labgrid-coordinator"), "-l", coord], cwd=tmp_path, stdout=open(tmp_path / "coordinator.log", "w"), stderr=subprocess.STDOUT, start_new_session=True))
        _wait_for(lambda: socket.socket().connect_ex(("127.0.0.1", port)) == 0, 20, "the coordinator listening")
        procs.append(
            subprocess.Popen(
                [os.path.join(bindir, "labgrid-exporter"), "-c", coord, "-n", "ex1", "--hostname", "127.0.0.1", str(tmp_path / "exporter.yaml")],
                stdout=open(tmp_path / "exporter.log", "w"),
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        )
        _wait_for(lambda: "ex1/edgefw-bench/" + cls in client(coord, "resources").stdout, 30, "the exporter's resource at the coordinator")
        assert client(coord, "-p", PLACE, "create").returncode == 0
        assert client(coord, "-p", PLACE, "add-match", "ex1/edgefw-bench/*").returncode == 0
        yield coord
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(10)


def _scenario(coord, user, report=None):
    env = dict(os.environ, PYTHONPATH=str(ROOT), LG_USERNAME=user, LG_HOSTNAME=socket.gethostname())
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--lg-env", "bench/remote.yaml", "--lg-coordinator", coord, "bench/tests", "-k", "estop_press or board_the"]
    if report is not None:
        cmd += ["--bench-report", str(report)]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


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


def test_a_live_holder_past_its_lease_is_kicked(lab):
    # a session that is alive (or on another host) but holds the place
    # past the lease the waiting session allows: a hung run, a forgotten lock
    stuck = Place(lab, PLACE, session="hung-session", timeout=10).acquire()
    t0 = time.monotonic()
    mine = Place(lab, PLACE, session="bench-%d" % os.getpid(), timeout=30, lease_s=2.0)
    with mine:
        waited = time.monotonic() - t0
        assert mine.kicked == ["%s/hung-session" % socket.gethostname()]
        assert holder(lab, PLACE)[1] == mine.user
    # the lease counts from when the waiting session first saw the holder
    assert 2.0 <= waited < 15, waited
    assert holder(lab, PLACE) is None
    # the kicked session's own release does not take the place from the next holder
    again = Place(lab, PLACE, session="bench-%d-c" % os.getpid(), timeout=10).acquire()
    stuck.release()
    assert holder(lab, PLACE)[1] == again.user
    again.release()


@pytest.mark.slow
@pytest.mark.micropython
def test_the_virtual_esp32_over_the_exporter_is_flashed_once_and_shared(esp32_lab, tmp_path):
    lab = esp32_lab
    first = Place(lab, PLACE, session="bench-%d-a" % os.getpid(), timeout=20)
    second = Place(lab, PLACE, session="bench-%d-b" % os.getpid(), timeout=240)
    times = {}
    with first:

        def wait_second():
            second.acquire()
            times["second"] = time.monotonic()

        t = threading.Thread(target=wait_second, daemon=True)
        t.start()
        # through the coordinator: the port is ser2net's (rfc2217), the board is flashed over it
        p = _scenario(lab, first.user, tmp_path / "r1")
        assert p.returncode == 0 and "2 passed" in p.stdout, p.stdout[-3000:] + p.stderr[-2000:]
        flash = json.loads((tmp_path / "r1" / "target.json").read_text())["flash"]
        assert flash["flashed"] and flash["copied"] > 50, flash
        assert t.is_alive(), "the second session got the place while the first held it"
        times["released"] = time.monotonic()
    t.join(60)
    assert "second" in times and times["second"] >= times["released"]
    # the second session runs the scenario on the same board: nothing to flash
    p = _scenario(lab, second.user, tmp_path / "r2")
    assert p.returncode == 0 and "2 passed" in p.stdout, p.stdout[-3000:] + p.stderr[-2000:]
    flash2 = json.loads((tmp_path / "r2" / "target.json").read_text())["flash"]
    assert not flash2["flashed"] and flash2["device_had"] == flash["bundle"], flash2
    second.release()
    assert holder(lab, PLACE) is None
