"""The virtual ESP32 (edgefw/emul/sim_esp32.py) as a bench device: started
when its port is absent, its REPL pty bound at the stable path the
environment names, as udev binds a real board under
``/dev/serial/by-id/``. The device's filesystem lives in ``dir`` and
survives the session, as a board's flash does: the next session finds
the bundle there and does not flash it again.

    resources:
      RawSerialPort: {port: .../serial/by-id/usb-edgefw_Virtual_ESP32_0001-if00-port0}
    drivers:
      VirtualESP32Driver: {dir: .../vesp32}
"""

import atexit
import json
import os
import subprocess
import sys
import time

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory

from bench.lab.runner import ROOT, BenchTimeout


def start(dirname, timeout=30.0):
    """Start a virtual ESP32 with its filesystem in ``dirname``: (process,
    ports) where ports is ``{"repl", "rom", "fs"}``."""
    os.makedirs(dirname, exist_ok=True)
    pf = os.path.join(dirname, "ports.json")
    if os.path.exists(pf):
        os.remove(pf)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    log = open(os.path.join(dirname, "sim_esp32.log"), "w")
    p = subprocess.Popen([sys.executable, "-m", "edgefw", "sim-esp32", "--dir", dirname, "--port-file", pf], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    t0 = time.monotonic()
    while not os.path.exists(pf):
        if p.poll() is not None or time.monotonic() - t0 > timeout:
            stop(p)
            raise BenchTimeout("the virtual ESP32 did not report its ports within %.0f s (see %s/sim_esp32.log)" % (timeout, dirname))
        time.sleep(0.05)
    time.sleep(0.05)
    return p, json.loads(open(pf).read())


def stop(p):
    """Stop it, and whatever it left in its process group (its ROM
    bootloader, which a SIGTERM at the wrong moment leaves running)."""
    import signal

    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(5)
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


@target_factory.reg_driver
@attr.s(eq=False)
class VirtualESP32Driver(Driver):
    """Starts the virtual ESP32 unless one already answers at the bound
    port (left running by someone else: it is used, and not stopped)."""

    bindings = {"port": "RawSerialPort"}
    dir = attr.ib(validator=attr.validators.instance_of(str))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.proc = None
        self.ports = None

    def on_activate(self):
        link = self.port.port
        if os.path.exists(link):
            return
        if os.path.islink(link):
            os.remove(link)  # a dead one's
        self.proc, self.ports = start(self.dir)
        atexit.register(self.on_deactivate)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(self.ports["repl"], link)

    def on_deactivate(self):
        if self.proc is None:
            return
        stop(self.proc)
        self.proc = None
        if os.path.islink(self.port.port):
            os.remove(self.port.port)
