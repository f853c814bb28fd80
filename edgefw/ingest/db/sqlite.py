"""SQLite: one file, one writer. The default, and what a single gateway
needs.

    records(device TEXT, seq INTEGER, queue INTEGER, kind TEXT, t_us INTEGER,
            body BLOB, received REAL, boot BLOB, device_utc_ms INTEGER,
            device_mono_ms INTEGER, PRIMARY KEY (device, seq))
    nonces(device TEXT, nonce BLOB, received REAL, PRIMARY KEY (device, nonce))
    attestations(device TEXT, seq INTEGER, boot BLOB, reported TEXT,
                 expected TEXT, match INTEGER, received REAL,
                 PRIMARY KEY (device, seq))
        one row per boot event that named its image: what it ran, what the
        fleet registry expected (NULL: none named), whether they agree
"""

import sqlite3
import threading

from edgefw.ingest.db.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    device TEXT NOT NULL, seq INTEGER NOT NULL, queue INTEGER NOT NULL,
    kind TEXT, t_us INTEGER, body BLOB NOT NULL, received REAL NOT NULL,
    boot BLOB, device_utc_ms INTEGER, device_mono_ms INTEGER,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nonces (
    device TEXT NOT NULL, nonce BLOB NOT NULL, received REAL NOT NULL,
    PRIMARY KEY (device, nonce)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attestations (
    device TEXT NOT NULL, seq INTEGER NOT NULL, boot BLOB, reported TEXT NOT NULL,
    expected TEXT, match INTEGER, received REAL NOT NULL,
    PRIMARY KEY (device, seq)
) WITHOUT ROWID;
"""


def _int(v):
    # a device clock that is not an integer is stored as unknown, not refused
    return v if isinstance(v, int) and -(1 << 63) <= v < (1 << 63) else None


class SQLiteStore:
    scheme = "sqlite"

    def __init__(self, path, log=None):
        self.path = path
        self.db = sqlite3.connect(path, check_same_thread=False)
        self.db.executescript(SCHEMA)
        have = {r[1] for r in self.db.execute("PRAGMA table_info(records)")}
        for col, kind in (("boot", "BLOB"), ("device_utc_ms", "INTEGER"), ("device_mono_ms", "INTEGER")):
            if col not in have:
                # a database from before batch headers carried clocks
                self.db.execute("ALTER TABLE records ADD COLUMN %s %s" % (col, kind))
        self.db.execute("PRAGMA journal_mode=WAL")
        # a receipt lets the device delete: the commit must be on disk first
        self.db.execute("PRAGMA synchronous=FULL")
        self.lock = threading.Lock()

    def write(self, batches, attest=()):
        """Store ``batches`` and the ``attest`` rows of their boot events in
        one transaction. Returns (new records, duplicate records, indexes of
        batches whose nonce was seen before: replays, stored already)."""
        new = dup = 0
        replayed = set()
        with self.lock:
            cur = self.db.cursor()
            try:
                for i, b in enumerate(batches):
                    if b.nonce is not None:
                        cur.execute("INSERT OR IGNORE INTO nonces VALUES (?, ?, ?)", (b.dev, b.nonce, b.received))
                        if cur.rowcount == 0:
                            # seen before (the broker sending again what we
                            # took before a crash, or a replay): its nonce
                            # was committed with its records
                            replayed.add(i)
                            continue
                    before = self.db.total_changes
                    dev, q, got = b.dev, b.q, b.received
                    boot = b.boot if isinstance(b.boot, bytes) else None
                    utc, mono = _int(b.utc_ms), _int(b.mono_ms)
                    rows = []
                    add = rows.append
                    for rec, raw in b.recs:
                        k, t = rec.get("k"), rec.get("t")
                        add((dev, rec["seq"], q, k if type(k) is str else None, t if type(t) is int and -(1 << 63) <= t < (1 << 63) else None, raw, got, boot, utc, mono))
                    cur.executemany("INSERT OR IGNORE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
                    n = self.db.total_changes - before
                    new += n
                    dup += len(b.recs) - n
                if attest:
                    cur.executemany(
                        "INSERT OR IGNORE INTO attestations VALUES (?, ?, ?, ?, ?, ?, ?)",
                        [(d, q, boot, got, want, None if m is None else int(m), t) for d, q, boot, got, want, m, t in attest],
                    )
                self.db.commit()
            except sqlite3.Error as e:
                try:
                    self.db.rollback()
                except sqlite3.Error:
                    pass
                msg = str(e)
                if isinstance(e, (sqlite3.IntegrityError, sqlite3.InterfaceError, sqlite3.DataError)):
                    reason = "data"
                else:
                    # locked by another writer, I/O, a vanished file: try again
                    reason = "disk_full" if "full" in msg else "read_only" if "readonly" in msg else "unavailable"
                raise StoreError(reason, "SQLite %s: %s" % (self.path, msg))
        return new, dup, replayed

    def seqs(self, device):
        with self.lock:
            return [r[0] for r in self.db.execute("SELECT seq FROM records WHERE device=? ORDER BY seq", (device,))]

    def close(self):
        self.db.close()


def open(target, log=None):
    return SQLiteStore(target, log)
