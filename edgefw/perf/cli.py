"""Benchmarks: figures measured side by side in one run, with the peer
each is compared with. Not tests: the numbers depend on the machine.

    edgefw bench interlock [--trials N] [--load N] [--rt off|on|both] [--priority P] [--json]
    edgefw bench store [--json]
    edgefw bench forward [--backlog N] [--json]
    edgefw bench infer [--json]
    edgefw bench ingest [--devices N] [--workers K] [--rate R] [--json]
"""

import json
import subprocess
import sys

from edgefw.emul import micropython
from edgefw.perf.load import Hogs, realtime, rt_preexec
from edgefw.util import ROOT


def _mp_latency(period_ms, trials, stalled, rt_priority=0):
    if micropython.executable() is None:
        return {"error": micropython.MISSING}
    p = subprocess.run(
        micropython.argv(["sim/latency.py", str(period_ms), str(trials), "stalled" if stalled else "unstalled"], "4M"),
        cwd=ROOT,
        env=micropython.env(),
        capture_output=True,
        text=True,
        timeout=600,
        preexec_fn=rt_preexec(rt_priority),
    )
    if p.returncode != 0:
        return {"error": p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "exit %d" % p.returncode}
    return json.loads(p.stdout.strip().splitlines()[-1])


def bench_interlock(trials=200, progress=None, load=0, rt="off", priority=80):
    """``load``: that many CPU-bound processes run beside the loop for the
    whole benchmark. ``rt``: every case without (``off``), with (``on``)
    or both ways; with, the loop's thread runs SCHED_FIFO at ``priority``
    with its memory locked (firmware/linux/rt.py) and cases are named ``…+rt``."""
    from sim.latency import measure

    def cases(p):
        return [
            ("cpython_100hz", lambda: measure(10, trials, False)),
            ("cpython_100hz_stalled", lambda: measure(10, trials, True)),
            ("cpython_1khz", lambda: measure(1, trials, False)),
            ("cpython_1khz_stalled", lambda: measure(1, trials, True)),
            ("cpython_1khz_stalled_thread", lambda: measure(1, trials, True, mode="thread")),
            ("micropython_100hz", lambda: _mp_latency(10, trials, False, p)),
            ("micropython_100hz_stalled", lambda: _mp_latency(10, trials, True, p)),
        ]

    out = {}
    modes = {"off": (0,), "on": (priority,), "both": (0, priority)}[rt]
    with Hogs(load):
        for p in modes:
            for name, fn in cases(p):
                label = name + ("+rt" if p else "")
                if progress:
                    progress("running %s (%d trials, load %d)..." % (label, trials, load))
                try:
                    with realtime(p if name.startswith("cpython") else 0):
                        r = fn()
                except OSError as e:
                    r = {"error": str(e)}
                out[label] = {k: r.get(k) for k in ("p50_ms", "p99_ms", "max_ms", "trials", "missed", "overruns", "error") if r.get(k) is not None}
    sfx = "+rt" if rt == "on" else ""  # both: the ratios are of the cases without
    u, s = out["cpython_1khz" + sfx].get("p99_ms"), out["cpython_1khz_stalled" + sfx].get("p99_ms")
    t = out["cpython_1khz_stalled_thread" + sfx].get("p99_ms")
    return {
        "load": load,
        "rt": rt,
        "cases": out,
        "stalled_vs_unstalled_p99": round(s / u, 3) if u and s else None,
        "thread_stalled_vs_unstalled_p99": round(t / u, 3) if u and t else None,
        "targets": {"p99_ms_100hz": 10.5, "p99_ms_1khz": 1.5, "stalled_vs_unstalled_p99": 1.2},
    }


def print_interlock(res):
    print("trip latency, onset in the sensor -> permit low (real time, sim chips); load %s, real-time %s" % (res.get("load", 0), res.get("rt", "off")))
    print("%-30s %8s %8s %8s %7s" % ("case", "p50 ms", "p99 ms", "max ms", "trials"))
    for name, r in res["cases"].items():
        if "error" in r:
            print("%-30s %s" % (name, r["error"]))
            continue
        print("%-30s %8.3f %8.3f %8.3f %7d" % (name, r["p50_ms"], r["p99_ms"], r["max_ms"], r["trials"]))
    print("1 kHz p99, stalled model (process) vs none: %sx (target <= 1.2)" % res["stalled_vs_unstalled_p99"])
    print("1 kHz p99, stalled model (thread)  vs none: %sx (the peer: why the model runs in a process)" % res["thread_stalled_vs_unstalled_p99"])


_JSON = "print the results as one JSON object on the last line"


def add_parser(p):
    sub = p.add_subparsers(dest="what", required=True)
    i = sub.add_parser("interlock", help="trip latency at 100 Hz and 1 kHz, with and without a stalled model")
    i.add_argument("--trials", type=int, default=200, help="trip measurements per case (default 200)")
    i.add_argument("--load", type=int, default=0, metavar="N", help="N CPU-bound processes beside the loop for the whole run (default 0)")
    i.add_argument("--rt", choices=("off", "on", "both"), default="off", help="run the cases without, with, or both without and with SCHED_FIFO + mlockall")
    i.add_argument("--priority", type=int, default=80, help="SCHED_FIFO priority with --rt (default 80)")
    i.add_argument("--json", action="store_true", help=_JSON)
    st = sub.add_parser("store", help="journal appends vs persist-queue, litequeue and raw fsync")
    st.add_argument("--records", type=int, default=20000, help="records appended per round and store (default 20000)")
    st.add_argument("--sync-records", type=int, default=1000, help="records for the stores that sync every record (default 1000)")
    st.add_argument("--json", action="store_true", help=_JSON)
    fw = sub.add_parser("forward", help="journal -> mosquitto -> ingest (committed, receipted, deleted) vs paho one message per record; 1M backlog drain")
    fw.add_argument("--records", type=int, default=20000, help="records sent journal -> ingest (default 20000)")
    fw.add_argument("--paho-records", type=int, default=5000, help="records paho publishes one message each, the peer (default 5000)")
    fw.add_argument("--backlog", type=int, default=1000000, help="records in the backlog whose drain is timed (default 1000000)")
    fw.add_argument("--runs", type=int, default=5, help="times each measurement is made; median, min and max are printed (default 5)")
    fw.add_argument("--json", action="store_true", help=_JSON)
    inf = sub.add_parser("infer", help="median invoke time per model and backend; the stage's overhead around invoke")
    inf.add_argument("--n", type=int, default=200, help="invokes per model and backend (default 200)")
    inf.add_argument("--json", action="store_true", help=_JSON)
    gw = sub.add_parser("gateway", help="a site of N nodes through a gateway, bytes upstream vs a bridge forwarding the raw batches")
    from edgefw.gateway.bench import add_arguments as gateway_arguments

    gateway_arguments(gw)
    ig = sub.add_parser("ingest", help="N simulated devices -> mosquitto -> K ingest workers -> PostgreSQL (and SQLite), vs naive paho and COPY")
    ig.add_argument("--devices", type=int, default=20, help="simulated devices (real uplink, sealing and receipts; default 20)")
    ig.add_argument("--records", type=int, default=10000, help="records each device sends per run (default 10000)")
    ig.add_argument("--workers", type=int, default=2, help="ingest workers on PostgreSQL, one shared subscription (default 2)")
    ig.add_argument("--repeat", type=int, default=3, help="runs of each case; median and spread reported (default 3)")
    ig.add_argument("--naive-records", type=int, default=3000, help="records for the naive peer, one message and one commit each (default 3000)")
    ig.add_argument("--pg-url", help="use this PostgreSQL instead of a private server (its records and record_keys are TRUNCATED, a schema peer is made and dropped)")
    ig.add_argument("--rate", type=float, default=0, help="records/s each device measures and sends (default 0: a backlog, sent as fast as receipts allow)")
    ig.add_argument("--batch-records", type=int, default=200, help="records in a device's batch at most (its uplink's batch_records; default 200)")
    ig.add_argument("--window", type=int, default=4, help="batches a device has in flight at most (its uplink's window; default 4)")
    ig.add_argument("--pace-ms", type=int, default=0, help="run ingest with --pace-ms MS: receipts hold devices back while the fleet offers more than is committed (default 0: off)")
    ig.add_argument("--no-sqlite", action="store_true", help="skip the SQLite runs")
    ig.add_argument("--json", action="store_true", help=_JSON)


def main(a):
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if a.what == "gateway":
        from edgefw.gateway.bench import main as gateway_main

        return gateway_main(a)
    if a.what == "ingest":
        from edgefw.perf.ingest import bench_ingest, print_ingest

        res = bench_ingest(a.devices, a.records, a.workers, a.repeat, a.naive_records, a.pg_url, not a.no_sqlite, a.rate, progress=say, batch=a.batch_records, window=a.window, pace_ms=a.pace_ms)
        print_ingest(res)
        if a.json:
            print(json.dumps(res))
        return 0
    if a.what == "infer":
        from edgefw.perf.infer import bench_infer

        res = bench_infer(a.n, progress=say)
        for model, row in res["models"].items():
            print(model)
            for k, v in row.items():
                if k == "overhead_vs_bare_invoke":
                    for b, o in v.items():
                        print(
                            "  overhead around invoke, %-7s %8.2f us vs bare %8.2f us = %.3fx%s"
                            % (b, o["wrapped_us"], o["bare_us"], o["ratio"], " (target <= 1.3)" if b == "micro" else "")
                        )
                elif k == "micro_kernels":
                    print("  micro interpreter's own choice of kernels: %s" % v)
                elif k == "micro_arena_bytes":
                    print("  micro interpreter's arena: %d bytes" % v)
                elif k == "overhead_vs_bare_invoke_ratio":
                    continue
                elif "error" in v:
                    print("  %-24s %s" % (k, v["error"][:100]))
                elif k == "instructions_per_invoke":
                    print(
                        "  instructions per invoke: unix port pure %d, native %d (%.1fx fewer), tflite-micro %s"
                        % (v["unix_pure"], v["unix_native"], v["pure_over_native"], v.get("tflm", "-"))
                    )
                elif "alloc_bytes_per_invoke" in v:
                    print("  %-24s %12.1f us median invoke, %d bytes allocated per invoke" % (k, v["median_us"], v["alloc_bytes_per_invoke"]))
                else:
                    print("  %-24s %12.1f us median invoke" % (k, v["median_us"]))
        if a.json:
            print(json.dumps(res))
        return 0
    if a.what == "store":
        from edgefw.perf.store import bench_store

        res = bench_store(a.records, a.sync_records, progress=say)
        print("group commit: fsync every %d records or %d ms" % (res["group_commit"]["records"], res["group_commit"]["ms"]))
        for k, v in res["records_per_s"].items():
            print("%-24s %12.1f records/s" % (k, v))
        for k, v in res["ratios"].items():
            rr = res["ratios_per_round"].get(k)
            over = "; per round %.2fx median (min %.2fx, max %.2fx)" % (rr["median"], rr["min"], rr["max"]) if rr else ""
            print("%-36s %8.3fx (target %s)%s" % (k, v, res["targets"].get(k, "-"), over))
        if a.json:
            print(json.dumps(res))
        return 0
    if a.what == "forward":
        from edgefw.perf.store import bench_forward

        if a.runs < 1:
            print("edgefw bench forward: --runs needs at least 1, got %d" % a.runs, file=sys.stderr)
            return 2
        res = bench_forward(a.records, a.paho_records, a.backlog, progress=say, runs=a.runs)

        def spread(v, fmt):
            return (fmt + " median (min " + fmt + ", max " + fmt + ")") % (v["median"], v["min"], v["max"])

        print("%d runs of each measurement" % res["runs"])
        for k, v in res["end_to_end_records_per_s"].items():
            # ours: stored by ingest, receipted, deleted on the device; the
            # peer: stored by its subscriber
            print("%-16s %s records/s stored in SQLite%s" % (k, spread(v, "%.1f"), ", receipted and deleted" if k == "ours" else ""))
        print("end to end vs paho per record: %s (target >= 25)" % spread(res["ratios"]["end_to_end_vs_paho_per_record"], "%.2fx"))
        if "backlog_1m_drain_s" in res:
            print(
                "1,000,000-record backlog drained and receipted in %s (target < 20; %d records measured)"
                % (spread(res["backlog_1m_drain_s"], "%.2f s"), res["backlog_records"])
            )
        if a.json:
            print(json.dumps(res))
        return 0
    if a.what == "interlock":
        res = bench_interlock(a.trials, progress=lambda m: print(m, file=sys.stderr, flush=True), load=a.load, rt=a.rt, priority=a.priority)
        print_interlock(res)
        if a.json:
            print(json.dumps(res))
    return 0
