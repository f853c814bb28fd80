"""Scenarios: sensor values, faults and button presses scripted over
virtual time. The format is documented in docs/scenarios.md.

    sc = load_scenario("sim/scenarios/default.json")
    hw = SimHardware(board, sensors, scenario=sc)   # plays it as time moves

Every field is checked at load; a bad one raises ``ConfigError`` naming the
file, the event and the field. Given the config (``load_scenario(path,
cfg)``), channel and sensor names are checked against it too, so a typo is
refused before the run rather than met half-way through it.
"""

import json

from hal.errors import ConfigError

EVENT_KINDS = ("set", "ramp", "vibration", "fault", "press", "input", "stall_ms", "load_ms", "relay")
FAULT_KINDS = ("eio", "nodev", "stuck")
RELAY_STATES = ("ok", "welded", "open")
# the sim board's input lines (boards/sim.py)
INPUT_ROLES = ("ESTOP", "RESET", "RELAY_READBACK")


# a bound on every number: a year of seconds, a million units
_MAX = 31536000


def _short(v):
    try:
        r = repr(v)
    except (RuntimeError, MemoryError):
        return "a deeply nested " + type(v).__name__
    return r if len(r) <= 80 else r[:77] + "..."


def _err(src, field, expected, got=None):
    if got is not None:
        expected += ", got " + _short(got)
    return ConfigError(src, field, expected)


def _num(src, field, v, lo=-_MAX, hi=_MAX):
    # NaN fails both comparisons
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not (lo <= v <= hi):
        raise _err(src, field, "a number from %s to %s" % (lo, hi), v)
    return v


def _channel(src, field, k, known):
    if not isinstance(k, str) or "." not in k:
        raise _err(src, field, "channel names of the form 'sensor.quantity' (e.g. 'env.temperature_c')", k)
    if known is not None and k not in known:
        raise _err(src, field, "a channel of the config: " + ", ".join(known), k)


def _channels(src, field, d, known):
    if not isinstance(d, dict) or not d:
        raise _err(src, field, "an object of 'sensor.quantity': number", d)
    for k in d:
        _channel(src, field, k, known)
        _num(src, field + "." + k, d[k], -1000000, 1000000)
    return d


def parse_scenario(doc, src="<scenario>", cfg=None):
    """Check a scenario document (already parsed JSON) and return it with
    events sorted by time and times converted to integer microseconds.
    With ``cfg``, channels and sensors must be the config's."""
    known = sensors = None
    if cfg is not None:
        from firmware.channels import channel_names

        known = channel_names(cfg["sensors"])
        sensors = [s["name"] for s in cfg["sensors"]]
    if not isinstance(doc, dict):
        raise _err(src, "(top level)", "a JSON object")
    for k in doc:
        if k not in ("description", "duration_s", "initial", "events", "expect"):
            raise _err(src, k, "one of description, duration_s, initial, events, expect (unknown field)")
    out = {"description": doc.get("description", ""), "duration_us": None, "initial": {}, "events": [], "expect": None}
    if "duration_s" in doc:
        d = _num(src, "duration_s", doc["duration_s"], 0)
        if d <= 0:
            raise _err(src, "duration_s", "a positive number of seconds", d)
        out["duration_us"] = int(d * 1000000)
    # nothing may be scripted past the end of the run
    end = doc.get("duration_s", _MAX)
    if "expect" in doc:
        ex = doc["expect"]
        if not isinstance(ex, dict) or list(ex) != ["trips"] or not isinstance(ex["trips"], list):
            raise _err(src, "expect", 'an object {"trips": [{"cause": ..., "at_s": ...}, ...]}', ex)
        out["expect"] = []
        for i, t in enumerate(ex["trips"]):
            f = "expect.trips[%d]" % i
            if not isinstance(t, dict) or not isinstance(t.get("cause"), str):
                raise _err(src, f + ".cause", "the cause name the trip must report", t)
            for k in t:
                if k not in ("cause", "at_s"):
                    raise _err(src, f + "." + str(k), "no such field (allowed: cause, at_s)")
            at = _num(src, f + ".at_s", t.get("at_s"), 0, end)
            out["expect"].append({"cause": t["cause"], "at_us": int(round(at * 1000000))})
    if "initial" in doc:
        out["initial"] = _channels(src, "initial", doc["initial"], known)
    events = doc.get("events", [])
    if not isinstance(events, list):
        raise _err(src, "events", "a list of event objects")
    for i, ev in enumerate(events):
        f = "events[%d]" % i
        if not isinstance(ev, dict):
            raise _err(src, f, "an object")
        if "at_s" not in ev:
            raise _err(src, f + ".at_s", "the event time in seconds (missing)")
        at = _num(src, f + ".at_s", ev["at_s"], 0, end)
        kinds = [k for k in ev if k in EVENT_KINDS]
        if len(kinds) != 1:
            raise _err(src, f, "exactly one of " + ", ".join(EVENT_KINDS), sorted(ev))
        kind = kinds[0]
        for k in ev:
            if k not in ("at_s", "for_s", "over_s", kind):
                raise _err(src, f + "." + k, "no such event field (allowed: at_s, for_s, over_s, %s)" % kind)
        e = {"at_us": int(at * 1000000), "kind": kind, "arg": ev[kind], "for_us": None, "over_us": 0}
        if "for_s" in ev:
            e["for_us"] = int(_num(src, f + ".for_s", ev["for_s"], 0) * 1000000)
        if "over_s" in ev:
            e["over_us"] = int(_num(src, f + ".over_s", ev["over_s"], 0) * 1000000)
        a = ev[kind]
        if kind in ("set", "ramp"):
            _channels(src, f + "." + kind, a, known)
            if kind == "ramp" and e["over_us"] <= 0:
                raise _err(src, f + ".over_s", "a positive ramp duration in seconds")
        elif kind == "vibration":
            if not isinstance(a, dict) or "channel" not in a:
                raise _err(src, f + ".vibration", "an object with channel, amplitude_g, freq_hz")
            ch = a["channel"]
            _channel(src, f + ".vibration.channel", ch, known)
            if not ch.split(".", 1)[1].startswith("accel_"):
                raise _err(src, f + ".vibration.channel", "an accelerometer axis (e.g. 'vib.accel_x_g')", ch)
            _num(src, f + ".vibration.amplitude_g", a.get("amplitude_g"), 0, 1000)
            _num(src, f + ".vibration.freq_hz", a.get("freq_hz"), 0, 100000)
            if e["for_us"] is None:
                raise _err(src, f + ".for_s", "how long the vibration lasts, in seconds")
        elif kind == "fault":
            if not isinstance(a, dict) or a.get("kind") not in FAULT_KINDS or not isinstance(a.get("sensor"), str):
                raise _err(src, f + ".fault", "an object with sensor (a name) and kind (one of %s)" % ", ".join(FAULT_KINDS), a)
            if sensors is not None and a["sensor"] not in sensors:
                raise _err(src, f + ".fault.sensor", "a sensor of the config: " + ", ".join(sensors), a["sensor"])
            reg = a.get("register")
            if reg is not None:
                if isinstance(reg, str):
                    try:
                        reg = int(reg, 0)
                    except ValueError:
                        raise _err(src, f + ".fault.register", 'a register number such as "0xF7"', reg)
                if not isinstance(reg, int) or not 0 <= reg <= 255:
                    raise _err(src, f + ".fault.register", "a register number 0..255", reg)
                e["arg"] = dict(a)
                e["arg"]["register"] = reg
        elif kind == "press":
            if a not in ("RESET", "ESTOP"):
                raise _err(src, f + ".press", "RESET or ESTOP", a)
            if e["for_us"] is None:
                e["for_us"] = 100000
        elif kind == "input":
            if not isinstance(a, dict) or a.get("role") not in INPUT_ROLES or a.get("level") not in (0, 1) or isinstance(a["level"], bool):
                raise _err(src, f + ".input", "an object with role (one of %s) and level (0 or 1)" % ", ".join(INPUT_ROLES), a)
        elif kind in ("stall_ms", "load_ms"):
            if _num(src, f + "." + kind, a, 0, 3600000) <= 0:
                raise _err(src, f + "." + kind, "a positive number of milliseconds", a)
            if kind == "load_ms" and e["for_us"] is None:
                raise _err(src, f + ".for_s", "how long the load lasts, in seconds")
        elif kind == "relay":
            if a not in RELAY_STATES:
                raise _err(src, f + ".relay", "one of " + ", ".join(RELAY_STATES), a)
        out["events"].append(e)
    out["events"].sort(key=lambda e: e["at_us"])
    return out


def default_path():
    """The scenario a sim board plays when none is given."""
    return __file__.rsplit("/", 1)[0] + "/scenarios/default.json"


def load_scenario(path, cfg=None):
    try:
        f = open(path)
    except OSError as e:
        raise ConfigError(path, "(file)", "a readable scenario file (%s)" % e)
    try:
        doc = json.load(f)
    except ValueError as e:
        raise ConfigError(path, "(file)", "valid JSON (%s)" % e)
    except (RuntimeError, MemoryError):
        raise ConfigError(path, "(file)", "JSON nested less deeply (too deep to parse here)")
    finally:
        f.close()
    return parse_scenario(doc, path, cfg)
