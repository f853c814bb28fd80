"""The rollout plan: one small TOML (or JSON) file, checked strictly.

    bundle = "edgefw-rpi4-2.0.0.edgefw"
    rollback_bundles = ["edgefw-rpi4-1.0.0.edgefw"]   # what "previous" can be
    inventory = "fleet.toml"
    stages = [1, "10%", "50%", {size = "100%", healthy_s = 300}]
    parallel = 8

    [targets]
    boards = ["rpi4"]
    labels = {site = "north"}

    [stage_defaults]
    deadline_s = 900      # the whole stage: install, commit, healthy time
    healthy_s = 60        # committed and unchanged at least this long
    max_failed = "10%"    # the rollout stops when this is exceeded
    min_sample = 10       # the failure rate's smallest denominator

    [offline]
    policy = "wait"       # fail | wait | skip
    wait_s = 300          # with wait: how long a device may stay away

    [install]             # passed to the device's installer
    timeout_s = 60
    settle_s = 5
    max_restarts = 2

    engine = "mqtt"       # ESP32s: offered over MQTT (edgefw.rollout.mqtt)
    [mqtt]
    broker = "10.0.0.2:8883"
    tls_ca = "creds/ota-1/ca.pem"           # an "ota" service's credentials
    tls_cert = "creds/ota-1/client.pem"     # (edgefw fleet add-service --role ota)
    tls_key = "creds/ota-1/client.key"

    [health]              # optional: also judge from what reached ingest
    ingest_db = "postgresql://reader@db/fleet"   # or a SQLite path

Relative paths are read from the plan's directory. An unknown field, a
wrong type or a missing required field is refused with the file and the
field named.
"""

import os
from dataclasses import dataclass

from edgefw.rollout import inventory as INV
from edgefw.rollout import stages as ST
from hal.errors import EdgefwError


class PlanError(EdgefwError, ValueError):
    pass


POLICIES = ("fail", "wait", "skip")
STAGE_FIELDS = {"deadline_s": (int, float), "healthy_s": (int, float), "max_failed": (str, int, float), "min_sample": (int,)}
BUILTIN_STAGE = {"deadline_s": 900, "healthy_s": 60, "max_failed": "0%", "min_sample": 1}
TOP = {
    "bundle": (str,), "rollback_bundles": (list,), "inventory": (str,), "targets": (dict,), "stages": (list,),
    "stage_defaults": (dict,), "offline": (dict,), "install": (dict,), "parallel": (int,), "engine": (str,),
    "health": (dict,),
    "mqtt": (dict,),
}
REQUIRED = ("bundle", "inventory", "stages")
INSTALL = {"timeout_s": (int, float), "settle_s": (int, float), "max_restarts": (int,)}
ENGINES = ("ssh", "ansible", "mqtt")
MQTT = {"broker": (str,), "tls_ca": (str,), "tls_cert": (str,), "tls_key": (str,), "chunk": (int,)}


@dataclass
class Stage:
    index: int
    size: object
    deadline_s: float
    healthy_s: float
    max_failed: object  # Fraction, percent
    min_sample: int


@dataclass
class Plan:
    path: str
    bundle: str
    rollback_bundles: list
    inventory: str
    boards: list
    labels: dict
    ids: list
    stages: list
    offline: str
    offline_wait_s: float
    install: dict
    parallel: int
    engine: str
    mqtt: dict = None
    # ingest's database: each device must also report the new image in a
    # boot event there, and no trip after it (edgefw.rollout.health.IngestBoots)
    ingest_db: str = None

    def devices(self):
        """The targeted devices, in inventory order."""
        return INV.select(INV.load(self.inventory), self.boards, self.labels, self.ids)


KIND_NAMES = {str: "string", int: "integer", float: "number", list: "list", dict: "table"}


def _check(path, where, value, kinds):
    if isinstance(value, bool) or not isinstance(value, kinds):
        names = [KIND_NAMES[k] for k in kinds if not (k is int and float in kinds)]
        raise PlanError("%s: %s must be a %s, not %r" % (path, where, " or ".join(names), value))
    return value


def _table(path, where, doc, known):
    for k in doc:
        if k not in known:
            raise PlanError("%s: unknown field %s%s (known: %s)" % (path, where, k, ", ".join(sorted(known))))
        _check(path, where + k, doc[k], known[k])


def _stage(path, i, raw, defaults):
    where = "stages[%d]" % i
    if isinstance(raw, dict):
        _table(path, where + ".", raw, dict(STAGE_FIELDS, size=(int, str)))
        if "size" not in raw:
            raise PlanError("%s: %s has no size" % (path, where))
        vals = dict(defaults, **raw)
    else:
        vals = dict(defaults, size=raw)
    try:
        ST.parse_size(vals["size"])
    except ST.StageError as e:
        raise PlanError("%s: %s: %s" % (path, where if not isinstance(raw, dict) else where + ".size", e))
    try:
        mf = ST.parse_percent(vals["max_failed"])
    except ST.StageError as e:
        raise PlanError("%s: %s.max_failed: %s" % (path, where, e))
    for k in ("deadline_s", "healthy_s"):
        if vals[k] < 0 or (k == "deadline_s" and vals[k] == 0):
            raise PlanError("%s: %s.%s must be positive, not %r" % (path, where, k, vals[k]))
    if vals["min_sample"] < 1:
        raise PlanError("%s: %s.min_sample must be at least 1, not %r" % (path, where, vals["min_sample"]))
    if vals["healthy_s"] >= vals["deadline_s"]:
        raise PlanError("%s: %s: healthy_s (%s) must be shorter than deadline_s (%s)" % (path, where, vals["healthy_s"], vals["deadline_s"]))
    return Stage(i, vals["size"], float(vals["deadline_s"]), float(vals["healthy_s"]), mf, vals["min_sample"])


def load(path):
    """The checked Plan in ``path``."""
    try:
        doc = INV.read_document(path)
    except INV.InventoryError as e:
        raise PlanError(str(e))
    _table(path, "", doc, TOP)
    for k in REQUIRED:
        if k not in doc:
            raise PlanError("%s: %s is required" % (path, k))
    base = os.path.dirname(os.path.abspath(path))
    at = lambda p: os.path.join(base, os.path.expanduser(p))  # noqa: E731
    targets = doc.get("targets", {})
    _table(path, "targets.", targets, {"boards": (list,), "labels": (dict,), "ids": (list,)})
    for k in ("boards", "ids"):
        if not all(isinstance(x, str) for x in targets.get(k, [])):
            raise PlanError("%s: targets.%s must be a list of strings" % (path, k))
    if not all(isinstance(v, str) for v in targets.get("labels", {}).values()):
        raise PlanError("%s: targets.labels: label values must be strings" % path)
    sd = doc.get("stage_defaults", {})
    _table(path, "stage_defaults.", sd, STAGE_FIELDS)
    defaults = dict(BUILTIN_STAGE, **sd)
    if not doc["stages"]:
        raise PlanError("%s: stages is empty" % path)
    stages = [_stage(path, i, raw, defaults) for i, raw in enumerate(doc["stages"])]
    off = doc.get("offline", {"policy": "fail"})
    _table(path, "offline.", off, {"policy": (str,), "wait_s": (int, float)})
    policy = off.get("policy")
    if policy not in POLICIES:
        raise PlanError("%s: offline.policy must be one of %s, not %r" % (path, ", ".join(POLICIES), policy))
    if (policy == "wait") != ("wait_s" in off):
        raise PlanError("%s: offline.wait_s is %s with policy %r" % (path, "required" if policy == "wait" else "only allowed", policy))
    if policy == "wait" and off["wait_s"] <= 0:
        raise PlanError("%s: offline.wait_s must be positive" % path)
    inst = doc.get("install", {})
    _table(path, "install.", inst, INSTALL)
    install = {"timeout": float(inst.get("timeout_s", 60)), "settle": float(inst.get("settle_s", 5)), "max_restarts": int(inst.get("max_restarts", 2))}
    rb = doc.get("rollback_bundles", [])
    if not all(isinstance(x, str) for x in rb):
        raise PlanError("%s: rollback_bundles must be a list of strings" % path)
    parallel = doc.get("parallel", 8)
    if parallel < 1:
        raise PlanError("%s: parallel must be at least 1" % path)
    health = doc.get("health", {})
    _table(path, "health.", health, {"ingest_db": (str,)})
    ingest_db = health.get("ingest_db")
    if ingest_db is not None:
        from edgefw.ingest.db import parse

        if not ingest_db.lower().startswith(("postgresql:", "postgres:")):
            # a SQLite file, relative to the plan like every path here
            ingest_db = at(ingest_db[len("sqlite:") :] if ingest_db.startswith("sqlite:") else ingest_db)
        try:
            parse(ingest_db)
        except ValueError as e:
            raise PlanError("%s: health.ingest_db: %s" % (path, e))
    engine = doc.get("engine", "ssh")
    if engine not in ENGINES:
        raise PlanError("%s: engine must be one of %s, not %r" % (path, ", ".join(ENGINES), engine))
    mq = doc.get("mqtt")
    if mq is not None:
        _table(path, "mqtt.", mq, MQTT)
        if "broker" not in mq or ":" not in mq["broker"]:
            raise PlanError("%s: mqtt.broker is required, as host:port" % path)
        mq = dict(mq, **{k: at(mq[k]) for k in ("tls_ca", "tls_cert", "tls_key") if k in mq})
    if engine == "mqtt" and mq is None:
        raise PlanError("%s: engine mqtt needs an [mqtt] table with the broker" % path)
    return Plan(
        mqtt=mq,
        path=os.path.abspath(path), bundle=at(doc["bundle"]), rollback_bundles=[at(p) for p in rb], inventory=at(doc["inventory"]),
        boards=list(targets.get("boards", [])), labels=dict(targets.get("labels", {})), ids=list(targets.get("ids", [])),
        stages=stages, offline=policy, offline_wait_s=float(off.get("wait_s", 0)), install=install, parallel=parallel, engine=engine,
        ingest_db=ingest_db,
    )


def layout(plan, devices):
    """[(Stage, [Device])]: the devices each stage adds, stages that add
    nobody left out."""
    out, start = [], 0
    for i, count in ST.batches(len(devices), [s.size for s in plan.stages]):
        out.append((plan.stages[i], devices[start:start + count]))
        start += count
    return out
