"""PostgreSQL through psycopg 3: several ingest workers, one database.

Schema (created on first connect; every worker may race to it, an
advisory lock orders them):

    records(device text, priority smallint, seq bigint, kind text,
            t_us bigint, received timestamptz, boot bytea,
            device_utc_ms bigint, device_utc timestamptz,
            device_mono_ms bigint, body bytea, data json)
        PARTITION BY RANGE (received): one table per UTC day,
        records_pYYYYMMDD, made ahead (today and tomorrow) by the workers
        index (device, received) on every partition
    record_keys(device text, seq bigint, received timestamptz,
                PRIMARY KEY (device, seq))
    attestations(device text, seq bigint, boot bytea, reported text,
                 expected text, match boolean, received timestamptz,
                 PRIMARY KEY (device, seq))
        one row per boot event that named its image (firmware.attest):
        what it ran, what the fleet registry expected (NULL: none named)
    readings: view, one row per channel of a window record
    edgefw_retain(keep interval): drops whole days older than ``keep``
        and their keys

``priority`` is the device's journal queue (0 events, 1 telemetry);
``data`` is the record as JSON (bytes as hex) for dashboards, ``body``
its CBOR exactly as the device wrote it. ``data`` is ``json``, checked
and kept as text, not ``jsonb``: parsing every record into jsonb took
about a fifth of the server's CPU per record at ingest (2.7 of 13 us),
for operators (containment, GIN indexes) the dashboards' queries do not
use; ``->``, ``->>`` and the ``readings`` view work on it, and
``data::jsonb`` gives the rest. A database made while the column was
jsonb keeps it: json is assigned to jsonb, and the view casts.

Why ``record_keys``: a record's identity is (device, seq) (sequence
numbers never repeat on a device, across its queues and restarts), while
``received`` is when this copy arrived, so a resend can land in another
day's partition; PostgreSQL's unique indexes on a partitioned table must
contain the partition key, so they cannot stop that. The keys table can:
its keys go in, in the same transaction as the records, before them;
a key already there stops them (and the records behind it), so replays
and resends are harmless even when two workers take copies of one batch
at the same moment.
"""

import datetime
import json
import re
import threading

from edgefw.ingest.db.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    device text NOT NULL,
    priority smallint NOT NULL,
    seq bigint NOT NULL,
    kind text,
    t_us bigint,
    received timestamptz NOT NULL,
    boot bytea,
    device_utc_ms bigint,
    device_utc timestamptz,
    device_mono_ms bigint,
    body bytea NOT NULL,
    data json NOT NULL
) PARTITION BY RANGE (received);
CREATE INDEX IF NOT EXISTS records_device_received ON records (device, received);
CREATE TABLE IF NOT EXISTS record_keys (
    device text NOT NULL,
    seq bigint NOT NULL,
    received timestamptz NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE TABLE IF NOT EXISTS attestations (
    device text NOT NULL,
    seq bigint NOT NULL,
    boot bytea,
    reported text NOT NULL,
    expected text,
    match boolean,
    received timestamptz NOT NULL,
    PRIMARY KEY (device, seq)
);
CREATE OR REPLACE VIEW readings AS
SELECT r.device, r.received, r.device_utc, r.seq, r.t_us, c.key AS channel,
       CASE WHEN json_typeof(c.value -> 0) = 'number' THEN (c.value ->> 0)::numeric END AS n,
       CASE WHEN json_typeof(c.value -> 1) = 'number' THEN (c.value ->> 1)::numeric END AS min_milli,
       CASE WHEN json_typeof(c.value -> 2) = 'number' THEN (c.value ->> 2)::numeric END AS mean_milli,
       CASE WHEN json_typeof(c.value -> 3) = 'number' THEN (c.value ->> 3)::numeric END AS max_milli
FROM records r CROSS JOIN LATERAL json_each(CASE WHEN json_typeof(r.data::json -> 'ch') = 'object' THEN r.data::json -> 'ch' ELSE '{}'::json END) c
WHERE r.kind = 'win';
CREATE OR REPLACE FUNCTION edgefw_retain(keep interval) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    part record;
    dropped integer := 0;
    cutoff timestamptz := date_trunc('day', now() - keep);
BEGIN
    FOR part IN
        SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'records'::regclass AND c.relname ~ '^records_p[0-9]{8}$'
          AND to_date(substr(c.relname, 10), 'YYYYMMDD') + 1 <= cutoff::date
    LOOP
        EXECUTE format('DROP TABLE %I', part.relname);
        dropped := dropped + 1;
    END LOOP;
    DELETE FROM record_keys WHERE received < cutoff;
    RETURN dropped;
END $$;
"""

STAGE = """
CREATE TEMP TABLE IF NOT EXISTS edgefw_keys (
    device text, seq bigint, received timestamptz
) ON COMMIT DELETE ROWS
"""

INSERT_KEYS = """
INSERT INTO record_keys (device, seq, received)
SELECT device, seq, received FROM edgefw_keys
ON CONFLICT DO NOTHING
"""
# some were here already (a resend, a replay, another worker's copy): the
# keys this statement inserted say which rows become records
INSERT_KEYS_NEW = INSERT_KEYS.strip() + " RETURNING device, seq"

# binary COPY: each value crosses in its type's wire format, packed by
# psycopg's C code. Two columns go as their wire format's plain parts:
# timestamptz is an int8 of microseconds since 2000-01-01 UTC, json is
# its text (no version byte, unlike jsonb)
KEY_COLUMNS = "device, seq, received"
KEY_TYPES = ("text", "int8", "int8")
COLUMNS = "device, priority, seq, kind, t_us, received, boot, device_utc_ms, device_utc, device_mono_ms, body, data"
TYPES = ("text", "int2", "int8", "text", "int8", "int8", "bytea", "int8", "int8", "int8", "bytea", "text")
# 1970-01-01 in timestamptz's wire format
_EPOCH_US = -946684800000000
# a device clock beyond the year 6000 or so is kept in ms, not as a time
_UTC_MAX_MS = 1 << 47
# one constant for the advisory lock that orders schema and partition DDL
_DDL_LOCK = 0x65646766


def check_url(text):
    """The URL if libpq can read it, else ValueError naming the fix."""
    fix = "write --db postgresql://USER:PASSWORD@HOST:PORT/DBNAME (percent-encode special characters in the password)"
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ValueError("--db %s needs psycopg 3: pip install 'psycopg[binary]' (or pip install 'edgefw[postgres]')" % redact(text))
    try:
        d = conninfo_to_dict(text)
    except Exception as e:
        # libpq quotes the URL it could not read, password and all
        why = str(e).strip().replace(text, redact(text))
        raise ValueError("--db %s is not a PostgreSQL URL libpq can read (%s); %s" % (redact(text), why, fix))
    port = d.get("port")
    if port is not None and not all(p.isdigit() and 0 < int(p) < 65536 for p in str(port).split(",")):
        raise ValueError("--db %s: port %r is not a number from 1 to 65535; %s" % (redact(text), port, fix))
    return text


def redact(url):
    """The URL without its password: what logs and errors may show."""
    return re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url)


def _reason(e):
    state = getattr(e, "sqlstate", None) or ""
    msg = str(e)
    if state in ("28P01", "28000") or "password authentication failed" in msg or "no pg_hba.conf entry" in msg:
        return "auth"
    if state == "25006":
        return "read_only"
    if state in ("53100", "53000"):
        return "disk_full"
    if state.startswith("08") or state.startswith("57P") or not state:
        return "unavailable"
    if state[:2] in ("22", "23", "54"):
        # the data itself: another try of the same batch fails the same way
        return "data"
    return "server"


def _json_default(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return str(v)


def _scrub(v):
    # JSON has no NaN or infinities, PostgreSQL's jsonb refuses them
    if isinstance(v, float) and v != v or v in (float("inf"), float("-inf")):
        return None
    if isinstance(v, str):
        return _text(v)
    if isinstance(v, dict):
        return {_text(str(k)): _scrub(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_scrub(x) for x in v]
    return v


# one encoder for every record: json.dumps with options builds a new one
# per call, a measurable part of ingest's CPU per record
_encode = json.JSONEncoder(default=_json_default, allow_nan=False, separators=(",", ":")).encode

try:
    import orjson
except ImportError:  # optional (edgefw[postgres] brings it): json does it all
    orjson = None


def _orjson_default(v):
    # bytes only; anything else (a big int, a tagged CBOR value, a
    # datetime passed through) goes to json's path below, so every record
    # comes out as it always did
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    raise TypeError


# a key that is not text also goes to json's path (orjson spells a NaN key
# null where json spells it nan)
_ORJSON_OPTS = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS | orjson.OPT_PASSTHROUGH_DATACLASS if orjson else 0


def to_json(rec):
    if orjson is not None and type(rec) is dict:
        # 8x json's speed on a record (0.4 against 3.4 us): the largest
        # single part of ingest's CPU per record. Its text may differ from
        # json's in a float's spelling (1e16, 1e+16), never in the value
        # jsonb stores; NaN and the infinities come out as null, as
        # _scrub makes them
        try:
            j = orjson.dumps(rec, default=_orjson_default, option=_ORJSON_OPTS).decode()
        except TypeError:
            j = None
        if j is not None and "\\u0000" not in j:
            return j
    try:
        j = _encode(rec)
    except (ValueError, TypeError):
        j = _encode(_scrub(rec))
    if "\\u0000" in j:
        # jsonb cannot hold U+0000: U+FFFD stands in (body keeps the exact bytes)
        j = _encode(_scrub(rec))
    return j


def _text(v):
    # PostgreSQL text cannot hold NUL
    return v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v


def _int(v):
    return v if isinstance(v, int) and not isinstance(v, bool) and -(1 << 63) <= v < (1 << 63) else None


def _day(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).date()


class PostgresStore:
    scheme = "postgresql"

    def __init__(self, url, log=None, connect_timeout=5):
        self.url = url
        self.where = redact(url)
        self.log = log
        self.connect_timeout = connect_timeout
        self.conn = None
        self.lock = threading.Lock()
        self._days = set()
        self._jsonb = False
        try:
            with self.lock:
                self._connect()
        except StoreError as e:
            # ingest starts anyway: batches wait unreceipted until it is back
            if log:
                log.write("edgefw ingest: database %s: %s (%s); retrying\n" % (self.where, e.reason, e))

    def _connect(self):
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=False, connect_timeout=self.connect_timeout, application_name="edgefw-ingest")
        except psycopg.Error as e:
            raise StoreError(_reason(e), str(e).strip())
        try:
            # a receipt lets the device delete: whatever the server's
            # default, this session's commits are on disk when they return
            conn.execute("SET synchronous_commit TO on")
            if conn.execute("SELECT to_regclass('record_keys') IS NULL OR to_regclass('readings') IS NULL OR to_regclass('attestations') IS NULL").fetchone()[0]:
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
                conn.execute(SCHEMA)
            conn.execute(STAGE)
            # a database made while data was jsonb keeps it: jsonb's wire
            # format is its text after a version byte
            jsonb = conn.execute("SELECT atttypid = 'jsonb'::regtype FROM pg_attribute WHERE attrelid = 'records'::regclass AND attname = 'data'").fetchone()
            self._jsonb = bool(jsonb and jsonb[0])
            conn.commit()
            self.conn = conn
            self._days = set()
            now = datetime.datetime.now(datetime.timezone.utc).date()
            self._partitions({now, now + datetime.timedelta(days=1)})
        except psycopg.Error as e:
            self.conn = None
            conn.close()
            raise StoreError(_reason(e), str(e).strip())

    def _partitions(self, days):
        """Each day's partition exists (its own committed transaction)."""
        need = sorted(d for d in days if d not in self._days)
        if not need:
            return
        c = self.conn
        c.execute("SELECT pg_advisory_xact_lock(%s)", (_DDL_LOCK,))
        for d in need:
            nxt = d + datetime.timedelta(days=1)
            c.execute(
                "CREATE TABLE IF NOT EXISTS records_p%s PARTITION OF records FOR VALUES FROM ('%s 00:00:00+00') TO ('%s 00:00:00+00')"
                % (d.strftime("%Y%m%d"), d.isoformat(), nxt.isoformat())
            )
        c.commit()
        self._days.update(need)

    def write(self, batches, attest=()):
        """Store ``batches`` and the ``attest`` rows of their boot events in
        one transaction. Returns (new records,
        duplicate records, set()): replays need no nonce table here, their
        records are duplicates by key."""
        import psycopg

        seen = set()
        rows = []
        days = set()
        for b in batches:
            days.add(_day(b.received))
            # to_timestamp's arithmetic, to the microsecond
            received = round((b.received + _EPOCH_US / 1e6) * 1e6)
            boot = bytes(b.boot) if isinstance(b.boot, (bytes, bytearray)) else None
            utc, mono = _int(b.utc_ms), _int(b.mono_ms)
            at = utc * 1000 + _EPOCH_US if utc is not None and -_UTC_MAX_MS < utc < _UTC_MAX_MS else None
            # the device as stored (a NUL becomes U+FFFD): ids that meet
            # there are one key in the database, so they are one here too
            dev = _text(b.dev)
            for rec, raw in b.recs:
                seq = rec["seq"]
                key = (dev, seq)
                if key in seen:
                    continue
                seen.add(key)
                k = rec.get("k")
                rows.append((dev, b.q, seq, _text(k) if isinstance(k, str) else None, _int(rec.get("t")), received, boot, utc, at, mono, raw, to_json(rec)))
        keys = [(r[0], r[2], r[5]) for r in rows]
        total = sum(len(b.recs) for b in batches)
        with self.lock:
            try:
                if self.conn is None or self.conn.closed:
                    self._connect()
                # near midnight a group may reach into a day not made yet
                if days:
                    days.add(max(days) + datetime.timedelta(days=1))
                self._partitions(days)
                with self.conn.cursor() as cur:
                    # the keys first, then the records straight into their
                    # table: a record is written once, and only when its
                    # key is new. Every key new is the rule under load, so
                    # the keys go in by COPY, which the primary key stops
                    # at the first that is not (half the server's time a
                    # record went to staging the keys and inserting them
                    # with ON CONFLICT)
                    try:
                        self._copy(cur, "record_keys", KEY_COLUMNS, KEY_TYPES, keys)
                    except psycopg.errors.UniqueViolation:
                        # a resend, a replay, another worker's copy: undone
                        # whole and done again, asking which keys are new
                        self.conn.rollback()
                        self._copy(cur, "edgefw_keys", KEY_COLUMNS, KEY_TYPES, keys)
                        cur.execute(INSERT_KEYS_NEW)
                        fresh = set(cur.fetchall())
                        rows = [r for r in rows if (r[0], r[2]) in fresh]
                    if self._jsonb:
                        rows = [r[:11] + ("\x01" + r[11],) for r in rows]
                    self._copy(cur, "records", COLUMNS, TYPES, rows)
                    new = len(rows)
                    if attest:
                        cur.executemany(
                            "INSERT INTO attestations VALUES (%s, %s, %s, %s, %s, %s, to_timestamp(%s)) ON CONFLICT DO NOTHING",
                            [(_text(d), q, boot, _text(got), want, m, t) for d, q, boot, got, want, m, t in attest],
                        )
                self.conn.commit()
            except psycopg.Error as e:
                self._drop()
                raise StoreError(_reason(e), str(e).strip())
            except StoreError:
                self._drop()
                raise
            except (TypeError, ValueError, OverflowError) as e:
                # a value binary COPY cannot encode as its column's type:
                # the batch's own data, refused like a row the server refuses
                self._drop()
                raise StoreError("data", "a value does not fit its column: %s" % e)
        return new, total - new, set()

    @staticmethod
    def _copy(cur, table, columns, types, rows):
        # binary: the bytea columns cross without hex on either side (a
        # COPY of the rows took 1.6 against 2.6 us a record, measured alone)
        if not rows:
            return
        with cur.copy("COPY %s (%s) FROM STDIN (FORMAT BINARY)" % (table, columns)) as cp:
            cp.set_types(types)
            for r in rows:
                cp.write_row(r)

    def _drop(self):
        # a failed transaction or connection: start clean on the next write
        c, self.conn = self.conn, None
        if c is not None:
            try:
                c.close()
            except Exception:
                pass

    def seqs(self, device):
        with self.lock:
            if self.conn is None:
                self._connect()
            rows = self.conn.execute("SELECT seq FROM records WHERE device = %s ORDER BY seq", (device,)).fetchall()
            self.conn.commit()
        return [r[0] for r in rows]

    def close(self):
        with self.lock:
            self._drop()


def open(target, log=None):
    return PostgresStore(target, log)
