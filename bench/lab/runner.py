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

from edgefw.build.contents import DEVICE_PACKAGES
from edgefw.emul import micropython

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
        if micropython.executable() is None:
            raise BenchTimeout(micropython.MISSING)

    def _env(self):
        return micropython.env(self.root)

    def _cmd(self, args):
        return micropython.argv(args, self.heap)

    def call(self, module, func, kwargs, timeout, share=()):
        try:
            p = subprocess.run(self._cmd(["-c", _probe_code(module, func, kwargs)]), cwd=self.root, env=self._env(), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchTimeout("probe %s.%s: no result within %.0f s (killed)" % (module, func, timeout))
        return _result(p.stdout, p.stderr, p.returncode, "probe %s.%s" % (module, func))

    def firmware(self, args, share=()):
        return ProcessConsole(self._cmd(["-m", "firmware.app"] + list(args)), self.root, self._env())


class Wasm32:
    """The 32-bit wasm MicroPython under node (edgefw/emul/wasm32.py); files
    written under a ``share`` directory come back when the run ends."""

    name = "wasm32"

    def __init__(self, root, heap):
        from edgefw.emul import wasm32

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
def map_share(share, dev_dir, values, root, tree_dest, prefix=""):
    """For a runtime whose board has its own filesystem: the board
    directories of the ``share`` directories (``dev_dir(d)`` each), the
    copies that fill them, as (host file, board path), and ``values`` with
    host paths rewritten to ``prefix`` + board path. A relative path in
    ``values`` naming a file of the tree at ``root`` (a scenario, a config)
    is copied too, to ``tree_dest(path)``."""
    dirs, copies, mapping = [], [], []
    for d in share:
        dev = dev_dir(d)
        dirs.append(dev)
        mapping.append((str(d).rstrip("/"), dev))
        for f in sorted(Path(d).rglob("*")):
            if f.is_file():
                copies.append((str(f), dev + "/" + f.relative_to(d).as_posix()))

    def rw(v):
        if isinstance(v, str):
            for host, dev in mapping:
                if v == host or v.startswith(host + "/"):
                    return prefix + dev + v[len(host) :]
            if not v.startswith("-") and not os.path.isabs(v) and os.path.isfile(os.path.join(root, v)):
                dest = tree_dest(v)
                copies.append((os.path.join(root, v), dest))
                return prefix + dest
        if isinstance(v, list):
            return [rw(x) for x in v]
        if isinstance(v, dict):
            return dict((k, rw(x)) for k, x in v.items())
        return v

    return dirs, copies, rw(values)


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
        from edgefw.deploy.flash import ESP32 as Flasher

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

        from edgefw.build import mpy
        from edgefw.deploy.flash import FlashError

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

        def fresh(_d):
            self._n += 1
            return "%s/%d" % (self.TMP, self._n)

        dirs, copies, values = map_share(share, fresh, values, self.root, lambda v: "%s/files/%s" % (self.TMP, v))
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


# the board side of an SSH call: the share directories made before and
# removed after, as on an ESP32
_SSH_CALL = """import json, shutil, sys
sys.path.insert(0, %r)
from bench.probes import %s as _m
try:
    _r = _m.%s(**json.loads(%r))
    print(%r + json.dumps(_r), flush=True)
finally:
    for _d in %r:
        shutil.rmtree(_d, ignore_errors=True)
"""

# the packages of this tree a board over SSH imports from its copy
# what the board runs (edgefw.build.contents), plus the bench's probes and
# the sim's fault helpers they import; never the workstation's edgefw package
SSH_PACKAGES = DEVICE_PACKAGES + ("sim", "bench")


class SSHConsole(ProcessConsole):
    """The firmware on a Linux board, its console an ``ssh`` session:
    ``kill`` is a power cut of the process (SIGKILL on the board, by the
    PID it wrote), not only of the local ssh."""

    def __init__(self, cmd, cwd, env, rt, pidfile):
        self.rt = rt
        self.pidfile = pidfile
        super().__init__(cmd, cwd, env)

    def kill(self):
        try:
            self.rt.sh("p=$(cat %s 2>/dev/null) && kill -9 $p 2>/dev/null; rm -f %s; true" % (self.pidfile, self.pidfile), timeout=30)
        finally:
            super().kill()


class SSH:
    """A Linux board (a Raspberry Pi, the emulated Pi) reached with the
    system ``ssh``: the probes run by the board's ``python3`` from a copy
    of this tree's packages in ``remote_dir`` (copied, as one tar stream,
    when their hash differs from the copy's), the firmware is the board's
    ``python3 -m firmware.linux run --board BOARD`` with that copy first on its path.

    ``ssh``: the ``ssh`` argv up to and including the destination
    (``user@host``), one connection shared by every call (OpenSSH's
    ControlMaster). A call's share directories become directories under
    ``remote_dir/bt`` (their files copied there first, removed after),
    and arguments naming them, or files of this tree, are rewritten, as
    on an ESP32. ``reach(port)``: this host's loopback port as the board
    reaches it (a reverse forward over the connection)."""

    name = "ssh"

    def __init__(self, root, heap, ssh=None, board="rpi4", remote_dir="edgefw-bench"):
        if not ssh:
            raise BenchTimeout("the ssh runtime needs the board's address: a NetworkService resource")
        import tempfile

        self.root = str(root)
        self.board = board
        self.dest = ssh[-1]
        self._ctl = tempfile.mkdtemp(prefix="edgefw-ssh-")
        self.ssh = list(ssh[:-1]) + ["-o", "ControlMaster=auto", "-o", "ControlPath=%s/c" % self._ctl, "-o", "ControlPersist=600", self.dest]
        self.dir = remote_dir.rstrip("/")
        self._synced = False
        self._n = 0
        self._forwards = set()
        self._dirs = {}

    # ssh --------------------------------------------------------------
    def sh(self, command, timeout=60, input=None, what=None):
        """``command`` run by the board's shell: (exit code, stdout, stderr)."""
        try:
            p = subprocess.run(self.ssh + [command], input=input, capture_output=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchTimeout("%s on %s: no result within %.0f s" % (what or repr(command[:60]), self.dest, timeout))
        if p.returncode == 255:
            raise BenchTimeout("ssh to %s failed: %s" % (self.dest, p.stderr.decode("utf-8", "replace").strip()[-1000:]))
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")

    def connect(self, timeout=30.0):
        """The shared connection, opened (fails naming the host)."""
        try:
            p = subprocess.run(self.ssh[:-1] + ["-o", "ConnectTimeout=%d" % max(1, int(timeout)), "-M", "-N", "-f", self.dest], capture_output=True, text=True, timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            raise BenchTimeout("no SSH connection to %s within %.0f s" % (self.dest, timeout))
        if p.returncode != 0:
            raise BenchTimeout("no SSH connection to %s: %s" % (self.dest, p.stderr.strip()[-1000:]))

    def close(self):
        subprocess.run(self.ssh[:-1] + ["-O", "exit", self.dest], capture_output=True, timeout=30)
        shutil.rmtree(self._ctl, ignore_errors=True)

    def reach(self, port):
        if port not in self._forwards:
            p = subprocess.run(self.ssh[:-1] + ["-O", "forward", "-R", "%d:127.0.0.1:%d" % (port, port), self.dest], capture_output=True, text=True, timeout=30)
            if p.returncode != 0:
                raise BenchTimeout("forwarding port %d to %s failed: %s" % (port, self.dest, p.stderr.strip()))
            self._forwards.add(port)
        return "127.0.0.1:%d" % port

    # the tree on the board ------------------------------------------------
    def _files(self):
        base = Path(self.root)
        out = []
        for top in SSH_PACKAGES:
            for f in sorted((base / top).rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts and f.suffix in (".py", ".json"):
                    out.append(f.relative_to(base).as_posix())
        return out

    def sync(self):
        """Copy this tree's packages to the board when their hash differs
        from the copy there (its ``.bundle``): what happened."""
        import hashlib
        import io
        import tarfile

        files = self._files()
        h = hashlib.sha256()
        for r in files:
            h.update(r.encode() + b"\0" + (Path(self.root) / r).read_bytes())
        want = h.hexdigest()[:16]
        if not self.dir.startswith("/"):
            # relative to the login's home: made absolute once
            rc, out, err = self.sh("mkdir -p %s && cd %s && pwd" % (self.dir, self.dir), what="making the bench directory")
            if rc != 0 or not out.strip().startswith("/"):
                raise ProbeError("no bench directory %s on %s: %s" % (self.dir, self.dest, (out + err)[-500:]))
            self.dir = out.strip().splitlines()[-1]
        rc, have, _e = self.sh("cat %s/.bundle 2>/dev/null" % self.dir, what="reading the bundle")
        have = have.strip() or None
        res = {"bundle": want, "device_had": have, "flashed": have != want, "copied": 0}
        if have != want:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w:gz") as t:
                for r in files:
                    t.add(os.path.join(self.root, r), arcname=r)
            cmd = "rm -rf {d} && mkdir -p {d} && tar -xzf - -C {d} && echo {b} > {d}/.bundle".format(d=self.dir, b=want)
            rc, out, err = self.sh(cmd, timeout=120, input=buf.getvalue(), what="copying the tree")
            if rc != 0:
                raise ProbeError("copying the tree to %s:%s failed: %s" % (self.dest, self.dir, (out + err)[-1000:]))
            res["copied"] = len(files)
        self._synced = True
        return res

    def prepare(self, timeout_s=60.0):
        t0 = time.monotonic()
        self.connect(timeout_s)
        res = self.sync()
        res["s"] = round(time.monotonic() - t0, 2)
        return res

    def _map(self, share, values):
        """Board directories for the share directories, a tar of their
        files (and of files of this tree named in ``values``), and
        ``values`` with host paths rewritten."""
        import io
        import tarfile

        def session_dir(d):
            # one directory per host directory for the session: a probe
            # reads what the firmware wrote in the same test's directory
            if str(d) not in self._dirs:
                self._n += 1
                self._dirs[str(d)] = "bt/%d" % self._n
            return self._dirs[str(d)]

        # a file of the tree goes to its own path in the board's copy of the tree
        dirs, files, values = map_share(share, session_dir, values, self.root, lambda v: v, prefix=self.dir + "/")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            for d in dirs:
                ti = tarfile.TarInfo(d)
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
                t.addfile(ti)
            for host, dev in files:
                t.add(host, arcname=dev)
        return [self.dir + "/" + d for d in dirs], buf.getvalue(), values

    def _put(self, tar):
        rc, out, err = self.sh("mkdir -p {d} && tar -xf - -C {d}".format(d=self.dir), input=tar, what="copying files")
        if rc != 0:
            raise ProbeError("copying files to %s failed: %s" % (self.dest, (out + err)[-1000:]))

    def call(self, module, func, kwargs, timeout, share=()):
        if not self._synced:
            self.prepare()
        dirs, tar, kwargs = self._map(share, kwargs)
        self._put(tar)
        code = _SSH_CALL % (self.dir, module, func, json.dumps(kwargs), MARK, dirs)
        # the code on stdin: no quoting through the remote shell
        rc, out, err = self.sh("cd %s && exec python3 -" % self.dir, timeout=timeout, input=code.encode(), what="probe %s.%s" % (module, func))
        return _result(out, err, rc, "probe %s.%s on %s" % (module, func, self.dest))

    def firmware(self, args, share=()):
        """``python3 -m firmware.linux run --board BOARD ARGS`` on the board,
        its output the console (unbuffered)."""
        import shlex

        if not self._synced:
            self.prepare()
        dirs, tar, args = self._map(share, list(args))
        self._put(tar)
        self._n += 1
        pidfile = "%s/fw-%d.pid" % (self.dir, self._n)
        cmd = "cd {d} && echo $$ > {p} && PYTHONPATH={d} PYTHONUNBUFFERED=1 exec python3 -m firmware.linux run --board {b} {a} 2>&1".format(d=self.dir, p=pidfile, b=shlex.quote(self.board), a=" ".join(shlex.quote(a) for a in args))
        return SSHConsole(self.ssh + [cmd], self.root, dict(os.environ), self, pidfile)


RUNTIMES = {"cpython": CPython, "unix": Unix, "wasm32": Wasm32, "esp32": ESP32, "ssh": SSH}
