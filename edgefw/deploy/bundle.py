"""Building and signing update bundles for the Linux boards (on a
workstation; the format and the device's checks are ``firmware.linux.bundle``).

    from edgefw.deploy import bundle
    bundle.keygen("release")                      # release.key (0600), release.pub
    path = bundle.build("rpi4", "release.key", "edgefw-rpi4.edgefw")
"""

import io
import json
import os
import tarfile
import time
from pathlib import Path

from edgefw.build.contents import board_files
from edgefw.util import ROOT
from firmware.linux.bundle import (
    DEFAULT_HEALTH,
    FORMAT,
    JOURNAL_FORMAT,
    LINUX_BOARDS,
    MIN_PYTHON,
    BundleError,
    _ed25519,
    check_name,
    key_id,
    parse_version,
    sha256_file,
)


def keygen(prefix):
    """Write ``prefix.key`` (private, mode 0600) and ``prefix.pub``; return
    the key id."""
    key = _ed25519()[0].generate(curve="ed25519")
    priv = key.export_key(format="PEM")
    fd = os.open(prefix + ".key", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(priv)
    os.chmod(prefix + ".key", 0o600)
    with open(prefix + ".pub", "w") as f:
        f.write(key.public_key().export_key(format="PEM"))
    return key_id(key.public_key())


def load_private(path):
    with open(path) as f:
        key = _ed25519()[0].import_key(f.read())
    if not key.has_private():
        raise BundleError("bad-key", "%s holds no private key" % path)
    return key


def _app_files(board, src):
    # what runs on the board, by the one rule (edgefw.build.contents)
    for rel, path in board_files(board, Path(src)):
        yield "app/" + rel, str(path)
    for n in ("pyproject.toml", "README.md"):
        if os.path.exists(os.path.join(src, n)):
            yield "app/" + n, os.path.join(src, n)


def source_version(src=ROOT):
    with open(os.path.join(src, "pyproject.toml")) as f:
        for line in f:
            if line.startswith("version"):
                return line.split("=", 1)[1].strip().strip('"')
    raise BundleError("malformed", "no version in pyproject.toml")


def build(
    board,
    key_path,
    out,
    version=None,
    config=None,
    model=None,
    src=ROOT,
    extra=None,
    migration=None,
    journal_format=JOURNAL_FORMAT,
    health=None,
    min_python=MIN_PYTHON,
):
    """Write the bundle ``out`` for ``board``; return its manifest.

    ``extra``: {name in payload: local file}; ``migration``: a script run as
    ``python SCRIPT up|down JOURNAL_DIR`` when the journal format changes;
    ``health``: the argv of the health check (``{python}``, ``{slot}``
    are filled in on the device)."""
    if board not in LINUX_BOARDS:
        raise BundleError("wrong-board", "bundles are for the Linux boards (%s), not %r" % (", ".join(LINUX_BOARDS), board))
    key = load_private(key_path)
    version = version or source_version(src)
    parse_version(version)
    members = list(_app_files(board, src))
    members.append(("config/edgefw.json", config or os.path.join(src, "firmware", "defaults", "config.json")))
    if model:
        members.append(("model/" + os.path.basename(model), model))
    for name, path in sorted((extra or {}).items()):
        members.append((check_name(name), path))
    manifest = {
        "format": FORMAT,
        "version": version,
        "board": board,
        "min_python": min_python,
        "journal_format": journal_format,
        "health": health or DEFAULT_HEALTH,
        "created": int(time.time()),
        "files": {},
    }
    if migration:
        members.append(("migration/migrate.py", migration))
        manifest["migration"] = "migration/migrate.py"
    seen = set()
    for name, path in members:
        if name in seen:
            raise BundleError("malformed", "payload name %r given twice" % name)
        seen.add(name)
        manifest["files"][name] = sha256_file(path)
    mbytes = json.dumps(manifest, sort_keys=True, indent=1).encode()
    sig = _ed25519()[1].new(key, "rfc8032").sign(mbytes)
    sbytes = json.dumps({"key": key_id(key.public_key()), "sig": sig.hex()}).encode()
    tmp = out + ".part"
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in (("manifest.json", mbytes), ("manifest.sig", sbytes)):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = manifest["created"]
            tar.addfile(info, io.BytesIO(data))
        for name, path in members:
            info = tar.gettarinfo(path, "payload/" + name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o644
            with open(path, "rb") as f:
                tar.addfile(info, f)
    os.replace(tmp, out)
    return manifest
