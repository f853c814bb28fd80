"""The gateway's metrics in the Prometheus text format, written to a file
(node_exporter's textfile collector) by a temporary name and a rename, so
a scrape never reads half of it.

Families, all ``edgefw_gateway_``: ``nodes_seen``,
``node_last_seen_timestamp_seconds{node}``, ``node_records_total{node}``,
``node_backlog_records{node}`` (its records here not yet accounted for
upstream), ``batches_in_total``, ``bytes_in_total`` (as the nodes sent
them), ``refused_total{reason}``, ``windows_emitted_total``,
``window_revisions_total``, ``late_raw_total``, ``duplicates_total``,
``upstream_bytes_total{stage="before_codec"|"after_codec"}``,
``compression_ratio``, ``upstream_connected``,
``upstream_backlog_records`` (journal records: node batches and the
gateway's own), ``upstream_resent_total``, ``upstream_window_batches``,
``upstream_receipt_deadline_seconds``, ``upstream_rejected_total``,
``lost_total{journal,reason}``, ``rule_fired_total{rule}``,
``kept_bytes`` (raw records kept for pulls), ``kept_expired_total``,
``pulls_answered_total``, ``pulled_records_total``,
``pull_refused_total{reason}``.
"""

import os

from firmware.linux.metrics import _esc
from firmware.store.summary import LOSSES


def render(s):
    out = []

    def fam(name, kind, helptext, rows):
        out.append("# HELP edgefw_gateway_%s %s" % (name, helptext))
        out.append("# TYPE edgefw_gateway_%s %s" % (name, kind))
        for labels, v in rows:
            lab = ",".join('%s="%s"' % (k, _esc(x)) for k, x in labels)
            out.append("edgefw_gateway_%s%s %s" % (name, "{%s}" % lab if lab else "", v))

    nodes = s["nodes"]
    fam("nodes_seen", "gauge", "nodes heard from since start", [((), len(nodes))])
    fam("node_last_seen_timestamp_seconds", "gauge", "when each node's last batch came (unix time)", [((("node", n),), "%.3f" % v["last_seen"]) for n, v in sorted(nodes.items())])
    fam("node_records_total", "counter", "records taken from each node", [((("node", n),), v["records"]) for n, v in sorted(nodes.items())])
    fam("node_backlog_records", "gauge", "each node's records here not yet accounted for upstream", [((("node", n),), v) for n, v in sorted(s["backlog"].items())])
    site = s["site"]
    fam("batches_in_total", "counter", "node batches stored", [((), site["batches"])])
    fam("bytes_in_total", "counter", "bytes of node batches stored, as sent", [((), site["bytes"])])
    fam("refused_total", "counter", "node batches refused, by reason", [((("reason", k),), v) for k, v in sorted(site["refusals"].items())])
    a = s["aggregate"] or {}
    fam("windows_emitted_total", "counter", "summaries written (revisions included)", [((), a.get("summaries", 0))])
    fam("window_revisions_total", "counter", "summaries that revise an earlier one", [((), a.get("revisions", 0))])
    fam("late_raw_total", "counter", "records too late for their window, sent raw", [((), a.get("late_raw", 0))])
    fam("duplicates_total", "counter", "records a window already counted", [((), a.get("duplicates", 0))])
    c = s["codec"]
    fam("upstream_bytes_total", "counter", "upstream record bytes before and after the codec", [((("stage", "before_codec"),), c["bytes_in"]), ((("stage", "after_codec"),), c["bytes_out"])])
    fam("compression_ratio", "gauge", "bytes before the codec over bytes after", [((), c["ratio"] if c["ratio"] is not None else "NaN")])
    up = s["upstream"]
    fam("upstream_connected", "gauge", "1 while connected upstream", [((), 1 if up["connected"] else 0)])
    fam("upstream_backlog_records", "gauge", "journal records not yet receipted upstream", [((), s["store"]["pending"])])
    fam("upstream_resent_total", "counter", "records sent upstream again", [((), up["resent"])])
    fam("upstream_window_batches", "gauge", "batches the upstream link may have in flight now", [((), up["window"])])
    fam("upstream_receipt_deadline_seconds", "gauge", "how long a batch waits for its upstream receipt before going again", [((), up["receipt_deadline_ms"] / 1000)])
    fam("upstream_rejected_total", "counter", "records the next tier refused (kept, retried)", [((), up["rejected"])])
    rows = []
    for j, st in (("out", s["store"]), ("raw", (a or {}).get("raw") or {})):
        for k, _text in LOSSES:
            if k in st:
                rows.append(((("journal", j), ("reason", k)), st[k]))
    fam("lost_total", "counter", "records the gateway dropped, by journal and reason", rows)
    r = s.get("rules") or {}
    fam("rule_fired_total", "counter", "times each rule fired", [((("rule", k),), v) for k, v in sorted((r.get("fired") or {}).items())])
    k = s.get("kept") or {}
    fam("kept_bytes", "gauge", "bytes of raw records kept for pulls", [((), k.get("bytes", 0))])
    fam("kept_expired_total", "counter", "kept raw records past store.kept_s", [((), k.get("expired", 0))])
    p = s.get("pulls") or {}
    fam("pulls_answered_total", "counter", "pull requests answered", [((), p.get("answered", 0))])
    fam("pulled_records_total", "counter", "records sent upstream for pull requests", [((), p.get("records", 0))])
    fam("pull_refused_total", "counter", "pull requests refused, by reason", [((("reason", k),), v) for k, v in sorted((p.get("refusals") or {}).items())])
    return "\n".join(out) + "\n"


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
