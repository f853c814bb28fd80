"""Windows over the nodes' telemetry, with proof of completeness.

    agg = Aggregator(window_s=60, modes={"vib_rms": "raw"})
    keep, relay = agg.split(batch)      # which records go to summaries
    agg.add(batch.dev, batch.boot, keep, batch.id, raw_seq)
    for w in agg.due(now):  ...summary(w) into the out journal...

A window is (node, boot, index): the node's ``win`` records whose ``t``
(microseconds since that run's start) falls in ``[index*W, (index+1)*W)``.
Windows follow the node's own clock, so a node that was offline for an
hour still has its hour cut the same way when its backlog comes; the
run's ``boot`` event (relayed as an event) ties ``t`` to UTC.

A summary is ``{"k": "sum", "node", "boot", "w", "t", "dt", "rev", "n",
"seqs": [[first, last], ...], "batches": [id, ...], "ch": {channel:
[count, min, max, mean, last]}}``: ``n`` node records, exactly those whose
sequence numbers ``seqs`` lists, from the node batches ``batches``.
Channel values are the node's own (thousandths of the unit; ``count`` is
samples, ``mean`` weighted by them, ``last`` the mean of the newest node
window). A record is counted once: one whose seq a window already holds
(a node sending a batch again) is skipped.

Late data (a record for a window already summarized) revises it: the
window is summarized again whole with ``rev`` one higher. Upstream, the
summary of a (node, boot, w) with the highest gateway seq is the one that
counts; every summary lists everything it covers, never a difference.
"""


def covers(ranges, seq):
    for a, b in ranges:
        if a <= seq <= b:
            return True
    return False


# boot events remembered per node (runs.json)
RUNS_KEPT = 8
# windows gone from memory remembered (Aggregator.gone; the gateway's
# gone/ journal keeps them across a restart)
GONE_KEPT = 1 << 16


class Window:
    __slots__ = ("key", "t0", "dt", "n", "seqs", "batches", "ch", "rev", "dirty", "out_seq", "raw", "done", "touched", "last_t")

    def __init__(self, key, t0, dt, now):
        self.key = key
        self.t0 = t0
        self.dt = dt
        self.n = 0
        self.seqs = []
        self.batches = []
        self.ch = {}
        self.rev = -1
        self.dirty = False
        self.out_seq = None
        self.raw = set()
        self.done = False
        self.touched = now
        self.last_t = -1

    def has(self, seq):
        return covers(self.seqs, seq)

    def state(self):
        """What a done marker keeps: enough to go on folding after a restart."""
        return {
            "rev": self.rev,
            "n": self.n,
            "seqs": [list(r) for r in self.seqs],
            "batches": list(self.batches),
            "ch": {k: list(v) for k, v in self.ch.items()},
            "last_t": self.last_t,
        }

    @classmethod
    def restored(cls, key, W, m, now):
        """The window as marker ``m`` (``state``) left it: summarized and
        receipted, so done until something new is folded in."""
        w = cls(key, key[2] * W, W, now)
        w.rev, w.n, w.last_t = m["rev"], m["n"], m["last_t"]
        w.seqs = [list(r) for r in m["seqs"]]
        w.batches = [bytes(b) for b in m["batches"]]
        w.ch = {k: list(v) for k, v in m["ch"].items()}
        w.done = True
        return w

    def _cover(self, seq):
        s = self.seqs
        for i, (a, b) in enumerate(s):
            if seq == b + 1:
                s[i][1] = seq
                if i + 1 < len(s) and s[i + 1][0] == seq + 1:
                    s[i][1] = s[i + 1][1]
                    del s[i + 1]
                return
            if seq == a - 1:
                s[i][0] = seq
                return
            if seq < a:
                s.insert(i, [seq, seq])
                return
        s.append([seq, seq])

    def fold(self, rec):
        self._cover(rec["seq"])
        self.n += 1
        newest = rec["t"] >= self.last_t
        if newest:
            self.last_t = rec["t"]
        for name, v in rec["ch"].items():
            k, lo, mean, hi = v
            c = self.ch.get(name)
            if c is None:
                self.ch[name] = [k, lo, hi, mean * k, mean]
                continue
            c[0] += k
            c[1] = min(c[1], lo)
            c[2] = max(c[2], hi)
            c[3] += mean * k
            if newest:
                c[4] = mean


def _summarizable(rec):
    if rec.get("k") != "win" or not isinstance(rec.get("t"), int) or not isinstance(rec.get("ch"), dict):
        return False
    for v in rec["ch"].values():
        if not (isinstance(v, list) and len(v) == 4 and all(isinstance(x, int) for x in v) and v[0] > 0):
            return False
    return True


class Aggregator:
    def __init__(self, window_s=60, modes=None, keep_s=None, close_idle_s=None, batch_ids=True):
        self.W = int(window_s * 1000000)
        # the node batch ids a summary lists: 9 bytes each, one per batch
        # (a node at one record a batch gives one a record)
        self.batch_ids = batch_ids
        self.close_idle_s = close_idle_s if close_idle_s is not None else window_s
        self.modes = modes or {}
        # a closed window stays in memory this long for late data to
        # revise it; later still, late records go up raw
        self.keep_s = keep_s if keep_s is not None else 2 * window_s
        self.windows = {}
        # windows summarized and receipted upstream, gone from memory:
        # key -> the seq ranges their summary covers
        self.done_keys = {}
        self.max_t = {}
        self.emitted = 0
        self.revisions = 0
        self.late_raw = 0
        self.duplicates = 0
        # node -> [[seq of a boot event, its boot id], ...] in seq order. A
        # node that restarts sends what its last run left unsent in the new
        # run's batches (a header names the run that sends it), so a
        # record's run is the one whose boot event comes before it
        self.runs = {}
        # records of a run older than any boot event known for the node,
        # in a later run's batch: sent up raw (their time base is unknown)
        self.other_run_raw = 0

    def note_boot(self, dev, seq, boot):
        """A node's boot event (its seq and boot id); True when new."""
        runs = self.runs.setdefault(dev, [])
        if [seq, boot] in runs:
            return False
        runs.append([seq, boot])
        runs.sort(key=lambda r: r[0])
        # the runs a backlog can still come from
        del runs[:-RUNS_KEPT]
        return True

    def run_of(self, dev, boot, seq):
        """The boot id of the run record ``seq`` of ``dev`` is from, sent
        in a batch of run ``boot``: the run of the newest boot event before
        it, else ``boot``; None when it comes before ``boot``'s own boot
        event and no earlier one is known."""
        found = None
        for start, b in self.runs.get(dev, ()):
            if start > seq:
                break
            found = b
        if found is not None:
            return found
        return None if any(b == boot for _s, b in self.runs.get(dev, ())) else boot

    def counted(self, dev, seq):
        """Some window of ``dev`` (in memory or done) counts ``seq``."""
        for key, w in self.windows.items():
            if key[0] == dev and w.has(seq):
                return True
        return any(key[0] == dev and covers(r, seq) for key, r in self.done_keys.items())

    def split(self, batch):
        """(records for summaries, records to relay raw) of a telemetry
        batch: raw are those with a channel set to ``raw``, those not shaped
        as a node window, and late ones whose window is gone from memory.
        A record a finished window already counts (the node sent its batch
        again) is in neither: it is accounted for."""
        keep, relay = [], []
        for raw, rec in zip(batch.raw, batch.recs, strict=True):
            ok = _summarizable(rec) and not any(self.modes.get(c) == "raw" for c in rec["ch"])
            run = self.run_of(batch.dev, batch.boot, rec["seq"]) if ok else None
            if ok and run is None:
                if self.counted(batch.dev, rec["seq"]):
                    self.duplicates += 1
                    continue
                ok = False
                self.other_run_raw += 1
            if ok:
                key = (batch.dev, run, rec["t"] // self.W)
                done = self.done_keys.get(key) if key not in self.windows else None
                if done is not None:
                    if covers(done, rec["seq"]):
                        self.duplicates += 1
                        continue
                    ok = False
                    self.late_raw += 1
            (keep if ok else relay).append((raw, rec))
        return keep, relay

    def add(self, dev, boot, recs, bid, raw_seq, now):
        """Fold ``recs`` (from ``split``) in; returns the windows they went to."""
        touched = set()
        for _raw, rec in recs:
            w = rec["t"] // self.W
            run = self.run_of(dev, boot, rec["seq"]) or boot
            key = (dev, run, w)
            win = self.windows.get(key)
            if win is None:
                win = self.windows[key] = Window(key, w * self.W, self.W, now)
            if win.has(rec["seq"]):
                self.duplicates += 1
                continue
            win.fold(rec)
            win.touched = now
            if self.batch_ids and bid is not None and bid not in win.batches:
                win.batches.append(bid)
            win.raw.add(raw_seq)
            if win.rev >= 0:
                # summarized already: a revision is due
                win.done = False
            win.dirty = True
            touched.add(key)
            mk = (dev, run)
            if rec["t"] > self.max_t.get(mk, -1):
                self.max_t[mk] = rec["t"]
        return touched

    def due(self, now, all_open=False):
        """Windows to summarize now: closed (the node's stream has passed
        their end, or nothing came for them for a window's length of wall
        time) and changed since their last summary."""
        out = []
        for key, w in self.windows.items():
            if not w.dirty:
                continue
            ended = self.max_t.get(key[:2], -1) >= w.t0 + w.dt
            if all_open or ended or now - w.touched >= self.close_idle_s:
                out.append(w)
        out.sort(key=lambda w: (w.key[0], w.t0))
        return out

    def summary(self, w):
        w.rev += 1
        w.dirty = False
        self.emitted += 1
        if w.rev > 0:
            self.revisions += 1
        dev, boot, idx = w.key
        ch = {}
        for name, (k, lo, hi, s, last) in w.ch.items():
            ch[name] = [k, lo, hi, s // k, last]
        return {
            "k": "sum",
            "node": dev,
            "boot": boot,
            "w": idx,
            "t": w.t0,
            "dt": w.dt,
            "rev": w.rev,
            "n": w.n,
            "seqs": [list(r) for r in w.seqs],
            "batches": list(w.batches),
            "ch": ch,
        }

    def restore(self, key, m, now):
        """A window back from its done marker (a restart)."""
        w = self.windows[key] = Window.restored(key, self.W, m, now)
        self.done_keys.pop(key, None)
        mk = key[:2]
        if w.last_t > self.max_t.get(mk, -1):
            self.max_t[mk] = w.last_t
        return w

    def open_ended(self, key):
        """The node's run may still send records for window ``key`` in
        order: its stream has not passed the window's end (it was closed
        idle) and no newer run of the node is known."""
        node, boot, idx = key
        if self.max_t.get((node, boot), -1) >= (idx + 1) * self.W:
            return False
        runs = self.runs.get(node)
        return not (runs and runs[-1][1] != boot)

    def evict(self, now, raw_pending):
        """Drop windows summarized, receipted, whose raw records are all
        acknowledged away, and closed for ``keep_s``. An open-ended window
        stays (its node's next records revise it): one per node run."""
        gone = []
        for key in list(self.windows):
            w = self.windows[key]
            if w.done and not w.dirty and not (w.raw & raw_pending) and now - w.touched >= self.keep_s and not self.open_ended(key):
                del self.windows[key]
                self.gone(key, w.seqs)
                gone.append(key)
        return gone

    def gone(self, key, seqs):
        """Window ``key`` left memory having counted ``seqs``: a record for
        it later is a duplicate or goes up raw. The newest GONE_KEPT are
        remembered."""
        self.done_keys.pop(key, None)
        self.done_keys[key] = seqs
        while len(self.done_keys) > GONE_KEPT:
            del self.done_keys[next(iter(self.done_keys))]
