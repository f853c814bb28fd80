"""Opening a journal: directories, recovery of every segment, the ack
cursor. Runs once at start-up (and on a failed write), apart from the
append path, so a small heap can drop it afterwards."""

import os

from firmware.journal import _Segment
from firmware.journal_scan import scan
from hal.compat import fsync
from hal.errors import JournalError


def join(a, b):
    return a + "/" + b


def exists(p):
    try:
        os.stat(p)
        return True
    except OSError:
        return False


def makedirs(p):
    cur = "/" if p.startswith("/") else ""
    for part in p.split("/"):
        if not part:
            continue
        cur = cur + part if (not cur or cur.endswith("/")) else cur + "/" + part
        if not exists(cur):
            try:
                os.mkdir(cur)
            except OSError as e:
                raise JournalError("cannot create journal directory %s: %s" % (cur, e))


def open_queue(self, q):
    d = self._qdir(q)
    makedirs(d)
    acked = 0
    try:
        with open(join(d, "ack")) as f:
            nums = [int(x) for x in f.read().split()]
        acked = nums[0] if nums else 0
        if len(nums) == 3:
            # live records were going first: their own range and cursor
            self._live[q] = [nums[1], nums[2]]
            if nums[2] >= self.next_seq:
                self.next_seq = nums[2] + 1
    except (OSError, ValueError):
        acked = 0
    self._acked[q] = acked
    names = sorted(n for n in os.listdir(d) if n.endswith(".seg"))
    segs = []
    for k, name in enumerate(names):
        p = join(d, name)
        with open(p, "rb") as f:
            data = f.read()
        st = {}
        seg = _Segment(int(name[:-4]), p)
        for _off, seq, _c, _pl in scan(data, st):
            seg.n += 1
            seg.last = seq
        self.corrupt_skipped += st["skipped"]
        if st["end"] < len(data):
            if k == len(names) - 1:
                # a torn tail: the write a power cut interrupted
                self.recovered_bytes += len(data) - st["end"]
                truncate(p, data, st["end"])
            else:
                self.corrupt_skipped += len(data) - st["end"]
        seg.size = st["end"] if k == len(names) - 1 else len(data)
        if seg.n == 0 and k < len(names) - 1:
            os.remove(p)
            continue
        segs.append(seg)
        if seg.last >= self.next_seq:
            self.next_seq = seg.last + 1
    if acked >= self.next_seq:
        self.next_seq = acked + 1
    self._segs[q] = segs
    self._gc(q)


def cut_back(seg):
    """Cut a segment's file back to ``seg.size``, what it held before a
    write that failed part way (ENOSPC, EFBIG)."""
    data = None
    if not hasattr(os, "truncate"):
        with open(seg.path, "rb") as f:
            data = f.read()
    truncate(seg.path, data, seg.size)


def truncate(path, data, good):
    if hasattr(os, "truncate"):
        os.truncate(path, good)
        return
    # MicroPython has no truncate: write the good part aside, then rename
    # over the original, so a power cut leaves one whole file or the other
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data[:good])
        fsync(f)
    os.rename(tmp, path)
