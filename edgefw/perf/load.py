"""CPU load and real-time switches for ``edgefw bench interlock``.

    with Hogs(2):                 # two CPU-bound processes for the duration
        with realtime(80):        # this thread SCHED_FIFO 80 + mlockall
            measure(...)
"""

import contextlib
import subprocess
import sys

HOG = "while True:\n    pass\n"


class Hogs:
    def __init__(self, n):
        self.n = n
        self.procs = []

    def __enter__(self):
        for _ in range(self.n):
            self.procs.append(subprocess.Popen([sys.executable, "-c", HOG], stdin=subprocess.DEVNULL))
        return self

    def alive(self):
        return sum(1 for p in self.procs if p.poll() is None)

    def __exit__(self, *exc):
        for p in self.procs:
            p.kill()
        for p in self.procs:
            p.wait(timeout=10)
        return False


@contextlib.contextmanager
def realtime(priority):
    if not priority:
        yield None
        return
    from firmware.linux.rt import disable, enable

    info = enable(priority)
    try:
        yield info
    finally:
        disable()


def rt_preexec(priority):
    """For a subprocess (the MicroPython cases): SCHED_FIFO in the child."""
    if not priority:
        return None

    def set_fifo():
        import os

        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))

    return set_fifo
