"""What ``edgefw run`` adds on a Linux board (CPython only): the start-up
self-test, systemd's READY/STOPPING, the metrics, the real-time settings.

    hooks = LinuxRun(fw, status, metrics=None)
    asyncio.run(fw.run(on_status=hooks, status_every=1))
    hooks.stop(orderly=True)

READY=1 goes to systemd only after the first cycle ran and the self-test
passed: every sensor answered, the permit output is low and, with
readback on, the relay's contact reads low too (a welded relay or a
shorted input would otherwise be found only at the first trip). A failed
self-test raises ``SelfTestFailed``: the process exits non-zero with the
permit low, and systemd's ``Restart=on-failure`` tries again.
``stop`` sends STOPPING=1 once the outputs are safe, then releases the
hardware; ``orderly=True`` is what lets a kernel watchdog stop.
"""

import sys

from hal.errors import SensorError


class SelfTestFailed(SensorError):
    """The start-up self-test found the hardware unsafe to run."""


def self_test(fw):
    """Problems found after the first cycle (an empty list: passed)."""
    bad = []
    for i, d in enumerate(fw.drivers):
        if fw.status[i] == 2:
            bad.append("sensor %d (%s) did not answer" % (i, type(d).__name__))
    if fw.permit_pin.value() != 0 and fw.interlock.tripped:
        bad.append("the permit output is high while the interlock is tripped")
    if fw.readback_pin is not None and fw.permit == 0 and fw.readback_pin.value() != 0:
        bad.append("the relay readback is high with the permit low (welded contact or a shorted input)")
    n = getattr(fw.hw, "notifier", None)
    if fw.wdt is None and n is not None and n.interval_us:
        # seen on the emulated board: systemd killed a healthy loop every WatchdogSec
        bad.append(
            "systemd expects WATCHDOG=1 every %d ms (the unit's WatchdogSec=) but interlock.watchdog_ms is 0 in the config, so "
            "nothing feeds it: set interlock.watchdog_ms (e.g. 1000), or install the service with --watchdog-s 0" % (n.interval_us // 1000)
        )
    return bad


class _Released:
    """A line handed back to the kernel: writes go nowhere."""

    def value(self, v=None):
        return 0


_RELEASED = _Released()


class LinuxRun:
    def __init__(self, fw, status=None, metrics=None, status_every=25):
        self.fw = fw
        self.status = status
        self.metrics = metrics
        self.status_every = status_every
        self.ready = False

    def __call__(self, fw):
        if not self.ready:
            problems = self_test(fw)
            if problems:
                raise SelfTestFailed("self-test failed: " + "; ".join(problems))
            self.ready = True
            fw.hw.ready()
            sys.stderr.write("edgefw: self-test passed, first cycle done: ready\n")
        if self.metrics is not None:
            self.metrics.update(fw)
        if self.status is not None and fw.cycles % self.status_every == 0:
            self.status(fw)

    def stop(self, orderly=True):
        self.fw.safe()
        self.fw.hw.stopping()
        if self.metrics is not None:
            self.metrics.close()
        self.fw.hw.close(orderly=orderly)
        # the lines are released (their level is the kernel's now): the
        # exit-time safe() edgefw run registers has nothing left to drive
        self.fw.permit_pin = self.fw.led = _RELEASED
