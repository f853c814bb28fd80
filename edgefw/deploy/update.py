"""``edgefw update``: signed A/B application updates for the Linux boards,
from a workstation (CPython only).

    edgefw update keygen release                      # release.key, release.pub
    edgefw update build --board rpi4 --key release.key -o v2.edgefw
    edgefw update verify --keys /etc/edgefw/keys --board rpi4 v2.edgefw
    edgefw update install --rootfs DIR | --image sd.img | --host user@ADDR [--port N]  v2.edgefw
    edgefw update recover [--rootfs DIR]
    edgefw update status [--rootfs DIR] [--check]

The board's own half (install into a root, verify, recover, status) is
``firmware.linux.update_cli``, run on a device as ``python -m
firmware.linux update``; this adds building and signing bundles and
installing into an SD-card image or over SSH. ``flash_linux`` is the
Linux half of ``tools/flash.py``.
"""

import argparse
import json
import sys

from edgefw.deploy import bundle as DB
from firmware.linux import bundle as B
from firmware.linux import update as U
from firmware.linux import update_cli as device


def _targets(p):
    """Where else a workstation installs: an SD-card image, a device over SSH."""
    p.add_argument("--image", metavar="IMG", help="install into the root partition of this raw SD-card image (loop mount: needs root)")
    p.add_argument("--host", metavar="USER@ADDR", help="install over SSH")
    p.add_argument("--port", type=int, default=22, metavar="N", help="SSH port (default 22)")
    p.add_argument("--ssh-option", "-o", action="append", default=[], metavar="OPT", help="passed to ssh and scp as -o OPT")
    p.add_argument("--identity", "-i", metavar="FILE", help="SSH private key")
    p.add_argument("--remote-python", default="python3", metavar="PY", help="the device's Python (default python3)")
    p.add_argument("--remote-root", default="/", metavar="DIR", help="over SSH: the root on the device (default /)")


def add_parser(p):
    us = p.add_subparsers(dest="update_cmd", required=True)
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
    b.add_argument("--health", metavar="ARGV_JSON", help="health check argv as JSON (default: the slot's own, python -m firmware.linux health)")
    b.set_defaults(fn=cmd_build)
    i = device.add_install(us)
    _targets(i)
    i.set_defaults(fn=cmd_install)
    device.add_board_commands(us)


def main(a):
    return a.fn(a)


def cmd_keygen(a):
    kid = DB.keygen(a.prefix)
    print("key %s: %s.key (private, keep it off devices), %s.pub (copy to the device's /etc/edgefw/keys/)" % (kid, a.prefix, a.prefix))
    return 0


def cmd_build(a):
    try:
        health = json.loads(a.health) if a.health else None
        version = a.bundle_version or DB.source_version()
        out = a.out or "edgefw-%s-%s.edgefw" % (a.board, version)
        m = DB.build(
            a.board, a.key, out, version=version, config=a.config, model=a.model, migration=a.migration, journal_format=a.journal_format, health=health
        )
    except (B.BundleError, OSError, ValueError) as e:
        print("build failed: %s" % e, file=sys.stderr)
        return 1
    print("wrote %s: edgefw %s for %s, %d files" % (out, m["version"], m["board"], len(m["files"])))
    return 0


def cmd_install(a):
    """Into a root directory as on the board, or an image, or over SSH."""
    n = sum(bool(x) for x in (a.rootfs, a.image, a.host))
    if n > 1:
        print("give one of --rootfs, --image, --host", file=sys.stderr)
        return U.USAGE
    kw = device.install_kw(a)
    if a.host:
        from edgefw.deploy import update_ssh

        return update_ssh.main(a, kw)
    if a.image:
        from edgefw.deploy import image

        return image.install_image(a.image, a.bundle, board=a.board, **kw)
    return device.cmd_install(a)


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
        version = g("version") or DB.source_version()
        path = g("out") or "edgefw-%s-%s.edgefw" % (args.board, version)
        try:
            DB.build(args.board, g("key"), path, version=version, config=g("config"), model=g("model"))
        except (B.BundleError, OSError) as e:
            print("build failed: %s" % e, file=sys.stderr)
            return 1
        print("wrote %s" % path)
        if g("build_only"):
            return 0
    ns = argparse.Namespace(
        bundle=path,
        board=args.board,
        rootfs=g("rootfs"),
        image=g("image"),
        host=g("host"),
        port=g("port", 22) or 22,
        ssh_option=g("ssh_option", []) or [],
        identity=g("identity"),
        remote_python=g("remote_python", "python3") or "python3",
        remote_root=g("remote_root", "/") or "/",
        allow_downgrade=g("allow_downgrade", False),
        timeout=g("timeout", 60.0) or 60.0,
        settle=g("settle", 5.0) or 5.0,
        max_restarts=g("max_restarts", 2),
        add_key=g("add_key", []) or [],
    )
    return cmd_install(ns)
