"""Opening a journal: directories, recovery of every segment, the ack
cursor. Runs once at start-up (and on a failed write), apart from the
append path, so a small heap can drop it afterwards."""

import os

from firmware.store.format import PRIO_EVENT, Segment
from firmware.store.scan import file_size, scan_file
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


# the largest cursor an ack file may hold: frames carry u64 sequence numbers
_SEQ_MAX = (1 << 63) - 1


def read_ack(path):
    """The numbers of an ack file: [acked] or [acked, start, live_acked];
    [] when there is none, None when it holds anything else."""
    try:
        with open(path, "rb") as f:
            raw = f.read(64)
    except OSError:
        return []
    try:
        nums = [int(x) for x in raw.decode().split()]
    except (ValueError, UnicodeError):
        return None
    if len(nums) not in (1, 3):
        return None
    for n in nums:
        if not 0 <= n <= _SEQ_MAX:
            return None
    return nums


def open_queue(self, q):
    d = self._qdir(q)
    makedirs(d)
    nums = read_ack(join(d, "ack"))
    names = sorted(n for n in os.listdir(d) if n.endswith(".seg"))
    segs = []
    for k, name in enumerate(names):
        p = join(d, name)
        size = file_size(p)
        st = {}
        try:
            first = int(name[:-4])
        except ValueError:
            first = 0
        seg = Segment(first, p)
        with open(p, "rb") as f:
            # frame by frame: a segment may be larger than a small heap
            for _off, seq, _c in scan_file(f, size, st):
                seg.n += 1
                seg.last = seq
        self.corrupt_skipped += st["skipped"]
        if st["end"] < size:
            if k == len(names) - 1:
                # a torn tail: the write a power cut interrupted
                self.recovered_bytes += size - st["end"]
                truncate(p, st["end"])
            else:
                self.corrupt_skipped += size - st["end"]
        seg.size = st["end"] if k == len(names) - 1 else size
        if seg.n == 0 and k < len(names) - 1:
            os.remove(p)
            continue
        if seg.n:
            # what the last run wrote may still sit in the OS's cache: on
            # disk before any of it is sent (or its numbers could come again)
            with open(p, "ab") as f:
                fsync(f)
        segs.append(seg)
        if seg.last >= self.next_seq:
            self.next_seq = seg.last + 1
    self._segs[q] = segs
    self._ack_file[q] = nums


def check_acks(self):
    """Take each queue's ack cursor once every queue is open: sequence
    numbers are the device's, not the queue's, so a cursor is checked
    against the newest record of any queue."""
    top = self.next_seq - 1
    for q in sorted(self._ack_file):
        nums = self._ack_file[q]
        if nums is None or (nums and not _ack_fits(nums, top)):
            # nonsense: send everything on disk again (the receiver drops
            # duplicates) rather than trust it and lose records
            self.ack_repaired += 1
            if nums:
                # well-formed, only past the records: numbers stay above it
                self.next_seq = max(self.next_seq, max(nums) + 1)
            nums = [0]
        acked = nums[0] if nums else 0
        if len(nums) == 3:
            # live records were going first: their own range and cursor
            self._live[q] = [nums[1], nums[2]]
        self._acked[q] = acked
        self._gc(q)
    self._ack_file = None


def _ack_fits(nums, top):
    """An ack cursor names records the journal has had: none past its
    newest record on disk, and a live range after the cursor."""
    if nums[0] > top:
        return False
    if len(nums) == 3:
        start, live_acked = nums[1], nums[2]
        return nums[0] < start <= live_acked + 1 and live_acked <= top
    return True


def note_start(j, boot, utc_ms, fw=None):
    """The first records of a run: a ``boot`` event (this run's id,
    whether the clock is set and, from an image, ``fw``: its manifest's
    hash, ``firmware.attest``), and a ``repair`` event when opening
    repaired anything (a torn tail, a damaged frame, an ack file that made
    no sense), so the receiver learns of it."""
    ev = {"k": "boot", "boot": boot, "utc_ms": utc_ms}
    if fw:
        ev["fw"] = fw
    j.append(ev, PRIO_EVENT)
    if j.recovered_bytes or j.corrupt_skipped or j.ack_repaired:
        j.append(
            {"k": "repair", "recovered_bytes": j.recovered_bytes, "corrupt_skipped": j.corrupt_skipped, "ack_reset": j.ack_repaired},
            PRIO_EVENT,
        )


def cut_back(seg):
    """Cut a segment's file back to ``seg.size``, what it held before a
    write that failed part way (ENOSPC, EFBIG)."""
    truncate(seg.path, seg.size)


def truncate(path, good):
    if hasattr(os, "truncate"):
        os.truncate(path, good)
        return
    # MicroPython has no truncate: copy the good part aside, a little at a
    # time, then rename over the original, so a power cut leaves one whole
    # file or the other
    tmp = path + ".tmp"
    buf = bytearray(512)
    with open(path, "rb") as src, open(tmp, "wb") as dst:
        left = good
        while left:
            n = src.readinto(buf) if left >= len(buf) else src.readinto(memoryview(buf)[:left])
            if not n:
                break
            dst.write(memoryview(buf)[:n])
            left -= n
        fsync(dst)
    os.rename(tmp, path)
