"""``edgefw gateway --config FILE``: the site gateway (docs/gateway.md).

Runs until SIGTERM or Ctrl-C (or ``--run-s``), then drains what it can
upstream for ``--drain-s`` seconds; what is left stays in its journal for
the next start. ``--check`` only checks the config.
"""

import json
import signal
import sys
import threading
import time


def add_parser(p):
    p.add_argument("--config", required=True, metavar="FILE", help="the gateway's JSON config (docs/gateway.md)")
    p.add_argument("--check", action="store_true", help="check the config and exit")
    p.add_argument("--run-s", type=float, help="stop after this many seconds")
    p.add_argument("--drain-s", type=float, default=2.0, help="at stop, seconds to send what is left upstream (default 2)")
    p.add_argument("--json", action="store_true", help="print the gateway's stats as JSON at exit")
    p.add_argument("--unit", action="store_true", help="print a systemd unit that runs this config (docs/gateway.md) and exit")
    return p


def main(args):
    from edgefw.gateway import config
    from hal.errors import ConfigError, JournalError

    try:
        cfg = config.load(args.config)
    except ConfigError as e:
        print("edgefw gateway: %s" % e, file=sys.stderr)
        return 2
    if args.check:
        print("edgefw gateway: %s: ok" % args.config, file=sys.stderr)
        return 0
    import os

    from edgefw.gateway import unit

    if args.unit:
        print(unit.render(os.path.abspath(args.config), args.drain_s), end="")
        return 0
    from edgefw.gateway.gateway import Gateway

    try:
        gw = Gateway(cfg).start()
    except JournalError as e:
        # its store cannot be opened: nothing has started
        print("edgefw gateway: %s" % e, file=sys.stderr)
        return 2
    stop = threading.Event()
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_a: stop.set())
    if cfg["site"]["fleet"] is not None:
        from edgefw.fleet import FleetError

        def _reread(*_a):
            # `edgefw fleet revoke|rotate --reload` signals the broker; the
            # same SIGHUP here makes the gateway read the registry again
            try:
                print("edgefw gateway: %s" % gw.reload_fleet(), file=sys.stderr, flush=True)
            except FleetError as e:
                print("edgefw gateway: fleet registry not read again, keeping the keys held: %s" % e, file=sys.stderr, flush=True)

        signal.signal(signal.SIGHUP, _reread)
    sd = unit.Notifier()
    sd.send("READY=1")
    t_end = None if args.run_s is None else time.monotonic() + args.run_s
    while not stop.wait(0.5):
        if gw.rx.fatal or gw.fatal or (t_end is not None and time.monotonic() >= t_end):
            break
        if gw.alive():
            sd.send("WATCHDOG=1")
    sd.send("STOPPING=1")
    left = gw.stop(args.drain_s)
    sd.close()
    if args.json:
        s = gw.stats()
        s["left"] = left
        print(json.dumps(s, default=repr))
    return 1 if gw.rx.fatal or gw.fatal else 0


if __name__ == "__main__":
    import argparse

    sys.exit(main(add_parser(argparse.ArgumentParser(prog="edgefw gateway")).parse_args()))
