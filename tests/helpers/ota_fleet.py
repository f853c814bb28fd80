"""Virtual ESP32s for the update tests: one image built once, laid out
per device in its own filesystem directory with the A/B layout, each run
by the unix port as a chip would be (a reset starts it again; SIGKILL is
a power cut)."""

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from edgefw.emul import vesp32
from edgefw.fleet import ota
from firmware.device import RESET_EXIT
from tests.conftest import micropython_exe
from tests.test_micropython_coop import SCENARIO as COOP_SCENARIO

KEY = bytes(range(40, 72))
PERIOD_MS = 20

SCENARIO = {
    "description": "quiet, reset pressed at start",
    "duration_s": 600.0,
    # the readings the coop test starts from: all within limits
    "initial": dict(COOP_SCENARIO["initial"]),
    "events": [{"at_s": 0.2, "press": "RESET", "for_s": 0.1}],
}


def make_image(tmp, port, signer_pub):
    """The v1 image (``edgefw mpy-build --board esp32_devkitc``) trusting
    ``signer_pub``, and the ROM of the virtual ESP32."""
    from edgefw.build.mpy import build

    tmp = Path(tmp)
    (tmp / "device.key").write_text(KEY.hex())
    (tmp / "sc.json").write_text(json.dumps(SCENARIO))
    cfg = {
        "device_id": "esp-x",
        "period_ms": PERIOD_MS,
        "record": {"journal": "journal"},
        "uplink": {"enabled": True, "broker": "127.0.0.1:%d" % port, "batch_ms": 200, "key_file": str(tmp / "device.key")},
    }
    (tmp / "cfg.json").write_text(json.dumps(cfg))
    build(tmp / "img", board="esp32_devkitc", config=str(tmp / "cfg.json"), scenario=str(tmp / "sc.json"))
    ota.trust(tmp / "img", [signer_pub])
    vesp32.build_rom(tmp / "rom")
    return tmp / "img", tmp / "rom"


def flash(image, fs, dev):
    """``image`` as device ``dev``'s filesystem, in the A/B layout."""
    ota.flash_layout(image, fs)
    pre = Path(fs) / "a" / "firmware" / "prechecked.json"
    doc = json.loads(pre.read_text())
    doc["config"]["device_id"] = dev
    pre.write_text(json.dumps(doc, separators=(",", ":")))


class VDevice:
    """One virtual ESP32: ``start()`` powers it on; a reset it asks for
    (exit RESET_EXIT) starts it again; ``power_cut()`` kills it."""

    def __init__(self, fs, rom, dev, heap="256k"):
        self.fs = Path(fs)
        self.rom = rom
        self.dev = dev
        self.heap = heap
        self.p = None
        self.boots = 0
        self.resets = 0
        self.out = []
        self.exits = []
        self._stop = False
        self._lock = threading.Lock()
        self._t = None

    def _run(self, cause):
        while not self._stop:
            with self._lock:
                self.p = subprocess.Popen(
                    [micropython_exe(), "-X", "heapsize=" + self.heap, "-c", vesp32.BOOT_CMD],
                    cwd=self.fs,
                    env=vesp32.env(self.rom, cause),
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
                self.boots += 1
            for line in self.p.stdout:
                self.out.append(line.rstrip("\n"))
            code = self.p.wait()
            self.exits.append(code)
            if code != RESET_EXIT:
                return
            self.resets += 1
            cause = "soft"

    def start(self, cause="power"):
        self._stop = False
        self._t = threading.Thread(target=self._run, args=(cause,), daemon=True)
        self._t.start()
        return self

    def power_cut(self):
        """SIGKILL, as the power going: nothing is flushed or closed."""
        self._stop = True
        with self._lock:
            p = self.p
        if p is not None and p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
        if self._t is not None:
            self._t.join(10)

    def stop(self):
        self.power_cut()

    def state(self):
        return json.loads((self.fs / "ota.json").read_text())

    def text(self):
        return "\n".join(self.out[-60:])


def wait(pred, timeout, step=0.1):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(step)
    return pred()
