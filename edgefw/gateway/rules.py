"""Local decisions at the gateway: rules over its nodes' events, checked
whole when the config loads (like the interlock's voting groups).

    "rules": [
      {"name": "site-anomaly", "kind": "quorum", "match": {"k": "trip", "cause": "inference"},
       "nodes": ["node-a", "node-b", "node-c"], "need": 2, "window_s": 60, "then": ["event", "trip"]},
      {"name": "node-silent", "kind": "silent", "nodes": ["node-a", "node-b", "node-c"],
       "period_s": 60, "periods": 3, "then": ["event"]}
    ]

``quorum``: when ``need`` of ``nodes`` each sent an event matching
``match`` (its kind, and a cause whose name contains ``cause``) within
``window_s`` seconds of each other, the rule fires once (again only when
the set of nodes in the window changes). ``silent``: a node of ``nodes``
from which no batch came for ``periods`` times ``period_s`` seconds;
fires once per silence.

Actions: ``event`` puts a ``site`` event into the gateway's own stream
(``{"k": "site", "rule", "nodes", "utc_ms"}``, queue 0: it goes first);
``trip`` sends each node of the rule a trip command (``commands.py``).
There is no action that resets or clears: a command can add a trip,
never take one away; a node's trip clears only by its own reset input.

Event times: a node's event at ``t`` (microseconds since its run began)
is at ``boot utc_ms + t/1000`` when the gateway has seen that run's
``boot`` event with its clock set, else at the UTC the batch header
gives (when the node sent it), else when the gateway received it.
"""

import time

from firmware.config import ID_RULE, device_id
from hal.errors import ConfigError

KINDS = ("quorum", "silent")
ACTIONS = ("event", "trip")
FIELDS = {
    "quorum": ("name", "kind", "match", "nodes", "need", "window_s", "then"),
    "silent": ("name", "kind", "nodes", "period_s", "periods", "then"),
}
MATCH_FIELDS = ("k", "cause")


def check(c, rules, known_nodes=None):
    """Check the ``rules`` list with ``c`` (firmware.config._Checker);
    ``known_nodes``: the ids with keys, when the gateway has keys."""
    if not isinstance(rules, list):
        c.fail("rules", "a list of rules", rules)
    names = []
    for i, r in enumerate(rules):
        f = "rules[%d]" % i
        if not isinstance(r, dict):
            c.fail(f, "an object", r)
        kind = c.choice(f + ".kind", r.get("kind"), KINDS)
        c.obj(f, r, FIELDS[kind])
        for k in FIELDS[kind]:
            if k not in r:
                c.fail(f + "." + k, "a value (required for a %s rule)" % kind)
        if c.text(f + ".name", r["name"]) in names:
            c.fail(f + ".name", "a unique rule name", r["name"])
        names.append(r["name"])
        nodes = r["nodes"]
        if not isinstance(nodes, list) or not nodes or len(set(map(str, nodes))) != len(nodes):
            c.fail(f + ".nodes", "a list of distinct node ids", nodes)
        for n in nodes:
            try:
                device_id(c, n)
            except ConfigError:
                c.fail(f + ".nodes", ID_RULE, n)
            if known_nodes is not None and n not in known_nodes:
                c.fail(f + ".nodes", "nodes with a key in site.keys", n)
        then = r["then"]
        if not isinstance(then, list) or not then or any(a not in ACTIONS for a in then) or len(set(then)) != len(then):
            c.fail(f + ".then", "a list of distinct actions from: " + ", ".join(ACTIONS) + " (there is none that clears a trip)", then)
        if kind == "quorum":
            if len(nodes) < 2:
                c.fail(f + ".nodes", "two or more nodes (a quorum of one is the node's own interlock)", nodes)
            c.num(f + ".need", r["need"], 2, len(nodes), integer=True)
            c.num(f + ".window_s", r["window_s"], 0.001, 86400)
            m = c.obj(f + ".match", r["match"], MATCH_FIELDS)
            c.text(f + ".match.k", m.get("k"))
            if "cause" in m:
                c.text(f + ".match.cause", m["cause"])
        else:
            if "trip" in then:
                c.fail(f + ".then", "event only: a silent node cannot be told anything", then)
            c.num(f + ".period_s", r["period_s"], 0.01, 86400)
            c.num(f + ".periods", r["periods"], 1, 100000, integer=True)
    return rules


def _matches(m, rec):
    if rec.get("k") != m["k"]:
        return False
    want = m.get("cause")
    if want is None:
        return True
    for cause in rec.get("causes") or ():
        if isinstance(cause, list) and len(cause) == 2 and want in str(cause[1]):
            return True
    return False


class Rules:
    """``observe(batch, now)`` for every stored node batch and ``tick(now)``
    now and then; both return actions ``(rule, action, nodes, utc_ms)``."""

    def __init__(self, rules, now=None):
        self.rules = rules
        now = time.time() if now is None else now
        self.boot_utc = {}
        # rule name -> node -> event time (ms) of its latest match
        self.hits = {r["name"]: {} for r in rules if r["kind"] == "quorum"}
        self.fired = {}
        # silence is counted from the gateway's start for nodes not yet heard
        self.heard = {}
        self.t0 = now
        self.silent = {}
        self.fired_count = {r["name"]: 0 for r in rules}

    def _utc(self, b, rec, now):
        start = self.boot_utc.get((b.dev, b.boot))
        if start is not None and isinstance(rec.get("t"), int):
            return start + rec["t"] // 1000
        if isinstance(b.utc_ms, int):
            return b.utc_ms
        return int(now * 1000)

    def observe(self, b, now=None):
        now = time.time() if now is None else now
        self.heard[b.dev] = now
        out = []
        if self.silent.pop(b.dev, None):
            pass  # heard again: the next silence fires again
        if b.q != 0:
            return out
        for rec in b.recs:
            if rec.get("k") == "boot" and isinstance(rec.get("utc_ms"), int):
                self.boot_utc[(b.dev, b.boot)] = rec["utc_ms"]
            for r in self.rules:
                if r["kind"] != "quorum" or b.dev not in r["nodes"] or not _matches(r["match"], rec):
                    continue
                t = self._utc(b, rec, now)
                hits = self.hits[r["name"]]
                hits[b.dev] = max(hits.get(b.dev, t), t)
                win = int(r["window_s"] * 1000)
                inside = sorted(n for n, tn in hits.items() if abs(tn - t) <= win)
                if len(inside) >= r["need"] and self.fired.get(r["name"]) != inside:
                    self.fired[r["name"]] = inside
                    self.fired_count[r["name"]] += 1
                    for a in r["then"]:
                        out.append((r, a, inside, t))
        return out

    def tick(self, now=None):
        now = time.time() if now is None else now
        out = []
        for r in self.rules:
            if r["kind"] != "silent":
                continue
            limit = r["period_s"] * r["periods"]
            for n in r["nodes"]:
                last = self.heard.get(n, self.t0)
                if now - last >= limit and not self.silent.get(n):
                    self.silent[n] = True
                    self.fired_count[r["name"]] += 1
                    for a in r["then"]:
                        out.append((r, a, [n], int(now * 1000)))
        return out
