"""A shared bench through a labgrid coordinator: acquire a place with a
bounded wait, always release it, and clear a lock whose holder is gone.

    with Place("127.0.0.1:20408", "edgefw-bench", session="ci-1") as p:
        ...   # the place is ours; pytest --lg-env bench/remote.yaml ...

labgrid keeps a place acquired until someone releases it: a session that
crashes leaves it locked for good (the complaint behind labgrid PR
#1809). Here each session acquires under the name ``bench-<pid>`` on its
host (``LG_USERNAME``), and a session that finds the place held checks
the holder: the same host and a process that no longer exists, or a lock
older than ``lease_s``, is stale and is kicked (``release --kick``);
anything else is waited for, up to ``timeout`` s, then a clean failure.
"""

import os
import socket
import subprocess
import time

from bench.lab.runner import BenchTimeout

CLIENT = "labgrid-client"


def client(coordinator, *args, user=None, timeout=20):
    env = dict(os.environ, LG_USERNAME=user or "bench-%d" % os.getpid(), LG_HOSTNAME=socket.gethostname())
    return subprocess.run([CLIENT, "-x", coordinator] + list(args), env=env, capture_output=True, text=True, timeout=timeout)


def holder(coordinator, place):
    """``(host, user)`` holding ``place``, or None."""
    p = client(coordinator, "-p", place, "show")
    for line in p.stdout.splitlines():
        line = line.strip()
        if line.startswith("acquired:"):
            who = line.split(":", 1)[1].strip()
            if who and who != "None":
                host, _, user = who.partition("/")
                return host, user
    return None


def stale(who, lease_s=None, since=None):
    """Whether the holder ``(host, user)`` is gone: our host and a
    ``bench-<pid>`` whose process has ended, or held past the lease."""
    host, user = who
    if host == socket.gethostname() and user.startswith("bench-"):
        try:
            os.kill(int(user[6:]), 0)
        except ProcessLookupError:
            return True
        except (ValueError, PermissionError):
            pass
    return lease_s is not None and since is not None and time.monotonic() - since > lease_s


class Place:
    def __init__(self, coordinator, place, session=None, timeout=30.0, lease_s=None, poll_s=0.3):
        self.coordinator, self.place = coordinator, place
        self.user = "bench-%d" % os.getpid() if session is None else session
        self.timeout, self.lease_s, self.poll_s = timeout, lease_s, poll_s
        self.kicked = []

    def _c(self, *args):
        return client(self.coordinator, "-p", self.place, *args, user=self.user)

    def acquire(self):
        deadline = time.monotonic() + self.timeout
        seen = {}
        while True:
            p = self._c("acquire")
            if p.returncode == 0:
                return self
            who = holder(self.coordinator, self.place)
            if who is not None:
                seen.setdefault(who, time.monotonic())
                if stale(who, self.lease_s, seen[who]):
                    self._c("release", "--kick")
                    self.kicked.append("%s/%s" % who)
                    continue
            if time.monotonic() > deadline:
                raise BenchTimeout("place %s not acquired within %.0f s (held by %s): %s" % (self.place, self.timeout, who and "/".join(who), p.stderr.strip()[-300:]))
            time.sleep(self.poll_s)

    def release(self):
        self._c("release")

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
        return False
