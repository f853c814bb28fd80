"""The rollout's journal: one JSON document replaced atomically at every
transition (write, fsync, rename), plus an append-only event log.

A crashed ``rollout`` run reads it back and continues: stages already
judged are not run again, devices already healthy are not touched, a
device caught mid-install is asked for its status first. A second
process on the same state is refused (an flock held while running).
"""

import fcntl
import json
import os
import threading
import time

from edgefw.fleet.registry import write_atomic
from hal.errors import EdgefwError

# a device's forward states; the last four are final for this rollout
DEVICE_STATES = ("pending", "installing", "watching", "healthy", "failed", "skipped")
FINAL = ("healthy", "failed", "skipped")


class StateError(EdgefwError, RuntimeError):
    pass


def default_dir(plan_path):
    return os.path.splitext(plan_path)[0] + ".rollout"


def read(state_dir):
    """The saved document, or None when no rollout ran from there."""
    try:
        with open(os.path.join(state_dir, "state.json")) as f:
            return json.load(f)
    except FileNotFoundError:
        return None


class State:
    def __init__(self, state_dir):
        self.dir = state_dir
        self.path = os.path.join(state_dir, "state.json")
        self.events = os.path.join(state_dir, "events.jsonl")
        self.mutex = threading.Lock()
        self.doc = None
        self._lock = None

    def open(self, fresh):
        """Take the lock, then load the document or start it from
        ``fresh`` (a dict). Returns True when it was resumed."""
        os.makedirs(self.dir, exist_ok=True)
        self._lock = open(os.path.join(self.dir, "lock"), "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise StateError("another rollout process is running from %s" % self.dir)
        old = read(self.dir)
        if old is not None:
            if old["bundle_sha256"] != fresh["bundle_sha256"] or old["devices"].keys() != fresh["devices"].keys():
                raise StateError(
                    "%s holds a rollout of another bundle or device set (%s, %d devices): finish it or give another --state"
                    % (self.dir, old["version"], len(old["devices"]))
                )
            self.doc = old
            return True
        self.doc = fresh
        self.save()
        return False

    def close(self):
        if self._lock:
            self._lock.close()
            self._lock = None

    def save(self):
        write_atomic(self.path, json.dumps(self.doc, indent=1, sort_keys=True).encode())

    def event(self, kind, **kw):
        rec = dict(kw, t=round(time.time(), 3), k=kind)
        with open(self.events, "a") as f:
            f.write(json.dumps(rec, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def device(self, dev_id):
        return self.doc["devices"][dev_id]

    def set_device(self, dev_id, **kw):
        """Change one device's record and journal it before returning."""
        with self.mutex:
            self.doc["devices"][dev_id].update(kw)
            self.save()
            self.event("device", id=dev_id, **kw)

    def set(self, **kw):
        with self.mutex:
            self.doc.update(kw)
            self.save()
            self.event("rollout", **kw)
