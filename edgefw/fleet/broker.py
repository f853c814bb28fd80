"""mosquitto's configuration, ACL and CRL, made from the registry.

TLS only, a client certificate required and its CN used as the user name,
and an acl_file that names every active identity with exactly its topics.
Per-identity ``user`` blocks rather than one ``pattern`` line: a pattern
applies to any name, a revoked or never-registered one included, while a
block that is no longer written takes the identity's rights with it on the
next reload (SIGHUP), without waiting for the CRL.

Revocation (``fleet revoke --reload PIDFILE``) rewrites the ACL and CRL
and sends the broker SIGHUP. Older mosquitto read the CRL only at start
(eclipse/mosquitto#35, #524); with Debian's 2.0.11 the tests show a SIGHUP
is enough for new handshakes to be checked against the new CRL
(tests/test_fleet_broker.py). A connection already open is not closed by
the reload, but from then on the broker lets it publish and receive
nothing, because its ACL block is gone.
"""

import os
import signal
import time

from edgefw.fleet import FleetError, pki
from edgefw.fleet.registry import check_name, write_atomic

HEADER = "# Written by `edgefw fleet broker-config` from %s: edit the registry, not this file.\n"


def device_topics(dev):
    """(access, topic) of a device: it publishes its batches and its
    update requests and status (``firmware.ota``), and reads its receipts
    and commands, nothing else."""
    return [
        ("write", "edgefw/%s/up" % dev),
        ("write", "edgefw/%s/ota/#" % dev),
        ("read", "edgefw/%s/receipt" % dev),
        ("read", "edgefw/%s/cmd" % dev),
    ]


def service_topics(name, entry):
    role = entry["role"]
    if role == "ingest":
        # every device's batches in, every device's receipt out; devices can
        # only write their own topic, so the wildcard admits no one else
        return [("read", "edgefw/+/up"), ("write", "edgefw/+/receipt")]
    if role == "ota":
        # the ESP32 update server (edgefw.fleet.ota): offers and chunks out
        # on each device's command topic, requests and status in
        return [("read", "edgefw/+/ota/#"), ("write", "edgefw/+/cmd")]
    if role == "gateway":
        # a gateway relays for the devices behind it, and only for those
        # and reads its own command topic (pull requests, upstream)
        out = [("read", "edgefw/%s/cmd" % name)]
        for d in sorted(entry.get("devices", [])):
            out += device_topics(d)
        return out
    raise FleetError("unknown service role %r" % role)


def _checked(fleet, name, what):
    # the registry is a file people edit: a name must not be able to add
    # lines (rules) to the ACL
    try:
        return check_name(name, what)
    except FleetError as e:
        raise FleetError("%s: %s; fix the entry" % (fleet.registry_path, e))


def acl_text(fleet):
    lines = [HEADER % fleet.registry_path, "# Anything not granted below is denied.\n"]
    for dev in sorted(fleet.doc["devices"]):
        e = fleet.doc["devices"][dev]
        _checked(fleet, dev, "device id")
        if e["status"] != "active":
            lines.append("\n# %s: revoked\n" % dev)
            continue
        lines.append("\n# device %s (board %s)\nuser %s\n" % (dev, _checked(fleet, e["board"], "board of %s" % dev), dev))
        lines += ["topic %s %s\n" % at for at in device_topics(dev)]
    for name in sorted(fleet.doc["services"]):
        e = fleet.doc["services"][name]
        _checked(fleet, name, "service name")
        for d in e.get("devices", []):
            _checked(fleet, d, "device of gateway %s" % name)
        if e["status"] != "active":
            lines.append("\n# %s: revoked\n" % name)
            continue
        lines.append("\n# service %s (role %s)\nuser %s\n" % (name, e["role"], name))
        lines += ["topic %s %s\n" % at for at in service_topics(name, _active_view(fleet, e))]
    return "".join(lines)


def _active_view(fleet, entry):
    # a gateway loses a device's topics when that device is revoked
    if entry["role"] != "gateway":
        return entry
    e = dict(entry)
    e["devices"] = [d for d in entry.get("devices", []) if fleet.doc["devices"].get(d, {}).get("status") == "active"]
    return e


def conf_text(fleet):
    s = fleet.settings["broker"]
    b = fleet.broker_dir
    for k in ("pid_file", "user", "bind"):
        v = s.get(k)
        if v is not None and (not isinstance(v, str) or not v or any(ch.isspace() for ch in v)):
            raise FleetError("%s: fleet.broker.%s %r: must be non-empty, without spaces or line breaks" % (fleet.registry_path, k, v))
    if not isinstance(s.get("port"), int) or not 0 < s["port"] < 65536:
        raise FleetError("%s: fleet.broker.port %r: a port from 1 to 65535" % (fleet.registry_path, s.get("port")))
    lines = [
        HEADER % fleet.registry_path,
        "per_listener_settings false\n",
        "allow_anonymous false\n",
        "acl_file %s\n" % os.path.join(b, "acl"),
    ]
    if s.get("pid_file"):
        lines.append("pid_file %s\n" % s["pid_file"])
    if s.get("user"):
        lines.append("user %s\n" % s["user"])
    lines += [
        # the only listener: there is no plain-text port to fall back to
        "\nlistener %d %s\n" % (s["port"], s["bind"]),
        "cafile %s\n" % fleet.ca_path,
        "certfile %s\n" % os.path.join(b, "server.pem"),
        "keyfile %s\n" % os.path.join(b, "server.key"),
        "crlfile %s\n" % os.path.join(b, "crl.pem"),
        "require_certificate true\n",
        "use_identity_as_username true\n",
    ]
    return "".join(lines)


def _all_certs(fleet):
    for kind in ("devices", "services"):
        for name, e in sorted(fleet.doc[kind].items()):
            for c in e["certs"]:
                yield name, e, c


def revoked_serials(fleet):
    """(serial, time) of every certificate the broker must refuse: those of
    revoked identities, and those a rotation replaced once their overlap
    has ended."""
    now = pki.utcnow()
    out = []
    for _name, _e, c in _all_certs(fleet):
        when = None
        if c.get("revoked_at"):
            when = pki.parse_iso(c["revoked_at"])
        elif c.get("retire_at") and pki.parse_iso(c["retire_at"]) <= now:
            when = pki.parse_iso(c["retire_at"])
        if when is not None:
            out.append((int(c["serial"], 16), when))
    return out


def check_files(fleet):
    """Every certificate the registry names is there, parses and is the one
    the registry recorded: the CA's key, certificate, and each issued one."""
    fix_ca = "restore DIR/ca.pem and DIR/private/ca.key from your backup (they cannot be re-made without re-provisioning every device)"
    ca = pki.load_cert(fleet.ca_path, fix_ca)
    ca_key = pki.load_key(fleet.ca_key_path, fix_ca)
    if ca_key.public_key().public_numbers() != ca.public_key().public_numbers():
        raise FleetError("%s does not belong to %s; %s" % (fleet.ca_key_path, fleet.ca_path, fix_ca))
    for name, _e, c in _all_certs(fleet):
        path = fleet.path(c["file"])
        fix = "restore it from your backup, or issue a new one with `edgefw fleet rotate %s`" % name
        cert = pki.load_cert(path, fix)
        if pki.fingerprint(cert) != c["sha256"]:
            raise FleetError("%s: not the certificate the registry recorded for %s (sha256 %s); %s" % (path, name, c["sha256"], fix))
    return ca_key, ca


def render(fleet):
    """Check every file the registry names and make the CRL, ACL and
    mosquitto.conf in memory: {path: (bytes or str, mode)}. Nothing is
    written, so a failed check leaves everything as it was."""
    ca_key, ca = check_files(fleet)
    for p in ("server.pem", "server.key"):
        full = os.path.join(fleet.broker_dir, p)
        if not os.path.exists(full):
            raise FleetError("%s: missing; restore it from your backup (the broker cannot start without it)" % full)
    pki.load_cert(os.path.join(fleet.broker_dir, "server.pem"), "restore it from your backup")
    # the CRL number only has to grow: seconds since the epoch do
    crl = pki.make_crl(ca_key, ca, revoked_serials(fleet), int(time.time()), fleet.settings["crl_days"])
    b = fleet.broker_dir
    return {
        os.path.join(b, "crl.pem"): (pki.cert_pem(crl), 0o644),
        os.path.join(b, "acl"): (acl_text(fleet), 0o644),
        os.path.join(b, "mosquitto.conf"): (conf_text(fleet), 0o644),
    }


def write_files(files):
    # the CRL and ACL before the config that names them
    for path, (data, mode) in files.items():
        write_atomic(path, data, mode)
    return list(files)


def write_broker_config(fleet):
    return write_files(render(fleet))


def reload(pidfile):
    """SIGHUP to the broker whose pid is in ``pidfile``: mosquitto 2.0.11
    re-reads the ACL file and the CRL."""
    try:
        pid = int(open(pidfile).read().split()[0])
    except (OSError, ValueError, IndexError) as e:
        raise FleetError("%s: cannot read a broker pid from it (%s); is mosquitto running with pid_file set?" % (pidfile, e))
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as e:
        raise FleetError("%s: cannot signal pid %d (%s)" % (pidfile, pid, e.strerror or e))
    return pid
