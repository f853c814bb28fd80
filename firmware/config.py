"""Configuration: a JSON file, checked field by field.

    cfg = load_config("edgefw.json")    # or load_config(None) for defaults
    cfg["period_ms"]

A user's file is laid over ``firmware/defaults/config.json``: objects merge
key by key, while ``sensors`` and ``interlock.channels`` replace the
default wholesale. Every field is documented in docs/config.md. A bad field
raises ``ConfigError`` naming the file, the field and what was expected;
unknown fields are refused too, so a typo never silently disables a rule.

Limits are given in real units (degC, %RH, hPa, g) and held internally as
integers in thousandths (``firmware.channels.scale``), so the interlock does only integer
arithmetic. Every number is checked against a range (given in the error),
so a value means the same on CPython and on MicroPython: no NaN, no
infinity, no limit beyond +-LIMIT, whose thousandths fit the interlock's
32-bit tables and stay small integers on a 32-bit MicroPython port.
"""

import json

from firmware.channels import SENSOR_TYPES, channel_names, driver, scale

# the journal's own lists of what it takes: one fact, one place
from firmware.store.journal import DURABILITY, FULL_POLICIES
from hal.errors import ConfigError

STARTUP = ("manual", "auto")
TOP_FIELDS = ("device_id", "period_ms", "startup", "sensors", "interlock", "record", "inference", "uplink")
UPLINK_FIELDS = ("enabled", "broker", "username", "password", "tls_ca", "tls_cert", "tls_key", "key_file", "batch_records", "batch_ms", "rate_bytes_s", "live_first", "receipts", "receipt_timeout_ms")
__all__ = ("load_config", "check", "check_uplink", "parse_broker", "channel_names", "SENSOR_TYPES")
# every sensor's; a driver adds its own (its OPTIONS)
SENSOR_FIELDS = ("name", "type", "bus", "address", "stale_ms")
INTERLOCK_FIELDS = ("channels", "vote", "max_consecutive_overruns", "stall_ms", "estop", "readback", "watchdog_ms", "site_trip")
VOTE_FIELDS = ("name", "channels", "need")
CHANNEL_FIELDS = ("high", "low", "hysteresis", "on_delay", "rate_per_s", "plausible")
# (field, default) of a channel rule; null turns a rule off
CHANNEL_DEFAULTS = (("high", None), ("low", None), ("hysteresis", 0), ("on_delay", 1), ("rate_per_s", None), ("plausible", None))
READBACK_FIELDS = ("enabled", "grace_ms")
RECORD_FIELDS = ("window_ms", "journal", "durability", "segment_bytes", "cap_bytes", "full_policy", "ttl_s", "group_records", "group_ms")
TTL_FIELDS = ("events", "telemetry")
INFERENCE_FIELDS = ("enabled", "model", "backend", "channel", "window", "hop", "threshold", "k")
# real-unit bound of every limit: 1e9 thousandths < 2**30
LIMIT = 1000000
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"
ID_MAX = 64
ID_RULE = "1 to 64 of A-Z a-z 0-9 . _ - starting with a letter or digit (it is an MQTT topic level)"


def default_path():
    return __file__.rsplit("/", 1)[0] + "/defaults/config.json"


def _read_json(path):
    try:
        f = open(path)
    except OSError as e:
        raise ConfigError(path, "(file)", "a readable JSON file (%s)" % (e,))
    # parsed from the stream: no copy of the whole text on a small heap
    try:
        return json.load(f)
    except ValueError as e:
        raise ConfigError(path, "(file)", "valid JSON (%s)" % (e,))
    except (RuntimeError, MemoryError):
        # CPython's RecursionError is a RuntimeError; MicroPython's parser
        # runs out of heap instead
        raise ConfigError(path, "(file)", "JSON nested less deeply (too deep to parse here)")
    finally:
        f.close()


def _merge(base, over, path=""):
    out = dict(base)
    for k, v in over.items():
        p = path + k
        if isinstance(v, dict) and isinstance(base.get(k), dict) and p not in ("interlock.channels",):
            out[k] = _merge(base[k], v, p + ".")
        else:
            out[k] = v
    return out


class _Checker:
    def __init__(self, src):
        self.src = src

    def fail(self, field, expected, got=None):
        if got is not None:
            # the value as the user wrote it, cut short: a deeply nested
            # one would not even print
            try:
                r = repr(got)
            except (RuntimeError, MemoryError):
                r = "a deeply nested " + type(got).__name__
            expected += ", got " + (r if len(r) <= 80 else r[:77] + "...")
        raise ConfigError(self.src, field, expected)

    def obj(self, field, v, allowed):
        if not isinstance(v, dict):
            self.fail(field, "an object", v)
        for k in v:
            if k not in allowed:
                self.fail((field + "." if field else "") + str(k), "no such field (allowed here: %s)" % ", ".join(allowed))
        return v

    def num(self, field, v, lo, hi, integer=False, null=False):
        if v is None and null:
            return None
        what = "an integer" if integer else "a number"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            self.fail(field, what + (" or null" if null else ""), v)
        # NaN fails both comparisons, so it is refused by either bound
        if not (lo <= v <= hi):
            self.fail(field, "%s from %s to %s" % (what, lo, hi), v)
        return v

    def limit(self, field, v, lo=-LIMIT, null=True):
        return self.num(field, v, lo, LIMIT, null=null)

    def choice(self, field, v, options):
        if v not in options:
            self.fail(field, "one of " + ", ".join(str(o) for o in options), v)
        return v

    def text(self, field, v):
        if not isinstance(v, str) or not v:
            self.fail(field, "a non-empty string", v)
        return v


def check(cfg, src="<config>"):
    """Check a merged configuration; returns it unchanged or raises. Each
    section has a checker of its own below, handed what it needs."""
    c = _Checker(src)
    c.obj("", cfg, TOP_FIELDS)
    device_id(c, cfg["device_id"])
    c.num("period_ms", cfg["period_ms"], 1, 60000, integer=True)
    c.choice("startup", cfg["startup"], STARTUP)
    channels = _check_sensors(c, cfg["sensors"], cfg["period_ms"])
    _check_interlock(c, cfg["interlock"], channels, cfg["period_ms"])
    _check_record(c, cfg["record"], cfg["period_ms"])
    # every field, even with the uplink off; the files it names are
    # looked for where the uplink starts (firmware.uplink.check_config)
    check_uplink(cfg, src)
    _check_inference(c, cfg["inference"], channels)
    return cfg


def _check_sensors(c, sensors, period_ms):
    """The ``sensors`` list; returns the channel names it makes."""
    if not isinstance(sensors, list) or not sensors:
        c.fail("sensors", "a non-empty list of sensor objects", sensors)
    names = []
    channels = []
    for i, s in enumerate(sensors):
        f = "sensors[%d]" % i
        if not isinstance(s, dict):
            c.fail(f, "an object", s)
        for req in ("name", "type", "bus"):
            if req not in s:
                c.fail(f + "." + req, "a value (required)")
        c.choice(f + ".type", s["type"], sorted(SENSOR_TYPES))
        mod = driver(s["type"])
        # the driver declares its own fields (name, default, allowed values)
        c.obj(f, s, SENSOR_FIELDS + tuple(o[0] for o in mod.OPTIONS))
        name = c.text(f + ".name", s["name"])
        if "." in name or name in names:
            c.fail(f + ".name", "a unique name without dots", name)
        names.append(name)
        c.text(f + ".bus", s["bus"])
        if mod.BUS == "i2c":
            if "address" not in s:
                c.fail(f + ".address", "a value (required)")
            c.num(f + ".address", s["address"], 0x08, 0x77, integer=True)
        elif "address" in s:
            c.fail(f + ".address", "absent: a %s sensor is on a UART, which has no addresses" % s["type"])
        s.setdefault("stale_ms", 100)
        for opt, dflt, allowed in mod.OPTIONS:
            s.setdefault(opt, dflt)
            c.choice(f + "." + opt, s[opt], allowed)
        sample_ms = mod.sample_ms(s)
        # a sensor is fresh at most once a cycle and once a sample
        floor = max(period_ms, sample_ms)
        c.num(f + ".stale_ms", s["stale_ms"], floor, 600000, integer=True)
        for q in SENSOR_TYPES[s["type"]]:
            channels.append(name + "." + q)
    return channels


def _check_interlock(c, il, channels, period_ms):
    il = c.obj("interlock", il, INTERLOCK_FIELDS)
    chans = c.obj("interlock.channels", il["channels"], channels)
    for ch, rule in chans.items():
        f = "interlock.channels." + ch
        c.obj(f, rule, CHANNEL_FIELDS)
        for k, dflt in CHANNEL_DEFAULTS:
            rule.setdefault(k, dflt)
        hi = c.limit(f + ".high", rule.get("high"))
        lo = c.limit(f + ".low", rule.get("low"))
        # compared as the interlock holds them, in thousandths
        if hi is not None and lo is not None and scale(lo) >= scale(hi):
            c.fail(f + ".low", "a value below high (%s)" % hi, lo)
        h = c.limit(f + ".hysteresis", rule["hysteresis"], 0, null=False)
        if hi is not None and lo is not None and scale(h) > scale(hi) - scale(lo):
            c.fail(f + ".hysteresis", "at most high - low (%s - %s), or a cleared cause would sit past the other limit" % (hi, lo), h)
        c.num(f + ".on_delay", rule["on_delay"], 1, 1000, integer=True)
        c.limit(f + ".rate_per_s", rule.get("rate_per_s"), 0)
        p = rule.get("plausible")
        if p is not None:
            if not isinstance(p, list) or len(p) != 2:
                c.fail(f + ".plausible", "a list [low, high] or null", p)
            c.limit(f + ".plausible[0]", p[0], null=False)
            c.limit(f + ".plausible[1]", p[1], null=False)
            if scale(p[0]) >= scale(p[1]):
                c.fail(f + ".plausible", "[low, high] with low < high", p)
    _check_votes(c, il, channels, chans)
    c.num("interlock.max_consecutive_overruns", il["max_consecutive_overruns"], 0, 1000, integer=True)
    c.num("interlock.stall_ms", il["stall_ms"], 0, 600000, integer=True)
    if il["stall_ms"] and il["stall_ms"] <= period_ms:
        c.fail("interlock.stall_ms", "0 (off) or longer than period_ms (%d)" % period_ms, il["stall_ms"])
    if not isinstance(il["estop"], bool):
        c.fail("interlock.estop", "true or false", il["estop"])
    if not isinstance(il["site_trip"], bool):
        c.fail("interlock.site_trip", "true or false (whether the site gateway's trip commands trip this node)", il["site_trip"])
    rb = c.obj("interlock.readback", il["readback"], READBACK_FIELDS)
    if not isinstance(rb["enabled"], bool):
        c.fail("interlock.readback.enabled", "true or false", rb["enabled"])
    c.num("interlock.readback.grace_ms", rb["grace_ms"], 0, 60000, integer=True)
    c.num("interlock.watchdog_ms", il["watchdog_ms"], 0, 600000, integer=True)
    if il["watchdog_ms"] and il["watchdog_ms"] <= period_ms:
        c.fail("interlock.watchdog_ms", "0 (off) or longer than period_ms (%d)" % period_ms, il["watchdog_ms"])


def _check_votes(c, il, channels, chans):
    il.setdefault("vote", [])
    if not isinstance(il["vote"], list):
        c.fail("interlock.vote", "a list of voting groups", il["vote"])
    vnames = []
    for k, v in enumerate(il["vote"]):
        f = "interlock.vote[%d]" % k
        c.obj(f, v, VOTE_FIELDS)
        v.setdefault("need", 2)
        v.setdefault("name", "group%d" % k)
        c.text(f + ".name", v["name"])
        if v["name"] in vnames:
            c.fail(f + ".name", "a unique group name", v["name"])
        vnames.append(v["name"])
        chs = v.get("channels")
        if not isinstance(chs, list) or len(chs) < 2 or len(set(chs)) != len(chs):
            c.fail(f + ".channels", "a list of two or more distinct channel names", chs)
        for ch in chs:
            if ch not in channels:
                c.fail(f + ".channels", "channel names from: " + ", ".join(channels), ch)
            if ch not in chans:
                c.fail(f + ".channels", "channels that have a rule in interlock.channels", ch)
        c.num(f + ".need", v["need"], 1, len(chs), integer=True)


def _check_record(c, rec, period_ms):
    rec = c.obj("record", rec, RECORD_FIELDS)
    c.num("record.window_ms", rec["window_ms"], period_ms, 3600000, integer=True)
    c.text("record.journal", rec["journal"])
    c.choice("record.durability", rec["durability"], DURABILITY)
    c.num("record.segment_bytes", rec["segment_bytes"], 1024, 1 << 30, integer=True)
    c.num("record.cap_bytes", rec["cap_bytes"], rec["segment_bytes"], 1 << 40, integer=True)
    c.choice("record.full_policy", rec["full_policy"], FULL_POLICIES)
    ttl = c.obj("record.ttl_s", rec["ttl_s"], TTL_FIELDS)
    for k in TTL_FIELDS:
        ttl.setdefault(k, None)
        c.num("record.ttl_s." + k, ttl[k], 1, 1 << 30, integer=True, null=True)
    c.num("record.group_records", rec["group_records"], 1, 1 << 20, integer=True)
    c.num("record.group_ms", rec["group_ms"], 1, 3600000, integer=True)


def _check_inference(c, inf, channels):
    inf = c.obj("inference", inf, INFERENCE_FIELDS)
    if not isinstance(inf["enabled"], bool):
        c.fail("inference.enabled", "true or false", inf["enabled"])
    c.text("inference.model", inf["model"])
    # the backends' one table (firmware.nn.backend), read only here
    from firmware.nn.backend import BACKENDS

    names = ("auto",) + tuple(sorted(BACKENDS))
    if inf["backend"] not in names:
        c.fail("inference.backend", "one of " + ", ".join(names), inf["backend"])
    c.text("inference.channel", inf["channel"])
    if inf["enabled"] and inf["channel"] not in channels:
        c.fail("inference.channel", "a channel name from: " + ", ".join(channels), inf["channel"])
    c.num("inference.window", inf["window"], 8, 1024, integer=True)
    c.num("inference.hop", inf["hop"], 1, inf["window"], integer=True)
    c.limit("inference.threshold", inf["threshold"], null=False)
    c.num("inference.k", inf["k"], 1, 1000, integer=True)


def device_id(c, v):
    """A device id is one MQTT topic level: no '/', '+' or '#'."""
    if not isinstance(v, str) or not 1 <= len(v) <= ID_MAX or v[0] in "._-" or any(ch not in ID_CHARS for ch in v):
        c.fail("device_id", ID_RULE, v)
    return v


def parse_broker(text):
    """``HOST:PORT`` -> (host, port); ValueError saying what is wrong."""
    host, _, port = text.rpartition(":") if isinstance(text, str) else ("", "", "")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError('HOST:PORT with a port from 1 to 65535, e.g. "broker.example.net:8883"')
    return host, int(port)


def check_uplink(cfg, src="<config>", files=False):
    """Check the ``uplink`` section; returns (host, port). With ``files``,
    the files it names must exist (checked where the uplink starts)."""
    import os

    c = _Checker(src)
    up = c.obj("uplink", cfg["uplink"], UPLINK_FIELDS)
    if not isinstance(up["enabled"], bool):
        c.fail("uplink.enabled", "true or false", up["enabled"])
    b = c.text("uplink.broker", up["broker"])
    try:
        hp = parse_broker(b)
    except ValueError as e:
        c.fail("uplink.broker", str(e), b)
    for k in ("username", "password", "tls_ca", "tls_cert", "tls_key", "key_file"):
        if up[k] is not None:
            c.text("uplink." + k, up[k])
            if files and k in ("tls_ca", "tls_cert", "tls_key", "key_file"):
                try:
                    os.stat(up[k])
                except OSError:
                    c.fail("uplink." + k, "a file that exists, or null", up[k])
    # a certificate is useless without its key, and sent only over TLS
    if (up["tls_cert"] is None) != (up["tls_key"] is None):
        k = "uplink.tls_key" if up["tls_key"] is None else "uplink.tls_cert"
        c.fail(k, "set together with uplink.tls_cert and uplink.tls_key (both, or both null)", None)
    if up["tls_cert"] is not None and up["tls_ca"] is None:
        c.fail("uplink.tls_ca", "a CA file: a client certificate is sent only over TLS (uplink.tls_cert is set)", None)
    c.num("uplink.batch_records", up["batch_records"], 1, 100000, integer=True)
    c.num("uplink.batch_ms", up["batch_ms"], 0, 3600000, integer=True)
    c.num("uplink.rate_bytes_s", up["rate_bytes_s"], 0, 1 << 30, integer=True)
    for k in ("live_first", "receipts"):
        if not isinstance(up[k], bool):
            c.fail("uplink." + k, "true or false", up[k])
    c.num("uplink.receipt_timeout_ms", up["receipt_timeout_ms"], 100, 3600000, integer=True)
    return hp


def load_config(path=None, overrides=None):
    """Defaults, then the file at ``path``, then ``overrides`` (a dict)."""
    cfg = _read_json(default_path())
    src = "defaults"
    if path:
        user = _read_json(path)
        if not isinstance(user, dict):
            _Checker(path).fail("(top level)", "a JSON object", user)
        cfg = _merge(cfg, user)
        src = path
    if overrides:
        cfg = _merge(cfg, overrides)
    return check(cfg, src)
