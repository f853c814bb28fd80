"""The gateway's config file (JSON), checked whole at load: a mistake
names its field and stops the gateway before it touches a broker.

    cfg = load("gateway.json")      # defaults filled in, or ConfigError
"""

import json
import os

from firmware.config import ID_RULE, _Checker, device_id, parse_broker
from hal.errors import ConfigError

DEFAULTS = {
    "gateway": {"id": None, "key_file": None},
    "site": {"broker": "127.0.0.1:1883", "keys": None, "fleet": None, "client_id": None},
    "upstream": {
        "broker": None,
        "batch_records": 200,
        "batch_ms": 1000,
        "window": 8,
        "receipt_timeout_ms": 5000,
        "backoff_ms": 200,
        "backoff_max_ms": 30000,
        "rate_bytes_s": 0,
        "live_first": False,
        "codec": "none",
        "level": None,
        "zstd_dict": None,
    },
    "store": {"path": "edgefw-gateway", "cap_bytes": 256 << 20, "raw_cap_bytes": 64 << 20, "segment_bytes": 1 << 20, "ttl_s": None, "event_ttl_s": None, "kept_s": 86400, "kept_cap_bytes": 64 << 20, "event_cap_bytes": None, "telemetry_cap_bytes": None},
    "metrics": {"path": None, "every_s": 10},
    "aggregate": {"window_s": 60, "channels": {}, "keep_s": None, "close_idle_s": None, "batch_ids": True, "around": {"before_s": 30, "after_s": 30, "kinds": ["trip"]}},
    "rules": [],
}
MODES = ("summary", "raw", "around")


def _fill(c, field, got, default):
    if not isinstance(default, dict) or not default:
        # a leaf, or a free-form object (aggregate.channels) checked below
        return got
    c.obj(field, got, tuple(default))
    out = {}
    for k, d in default.items():
        sub = field + "." + k if field else k
        out[k] = _fill(c, sub, got[k], d) if k in got else (dict(d) if isinstance(d, dict) else d)
    return out


def _file(c, field, v):
    if v is None:
        return None
    c.text(field, v)
    if not os.path.isfile(v):
        c.fail(field, "a file that exists, or null", v)
    return v


def _node_ids(c, path, fleet=None):
    if fleet is not None:
        from edgefw.fleet import FleetError
        from edgefw.ingest.fleet import fleet_firmware

        try:
            return set(fleet_firmware(fleet))
        except FleetError as e:
            c.fail("site.fleet", "a readable fleet registry (%s)" % e, fleet)
    if path is None:
        return None
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        c.fail("site.keys", "a readable JSON file of node id -> hex key (%s)" % e, path)
    if not isinstance(doc, dict):
        c.fail("site.keys", "a JSON object of node id -> hex key", path)
    return set(doc)


def check(doc, src="<config>", files=True):
    """The config with every default filled in; ConfigError names the
    first field that is wrong. ``files``: the files it names must exist."""
    c = _Checker(src)
    cfg = _fill(c, "", doc, DEFAULTS)
    g = cfg["gateway"]
    if g["id"] is None:
        c.fail("gateway.id", "the gateway's device id (its own records go upstream under it)")
    try:
        device_id(c, g["id"])
    except ConfigError:
        c.fail("gateway.id", ID_RULE, g["id"])
    for field, v in (("site.broker", cfg["site"]["broker"]), ("upstream.broker", cfg["upstream"]["broker"])):
        if v is None:
            c.fail(field, 'HOST:PORT, e.g. "127.0.0.1:1883"')
        try:
            parse_broker(c.text(field, v))
        except ValueError as e:
            c.fail(field, str(e), v)
    site = cfg["site"]
    if site["keys"] is not None and site["fleet"] is not None:
        c.fail("site.fleet", "give site.keys or site.fleet, not both (the fleet registry holds the nodes' seal keys)", site["fleet"])
    if files:
        _file(c, "gateway.key_file", g["key_file"])
        _file(c, "site.keys", site["keys"])
        if site["fleet"] is not None:
            c.text("site.fleet", site["fleet"])
            if not os.path.isfile(os.path.join(site["fleet"], "registry.json")):
                c.fail("site.fleet", "a fleet directory (edgefw fleet init) holding registry.json", site["fleet"])
    if (site["keys"] is None and site["fleet"] is None) != (g["key_file"] is None):
        # sealed on one side and plain on the other would hand the
        # gateway's own records to a trusted-network ingest or the reverse
        c.fail("gateway.key_file", "set together with site.keys or site.fleet (both sealed) or all null (a trusted network)", g["key_file"])
    if cfg["site"]["client_id"] is not None:
        c.text("site.client_id", cfg["site"]["client_id"])
    up = cfg["upstream"]
    c.num("upstream.batch_records", up["batch_records"], 1, 100000, integer=True)
    c.num("upstream.batch_ms", up["batch_ms"], 0, 3600000, integer=True)
    c.num("upstream.window", up["window"], 1, 256, integer=True)
    c.num("upstream.receipt_timeout_ms", up["receipt_timeout_ms"], 100, 3600000, integer=True)
    c.num("upstream.backoff_ms", up["backoff_ms"], 1, 600000, integer=True)
    c.num("upstream.backoff_max_ms", up["backoff_max_ms"], up["backoff_ms"], 3600000, integer=True)
    c.num("upstream.rate_bytes_s", up["rate_bytes_s"], 0, 1 << 30, integer=True)
    from edgefw.gateway.codec import CODECS

    if not isinstance(up["live_first"], bool):
        c.fail("upstream.live_first", "true or false", up["live_first"])
    c.choice("upstream.codec", up["codec"], CODECS)
    c.num("upstream.level", up["level"], 1, 9 if up["codec"] == "zlib" else 22, integer=True, null=True)
    if files:
        _file(c, "upstream.zstd_dict", up["zstd_dict"])
    if up["codec"] == "zstd":
        try:
            import zstandard  # noqa: F401
        except ImportError:
            c.fail("upstream.codec", "a codec this machine has (pip install zstandard for zstd)", "zstd")
    st = cfg["store"]
    c.text("store.path", st["path"])
    c.num("store.cap_bytes", st["cap_bytes"], 1 << 16, 1 << 40, integer=True)
    c.num("store.segment_bytes", st["segment_bytes"], 1 << 12, st["cap_bytes"], integer=True)
    c.num("store.raw_cap_bytes", st["raw_cap_bytes"], 1 << 16, 1 << 40, integer=True)
    c.num("store.ttl_s", st["ttl_s"], 1, 10 * 365 * 86400, integer=True, null=True)
    c.num("store.event_ttl_s", st["event_ttl_s"], 1, 10 * 365 * 86400, integer=True, null=True)
    for f in ("event_cap_bytes", "telemetry_cap_bytes"):
        # two segments at least: the one written is never dropped
        c.num("store." + f, st[f], 2 * st["segment_bytes"], st["cap_bytes"], integer=True, null=True)
    c.num("store.kept_s", st["kept_s"], 1, 10 * 365 * 86400, integer=True, null=True)
    if st["kept_cap_bytes"] != 0:
        c.num("store.kept_cap_bytes", st["kept_cap_bytes"], 1 << 16, 1 << 40, integer=True)
    a = cfg["aggregate"]
    c.num("aggregate.window_s", a["window_s"], 0, 86400)
    if not isinstance(a["channels"], dict):
        c.fail("aggregate.channels", "an object: channel -> one of " + ", ".join(MODES), a["channels"])
    for ch, mode in a["channels"].items():
        c.choice("aggregate.channels." + ch, mode, MODES)
    c.num("aggregate.keep_s", a["keep_s"], 0, 7 * 86400, null=True)
    ar = a["around"]
    c.num("aggregate.around.before_s", ar["before_s"], 0, 86400)
    c.num("aggregate.around.after_s", ar["after_s"], 0, 86400)
    if not isinstance(ar["kinds"], list) or not ar["kinds"] or not all(isinstance(k, str) and k for k in ar["kinds"]):
        c.fail("aggregate.around.kinds", "a list of event kinds, e.g. [\"trip\"]", ar["kinds"])
    if not isinstance(a["batch_ids"], bool):
        c.fail("aggregate.batch_ids", "true or false", a["batch_ids"])
    c.num("aggregate.close_idle_s", a["close_idle_s"], 0.1, 86400, null=True)
    from edgefw.gateway import rules

    rules.check(c, cfg["rules"], _node_ids(c, cfg["site"]["keys"], cfg["site"]["fleet"]) if files else None)
    m = cfg["metrics"]
    if m["path"] is not None:
        c.text("metrics.path", m["path"])
    c.num("metrics.every_s", m["every_s"], 0.1, 3600)
    return cfg


def load(path):
    try:
        with open(path) as f:
            doc = json.load(f)
    except OSError as e:
        raise ConfigError(path, "(file)", "a readable JSON file (%s)" % (e,))
    except ValueError as e:
        raise ConfigError(path, "(file)", "valid JSON (%s)" % (e,))
    except RecursionError:
        raise ConfigError(path, "(file)", "JSON nested less deeply")
    return check(doc, path)
