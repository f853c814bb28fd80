"""``edgefw update ...`` and ``flash_linux(args)``, the Linux half of
``tools/flash.py`` (CPython only).

    edgefw update keygen release                      # release.key, release.pub
    edgefw update build --board rpi4 --key release.key -o v2.edgefw
    edgefw update verify --keys /etc/edgefw/keys --board rpi4 v2.edgefw
    edgefw update install --rootfs DIR | --image sd.img | --host user@ADDR [--port N]  v2.edgefw
    edgefw update recover [--rootfs DIR]
    edgefw update status [--rootfs DIR] [--check]

The installer also runs on its own on a device (``python -m firmware.linux.update_cli
install ...``): it needs only firmware/linux/bundle.py, firmware/linux/update.py, this file,
firmware/store and hal, and pycryptodome.
"""

import argparse
import json
import sys

from firmware.linux import bundle as B
from firmware.linux import update as U


def _common_install(p):
    p.add_argument("--allow-downgrade", action="store_true", help="install a version older than the running one")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds the new slot has to report READY (default 60)")
    p.add_argument("--settle", type=float, default=5.0, metavar="S", help="seconds it must then stay up before commit (default 5)")
    p.add_argument("--max-restarts", type=int, default=2, metavar="N", help="restarts before READY that count as a crash loop (default 2)")
    p.add_argument("--add-key", action="append", default=[], metavar="PUB", help="trust this public key on the device first (first install)")


def _target(p):
    p.add_argument("--rootfs", metavar="DIR", help="install into this root filesystem directory (default / when neither --image nor --host)")
    p.add_argument("--image", metavar="IMG", help="install into the root partition of this raw SD-card image (loop mount: needs root)")
    p.add_argument("--host", metavar="USER@ADDR", help="install over SSH")
    p.add_argument("--port", type=int, default=22, metavar="N", help="SSH port (default 22)")
    p.add_argument("--ssh-option", "-o", action="append", default=[], metavar="OPT", help="passed to ssh and scp as -o OPT")
    p.add_argument("--identity", "-i", metavar="FILE", help="SSH private key")
    p.add_argument("--remote-python", default="python3", metavar="PY", help="the device's Python (default python3)")
    p.add_argument("--remote-root", default="/", metavar="DIR", help="over SSH: the root on the device (default /)")


def add_parser(sub):
    u = sub.add_parser("update", help="signed A/B application updates for the Linux boards (docs/updates.md)")
    us = u.add_subparsers(dest="update_cmd", required=True)
    k = us.add_parser("keygen", help="make an Ed25519 key pair: PREFIX.key (0600) and PREFIX.pub")
    k.add_argument("prefix")
    k.set_defaults(fn=cmd_keygen)
    b = us.add_parser("build", help="write a signed bundle for one Linux board")
    b.add_argument("--board", required=True, choices=B.LINUX_BOARDS)
    b.add_argument("--key", required=True, metavar="FILE", help="private key (update keygen)")
    b.add_argument("-o", "--out", metavar="FILE", help="bundle file (default edgefw-BOARD-VERSION.edgefw)")
    b.add_argument("--version", dest="bundle_version", metavar="V", help="version (default: pyproject.toml's)")
    b.add_argument("--config", metavar="FILE", help="config to ship (default: firmware/defaults/config.json)")
    b.add_argument("--model", metavar="FILE", help="model file to ship")
    b.add_argument("--migration", metavar="SCRIPT", help="journal migration: run as SCRIPT up|down JOURNAL_DIR")
    b.add_argument("--journal-format", type=int, default=B.JOURNAL_FORMAT, metavar="N", help="journal format the bundle's firmware writes")
    b.add_argument("--health", metavar="ARGV_JSON", help="health check argv as JSON (default: the slot's firmware.linux.health)")
    b.set_defaults(fn=cmd_build)
    v = us.add_parser("verify", help="check a bundle without changing anything")
    v.add_argument("bundle")
    v.add_argument("--keys", default="/etc/edgefw/keys", metavar="DIR", help="trusted public keys (default /etc/edgefw/keys)")
    v.add_argument("--board", metavar="NAME")
    v.add_argument("--running", metavar="VERSION", help="refuse an older version than this")
    v.add_argument("--allow-downgrade", action="store_true")
    v.set_defaults(fn=cmd_verify)
    i = us.add_parser("install", help="verify and install a bundle into the free slot, commit when healthy")
    i.add_argument("bundle")
    i.add_argument("--board", metavar="NAME", help="this device's board (default: etc/edgefw/board, EDGEFW_BOARD, detection)")
    _target(i)
    _common_install(i)
    i.set_defaults(fn=cmd_install)
    r = us.add_parser("recover", help="finish or undo an interrupted update (run at boot)")
    r.add_argument("--rootfs", default="/", metavar="DIR")
    r.set_defaults(fn=lambda a: U.recover(a.rootfs))
    s = us.add_parser("status", help="slot states and the last result, as JSON")
    s.add_argument("--rootfs", default="/", metavar="DIR")
    s.add_argument("--check", action="store_true", help="exit 1 when the root is inconsistent")
    s.set_defaults(fn=cmd_status)
    return u


def cmd_keygen(a):
    kid = B.keygen(a.prefix)
    print("key %s: %s.key (private, keep it off devices), %s.pub (copy to the device's /etc/edgefw/keys/)" % (kid, a.prefix, a.prefix))
    return 0


def cmd_build(a):
    try:
        health = json.loads(a.health) if a.health else None
        version = a.bundle_version or B.source_version()
        out = a.out or "edgefw-%s-%s.edgefw" % (a.board, version)
        m = B.build(a.board, a.key, out, version=version, config=a.config, model=a.model, migration=a.migration, journal_format=a.journal_format, health=health)
    except (B.BundleError, OSError, ValueError) as e:
        print("build failed: %s" % e, file=sys.stderr)
        return 1
    print("wrote %s: edgefw %s for %s, %d files" % (out, m["version"], m["board"], len(m["files"])))
    return 0


def cmd_verify(a):
    try:
        m = B.verify(a.bundle, a.keys, a.board, a.running, a.allow_downgrade)
    except B.BundleError as e:
        print("refused: %s" % e, file=sys.stderr)
        return 1
    print("ok: edgefw %s for %s, %d files" % (m["version"], m["board"], len(m["files"])))
    return 0


def cmd_install(a):
    n = sum(bool(x) for x in (a.rootfs, a.image, a.host))
    if n > 1:
        print("give one of --rootfs, --image, --host", file=sys.stderr)
        return U.USAGE
    kw = dict(allow_downgrade=a.allow_downgrade, timeout=a.timeout, settle=a.settle, max_restarts=a.max_restarts, add_keys=a.add_key)
    if a.host:
        from edgefw.deploy import update_ssh

        return update_ssh.main(a, kw)
    if a.image:
        from edgefw.deploy import image

        return image.install_image(a.image, a.bundle, board=a.board, **kw)
    return U.install(a.rootfs or "/", a.bundle, board=a.board, **kw)


def cmd_status(a):
    st = U.load_status(U.Layout(a.rootfs))
    bad = U.check_root(a.rootfs)
    st["problems"] = bad
    print(json.dumps(st, indent=1, sort_keys=True))
    return 1 if a.check and bad else 0


def flash_linux(args):
    """The entry ``tools/flash.py`` calls for a Linux board. ``args`` holds
    ``board``, ``bundle`` (a file, or None to build one), ``build_only``,
    ``key``, ``out``, and the install target (``host``/``port``,
    ``rootfs`` or ``image``); missing attributes take their defaults."""
    g = lambda name, default=None: getattr(args, name, default)  # noqa: E731
    path = g("bundle")
    if not path or g("build_only"):
        if not g("key"):
            print("building a bundle needs --key (edgefw update keygen makes one)", file=sys.stderr)
            return U.USAGE
        version = g("version") or B.source_version()
        path = g("out") or "edgefw-%s-%s.edgefw" % (args.board, version)
        try:
            B.build(args.board, g("key"), path, version=version, config=g("config"), model=g("model"))
        except (B.BundleError, OSError) as e:
            print("build failed: %s" % e, file=sys.stderr)
            return 1
        print("wrote %s" % path)
        if g("build_only"):
            return 0
    ns = argparse.Namespace(
        bundle=path, board=args.board, rootfs=g("rootfs"), image=g("image"), host=g("host"), port=g("port", 22) or 22,
        ssh_option=g("ssh_option", []) or [], identity=g("identity"), remote_python=g("remote_python", "python3") or "python3",
        remote_root=g("remote_root", "/") or "/", allow_downgrade=g("allow_downgrade", False), timeout=g("timeout", 60.0) or 60.0,
        settle=g("settle", 5.0) or 5.0, max_restarts=g("max_restarts", 2), add_key=g("add_key", []) or [],
    )
    return cmd_install(ns)


def main(argv=None):
    p = argparse.ArgumentParser(prog="edgefw")
    sub = p.add_subparsers(dest="cmd", required=True)
    add_parser(sub)
    a = p.parse_args(["update"] + list(sys.argv[1:] if argv is None else argv))
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
