"""Operator metrics in the Prometheus text format (CPython only), off
unless asked for:

    m = Metrics(fw, textfile="/var/lib/node_exporter/edgefw.prom")   # node_exporter's textfile collector
    m = Metrics(fw, port=9105)                                       # http://127.0.0.1:9105/metrics
    m.update(fw)     # from the loop, every cycle: renders at most every every_s
    m.close()

The HTTP endpoint listens on 127.0.0.1 only and serves the last rendered
text from its own thread; the loop never waits for a scrape. The textfile
is written to a temporary name and renamed, so the collector never reads
half a file.

Families (all prefixed ``edgefw_``): ``cycles_total``, ``overruns_total``,
``loop_period_seconds`` (configured), ``loop_interval_max_seconds``
(longest gap between two cycles since the last render), ``permit``,
``tripped``, ``trips_total{cause}``, ``resets_total``,
``refused_resets_total``, ``journal_records``, ``journal_bytes``,
``journal_lost_total{reason}``, ``uplink_connected``,
``uplink_pending_records``, ``inference_windows_total``,
``inference_dropped_total``, ``inference_errors_total``,
``inference_last_latency_seconds``, ``inference_max_latency_seconds``,
``inference_latency_seconds_total`` (where the model runs in a thread or
a process: the time from handing a window over to its score).
"""

import os
import threading
import time

from firmware.store.summary import LOSSES, summary


def _esc(v):
    return str(v).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self, fw, textfile=None, port=None, every_s=1.0, uplink=None):
        self.textfile = textfile
        self.every_s = every_s
        self.uplink = uplink
        self.fw = fw
        self.board = fw.hw.board.NAME
        self.text = ""
        self._last = None
        self._gap = 0.0
        self._prev = None
        self._server = None
        self.render(fw)
        if port is not None:
            self._serve(port)

    def _serve(self, port):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                body = metrics.text.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, name="edgefw-metrics", daemon=True).start()

    def update(self, fw):
        now = time.monotonic()
        if self._prev is not None:
            self._gap = max(self._gap, now - self._prev)
        self._prev = now
        if self._last is None or now - self._last >= self.every_s:
            self.render(fw)

    def render(self, fw):
        lines = []
        lab = 'board="%s"' % _esc(self.board)

        def metric(name, kind, help_, samples):
            lines.append("# HELP edgefw_%s %s" % (name, help_))
            lines.append("# TYPE edgefw_%s %s" % (name, kind))
            for extra, v in samples:
                labels = lab + ("," + extra if extra else "")
                lines.append("edgefw_%s{%s} %s" % (name, labels, v))

        il = fw.interlock
        metric("cycles_total", "counter", "Loop cycles run.", [("", fw.cycles)])
        metric("overruns_total", "counter", "Cycles that ended past their deadline.", [("", fw.overruns)])
        metric("loop_period_seconds", "gauge", "Configured loop period.", [("", fw.period_us / 1e6)])
        metric("loop_interval_max_seconds", "gauge", "Longest wall-clock gap between two cycles since the last render.", [("", round(self._gap, 6))])
        metric("permit", "gauge", "Permit output (1 = load energized).", [("", fw.permit)])
        metric("tripped", "gauge", "Interlock tripped (latched).", [("", 1 if il.tripped else 0)])
        counts = {}
        for t in fw.trips:
            counts[t["cause"]] = counts.get(t["cause"], 0) + 1
        metric("trips_total", "counter", "Trips by cause (since start).", [('cause="%s"' % _esc(c), n) for c, n in sorted(counts.items())])
        metric("resets_total", "counter", "Accepted resets.", [("", il.resets)])
        metric("refused_resets_total", "counter", "Refused resets.", [("", il.refused)])
        j = fw.journal
        if j is not None:
            metric("journal_records", "gauge", "Records held in the journal.", [("", j.count)])
            metric("journal_bytes", "gauge", "Journal size on disk.", [("", j.size)])
            lost = summary(j, fw.recorder.lost)
            metric("journal_lost_total", "counter", "Records lost, by reason.", [('reason="%s"' % k, lost.get(k, 0)) for k, _t in LOSSES])
        if self.uplink is not None:
            s = self.uplink.stats()
            metric("uplink_connected", "gauge", "Connected to the broker.", [("", 1 if s["connected"] else 0)])
            metric("uplink_pending_records", "gauge", "Records not yet receipted.", [("", s["pending"])])
        inf = fw.inference
        if inf is not None:
            s = inf.summary()
            metric("inference_windows_total", "counter", "Windows scored by the model.", [("", s["windows"])])
            metric("inference_dropped_total", "counter", "Windows dropped (model busy).", [("", s["dropped"])])
            metric("inference_errors_total", "counter", "Model errors.", [("", s["errors"])])
            lat = s.get("latency")
            if lat is not None:
                metric("inference_last_latency_seconds", "gauge", "Hand-over of a window to its score, the last one.", [("", round(lat[0], 6))])
                metric("inference_max_latency_seconds", "gauge", "Hand-over of a window to its score, the longest so far.", [("", round(lat[1], 6))])
                metric("inference_latency_seconds_total", "counter", "Hand-over to score, summed (divide by windows for the mean).", [("", round(lat[2], 6))])
        self.text = "\n".join(lines) + "\n"
        self._gap = 0.0
        self._last = time.monotonic()
        if self.textfile:
            tmp = self.textfile + ".tmp"
            with open(tmp, "w") as f:
                f.write(self.text)
            os.replace(tmp, self.textfile)

    def close(self):
        """A last render (the textfile then holds the final counts), then
        the endpoint stops."""
        self.render(self.fw)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class MetricsHook:
    """``on_status`` for boards without LinuxRun (the sim board): metrics
    every cycle, the status line every ``status_every``."""

    def __init__(self, metrics, status=None, status_every=25):
        self.metrics, self.status, self.status_every = metrics, status, status_every

    def __call__(self, fw):
        self.metrics.update(fw)
        if self.status is not None and fw.cycles % self.status_every == 0:
            self.status(fw)

    def stop(self, orderly=True):
        self.metrics.close()
