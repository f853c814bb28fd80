"""The Linux backend's hardware object: a board's roles on real devices.

    hw = LinuxHardware(boards.get("rpi5"))
    hw.pin("RELAY_PERMIT").value(1)
    ...
    hw.close(orderly=True)   # after the outputs are safe: releases lines,
                             # stops the watchdog with its magic close

Pins are looked up on the gpiochip labelled ``board.GPIOCHIP`` by each
role's line ``name`` (see ``hal.linux.gpio``); I2C roles open the board's
``device``; the watchdog is systemd's when the service manager asked for
one (``WATCHDOG_USEC``), else the kernel's ``/dev/watchdog``. Under
systemd (``NOTIFY_SOCKET``) ``ready()`` and ``stopping()`` tell the
service manager; elsewhere they do nothing.
"""

import os
import sys

from hal.clock import RealClock
from hal.errors import BackendUnavailable, BoardError
from hal.linux.gpio import LinuxPin, find_chip
from hal.linux.i2c import LinuxI2C

# inputs whose short pulses must not fall between two polls
EDGE_ROLES = ("ESTOP", "RESET")


class LinuxHardware:
    def __init__(self, board, sensors=(), scenario=None, speed=0.0, dev_dir="/dev", env=None, gpiod=None, smbus=None):
        if scenario is not None:
            raise BoardError("scenarios are for the sim board; board %r is real hardware" % board.NAME)
        self.board = board
        self.clock = RealClock()
        self.env = os.environ if env is None else env
        self._dev_dir = dev_dir
        self._gpiod = gpiod
        self._smbus = smbus or {}
        self._chip = None
        self._pins = {}
        self._buses = {}
        self._wdt = None
        self._uarts = []
        self.notifier = None
        if self.env.get("NOTIFY_SOCKET"):
            from hal.linux_watchdog import SystemdWatchdog

            self.notifier = SystemdWatchdog(self.env)

    def _chip_for_pins(self):
        if self._chip is None:
            try:
                self._chip = find_chip(self.board.GPIOCHIP, self._dev_dir, self._gpiod)
            except OSError as e:
                raise OSError(e.errno, "board %r: %s; is this machine a %s? Elsewhere run with --board sim" % (self.board.NAME, e.strerror, self.board.DESCRIPTION))
        return self._chip

    def i2c(self, role):
        spec = self.board.I2C.get(role)
        if spec is None:
            raise BoardError("the %s board has no I2C bus %r (has: %s)" % (self.board.NAME, role, ", ".join(sorted(self.board.I2C))))
        if role not in self._buses:
            dev = spec["device"]
            self._buses[role] = LinuxI2C(dev, self._smbus.get(dev))
        return self._buses[role]

    def pin(self, role):
        if role in self._pins:
            return self._pins[role]
        spec = self.board.PINS.get(role)
        if spec is None:
            raise BoardError("the %s board has no pin role %r (has: %s)" % (self.board.NAME, role, ", ".join(sorted(self.board.PINS))))
        out = spec["mode"] == "out"
        pull = {"up": LinuxPin.PULL_UP, "down": LinuxPin.PULL_DOWN}.get(spec.get("pull"))
        p = LinuxPin(
            self._chip_for_pins(),
            spec.get("name"),
            LinuxPin.OUT if out else LinuxPin.IN,
            pull,
            offset=spec.get("line"),
            edges=(role in EDGE_ROLES),
            consumer="edgefw:" + role,
            gpiod=self._gpiod,
        )
        self._pins[role] = p
        return p

    def wdt(self, timeout):
        from hal.linux_watchdog import open_watchdog

        device = self.board.WDT.get("device", "/dev/watchdog")
        try:
            self._wdt = open_watchdog(timeout, env=self.env, device=device)
        except OSError as e:
            raise BackendUnavailable(
                "watchdog: not started by systemd with WatchdogSec= and %s cannot be opened (%s); run as the service, or set interlock.watchdog_ms to 0"
                % (device, e.strerror or e)
            )
        return self._wdt

    def uart(self, role, baudrate=9600):
        spec = self.board.UART.get(role)
        if spec is None:
            raise BoardError("the %s board has no UART %r" % (self.board.NAME, role))
        from hal.linux.uart import LinuxUART

        u = LinuxUART(spec["device"], baudrate=baudrate)
        self._uarts.append(u)
        return u

    def ready(self):
        if self.notifier is not None:
            self.notifier.ready()

    def stopping(self):
        if self.notifier is not None:
            self.notifier.notify("STOPPING=1")

    def close(self, orderly=True):
        """Release everything. ``orderly`` only after the outputs are safe:
        it is what lets the kernel watchdog stop instead of resetting."""
        for role in ("RELAY_PERMIT", "STATUS_LED"):
            p = self._pins.get(role)
            if p is not None:
                p.value(0)
        if self._wdt is not None:
            self._wdt.close(orderly=orderly)
            self._wdt = None
        for p in self._pins.values():
            try:
                p.release()
            except Exception as e:  # a released request is not worth a crash at exit
                sys.stderr.write("edgefw: warning: releasing %s: %s\n" % (p.name, e))
        self._pins.clear()
        for b in self._buses.values():
            b.close()
        self._buses.clear()
        for u in self._uarts:
            u.close()
        self._uarts = []
        if self._chip is not None:
            self._chip.close()
            self._chip = None
