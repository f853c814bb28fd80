"""An emulated ARM64 board for the Linux backend: Debian bookworm's arm64
kernel in QEMU, gpio-sim and i2c-stub built out of tree, an initrd with
static busybox, Debian's python3 and edgefw from this checkout.

    guest = Arm64Guest(cache_dir)       # ~/.cache/edgefw/qemu by default
    guest.prepare()                     # apt/PyPI downloads, module build (cached)
    guest.make_initrd(repo_root)        # rebuilt each time: holds the checkout
    result, console = guest.boot(timeout_s=300)

Everything downloaded or built lives under the cache directory, outside
the checkout; a second run reuses it. The arm64 packages come through a
private apt configuration (its own state, sources and architecture list),
so the host's dpkg gets no foreign architecture. The host needs
``qemu-system-aarch64`` and ``aarch64-linux-gnu-gcc`` (Debian packages
``qemu-system-arm`` and ``gcc-aarch64-linux-gnu``; not ``gcc-multilib``,
which removes the cross compiler).

Every subprocess has a timeout. ``python -m tests.helpers.qemu_arm64``
runs the whole thing and prints the guest's result line.
"""

import glob
import json
import os
import shutil
import subprocess
import sys
import time

DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "edgefw", "qemu")
SUITES = (
    ("http://deb.debian.org/debian", "bookworm"),
    ("http://deb.debian.org/debian", "bookworm-updates"),
    ("http://deb.debian.org/debian-security", "bookworm-security"),
)
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
PYTHON_PACKAGES = ("python3-minimal", "libpython3.11-stdlib")
# pycryptodome from PyPI: Debian 12's python3-pycryptodome (3.11) has no
# Ed25519, which bundles are signed with (it came in 3.15)
WHEELS = ("gpiod==2.5.0", "smbus2", "pycryptodome>=3.15")
# the sources the three modules are built from, inside linux-source-6.1
SOURCES = ("drivers/gpio/gpio-sim.c", "drivers/gpio/gpiolib.h", "kernel/irq/irq_sim.c", "drivers/i2c/i2c-stub.c")
# modules of the Debian kernel the guest loads before ours, in order
KERNEL_MODULES = ("fs/configfs/configfs.ko", "drivers/i2c/i2c-dev.ko")
RESULT_TAG = "EDGEFW-QEMU-RESULT "
# skipped when the initrd is made: not needed to run python and edgefw
PRUNE = ("usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "usr/share/lintian", "usr/lib/python3.11/test", "usr/lib/python3.11/idlelib", "usr/lib/python3.11/tkinter", "usr/lib/python3.11/ensurepip", "usr/lib/python3.11/pydoc_data", "usr/lib/python3.11/lib2to3")


def run(cmd, timeout, **kw):
    """``subprocess.run`` with a timeout and the output kept for the error."""
    p = subprocess.run(cmd, timeout=timeout, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s exited %d:\n%s" % (" ".join(cmd), p.returncode, p.stdout[-4000:]))
    return p.stdout


def host_tools_missing():
    """The host commands the guest needs that are not on PATH."""
    need = ("qemu-system-aarch64", "aarch64-linux-gnu-gcc", "make", "dpkg-deb", "apt-get", "xz")
    return [t for t in need if shutil.which(t) is None]


def require_host_tools():
    """Fail, naming the packages, when a host command the guests need is missing."""
    missing = host_tools_missing()
    assert not missing, "host commands missing: %s (apt-get install qemu-system-arm gcc-aarch64-linux-gnu)" % ", ".join(missing)


class Arm64Guest:
    def __init__(self, cache_dir=None, log=None):
        self.cache = os.path.abspath(cache_dir or os.environ.get("EDGEFW_QEMU_CACHE") or DEFAULT_CACHE)
        self.log = log or (lambda msg: sys.stderr.write("qemu: %s\n" % msg))
        self.times = {}
        self.apt_dir = os.path.join(self.cache, "apt")
        self.debs = os.path.join(self.cache, "debs")
        self.kroot = os.path.join(self.cache, "kernel")
        self.modules = os.path.join(self.cache, "modules")
        self.pyroot = os.path.join(self.cache, "pyroot")
        self.wheels = os.path.join(self.cache, "wheels")
        self.kernel_release = None

    # -- apt, privately ---------------------------------------------------
    def _apt_opts(self):
        a = self.apt_dir
        return [
            "-o", "Dir::State=" + a + "/state",
            "-o", "Dir::State::status=" + a + "/state/status",
            "-o", "Dir::Cache=" + a + "/cache",
            "-o", "Dir::Etc::SourceList=" + a + "/sources.list",
            "-o", "Dir::Etc::SourceParts=" + a + "/sources.list.d",
            "-o", "Dir::Etc::Preferences=" + a + "/preferences",
            "-o", "Dir::Etc::PreferencesParts=" + a + "/preferences.d",
            "-o", "APT::Architecture=arm64",
            "-o", "APT::Architectures::=arm64",
            "-o", "APT::Architectures::=amd64",
            "-o", "Acquire::Languages=none",
            "-o", "APT::Sandbox::User=root",
            "-o", "Debug::NoLocking=1",
        ]

    def _apt_setup(self):
        a = self.apt_dir
        for d in ("state/lists/partial", "cache/archives/partial", "sources.list.d", "preferences.d"):
            os.makedirs(os.path.join(a, d), exist_ok=True)
        open(os.path.join(a, "state", "status"), "a").close()
        with open(os.path.join(a, "sources.list"), "w") as f:
            for uri, suite in SUITES:
                f.write("deb [signed-by=%s] %s %s main\n" % (KEYRING, uri, suite))
        stamp = os.path.join(a, "updated")
        # the lists are refreshed once a day: a newer kernel ABI then wins
        if not os.path.exists(stamp) or time.time() - os.path.getmtime(stamp) > 86400:
            run(["apt-get"] + self._apt_opts() + ["update"], 600)
            open(stamp, "w").close()

    def _apt_cache(self, *args):
        return run(["apt-cache"] + self._apt_opts() + list(args), 120)

    def _version(self, pkg):
        for line in self._apt_cache("show", "--no-all-versions", pkg).splitlines():
            if line.startswith("Version: "):
                return line.split(" ", 1)[1].strip()
        raise RuntimeError("apt knows no version of %s" % pkg)

    def _download(self, into, pkgs):
        """``apt-get download`` of exactly these packages (no dependencies)
        into ``into``; packages already there are not fetched again."""
        os.makedirs(into, exist_ok=True)
        have = os.listdir(into)
        todo = [p for p in pkgs if not any(h.startswith(p.split(":")[0].split("=")[0] + "_") for h in have)]
        if todo:
            run(["apt-get"] + self._apt_opts() + ["download"] + todo, 900, cwd=into)

    def _deb(self, into, name):
        got = sorted(glob.glob(os.path.join(into, name + "_*.deb")))
        if not got:
            raise RuntimeError("no %s .deb in %s" % (name, into))
        return got[-1]

    # -- the pieces ---------------------------------------------------------
    def prepare(self):
        t0 = time.monotonic()
        os.makedirs(self.cache, exist_ok=True)
        self._apt_setup()
        image = None
        for line in self._apt_cache("depends", "linux-image-arm64").splitlines():
            line = line.strip()
            if line.startswith("Depends: linux-image-"):
                image = line.split(": ", 1)[1].strip()
        if image is None:
            raise RuntimeError("apt-cache depends linux-image-arm64 names no linux-image package")
        abi = image[len("linux-image-"):]  # 6.1.0-57-arm64
        self.kernel_release = abi
        version = self._version(image)
        kdebs = os.path.join(self.debs, abi)
        self._download(kdebs, [
            image,
            "linux-headers-" + abi,
            "linux-headers-" + abi[: -len("-arm64")] + "-common",
            "linux-kbuild-6.1:amd64",  # the build tools run on the host
            "linux-source-6.1=" + version,
            "busybox-static",
        ])
        self.log("kernel %s (%s), downloads %.1f s" % (abi, version, time.monotonic() - t0))
        self._python(os.path.join(self.debs, "python"))
        self._wheels()
        self.times["fetch_s"] = round(time.monotonic() - t0, 1)
        t1 = time.monotonic()
        self._kernel(kdebs, abi)
        self._build_modules(abi)
        self.times["build_s"] = round(time.monotonic() - t1, 1)
        self.times["prepare_s"] = round(time.monotonic() - t0, 1)

    def _python(self, into):
        done = os.path.join(self.pyroot, ".done")
        if os.path.exists(done):
            return
        os.makedirs(into, exist_ok=True)
        run(["apt-get"] + self._apt_opts() + ["install", "-y", "-d", "--no-install-recommends", "-o", "Dir::Cache::archives=" + into] + list(PYTHON_PACKAGES), 900)
        shutil.rmtree(self.pyroot, ignore_errors=True)
        os.makedirs(self.pyroot)
        for deb in sorted(glob.glob(os.path.join(into, "*.deb"))):
            run(["dpkg-deb", "-x", deb, self.pyroot], 300)
        open(done, "w").close()

    def _wheels(self):
        names = [w.split("=")[0].split(">")[0] for w in WHEELS]
        if all(glob.glob(os.path.join(self.wheels, n + "-*.whl")) for n in names):
            return
        os.makedirs(self.wheels, exist_ok=True)
        run([sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:", "--platform", "manylinux2014_aarch64", "--python-version", "3.11", "--implementation", "cp", "-d", self.wheels] + list(WHEELS), 600)

    def _kernel(self, kdebs, abi):
        done = os.path.join(self.kroot, ".done-" + abi)
        if os.path.exists(done):
            return
        shutil.rmtree(self.kroot, ignore_errors=True)
        os.makedirs(self.kroot)
        img = self._deb(kdebs, "linux-image-" + abi)
        # only the kernel and the two modules we load from it
        tar_list = ["./boot/vmlinuz-" + abi] + ["./lib/modules/%s/kernel/%s" % (abi, m) for m in KERNEL_MODULES]
        p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", img], stdout=subprocess.PIPE)
        try:
            run(["tar", "-x", "-C", self.kroot] + tar_list, 300, stdin=p1.stdout)
        finally:
            p1.stdout.close()
            p1.wait(timeout=60)
        for name in ("linux-headers-" + abi, "linux-headers-" + abi[: -len("-arm64")] + "-common", "linux-kbuild-6.1", "busybox-static"):
            run(["dpkg-deb", "-x", self._deb(kdebs, name), self.kroot], 300)
        src = self._deb(kdebs, "linux-source-6.1")
        srcdir = os.path.join(self.kroot, "src")
        os.makedirs(srcdir)
        p1 = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", src], stdout=subprocess.PIPE)
        try:
            run(["tar", "-x", "-C", srcdir, "./usr/src/linux-source-6.1.tar.xz"], 600, stdin=p1.stdout)
        finally:
            p1.stdout.close()
            p1.wait(timeout=60)
        tarball = os.path.join(srcdir, "usr/src/linux-source-6.1.tar.xz")
        run(["tar", "-xJf", tarball, "-C", srcdir] + ["linux-source-6.1/" + s for s in SOURCES], 600)
        os.remove(tarball)
        open(done, "w").close()

    def _build_modules(self, abi):
        out = os.path.join(self.modules, abi)
        kos = [os.path.join(out, n) for n in ("irq_sim.ko", "gpio-sim.ko", "i2c-stub.ko")]
        if all(os.path.exists(k) for k in kos):
            self.times["modules_cached"] = True
            return
        t0 = time.monotonic()
        shutil.rmtree(out, ignore_errors=True)
        os.makedirs(out)
        src = os.path.join(self.kroot, "src", "linux-source-6.1")
        for s in SOURCES:
            shutil.copy(os.path.join(src, s), out)
        with open(os.path.join(out, "irq_sim.c")) as f:
            text = f.read()
        # irq_to_desc is not exported to modules; generic_handle_irq is
        patched = text.replace("handle_simple_irq(irq_to_desc(irqnum))", "generic_handle_irq(irqnum)")
        if patched == text:
            raise RuntimeError("irq_sim.c: the irq_to_desc call to replace was not found")
        patched = "#include <linux/module.h>\n" + patched + '\nMODULE_LICENSE("GPL");\n'
        with open(os.path.join(out, "irq_sim.c"), "w") as f:
            f.write(patched)
        with open(os.path.join(out, "Kbuild"), "w") as f:
            f.write("obj-m := irq_sim.o gpio-sim.o i2c-stub.o\n")
        headers = os.path.join(self.kroot, "usr", "src", "linux-headers-" + abi)
        # its Makefile includes the common headers' by absolute path
        mk = os.path.join(headers, "Makefile")
        with open(mk) as f:
            text = f.read()
        with open(mk, "w") as f:
            f.write(text.replace("include /usr/src/", "include " + os.path.join(self.kroot, "usr", "src") + "/"))
        run(["make", "-C", headers, "M=" + out, "ARCH=arm64", "CROSS_COMPILE=aarch64-linux-gnu-", "-j2", "modules"], 900)
        self.times["modules_build_s"] = round(time.monotonic() - t0, 1)

    # -- initrd -------------------------------------------------------------
    def make_initrd(self, repo_root, guest_script, extra_files=None):
        """Write ``initrd.img`` (newc cpio, uncompressed: the guest would
        decompress it slowly under emulation) and return its path."""
        abi = self.kernel_release
        path = os.path.join(self.cache, "initrd.img")
        w = _Cpio(path + ".tmp")
        for d in ("bin", "sbin", "dev", "proc", "sys", "tmp", "run", "etc", "lib/modules", "usr/bin", "usr/sbin", "edgefw"):
            w.dir(d)
        w.tree(self.pyroot, "", skip=PRUNE)
        w.file("bin/busybox", os.path.join(self.kroot, "bin", "busybox"), 0o755)
        for k in KERNEL_MODULES:
            w.file("lib/modules/" + os.path.basename(k), os.path.join(self.kroot, "lib/modules", abi, "kernel", k), 0o644)
        for n in ("irq_sim.ko", "gpio-sim.ko", "i2c-stub.ko"):
            w.file("lib/modules/" + n, os.path.join(self.modules, abi, n), 0o644)
        site = "usr/lib/python3/dist-packages"
        for whl in sorted(glob.glob(os.path.join(self.wheels, "*.whl"))):
            w.wheel(whl, site)
        for top in ("boards", "firmware", "hal", "sim", "edgefw"):
            w.tree(os.path.join(repo_root, top), "edgefw/" + top, skip=("__pycache__",), pyonly=True)
        for top in ("pyproject.toml",):
            w.file("edgefw/" + top, os.path.join(repo_root, top), 0o644)
        w.file("guest_check.py", guest_script, 0o755)
        for name, data in (extra_files or {}).items():
            w.data(name, data.encode() if isinstance(data, str) else data, 0o644)
        w.data("init", INIT.encode(), 0o755)
        w.close()
        os.replace(path + ".tmp", path)
        return path

    def kernel_image(self):
        return os.path.join(self.kroot, "boot", "vmlinuz-" + self.kernel_release)

    # -- boot ---------------------------------------------------------------
    def boot(self, initrd, timeout_s=300):
        """Boot the guest; returns (result dict or None, console text,
        seconds from QEMU's start to the guest's first line of ours)."""
        cmd = ["qemu-system-aarch64", "-M", "virt", "-cpu", "cortex-a53", "-smp", "2", "-m", "1024", "-nographic", "-no-reboot", "-nic", "none",
               "-kernel", self.kernel_image(), "-initrd", initrd, "-append", "console=ttyAMA0 panic=-1 rdinit=/init quiet"]
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        first = None
        result = None
        try:
            import selectors

            sel = selectors.DefaultSelector()
            sel.register(p.stdout, selectors.EVENT_READ)
            buf = b""
            while True:
                left = timeout_s - (time.monotonic() - t0)
                if left <= 0:
                    lines.append("qemu: timed out after %d s, killed" % timeout_s)
                    break
                if not sel.select(timeout=min(left, 5)):
                    continue
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    raw, buf = buf.split(b"\n", 1)
                    line = raw.decode("utf-8", "replace").rstrip("\r")
                    lines.append(line)
                    if first is None and "EDGEFW-QEMU-INIT" in line:
                        first = time.monotonic() - t0
                    if line.startswith(RESULT_TAG):
                        try:
                            result = json.loads(line[len(RESULT_TAG):])
                        except ValueError:
                            pass
        finally:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)
            p.stdout.close()
        self.times["qemu_s"] = round(time.monotonic() - t0, 1)
        if first is not None:
            self.times["boot_to_init_s"] = round(first, 1)
        return result, "\n".join(lines)


INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/usr/bin:/bin:/usr/sbin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp
echo "EDGEFW-QEMU-INIT uptime $(cut -d' ' -f1 /proc/uptime)"
for m in configfs i2c-dev irq_sim gpio-sim; do insmod /lib/modules/$m.ko || echo "EDGEFW-QEMU-INIT insmod $m failed"; done
insmod /lib/modules/i2c-stub.ko chip_addr=0x76,0x53 || echo "EDGEFW-QEMU-INIT insmod i2c-stub failed"
mount -t configfs none /sys/kernel/config
cd /edgefw
PYTHONPATH=/edgefw timeout 600 /usr/bin/python3 /guest_check.py
echo "EDGEFW-QEMU-INIT done, exit $?"
poweroff -f
"""


class _Cpio:
    """A newc ("070701") cpio archive, written directly."""

    def __init__(self, path):
        self.f = open(path, "wb")
        self.ino = 1
        self.seen = set()

    def _entry(self, name, mode, data, nlink=1):
        self.ino += 1
        hdr = "070701" + "".join("%08X" % v for v in (self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0))
        self.f.write(hdr.encode() + name.encode() + b"\0")
        self.f.write(b"\0" * ((4 - (110 + len(name) + 1) % 4) % 4))
        self.f.write(data)
        self.f.write(b"\0" * ((4 - len(data) % 4) % 4))

    def dir(self, name):
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d and d not in self.seen:
                self.seen.add(d)
                self._entry(d, 0o040755, b"", 2)

    def _parent(self, name):
        if "/" in name:
            self.dir(name.rsplit("/", 1)[0])

    def data(self, name, data, perm):
        self._parent(name)
        self.seen.add(name)
        self._entry(name, 0o100000 | perm, data)

    def file(self, name, src, perm=None):
        with open(src, "rb") as f:
            data = f.read()
        self.data(name, data, perm if perm is not None else (os.stat(src).st_mode & 0o777))

    def link(self, name, target):
        self._parent(name)
        self.seen.add(name)
        self._entry(name, 0o120777, target.encode())

    def tree(self, src, prefix, skip=(), pyonly=False):
        for dirpath, dirnames, filenames in os.walk(src):
            rel = os.path.relpath(dirpath, src)
            rel = "" if rel == "." else rel
            dirnames[:] = sorted(d for d in dirnames if d not in skip and os.path.join(rel, d) not in skip)
            target = "/".join(x for x in (prefix, rel) if x)
            if target:
                self.dir(target)
            for d in dirnames:
                full = os.path.join(dirpath, d)
                if os.path.islink(full):
                    self.link("/".join(x for x in (target, d) if x), os.readlink(full))
            for n in sorted(filenames):
                full = os.path.join(dirpath, n)
                name = "/".join(x for x in (target, n) if x)
                if os.path.islink(full):
                    self.link(name, os.readlink(full))
                elif pyonly and not n.endswith((".py", ".json", ".tflite", ".bin")):
                    continue
                else:
                    self.file(name, full)

    def wheel(self, whl, site):
        import zipfile

        with zipfile.ZipFile(whl) as z:
            for info in z.infolist():
                if info.is_dir():
                    continue
                perm = 0o755 if info.filename.endswith(".so") or ".so." in info.filename else 0o644
                self.data(site + "/" + info.filename, z.read(info), perm)

    def close(self):
        self._entry("TRAILER!!!", 0, b"")
        self.f.close()


def register_images(limit_c=60.0):
    """The BME280 and ADXL345 register images i2c-stub holds (calibration,
    chip ids, a completed sample each), and the raw temperature bytes
    (0xFA..0xFC) for 15 C above ``limit_c`` and for 22 C."""
    from sim.chips.adxl345 import ADXL345Model
    from sim.chips.bme280 import BME280Model

    bme = BME280Model(0x76)
    bme.regs[0xF4] = 0x27  # normal mode: the data registers hold a sample
    bme.tick(0)
    image = list(bme.regs)
    bme.set_channel("temperature_c", limit_c + 15.0)
    bme.tick(0)
    hot = list(bme.regs[0xFA:0xFD])
    bme.set_channel("temperature_c", 22.0)
    bme.tick(0)
    cool = list(bme.regs[0xFA:0xFD])
    acc = ADXL345Model(0x53)
    a = acc.regs
    a[0x30] = 0x82  # DATA_READY (and watermark): every read is a fresh sample
    a[0x36], a[0x37] = 0x00, 0x01  # z = 256 LSB: 1 g at full resolution
    return {"bme280": image, "adxl345": list(a), "hot": hot, "cool": cool}


def build_and_boot(repo_root, cache_dir=None, timeout_s=420, log=None):
    """prepare + initrd + boot; returns (result, console, guest)."""
    guest = Arm64Guest(cache_dir, log=log)
    guest.prepare()
    t0 = time.monotonic()
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "qemu_guest", "board_setup.py")) as f:
        board_setup = f.read()
    # the check sets up the lines and chips as the systemd guest's boot unit does
    extra = {"regs.json": json.dumps(register_images()), "board_setup.py": board_setup}
    initrd = guest.make_initrd(repo_root, os.path.join(here, "qemu_guest_check.py"), extra)
    guest.times["initrd_s"] = round(time.monotonic() - t0, 1)
    guest.times["initrd_mb"] = round(os.path.getsize(initrd) / 1e6, 1)
    result, console = guest.boot(initrd, timeout_s=timeout_s)
    return result, console, guest


if __name__ == "__main__":
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    res, console, g = build_and_boot(root)
    print(console)
    print(json.dumps({"times": g.times, "result": res}, indent=1))
