"""A node for the gateway's aggregation tests: a boot event, then
``win`` records shaped as the firmware's (docs/records.md) with values
that follow from their index, and a ``trip`` every TRIP_EVERY windows,
forwarded by the real Uplink.

    python -m tests.helpers.agg_node JOURNAL PORT DEVICE KEYHEX COUNT TRIP_EVERY [PACE_S [HOST]]

Window i has t = i s (node time), two channels; ``expected(i)`` gives
its values. Prints one JSON line of journal stats at the end.
"""

import json
import sys
import time

from firmware.clocks import boot_id, utc_ms
from firmware.store.journal import PRIO_EVENT, PRIO_TELEMETRY, Journal
from firmware.uplink.uplink import Uplink, make_client


def expected(i):
    return {"temp_c": [100, 20000 + i % 7, 21000 + (i * 13) % 500, 22000 + i % 11], "vib_rms": [100, i % 5, 300 + (i * 7) % 90, 900 + i % 3]}


def main(argv):
    path, port, dev, keyhex, count, trip_every = argv[:6]
    pace = float(argv[6]) if len(argv) > 6 else 0
    host = argv[7] if len(argv) > 7 else "127.0.0.1"
    j = Journal(path, "group", segment_bytes=32768, group_records=16, group_ms=20)
    up = Uplink(j, make_client(host, int(port), dev, timeout_ms=2000), dev, key=bytes.fromhex(keyhex), batch_records=32, batch_ms=20, backoff_ms=20, backoff_max_ms=200, receipt_timeout_ms=1000)
    j.append({"k": "boot", "t": 0, "boot": boot_id(), "utc_ms": utc_ms()}, PRIO_EVENT)
    for i in range(1, int(count) + 1):
        j.append({"k": "win", "t": i * 1000000, "dt": 1000000, "ch": expected(i)}, PRIO_TELEMETRY)
        if i % int(trip_every) == 0:
            j.append({"k": "trip", "t": i * 1000000, "causes": [[4096, "temp_c high"]]}, PRIO_EVENT)
        up.pump()
        if pace:
            time.sleep(pace)
    ok = up.drain(90000)
    j.close()
    s = j.stats()
    s["drained"] = ok
    s["boot"] = boot_id().hex()
    print(json.dumps(s))


if __name__ == "__main__":
    main(sys.argv[1:])
