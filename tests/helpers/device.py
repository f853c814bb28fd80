"""A device process for the store-and-forward tests: appends records at a
steady pace and forwards them, in one thread, until killed or done.

    python -m tests.helpers.device JOURNAL PORT DEVICE KEYHEX COUNT [cap_bytes [drain_s]]

KEYHEX ``-`` sends batches unsealed.
Every record carries ``n``, its position in the stream, so the test can
tell what was dropped. EDGEFW_TEST_LIVE_FIRST=1 sends live records before
a backlog; EDGEFW_TEST_APPEND_S paces the appends; EDGEFW_TEST_RECEIPTS=0
forwards PUBACK-only; EDGEFW_TEST_RECEIPT_MS is the receipt timeout. Prints one JSON line of journal stats at the end.
"""

import json
import os
import sys
import time

from firmware.store.journal import PRIO_EVENT, Journal
from firmware.uplink.uplink import Uplink, make_client


def main(argv):
    path, port, dev, keyhex, count = argv[:5]
    cap = int(argv[5]) if len(argv) > 5 else 64 << 20
    drain_s = float(argv[6]) if len(argv) > 6 else 60
    j = Journal(path, "group", segment_bytes=min(32768, cap), cap_bytes=cap, group_records=16, group_ms=20)
    up = Uplink(
        j,
        make_client("127.0.0.1", int(port), dev, timeout_ms=2000),
        dev,
        key=bytes.fromhex(keyhex) if keyhex != "-" else None,
        batch_records=32,
        batch_ms=20,
        backoff_ms=20,
        backoff_max_ms=200,
        live_first=os.environ.get("EDGEFW_TEST_LIVE_FIRST") == "1",
        receipts=os.environ.get("EDGEFW_TEST_RECEIPTS", "1") == "1",
        receipt_timeout_ms=int(os.environ.get("EDGEFW_TEST_RECEIPT_MS", "1000")),
    )
    # resume the stream where the journal left it
    done = 0
    for _s, r in j.records():
        done = max(done, r.get("n", 0))
    n = done
    pace = float(os.environ.get("EDGEFW_TEST_APPEND_S", "0"))
    while n < int(count):
        if pace:
            time.sleep(pace)
        n += 1
        j.append({"k": "trip" if n % 50 == 0 else "win", "n": n, "pad": "x" * 40}, PRIO_EVENT if n % 50 == 0 else 1)
        up.pump()
    up.drain(int(drain_s * 1000))
    j.close()
    s = j.stats()
    s["uplink"] = up.stats()
    print(json.dumps(s))


if __name__ == "__main__":
    main(sys.argv[1:])
