"""The devices a plan can target, read from a small inventory file.

This is the only module that knows where devices come from: when the
fleet registry (edgefw/fleet) lands, ``load`` is the one function to
point at it. An inventory (TOML or JSON)::

    [ssh]                      # defaults for every device
    user = "root"
    identity = "~/.ssh/fleet"
    options = ["StrictHostKeyChecking=accept-new"]
    python = "python3"
    root = "/"

    [[device]]
    id = "pi-north-01"
    board = "rpi4"
    labels = {site = "north", ring = "canary"}
    address = "10.0.0.7"
    port = 22                  # user, identity, options, python, root too
"""

import json
import os
from dataclasses import dataclass, field

from hal.errors import EdgefwError

SSH_FIELDS = {"user": str, "identity": str, "options": list, "python": str, "root": str, "port": int}
DEVICE_FIELDS = dict(SSH_FIELDS, id=str, board=str, labels=dict, address=str)


class InventoryError(EdgefwError, ValueError):
    pass


@dataclass(frozen=True)
class Device:
    id: str
    board: str
    address: str
    port: int = 22
    user: str = "root"
    identity: str = None
    options: tuple = ()
    python: str = "python3"
    root: str = "/"
    labels: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def dest(self):
        return "%s@%s" % (self.user, self.address)


def read_document(path):
    """A TOML or JSON file as a dict (by its extension)."""
    try:
        if path.endswith(".json"):
            with open(path) as f:
                return json.load(f)
        import tomllib

        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as e:
        raise InventoryError("%s: cannot read: %s" % (path, e.strerror or e))
    except ValueError as e:  # tomllib.TOMLDecodeError and JSONDecodeError are ValueErrors
        raise InventoryError("%s: not valid %s: %s" % (path, "JSON" if path.endswith(".json") else "TOML", e))


def _typed(path, where, key, value, kind):
    if kind is int and (isinstance(value, bool) or not isinstance(value, int)):
        raise InventoryError("%s: %s.%s must be an integer, not %r" % (path, where, key, value))
    if kind is not int and not isinstance(value, kind):
        raise InventoryError("%s: %s.%s must be a %s, not %r" % (path, where, key, kind.__name__, value))
    if kind is list and not all(isinstance(o, str) for o in value):
        raise InventoryError("%s: %s.%s must be a list of strings" % (path, where, key))
    if kind is dict and not all(isinstance(v, str) for v in value.values()):
        raise InventoryError("%s: %s.%s: label values must be strings" % (path, where, key))


def load(path):
    """[Device] from the inventory file ``path``, checked strictly."""
    doc = read_document(path)
    extra = set(doc) - {"ssh", "device"}
    if extra:
        raise InventoryError("%s: unknown field %s (known: ssh, device)" % (path, ", ".join(sorted(extra))))
    defaults = doc.get("ssh", {})
    if not isinstance(defaults, dict):
        raise InventoryError("%s: ssh must be a table" % path)
    for k, v in defaults.items():
        if k not in SSH_FIELDS:
            raise InventoryError("%s: unknown field ssh.%s (known: %s)" % (path, k, ", ".join(sorted(SSH_FIELDS))))
        _typed(path, "ssh", k, v, SSH_FIELDS[k])
    rows = doc.get("device", [])
    if not isinstance(rows, list):
        raise InventoryError("%s: device must be a list of tables ([[device]])" % path)
    base = os.path.dirname(os.path.abspath(path))
    out, seen = [], set()
    for i, row in enumerate(rows):
        where = "device[%d]" % i
        if not isinstance(row, dict):
            raise InventoryError("%s: %s must be a table" % (path, where))
        for k, v in row.items():
            if k not in DEVICE_FIELDS:
                raise InventoryError("%s: unknown field %s.%s (known: %s)" % (path, where, k, ", ".join(sorted(DEVICE_FIELDS))))
            _typed(path, where, k, v, DEVICE_FIELDS[k])
        for k in ("id", "board", "address"):
            if k not in row:
                raise InventoryError("%s: %s has no %s" % (path, where, k))
        if row["id"] in seen:
            raise InventoryError("%s: %s: device id %r given twice" % (path, where, row["id"]))
        seen.add(row["id"])
        kw = dict(defaults)
        kw.update(row)
        if kw.get("identity"):
            kw["identity"] = os.path.join(base, os.path.expanduser(kw["identity"]))
        kw["options"] = tuple(kw.get("options", ()))
        out.append(Device(**kw))
    return out


def select(devices, boards=(), labels=None, ids=()):
    """The devices matching every given criterion: board in ``boards``,
    every label equal, id in ``ids``; inventory order kept (stages are
    taken from the front, so the order is the canary order)."""
    labels = labels or {}
    return [
        d for d in devices
        if (not boards or d.board in boards) and (not ids or d.id in ids) and all(d.labels.get(k) == v for k, v in labels.items())
    ]
