"""Install a bundle on a device over SSH with the system ``ssh``/``scp``.

    ssh_install("pi@10.0.0.7", "v2.edgefw", port=22)   # -> exit code

Steps, each printed: connect (Python, pycryptodome and free space on the
device), copy (the bundle and this installer to a temporary directory on
the device), install (the device verifies and installs, streaming its
steps), clean up. The device verifies with the installer copied from
this host, against the public keys in its own /etc/edgefw/keys.
"""

import io
import os
import shlex
import subprocess
import sys
import tarfile
import tempfile
import time

from edgefw.build.contents import board_files
from firmware.linux import bundle as B
from firmware.linux import update as U
from hal.errors import EdgefwError


class SSHError(EdgefwError, OSError):
    """An SSH or scp step failed; ``reason`` is one short word for scripts."""

    def __init__(self, reason, message):
        OSError.__init__(self, "%s: %s" % (reason, message))
        self.reason = reason


# the installer is what a Linux board runs (edgefw.build.contents): every
# Linux board runs the same packages, so any one of them names the set
INSTALLER_BOARD = B.LINUX_BOARDS[0]


def classify(stderr):
    """The reason an ``ssh`` that exited 255 failed."""
    s = stderr.lower()
    for key in (
        "connection refused",
        "no route to host",
        "timed out",
        "could not resolve",
        "network is unreachable",
        "connection closed by",
        "connection reset",
    ):
        if key in s:
            return "unreachable"
    for key in ("permission denied", "too many authentication failures", "host key verification failed"):
        if key in s:
            return "login-refused"
    return "ssh-failed"


def parse_df(text):
    """Free bytes from the last line of ``df -Pk``."""
    line = text.strip().splitlines()[-1].split()
    return int(line[3]) * 1024


class Remote:
    def __init__(self, dest, port=22, identity=None, options=(), timeout=30):
        self.dest = dest
        self.base = ["-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        for o in options:
            self.base += ["-o", o]
        if identity:
            self.base += ["-i", identity, "-o", "IdentitiesOnly=yes"]
        self.port = str(port)
        self.timeout = timeout

    def run(self, command, timeout=None, stream=None):
        argv = ["ssh", "-p", self.port] + self.base + [self.dest, command]
        if stream is None:
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout or self.timeout, stdin=subprocess.DEVNULL)
            except subprocess.TimeoutExpired:
                raise SSHError("unreachable", "%s did not answer within %d s" % (self.dest, timeout or self.timeout))
            if r.returncode == 255:
                raise SSHError(classify(r.stderr), r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "ssh exited 255")
            return r.returncode, r.stdout, r.stderr
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            for line in p.stdout:
                stream(line.rstrip("\n"))
                if time.monotonic() > deadline:
                    raise subprocess.TimeoutExpired(argv, timeout)
            p.wait(timeout=max(1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            raise SSHError("timeout", "the device did not finish within %d s" % (timeout or self.timeout))
        err = p.stderr.read()
        p.stderr.close()
        p.stdout.close()
        if p.returncode == 255:
            raise SSHError(classify(err), err.strip() or "ssh exited 255: connection lost")
        return p.returncode, "", err

    def copy(self, local, remote, timeout=300):
        argv = ["scp", "-q", "-P", self.port] + self.base + [local, "%s:%s" % (self.dest, remote)]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise SSHError("timeout", "copying %s took longer than %d s" % (os.path.basename(local), timeout))
        if r.returncode:
            e = r.stderr.strip()
            reason = "no-space" if "no space" in e.lower() else classify(e)
            raise SSHError(reason, e or "scp exited %d" % r.returncode)


def _bundle_min_python(path):
    """The manifest's minimum Python (read here, unverified: the device
    verifies the signature; this only spares it an installer it cannot run)."""
    import json

    try:
        with tarfile.open(path, "r:") as tar:
            return str(json.loads(tar.extractfile("manifest.json").read())["min_python"])
    except (OSError, KeyError, ValueError, tarfile.TarError, AttributeError):
        return B.MIN_PYTHON


def installer_tar():
    """The installer (``python -m firmware.linux update install``) with
    what it imports: the packages a Linux board runs, as tar bytes."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel, src in board_files(INSTALLER_BOARD):
            tar.add(str(src), rel)
    return buf.getvalue()


def ssh_install(dest, path, port=22, identity=None, options=(), board=None, remote_python="python3", remote_root="/", progress=U._progress, **kw):
    """Copy, verify on the device, install, wait; return an exit code."""
    try:
        r = Remote(dest, port, identity, options)
        progress("step connect %s:%s" % (dest, port))
        py = shlex.quote(remote_python)
        root = shlex.quote(remote_root)
        probe = (
            "command -v %s >/dev/null 2>&1 || { echo NOPYTHON; exit 0; }; "
            "%s -c 'import sys; print(\"PY %%d.%%d\" %% sys.version_info[:2])'; "
            "{ %s -c 'import Crypto.Signature.eddsa' 2>/dev/null || %s -c 'import Cryptodome.Signature.eddsa' 2>/dev/null; } && echo CRYPTO; "
            'df -Pk /tmp | tail -n 1; d=%s; while [ ! -d "$d" ]; do d=$(dirname "$d"); done; df -Pk "$d" | tail -n 1'
        ) % (py, py, py, py, root)
        _, out, _ = r.run(probe)
        if "NOPYTHON" in out:
            raise SSHError("no-python", "%s has no %s: install Python >= %s on the device" % (dest, remote_python, B.MIN_PYTHON))
        lines = out.strip().splitlines()
        ver = next((ln.split()[1] for ln in lines if ln.startswith("PY ")), None)
        if ver is None:
            raise SSHError("no-python", "%s on %s does not run: %s" % (remote_python, dest, out.strip()[-200:]))
        need = _bundle_min_python(path)
        if tuple(int(x) for x in ver.split(".")[:2]) < B.parse_version(need)[:2]:
            raise SSHError("python-too-old", "%s has Python %s; the bundle needs %s or newer (%s --version on the device)" % (dest, ver, need, remote_python))
        if "CRYPTO" not in lines:
            raise SSHError(
                "no-pycryptodome",
                "%s's Python %s lacks pycryptodome with Ed25519, 3.15 or newer (pip install 'pycryptodome>=3.15'; Debian 12's python3-pycryptodome is 3.11, too old)"
                % (dest, ver),
            )
        size = os.path.getsize(path)
        tmp_free, root_free = parse_df(lines[-2]), parse_df(lines[-1])
        if tmp_free < size * 2 + (4 << 20):
            raise SSHError("no-space", "%s has %d kB free in /tmp, the bundle needs %d kB" % (dest, tmp_free >> 10, (size * 2 + (4 << 20)) >> 10))
        if root_free < size * 2:
            raise SSHError("no-space", "%s has %d kB free under %s, the update needs %d kB" % (dest, root_free >> 10, remote_root, (size * 2) >> 10))
        progress("step connected: Python %s, %d MB free" % (ver, root_free >> 20))
        _, out, _ = r.run("mktemp -d /tmp/edgefw-update.XXXXXX")
        rtmp = out.strip()
        try:
            progress("step copy %s (%d kB)" % (os.path.basename(path), size >> 10))
            # a file of its own: several devices may be given the same
            # bundle at once (a rollout's stage)
            fd, local = tempfile.mkstemp(prefix="edgefw-installer-", suffix=".tar")
            with os.fdopen(fd, "wb") as f:
                f.write(installer_tar())
            try:
                r.copy(local, rtmp + "/installer.tar")
            finally:
                os.unlink(local)
            r.copy(path, rtmp + "/bundle.edgefw")
            progress("step install on %s" % dest)
            cmd = "cd %s && tar -xf installer.tar && PYTHONPATH=%s %s -m firmware.linux update install --rootfs %s" % (rtmp, rtmp, py, root)
            cmd += " --timeout %s --settle %s --max-restarts %d" % (kw.get("timeout", 60.0), kw.get("settle", 5.0), kw.get("max_restarts", 2))
            if kw.get("allow_downgrade"):
                cmd += " --allow-downgrade"
            for k in kw.get("add_keys") or ():
                r.copy(k, rtmp + "/" + os.path.basename(k))
                cmd += " --add-key %s/%s" % (rtmp, shlex.quote(os.path.basename(k)))
            cmd += " bundle.edgefw 2>&1"
            wait = kw.get("timeout", 60.0) * (kw.get("max_restarts", 2) + 1) + kw.get("settle", 5.0) + 300
            code, _, _ = r.run(cmd, timeout=wait, stream=lambda ln: progress("  device: " + ln))
        finally:
            try:
                r.run("rm -rf %s" % shlex.quote(rtmp))
            except SSHError:
                pass
        return code
    except SSHError as e:
        progress("failed: %s" % e)
        return U.REFUSED


def main(a, kw):
    """``edgefw update install --host``: check the bundle's board here, then go."""
    if a.board:
        try:
            with tarfile.open(a.bundle, "r:") as tar:
                import json

                mb = json.loads(tar.extractfile("manifest.json").read()).get("board")
        except (OSError, KeyError, ValueError, AttributeError, tarfile.TarError) as e:
            print("refused: malformed: %s is not a bundle (%s)" % (a.bundle, e), file=sys.stderr)
            return U.REFUSED
        if mb != a.board:
            print("refused: wrong-board: the bundle is for %s, not %s" % (mb, a.board), file=sys.stderr)
            return U.REFUSED
    return ssh_install(a.host, a.bundle, port=a.port, identity=a.identity, options=a.ssh_option, remote_python=a.remote_python, remote_root=a.remote_root, **kw)
