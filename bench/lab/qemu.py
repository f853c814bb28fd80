"""The emulated Raspberry Pi 4 as a bench device: the QEMU arm64 guest of
tests/helpers/qemu_systemd.py (Debian bookworm with systemd and sshd,
gpio-sim lines named as the rpi4's, i2c-stub holding a BME280 at 0x76
and an ADXL345 at 0x53), booted from a fresh copy of its cached disk
image, its SSH port bound to the target's NetworkService.

    resources:
      NetworkService: {address: 127.0.0.1, username: root, port: 0}
    drivers:
      QEMUPiDriver: {}
      EdgefwRunDriver: {}

``port: 0`` is filled in with the loopback port QEMU forwards to the
guest's sshd once it answers. After the boot the driver copies paho-mqtt
(pure Python) from this host's environment into the guest, loads softdog
(the guest's ``/dev/watchdog``, not resetting it: ``soft_noboot``) and
starts the board's wiring (bench/lab/guest_wiring.py: the e-stop chain
closed unless the fixture opens it). On deactivation (or at exit) the
guest is shut down, and QEMU killed if it does not stop in time.

The fixture (``board.py`` in the guest: ``estop on|off``, ``reset``,
``hot``, ``cool``, ``permit``) is reached through ``board(*args)`` and
through ``GuestLineDriver`` (bench/lab/fixture.py), the labgrid digital
output and input drivers a real bench has in their place.
"""

import atexit
import json
import os
import shutil
import tempfile
import time

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.step import step

from bench.lab.runner import ROOT, BenchTimeout

BOARD_PY = "/usr/local/lib/edgefw-guest/board.py"
WIRING = "/usr/local/lib/edgefw-guest/bench_wiring.py"
STATE = "/run/edgefw-bench"


@target_factory.reg_driver
@attr.s(eq=False)
class QEMUPiDriver(Driver):
    bindings = {"ssh": "NetworkService"}
    # the download and build cache (default: EDGEFW_QEMU_CACHE or ~/.cache/edgefw/qemu)
    cache = attr.ib(default="", validator=attr.validators.instance_of(str))
    boot_timeout = attr.ib(default=240.0, validator=attr.validators.instance_of(float))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.vm = None
        self.guest = None
        self._dir = None
        self.boot_s = None

    @property
    def keyfile(self):
        return self.guest.key if self.guest is not None else ""

    def on_activate(self):
        from tests.helpers import qemu_arm64, qemu_systemd

        missing = qemu_arm64.host_tools_missing()
        if missing:
            raise BenchTimeout("the emulated Pi needs host commands: %s (apt-get install qemu-system-arm gcc-aarch64-linux-gnu)" % ", ".join(missing))
        self.guest = qemu_systemd.SystemdGuest(os.path.expanduser(self.cache) if self.cache else None)
        self.guest.prepare()
        self._dir = tempfile.mkdtemp(prefix="edgefw-rpi-qemu-")
        disk = self.guest.new_disk(os.path.join(self._dir, "disk.img"))
        atexit.register(self.on_deactivate)
        try:
            self.vm = self.guest.boot(disk, str(ROOT), ssh_timeout_s=self.boot_timeout)
        except RuntimeError as e:
            self._cleanup()
            raise BenchTimeout("the emulated Pi did not boot: %s" % e)
        self.boot_s = self.vm.boot_s
        self.ssh.port = self.vm.port
        try:
            self._setup()
        except BaseException:
            self.on_deactivate()
            raise

    def _setup(self):
        abi = self.guest.base.kernel_release
        softdog = self.guest._module(abi, "drivers/watchdog/softdog.ko")
        wiring = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest_wiring.py")
        with open(softdog, "rb") as f:
            rc, out = self._put(f.read(), "/tmp/softdog.ko")
        with open(wiring, "rb") as f:
            rc2, out2 = self._put(f.read(), WIRING)
        rc3, out3 = self._put(self._paho(), "/tmp/paho.tar")
        if rc or rc2 or rc3:
            raise BenchTimeout("copying to the emulated Pi failed: %s %s %s" % (out, out2, out3))
        rc, out = self.vm.ssh(
            "tar -xf /tmp/paho.tar -C /usr/local/lib/python3.11/dist-packages && insmod /tmp/softdog.ko soft_noboot=1 && mkdir -p %s && (setsid python3 %s %s > %s/wiring.log 2>&1 < /dev/null &) && "
            "for i in $(seq 100); do [ -e %s/wiring.on ] && exit 0; sleep 0.1; done; cat %s/wiring.log; exit 1" % (STATE, WIRING, STATE, STATE, STATE, STATE),
            timeout=60,
        )
        if rc != 0:
            raise BenchTimeout("the emulated Pi's set-up failed (exit %d): %s" % (rc, out))

    @staticmethod
    def _paho():
        """paho-mqtt (pure Python, the uplink's client on CPython) from this
        host's environment, as ``pip install edgefw`` brings it on a Pi."""
        import io
        import tarfile

        import paho

        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as t:
            t.add(list(paho.__path__)[0], arcname="paho", filter=lambda ti: None if "__pycache__" in ti.name else ti)
        return buf.getvalue()

    def _put(self, data, path):
        import subprocess

        try:
            p = subprocess.run(self.vm.ssh_argv() + ["cat > %s" % path], input=data, capture_output=True, timeout=60)
        except subprocess.TimeoutExpired:
            return 124, "timed out"
        return p.returncode, p.stderr.decode("utf-8", "replace")

    def on_deactivate(self):
        if self.vm is not None:
            vm, self.vm = self.vm, None
            vm.shutdown(timeout_s=30)  # powered off in any case (QEMU killed after 30 s)
        self._cleanup()

    def _cleanup(self):
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @Driver.check_active
    @step(args=["args"])
    def board(self, *args, timeout=60):
        """``board.py ARGS`` in the guest (the fixture): its JSON line."""
        if args and args[0] == "estop":
            # the wiring holds the chain closed unless it is opened here
            pre = "touch %s/estop-open && " % STATE if args[1] == "on" else "rm -f %s/estop-open && " % STATE
        else:
            pre = ""
        rc, out = self.vm.ssh(pre + "python3 %s %s" % (BOARD_PY, " ".join(args)), timeout=timeout)
        for line in reversed(out.splitlines()):
            if line.startswith("{"):
                return json.loads(line)
        raise BenchTimeout("board.py %s on the emulated Pi (exit %d): %s" % (" ".join(args), rc, out[-2000:]))

    @Driver.check_active
    def console_lines(self, last=80):
        """The guest's serial console (kernel and systemd)."""
        return self.vm.console(last)

    @Driver.check_active
    def wait_permit(self, level, timeout):
        """Seconds until the permit line is at ``level`` (the fixture's
        view of the relay), or ``BenchTimeout`` after ``timeout`` s."""
        t0 = time.monotonic()
        r = self.board("wait-permit", "1" if level else "0", str(timeout), timeout=timeout + 60)
        if r.get("s") is None:
            raise BenchTimeout(
                "the permit did not go %s within %.1f s (%.1f s with the fixture's start-up)" % ("high" if level else "low", timeout, time.monotonic() - t0)
            )
        return r["s"]
