"""Entry point on both targets.

MicroPython (unix port, from the repository root)::

    MICROPYPATH=. micropython -X heapsize=128k -m firmware.app --cycles 10000 --json

CPython: ``edgefw run`` (tools/cli.py) calls ``build`` and ``Firmware.run``
with a live status display.

Options: --board NAME, --config FILE, --scenario FILE, --cycles N,
--journal FILE, --json. On the sim board the default scenario is
``sim/scenarios/default.json``.
"""

import json
import sys

from firmware.loop import Firmware
from firmware.store.journal import Journal
from hal.compat import IS_MICROPYTHON

try:
    import asyncio
except ImportError:  # pragma: no cover
    asyncio = None


def default_scenario_path():
    import sim

    return sim.__file__.rsplit("/", 1)[0] + "/scenarios/default.json"


PRECHECKED = "prechecked.json"


def _load_prechecked():
    """The config and scenario ``edgefw mpy-build`` checked on the host
    (``firmware/prechecked.json`` beside this module), or None. A device
    built that way starts without loading the checkers."""
    import firmware

    try:
        f = open(firmware.__file__.rsplit("/", 1)[0] + "/" + PRECHECKED)
    except OSError:
        return None
    try:
        doc = json.load(f)
    finally:
        f.close()
    return doc["config"], doc["scenario"]


def build(board=None, config=None, scenario=None, journal=None, speed=0.0, overrides=None, inference=None):
    """Load config and scenario, open the board, and build the firmware.
    Returns (firmware, scenario or None)."""
    import boards
    from hal.backend import choose_board, open_board

    name = choose_board(board)
    is_sim = boards.get(name).FAMILY == "sim"
    pre = None if (config or scenario or overrides) else _load_prechecked()
    if pre is not None:
        cfg, sc = pre
        if not is_sim:
            sc = None
    else:
        from firmware.config import load_config

        cfg = load_config(config, overrides)
        sc = None
        if is_sim:
            from sim.scenario import load_scenario

            sc = load_scenario(scenario or default_scenario_path(), cfg)
            del load_scenario
        del load_config
        _unload("firmware.config", "sim.scenario")
    from firmware.safety.interlock import Interlock

    il = Interlock.from_config(cfg)
    _unload("firmware.safety.setup")
    # the journal before the board: its recovery code comes and goes
    # while the heap is still small
    j = open_journal(cfg, journal)
    from firmware.clocks import boot_id, utc_ms
    from firmware.store import recovery

    recovery.note_start(j, boot_id(), utc_ms())
    del recovery
    _unload("firmware.store.recovery", "firmware.store.scan")
    hw = open_board(name, sensors=cfg["sensors"], scenario=sc, speed=speed)
    del boards, choose_board, open_board
    # the board table and detection go; hw.board keeps the board's module
    _unload("hal.backend", "boards." + name, "boards")
    if inference is None and cfg["inference"]["enabled"]:
        from firmware.infer.anomaly import stage_from_config

        inference = stage_from_config(cfg)
    fw = Firmware(hw, cfg, j, inference, il)
    fw.uplink_cfg = (cfg["device_id"], cfg["uplink"])
    return fw, sc


def start_uplink(fw, wifi=None):
    """On MicroPython, the config's uplink in the loop's idle time
    (``firmware.uplink.coop``); on CPython ``edgefw run`` runs it in a thread."""
    dev, u = fw.uplink_cfg
    if sys.implementation.name != "micropython" or not u["enabled"]:
        return None
    from firmware.uplink.coop import attach

    return attach(fw, dev, u, wifi)


def open_journal(cfg, path=None):
    r = cfg["record"]
    return Journal(
        path or r["journal"],
        r["durability"],
        segment_bytes=r["segment_bytes"],
        cap_bytes=r["cap_bytes"],
        full_policy=r["full_policy"],
        ttl_s={0: r["ttl_s"]["events"], 1: r["ttl_s"]["telemetry"]},
        group_records=r["group_records"],
        group_ms=r["group_ms"],
    )


def _unload(*names):
    """On MicroPython, drop start-up-only modules (the config and scenario
    checkers, the backend chooser, the board table) once they have run:
    bytecode a 128 KB heap needs back."""
    if not IS_MICROPYTHON:
        return
    import gc

    for name in names:
        if name in sys.modules:
            del sys.modules[name]
        pkg, _, leaf = name.rpartition(".")
        if pkg in sys.modules and hasattr(sys.modules[pkg], leaf):
            delattr(sys.modules[pkg], leaf)
    gc.collect()


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
    j = fw.journal
    # losses and repairs by name, as edgefw run's summary has them
    s["store"] = {
        "dropped_cap": j.dropped_cap,
        "dropped_ttl": j.dropped_ttl,
        "refused": j.refused,
        "lost_io": j.lost_io,
        "unstored": fw.recorder.lost,
        "recovered_bytes": j.recovered_bytes,
        "corrupt_skipped": j.corrupt_skipped,
        "ack_repaired": j.ack_repaired,
    }
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
        from sim.expect import check_trips, report

        failures = check_trips(sc["expect"], s["trips"], fw.period_us)
        report(o["scenario"] or "scenario", failures, sys.stderr.write)
        return 1 if failures else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
