"""MicroPython only: the sense -> interlock -> permit path allocates
nothing. Every safety cycle below runs with the heap locked
(``micropython.heap_lock``), so any allocation raises MemoryError.

Covered: steady state, an over-limit trip, a refused and an accepted
reset, an e-stop, a bus error (an OSError raised and caught in the path),
a missing device and a stale sensor. Between cycles, with the heap
unlocked, the simulated world moves on.

    MICROPYPATH=.frozen:. micropython tests/mp_only/heap_lock.py
"""

import gc
import sys

import micropython

from tests.dual._util import firmware

SCRIPT = [
    {"at_s": 0.10, "press": "RESET", "for_s": 0.05},
    {"at_s": 0.50, "set": {"env.temperature_c": 75.0}},
    {"at_s": 0.70, "press": "RESET", "for_s": 0.05},
    {"at_s": 0.80, "set": {"env.temperature_c": 20.0}},
    {"at_s": 0.90, "press": "RESET", "for_s": 0.05},
    {"at_s": 1.10, "press": "ESTOP", "for_s": 0.1},
    {"at_s": 1.30, "press": "RESET", "for_s": 0.05},
    {"at_s": 1.50, "fault": {"sensor": "env", "kind": "eio", "register": "0xF7"}, "for_s": 0.05},
    {"at_s": 1.70, "press": "RESET", "for_s": 0.05},
    {"at_s": 1.90, "fault": {"sensor": "vib", "kind": "nodev"}, "for_s": 0.05},
    {"at_s": 2.10, "press": "RESET", "for_s": 0.05},
    {"at_s": 2.30, "fault": {"sensor": "vib", "kind": "stuck"}, "for_s": 0.2},
    {"at_s": 2.70, "press": "RESET", "for_s": 0.05},
]


def main():
    fw = firmware(SCRIPT)
    clk = fw.hw.clock
    period = fw.period_us
    locked_cycles = 0
    failures = 0
    n = 300
    gc.collect()
    for slot in range(n):
        now = clk.ticks_us()
        fw.slot = fw.stamp_slot = slot
        micropython.heap_lock()
        try:
            fw.safety_cycle(now, 0)
            locked_cycles += 1
        except MemoryError:
            failures += 1
        finally:
            micropython.heap_unlock()
        fw._record()
        fw.wdt.feed()  # as the loop does after an on-time cycle
        clk.advance(period)
    kinds = [e["k"] for e in fw.events]
    causes = [t["cause"] for t in fw.trips]
    print("locked cycles", locked_cycles, "allocation failures", failures)
    print("events", kinds)
    print("trip causes", causes)
    ok = failures == 0 and locked_cycles == n
    # the script really exercised the paths it claims to
    ok = ok and causes == ["env.temperature_c:high", "estop", "env:bus", "vib:bus", "vib:stale"]
    ok = ok and "reset_refused" in kinds and kinds.count("reset") == 6
    ok = ok and fw.wdt.expired_at is None
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


sys.exit(main())
