"""The journal on the target's file system: records survive a reopen,
sequence numbers keep increasing, a torn tail is cut."""

import os


def roundtrip(path, n=20):
    from firmware.store.journal import PRIO_EVENT, Journal

    j = Journal(path, "fsync")
    seqs = [j.append({"k": "win", "t": i * 1000}) for i in range(n)]
    seqs.append(j.append({"k": "trip", "t": n * 1000, "causes": [[0x3000, "estop"]]}, PRIO_EVENT))
    j.close()
    j = Journal(path, "fsync")
    got = [(s, r["k"], r["t"]) for s, r in j.records()]
    nxt = j.append({"k": "reset", "t": 0}, PRIO_EVENT)
    j.close()
    return {"appended": seqs, "reopened": got, "next": nxt}


def torn_tail(path, cut=7):
    """Cut ``cut`` bytes off the newest segment, as a power loss in the
    middle of a write would: what reopening keeps and repairs."""
    from firmware.store.journal import Journal

    j = Journal(path, "fsync")
    for i in range(3):
        j.append({"k": "win", "t": i})
    j.close()
    d = path + "/q1"
    seg = d + "/" + sorted(n for n in os.listdir(d) if n.endswith(".seg"))[-1]
    with open(seg, "rb") as f:
        data = f.read()
    with open(seg, "wb") as f:
        f.write(data[:-cut])
    j = Journal(path, "fsync")
    out = {"count": j.count, "recovered_bytes": j.recovered_bytes, "next": j.append({"k": "win", "t": 9})}
    j.close()
    return out


def records(path):
    """Every record of the journal at ``path`` (for the report)."""
    from bench.probes._json import plain
    from firmware.store.journal import Journal

    j = Journal(path)
    out = [plain(r) for _s, r in j.records()]
    j.close()
    return out
