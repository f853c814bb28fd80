"""Signed update bundles for the Linux boards: their format, and checking
one on the device (CPython only; building and signing one is
``edgefw.deploy.bundle``, on a workstation).

    from firmware.linux import bundle
    m = bundle.verify(path, "/etc/edgefw/keys", board="rpi4", running="0.1.0")

A bundle is one uncompressed tar file::

    manifest.json   version, board, min_python, journal_format, health,
                    files {name: sha256}, migration (optional)
    manifest.sig    JSON {"key": key id, "sig": Ed25519 signature, hex}
    payload/...     app/ (what runs on the board: firmware/, hal/, boards/),
                    config/, model/, ...

The signature covers the bytes of manifest.json exactly; the manifest
names the SHA-256 of every payload file, so a signed manifest pins every
byte of the payload. The device trusts the public keys (``*.pub``, PEM)
in one directory; a key's id is the first 16 hex digits of the SHA-256 of
its raw 32-byte public key. ``verify`` changes nothing: it reads the
bundle and raises ``BundleError`` naming the reason.
"""

import hashlib
import json
import os
import sys
import tarfile

from hal.errors import EdgefwError


def _ed25519():
    """pycryptodome's ECC and EdDSA, imported when a key is used: the
    edgefw command loads this module for its parser, also in environments
    without pycryptodome (the tflite-runtime venv). PyPI's pycryptodome
    is ``Crypto``; Debian's python3-pycryptodome is the same library
    under the name ``Cryptodome`` (seen on the emulated board)."""
    try:
        from Crypto.PublicKey import ECC
        from Crypto.Signature import eddsa
    except ImportError:
        from Cryptodome.PublicKey import ECC
        from Cryptodome.Signature import eddsa

    return ECC, eddsa


FORMAT = 1
# the journal's on-disk format (docs/store.md); a bundle whose firmware
# writes another one must carry a migration
JOURNAL_FORMAT = 1
LINUX_BOARDS = ("rpi4", "rpi5", "jetson_nano", "jetson_orin_nano")
MIN_PYTHON = "3.10"
# the default health check: the slot's own (firmware/linux/health.py)
DEFAULT_HEALTH = ["{python}", "-m", "firmware.linux", "health"]


class BundleError(EdgefwError, ValueError):
    """A bundle refused; ``reason`` is one short word for scripts."""

    def __init__(self, reason, message):
        ValueError.__init__(self, "%s: %s" % (reason, message))
        self.reason = reason


# --- keys ---------------------------------------------------------------------
def key_id(pub):
    raw = pub.export_key(format="raw")
    return hashlib.sha256(raw).hexdigest()[:16]


def trusted_keys(keys_dir):
    """{key id: public key} for every ``*.pub`` in ``keys_dir``."""
    keys = {}
    try:
        names = sorted(os.listdir(keys_dir))
    except OSError:
        names = []
    for n in names:
        if not n.endswith(".pub"):
            continue
        try:
            with open(os.path.join(keys_dir, n)) as f:
                pub = _ed25519()[0].import_key(f.read())
        except (OSError, ValueError):
            continue
        if pub.curve in ("Ed25519", "ed25519"):
            keys[key_id(pub)] = pub
    return keys


# --- versions and paths ---------------------------------------------------------
def parse_version(v):
    try:
        parts = tuple(int(x) for x in str(v).split("."))
    except ValueError:
        raise BundleError("malformed", "version %r is not dotted numbers like 1.2.3" % (v,))
    if not parts or len(parts) > 4:
        raise BundleError("malformed", "version %r is not dotted numbers like 1.2.3" % (v,))
    return parts


def check_name(name):
    """A relative path with no ``..``, no empty or ``.`` parts; returned
    normalised, or ``BundleError("unsafe-path")``."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        raise BundleError("unsafe-path", "bundle member %r is not a plain relative path" % name)
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BundleError("unsafe-path", "bundle member %r has an empty, '.' or '..' part" % name)
    return "/".join(parts)


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


# --- verifying -------------------------------------------------------------
def _open(path):
    try:
        return tarfile.open(path, "r:")
    except (OSError, tarfile.TarError) as e:
        raise BundleError("malformed", "%s is not a bundle (%s)" % (path, e))


def read_manifest(path, keys_dir):
    """Check the signature and the manifest's shape; return the manifest."""
    with _open(path) as tar:
        try:
            mbytes = tar.extractfile("manifest.json").read()
            sig = json.loads(tar.extractfile("manifest.sig").read())
        except (KeyError, AttributeError, ValueError, tarfile.TarError) as e:
            raise BundleError("malformed", "%s has no readable manifest.json and manifest.sig (%s)" % (path, e))
    if not isinstance(sig, dict) or not isinstance(sig.get("key"), str) or not isinstance(sig.get("sig"), str):
        raise BundleError("malformed", 'manifest.sig is not {"key": ..., "sig": ...}')
    keys = trusted_keys(keys_dir)
    pub = keys.get(sig["key"])
    if pub is None:
        raise BundleError("unknown-key", "signed by key %s, which is not among the %d trusted keys in %s" % (sig["key"], len(keys), keys_dir))
    try:
        _ed25519()[1].new(pub, "rfc8032").verify(mbytes, bytes.fromhex(sig["sig"]))
    except ValueError:
        raise BundleError("bad-signature", "the manifest's signature does not verify with key %s" % sig["key"])
    try:
        m = json.loads(mbytes)
    except ValueError as e:
        raise BundleError("malformed", "manifest.json is not JSON (%s)" % e)
    need = {"format": int, "version": str, "board": str, "min_python": str, "journal_format": int, "files": dict, "health": list}
    for k, t in need.items():
        if not isinstance(m.get(k), t):
            raise BundleError("malformed", "manifest field %r missing or not %s" % (k, t.__name__))
    if m["format"] != FORMAT:
        raise BundleError("malformed", "bundle format %r; this installer reads format %d" % (m["format"], FORMAT))
    for name, h in m["files"].items():
        check_name(name)
        if not isinstance(h, str) or len(h) != 64:
            raise BundleError("malformed", "file %r has no SHA-256 in the manifest" % name)
    if "migration" in m and m["migration"] not in m["files"]:
        raise BundleError("malformed", "the migration %r is not a payload file" % m["migration"])
    parse_version(m["version"])
    return m


def check_target(m, board=None, running=None, allow_downgrade=False, journal_format=None, python=None):
    """Refuse ``m`` for this device: board, version, Python, journal format."""
    if board is not None and m["board"] != board:
        raise BundleError("wrong-board", "bundle is for %s, this device is %s" % (m["board"], board))
    if running is not None and not allow_downgrade and parse_version(m["version"]) < parse_version(running):
        raise BundleError("downgrade", "bundle version %s is older than the running %s (--allow-downgrade to install it anyway)" % (m["version"], running))
    py = python or sys.version_info[:2]
    if tuple(py) < parse_version(m["min_python"])[:2]:
        raise BundleError("python-too-old", "bundle needs Python >= %s, the device has %d.%d" % (m["min_python"], py[0], py[1]))
    if journal_format is not None and m["journal_format"] != journal_format and "migration" not in m:
        raise BundleError(
            "journal-format",
            "bundle writes journal format %d, the device's journal is format %d, and the bundle carries no migration" % (m["journal_format"], journal_format),
        )


def _members(tar, m):
    """(name, TarInfo) of every payload file, each checked: regular files
    only, every one in the manifest, nothing missing."""
    files = m["files"]
    got = {}
    for info in tar.getmembers():
        name = check_name(info.name)
        if name in ("manifest.json", "manifest.sig"):
            continue
        if not name.startswith("payload/"):
            raise BundleError("malformed", "bundle member %r is outside payload/" % name)
        rel = name[len("payload/") :]
        if info.isdir():
            continue
        if info.issym() or info.islnk():
            raise BundleError("unsafe-path", "bundle member %r is a link (to %r); bundles hold regular files only" % (name, info.linkname))
        if not info.isfile():
            raise BundleError("unsafe-path", "bundle member %r is not a regular file" % name)
        if rel not in files:
            raise BundleError("malformed", "bundle member %r is not in the signed manifest" % name)
        if rel in got:
            raise BundleError("malformed", "bundle member %r appears twice" % name)
        got[rel] = info
    missing = sorted(set(files) - set(got))
    if missing:
        raise BundleError("malformed", "the manifest names %d file(s) the bundle lacks, e.g. %r" % (len(missing), missing[0]))
    return got


def check_payload(path, m):
    """Hash every payload file against the manifest without writing."""
    with _open(path) as tar:
        for rel, info in sorted(_members(tar, m).items()):
            h = hashlib.sha256()
            f = tar.extractfile(info)
            for block in iter(f.read, b""):
                h.update(block)
            if h.hexdigest() != m["files"][rel]:
                raise BundleError("hash-mismatch", "payload file %r does not match its SHA-256 in the manifest" % rel)


def payload_bytes(path, m):
    with _open(path) as tar:
        return sum(i.size for i in _members(tar, m).values())


def verify(path, keys_dir, board=None, running=None, allow_downgrade=False, journal_format=None):
    """The whole check, writing nothing; return the manifest."""
    m = read_manifest(path, keys_dir)
    check_target(m, board, running, allow_downgrade, journal_format)
    check_payload(path, m)
    return m


def extract(path, m, dest, hook=None):
    """Write the payload under ``dest`` (which must not be a link), checking
    each file's hash as it is written, syncing each file; ``hook(n)`` is
    called after the n-th file."""
    with _open(path) as tar:
        for n, (rel, info) in enumerate(sorted(_members(tar, m).items())):
            target = os.path.join(dest, *rel.split("/"))
            os.makedirs(os.path.dirname(target), exist_ok=True)
            h = hashlib.sha256()
            src = tar.extractfile(info)
            with open(target, "wb") as f:
                for block in iter(src.read, b""):
                    h.update(block)
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            if h.hexdigest() != m["files"][rel]:
                raise BundleError("hash-mismatch", "payload file %r does not match its SHA-256 in the manifest" % rel)
            if hook:
                hook(n)
