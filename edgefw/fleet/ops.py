"""Fleet operations: what each ``edgefw fleet`` command does, callable from
other tools (tools/flash.py, the Linux install) as functions.

By default a key pair is made here on the workstation and handed over once,
in the credential directory; the fleet keeps only the certificate. The
Linux boards (rpi4, rpi5, jetson_nano, jetson_orin_nano) have OpenSSL and
can make their own key and send a CSR (``add --csr``), so their key never
leaves them. MicroPython on the ESP32 cannot: its ``ssl`` module loads keys
but exposes no key generation.
"""

import datetime
import hashlib
import json
import os
import secrets

from edgefw.fleet import FleetError, pki
from edgefw.fleet.broker import render, write_files
from edgefw.fleet.registry import FORMAT, Fleet, check_name, dumps, write_atomic

ON_DEVICE_KEYGEN = ("rpi4", "rpi5", "jetson_nano", "jetson_orin_nano")
ROLES = ("ingest", "gateway", "ota")
SEAL_KEY_BYTES = 32


def _boards():
    try:
        from boards import KNOWN
    except ImportError:
        return None
    return KNOWN


def init(
    root,
    name="edgefw fleet",
    hosts=("127.0.0.1", "localhost"),
    bind="127.0.0.1",
    port=8883,
    cert_days=365,
    overlap_days=7,
    crl_days=30,
    ca_days=3650,
    pid_file=None,
    user=None,
):
    f = Fleet(root)
    for what, v in (("cert_days", cert_days), ("crl_days", crl_days), ("ca_days", ca_days)):
        if not isinstance(v, int) or v < 1:
            raise FleetError("%s must be a whole number of days, at least 1 (got %r)" % (what, v))
    if not isinstance(overlap_days, int) or not 0 <= overlap_days < cert_days:
        raise FleetError("overlap_days must be from 0 to cert_days - 1 (got %r)" % (overlap_days,))
    if "\n" in f.root or "\r" in f.root:
        # its paths become mosquitto.conf lines
        raise FleetError("%r: the fleet directory's path must have no line breaks" % f.root)
    if os.path.exists(f.registry_path):
        raise FleetError("%s: a fleet is already here; it is never overwritten" % f.registry_path)
    for what, v in (("bind address", bind), ("pid file", pid_file), ("broker user", user)) + tuple(("broker host", h) for h in hosts):
        # each becomes a line of mosquitto.conf or a name in a certificate
        if v is not None and (not isinstance(v, str) or not v or any(ch.isspace() for ch in v)):
            raise FleetError("%s %r: must be non-empty, without spaces or line breaks" % (what, v))
    owner = None
    if user and os.geteuid() == 0:
        import pwd

        try:
            owner = pwd.getpwnam(user)
        except KeyError:
            raise FleetError("--broker-user %r: no such user on this machine" % user)
    if not hosts:
        raise FleetError("the broker needs at least one host name or address for its certificate")
    for d, mode in ((f.root, 0o755), (f.path("private"), 0o700), (f.path("certs"), 0o755), (f.broker_dir, 0o755)):
        os.makedirs(d, exist_ok=True)
        os.chmod(d, mode)
    ca_key, ca = pki.make_ca(name + " CA", ca_days)
    srv_key = pki.new_key()
    now = pki.utcnow()
    srv = pki.issue(
        ca_key, ca, hosts[0], srv_key.public_key(), now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=cert_days), server_hosts=list(hosts)
    )
    write_atomic(f.ca_key_path, pki.key_pem(ca_key), 0o600)
    write_atomic(f.ca_path, pki.cert_pem(ca), 0o644)
    srv_key_path = os.path.join(f.broker_dir, "server.key")
    write_atomic(srv_key_path, pki.key_pem(srv_key), 0o600)
    if owner:
        # mosquitto started as root drops to ``user`` before it reads its
        # key, so that user must own it (0600 stays)
        os.chown(srv_key_path, owner.pw_uid, owner.pw_gid)
    write_atomic(os.path.join(f.broker_dir, "server.pem"), pki.cert_pem(srv), 0o644)
    f.doc = {
        "format": FORMAT,
        "fleet": {
            "name": name,
            "cert_days": cert_days,
            "overlap_days": overlap_days,
            "crl_days": crl_days,
            "ca_sha256": pki.fingerprint(ca),
            "broker": {"hosts": list(hosts), "bind": bind, "port": port, "pid_file": pid_file, "user": user},
        },
        "devices": {},
        "services": {},
    }
    f.seal = {}
    # the directory may go under version control; the secrets must not
    write_atomic(f.path(".gitignore"), "private/\ncreds/\nbroker/server.key\n", 0o644)
    files = render(f)
    f.save()
    write_files(files)
    return f


def _issue_cert(f, cn, ca_key, ca, public_key=None):
    """A client certificate for ``cn``: for ``public_key`` (from a CSR), or
    for a key pair made here. Returns (private key or None, cert, entry)."""
    key = None
    if public_key is None:
        key = pki.new_key()
        public_key = key.public_key()
    now = pki.utcnow()
    not_before = now - datetime.timedelta(minutes=5)
    not_after = now + datetime.timedelta(days=f.settings["cert_days"])
    cert = pki.issue(ca_key, ca, cn, public_key, not_before, not_after)
    rel = "certs/%x.pem" % cert.serial_number
    write_atomic(f.path(rel), pki.cert_pem(cert), 0o644)
    entry = {
        "serial": "%x" % cert.serial_number,
        "file": rel,
        "sha256": pki.fingerprint(cert),
        "not_before": pki.iso(not_before),
        "not_after": pki.iso(not_after),
    }
    return key, cert, entry


def _csr_key(csr, name):
    return None if csr is None else pki.load_csr(csr, name)


def _origin(csr):
    return "workstation" if csr is None else "device (CSR)"


def _ca(f):
    fix = "restore DIR/ca.pem and DIR/private/ca.key from your backup"
    ca = pki.load_cert(f.ca_path, fix)
    return pki.load_key(f.ca_key_path, fix), ca


def _taken(f, name):
    if name in f.doc["devices"] or name in f.doc["services"]:
        raise FleetError("%r is already in the registry: every identity needs its own name (it is the broker user name)" % name)


def _new_seal_key(f, dev):
    key = secrets.token_bytes(SEAL_KEY_BYTES)
    rec = {"hex": key.hex(), "created": pki.iso(pki.utcnow())}
    f.seal.setdefault(dev, []).insert(0, rec)
    # the registry holds a fingerprint to diff and audit, never the key
    return key, {"sha256_16": hashlib.sha256(key).hexdigest()[:16], "created": rec["created"]}


def parse_labels(items):
    out = {}
    for it in items or ():
        k, sep, v = it.partition("=")
        if not sep or not k:
            raise FleetError("label %r: write it as key=value" % it)
        out[k] = v
    return out


def add_device(root, dev, board, labels=None, out=None, csr=None):
    """Provision ``dev``: key pair, client certificate (CN = dev), seal key,
    registry entry; its credentials go to ``out`` (default
    DIR/creds/<dev>). With ``csr`` (a request file made on the device) the
    certificate is for the device's own key, and no key is written.
    Returns (Fleet, credential directory)."""
    f = Fleet(root).load()
    check_name(dev, "device id")
    _taken(f, dev)
    known = _boards()
    if known is not None and board not in known:
        raise FleetError("board %r: one of %s" % (board, ", ".join(known)))
    pub = _csr_key(csr, dev)
    ca_key, ca = _ca(f)
    key, cert, centry = _issue_cert(f, dev, ca_key, ca, pub)
    seal, sentry = _new_seal_key(f, dev)
    out = out or f.path(os.path.join("creds", dev))
    f.doc["devices"][dev] = {
        "board": board,
        "labels": labels or {},
        "status": "active",
        "added": pki.iso(pki.utcnow()),
        "key_origin": _origin(csr),
        "certs": [centry],
        "seal_keys": [sentry],
        # the firmware image hash this device must report; set at flash
        # time, checked by ingest once attestation is wired in
        "firmware_sha256": None,
        "revoked": None,
    }
    files = render(f)
    write_credentials(out, dev, key, cert, ca, seal, f.settings["broker"])
    f.save()
    write_files(files)
    return f, out


def add_service(root, name, role, devices=(), out=None, csr=None):
    f = Fleet(root).load()
    check_name(name, "service name")
    _taken(f, name)
    if role not in ROLES:
        raise FleetError("role %r: one of %s" % (role, ", ".join(ROLES)))
    if role != "gateway" and devices:
        raise FleetError("--devices is for a gateway: an ingest or ota service serves every device")
    for d in devices:
        if d not in f.doc["devices"]:
            raise FleetError("gateway %s: device %r is not in the registry; add it first" % (name, d))
    pub = _csr_key(csr, name)
    ca_key, ca = _ca(f)
    key, cert, centry = _issue_cert(f, name, ca_key, ca, pub)
    out = out or f.path(os.path.join("creds", name))
    f.doc["services"][name] = {
        "role": role,
        "status": "active",
        "added": pki.iso(pki.utcnow()),
        "key_origin": _origin(csr),
        "certs": [centry],
        "revoked": None,
    }
    if role == "gateway":
        f.doc["services"][name]["devices"] = sorted(devices)
    files = render(f)
    write_credentials(out, name, key, cert, ca, None, f.settings["broker"])
    f.save()
    write_files(files)
    return f, out


def revoke(root, name, reason="unspecified"):
    f = Fleet(root).load()
    _kind, e = f.identity(name)
    if e["status"] == "revoked":
        raise FleetError("%s was already revoked at %s" % (name, e["revoked"]["at"]))
    now = pki.iso(pki.utcnow())
    e["status"] = "revoked"
    e["revoked"] = {"at": now, "reason": reason}
    for c in e["certs"]:
        c.setdefault("revoked_at", None)
        if not c["revoked_at"]:
            c["revoked_at"] = now
    files = render(f)
    f.save()
    write_files(files)
    return f


def rotate(root, name, out=None, csr=None):
    """A new certificate (and for a device a new seal key); the old
    certificate stays valid for the fleet's ``overlap_days`` and is then put
    on the CRL by the next ``broker-config``."""
    f = Fleet(root).load()
    kind, e = f.identity(name)
    if e["status"] != "active":
        raise FleetError("%s is revoked: add it again under a new name instead" % name)
    pub = _csr_key(csr, name)
    ca_key, ca = _ca(f)
    retire = pki.iso(pki.utcnow() + datetime.timedelta(days=f.settings["overlap_days"]))
    for c in e["certs"]:
        if not c.get("revoked_at") and not c.get("retire_at"):
            c["retire_at"] = retire
    key, cert, centry = _issue_cert(f, name, ca_key, ca, pub)
    e["certs"].insert(0, centry)
    e["key_origin"] = _origin(csr)
    seal = None
    if kind == "device":
        for s in e["seal_keys"] + f.seal.get(name, []):
            s.setdefault("retire_at", retire)
        seal, sentry = _new_seal_key(f, name)
        e["seal_keys"].insert(0, sentry)
    out = out or f.path(os.path.join("creds", name))
    files = render(f)
    write_credentials(out, name, key, cert, ca, seal, f.settings["broker"])
    f.save()
    write_files(files)
    return f, out


def image_hash(path):
    """The hash a device running the image at ``path`` reports
    (``firmware.attest``: SHA-256 of its manifest): ``path`` is a Linux
    bundle, an ESP32 bundle (its ``manifest``), an ``edgefw mpy-build``
    directory or a manifest.json."""
    import tarfile

    try:
        if os.path.isdir(path):
            path = os.path.join(path, "manifest.json")
        if tarfile.is_tarfile(path):
            with tarfile.open(path, "r:") as tar:
                names = tar.getnames()
                # an ESP32 bundle (edgefw.fleet.ota): its signed manifest is
                # text, and the device reports its hash (the bundle's id)
                esp32 = "manifest" in names and "manifest.json" not in names
                m = tar.extractfile("manifest" if esp32 else "manifest.json")
                if m is None:
                    raise KeyError("manifest.json")
                data = m.read()
            if esp32:
                return hashlib.sha256(data).hexdigest()
        else:
            with open(path, "rb") as f:
                data = f.read()
        json.loads(data)
    except (OSError, KeyError, tarfile.TarError) as e:
        raise FleetError("%s: no image manifest here (%s); give a bundle from `edgefw update build`, an `edgefw mpy-build` directory or its manifest.json" % (path, e))
    except ValueError as e:
        raise FleetError("%s: manifest.json is not JSON (%s)" % (path, e))
    return hashlib.sha256(data).hexdigest()


def set_firmware(root, dev, sha256):
    """The firmware image hash ``dev`` is expected to run (hex SHA-256), or
    None to clear it: what ingest will compare the device's attestation
    with."""
    f = Fleet(root).load()
    if dev not in f.doc["devices"]:
        raise FleetError("%s: no device %r in the registry" % (f.registry_path, dev))
    if sha256 is not None:
        sha256 = sha256.lower()
        if len(sha256) != 64 or any(ch not in "0123456789abcdef" for ch in sha256):
            raise FleetError("%r: a SHA-256 as 64 hex digits" % sha256)
    f.doc["devices"][dev]["firmware_sha256"] = sha256
    f.save()
    return f


def write_credentials(dest, name, key, cert, ca, seal_key, broker):
    """A device's (or service's) credential directory, ready to copy to it:

        client.key  TLS private key (0600; not when the device made its
                    own and sent a CSR)       client.pem  its certificate
        ca.pem      the fleet CA, to check the broker
        seal.key    the seal key as hex (0600; devices only)
        uplink.json the uplink config fields that name these files

    ``key``, ``cert``, ``ca``: cryptography objects or PEM bytes. The
    directory is 0700 and files are written whole (atomically)."""
    os.makedirs(dest, exist_ok=True)
    os.chmod(dest, 0o700)
    as_pem = lambda o, f: o if isinstance(o, bytes) else f(o)  # noqa: E731
    if key is not None:
        write_atomic(os.path.join(dest, "client.key"), as_pem(key, pki.key_pem), 0o600)
    write_atomic(os.path.join(dest, "client.pem"), as_pem(cert, pki.cert_pem), 0o644)
    write_atomic(os.path.join(dest, "ca.pem"), as_pem(ca, pki.cert_pem), 0o644)
    up = {"broker": "%s:%d" % (broker["hosts"][0], broker["port"]), "tls_ca": "ca.pem", "tls_cert": "client.pem", "tls_key": "client.key"}
    if seal_key is not None:
        write_atomic(os.path.join(dest, "seal.key"), seal_key.hex() + "\n", 0o600)
        up["key_file"] = "seal.key"
    write_atomic(os.path.join(dest, "uplink.json"), json.dumps({"device_id": name, "uplink": up}, indent=2, sort_keys=True) + "\n", 0o644)
    return dest


def ingest_keys(root, all_keys=False):
    """Seal keys in the format ``edgefw ingest --keys`` reads: device id ->
    hex key (the newest), active devices only. ``all_keys``: device id ->
    list of hex keys still accepted, newest first (for an ingest that takes
    the old key during a rotation's overlap)."""
    f = Fleet(root).load()
    now = pki.utcnow()
    out = {}
    for dev, e in sorted(f.doc["devices"].items()):
        if e["status"] != "active":
            continue
        keys = f.seal.get(dev) or []
        if not keys:
            raise FleetError("%s: no seal key for %s; `edgefw fleet rotate %s` makes one" % (f.seal_path, dev, dev))
        live = [k["hex"] for k in keys if not k.get("retire_at") or pki.parse_iso(k["retire_at"]) > now]
        out[dev] = live if all_keys else keys[0]["hex"]
    return out


def listing(root):
    f = Fleet(root).load()
    now = pki.utcnow()
    rows = []
    for kind, table in (("device", f.doc["devices"]), ("service", f.doc["services"])):
        for name, e in sorted(table.items()):
            cur = e["certs"][0]
            days = round((pki.parse_iso(cur["not_after"]) - now).total_seconds() / 86400)
            rows.append(
                {
                    "name": name,
                    "kind": kind,
                    "what": e.get("board") or e.get("role"),
                    "status": e["status"],
                    "cert_serial": cur["serial"],
                    "cert_days_left": days,
                    "labels": e.get("labels", {}),
                }
            )
    return rows


def crl_status(root):
    """When the broker's CRL expires: after that OpenSSL refuses every
    client, so ``broker-config`` must run again before (a daily timer)."""
    from cryptography import x509

    f = Fleet(root).load()
    path = os.path.join(f.broker_dir, "crl.pem")
    try:
        crl = x509.load_pem_x509_crl(open(path, "rb").read())
    except (OSError, ValueError) as e:
        raise FleetError("%s: cannot read the CRL (%s); `edgefw fleet broker-config` writes a new one" % (path, e))
    left = crl.next_update_utc - pki.utcnow()
    return {"crl": path, "next_update": pki.iso(crl.next_update_utc), "hours_left": round(left.total_seconds() / 3600, 1), "revoked": len(list(crl))}


def export_json(doc):
    return dumps(doc)
