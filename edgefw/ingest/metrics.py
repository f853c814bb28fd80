"""Prometheus text exposition for ``edgefw ingest --metrics-port``.

    edgefw_ingest_batches_committed_total
    edgefw_ingest_records_committed_total
    edgefw_ingest_duplicates_dropped_total
    edgefw_ingest_refused_total{reason}       tampered, malformed, unknown_device, replayed, revoked
    edgefw_ingest_db_errors_total{reason}     unavailable, auth, read_only, disk_full, server, data
    edgefw_ingest_db_up                       1 after a commit, 0 after a failed one
    edgefw_ingest_pending_batches             verified, waiting for the database
    edgefw_ingest_shed_batches_total          dropped unreceipted (pending full); devices resend
    edgefw_ingest_receipt_latency_seconds     histogram: batch arrived -> receipt published
    edgefw_ingest_pace_rate_records_per_second   with --pace-ms: the rate the schedule admits
    edgefw_ingest_held_receipts_total         with --pace-ms: receipts that held their device
    edgefw_ingest_hold_seconds_total          with --pace-ms: those holds, summed
    edgefw_ingest_device_last_seen_timestamp_seconds{device}
    edgefw_ingest_device_last_seq{device}     highest seq committed from it
    edgefw_ingest_device_clock_offset_seconds{device}  ingest's UTC minus the device's at send
    edgefw_ingest_boots_attested_total{result}   boot events naming their image: match,
                                              mismatch, unchecked (the registry names none)
    edgefw_ingest_device_firmware_match{device}  1 if the device's last boot ran the image the
                                              registry expects, 0 if not (``edgefw fleet firmware``)

Batches do not carry the device's backlog (pending records): a batch has
its sequence range, run id and clocks only, so no backlog metric is
offered; the gap between a device's last seq here and its own ``pending``
count (``edgefw run``'s summary) is where to look.
"""

import bisect
import threading

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 30.0)


def _esc(v):
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    def __init__(self):
        self.lock = threading.Lock()
        self.db_errors = {}
        self.db_up = None
        self.pending = 0
        self.shed = 0
        self.last_error = None
        self.hist = [0] * (len(BUCKETS) + 1)
        self.lat_sum = 0.0
        self.lat_n = 0
        self.devices = {}  # device -> [last seen, last seq, clock offset]
        self.boots = {"match": 0, "mismatch": 0, "unchecked": 0}
        self.fw = {}  # device -> [seq of its last boot event seen, 1/0 or None]

    def db_failed(self, reason, msg):
        with self.lock:
            self.db_errors[reason] = self.db_errors.get(reason, 0) + 1
            self.db_up = 0
            self.last_error = "%s: %s" % (reason, msg)

    def db_ok(self):
        self.db_up = 1

    def receipt(self, seconds):
        with self.lock:
            self.hist[bisect.bisect_left(BUCKETS, seconds)] += 1
            self.lat_sum += seconds
            self.lat_n += 1

    def seen(self, batches):
        with self.lock:
            for b in batches:
                d = self.devices.setdefault(b.dev, [0.0, None, None])
                d[0] = max(d[0], b.received)
                if isinstance(b.last, int) and (d[1] is None or b.last > d[1]):
                    d[1] = b.last
                if isinstance(b.utc_ms, int):
                    d[2] = b.received - b.utc_ms / 1000.0

    def attested(self, dev, seq, match):
        """A boot event's attestation, once per event (workers and resends
        may show one again). True if it is news."""
        with self.lock:
            d = self.fw.setdefault(dev, [0, None])
            if seq <= d[0]:
                return False
            d[0] = seq
            d[1] = None if match is None else int(match)
            self.boots["unchecked" if match is None else "match" if match else "mismatch"] += 1
            return True

    def render(self, counts, pace=None):
        out = []

        def metric(name, kind, help_, samples):
            out.append("# HELP %s %s" % (name, help_))
            out.append("# TYPE %s %s" % (name, kind))
            for labels, v in samples:
                lab = "{%s}" % ",".join('%s="%s"' % (k, _esc(x)) for k, x in labels) if labels else ""
                out.append("%s%s %s" % (name, lab, repr(float(v)) if isinstance(v, float) else v))

        with self.lock:
            metric("edgefw_ingest_batches_committed_total", "counter", "Batches committed (or found committed) and receipted.", [((), counts["batches"])])
            metric("edgefw_ingest_records_committed_total", "counter", "Records newly committed.", [((), counts["records"])])
            metric("edgefw_ingest_duplicates_dropped_total", "counter", "Records already in the database, dropped.", [((), counts["duplicates"])])
            metric(
                "edgefw_ingest_refused_total",
                "counter",
                "Batches refused or found replayed, by reason.",
                [((("reason", k),), counts[k]) for k in ("tampered", "malformed", "unknown_device", "replayed", "revoked")],
            )
            metric("edgefw_ingest_receipts_total", "counter", "Positive receipts published.", [((), counts["receipts"])])
            metric("edgefw_ingest_refusals_total", "counter", "Negative receipts published.", [((), counts["refusals"])])
            metric(
                "edgefw_ingest_db_errors_total",
                "counter",
                "Commits that failed, by reason; their batches wait unreceipted.",
                [
                    ((("reason", k),), self.db_errors.get(k, 0))
                    for k in sorted(set(self.db_errors) | {"unavailable", "auth", "read_only", "disk_full", "server", "data"})
                ],
            )
            if self.db_up is not None:
                metric("edgefw_ingest_db_up", "gauge", "1 if the last commit succeeded, 0 if it failed.", [((), self.db_up)])
            metric("edgefw_ingest_pending_batches", "gauge", "Verified batches waiting for the database.", [((), self.pending)])
            metric(
                "edgefw_ingest_shed_batches_total",
                "counter",
                "Batches dropped unreceipted while too many waited; their devices send them again.",
                [((), self.shed)],
            )
            if pace is not None:
                # --pace-ms: what the schedule admits, and how much waiting
                # it has asked of the devices
                metric("edgefw_ingest_pace_rate_records_per_second", "gauge", "Records/s the pacing schedule admits while devices offer more.", [((), float(round(pace.rate, 1)))])
                metric("edgefw_ingest_held_receipts_total", "counter", "Receipts that told their device to hold its next batch.", [((), pace.held)])
                metric("edgefw_ingest_hold_seconds_total", "counter", "Holds given, summed: time the backlog was asked to wait on the devices.", [((), round(pace.held_s, 3))])
            name = "edgefw_ingest_receipt_latency_seconds"
            out.append("# HELP %s Batch arrival at ingest to its receipt published." % name)
            out.append("# TYPE %s histogram" % name)
            acc = 0
            for le, n in zip(BUCKETS + (float("inf"),), self.hist, strict=True):
                acc += n
                out.append('%s_bucket{le="%s"} %d' % (name, "+Inf" if le == float("inf") else repr(le), acc))
            out.append("%s_sum %r" % (name, self.lat_sum))
            out.append("%s_count %d" % (name, self.lat_n))
            devs = sorted(self.devices.items())
            metric(
                "edgefw_ingest_device_last_seen_timestamp_seconds",
                "gauge",
                "When a batch from the device last arrived (UTC).",
                [((("device", d),), v[0]) for d, v in devs],
            )
            metric(
                "edgefw_ingest_device_last_seq",
                "gauge",
                "Highest sequence number committed from the device.",
                [((("device", d),), v[1]) for d, v in devs if v[1] is not None],
            )
            metric(
                "edgefw_ingest_device_clock_offset_seconds",
                "gauge",
                "Ingest's UTC minus the device's UTC at send (transit plus clock error).",
                [((("device", d),), v[2]) for d, v in devs if v[2] is not None],
            )
            metric(
                "edgefw_ingest_boots_attested_total",
                "counter",
                "Boot events that named their firmware image, by comparison with the fleet registry.",
                [((("result", k),), v) for k, v in sorted(self.boots.items())],
            )
            metric(
                "edgefw_ingest_device_firmware_match",
                "gauge",
                "1 if the device last booted the image the registry expects, 0 if another.",
                [((("device", d),), v[1]) for d, v in sorted(self.fw.items()) if v[1] is not None],
            )
        return "\n".join(out) + "\n"


def serve(ing, port, host="127.0.0.1"):
    """An HTTP server thread answering GET /metrics; returns the server
    (``server_address`` has the port when ``port`` was 0)."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] not in ("/metrics", "/"):
                self.send_error(404)
                return
            body = ing.metrics.render(ing.counts, ing.pace).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    srv = ThreadingHTTPServer((host, port), Handler)
    srv.daemon_threads = True
    threading.Thread(target=srv.serve_forever, name="edgefw-ingest-metrics", daemon=True).start()
    return srv
