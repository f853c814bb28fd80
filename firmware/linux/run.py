"""``run``: the firmware on this machine's board (CPython), with a live
status line, metrics, the uplink in a thread, real-time settings and, on
a Linux board, the self-test and the systemd watchdog.

    python -m firmware.linux run --board rpi4 --config /etc/edgefw/edgefw.json
    edgefw run                      # on a workstation: the sim board

With no options it runs on the board found (the sim board on a
workstation) with the shipped config and scenario, in real time, until
the scenario ends or Ctrl-C. ``--cycles`` or ``--json`` run in virtual
time as fast as the machine goes, unless ``--speed`` says otherwise.
"""

import argparse
import asyncio
import atexit
import json
import os
import shutil
import signal
import sys
import time

from firmware.store.summary import LOSSES, REPAIRS, summary
from hal.errors import EdgefwError


def short_labels(channels):
    """Channel labels for the status line: the quantity alone
    (``temperature_c``), the whole name where two sensors share one."""
    leaves = [c.split(".", 1)[-1] for c in channels]
    return [leaf if leaves.count(leaf) == 1 else c for c, leaf in zip(channels, leaves, strict=True)]


class Status:
    """The live status line; refreshed at most every ``every_s`` seconds.
    What matters most comes first, so a narrow terminal cuts readings,
    never the interlock's state, the journal or the uplink."""

    def __init__(self, stream, every_s=0.25, uplink=None):
        self.stream = stream
        self.tty = stream.isatty()
        self.every_s = every_s
        self.uplink = uplink
        self.t0 = time.monotonic()
        self.last = 0.0
        self.last_cycles = 0
        self.labels = None

    def line(self, fw, rate):
        parts, state, causes = fw.status_line()
        if self.labels is None:
            self.labels = short_labels(fw.channels)
        j = fw.journal
        head = "t=%.2fs %.0f cycles/s %s  journal %d rec %d kB" % (
            fw.slot * fw.period_us / 1e6,
            rate,
            state + ("(" + causes + ")" if causes else ""),
            fw.recorder.appended,
            (j.size if j is not None else 0) // 1024,
        )
        if self.uplink is not None:
            head += "  uplink " + self.uplink.state()
        # parts: "anomaly=…" first when inference is on, then channel=value
        vals = [p for p in parts if p.split("=", 1)[0] not in fw.channels]
        vals += ["%s=%s" % (lab, p.split("=", 1)[1]) for lab, p in zip(self.labels, [p for p in parts if p.split("=", 1)[0] in fw.channels], strict=False)]
        return head + "  " + " ".join(vals)

    def __call__(self, fw):
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        rate = (fw.cycles - self.last_cycles) / (now - self.last) if self.last else 0.0
        self.last, self.last_cycles = now, fw.cycles
        line = self.line(fw, rate)
        if self.tty:
            cols = shutil.get_terminal_size((120, 20)).columns
            self.stream.write("\r\x1b[K" + line[: cols - 1])
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self):
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _count(text):
    """--cycles: a whole number of cycles, at least 1."""
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError("expected a whole number of cycles, 1 or more, got %r" % text)
    return n


def _seconds(text):
    """--speed, --drain-s: a finite number, 0 or more."""
    try:
        x = float(text)
    except ValueError:
        x = -1.0
    if not 0 <= x < float("inf"):
        raise argparse.ArgumentTypeError("expected a number 0 or more, got %r" % text)
    return x


def _broker(text):
    """--broker: HOST:PORT, checked by the config's own rule."""
    from firmware.config import parse_broker

    try:
        parse_broker(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError("expected %s, got %r" % (e, text))
    return text


class Terminated(BaseException):
    """SIGTERM, raised where the loop is, so its finally runs."""


def _raise_terminated(signum, frame):
    raise Terminated()


def _print_summary(s, as_json):
    if as_json:
        print(json.dumps(s))
        return
    print(
        "cycles %d, overruns %d, records %d (%d B journal), permit %s"
        % (s["cycles"], s["overruns"], s["records"], s["journal_bytes"], "on" if s["permit"] else "off")
    )
    print("resets %d accepted, %d refused" % (s.get("resets", 0), s.get("refused_resets", 0)))
    inf = s.get("inference")
    if inf:
        score = "none yet" if inf["score"] is None else "%.2f" % inf["score"]
        arena = "" if inf.get("arena_bytes") is None else ", arena %d B" % inf["arena_bytes"]
        print(
            "anomaly score %s after %d windows (%s backend%s; %d dropped, %d errors)"
            % (score, inf["windows"], inf["backend"], arena, inf["dropped"], inf["errors"])
        )
    for t in s["trips"]:
        print("  trip at t=%.3f s: %s" % (t["t_us"] / 1e6, t["cause"]))
    st = s.get("store") or {}
    said = ["%d %s" % (st[k], text) for k, text in LOSSES + REPAIRS if st.get(k)]
    if said:
        print("journal: " + "; ".join(said))
    up = s.get("uplink")
    if up:
        line = "uplink: %s; %d records %s in %d batches" % (
            up["state"],
            up["records"],
            "receipted" if up.get("receipts") else "acknowledged",
            up["batches"],
        )
        if up.get("resent"):
            line += ", %d sent again" % up["resent"]
        if up.get("rejected") or up.get("last_rejection"):
            line += "; receiver refused %d records: %s" % (up.get("rejected", 0), up.get("last_rejection"))
        if up.get("last_error") and not up.get("connected"):
            line += "; last error: %s" % up["last_error"]
        print(line)
    if s.get("journal_pending"):
        print("journal: %d records left pending; they are sent at the next start" % s["journal_pending"])


def start_forwarder(fw, args):
    """The uplink beside the loop, from the config's ``uplink`` section
    (``--broker`` overrides its broker and enables it)."""
    from firmware.config import load_config
    from firmware.linux.forwarder import Forwarder
    from firmware.uplink.uplink import check_config, from_config, make_client, tls_of

    cfg = load_config(args.config)
    if args.broker:
        cfg["uplink"]["broker"] = args.broker
    host, port = check_config(cfg, args.config or "defaults")
    u = cfg["uplink"]
    tls = tls_of(u)
    client = make_client(host, port, cfg["device_id"], u["username"], u["password"], tls)
    fwd = Forwarder(fw.journal, from_config(fw.journal, client, cfg["device_id"], u), interlock=fw.interlock)
    fwd.start()
    return fwd


def add_parser(p):
    p.add_argument("--board", metavar="NAME", help="board name (default: EDGEFW_BOARD, detection, then sim)")
    p.add_argument("--config", metavar="FILE", help="JSON config file laid over the defaults (docs/config.md)")
    p.add_argument("--scenario", metavar="FILE", help="sim scenario file (docs/scenarios.md)")
    p.add_argument("--cycles", type=_count, metavar="N", help="stop after N cycles, N >= 1 (default: end of scenario)")
    p.add_argument("--journal", metavar="DIR", help="journal directory (default: record.journal from the config)")
    p.add_argument("--json", action="store_true", help="print one JSON summary as the last line")
    p.add_argument("--speed", type=_seconds, metavar="X", help="virtual time per wall second on the sim board, >= 0; 0 = as fast as possible")
    p.add_argument("--broker", type=_broker, metavar="HOST:PORT", help="forward the journal to this MQTT broker (the config's uplink section, enabled)")
    p.add_argument(
        "--drain-s",
        type=_seconds,
        default=2.0,
        metavar="S",
        help="at exit, sync the journal and try this long to send what is left and have it receipted (default 2)",
    )
    p.add_argument("--bench", metavar="FILE", help="sim board: publish the relay state to FILE for other processes (sim/bench.py)")
    p.add_argument("--metrics-textfile", metavar="FILE", help="write Prometheus metrics to FILE every second (node_exporter's textfile collector)")
    p.add_argument("--rt-priority", type=int, default=0, metavar="P", help="run the loop's thread SCHED_FIFO at P (1-99) with mlockall; 0 = off (default)")
    p.add_argument("--metrics-port", type=int, metavar="PORT", help="serve Prometheus metrics on http://127.0.0.1:PORT/metrics (0: any free port)")


def image_hash():
    """The running image's hash (``firmware.attest``): the manifest of the
    A/B slot this code runs from (``<slot>/app/firmware/linux``, beside
    ``<slot>/manifest.json``), or None outside an installed slot."""
    from firmware.attest import manifest_hash

    app = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    if os.path.basename(app) != "app":
        return None
    return manifest_hash(os.path.join(os.path.dirname(app), "manifest.json"))


def main(args):
    from firmware.app import build

    fast = args.cycles is not None or args.json
    speed = args.speed if args.speed is not None else (0.0 if fast else 1.0)
    try:
        fw, sc = build(args.board, args.config, args.scenario, args.journal, speed=speed, fw=image_hash())
    except (EdgefwError, OSError) as e:
        print("edgefw: %s" % e, file=sys.stderr)
        return 2
    except ImportError as e:
        # a board's backend that is not here: the simulated board (no board
        # was detected, and this machine holds only what a board runs), or
        # the Linux backend's packages
        print("edgefw: the board's backend cannot be loaded here (%s); name the board with --board or /etc/edgefw/board" % e, file=sys.stderr)
        return 2
    if args.bench:
        if fw.hw.board.FAMILY != "sim":
            print("edgefw: --bench is for the sim board", file=sys.stderr)
            return 2
        fw.hw.publish_relay(args.bench, hold_ms=max(3 * fw.period_us // 1000, 20))
    fwd = None
    if args.broker or fw.uplink_cfg[1]["enabled"]:
        try:
            fwd = start_forwarder(fw, args)
        except (EdgefwError, OSError, ValueError) as e:
            print("edgefw: uplink: %s" % e, file=sys.stderr)
            return 2
    until = sc["duration_us"] if (sc and args.cycles is None) else None
    status = Status(sys.stderr, uplink=fwd.up if fwd is not None else None) if not args.json else None
    interrupted = None
    # SIGTERM (systemd stop, kill) unwinds like Ctrl-C: through fw.run's
    # finally, which drives the permit low first; atexit covers any other
    # orderly interpreter exit
    signal.signal(signal.SIGTERM, _raise_terminated)
    atexit.register(fw.safe)
    hooks = metrics = None
    if args.metrics_textfile or args.metrics_port is not None:
        from firmware.linux.metrics import Metrics, MetricsHook

        try:
            metrics = Metrics(fw, textfile=args.metrics_textfile, port=args.metrics_port, uplink=fwd.up if fwd is not None else None)
        except OSError as e:
            print("edgefw: metrics: %s" % e, file=sys.stderr)
            return 2
        if args.metrics_port is not None:
            print("edgefw: metrics on http://127.0.0.1:%d/metrics" % metrics.port, file=sys.stderr, flush=True)
        hooks = MetricsHook(metrics, status)
    if fw.hw.board.FAMILY == "linux":
        from firmware.linux.selftest import LinuxRun

        hooks = LinuxRun(fw, status, metrics)
    if args.rt_priority:
        from firmware.linux.rt import enable

        try:
            rt = enable(args.rt_priority)
        except OSError as e:
            print("edgefw: real time: %s" % e, file=sys.stderr)
            return 2
        print("edgefw: loop thread %(policy)s priority %(priority)d, memory locked" % rt, file=sys.stderr)
    t0 = time.perf_counter()
    try:
        asyncio.run(fw.run(cycles=args.cycles, until_us=until, on_status=hooks or status, status_every=1 if hooks else 25))
    except KeyboardInterrupt:
        interrupted = "Ctrl-C"
    except Terminated:
        interrupted = "SIGTERM"
    except EdgefwError as e:
        # the self-test or the hardware: the permit is low (fw.run's finally)
        print("edgefw: %s" % e, file=sys.stderr)
        if hooks is not None:
            hooks.stop(orderly=True)
        return 1
    wall = time.perf_counter() - t0
    if hooks is not None:
        hooks.stop(orderly=True)
    pending = None
    if fwd is not None:
        # what the loop recorded last is synced and goes out (with its
        # receipts) before the process does, for at most --drain-s
        pending = fwd.stop(drain_s=args.drain_s)
    fw.journal.close()
    if status:
        status.done()
    s = fw.summary()
    s["target"] = "cpython"
    s["board"] = fw.hw.board.NAME
    s["wall_s"] = round(wall, 3)
    s["cycles_per_s"] = round(fw.cycles / wall, 1) if wall > 0 else None
    s["store"] = summary(fw.journal, fw.recorder.lost)
    if fwd is not None:
        s["uplink"] = fwd.up.stats()
        s["journal_pending"] = pending
    if interrupted:
        s["interrupted"] = interrupted
        print("edgefw: stopped by %s; permit off" % interrupted, file=sys.stderr)
    _print_summary(s, args.json)
    if sc and sc["expect"] is not None and not interrupted:
        # a scenario with an expect block is a test: its verdict is the exit code
        # the board that played the scenario judges it (the sim backend)
        failures = fw.hw.check_expect(sc["expect"], s["trips"], fw.period_us, args.scenario or "scenario", sys.stderr.write)
        return 1 if failures else 0
    return {"Ctrl-C": 130, "SIGTERM": 143}.get(interrupted, 0)
