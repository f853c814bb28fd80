"""An emulated ARM64 board that boots Debian bookworm with systemd, for the
service and update tests: the kernel, gpio-sim and i2c-stub of
``qemu_arm64.Arm64Guest``, a root filesystem unpacked from Debian's arm64
packages onto an ext4 disk image, an SSH server reached through QEMU's
user network restricted to one forwarded loopback port.

    g = SystemdGuest()                  # cache: as Arm64Guest's
    g.prepare()                         # downloads, rootfs, base image (cached)
    disk = g.new_disk(tmp_path / "disk.img")
    vm = g.boot(disk, ROOT)             # returns once sshd answers
    rc, out = vm.ssh("systemctl is-active edgefw")
    vm.power_cut()                      # QEMU killed: no clean shutdown
    vm = g.boot(disk, ROOT)             # the same disk again

The root filesystem is made without running any package's maintainer
scripts (no emulation needed): the few things they would do (users, host
keys, enabled units) are done here. The initrd's /init loads the disk and
network modules, copies a payload onto the root and hands over to
systemd. There is no udev: a oneshot unit (qemu_guest/board_setup.py)
loads gpio-sim and i2c-stub, names the lines as the rpi4's, fills the
chips' registers and gives the device nodes to the gpio and i2c groups,
as a board's kernel and udev rules would; another (qemu_guest/relay.py)
is the relay's auxiliary contact.

The payload, fresh on every boot: this checkout installed into
/usr/local/lib/python3.11/dist-packages with an ``edgefw`` command, and
the qemu_guest/ scripts (``board.py`` drives the simulated lines from a
shell: ``board.py hot``, ``board.py estop on``, ``board.py reset``,
``board.py permit``).
"""

import glob
import json
import os
import shutil
import socket
import subprocess
import threading
import time

from tests.helpers.qemu_arm64 import PRUNE, Arm64Guest, _Cpio, register_images, require_host_tools, run

ROOTFS_PACKAGES = (
    "systemd", "systemd-sysv", "openssh-server", "python3-minimal", "libpython3.11-stdlib",
    "passwd", "login", "util-linux", "mount", "coreutils", "bash", "dash", "procps", "kmod", "iproute2", "tar", "gzip",
    "findutils", "grep", "sed", "diffutils", "debianutils", "base-files", "base-passwd", "ncurses-base",
    "libpam-modules", "libpam-runtime", "libpam-modules-bin",
)
# the kernel's modules the guest needs, in load order (the Debian kernel
# ships them without modules.dep; these have no other dependencies)
BOOT_MODULES = (
    "lib/crc16.ko", "fs/mbcache.ko", "fs/jbd2/jbd2.ko", "crypto/crc32c_generic.ko", "fs/ext4/ext4.ko",
    "drivers/virtio/virtio_mmio.ko", "drivers/block/virtio_blk.ko",
    "net/core/failover.ko", "drivers/net/net_failover.ko", "drivers/net/virtio_net.ko",
)
# loaded by the guest's board service, with the simulator modules
GUEST_MODULES = ("fs/configfs/configfs.ko", "drivers/i2c/i2c-dev.ko")
ROOTFS_VERSION = "5"  # bump when the rootfs recipe changes
DISK_MB = 768
GUEST_IP = "10.0.2.15"
BOARD = "rpi4"
# units a board without udev, logind or a login console does not need
MASK = ("serial-getty@.service", "getty@.service", "getty-static.service", "systemd-logind.service", "e2scrub_all.timer", "e2scrub_reap.service",
        "systemd-udevd.service", "systemd-udev-trigger.service", "systemd-udev-settle.service", "systemd-hwdb-update.service",
        "systemd-timesyncd.service", "systemd-pstore.service", "systemd-random-seed.service", "systemd-firstboot.service",
        "systemd-machine-id-commit.service", "systemd-update-utmp.service", "systemd-update-utmp-runlevel.service",
        "apt-daily.timer", "apt-daily-upgrade.timer", "fstrim.timer", "dpkg-db-backup.timer", "logrotate.timer", "man-db.timer")

INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
echo "EDGEFW-QEMU-INIT uptime $(cut -d' ' -f1 /proc/uptime)"
for m in $(cat /modules.list); do insmod /lib/modules/$m || echo "EDGEFW-QEMU-INIT insmod $m failed"; done
mkdir -p /newroot
mount -t ext4 -o rw /dev/vda /newroot || { echo "EDGEFW-QEMU-INIT no root disk"; poweroff -f; }
# this checkout and the guest's helpers, fresh on every boot
cp -a /payload/. /newroot/
echo "EDGEFW-QEMU-INIT root ready $(cut -d' ' -f1 /proc/uptime)"
mount --move /dev /newroot/dev
umount /sys /proc
exec switch_root /newroot /lib/systemd/systemd
"""

# the board's devices: the simulator modules loaded and set up before
# anything else runs, as a board's kernel and udev rules would have them
BOARD_UNIT = """[Unit]
Description=simulated board devices (gpio-sim lines, i2c-stub chips)
DefaultDependencies=no
After=sys-kernel-config.mount
Before=sysinit.target edgefw.service guest-relay.service

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/python3 /usr/local/lib/edgefw-guest/board_setup.py

[Install]
WantedBy=sysinit.target
"""

NET_UNIT = """[Unit]
Description=guest network (QEMU user network, static address)
DefaultDependencies=no
Before=network.target network-online.target ssh.service
Wants=network.target

[Service]
Type=oneshot
RemainAfterExit=yes
ExecStart=/sbin/ip link set lo up
ExecStart=/sbin/ip link set eth0 up
ExecStart=/sbin/ip addr add %s/24 dev eth0
ExecStart=/sbin/ip route add default via 10.0.2.2

[Install]
WantedBy=multi-user.target network-online.target
""" % GUEST_IP

# the relay's auxiliary contact: a service beside edgefw's that copies the
# permit line to the readback line, as the wiring does on a real board
RELAY_UNIT = """[Unit]
Description=simulated relay contact (gpio-sim readback follows the permit)
DefaultDependencies=no
Before=edgefw.service

[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/edgefw-guest/relay.py

[Install]
WantedBy=multi-user.target
"""

ENTRY = """#!/usr/bin/python3
import sys
from edgefw.cli import main
sys.exit(main())
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SystemdGuest:
    def __init__(self, cache_dir=None, log=None):
        self.base = Arm64Guest(cache_dir, log)
        self.cache = self.base.cache
        self.log = self.base.log
        self.times = self.base.times
        self.debs = os.path.join(self.cache, "debs", "rootfs")
        self.rootfs = os.path.join(self.cache, "rootfs")
        self.image = os.path.join(self.cache, "rootfs.ext4")
        self.key = os.path.join(self.cache, "ssh", "id_ed25519")

    def prepare(self):
        t0 = time.monotonic()
        self.base.prepare()
        stamp = os.path.join(self.cache, "rootfs.done")
        want = "%s %s" % (ROOTFS_VERSION, self.base.kernel_release)
        if os.path.exists(stamp) and open(stamp).read() == want and os.path.exists(self.image):
            self.times["rootfs_cached"] = True
        else:
            t1 = time.monotonic()
            self._download()
            self.times["rootfs_fetch_s"] = round(time.monotonic() - t1, 1)
            t1 = time.monotonic()
            self._build_rootfs()
            self._build_image()
            self.times["rootfs_build_s"] = round(time.monotonic() - t1, 1)
            with open(stamp, "w") as f:
                f.write(want)
        self.times["systemd_prepare_s"] = round(time.monotonic() - t0, 1)

    def _download(self):
        os.makedirs(self.debs, exist_ok=True)
        run(["apt-get"] + self.base._apt_opts() + ["install", "-y", "-d", "--no-install-recommends", "-o", "Dir::Cache::archives=" + self.debs] + list(ROOTFS_PACKAGES), 900)

    def _build_rootfs(self):
        r = self.rootfs
        shutil.rmtree(r, ignore_errors=True)
        os.makedirs(r)
        # merged /usr, as bookworm's usrmerge leaves it
        for d in ("bin", "sbin", "lib"):
            os.makedirs(os.path.join(r, "usr", d))
            os.symlink("usr/" + d, os.path.join(r, d))
        for deb in sorted(glob.glob(os.path.join(self.debs, "*.deb"))):
            p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
            try:
                run(["tar", "-x", "--keep-directory-symlink", "-C", r], 300, stdin=p1.stdout)
            finally:
                p1.stdout.close()
                p1.wait(timeout=60)
        for p in PRUNE:
            shutil.rmtree(os.path.join(r, p), ignore_errors=True)
        j = lambda *p: os.path.join(r, *p)  # noqa: E731
        for d in ("proc", "sys", "dev", "run", "tmp", "root/.ssh", "var/log", "var/tmp", "etc/systemd/system/multi-user.target.wants"):
            os.makedirs(j(d), exist_ok=True)
        os.chmod(j("tmp"), 0o1777)
        # what base-passwd's and the packages' scripts would have written
        shutil.copy(j("usr/share/base-passwd/passwd.master"), j("etc/passwd"))
        shutil.copy(j("usr/share/base-passwd/group.master"), j("etc/group"))
        with open(j("etc/passwd"), "a") as f:
            f.write("sshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n")
        with open(j("etc/group"), "a") as f:
            # a Pi's OS has these; the service joins them
            f.write("gpio:x:997:\ni2c:x:998:\n")
        with open(j("etc/passwd")) as f:
            users = [ln.split(":")[0] for ln in f if ln.strip()]
        with open(j("etc/shadow"), "w") as f:
            f.write("".join("%s:*:19000:0:99999:7:::\n" % u for u in users))
        os.chmod(j("etc/shadow"), 0o640)
        with open(j("etc/group")) as f:
            groups = [ln.split(":")[0] for ln in f if ln.strip()]
        with open(j("etc/gshadow"), "w") as f:
            f.write("".join("%s:*::\n" % g for g in groups))
        run(["systemd-sysusers", "--root=" + r], 120)
        with open(j("etc/hostname"), "w") as f:
            f.write("edgefw-qemu\n")
        with open(j("etc/machine-id"), "w") as f:
            f.write(os.urandom(16).hex() + "\n")
        # QEMU's virt machine has no Pi device tree to detect: the board's
        # name where the updater looks for it on an undetectable board
        os.makedirs(j("etc/edgefw"), exist_ok=True)
        with open(j("etc/edgefw/board"), "w") as f:
            f.write(BOARD + "\n")
        with open(j("etc/fstab"), "w") as f:
            f.write("# the root is mounted by the initrd\n")
        if not os.path.exists(j("bin/sh")):
            os.symlink("dash", j("bin/sh"))
        # ssh: host keys, and the test's key for root
        run(["ssh-keygen", "-A", "-f", r], 120)
        if not os.path.exists(self.key):
            os.makedirs(os.path.dirname(self.key), exist_ok=True)
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", self.key], 60)
        shutil.copy(self.key + ".pub", j("root/.ssh/authorized_keys"))
        os.chmod(j("root/.ssh"), 0o700)
        os.chmod(j("root/.ssh/authorized_keys"), 0o600)
        # openssh-server's postinst writes the config from its template
        shutil.copy(j("usr/share/openssh/sshd_config"), j("etc/ssh/sshd_config"))
        with open(j("etc/ssh/sshd_config.d/edgefw-qemu.conf"), "w") as f:
            # no PAM stack: libpam-runtime's script would have written it
            f.write("UseDNS no\nUsePAM no\nPasswordAuthentication no\nPermitRootLogin prohibit-password\n")
        units = j("etc/systemd/system")
        os.makedirs(os.path.join(units, "sysinit.target.wants"), exist_ok=True)
        for name, text, target in (("guest-net.service", NET_UNIT, "multi-user"), ("guest-relay.service", RELAY_UNIT, "multi-user"), ("guest-board.service", BOARD_UNIT, "sysinit")):
            with open(os.path.join(units, name), "w") as f:
                f.write(text)
            os.symlink("../" + name, os.path.join(units, target + ".target.wants", name))
        os.symlink("/lib/systemd/system/ssh.service", os.path.join(units, "multi-user.target.wants", "ssh.service"))
        os.symlink("/lib/systemd/system/multi-user.target", os.path.join(units, "default.target"))
        for m in MASK:
            p = os.path.join(units, m)
            if not os.path.lexists(p):
                os.symlink("/dev/null", p)
        # the guest's python: smbus2 and gpiod from PyPI, as on a board
        site = j("usr/local/lib/python3.11/dist-packages")
        os.makedirs(site, exist_ok=True)
        for whl in sorted(glob.glob(os.path.join(self.base.wheels, "*.whl"))):
            run(["python3", "-m", "zipfile", "-e", whl, site], 120)
        for n in ("gpiod", "smbus2", "Crypto"):
            if not glob.glob(os.path.join(site, n + "*")):
                raise RuntimeError("wheel %s not unpacked into the rootfs" % n)

    def _build_image(self):
        tmp = self.image + ".tmp"
        if os.path.exists(tmp):
            os.unlink(tmp)
        run(["mke2fs", "-q", "-t", "ext4", "-L", "edgefw-root", "-d", self.rootfs, tmp, "%dM" % DISK_MB], 600)
        os.replace(tmp, self.image)

    def new_disk(self, path):
        """A writable copy of the base image (sparse) at ``path``."""
        run(["cp", "--sparse=always", self.image, str(path)], 300)
        return str(path)

    def make_initrd(self, repo_root, path, guest_dir):
        """The initrd: busybox, the modules, and a payload copied onto the
        root at every boot (this checkout as an installed package, the
        guest's helper scripts)."""
        abi = self.base.kernel_release
        kroot = self.base.kroot
        w = _Cpio(str(path) + ".tmp")
        for d in ("bin", "dev", "proc", "sys", "newroot", "lib/modules"):
            w.dir(d)
        w.file("bin/busybox", os.path.join(kroot, "bin", "busybox"), 0o755)
        listed = []
        for k in BOOT_MODULES + GUEST_MODULES:
            src = self._module(abi, k)
            if k in GUEST_MODULES:
                w.file("payload/usr/local/lib/edgefw-guest/modules/" + os.path.basename(k), src, 0o644)
                continue
            w.file("lib/modules/" + os.path.basename(k), src, 0o644)
            listed.append(os.path.basename(k))
        for n in ("irq_sim.ko", "gpio-sim.ko", "i2c-stub.ko"):
            w.file("payload/usr/local/lib/edgefw-guest/modules/" + n, os.path.join(self.base.modules, abi, n), 0o644)
        w.data("payload/etc/edgefw-guest/regs.json", json.dumps(register_images()).encode(), 0o644)
        w.data("modules.list", ("\n".join(listed) + "\n").encode(), 0o644)
        site = "payload/usr/local/lib/python3.11/dist-packages"
        for top in ("boards", "firmware", "hal", "sim", "edgefw"):
            w.tree(os.path.join(repo_root, top), site + "/" + top, skip=("__pycache__",), pyonly=True)
        w.data("payload/usr/local/bin/edgefw", ENTRY.encode(), 0o755)
        for name in sorted(os.listdir(guest_dir)):
            if name.endswith(".py"):
                w.file("payload/usr/local/lib/edgefw-guest/" + name, os.path.join(guest_dir, name), 0o755)
        w.data("init", INIT.encode(), 0o755)
        w.close()
        os.replace(str(path) + ".tmp", str(path))
        return str(path)

    def _module(self, abi, rel):
        """A module of the Debian kernel, unpacked once into the cache."""
        dst = os.path.join(self.base.kroot, "lib", "modules", abi, "kernel", rel)
        if not os.path.exists(dst):
            img = self.base._deb(os.path.join(self.base.debs, abi), "linux-image-" + abi)
            p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", img], stdout=subprocess.PIPE)
            try:
                run(["tar", "-x", "-C", self.base.kroot, "./lib/modules/%s/kernel/%s" % (abi, rel)], 300, stdin=p1.stdout)
            finally:
                p1.stdout.close()
                p1.wait(timeout=60)
        return dst

    def boot(self, disk, repo_root, guest_dir=None, ssh_timeout_s=240, workdir=None):
        guest_dir = guest_dir or os.path.dirname(os.path.abspath(__file__))
        workdir = workdir or os.path.dirname(os.path.abspath(disk))
        initrd = self.make_initrd(repo_root, os.path.join(workdir, "initrd-systemd.img"), os.path.join(guest_dir, "qemu_guest"))
        vm = Vm(self, disk, initrd, free_port())
        vm.wait_ssh(ssh_timeout_s)
        return vm


def first_boot(workdir, repo_root):
    """A prepared guest booted on a fresh disk in ``workdir``: (guest, disk, vm)."""
    require_host_tools()
    g = SystemdGuest()
    g.prepare()
    disk = g.new_disk(os.path.join(str(workdir), "disk.img"))
    return g, disk, g.boot(disk, repo_root)


class Vm:
    """One boot of the guest: its console, SSH into it, and its end."""

    def __init__(self, guest, disk, initrd, port):
        self.guest = guest
        self.port = port
        self.lines = []
        self._cv = threading.Condition()
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "1024", "-nographic", "-no-reboot",
               "-kernel", guest.base.kernel_image(), "-initrd", initrd,
               "-append", "console=ttyAMA0 panic=-1 rdinit=/init " + os.environ.get("EDGEFW_QEMU_APPEND", "quiet systemd.show_status=false"),
               "-drive", "file=%s,if=none,id=root,format=raw,cache=writeback" % disk, "-device", "virtio-blk-device,drive=root",
               # the only way in: one forwarded port on the host's loopback
               "-netdev", "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:%d-:22" % port, "-device", "virtio-net-device,netdev=n0"]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.boot_s = None

    def _read(self):
        buf = b""
        while True:
            chunk = self.proc.stdout.read1(65536) if hasattr(self.proc.stdout, "read1") else self.proc.stdout.read(4096)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf:
                raw, buf = buf.split(b"\n", 1)
                with self._cv:
                    self.lines.append(raw.decode("utf-8", "replace").rstrip("\r"))
                    self._cv.notify_all()

    def console(self, last=80):
        with self._cv:
            return "\n".join(self.lines[-last:])

    def ssh_argv(self):
        return ["ssh", "-p", str(self.port), "-i", self.guest.key, "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes", "root@127.0.0.1"]

    def ssh(self, command, timeout=120):
        """(exit code, stdout + stderr) of ``command`` run by the guest's shell."""
        try:
            p = subprocess.run(self.ssh_argv() + [command], capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return 124, "ssh: %r timed out after %d s" % (command, timeout)
        return p.returncode, p.stdout + p.stderr

    def wait_ssh(self, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("QEMU exited (%s) before SSH answered:\n%s" % (self.proc.returncode, self.console()))
            rc, _ = self.ssh("true", timeout=20)
            if rc == 0:
                self.boot_s = round(time.monotonic() - self.t0, 1)
                return self.boot_s
            time.sleep(1)
        self.power_cut()
        raise RuntimeError("no SSH after %d s; console:\n%s" % (timeout_s, self.console()))

    def wait_line(self, needle, timeout_s):
        deadline = time.monotonic() + timeout_s
        seen = 0
        with self._cv:
            while time.monotonic() < deadline:
                for line in self.lines[seen:]:
                    if needle in line:
                        return line
                seen = len(self.lines)
                self._cv.wait(0.5)
        return None

    def json(self, command, timeout=120):
        rc, out = self.ssh(command, timeout)
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise AssertionError("no JSON from %r (exit %d):\n%s" % (command, rc, out[-3000:]))

    def power_cut(self):
        """QEMU killed: the guest gets no shutdown, its disk what it wrote."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        self._reader.join(5)

    def shutdown(self, timeout_s=60):
        if self.proc.poll() is None:
            self.ssh("systemctl poweroff", timeout=20)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                pass
        self.power_cut()
