"""Scenarios: sensor values, faults and button presses scripted over
virtual time. The format is documented in docs/scenarios.md.

    sc = load_scenario("sim/scenarios/default.json")
    hw = SimHardware(board, sensors, scenario=sc)   # plays it as time moves

Every field is checked at load; a bad one raises ``ConfigError`` naming the
file, the event and the field.
"""

import json

from hal.errors import ConfigError

EVENT_KINDS = ("set", "ramp", "vibration", "fault", "press", "input", "stall_ms", "load_ms", "relay")
FAULT_KINDS = ("eio", "nodev", "stuck")
RELAY_STATES = ("ok", "welded", "open")


def _num(src, field, v):
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(src, field, "a number", v)
    return v


def _channels(src, field, d):
    if not isinstance(d, dict) or not d:
        raise ConfigError(src, field, "an object of 'sensor.quantity': number")
    for k in d:
        if not isinstance(k, str) or "." not in k:
            raise ConfigError(src, field, "channel names of the form 'sensor.quantity' (e.g. 'env.temperature_c')", k)
        _num(src, field + "." + k, d[k])
    return d


def parse_scenario(doc, src="<scenario>"):
    """Check a scenario document (already parsed JSON) and return it with
    events sorted by time and times converted to integer microseconds."""
    if not isinstance(doc, dict):
        raise ConfigError(src, "(top level)", "a JSON object")
    for k in doc:
        if k not in ("description", "duration_s", "initial", "events", "expect"):
            raise ConfigError(src, k, "one of description, duration_s, initial, events, expect (unknown field)")
    out = {"description": doc.get("description", ""), "duration_us": None, "initial": {}, "events": [], "expect": None}
    if "expect" in doc:
        ex = doc["expect"]
        if not isinstance(ex, dict) or list(ex) != ["trips"] or not isinstance(ex["trips"], list):
            raise ConfigError(src, "expect", 'an object {"trips": [{"cause": ..., "at_s": ...}, ...]}', ex)
        out["expect"] = []
        for i, t in enumerate(ex["trips"]):
            f = "expect.trips[%d]" % i
            if not isinstance(t, dict) or not isinstance(t.get("cause"), str):
                raise ConfigError(src, f + ".cause", "the cause name the trip must report", t)
            out["expect"].append({"cause": t["cause"], "at_us": int(round(_num(src, f + ".at_s", t.get("at_s")) * 1000000))})
    if "duration_s" in doc:
        d = _num(src, "duration_s", doc["duration_s"])
        if d <= 0:
            raise ConfigError(src, "duration_s", "a positive number of seconds", d)
        out["duration_us"] = int(d * 1000000)
    if "initial" in doc:
        out["initial"] = _channels(src, "initial", doc["initial"])
    events = doc.get("events", [])
    if not isinstance(events, list):
        raise ConfigError(src, "events", "a list of event objects")
    for i, ev in enumerate(events):
        f = "events[%d]" % i
        if not isinstance(ev, dict):
            raise ConfigError(src, f, "an object")
        if "at_s" not in ev:
            raise ConfigError(src, f + ".at_s", "the event time in seconds (missing)")
        at = _num(src, f + ".at_s", ev["at_s"])
        if at < 0:
            raise ConfigError(src, f + ".at_s", "a time >= 0", at)
        kinds = [k for k in ev if k in EVENT_KINDS]
        if len(kinds) != 1:
            raise ConfigError(src, f, "exactly one of " + ", ".join(EVENT_KINDS), sorted(ev))
        kind = kinds[0]
        for k in ev:
            if k not in ("at_s", "for_s", "over_s", kind):
                raise ConfigError(src, f + "." + k, "no such event field (allowed: at_s, for_s, over_s, %s)" % kind)
        e = {"at_us": int(at * 1000000), "kind": kind, "arg": ev[kind], "for_us": None, "over_us": 0}
        if "for_s" in ev:
            e["for_us"] = int(_num(src, f + ".for_s", ev["for_s"]) * 1000000)
        if "over_s" in ev:
            e["over_us"] = int(_num(src, f + ".over_s", ev["over_s"]) * 1000000)
        a = ev[kind]
        if kind in ("set", "ramp"):
            _channels(src, f + "." + kind, a)
            if kind == "ramp" and e["over_us"] <= 0:
                raise ConfigError(src, f + ".over_s", "a positive ramp duration in seconds")
        elif kind == "vibration":
            if not isinstance(a, dict) or "channel" not in a:
                raise ConfigError(src, f + ".vibration", "an object with channel, amplitude_g, freq_hz")
            _num(src, f + ".vibration.amplitude_g", a.get("amplitude_g"))
            _num(src, f + ".vibration.freq_hz", a.get("freq_hz"))
            if e["for_us"] is None:
                raise ConfigError(src, f + ".for_s", "how long the vibration lasts, in seconds")
        elif kind == "fault":
            if not isinstance(a, dict) or a.get("kind") not in FAULT_KINDS or not isinstance(a.get("sensor"), str):
                raise ConfigError(src, f + ".fault", "an object with sensor (a name) and kind (one of %s)" % ", ".join(FAULT_KINDS), a)
            reg = a.get("register")
            if reg is not None:
                if isinstance(reg, str):
                    try:
                        reg = int(reg, 0)
                    except ValueError:
                        raise ConfigError(src, f + ".fault.register", 'a register number such as "0xF7"', reg)
                if not isinstance(reg, int) or not 0 <= reg <= 255:
                    raise ConfigError(src, f + ".fault.register", "a register number 0..255", reg)
                e["arg"] = dict(a)
                e["arg"]["register"] = reg
        elif kind == "press":
            if a not in ("RESET", "ESTOP"):
                raise ConfigError(src, f + ".press", "RESET or ESTOP", a)
            if e["for_us"] is None:
                e["for_us"] = 100000
        elif kind == "input":
            if not isinstance(a, dict) or not isinstance(a.get("role"), str) or a.get("level") not in (0, 1):
                raise ConfigError(src, f + ".input", "an object with role (a pin role) and level (0 or 1)", a)
        elif kind in ("stall_ms", "load_ms"):
            if _num(src, f + "." + kind, a) <= 0:
                raise ConfigError(src, f + "." + kind, "a positive number of milliseconds", a)
            if kind == "load_ms" and e["for_us"] is None:
                raise ConfigError(src, f + ".for_s", "how long the load lasts, in seconds")
        elif kind == "relay":
            if a not in RELAY_STATES:
                raise ConfigError(src, f + ".relay", "one of " + ", ".join(RELAY_STATES), a)
        out["events"].append(e)
    out["events"].sort(key=lambda e: e["at_us"])
    return out


def load_scenario(path):
    try:
        f = open(path)
    except OSError as e:
        raise ConfigError(path, "(file)", "a readable scenario file (%s)" % e)
    try:
        doc = json.load(f)
    except ValueError as e:
        raise ConfigError(path, "(file)", "valid JSON (%s)" % e)
    finally:
        f.close()
    return parse_scenario(doc, path)
