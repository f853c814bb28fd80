"""A node for the gateway's aggregation tests: a boot event, then
``win`` records shaped as the firmware's (docs/records.md) with values
that follow from their index, and a ``trip`` every TRIP_EVERY windows,
forwarded by the real Uplink. Runs on CPython and on the MicroPython unix
port (``micropython -m tests.helpers.agg_node ...``).

    python -m tests.helpers.agg_node JOURNAL PORT DEVICE KEYHEX COUNT TRIP_EVERY [PACE_S [HOST]] [clock_s=S] [reboot_at=K]

Window i has t = i s (node time), two channels; ``expected(i)`` gives
its values. ``clock_s``: the node's UTC clock is S seconds off (its boot
event and batch headers say so). ``reboot_at``: after window K the node
restarts (CPython: the process execs itself, so it keeps its pid) without
draining, as a reset would: a new run (boot id, boot event, node time from
0 again) carries on from window K + 1 on the same journal. Prints one
JSON line of journal stats at the end.
"""

import json
import sys
import time

import firmware.clocks as clocks
import firmware.uplink.uplink as uplink_mod
from firmware.store.journal import PRIO_EVENT, PRIO_TELEMETRY, Journal
from firmware.uplink.uplink import Uplink, make_client


def expected(i):
    return {"temp_c": [100, 20000 + i % 7, 21000 + (i * 13) % 500, 22000 + i % 11], "vib_rms": [100, i % 5, 300 + (i * 7) % 90, 900 + i % 3]}


def _skew(clock_s):
    real = clocks.utc_ms

    def utc_ms():
        t = real()
        return None if t is None else t + int(clock_s * 1000)

    # the uplink took its own name for it at import
    clocks.utc_ms = uplink_mod.utc_ms = utc_ms


def main(argv):
    opts = dict(a.split("=", 1) for a in argv if "=" in a)
    argv = [a for a in argv if "=" not in a]
    path, port, dev, keyhex, count, trip_every = argv[:6]
    count, trip_every = int(count), int(trip_every)
    pace = float(argv[6]) if len(argv) > 6 else 0
    host = argv[7] if len(argv) > 7 else "127.0.0.1"
    if "clock_s" in opts:
        _skew(float(opts["clock_s"]))
    reboot_at = int(opts.get("reboot_at", 0))
    # after a reboot: the window this run starts from, and the runs so far
    start = int(opts.get("start", 1))
    boots = int(opts.get("boots", 1))
    j = Journal(path, "group", segment_bytes=32768, group_records=16, group_ms=20)
    up = Uplink(j, make_client(host, int(port), dev, timeout_ms=2000), dev, key=bytes.fromhex(keyhex), batch_records=32, batch_ms=20, backoff_ms=20, backoff_max_ms=200, receipt_timeout_ms=1000)
    j.append({"k": "boot", "t": 0, "boot": clocks.boot_id(), "utc_ms": clocks.utc_ms()}, PRIO_EVENT)
    for i in range(start, count + 1):
        t = (i - start + 1) * 1000000
        j.append({"k": "win", "t": t, "dt": 1000000, "ch": expected(i)}, PRIO_TELEMETRY)
        if i % trip_every == 0:
            j.append({"k": "trip", "t": t, "causes": [[4096, "temp_c high"]]}, PRIO_EVENT)
        up.pump()
        if pace:
            time.sleep(pace)
        if i == reboot_at:
            import os

            # a reset: what was appended is in the journal (group mode
            # syncs on append here), what was in flight is sent again
            j.flush()
            rest = [a for a in sys.argv[1:] if not a.startswith(("reboot_at=", "start=", "boots="))]
            os.execv(sys.executable, [sys.executable, "-m", "tests.helpers.agg_node"] + rest + ["start=%d" % (i + 1), "boots=%d" % (boots + 1)])
    ok = up.drain(90000)
    j.close()
    s = j.stats()
    s["drained"] = ok
    s["boot"] = clocks.boot_id().hex()
    s["boots"] = boots
    s["count"] = count
    s["trip_every"] = trip_every
    print(json.dumps(s))


if __name__ == "__main__":
    main(sys.argv[1:])
