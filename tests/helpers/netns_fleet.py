"""A fleet of Linux "devices" on this machine for the rollout tests: each
its own network namespace, joined to the host by a veth pair, with its
own sshd listening on its own address, and its own root directory that
updates install into (``--remote-root``). Root only.

    with Fleet(tmp_path, 20) as fleet:
        fleet.devices[3]   # {"id", "ns", "address", "root", "host_if"}
        fleet.link(3, up=False)

Names carry this process's id so parallel runs by others do not collide;
everything made is removed on exit, also after a failure.
"""

import itertools
import os
import random
import shutil
import socket
import subprocess
import time

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)

_FLEETS = itertools.count()


def _run(*argv, check=True):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    if check and r.returncode:
        raise RuntimeError("%s: %s" % (" ".join(argv), r.stderr.strip()))
    return r


def missing():
    """Why the fleet cannot be built here, or None."""
    if os.geteuid() != 0:
        return "needs root for network namespaces"
    if SSHD is None:
        return "no sshd (Debian package openssh-server)"
    if shutil.which("ip") is None:
        return "no ip (Debian package iproute2)"
    r = subprocess.run(["ip", "netns", "add", "rochk%d" % os.getpid()], capture_output=True, text=True, timeout=30)
    if r.returncode:
        return "ip netns add is not allowed: %s" % r.stderr.strip()
    _run("ip", "netns", "del", "rochk%d" % os.getpid(), check=False)
    return None


def _free_octet():
    used = _run("ip", "-4", "addr").stdout + _run("ip", "-4", "route").stdout
    choices = [o for o in range(200, 250) if "10.%d." % o not in used]
    if not choices:
        raise RuntimeError("no free 10.x.0.0/16 for the test fleet")
    return random.choice(choices)


class Fleet:
    def __init__(self, base, n, keys_dir=None, board="rpi4"):
        self.base = base
        self.n = n
        self.keys_dir = keys_dir
        self.board = board
        # unique per fleet, not only per process: a fleet whose links the
        # kernel is still tearing down must not collide with the next one
        self.tag = "%d%d" % (os.getpid() % 100000, next(_FLEETS) % 10)
        self.devices = []
        self.procs = []
        self.made_ns = []

    def __enter__(self):
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        self.close()

    def _build(self):
        d = self.base
        for name in ("host", "client"):
            if not (d / name).exists():
                _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(d / name))
        shutil.copy(d / "client.pub", d / "authorized_keys")
        os.makedirs("/run/sshd", exist_ok=True)
        octet = _free_octet()
        for i in range(self.n):
            ns = "ro%s-%d" % (self.tag, i)
            host_if = "r%sh%d" % (self.tag, i)
            _run("ip", "netns", "add", ns)
            self.made_ns.append(ns)
            _run("ip", "link", "add", host_if, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "addr", "add", "10.%d.%d.1/30" % (octet, i), "dev", host_if)
            _run("ip", "link", "set", host_if, "up")
            addr = "10.%d.%d.2" % (octet, i)
            _run("ip", "netns", "exec", ns, "ip", "addr", "add", addr + "/30", "dev", "eth0")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "eth0", "up")
            _run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
            dd = d / ("dev%02d" % i)
            root = dd / "root"
            (root / "etc" / "edgefw" / "keys").mkdir(parents=True)
            (root / "etc" / "edgefw" / "board").write_text(self.board + "\n")
            if self.keys_dir:
                for k in os.listdir(self.keys_dir):
                    shutil.copy(os.path.join(self.keys_dir, k), root / "etc" / "edgefw" / "keys" / k)
            cfg = dd / "sshd_config"
            cfg.write_text(
                "ListenAddress %s\nPort 22\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\n"
                "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
                "PermitRootLogin prohibit-password\nMaxStartups 100\nSubsystem sftp internal-sftp\n" % (addr, d / "host", d / "authorized_keys", dd / "sshd.pid")
            )
            p = subprocess.Popen(["ip", "netns", "exec", ns, SSHD, "-D", "-e", "-f", str(cfg)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs.append(p)
            self.devices.append({"id": "n%02d" % i, "ns": ns, "address": addr, "root": str(root), "host_if": host_if})
        deadline = time.monotonic() + 30
        for dev in self.devices:
            while True:
                try:
                    socket.create_connection((dev["address"], 22), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError("sshd in %s did not answer" % dev["ns"])
                    time.sleep(0.1)

    def link(self, i, up):
        """The device's own end of its link, down or up (as when its cable
        or Wi-Fi goes); the host end loses carrier with it."""
        _run("ip", "netns", "exec", self.devices[i]["ns"], "ip", "link", "set", "eth0", "up" if up else "down")

    def ssh_options(self):
        # one master connection per device, reused by every ssh and scp
        # of an install and by the status polls (a handshake costs a
        # second on a loaded machine); a master to a device whose link
        # went down gives up after ~6 s of unanswered keep-alives
        return ["StrictHostKeyChecking=no", "UserKnownHostsFile=/dev/null", "LogLevel=ERROR", "ControlMaster=auto",
                "ControlPath=%s/cm-%%C" % self.base, "ControlPersist=60", "ServerAliveInterval=2", "ServerAliveCountMax=3"]

    def inventory(self, path, python, extra_ssh=""):
        rows = ["[ssh]", 'user = "root"', 'identity = "%s"' % (self.base / "client"),
                "options = [%s]" % ", ".join('"%s"' % o for o in self.ssh_options()), 'python = "%s"' % python, extra_ssh]
        for dev in self.devices:
            rows += ["", "[[device]]", 'id = "%s"' % dev["id"], 'board = "%s"' % self.board, 'address = "%s"' % dev["address"],
                     'root = "%s"' % dev["root"], 'labels = {ring = "%s"}' % ("canary" if dev["id"] == "n00" else "main")]
        path.write_text("\n".join(rows) + "\n")
        return str(path)

    def close(self):
        for dev in self.devices:
            subprocess.run(["ssh", "-o", "ControlPath=%s/cm-%%C" % self.base, "-O", "exit", "root@" + dev["address"]],
                           capture_output=True, timeout=30, stdin=subprocess.DEVNULL)
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs = []
        for ns in self.made_ns:
            _run("ip", "netns", "del", ns, check=False)
        self.made_ns = []
