"""The journal's losses and repairs by name: the ``store`` part of a run's
summary, the same on every target (``edgefw run --json``, metrics).

    s["store"] = summary(journal, recorder.lost)
"""

# (name, what it counts): losses first, then repairs made at open
LOSSES = (
    ("dropped_cap", "dropped (journal full)"),
    ("dropped_ttl", "expired (TTL)"),
    ("refused", "refused (journal full, pause)"),
    ("lost_io", "lost to write errors"),
    ("unstored", "not stored (write failed)"),
)
REPAIRS = (
    ("recovered_bytes", "bytes of torn tail cut at open"),
    ("corrupt_skipped", "bytes of damaged frames skipped at open"),
    ("ack_repaired", "ack files reset (nonsense; records sent again)"),
)


def summary(j, unstored=0):
    """``unstored``: records the record stage could not hand to the journal
    (the recorder counts them, the journal never saw them)."""
    d = {}
    for k, _text in LOSSES + REPAIRS:
        d[k] = unstored if k == "unstored" else getattr(j, k, 0)
    return d
