"""The Linux watchdogs, against a real datagram socket and a file."""

import socket

import pytest

from hal.linux_watchdog import DevWatchdog, SystemdWatchdog, open_watchdog


def test_systemd_watchdog_sends_notify_messages(tmp_path):
    path = str(tmp_path / "notify")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    srv.settimeout(5)
    env = {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "500000"}
    wd = open_watchdog(500, env=env)
    assert isinstance(wd, SystemdWatchdog) and wd.interval_us == 500000
    wd.ready()
    wd.feed()
    wd.close()
    assert [srv.recv(64) for _ in range(3)] == [b"READY=1", b"WATCHDOG=1", b"STOPPING=1"]


def test_abstract_socket_names():
    name = "@edgefw-test-%d" % id(object())
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind("\0" + name[1:])
    srv.settimeout(5)
    wd = SystemdWatchdog({"NOTIFY_SOCKET": name})
    wd.feed()
    assert srv.recv(64) == b"WATCHDOG=1"


def test_without_systemd_it_says_so():
    with pytest.raises(OSError, match="NOTIFY_SOCKET"):
        SystemdWatchdog({})


def test_dev_watchdog_feeds_and_disarms_only_on_orderly_close(tmp_path):
    # a regular file stands in for the character device: the bytes written
    # are what the kernel driver would see
    dev = tmp_path / "watchdog"
    dev.write_bytes(b"")
    wd = DevWatchdog(str(dev), timeout_ms=1500)
    wd.feed()
    wd.feed()
    wd.close(orderly=True)
    assert dev.read_bytes() == b"\0\0V"
    dev.write_bytes(b"")
    wd = DevWatchdog(str(dev))
    wd.feed()
    wd.close(orderly=False)
    assert dev.read_bytes() == b"\0"


def test_systemd_watchdog_never_blocks_on_a_full_queue(tmp_path):
    # nobody reads the socket: sends past the kernel's datagram queue are
    # dropped and counted, the caller (the loop) is not held up
    path = str(tmp_path / "notify")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    srv.bind(path)
    wd = SystemdWatchdog({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "500000"})
    for _ in range(2000):
        wd.feed()
    assert wd.dropped > 0
    assert srv.recv(64) == b"WATCHDOG=1"
