"""The gateway's store under random schedules: a node's batches arrive in
order, out of order, again, or are lost and sent again; windows close as
the stream passes them or idle; upstream receipts come late or in part;
and the gateway dies at any step, losing what it had not synced (its
journals hold unsynced records in memory, as a power cut would take
them). Afterwards every record is upstream raw once or counted in exactly
one window's authoritative summary (the one with the highest gateway
seq), whose counts and values are those of exactly the records it lists.
In process, about 10 s."""

import os
import random

import pytest

from edgefw.gateway.aggregate import Aggregator
from edgefw.gateway.store import Store
from edgefw.gateway.verify import Batch
from firmware import cbor
from firmware.store.journal import Journal

W = 10  # seconds
BOOT = b"B" * 8
N = 120  # node seqs 2..N: twelve windows


def _rec(seq):
    # t: one record a second; values derived from seq, to check a summary
    return {"k": "win", "t": (seq - 1) * 1000000, "dt": 1000000, "ch": {"x": [10, seq, 3 * seq, 5 * seq]}, "seq": seq}


def _batch(seqs):
    b = Batch()
    b.dev, b.q, b.boot, b.id = "n1", 1, BOOT, os.urandom(8)
    b.first, b.last = seqs[0], seqs[-1]
    b.utc_ms = b.mono_ms = None
    b.recs = [_rec(s) for s in seqs]
    b.raw = [cbor.dumps(r) for r in b.recs]
    return b


class Gateway:
    """The store as the gateway wires it, started again after each crash."""

    def __init__(self, d, keep_s, idle_s):
        self.d, self.keep_s, self.idle_s = d, keep_s, idle_s
        self.start()

    def start(self):
        big = 1 << 30
        out = Journal(str(self.d / "out"), "group", group_records=big, group_ms=big)
        raw = Journal(str(self.d / "raw"), "group", group_records=big, group_ms=big)
        gone = Journal(str(self.d / "gone"), "group", group_records=big, group_ms=big)
        self.st = Store(out, raw, Aggregator(W, keep_s=self.keep_s, close_idle_s=self.idle_s), gone=gone)
        self.st.recover()

    def crash(self):
        # unsynced records die with the process: the journals are dropped
        # without a flush and opened again from what is on disk
        self.st = None
        self.start()


def _upstream(st, up, rng, whole=False):
    """What out/ has on disk goes upstream (again, after a crash: the same
    seqs); receipted up to a random point."""
    for q in (0, 1):
        recs = [(s, r) for s, r in st.out.records(q) if s > st.out.acked(q)]
        if not recs:
            continue
        for s, r in recs:
            up[s] = r
        cut = recs[-1][0] if whole else rng.choice(recs)[0]
        st.out.ack(q, cut)


def _schedule(gw, rng, up):
    seqs = list(range(2, N + 1))
    pending = []
    while seqs:
        k = rng.randint(1, 4)
        pending.append(_batch(seqs[:k]))
        seqs = seqs[k:]
    sent = []
    skew = 0.0
    clock = lambda: 1e6 + skew  # noqa: E731 (the store's monotonic clock, moved by hand)
    for _ in range(400):
        a = rng.random()
        if a < 0.45 and pending:
            # the oldest unreceipted batch, or (a node resending after a
            # lost one) a later one, or one already receipted again
            i = 0 if rng.random() < 0.7 else rng.randrange(len(pending))
            b = sent[rng.randrange(len(sent))] if sent and rng.random() < 0.1 else pending[i]
            assert gw.st.take(b)
            if rng.random() < 0.8:
                gw.st.sync()
                if b in pending:
                    pending.remove(b)
                    sent.append(b)
        elif a < 0.7:
            skew += rng.choice([0.0, 0.1, 1.0, 5.0])
            gw.st.tick(now=clock())
        elif a < 0.9:
            _upstream(gw.st, up, rng)
        else:
            gw.crash()
    # everything left: the node's resends, then windows closed, all receipted
    for b in list(pending):
        assert gw.st.take(b)
        gw.st.sync()
    for _ in range(4):
        skew += 100.0
        gw.st.tick(now=clock(), all_open=True)
        _upstream(gw.st, up, rng, whole=True)
        gw.st.tick(now=clock())


def _check(up):
    raw = set()
    best = {}
    for _s, r in sorted(up.items()):
        if r.get("k") == "relay":
            raw |= {cbor.loads(x)["seq"] for x in r["recs"]}
        elif r.get("k") == "sum":
            best[(r["node"], r["boot"], r["w"])] = r
    counted = []
    for (_n, _b, w), r in best.items():
        mine = [q for a, b in r["seqs"] for q in range(a, b + 1)]
        assert len(mine) == r["n"] and all((q - 1) // W == w for q in mine), r
        # the values are those of exactly the records it lists
        assert r["ch"]["x"] == [10 * len(mine), min(mine), 5 * max(mine), sum(3 * q for q in mine) // len(mine), 3 * max(mine)], r
        counted += mine
    assert len(counted) == len(set(counted))
    both = raw & set(counted)
    assert not both, sorted(both)
    assert raw | set(counted) == set(range(2, N + 1)), sorted(set(range(2, N + 1)) - raw - set(counted))
    return len(raw)


@pytest.mark.parametrize("seed", range(36))
def test_random_schedules_count_every_record_once(tmp_path, seed):
    rng = random.Random(seed)
    gw = Gateway(tmp_path, keep_s=rng.choice([0, 1, 30, 1e9]), idle_s=rng.choice([0.5, 3, 1000]))
    up = {}
    _schedule(gw, rng, up)
    _check(up)
