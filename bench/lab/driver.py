"""The labgrid driver that runs edgefw code on a target.

    runner = target.get_driver("EdgefwRunDriver")
    runner.call("hal", "pin_roles", board="sim")       # a probe's JSON result
    con = runner.start(["--scenario", path])            # the firmware's console
    con.expect(r"expect: passed", timeout=20)
    runner.cycle()                                     # power-cycle it

It is also the target's PowerProtocol: ``off`` cuts the running firmware
(SIGKILL, as a power cut), ``on`` starts it again with the same
arguments. On a real bench a power switch driver takes that role.
"""

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import PowerProtocol
from labgrid.step import step

from bench.lab.runner import ROOT, RUNTIMES, BenchTimeout


def port_url(res):
    """What pyserial and mpremote open for a serial port resource."""
    if res is None:
        return None
    if type(res).__name__ == "NetworkSerialPort":
        if res.protocol != "rfc2217":
            return "socket://%s:%d" % (res.host, res.port)
        # as labgrid's SerialDriver: ser2net does not answer SET_CONTROL
        # on a port without modem lines (a pty), and pyserial would wait
        return "rfc2217://%s:%d?ign_set_control" % (res.host, res.port)
    return res.port


@target_factory.reg_driver
@attr.s(eq=False)
class EdgefwRunDriver(Driver, PowerProtocol):
    # the serial port: for the esp32 runtime (a board, bound by a stable
    # path or, through an exporter, as a NetworkSerialPort)
    # the board's address: for the ssh runtime (a Pi, or the emulated Pi
    # whose driver, bound as ``guest``, boots it and gives its key)
    bindings = {
        "runtime": "EdgefwRuntime",
        "port": {"RawSerialPort", "USBSerialPort", "NetworkSerialPort", None},
        "ssh": {"NetworkService", None},
        "guest": {"QEMUPiDriver", None},
    }
    timeout = attr.ib(default=120.0, validator=attr.validators.instance_of(float))
    # ssh: the private key (default: ssh's own choice, or the guest's)
    keyfile = attr.ib(default="", validator=attr.validators.instance_of(str))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._rt = None
        self.console = None
        self._args = None
        self._share = ()

    def on_activate(self):
        r = self.runtime
        if r.runtime == "esp32":
            self._rt = RUNTIMES[r.runtime](r.root or ROOT, r.heap, port=port_url(self.port), image=r.image or "esp32_devkitc", config=r.config)
        elif r.runtime == "ssh":
            self._rt = RUNTIMES[r.runtime](r.root or ROOT, r.heap, ssh=self.ssh_argv(), board=r.board, remote_dir=r.remote_dir)
        else:
            self._rt = RUNTIMES[r.runtime](r.root or ROOT, r.heap)

    def on_deactivate(self):
        self.off()
        close = getattr(self._rt, "close", None)
        if close is not None:
            close()
        self._rt = None

    def ssh_argv(self):
        """``ssh`` up to the destination, for the NetworkService (None
        without one): no host-key prompt, no password prompt, a
        connect timeout."""
        if self.ssh is None:
            return None
        import os

        key = self.keyfile or (self.guest.keyfile if self.guest is not None else "")
        argv = [
            "ssh",
            "-p",
            str(self.ssh.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=15",
            "-o",
            "ServerAliveInterval=10",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "LogLevel=ERROR",
        ]
        if key:
            argv += ["-i", os.path.expanduser(key), "-o", "IdentitiesOnly=yes"]
        if self.guest is not None:
            # a guest made afresh: its host key is new on every cache build
            argv += ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
        return argv + ["%s@%s" % (self.ssh.username, self.ssh.address)]

    @Driver.check_active
    def reach(self, port):
        """``HOST:PORT`` at which the target reaches this host's loopback
        ``port`` (a broker the test started): the loopback itself where the
        target runs here, a reverse forward over SSH on a board."""
        f = getattr(self._rt, "reach", None)
        return f(port) if f is not None else "127.0.0.1:%d" % port

    @property
    def kind(self):
        return self.runtime.runtime

    @Driver.check_active
    @step(args=["module", "func"])
    def call(self, module, func, timeout=None, share=(), **kwargs):
        """Run ``bench.probes.<module>.<func>(**kwargs)`` on the target and
        return its result; ``BenchTimeout`` after ``timeout`` s."""
        return self._rt.call(module, func, kwargs, timeout or self.timeout, share=share)

    @Driver.check_active
    @step()
    def prepare(self):
        """Flash the target when it is flashed and its bundle is not the
        one built here (the esp32 runtime); None elsewhere."""
        prep = getattr(self._rt, "prepare", None)
        return prep() if prep is not None else None

    @Driver.check_active
    def start(self, args, share=()):
        """Start the firmware (``firmware.app ARGS``); returns its console."""
        self.off()
        self._args, self._share = list(args), tuple(share)
        self.console = self._rt.firmware(self._args, share=self._share)
        return self.console

    # PowerProtocol
    @Driver.check_active
    def on(self):
        if self._args is None:
            raise BenchTimeout("nothing to power on: start() the firmware first")
        if self.console is None or self.console.proc.poll() is not None:
            self.console = self._rt.firmware(self._args, share=self._share)

    def off(self):
        if self.console is not None:
            self.console.kill()
            self.console = None

    @Driver.check_active
    def cycle(self):
        self.off()
        self.on()
