"""What a killed process left in the OS's cache is synced when the journal
reopens, before any of it is sent (else a power cut after sending could
take it back and its sequence numbers would be given out again)."""

import os
import subprocess
import sys

from tests.conftest import ROOT

WRITER = """
import os, sys
from firmware.store.journal import Journal
import firmware.store.journal as jm
jm.fsync = lambda f: f.flush()  # the process dies between write and fsync
j = Journal(sys.argv[1], "fsync")
for i in range(50):
    j.append({"k": "win", "i": i})
os.kill(os.getpid(), 9)
"""


def test_recovered_records_are_synced_before_they_are_sent(tmp_path, monkeypatch):
    path = str(tmp_path / "j")
    p = subprocess.run([sys.executable, "-c", WRITER, path], cwd=ROOT)
    assert p.returncode == -9
    synced = []
    real = os.fsync

    def spy(fd):
        synced.append(os.readlink("/proc/self/fd/%d" % fd))
        return real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    from firmware.store.journal import Journal

    j = Journal(path, "fsync")
    # every segment that holds records was synced while opening, before
    # the first read could hand any of them to the uplink
    segs = [os.path.join(path, "q1", n) for n in os.listdir(os.path.join(path, "q1")) if n.endswith(".seg")]
    assert segs and all(s in synced for s in segs), (segs, synced)
    assert j.synced_seq == 50
    q, batch = j.read_batch(100)
    assert len(batch) == 50
    j.close()
