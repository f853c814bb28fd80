"""The fleet directory and its registry file.

    DIR/registry.json        devices and services: public, meant to be read
                             and diffed (sorted keys, one value a line)
    DIR/ca.pem               the fleet CA's certificate
    DIR/certs/<serial>.pem   every certificate issued (public)
    DIR/private/ca.key       the CA's key: stays on this workstation
    DIR/private/seal_keys.json  every device's seal keys (hex)
    DIR/broker/              what ``broker-config`` writes for mosquitto

Every file is written whole to a temporary name, synced and renamed over
the old one, so a crash leaves the old file or the new one, never a part.
"""

import json
import os
import re

from edgefw.fleet import FleetError

FORMAT = "edgefw-fleet 1"

# An identity becomes a topic level and an ACL user name: nothing that
# MQTT or the acl_file reads specially (/ + # %, spaces, $ first).
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_name(name, what):
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        raise FleetError(
            "%s %r: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (it becomes an MQTT topic level and the broker user name)"
            % (what, name)
        )
    return name


def write_atomic(path, data, mode=0o644):
    path = str(path)
    d = os.path.dirname(path) or "."
    tmp = os.path.join(d, ".%s.tmp%d" % (os.path.basename(path), os.getpid()))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        # the mode given to open() is masked by the umask: set it exactly
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def dumps(doc):
    return json.dumps(doc, indent=2, sort_keys=True) + "\n"


class Fleet:
    def __init__(self, root):
        self.root = os.path.abspath(str(root))
        self.registry_path = os.path.join(self.root, "registry.json")
        self.ca_path = os.path.join(self.root, "ca.pem")
        self.ca_key_path = os.path.join(self.root, "private", "ca.key")
        self.seal_path = os.path.join(self.root, "private", "seal_keys.json")
        self.broker_dir = os.path.join(self.root, "broker")
        self.doc = None
        self.seal = None

    def path(self, rel):
        return os.path.join(self.root, rel)

    def load(self):
        if not os.path.exists(self.registry_path):
            raise FleetError("%s: no fleet registry here; create one with `edgefw fleet init %s`" % (self.registry_path, self.root))
        self.doc = _load_json(self.registry_path, "restore it from your backup or version control")
        if not isinstance(self.doc, dict) or self.doc.get("format") != FORMAT:
            raise FleetError('%s: not an edgefw fleet registry ("format" is not %r)' % (self.registry_path, FORMAT))
        for k in ("fleet", "devices", "services"):
            if not isinstance(self.doc.get(k), dict):
                raise FleetError("%s: %r must be an object" % (self.registry_path, k))
        seal = _load_json(self.seal_path, "restore it from your backup; without it ingest cannot open any batch")
        if not isinstance(seal, dict):
            raise FleetError("%s: expected an object of device id -> list of keys" % self.seal_path)
        self.seal = seal
        return self

    def save(self):
        # seal keys first: a registry must never name a key that is not kept
        write_atomic(self.seal_path, dumps(self.seal), 0o600)
        write_atomic(self.registry_path, dumps(self.doc), 0o644)

    @property
    def settings(self):
        return self.doc["fleet"]

    def identity(self, name):
        """(kind, entry) of a device or service, or a FleetError."""
        if name in self.doc["devices"]:
            return "device", self.doc["devices"][name]
        if name in self.doc["services"]:
            return "service", self.doc["services"][name]
        raise FleetError("%s: no device or service %r in the registry (`edgefw fleet list` shows them)" % (self.registry_path, name))


def _load_json(path, fix):
    try:
        with open(path) as f:
            return json.load(f)
    except OSError as e:
        raise FleetError("%s: cannot read it (%s); %s" % (path, e.strerror or e, fix))
    except ValueError as e:
        raise FleetError("%s: not valid JSON (%s); %s" % (path, e, fix))
