"""A virtual ESP32 for CI and for trying tools/flash.py without a board.

    edgefw sim-esp32 [--dir DIR] [--heap SIZE]

prints two serial ports and runs until Ctrl-C:

- ``rom``: the ROM bootloader, ``esp32-mock-bootloader run --pty --chip
  esp32``, which answers esptool (flash-id, write-flash, verify-flash);
- ``repl``: MicroPython's REPL on the sim board: the real unix port
  behind a pty, with the device's filesystem in ``DIR/fs`` and the ROM
  (the simulator, ``edgefw/emul/vesp32.py``) beside it. mpremote works on it.

The unix port differs from a chip in ways the bridge here hides: it exits
on Ctrl-D at an empty prompt (the bridge restarts it, as a soft reset:
``MPY: soft reboot`` then boot.py and main.py at the friendly REPL, only
boot.py at the raw REPL, which it re-enters), and a Ctrl-C byte does not
interrupt a running program (the bridge sends SIGINT). Known differences
from a chip, measured with mpremote 1.29: ``fs ls`` shows sizes 0;
``cp -r dir :`` copies into the root (use ``cp -r dir :dir``);
``mpremote mount`` hangs.
"""

import os
import select
import signal
import subprocess
import sys
import time
import tty
from pathlib import Path

from edgefw.emul import vesp32

PROMPTS = (b">>> ", b"raw REPL; CTRL-B to exit\r\n>", b"\x04>")


class Bridge:
    """The unix port on a pty, restarted the way a chip soft-resets."""

    def __init__(self, fs, rom, heap="256k", cause="power"):
        self.fs = Path(fs)
        self.rom = rom
        self.heap = heap
        self.cause = cause
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.port = os.ttyname(slave)
        self._slave = slave  # kept open: the port stays while we run
        self.child = None
        self.cm = None
        self.raw = False
        self.tail = b""
        self._last = 0
        self.boots = 0

    def _start(self, run_main):
        cm, cs = os.openpty()
        tty.setraw(cs)  # no newline translation there: done in _cooked, as a chip's UART driver does
        code = "import _vesp32\n_vesp32.start(%r)" % bool(run_main)
        exe = os.environ.get("EDGEFW_MICROPYTHON", "micropython")
        self.child = subprocess.Popen(
            [exe, "-X", "heapsize=" + self.heap, "-i", "-c", code],
            stdin=cs,
            stdout=cs,
            stderr=cs,
            cwd=self.fs,
            env=vesp32.env(self.rom, self.cause),
            start_new_session=True,
        )
        os.close(cs)
        self.cm = cm
        self.boots += 1
        self.tail = b""
        if not run_main:
            os.write(cm, b"\x01")  # back into the raw REPL it was in

    def start(self):
        self.fs.mkdir(parents=True, exist_ok=True)
        self._start(True)

    def stop(self):
        if self.child is not None and self.child.poll() is None:
            self.child.kill()
            self.child.wait(5)

    def _cooked(self, data):
        """Every newline as CR LF, as MicroPython's stdout on a chip."""
        out = bytearray()
        for b in data:
            if b == 10 and self._last != 13:
                out.append(13)
            out.append(b)
            self._last = b
        return bytes(out)

    def _busy(self):
        return not self.tail.endswith(PROMPTS)

    def step(self, timeout=0.05):
        fds = [self.master] + ([self.cm] if self.cm is not None else [])
        r, _, _ = select.select(fds, [], [], timeout)
        if self.master in r:
            try:
                data = os.read(self.master, 4096)
            except OSError:
                data = b""
            for b in data:
                c = bytes([b])
                if c == b"\x01":
                    self.raw = True
                elif c == b"\x02":
                    self.raw = False
                if c == b"\x03" and self._busy() and self.child.poll() is None:
                    os.killpg(self.child.pid, signal.SIGINT)
                    continue
                try:
                    os.write(self.cm, c)
                except OSError:
                    pass
        if self.cm in r:
            try:
                data = os.read(self.cm, 4096)
            except OSError:
                data = b""
            if data:
                self.tail = (self.tail + data)[-64:]
                os.write(self.master, self._cooked(data))
        if self.child.poll() is not None:
            # it exited: Ctrl-D at a prompt, a program's sys.exit, a crash
            try:
                while True:
                    rest = os.read(self.cm, 4096)
                    if not rest:
                        break
                    os.write(self.master, self._cooked(rest))
            except OSError:
                pass
            os.close(self.cm)
            self.cm = None
            os.write(self.master, b"soft reboot\r\n" if self.raw else b"MPY: soft reboot\r\n")
            self.cause = "soft"
            self._start(not self.raw)


def start_rom(chip="esp32", timeout=None):
    """esp32-mock-bootloader on a pty: (process, port)."""
    exe = os.path.join(os.path.dirname(sys.executable), "esp32-mock-bootloader")
    if not os.path.exists(exe):
        raise SystemExit("edgefw sim-esp32: esp32-mock-bootloader not found; pip install 'esp32-mock-bootloader==0.3.0'")
    args = [exe, "run", "--pty", "--chip", chip] + (["--timeout", str(timeout)] if timeout else [])
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 10:
        r, _, _ = select.select([p.stdout], [], [], 0.5)
        if r:
            line = p.stdout.readline().strip()
            if line.startswith("/dev/"):
                return p, line
        if p.poll() is not None:
            break
    p.kill()
    raise RuntimeError("esp32-mock-bootloader did not report its port")


def add_parser(ap):
    ap.add_argument("--dir", help="where the device's filesystem and ROM live (default: a temporary directory)")
    ap.add_argument("--heap", default="256k", help="MicroPython heap (default 256k)")
    ap.add_argument("--port-file", help="also write the two ports to this file, as JSON")


def main(a):
    import tempfile

    base = Path(a.dir or tempfile.mkdtemp(prefix="sim-esp32-"))
    rom_dir = vesp32.build_rom(base / "rom")
    rom, rom_port = start_rom()
    br = Bridge(base / "fs", rom_dir, a.heap)
    br.start()
    ports = {"rom": rom_port, "repl": br.port, "fs": str(base / "fs")}
    if a.port_file:
        import json

        Path(a.port_file).write_text(json.dumps(ports))
    print("virtual ESP32: rom %s  repl %s  (filesystem %s)" % (rom_port, br.port, base / "fs"), flush=True)
    print("try: python tools/flash.py --board esp32_devkitc --port %s --rom-port %s" % (br.port, rom_port), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            br.step(0.05)
            if rom.poll() is not None:
                rom, ports["rom"] = start_rom()
    except KeyboardInterrupt:
        pass
    finally:
        br.stop()
        rom.kill()
    return 0
