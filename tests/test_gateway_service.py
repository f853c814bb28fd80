"""The gateway as a systemd service: the unit ``edgefw gateway --unit``
prints passes systemd's own parser, and the gateway speaks the notify
protocol on a real datagram socket (READY=1, WATCHDOG=1 while it runs,
STOPPING=1 on SIGTERM)."""

import os
import signal
import socket
import subprocess
import sys
import time

from tests.conftest import ROOT
from tests.helpers.gateway_rig import Rig
from tests.test_service import _verify


def test_unit_passes_systemd_analyze_verify(tmp_path):
    rig = Rig(tmp_path, ["node-a"])
    try:
        p = subprocess.run([sys.executable, "-m", "edgefw", "gateway", "--config", str(rig.cfg_path), "--unit", "--drain-s", "5"], capture_output=True, text=True, timeout=60)
    finally:
        rig.close()
    assert p.returncode == 0, p.stderr
    text = p.stdout
    for line in ("Type=notify", "WatchdogSec=30s", "Restart=on-failure", "TimeoutStopSec=35s", "StateDirectory=edgefw-gateway", "ProtectSystem=strict", "ExecReload=/bin/kill -HUP $MAINPID"):
        assert line in text.splitlines(), line
    assert "--config %s --drain-s 5" % rig.cfg_path in text
    unit = tmp_path / "edgefw-gateway.service"
    unit.write_text(text)
    rc, complaints = _verify(unit)
    assert not complaints, complaints


def test_notify_ready_watchdog_stopping(tmp_path):
    rig = Rig(tmp_path, ["node-a"])
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify")
    sock.bind(path)
    sock.settimeout(30)
    try:
        env = dict(os.environ, PYTHONPATH=str(ROOT), NOTIFY_SOCKET=path, WATCHDOG_USEC="30000000")
        gw = subprocess.Popen([sys.executable, "-m", "edgefw", "gateway", "--config", str(rig.cfg_path)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        got = [sock.recv(64).decode()]
        assert got == ["READY=1"], got
        t0 = time.monotonic()
        got.append(sock.recv(64).decode())
        assert got[-1] == "WATCHDOG=1" and time.monotonic() - t0 < 5, got
        gw.send_signal(signal.SIGTERM)
        while got[-1] == "WATCHDOG=1":
            got.append(sock.recv(64).decode())
        assert got[-1] == "STOPPING=1", got
        _out, err = gw.communicate(timeout=60)
        assert gw.returncode == 0, err
    finally:
        sock.close()
        rig.close()
