"""``update``, on the board: install a signed bundle A/B, check one, finish
or undo an interrupted update, show the slots (CPython only).

    python -m firmware.linux update install v2.edgefw [--rootfs DIR]
    python -m firmware.linux update verify --keys /etc/edgefw/keys v2.edgefw
    python -m firmware.linux update recover [--rootfs DIR]
    python -m firmware.linux update status [--rootfs DIR] [--check]

It needs only ``firmware``, ``hal``, ``boards`` and pycryptodome: what a
board holds. A workstation's ``edgefw update`` adds building, signing and
installing over SSH or into an SD-card image (``edgefw.deploy.update``).
"""

import json
import sys

from firmware.linux import bundle as B
from firmware.linux import update as U


def add_install_options(p):
    p.add_argument("--allow-downgrade", action="store_true", help="install a version older than the running one")
    p.add_argument("--timeout", type=float, default=60.0, metavar="S", help="seconds the new slot has to report READY (default 60)")
    p.add_argument("--settle", type=float, default=5.0, metavar="S", help="seconds it must then stay up before commit (default 5)")
    p.add_argument("--max-restarts", type=int, default=2, metavar="N", help="restarts before READY that count as a crash loop (default 2)")
    p.add_argument("--add-key", action="append", default=[], metavar="PUB", help="trust this public key on the device first (first install)")


def install_kw(a):
    return dict(allow_downgrade=a.allow_downgrade, timeout=a.timeout, settle=a.settle, max_restarts=a.max_restarts, add_keys=a.add_key)


def add_install(us):
    i = us.add_parser("install", help="verify and install a bundle into the free slot, commit when healthy")
    i.add_argument("bundle")
    i.add_argument("--board", metavar="NAME", help="this device's board (default: etc/edgefw/board, EDGEFW_BOARD, detection)")
    i.add_argument("--rootfs", metavar="DIR", help="install into this root filesystem directory (default /)")
    add_install_options(i)
    i.set_defaults(fn=cmd_install)
    return i


def add_board_commands(us):
    """verify, recover and status: the same on a board and a workstation."""
    v = us.add_parser("verify", help="check a bundle without changing anything")
    v.add_argument("bundle")
    v.add_argument("--keys", default="/etc/edgefw/keys", metavar="DIR", help="trusted public keys (default /etc/edgefw/keys)")
    v.add_argument("--board", metavar="NAME")
    v.add_argument("--running", metavar="VERSION", help="refuse an older version than this")
    v.add_argument("--allow-downgrade", action="store_true")
    v.set_defaults(fn=cmd_verify)
    r = us.add_parser("recover", help="finish or undo an interrupted update (run at boot)")
    r.add_argument("--rootfs", default="/", metavar="DIR")
    r.set_defaults(fn=lambda a: U.recover(a.rootfs))
    s = us.add_parser("status", help="slot states and the last result, as JSON")
    s.add_argument("--rootfs", default="/", metavar="DIR")
    s.add_argument("--check", action="store_true", help="exit 1 when the root is inconsistent")
    s.set_defaults(fn=cmd_status)


def add_parser(p):
    us = p.add_subparsers(dest="update_cmd", required=True)
    add_install(us)
    add_board_commands(us)


def main(a):
    return a.fn(a)


def cmd_verify(a):
    try:
        m = B.verify(a.bundle, a.keys, a.board, a.running, a.allow_downgrade)
    except B.BundleError as e:
        print("refused: %s" % e, file=sys.stderr)
        return 1
    print("ok: edgefw %s for %s, %d files" % (m["version"], m["board"], len(m["files"])))
    return 0


def cmd_install(a):
    return U.install(a.rootfs or "/", a.bundle, board=a.board, **install_kw(a))


def cmd_status(a):
    st = U.load_status(U.Layout(a.rootfs))
    bad = U.check_root(a.rootfs)
    st["problems"] = bad
    print(json.dumps(st, indent=1, sort_keys=True))
    return 1 if a.check and bad else 0
