"""Start-up, run once: the checked config (and, on a board that plays
scenarios, the scenario), the interlock, the journal, the board and the
loop's settings, each part given only its own section of the config.

    args, kw, uplink, sc = build("sim")   # firmware.app.build: Firmware(*args, **kw)
    fw = firmware(hw, cfg, journal)       # the loop from a whole config (tests)

The config goes no further than this module: the interlock gets the
sensors and its ``interlock`` section, the journal its ``record`` section,
the inference stage its ``inference`` section, the loop the settings it
reads (``loop_settings``; ``Firmware.__init__`` lists them). A board's
scenarios are reached through the backend table (``hal.backend.backend_of``
gives the board's row, which names the module loading its scenarios):
the firmware never imports the simulator.

On MicroPython ``firmware.app`` drops this module before it builds the
loop, and this module drops the ones it used only here (the checkers,
the backend chooser, the board table, the journal's recovery) as it goes:
bytecode a 128 KB heap needs back. The board's hardware module is loaded
first, so its code sits below what start-up frees.
"""

import json
import sys

from hal.compat import IS_MICROPYTHON

PRECHECKED = "prechecked.json"


def load_prechecked():
    """The config and scenario ``edgefw mpy-build`` checked on the host
    (``firmware/prechecked.json``), or None. A device built that way
    starts without loading the checkers."""
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


def unload(*names):
    """On MicroPython, drop start-up-only modules once they have run
    (a name may be None: nothing to drop)."""
    if not IS_MICROPYTHON:
        return
    import gc

    for name in names:
        if name is None:
            continue
        if name in sys.modules:
            del sys.modules[name]
        pkg, _, leaf = name.rpartition(".")
        if pkg in sys.modules and hasattr(sys.modules[pkg], leaf):
            delattr(sys.modules[pkg], leaf)
    gc.collect()


def open_journal(record, path=None):
    """The journal the ``record`` section describes (at ``path`` if given)."""
    from firmware.store.journal import Journal

    r = record
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


def loop_settings(cfg):
    """The loop's own settings (``Firmware``'s keyword arguments) from a
    whole checked config: the one place that knows which section holds
    which."""
    il = cfg["interlock"]
    return {
        "period_ms": cfg["period_ms"],
        "window_ms": cfg["record"]["window_ms"],
        "readback": il["readback"]["enabled"],
        "watchdog_ms": il["watchdog_ms"],
        "stall_ms": il["stall_ms"],
        "max_overruns": il["max_consecutive_overruns"],
    }


def firmware(hw, cfg, journal=None, inference=None, interlock=None):
    """The loop on ``hw`` for a whole checked config."""
    from firmware.loop import Firmware

    if interlock is None:
        from firmware.safety.interlock import Interlock

        interlock = Interlock.from_sections(cfg["sensors"], cfg["interlock"], cfg["startup"])
    return Firmware(hw, cfg["sensors"], interlock, journal=journal, inference=inference, **loop_settings(cfg))


def build(board=None, config=None, scenario=None, journal=None, speed=0.0, overrides=None, inference=None, fw=None):
    """Load config and scenario, open the board, and build the loop's
    parts (``fw``: the image's hash for the boot event). Returns the arguments of ``Firmware`` (a tuple and a dict of
    keywords; firmware.app builds it once this module is dropped), the
    uplink's settings (device id, ``uplink`` section) and the scenario or
    None."""
    from hal.backend import backend_of, choose_board

    name = choose_board(board)
    # the board's module, its hardware class by module and name, and the
    # module that loads its scenarios or None (real hardware plays none)
    board, hw_module, hw_class, plays = backend_of(name)
    del backend_of, choose_board
    # the board table and detection go; ``board`` is the board's own module
    unload("hal.backend", "boards." + name, "boards")
    hw_cls = getattr(__import__(hw_module, None, None, [hw_class]), hw_class)
    pre = None if (config or scenario or overrides) else load_prechecked()
    if pre is not None:
        cfg, sc = pre
        if plays is None:
            sc = None
    else:
        from firmware.config import load_config

        cfg = load_config(config, overrides)
        sc = None
        if plays is not None:
            mod = __import__(plays, None, None, ["x"])
            sc = mod.load_scenario(scenario or mod.default_path(), cfg)
            del mod
        del load_config
        unload("firmware.config", plays)
    del pre
    from firmware.safety.interlock import Interlock

    il = Interlock.from_sections(cfg["sensors"], cfg["interlock"], cfg["startup"])
    unload("firmware.safety.setup")
    # the journal before the board: its recovery code comes and goes
    # while the heap is still small
    j = open_journal(cfg["record"], journal)
    from firmware.clocks import boot_id, utc_ms
    from firmware.store import recovery

    recovery.note_start(j, boot_id(), utc_ms(), fw)
    del recovery
    unload("firmware.store.recovery", "firmware.store.scan")
    hw = hw_cls(board, sensors=cfg["sensors"], scenario=sc, speed=speed)
    if inference is None and cfg["inference"]["enabled"]:
        from firmware.channels import channel_names
        from firmware.infer.anomaly import stage_from_config

        inference = stage_from_config(cfg["inference"], channel_names(cfg["sensors"]), cfg["period_ms"])
    kw = loop_settings(cfg)
    kw["journal"] = j
    kw["inference"] = inference
    return (hw, cfg["sensors"], il), kw, (cfg["device_id"], cfg["uplink"]), sc
