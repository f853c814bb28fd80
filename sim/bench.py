"""A bench file: the sim board's relay as another process sees it.

    edgefw run --bench /tmp/bench.bin           # the device
    python -c "from sim.bench import read; print(read('/tmp/bench.bin'))"

The permit relay is modelled as driven through a charge pump, as safety
relays with a dynamic input are: the coil stays energized only while the
permit output is high *and* is being rewritten, at least every
``hold_ms``. The firmware rewrites it every cycle. When the process dies,
however it dies (SIGKILL included), the rewriting stops and the coil drops
out within ``hold_ms``: safe by construction, not by cleanup code.

The file (CPython only; mmap) holds, little-endian: magic u32, level u8,
pad, hold_ms u32, last-write CLOCK_MONOTONIC ns u64, pid u32.
"""

import mmap
import os
import struct
import time

MAGIC = 0x45464231  # "EFB1"
_FMT = "<IB3xIQI"
SIZE = struct.calcsize(_FMT)


class Bench:
    def __init__(self, path, line, hold_ms=50):
        self.line = line
        self.hold_ms = hold_ms
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        os.ftruncate(fd, SIZE)
        self._mm = mmap.mmap(fd, SIZE)
        os.close(fd)
        self._write(0)

    def _write(self, level):
        self._mm[:SIZE] = struct.pack(_FMT, MAGIC, level, self.hold_ms, time.monotonic_ns(), os.getpid())

    def __call__(self, line, level):
        if line == self.line:
            self._write(level)

    def attach(self, hw):
        hw.gpio.mirror = self
        return self


def read(path):
    """The relay as seen from outside: level, age of the last write, and
    whether the coil is energized."""
    with open(path, "rb") as f:
        magic, level, hold_ms, t_ns, pid = struct.unpack(_FMT, f.read(SIZE))
    if magic != MAGIC:
        raise ValueError("%s is not an edgefw bench file" % path)
    age_ms = (time.monotonic_ns() - t_ns) / 1e6
    return {"level": level, "age_ms": age_ms, "hold_ms": hold_ms, "pid": pid, "energized": bool(level) and age_ms < hold_ms}
