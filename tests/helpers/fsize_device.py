"""Append to a journal under a file-size limit (RLIMIT_FSIZE), as a full
disk would refuse writes. Prints JSON: appended, refused, errors.

    python -m tests.helpers.fsize_device JOURNAL LIMIT_BYTES COUNT [DURABILITY]
"""

import json
import resource
import signal
import sys

from firmware.store.journal import Journal
from hal.errors import JournalError


def main(path, limit, count, durability="fsync"):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get EFBIG, not death
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    j = Journal(path, durability, segment_bytes=65536, cap_bytes=1 << 20, group_records=16, group_ms=10000)
    ok = errors = 0
    last_error = None
    for n in range(count):
        try:
            if j.append({"k": "win", "n": n, "pad": "p" * 50}):
                ok += 1
        except JournalError as e:
            errors += 1
            last_error = str(e)
    try:
        j.close()
    except JournalError as e:
        errors += 1
        last_error = str(e)
    print(json.dumps({"appended": ok, "errors": errors, "last_error": last_error, "next_seq": j.next_seq, "lost_io": j.lost_io}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
