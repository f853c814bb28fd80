"""Store-and-forward: journal batches to MQTT (QoS 1), deleted only after
the receiver's receipt (or, with ``receipts`` off, the broker's PUBACK).

    up = Uplink(journal, client, "sim-0001", key=device_key)
    while True:
        up.pump()                 # never raises for a broker problem

A batch is one MQTT message on ``edgefw/<device>/up``: the CBOR map
``{"dev", "q", "first", "last", "id", "boot", "utc_ms", "mono_ms",
"recs": [record CBOR bytes, ...]}`` (``id``: 8 random bytes the receipt
names; ``boot``: this run's id; ``utc_ms``: the device's UTC clock, null
while it is not set; ``mono_ms``: its millisecond tick),
sealed (``firmware.uplink.seal``) when a key is given. It goes out when
``batch_records`` records or ``batch_bytes`` bytes are waiting, or the
oldest waiting record is ``batch_ms`` old. Up to ``window`` batches may be
in flight; the journal's ack cursor moves only over a contiguous run of
receipted batches, so a receipt lost in a disconnect means the batch is
sent again (the receiver drops duplicates by device and sequence number).

Broker problems (refused connection, timeout, reset) disconnect, wait an
exponential backoff with jitter (``backoff_ms`` up to ``backoff_max_ms``),
and retry. ``rate_bytes_s`` caps the bandwidth with a token bucket.

The client is chosen in one place (``make_client``): paho-mqtt on CPython
(``firmware.linux.paho_client``), umqtt.simple on MicroPython
(``firmware.uplink.umqtt_client``). Both offer ``connect()``, ``publish(topic,
payload) -> handle``, ``wait(handle, timeout_ms) -> bool``,
``receipts(timeout_ms) -> [payload, ...]`` (what arrived on
``receipt_topic``, subscribed at connect), ``disconnect()``.
"""

import os

from firmware import cbor
from firmware.clocks import boot_id, utc_ms
from firmware.store.outbox import live_lane
from hal.clock import sleep_ms, ticks_diff, ticks_ms
from hal.compat import IS_MICROPYTHON


def make_client(host, port=1883, client_id="edgefw", username=None, password=None, tls=None, timeout_ms=5000):
    if IS_MICROPYTHON:
        from firmware.uplink.umqtt_client import Client
    else:
        from firmware.linux.paho_client import Client
    return Client(host, port, client_id, username, password, tls, timeout_ms)


def check_config(cfg, src="<config>"):
    """Check the config's ``uplink`` section, and that the files it names
    exist (ConfigError names the field). Returns (host, port). The rules
    live in ``firmware.config.check_uplink``, which load_config runs too."""
    from firmware.config import check_uplink

    return check_uplink(cfg, src, files=True)


def topic_for(device_id):
    return "edgefw/%s/up" % device_id


# where a batch in flight stands
_SENT = 0  # published, no PUBACK yet
_AT_BROKER = 1  # PUBACK: the broker has it, the receiver may not
_DONE = 2  # receipted (or, without receipts, PUBACKed): may be deleted


class _Batch:
    __slots__ = ("handle", "q", "lane", "first", "last", "n", "size", "t", "id", "state")

    def __init__(self, handle, q, lane, first, last, n, size, t, bid):
        self.handle = handle
        self.q = q
        self.lane = lane
        self.first = first
        self.last = last
        self.n = n
        self.size = size
        self.t = t
        self.id = bid
        self.state = _SENT


class Uplink:
    """``receipts`` (the default): a record is deleted only after the
    receiver's receipt says it is in the database (``firmware.uplink.receipt``);
    a batch with no receipt ``receipt_timeout_ms`` after its PUBACK is
    sent again, with it every later one, and then the deadline doubles and
    the window halves. Receipts bring them back: the deadline an eighth of
    the way to four times each receipt's delay (at least
    ``receipt_timeout_ms``), the window by one batch for each batch done,
    from one batch at start. With a key,
    a receipt for a batch given up on counts for what went again in its
    range. Without receipts, the broker's PUBACK is enough (the broker then
    holds the only copy until a receiver takes it).

    Network calls never run under the journal's lock: it is taken only to
    read a batch and to move the ack cursor, so a broker that hangs holds
    up this uplink, never the loop's record stage."""

    # the gateway's commands (firmware.uplink.command): on the class, so a
    # node that never gets one spends no heap on them
    commands_taken = 0
    commands_refused = 0
    last_command_refusal = None

    def __init__(
        self,
        journal,
        client,
        device_id,
        key=None,
        topic=None,
        batch_records=200,
        batch_bytes=65536,
        batch_ms=1000,
        window=4,
        rate_bytes_s=0,
        backoff_ms=200,
        backoff_max_ms=30000,
        ack_timeout_ms=10000,
        live_first=False,
        receipts=True,
        receipt_timeout_ms=5000,
    ):
        self.j = journal
        self.live_first = live_first
        self.client = client
        self.device = device_id
        self.topic = topic or topic_for(device_id)
        self.key = key
        self.sealer = None
        if key is not None:
            from firmware.uplink.seal import Sealer

            self.sealer = Sealer(key, device_id)
        self.receipts = receipts
        if receipts:
            from firmware.uplink import receipt

            self._receipt = receipt
            client.receipt_topic = receipt.topic_for(device_id)
        self.receipt_timeout_ms = receipt_timeout_ms
        # the receipt deadline and the window in use follow the receiver,
        # as TCP's do: a fleet back from an outage with its backlog must
        # not send again what ingest is still working through (measured:
        # 1,000 devices resent 11.6 times their backlog at fixed values)
        self._rto = receipt_timeout_ms
        # one batch first, one more for each done: a fleet that starts
        # together does not put its whole windows in flight at once
        self._cwnd = 1
        self.batch_records = batch_records
        self.batch_bytes = batch_bytes
        self.batch_ms = batch_ms
        self.window = window
        self.rate = rate_bytes_s
        self.backoff_ms = backoff_ms
        self.backoff_max_ms = backoff_max_ms
        self.ack_timeout_ms = ack_timeout_ms
        self.connected = False
        self._attempt = 0
        self._retry_at = None
        self._pause = None  # (t0, ms): no new batches after a refusal
        self._refusals = 0
        self._inflight = []
        self._sent_to = {}  # lane -> last seq handed to the broker
        self._waiting_since = None
        self._tokens = 0
        self._tok_t = ticks_ms()
        self._short = 0  # bytes of the batch the token bucket held back
        self.batches = 0
        self.records = 0
        self.bytes = 0
        self.reconnects = 0
        self.errors = 0
        self.last_error = None
        self.resent = 0
        self.rejected = 0
        self.last_rejection = None
        self.bad_receipts = 0
        self.pending_records = None

    # ------------------------------------------------------------------
    def _backoff(self, attempt):
        delay = min(self.backoff_max_ms, self.backoff_ms * (1 << min(attempt, 16)))
        # full jitter in [delay/2, delay*3/2): devices that lost the broker
        # together do not all come back in the same millisecond
        r = int.from_bytes(os.urandom(2), "little") / 65536
        return (ticks_ms(), int(delay * (0.5 + r)))

    def _forget_inflight(self):
        # what had no receipt goes again: the receiver drops duplicates
        self._inflight = []
        self._sent_to = {}

    def _fail(self, e):
        self.errors += 1
        self.last_error = str(e) or repr(e)
        try:
            self.client.disconnect()
        except Exception:
            pass
        self.connected = False
        self._forget_inflight()
        self._retry_at = self._backoff(self._attempt)
        self._attempt += 1

    def _ensure_connected(self):
        if self.connected:
            return True
        if self._retry_at is not None:
            t0, wait = self._retry_at
            if ticks_diff(ticks_ms(), t0) < wait:
                return False
        try:
            self.client.connect()
        except Exception as e:  # every broker problem is retried the same way
            self._fail(e)
            return False
        if self._attempt:
            self.reconnects += 1
        if self.live_first:
            # a backlog waiting now: what is appended from here on goes first
            from firmware.store import outbox

            with self.j.lock:
                outbox.start_live(self.j)
        self.connected = True
        self._attempt = 0
        self._retry_at = None
        return True

    def _take_tokens(self, n):
        if not self.rate:
            return True
        now = ticks_ms()
        self._tokens = min(self.rate, self._tokens + self.rate * ticks_diff(now, self._tok_t) / 1000)
        self._tok_t = now
        if self._tokens >= n or (self._tokens >= self.rate and n > self.rate):
            self._tokens -= n
            return True
        return False

    def _read(self, n):
        """The next batch's records (under the journal's lock: short)."""
        with self.j.lock:
            q, recs = self.j.read_batch_after(self._sent_to, n, self.batch_bytes)
            live = self.j._live.get(q) if recs else None
        return q, recs, live

    def _batch(self):
        # the first batch after boot is a thirty-second of the others: a
        # fleet that starts together with its backlogs does not put whole
        # batches before the receiver at once, before it can pace them
        # (1,000 devices at once: an eighth kept the first receipts
        # waiting up to a second)
        n = self.batch_records if self.batches else self.batch_records // 32 or 1
        q, recs, live = self._read(n)
        if not recs:
            self._waiting_since = None
            return None
        payloads = [p for _s, p in recs]
        nbytes = sum(map(len, payloads))
        if len(recs) < n and nbytes < self.batch_bytes * 3 // 4:
            # not full: wait for more, up to batch_ms after the first one
            if self._waiting_since is None:
                self._waiting_since = ticks_ms()
            if ticks_diff(ticks_ms(), self._waiting_since) < self.batch_ms:
                return None
        self._waiting_since = None
        first, last = recs[0][0], recs[-1][0]
        bid = os.urandom(8)
        m = {"dev": self.device, "q": q, "first": first, "last": last, "id": bid, "boot": boot_id(), "utc_ms": utc_ms(), "mono_ms": ticks_ms()}
        m["recs"] = payloads
        body = cbor.dumps(m)
        if self.sealer is not None:
            body = self.sealer.seal(q, first, last, body)
        # a live range's records are in flight on a lane of their own
        lane = live_lane(q) if live is not None and first >= live[0] else q
        return q, lane, first, last, len(recs), body, bid

    def pump(self, max_batches=64):
        """Send what is due and collect acknowledgements; returns the number
        of records acknowledged in this call."""
        # a group of held records that is due goes to disk before reading
        with self.j.lock:
            self.j.tick()
        if not self._ensure_connected():
            return 0
        acked = 0
        try:
            if self.receipts:
                self._take_receipts(0)
            sent = 0
            self._short = 0
            while len(self._inflight) < self._cwnd and sent < max_batches and not self._paused():
                b = self._batch()
                if b is None:
                    break
                q, lane, first, last, n, body, bid = b
                if not self._take_tokens(len(body)):
                    self._short = len(body)
                    break
                self._short = 0
                h = self.client.publish(self.topic, body)
                self._inflight.append(_Batch(h, q, lane, first, last, n, len(body), ticks_ms(), bid))
                self._sent_to[lane] = last
                sent += 1
            acked += self._collect(block=len(self._inflight) >= self._cwnd)
        except Exception as e:
            self._fail(e)
        return acked

    def _paused(self):
        if self._pause is None:
            return False
        if ticks_diff(ticks_ms(), self._pause[0]) >= self._pause[1]:
            self._pause = None
            return False
        return True

    def _collect(self, block):
        wait_ms = self.ack_timeout_ms if block else 0
        for b in self._inflight:
            if b.state != _SENT:
                continue
            if not self.client.wait(b.handle, wait_ms):
                if ticks_diff(ticks_ms(), b.t) > self.ack_timeout_ms:
                    raise OSError("no PUBACK within %d ms" % self.ack_timeout_ms)
                break
            wait_ms = 0
            b.state = _AT_BROKER if self.receipts else _DONE
            b.t = ticks_ms()
        if self.receipts and self._inflight:
            if block and self._inflight[0].state == _AT_BROKER:
                # the window is full: wait a little for the receiver
                self._take_receipts(min(100, self._rto, self.ack_timeout_ms))
            for b in self._inflight:
                if b.state == _AT_BROKER and ticks_diff(ticks_ms(), b.t) > self._rto:
                    self.resent += sum(x.n for x in self._inflight if x.state != _DONE)
                    self.last_error = "no receipt within %d ms: sending again" % self._rto
                    self._drop_from(self._inflight.index(b))
                    # back off: a longer deadline, half the window
                    self._rto = min(16 * self.receipt_timeout_ms, 2 * self._rto)
                    self._cwnd = max(1, self._cwnd // 2)
                    break
        acked = 0
        while self._inflight and self._inflight[0].state == _DONE:
            b = self._inflight.pop(0)
            nxt = self._inflight[0] if self._inflight else None
            if nxt is None or nxt.state != _DONE or nxt.lane != b.lane:
                # receipts come in bunches (the receiver commits several
                # batches at once): one ack, one sync of the ack file,
                # for a run of receipted batches of one lane
                with self.j.lock:
                    self.j.ack(b.q, b.last)
            self.batches += 1
            self.records += b.n
            self.bytes += b.size
            acked += b.n
            if self._cwnd < self.window and self._pause is None:
                # one batch more in flight for each one done (not while
                # held: the receiver is pacing this device)
                self._cwnd += 1
        return acked

    def _drop_from(self, i):
        """Forget batch ``i`` and every later one: they are read and sent
        again. Batches before ``i`` stay."""
        keep = self._inflight[:i]
        self._inflight = keep
        self._sent_to = {}
        for b in keep:
            self._sent_to[b.lane] = b.last

    def _find(self, bid):
        for i in range(len(self._inflight)):
            if self._inflight[i].id == bid:
                return i
        return None

    def _timed(self, ms):
        # the deadline moves an eighth of the way to four times this
        # receipt's delay (from the PUBACK, or from the publish when the
        # receipt came with it), never below the configured one nor above
        # 16 times it
        t = self.receipt_timeout_ms
        self._rto = min(16 * t, max(t, (7 * self._rto + 4 * ms) // 8))

    def _take_receipts(self, timeout_ms):
        for blob in self.client.receipts(timeout_ms):
            r = self._receipt.parse(blob, self.key)
            if r is None:
                self.bad_receipts += 1
                continue
            i = self._find(r.get("id"))
            b = self._inflight[i] if i is not None else None
            if r["ok"]:
                if not r["verified"]:
                    self.bad_receipts += 1
                    continue
                # the batch it names; or, for a send given up on, what went
                # again in its range: those records are stored all the same
                # (only a keyed receipt: its tag covers the range)
                cover = b is None and self.key is not None and r.get("dev") == self.device
                for x in self._inflight:
                    if x.state != _DONE and (x is b or cover and x.q == r["q"] and r["first"] <= x.first and x.last <= r["last"]):
                        if x is b:
                            self._timed(ticks_diff(ticks_ms(), b.t))
                        if x.state == _SENT:
                            # its PUBACK came with the receipt: take it, or
                            # the client keeps it until the next connection
                            self.client.wait(x.handle, 0)
                        x.state = _DONE
                # the receiver paces a fleet's backlog: no new batch for
                # this long (bounded: a receiver cannot stall the device),
                # then one: it booked one slot for this device
                h = r.get("hold")
                if type(h) is int and h > 0:
                    self._pause = (ticks_ms(), min(h, self.backoff_max_ms))
                    self._cwnd = 1
                continue
            # refused by the receiver: the records stay, and say why
            self.last_rejection = str(r.get("why"))
            self.last_error = "receiver refused a batch: %s" % self.last_rejection
            if b is not None:
                self.rejected += b.n
                self._drop_from(i)
            self._pause = self._backoff(self._refusals)
            self._refusals += 1

    def _await(self, ms):
        """Wait up to ``ms`` for the next thing the uplink waits on: the
        PUBACK of the oldest batch without one, else a receipt (cut to the
        first receipt deadline, so a batch goes again on time). True when
        something arrived."""
        for b in self._inflight:
            if b.state == _SENT:
                if not self.client.wait(b.handle, min(ms, self.ack_timeout_ms)):
                    return False
                b.state = _AT_BROKER if self.receipts else _DONE
                b.t = ticks_ms()
                return True
        if not self.receipts:
            return False
        now = ticks_ms()
        for b in self._inflight:
            if b.state == _AT_BROKER:
                ms = min(ms, max(0, self._rto - ticks_diff(now, b.t)) + 1)
        before = [b.state for b in self._inflight]
        n = self.bad_receipts
        self._take_receipts(ms)
        return n != self.bad_receipts or before != [b.state for b in self._inflight]

    def drain(self, timeout_ms=60000, idle_sleep_ms=5):
        """Pump until nothing is pending or the time is up; True when the
        journal is fully acknowledged. Between pumps it sleeps on what it
        waits for (a PUBACK, a receipt, the next connection attempt), and
        every wait is cut to the time left, so this returns within
        ``timeout_ms`` and a few ms."""
        t0 = ticks_ms()
        # whatever the journal still holds is written and synced first
        with self.j.lock:
            self.j.flush()
        c = self.client
        saved = self.batch_ms, self.ack_timeout_ms, c.timeout_s, getattr(c, "deadline_us", None)
        self.batch_ms = 0
        if saved[3] is not None:
            # the coop client's slice ends where the loop's next cycle
            # was: past now, it would make every wait return at once
            c.deadline_us = None
        try:
            while True:
                left = timeout_ms - ticks_diff(ticks_ms(), t0)
                if left <= 0:
                    return False
                self.ack_timeout_ms = max(1, min(saved[1], left))
                c.timeout_s = max(0.001, min(saved[2], left / 1000))
                self.pump()
                if not self._inflight:
                    with self.j.lock:
                        n = self.j.pending()
                    self.pending_records = n
                    if n == 0:
                        return True
                left = timeout_ms - ticks_diff(ticks_ms(), t0)
                if left <= 0:
                    return False
                nap = self._idle_ms(idle_sleep_ms)
                if nap is None:
                    # batches in flight and nothing more may go: wait on them
                    t1 = ticks_ms()
                    try:
                        if self._await(left):
                            continue
                    except Exception as e:
                        self._fail(e)
                        continue
                    # a client that cannot block (umqtt.simple's receipts)
                    # returns at once: do not spin on it
                    nap = idle_sleep_ms - ticks_diff(ticks_ms(), t1)
                if nap > 0:
                    sleep_ms(min(nap, left))
        finally:
            self.batch_ms, self.ack_timeout_ms, c.timeout_s = saved[:3]
            if saved[3] is not None:
                c.deadline_us = saved[3]

    def _idle_ms(self, idle_sleep_ms):
        """How long drain may sleep before pumping again, or None when it
        should wait on the batches in flight."""
        if not self.connected:
            if self._retry_at is None:
                return idle_sleep_ms
            t0, wait = self._retry_at
            return max(1, wait - ticks_diff(ticks_ms(), t0))
        if self._pause is not None:
            t0, wait = self._pause
            return max(1, wait - ticks_diff(ticks_ms(), t0))
        if self._short and len(self._inflight) < self._cwnd:
            # the token bucket holds the next batch back: until it refills
            return max(1, int((self._short - self._tokens) * 1000 / self.rate) + 1)
        if not self._inflight:
            # records pending but none readable yet (not synced): soon
            return idle_sleep_ms
        return None

    def state(self):
        """One line for people: connected, or when the next try is."""
        if self.connected:
            s = "connected"
        elif self._retry_at is not None:
            t0, wait = self._retry_at
            s = "retrying in %.1f s" % (max(0, wait - ticks_diff(ticks_ms(), t0)) / 1000)
        else:
            s = "connecting"
        if self.pending_records is not None:
            s += ", %d pending" % self.pending_records
        if self.last_error and not self.connected:
            s += " (%s)" % self.last_error
        elif self.last_rejection is not None and self._pause is not None:
            s += " (refused: %s)" % self.last_rejection
        return s

    def stats(self):
        return {
            "state": self.state(),
            "batches": self.batches,
            "records": self.records,
            "bytes": self.bytes,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "last_error": self.last_error,
            "connected": self.connected,
            "receipts": self.receipts,
            "resent": self.resent,
            "rejected": self.rejected,
            "last_rejection": self.last_rejection,
            "bad_receipts": self.bad_receipts,
            "pending": self.pending_records,
            "commands_taken": self.commands_taken,
            "commands_refused": self.commands_refused,
            "last_command_refusal": self.last_command_refusal,
        }


def read_key(path):
    """The device's seal key: a file holding it in hex; None for no path."""
    if not path:
        return None
    import binascii

    with open(path) as f:
        return binascii.unhexlify(f.read().strip())


def tls_of(u):
    """The client's TLS settings from the config's ``uplink`` section: None
    without ``tls_ca``; else the CA, and the client certificate and key
    when the broker asks for one (``edgefw fleet add`` writes them)."""
    if not u.get("tls_ca"):
        return None
    return {"ca": u["tls_ca"], "cert": u.get("tls_cert"), "key": u.get("tls_key")}


def from_config(journal, client, device_id, u, **limits):
    """An ``Uplink`` from the config's ``uplink`` section ``u``, the one
    way both targets build it; ``limits`` override its settings (the
    MicroPython loop keeps batches and the window small)."""
    kw = dict(
        key=read_key(u["key_file"]),
        batch_records=u["batch_records"],
        batch_ms=u["batch_ms"],
        rate_bytes_s=u["rate_bytes_s"],
        live_first=u["live_first"],
        receipts=u["receipts"],
        receipt_timeout_ms=u["receipt_timeout_ms"],
    )
    kw.update(limits)
    return Uplink(journal, client, device_id, **kw)
