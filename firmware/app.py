"""Entry point on both targets.

MicroPython (unix port, from the repository root)::

    MICROPYPATH=. micropython -X heapsize=128k -m firmware.app --cycles 10000 --json

CPython: ``edgefw run`` (firmware/linux/run.py) calls ``build`` and ``Firmware.run``
with a live status display.

Options: --board NAME, --config FILE, --scenario FILE, --cycles N,
--journal FILE, --json. On the sim board the default scenario is
``sim/scenarios/default.json``. Start-up is ``firmware.start``.
"""

import json
import sys

# the loop's modules (interlock, record stage, journal) before start-up's:
# on a small heap their code then sits in one piece at its bottom
from firmware.loop import Firmware
from hal.compat import IS_MICROPYTHON

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None


def build(board=None, config=None, scenario=None, journal=None, speed=0.0, overrides=None, inference=None, fw=None):
    """Load config and scenario, open the board, and build the firmware
    (``firmware.start``, dropped on MicroPython once it has run). ``fw``:
    the image's hash (``firmware.attest``), reported in the boot event.
    Returns (firmware, scenario or None)."""
    from firmware import start

    try:
        args, kw, uplink, sc = start.build(board, config, scenario, journal, speed, overrides, inference, fw)
    finally:
        if IS_MICROPYTHON:
            start.unload("firmware.start")
            del start
            import gc

            gc.collect()
    # built after start-up's code and the config are gone from the heap
    fw = Firmware(*args, **kw)
    fw.uplink_cfg = uplink
    return fw, sc


def start_uplink(fw, wifi=None):
    """On MicroPython, the config's uplink in the loop's idle time
    (``firmware.uplink.coop``); on CPython ``edgefw run`` runs it in a thread."""
    dev, u = fw.uplink_cfg
    if sys.implementation.name != "micropython" or not u["enabled"]:
        return None
    from firmware.uplink.coop import attach

    return attach(fw, dev, u, wifi)


def _parse(argv):
    opts = {"board": None, "config": None, "scenario": None, "cycles": None, "journal": None, "json": False}
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--json":
            opts["json"] = True
        elif a in ("--board", "--config", "--scenario", "--cycles", "--journal"):
            if i + 1 >= len(argv):
                raise ValueError("%s needs a value" % a)
            v = argv[i + 1]
            opts[a[2:]] = int(v) if a == "--cycles" else v
            if a == "--cycles" and opts["cycles"] < 1:
                raise ValueError("--cycles needs a whole number of at least 1, got %s" % v)
            i += 1
        else:
            raise ValueError("unknown option %r (options: --board, --config, --scenario, --cycles, --journal, --json)" % a)
        i += 1
    return opts


def main(argv=None):
    if argv is None:
        argv = sys.argv[1:]
    try:
        o = _parse(argv)
        fw, sc = build(o["board"], o["config"], o["scenario"], o["journal"])
    except (ValueError, OSError, RuntimeError) as e:
        # every EdgefwError is one of these (see hal.errors)
        sys.stderr.write("edgefw: %s\n" % (e,))
        return 2
    if hasattr(sys, "atexit"):
        sys.atexit(fw.safe)  # any orderly interpreter exit leaves outputs safe
    until = sc["duration_us"] if (sc and o["cycles"] is None) else None
    up = start_uplink(fw)
    asyncio.run(fw.run(cycles=o["cycles"], until_us=until))
    if up is not None:
        up.drain(2000)
    fw.journal.close()
    s = fw.summary()
    from firmware.store.summary import summary

    s["store"] = summary(fw.journal, fw.recorder.lost)
    if up is not None:
        s["uplink"] = up.stats()
        s["uplink"]["longest_slice_us"] = fw.clock.longest_us
    if o["json"]:
        # streamed: the summary's text is never one string on the heap
        json.dump(s, sys.stdout)
        sys.stdout.write("\n")
    else:
        print("cycles %d  overruns %d  records %d  trips %d  permit %d" % (s["cycles"], s["overruns"], s["records"], len(s["trips"]), s["permit"]))
    if sc and sc["expect"] is not None:
        # the board that played the scenario judges it (the sim backend)
        failures = fw.hw.check_expect(sc["expect"], s["trips"], fw.period_us, o["scenario"] or "scenario", sys.stderr.write)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
