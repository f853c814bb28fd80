"""Linux watchdogs (CPython only): systemd's and the kernel's.

    wd = open_watchdog(timeout_ms=500)   # systemd if it asked, else /dev/watchdog
    wd.feed()                            # the loop feeds it after an on-time cycle
    wd.close(orderly=True)               # after the outputs are safe

``SystemdWatchdog``: when the service has ``WatchdogSec=`` systemd sets
``NOTIFY_SOCKET`` and ``WATCHDOG_USEC``; ``feed`` sends ``WATCHDOG=1``.
If feeding stops, systemd kills the process (and with
``WatchdogSignal=``/``Restart=`` restarts it); the permit relay must then be
safe without the process (see docs/interlock.md).

``DevWatchdog``: the kernel watchdog device. Once opened it must be fed or
the board resets. ``close(orderly=True)`` writes the magic 'V' so an
orderly stop does not reset the board; any other end of the process (a
crash, SIGKILL) leaves it armed, which is the point.
"""

import os
import socket

WDIOC_SETTIMEOUT = 0xC0045706  # _IOWR('W', 6, int)


class SystemdWatchdog:
    def __init__(self, env=None):
        env = os.environ if env is None else env
        addr = env.get("NOTIFY_SOCKET")
        if not addr:
            raise OSError("NOTIFY_SOCKET is not set: not started by systemd with Type=notify")
        if addr.startswith("@"):
            addr = "\0" + addr[1:]
        self.addr = addr
        self.interval_us = int(env.get("WATCHDOG_USEC", "0"))
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        # never block the loop: a datagram socket's sender waits when the
        # receiver's queue is full (net.unix.max_dgram_qlen, 10 by default)
        self._sock.setblocking(False)
        self.dropped = 0

    def notify(self, msg):
        """Send one message; when systemd's queue is full it is dropped
        and counted (a missed WATCHDOG=1 is covered by the next one)."""
        try:
            self._sock.sendto(msg.encode() if isinstance(msg, str) else msg, self.addr)
        except BlockingIOError:
            self.dropped += 1

    def ready(self):
        self.notify("READY=1")

    def feed(self):
        self.notify("WATCHDOG=1")

    def close(self, orderly=True):
        if orderly:
            self.notify("STOPPING=1")
        self._sock.close()


class DevWatchdog:
    def __init__(self, path="/dev/watchdog", timeout_ms=None):
        self.path = path
        self._fd = os.open(path, os.O_WRONLY)
        if timeout_ms is not None:
            import fcntl
            import stat
            import struct

            if stat.S_ISCHR(os.fstat(self._fd).st_mode):
                # the driver rounds to whole seconds, never down to zero
                fcntl.ioctl(self._fd, WDIOC_SETTIMEOUT, struct.pack("i", max(1, (timeout_ms + 999) // 1000)))

    def feed(self):
        os.write(self._fd, b"\0")

    def close(self, orderly=True):
        if self._fd is None:
            return
        if orderly:
            os.write(self._fd, b"V")
        os.close(self._fd)
        self._fd = None


def open_watchdog(timeout_ms, env=None, device="/dev/watchdog"):
    """systemd's watchdog when the service asked for one, else the kernel
    device. Raises OSError when neither is available."""
    env = os.environ if env is None else env
    if env.get("NOTIFY_SOCKET") and env.get("WATCHDOG_USEC"):
        return SystemdWatchdog(env)
    return DevWatchdog(device, timeout_ms)
