"""Group durability on CPython: the journal's held records written in the
order they were appended, then synced. firmware.store.journal loads this on its
first commit; MicroPython never does (it writes every record at once, as a
held group could take more heap than a small device has).
"""

from hal.errors import JournalError


def commit(journal):
    """Write the held frames in the order they were appended, so that what
    a crash leaves is always a prefix of the stream: one write per run of
    one queue within one segment, then one sync."""
    pend = journal._pend
    journal._pend = []
    journal._pend_bytes = 0
    i = 0
    try:
        while i < len(pend):
            q = pend[i][0]
            segs = journal._segs[q]
            if not segs or segs[-1].size + len(pend[i][2]) > journal.segment_bytes:
                journal._roll(q, pend[i][1])
            room = journal.segment_bytes - journal._segs[q][-1].size
            end = i
            size = 0
            while end < len(pend) and pend[end][0] == q and size + len(pend[end][2]) <= room:
                size += len(pend[end][2])
                end += 1
            journal._write(q, b"".join([p[2] for p in pend[i:end]]), end - i, pend[end - 1][1])
            i = end
    except JournalError:
        # records already numbered and handed back: lost, and counted
        for p in pend[i:]:
            journal._size_hint -= len(p[2])
        journal.lost_io += len(pend) - i
        # the held group is gone: the next one starts from nothing
        journal._unsynced = 0
        raise
    journal._sync()
