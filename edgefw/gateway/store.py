"""The gateway's store: two journals and the windows between them.

    out/   what goes upstream (firmware.store.journal): node events and raw
           telemetry as ``relay`` records, the gateway's own records
           (``sum`` summaries, its boot and loss events)
    raw/   node telemetry that summaries stand for, one ``raw`` record per
           node batch (the records a summary counts, byte for byte), and
           ``done`` markers

A node's telemetry record that goes into a summary is in ``raw/`` (synced)
before the node's receipt, and leaves it only after the summary covering
it is in ``out/`` and receipted upstream: then a ``done`` marker naming
the window is synced into ``raw/``, and ``raw/``'s cursor moves over
every record whose windows are all done.

Restart: ``recover`` reads ``raw/`` past its cursor. A ``done`` marker
holds its window's state as the receipted summary counted it; a window
with one starts from the newest, every record past the cursor is folded
in again, and a record the marker does not count (one whose revision was
not receipted, or whose marker a crash took) makes a revision. Upstream,
the summary of a window with the highest gateway seq counts, and each
lists every seq it covers: a revision stands for the whole window. A
marker stays on disk (carried past the cursor as a copy) while its window
is in memory, so a restart never starts a window afresh that a receipted
summary counted, unless it closed ``keep_s`` ago and the node's stream
has passed it (``Aggregator.evict``).
"""

import collections
import json
import os
import threading
import time

from edgefw.gateway.aggregate import covers
from edgefw.gateway.forward import relay_record
from firmware import cbor
from firmware.store.journal import PRIO_EVENT, PRIO_TELEMETRY, Journal
from hal.errors import JournalError


class QueueCapped(Journal):
    """``out/``: the journal with a byte cap per priority besides the
    total (``queue_caps``: {queue: bytes}). A queue past its own cap loses
    its oldest segment (counted in ``dropped_cap``, its cursor moved, so
    ``Store`` names what it held), whatever room the other has: a flood of
    events cannot take the telemetry's room, nor telemetry the events'.
    Held group records count against every queue's cap (they are not
    sorted until written)."""

    def __init__(self, *a, queue_caps=None, **kw):
        Journal.__init__(self, *a, **kw)
        self.queue_caps = {q: c for q, c in (queue_caps or {}).items() if c}

    def append(self, record, priority=PRIO_TELEMETRY, ordered=False):
        cap = self.queue_caps.get(priority)
        if cap:
            segs = self._segs[priority]
            # the segment being written stays: it holds the newest
            while len(segs) > 1 and sum(sg.size for sg in segs) + self._pend_bytes > cap:
                from firmware.store.scan import drop_oldest

                drop_oldest(self, priority)
        return Journal.append(self, record, priority, ordered)


class Store:
    def __init__(self, out, raw, agg, around=None, gone=None, kept=None):
        self.out = out
        self.raw = raw
        self.agg = agg
        # raw records kept for pulls (edgefw.gateway.pull.Kept), or None
        self.kept = kept
        # windows gone from memory (Aggregator.evict), oldest first: read
        # back so a restarted gateway still knows what each counted
        self.gone = gone
        if gone is not None:
            for _s, r in gone.records(PRIO_TELEMETRY):
                agg.gone((r["node"], r["boot"], r["w"]), [list(x) for x in r["seqs"]])
        # raw around events: {"before_s", "after_s", "kinds"}, for the
        # channels whose mode is "around"
        self.around = around if agg is not None and any(m == "around" for m in agg.modes.values()) else None
        # (node, boot) -> [[from_us, to_us], ...]: event spans still open
        self.active = {}
        # raw seq -> (node, boot, newest t): held until the node's stream
        # is before_s past it
        self.raw_meta = {}
        self.around_relayed = 0
        # what each record of out/ stands for, per queue in seq order:
        # (seq, ("relay", node, seq ranges) | ("sum", window) | ("own", kind))
        self.meta = {0: collections.deque(), 1: collections.deque()}
        # (queue, from, to, reason): out/'s cursor jumped over (from, to]
        # without a receipt (the cap or the TTL dropped them); noted under
        # out/'s lock where it happened, read by tick
        self._dropped = []
        self._dropped_lock = threading.Lock()
        # (reason, node, seq ranges): node records dropped, for the next
        # loss event
        self.lost_named = []
        self.resummarized = 0
        # held while batches go in and while windows are summarized: the
        # two journals and the windows move together
        self.lock = threading.Lock()
        # raw seq -> window keys it feeds, in the order they were written
        self.raw_windows = {}
        # raw seq -> (node, records): for the backlog count
        self.raw_count = {}
        # raw seq -> a done marker there (see _advance)
        self.marks = {}
        # window key -> the raw seq of its newest done marker
        self.newest_mark = {}
        self.backlog = None
        # the nodes' runs (Aggregator.runs), kept beside the journals: a
        # restarted gateway still places a rebooted node's backlog in the
        # run that recorded it
        self.runs_path = os.path.join(os.path.dirname(os.path.abspath(raw.path)), "runs.json") if agg is not None else None
        if self.runs_path and os.path.exists(self.runs_path):
            try:
                with open(self.runs_path) as f:
                    runs = json.load(f)
                agg.runs = {dev: [[int(seq), bytes.fromhex(boot)] for seq, boot in rs] for dev, rs in runs.items()}
            except (OSError, ValueError, TypeError, AttributeError) as e:
                raise JournalError(
                    "%s: not the gateway's list of node runs (%s); delete it to start one again (records a node sends after a reboot"
                    " from its run before are then placed by their batch's run until its next boot event)" % (self.runs_path, e)
                ) from e

    # --- hop 1 -----------------------------------------------------------
    def take(self, b):
        """Append a checked node batch (not yet synced: ``sync``). False
        when a journal refused it (full, ``pause``); OSError from a failing
        disk."""
        with self.lock:
            if b.q == PRIO_EVENT or self.agg is None:
                if self.agg is not None:
                    self._note_boots(b)
                ok = self._relay(b, b.raw, b.recs)
                if ok and self.around is not None:
                    self._events(b)
                return ok
            keep, relay = self.agg.split(b)
            if relay and not self._relay(b, [r for r, _ in relay], [d for _, d in relay]):
                return False
            if keep:
                rec = b.header()
                rec["k"] = "raw"
                rec["recs"] = [r for r, _ in keep]
                with self.raw.lock:
                    seq = self.raw.append(rec, PRIO_TELEMETRY)
                if not seq:
                    return False
                self.raw_windows[seq] = self.agg.add(b.dev, b.boot, keep, b.id, seq, time.monotonic())
                self._count(seq, b.dev, len(keep))
                if self.kept is not None:
                    self.kept.add(rec)
                if self.around is not None:
                    self.raw_meta[seq] = (b.dev, b.boot, max(d["t"] for _r, d in keep))
                    self._around_copy(b, keep)
            return True

    def _note_boots(self, b):
        new = False
        for rec in b.recs:
            if rec.get("k") == "boot" and isinstance(rec.get("boot"), bytes):
                new = self.agg.note_boot(b.dev, rec["seq"], rec["boot"]) or new
        if new:
            # synced before the batch's receipt, as the journals are
            tmp = self.runs_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump({dev: [[seq, boot.hex()] for seq, boot in rs] for dev, rs in self.agg.runs.items()}, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.runs_path)

    # --- raw around events --------------------------------------------------
    def _is_around(self, rec):
        return any(self.agg.modes.get(c) == "around" for c in rec["ch"])

    def _events(self, b):
        """An event of an ``around`` kind: the node's records from
        ``before_s`` before it go up raw now (from the raw journal, which
        held them), those up to ``after_s`` after it as they come."""
        a = self.around
        for rec in b.recs:
            if rec.get("k") not in a["kinds"] or not isinstance(rec.get("t"), int):
                continue
            t = rec["t"]
            lo, hi = t - int(a["before_s"] * 1e6), t + int(a["after_s"] * 1e6)
            self.active.setdefault((b.dev, b.boot), []).append([lo, hi])
            with self.raw.lock:
                # held records are not on disk until this
                self.raw.flush()
                acked = self.raw.acked(PRIO_TELEMETRY)
                found = [
                    (s, r)
                    for s, r in self.raw.records(PRIO_TELEMETRY)
                    if s > acked and r.get("k") == "raw" and r.get("dev") == b.dev and r.get("boot") == b.boot
                ]
            for _s, r in found:
                rb = _batch_of(r)
                picks = [(x, d) for x, d in zip(rb.raw, rb.recs, strict=True) if lo <= d["t"] <= hi and self._is_around(d)]
                if picks:
                    self._relay(rb, [x for x, _ in picks], [d for _, d in picks])
                    self.around_relayed += len(picks)

    def _around_copy(self, b, keep):
        spans = self.active.get((b.dev, b.boot))
        if not spans:
            return
        picks = [(x, d) for x, d in keep if self._is_around(d) and any(lo <= d["t"] <= hi for lo, hi in spans)]
        if picks:
            self._relay(b, [x for x, _ in picks], [d for _, d in picks])
            self.around_relayed += len(picks)
        newest = self.agg.max_t.get((b.dev, b.boot), -1)
        self.active[(b.dev, b.boot)] = [sp for sp in spans if sp[1] >= newest]

    def _relay(self, b, raw, recs):
        r = relay_record(b)
        if len(raw) != len(b.raw):
            # part of the batch: its header names the part
            r["first"] = min(d["seq"] for d in recs)
            r["last"] = max(d["seq"] for d in recs)
            r["recs"] = raw
        ok = self._append_out(r, b.q, ("relay", b.dev, ranges(d["seq"] for d in recs))) != 0
        if ok and self.backlog is not None:
            self.backlog.add(b.dev, len(raw))
        return ok

    def _count(self, seq, dev, n):
        if self.backlog is not None and n:
            self.raw_count[seq] = (dev, n)
            self.backlog.add(dev, n)

    def sync(self):
        with self.out.lock:
            self.out.flush()
        if self.raw is not None:
            with self.raw.lock:
                self.raw.flush()

    def append_own(self, rec, prio):
        seq = self._append_out(rec, prio, ("own", rec.get("k")))
        with self.out.lock:
            self.out.flush()
        return seq

    def _append_out(self, rec, q, what):
        with self.out.lock:
            before = (self.out.acked(0), self.out.acked(1), self.out.dropped_cap)
            seq = self.out.append(rec, q)
            if self.out.dropped_cap != before[2]:
                for qq in (0, 1):
                    if self.out.acked(qq) != before[qq]:
                        self.note_dropped(qq, before[qq], self.out.acked(qq), "cap")
            if seq:
                self.meta[q].append((seq, what))
        return seq

    def note_dropped(self, q, lo, hi, reason):
        """out/'s cursor of queue ``q`` moved from ``lo`` to ``hi`` over
        records that were dropped, not receipted (called under out/'s lock)."""
        with self._dropped_lock:
            self._dropped.append((q, lo, hi, reason))

    def _settle(self):
        """Under out/'s lock: name what was dropped, forget what was
        receipted; a dropped summary is made again (its raw records are
        still here)."""
        with self._dropped_lock:
            drops, self._dropped = self._dropped, []
        for q, lo, hi, reason in drops:
            dq = self.meta[q]
            while dq and dq[0][0] <= lo:
                dq.popleft()
            while dq and dq[0][0] <= hi:
                _seq, what = dq.popleft()
                if what[0] == "relay":
                    self.lost_named.append((reason, what[1], what[2]))
                elif what[0] == "sum":
                    w = self.agg.windows.get(what[1]) if self.agg is not None else None
                    if w is not None and w.out_seq == _seq:
                        w.out_seq = None
                        w.dirty = True
                        w.done = False
                        self.resummarized += 1
                else:
                    self.lost_named.append((reason, None, [what[1]]))
        for q in (0, 1):
            acked = self.out.acked(q)
            dq = self.meta[q]
            while dq and dq[0][0] <= acked:
                dq.popleft()

    def take_lost(self):
        """The node records dropped since the last call: {reason: {node:
        seq ranges}} (node None: the gateway's own events, by kind)."""
        with self.out.lock:
            self._settle()
            lost, self.lost_named = self.lost_named, []
        out = {}
        for reason, node, rs in lost:
            out.setdefault(reason, {}).setdefault(node if node is not None else "", []).extend(rs)
        return out

    # --- windows ---------------------------------------------------------
    def tick(self, now=None, all_open=False):
        """Summarize what is due, mark windows whose summary is receipted,
        move ``raw/``'s cursor. Returns the summaries written."""
        if self.agg is None:
            return []
        now = time.monotonic() if now is None else now
        with self.lock:
            wrote = []
            due = self.agg.due(now, all_open)
            if due:
                # what a summary counts is on disk before the summary can
                # go: a crash would otherwise take records it counted, and
                # the node's resend of them would count again
                with self.raw.lock:
                    self.raw.flush()
            for w in due:
                s = self.agg.summary(w)
                w.out_seq = self._append_out(s, PRIO_TELEMETRY, ("sum", w.key)) or None
                if w.out_seq is None:
                    w.dirty = True
                wrote.append(s)
            if wrote:
                with self.out.lock:
                    self.out.flush()
            with self.out.lock:
                # dropped summaries first: their windows are not done
                self._settle()
                acked = self.out.acked(PRIO_TELEMETRY)
            marked = False
            for w in self.agg.windows.values():
                if not w.done and not w.dirty and w.out_seq and w.out_seq <= acked:
                    w.done = True
                    node, boot, idx = w.key
                    # a copy of the state (it changes if the window is revised)
                    mark = dict(w.state(), k="done", node=node, boot=boot, w=idx)
                    with self.raw.lock:
                        m = self.raw.append(mark, PRIO_TELEMETRY)
                    self.raw_windows[m] = set()
                    self.marks[m] = mark
                    self.newest_mark[w.key] = m
                    marked = True
            if marked:
                with self.raw.lock:
                    self.raw.flush()
            self._advance()
            gone = self.agg.evict(now, set(self.raw_windows))
            if gone and self.gone is not None:
                # on disk before the next _advance may pass their markers
                for key in gone:
                    self.gone.append({"node": key[0], "boot": key[1], "w": key[2], "seqs": self.agg.done_keys[key]}, PRIO_TELEMETRY)
                self.gone.flush()
        return wrote

    def _window_done(self, key):
        w = self.agg.windows.get(key)
        return w.done if w is not None else key in self.agg.done_keys

    def _held(self, seq):
        """The done marker at raw ``seq`` must stay on disk: it is its
        window's newest and the window is in memory (it may yet be
        revised, and a restart must find what its receipted summary
        counted: Aggregator.evict)."""
        m = self.marks[seq]
        key = (m["node"], m["boot"], m["w"])
        return key in self.agg.windows and self.newest_mark.get(key) == seq

    def _advance(self):
        last = None
        carried = False
        for seq in list(self.raw_windows):
            if not all(self._window_done(k) for k in self.raw_windows[seq]):
                break
            if seq in self.marks and self._held(seq):
                # the only record on disk of what this window's receipted
                # summary counted (a restarted gateway would otherwise
                # summarize the rest of it afresh, and that summary, newer,
                # would stand for the window without the records before).
                # The cursor waits for it: its window leaves memory keep_s
                # after it closed. Unless its node's stream may never pass
                # it (open-ended: it stays): then it is passed with a copy
                # after it, only when more goes with it than such markers
                # (else they would carry each other on)
                m = self.marks[seq]
                if not self.agg.open_ended((m["node"], m["boot"], m["w"])):
                    break
                if not any(
                    s > seq and all(self._window_done(k) for k in self.raw_windows[s]) and not (s in self.marks and self._held(s)) for s in self.raw_windows
                ):
                    break
                with self.raw.lock:
                    c = self.raw.append(self.marks[seq], PRIO_TELEMETRY)
                if not c:
                    break
                self.raw_windows[c] = set()
                self.marks[c] = m
                self.newest_mark[(m["node"], m["boot"], m["w"])] = c
                carried = True
            gone = self.marks.pop(seq, None)
            if gone is not None:
                key = (gone["node"], gone["boot"], gone["w"])
                if self.newest_mark.get(key) == seq:
                    del self.newest_mark[key]
            m = self.raw_meta.get(seq)
            if m is not None and self.agg.max_t.get(m[:2], -1) - m[2] < self.around["before_s"] * 1e6:
                # an event may still come that wants it raw
                break
            self.raw_meta.pop(seq, None)
            del self.raw_windows[seq]
            c = self.raw_count.pop(seq, None)
            if c is not None:
                self.backlog.add(c[0], -c[1])
            last = seq
        if last is not None:
            with self.raw.lock:
                if carried:
                    self.raw.flush()
                self.raw.ack(PRIO_TELEMETRY, last)

    # --- restart ----------------------------------------------------------
    def recover(self):
        """Rebuild the windows from ``raw/`` past its cursor (before the
        receiver starts). Returns (records folded, records sent up raw)."""
        if self.agg is None:
            return 0, 0
        acked = self.raw.acked(PRIO_TELEMETRY)
        items = [(s, r) for s, r in self.raw.records(PRIO_TELEMETRY) if s > acked]
        now = time.monotonic()
        # a window with a done marker starts as the newest one left it
        newest = {}
        for _s, r in items:
            if r.get("k") == "done":
                if "ch" not in r:
                    raise JournalError(
                        "%s: a done marker without its window's state (written by an older edgefw gateway): drain the store with that"
                        " version (stop it with --drain-s until nothing is pending), or delete the store to start it again" % self.raw.path
                    )
                newest[(r["node"], r["boot"], r["w"])] = r
        for key, m in newest.items():
            # a window gone from memory stays gone: records for it went up
            # raw since
            if key not in self.agg.done_keys:
                self.agg.restore(key, m, now)
        # a record such a marker counts is skipped as the node's resend is;
        # not a duplicate the node sent
        dups = self.agg.duplicates
        folded = relayed = 0
        for s, r in items:
            if r.get("k") != "raw":
                self.raw_windows[s] = set()
                if r.get("k") == "done":
                    self.marks[s] = r
                    self.newest_mark[(r["node"], r["boot"], r["w"])] = s
                continue
            b = _batch_of(r)
            keep, late = [], []
            for raw, rec in zip(b.raw, b.recs, strict=True):
                run = self.agg.run_of(b.dev, b.boot, rec["seq"])
                gone = self.agg.done_keys.get((b.dev, run, rec["t"] // self.agg.W)) if run is not None else None
                if gone is not None and covers(gone, rec["seq"]):
                    # its window's summary counted it (raw/'s cursor was
                    # reset: the journal found it past its records)
                    continue
                # from a run the gateway never saw start, or for a window
                # gone from memory: raw, as split
                (late if run is None or gone is not None else keep).append((raw, rec))
            if late:
                self._relay(b, [x for x, _ in late], [d for _, d in late])
                relayed += len(late)
            before = self.agg.duplicates
            self.raw_windows[s] = self.agg.add(b.dev, b.boot, keep, b.id, s, now) if keep else set()
            self._count(s, b.dev, len(keep))
            if keep and self.around is not None:
                self.raw_meta[s] = (b.dev, b.boot, max(d["t"] for _r, d in keep))
            folded += len(keep) - (self.agg.duplicates - before)
        self.agg.duplicates = dups
        if relayed:
            with self.out.lock:
                self.out.flush()
        with self.lock:
            self._advance()
        return folded, relayed


def _batch_of(r):
    """A raw journal record as the checked batch it came from (its part)."""
    from edgefw.gateway.verify import Batch

    b = Batch()
    for f in ("dev", "q", "first", "last", "id", "boot", "utc_ms", "mono_ms"):
        setattr(b, f, r.get(f))
    b.raw = [bytes(x) for x in r["recs"]]
    b.recs = [cbor.loads(x) for x in b.raw]
    return b


def ranges(seqs):
    """Sorted seq numbers as [[first, last], ...] runs."""
    out = []
    for q in sorted(seqs):
        if out and q == out[-1][1] + 1:
            out[-1][1] = q
        elif not out or q > out[-1][1]:
            out.append([q, q])
    return out
