"""Fuzzing the config and scenario loaders, seeded and bounded, on both
targets: every mutated file is either refused with a ConfigError or
accepted and valid by rules written here apart from the checker (and, for
a config, held unchanged by the interlock's integer tables). Anything else
raised is a traceback a user would have seen. The counts are printed."""

import json
import sys

from firmware.channels import scale
from firmware.config import load_config
from hal.errors import ConfigError
from sim.scenario import parse_scenario
from tests.dual._util import IS_MP, tmp_path
from tests.dual.fuzz import Rand, copy, mutate

CONFIG_CASES = 400 if IS_MP else 1000
SCENARIO_CASES = 400 if IS_MP else 1000
SCENARIO_RUNS = 40 if IS_MP else 120
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"


def _finite(v):
    if isinstance(v, float):
        return v == v and v not in (float("inf"), float("-inf"))
    if isinstance(v, dict):
        return all(_finite(x) for x in v.values())
    if isinstance(v, list):
        return all(_finite(x) for x in v)
    return True


def _num(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _config_problem(cfg):
    """Why an accepted config is nonsense, or None."""
    if not _finite(cfg):
        return "a number that is not finite"
    d = cfg["device_id"]
    if not isinstance(d, str) or not 1 <= len(d) <= 64 or d[0] in "._-" or [c for c in d if c not in ID_CHARS]:
        return "device_id %r" % (d,)
    period = cfg["period_ms"]
    for s in cfg["sensors"]:
        sample = 10 if s["type"] == "bme280" else -(-1000 // s["rate_hz"])
        if s["stale_ms"] < max(period, sample):
            return "stale_ms %r under the sample interval or period" % s["stale_ms"]
    il = cfg["interlock"]
    for k in ("stall_ms", "watchdog_ms"):
        if il[k] and il[k] <= period:
            return "%s %r not longer than the period" % (k, il[k])
    for ch, r in il["channels"].items():
        for k in ("high", "low", "rate_per_s", "hysteresis"):
            v = r.get(k)
            if v is not None and (not _num(v) or abs(v) > 1000000):
                return "%s.%s %r" % (ch, k, v)
        for v in r.get("plausible") or ():
            if not _num(v) or abs(v) > 1000000:
                return "%s.plausible %r" % (ch, v)
        if r.get("high") is not None and r.get("low") is not None and r["hysteresis"] > r["high"] - r["low"] + 0.001:
            return "%s hysteresis wider than high - low" % ch
    up = cfg["uplink"]
    host, _, port = up["broker"].rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return "broker %r" % up["broker"]
    if not _num(up["batch_records"]) or up["batch_records"] < 1:
        return "batch_records %r" % up["batch_records"]
    if not _num(cfg["inference"]["threshold"]):
        return "threshold %r" % cfg["inference"]["threshold"]
    # what the interlock holds must be what the file says: no wrap
    from firmware.safety.interlock import Interlock

    lock = Interlock.from_sections(cfg["sensors"], cfg["interlock"], cfg["startup"])
    for i, ch in enumerate(lock.channels):
        r = il["channels"].get(ch)
        if not r:
            continue
        for k, table in (("high", lock.hi), ("low", lock.lo), ("rate_per_s", lock.roc), ("hysteresis", lock.hyst)):
            if r.get(k) is not None and table[i] != scale(r[k]):
                return "%s.%s %r held as %d" % (ch, k, r[k], table[i])
    return None


def _write(text):
    p = tmp_path("fuzz.json")
    with open(p, "w") as f:
        f.write(text)
    return p


def _dump(doc):
    try:
        return json.dumps(doc)
    except (RuntimeError, MemoryError, ValueError):
        return None


def _report(what, counts):
    print("fuzz %s on %s: %s" % (what, sys.implementation.name, " ".join("%s=%d" % kv for kv in sorted(counts.items()))))


def _judge(n, bad, case, attempt):
    """Count one case: refused with ConfigError, a traceback (anything
    else), or accepted, and then invalid when ``attempt`` says why."""
    try:
        why = attempt()
    except ConfigError:
        n["refused"] += 1
        return
    except Exception as e:  # noqa: BLE001 - the point: nothing else may escape
        n["tracebacks"] += 1
        bad.append("case %d: %s: %s" % (case, type(e).__name__, e))
        return
    n["accepted"] += 1
    if why:
        n["accepted_invalid"] += 1
        bad.append("case %d accepted: %s" % (case, why))


def test_fuzz_config_loader():
    base = load_config(None)
    r = Rand(10)
    n = {"cases": 0, "accepted": 0, "refused": 0, "tracebacks": 0, "accepted_invalid": 0}
    bad = []
    for case in range(CONFIG_CASES):
        doc = mutate(r, base)
        n["cases"] += 1
        text = _dump(doc) if case % 2 == 0 else None

        def attempt(doc=doc, text=text):
            # half through a file (the JSON parser included), half as
            # overrides (values JSON cannot carry on every target, e.g. NaN)
            if text is not None:
                cfg = load_config(_write(text))
            else:
                cfg = load_config(None, copy(doc))
            return _config_problem(cfg)

        _judge(n, bad, case, attempt)
    _report("config", n)
    assert not bad, bad[:5]
    # the mutations reach both sides of the checker
    assert n["accepted"] > 20 and n["refused"] > 100, n


SCENARIO_BASE = {
    "description": "fuzz base",
    "duration_s": 0.5,
    "initial": {"env.temperature_c": 22.0, "vib.accel_z_g": 1.0},
    "events": [
        {"at_s": 0.05, "press": "RESET", "for_s": 0.05},
        {"at_s": 0.1, "ramp": {"env.temperature_c": 30.0}, "over_s": 0.1},
        {"at_s": 0.15, "vibration": {"channel": "vib.accel_x_g", "amplitude_g": 1.5, "freq_hz": 120}, "for_s": 0.1},
        {"at_s": 0.2, "fault": {"sensor": "env", "kind": "eio", "register": "0xF7"}, "for_s": 0.05},
        {"at_s": 0.25, "input": {"role": "ESTOP", "level": 1}},
        {"at_s": 0.3, "set": {"env.temperature_c": 75.0}},
        {"at_s": 0.35, "stall_ms": 5},
        {"at_s": 0.4, "load_ms": 2, "for_s": 0.05},
        {"at_s": 0.45, "relay": "welded"},
    ],
    "expect": {"trips": [{"cause": "estop", "at_s": 0.25}]},
}


def _scenario_problem(sc, cfg):
    from firmware.channels import channel_names

    names = channel_names(cfg["sensors"])
    end = sc["duration_us"]
    for ch in sc["initial"]:
        if ch not in names:
            return "initial channel %r" % ch
    for e in sc["events"]:
        if end is not None and e["at_us"] > end:
            return "event after the end"
        a = e["arg"]
        if e["kind"] in ("set", "ramp"):
            for ch, v in a.items():
                if ch not in names or not _finite(v):
                    return "%s %r=%r" % (e["kind"], ch, v)
        if e["kind"] == "vibration" and (a["channel"] not in names or not _finite(a)):
            return "vibration %r" % (a,)
        if e["for_us"] is not None and e["for_us"] < 0:
            return "negative for_s"
    return None


def _play(sc, cfg):
    import asyncio

    import boards
    from firmware.start import firmware
    from firmware.store.journal import Journal
    from sim.board import SimHardware

    hw = SimHardware(boards.get("sim"), sensors=cfg["sensors"], scenario=sc)
    fw = firmware(hw, cfg, Journal(tmp_path("j")))
    # a mutated duration_s may be days long: a second of virtual time at most
    asyncio.run(fw.run(until_us=min(sc["duration_us"] or 500000, 1000000)))
    fw.journal.close()
    from sim.expect import check_trips

    return check_trips(sc["expect"] or [], fw.trips, fw.period_us)


def test_fuzz_scenario_loader_and_player():
    cfg = load_config(None)
    r = Rand(20)
    n = {"cases": 0, "accepted": 0, "refused": 0, "played": 0, "tracebacks": 0, "accepted_invalid": 0}
    bad = []
    for case in range(SCENARIO_CASES):
        doc = mutate(r, SCENARIO_BASE)
        n["cases"] += 1

        def attempt(doc=doc):
            sc = parse_scenario(doc, "fuzz.json", cfg)
            why = _scenario_problem(sc, cfg)
            if why is None and n["played"] < SCENARIO_RUNS:
                # accepted: it must also play to its end without a crash
                n["played"] += 1
                _play(sc, cfg)
            return why

        _judge(n, bad, case, attempt)
    _report("scenario", n)
    assert not bad, bad[:5]
    assert n["accepted"] > 20 and n["refused"] > 50 and n["played"] >= 20, n
