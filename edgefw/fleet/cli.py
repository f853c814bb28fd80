"""``edgefw fleet``: the command table gives ``add_parser`` an
ArgumentParser to fill and calls ``main`` with what it parsed."""

import json
import os
import sys
import time

from edgefw.fleet import FleetError, broker, ops
from edgefw.fleet.registry import write_atomic
from edgefw.rollout import cli as rollout_cli


def add_parser(parser):
    parser.add_argument("--dir", default=os.environ.get("EDGEFW_FLEET", "fleet"), help="the fleet directory (default $EDGEFW_FLEET or ./fleet)")
    sub = parser.add_subparsers(dest="fleet_cmd", required=True)

    p = sub.add_parser("init", help="create a fleet CA, registry and broker configuration in DIR")
    p.add_argument("root", metavar="DIR")
    p.add_argument("--name", default="edgefw fleet")
    p.add_argument("--broker-host", action="append", help="a name or address devices use for the broker (repeat; default 127.0.0.1 and localhost)")
    p.add_argument("--listen", default="127.0.0.1:8883", help="ADDR:PORT of the broker's TLS listener (default 127.0.0.1:8883)")
    p.add_argument("--cert-days", type=int, default=365, help="validity of device and service certificates")
    p.add_argument("--overlap-days", type=int, default=7, help="how long a rotated-out certificate and seal key stay accepted")
    p.add_argument("--crl-days", type=int, default=30, help="validity of each CRL: run broker-config again well before")
    p.add_argument("--pid-file", help="pid_file for mosquitto (what revoke --reload signals)")
    p.add_argument("--broker-user", help="user mosquitto drops to when started as root")

    p = sub.add_parser("add", help="provision a device")
    p.add_argument("name", metavar="DEVICE")
    p.add_argument("--board", required=True)
    p.add_argument("--label", action="append", metavar="KEY=VALUE")
    p.add_argument("--out", help="credential directory (default DIR/creds/DEVICE)")
    p.add_argument("--csr", metavar="FILE", help="a request made on the device (Linux boards): certify its own key, write no key")
    p.add_argument("--reload", metavar="PIDFILE", help="SIGHUP the broker so the new ACL applies")

    p = sub.add_parser("add-service", help="an identity for ingest or a gateway")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--role", required=True, choices=ops.ROLES)
    p.add_argument("--devices", default="", help="a gateway's devices, comma-separated")
    p.add_argument("--out")
    p.add_argument("--csr", metavar="FILE")
    p.add_argument("--reload", metavar="PIDFILE")

    p = sub.add_parser("revoke", help="revoke a device or service")
    p.add_argument("name")
    p.add_argument("--reason", default="unspecified")
    p.add_argument("--reload", metavar="PIDFILE", help="SIGHUP the broker (pid in PIDFILE) so the new ACL and CRL apply at once")

    p = sub.add_parser("rotate", help="new certificate (and seal key); the old ones stay accepted for the overlap")
    p.add_argument("name")
    p.add_argument("--out")
    p.add_argument("--csr", metavar="FILE")
    p.add_argument("--reload", metavar="PIDFILE")

    p = sub.add_parser("firmware", help="the firmware image hash a device is expected to run (for attestation)")
    p.add_argument("name", metavar="DEVICE")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--sha256", metavar="HEX", help="the image's hash, as the device reports it in its boot event")
    g.add_argument("--image", metavar="PATH", help="take the hash from a Linux bundle (.tar), an `edgefw mpy-build` directory or a manifest.json")
    g.add_argument("--clear", action="store_true")

    sub.add_parser("list", help="devices and services").add_argument("--json", action="store_true")

    p = sub.add_parser("broker-config", help="write mosquitto.conf, acl and crl.pem from the registry")
    p.add_argument("--reload", metavar="PIDFILE")

    # staged, health-gated rollouts (edgefw.rollout): rollout PLAN, status PLAN
    rollout_cli.add_commands(sub)

    # ESP32 updates over the network (edgefw.fleet.ota; docs/updates.md)
    p = sub.add_parser("ota-trust", help="ESP32 image: trust these Ed25519 public keys for updates over the network")
    p.add_argument("image", help="a device image (edgefw mpy-build OUT --board esp32_devkitc)")
    p.add_argument("pub", nargs="+", help="public key files (edgefw update keygen)")
    p = sub.add_parser("ota-layout", help="ESP32 image: lay it out in a filesystem directory as the A/B layout")
    p.add_argument("image")
    p.add_argument("fs", help="the directory to copy to the device's filesystem")
    p = sub.add_parser("ota-bundle", help="ESP32 image: sign its application as a bundle for updates over the network")
    p.add_argument("image")
    p.add_argument("--key", required=True, help="the signer's private key (edgefw update keygen)")
    p.add_argument("--version", required=True, help="the bundle's version, newer than what the devices run")
    p.add_argument("--selftest-s", type=int, help="how long the device's self-test of it may take (default 60)")
    p.add_argument("-o", "--out", required=True)

    p = sub.add_parser("ingest-keys", help="seal keys in the format `edgefw ingest --keys` reads")
    p.add_argument("--out", help="write them here (mode 0600) instead of stdout")
    p.add_argument("--all", action="store_true", help="device -> list of keys still accepted (rotation overlap)")
    return parser


def _listen(s):
    host, sep, port = s.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise FleetError("--listen %r: write it as ADDR:PORT, e.g. 0.0.0.0:8883" % s)
    return host, int(port)


def _reload(pidfile):
    if pidfile:
        pid = broker.reload(pidfile)
        print("broker pid %d: sent SIGHUP (mosquitto re-reads the ACL and CRL)" % pid, file=sys.stderr)


def main(args):
    if args.fleet_cmd in ("rollout", "status"):
        return rollout_cli.main(args)
    try:
        return _run(args)
    except FleetError as e:
        print("edgefw fleet: %s" % e, file=sys.stderr)
        return 2


def _run(args):
    c = args.fleet_cmd
    if c == "init":
        bind, port = _listen(args.listen)
        f = ops.init(
            args.root,
            args.name,
            tuple(args.broker_host or ("127.0.0.1", "localhost")),
            bind,
            port,
            args.cert_days,
            args.overlap_days,
            args.crl_days,
            pid_file=args.pid_file,
            user=args.broker_user,
        )
        print("fleet in %s; broker config %s" % (f.root, os.path.join(f.broker_dir, "mosquitto.conf")))
        return 0
    root = args.dir
    if c == "add":
        _f, out = ops.add_device(root, args.name, args.board, ops.parse_labels(args.label), args.out, args.csr)
        _reload(args.reload)
        print("%s: credentials in %s (copy them to the device once, then delete them here)" % (args.name, out))
    elif c == "add-service":
        devs = [d for d in args.devices.split(",") if d]
        _f, out = ops.add_service(root, args.name, args.role, devs, args.out, args.csr)
        _reload(args.reload)
        print("%s: credentials in %s" % (args.name, out))
    elif c == "revoke":
        t = time.monotonic()
        ops.revoke(root, args.name, args.reason)
        _reload(args.reload)
        print("%s revoked (%.0f ms)" % (args.name, (time.monotonic() - t) * 1000))
    elif c == "rotate":
        _f, out = ops.rotate(root, args.name, args.out, args.csr)
        _reload(args.reload)
        print("%s: new credentials in %s" % (args.name, out))
    elif c == "firmware":
        sha = None if args.clear else (ops.image_hash(args.image) if args.image else args.sha256)
        ops.set_firmware(root, args.name, sha)
        print("%s: expected firmware %s" % (args.name, sha or "none (not checked)"))
    elif c == "list":
        rows = ops.listing(root)
        crl = ops.crl_status(root)
        if args.json:
            print(json.dumps({"identities": rows, "crl": crl}, indent=2, sort_keys=True))
        else:
            for r in rows:
                row = (r["name"], r["kind"], r["what"], r["status"], r["cert_serial"][:12], r["cert_days_left"])
                print("%-24s %-7s %-16s %-8s cert %s (%d days left)" % row)
            print("CRL: %d revoked, valid until %s; run broker-config again before then" % (crl["revoked"], crl["next_update"]))
        if crl["hours_left"] < 24:
            # past it, the broker refuses every client, revoked or not
            print("edgefw fleet: the CRL expires in %.1f h: run `edgefw fleet broker-config --reload PIDFILE`" % crl["hours_left"], file=sys.stderr)
            return 1
    elif c == "broker-config":
        from edgefw.fleet.registry import Fleet

        for p in broker.write_broker_config(Fleet(root).load()):
            print(p)
        _reload(args.reload)
    elif c in ("ota-trust", "ota-layout", "ota-bundle"):
        from edgefw.fleet import ota

        try:
            if c == "ota-trust":
                ota.trust(args.image, args.pub)
                print("%s trusts %s" % (args.image, ", ".join(ota.key_hex(p)[0] for p in args.pub)))
            elif c == "ota-layout":
                st = ota.flash_layout(args.image, args.fs)
                print("%s: A/B layout, %s in %s" % (args.fs, st["version"], st["current"]))
            else:
                m = ota.build_bundle(args.image, args.key, args.out, args.version, selftest_s=args.selftest_s)
                print("%s: %s for %s, %d files, %d bytes" % (args.out, m["version"], m["board"], len(m["files"]), sum(f[1] for f in m["files"])))
        except (OSError, ValueError, KeyError) as e:
            raise FleetError("%s: %s" % (c, e))
    elif c == "ingest-keys":
        text = ops.export_json(ops.ingest_keys(root, args.all))
        if args.out:
            write_atomic(args.out, text, 0o600)
        else:
            sys.stdout.write(text)
    return 0
