"""Store-and-forward: journal batches to MQTT (QoS 1), acknowledged only
after the broker's PUBACK.

    up = Uplink(journal, client, "sim-0001", key=device_key)
    while True:
        up.pump()                 # never raises for a broker problem

A batch is one MQTT message on ``edgefw/<device>/up``: the CBOR map
``{"dev", "q", "first", "last", "recs": [record CBOR bytes, ...]}``,
sealed (``firmware.seal``) when a key is given. It goes out when
``batch_records`` records or ``batch_bytes`` bytes are waiting, or the
oldest waiting record is ``batch_ms`` old. Up to ``window`` batches may be
in flight; the journal's ack cursor moves only over a contiguous run of
acknowledged batches, so a PUBACK lost in a disconnect means the batch is
sent again (the receiver drops duplicates by device and sequence number).

Broker problems (refused connection, timeout, reset) disconnect, wait an
exponential backoff with jitter (``backoff_ms`` up to ``backoff_max_ms``),
and retry. ``rate_bytes_s`` caps the bandwidth with a token bucket.

The client is chosen in one place (``make_client``): paho-mqtt on CPython
(``firmware.mqtt_paho``), umqtt.simple on MicroPython
(``firmware.mqtt_umqtt``). Both offer ``connect()``, ``publish(topic,
payload) -> handle``, ``wait(handle, timeout_ms) -> bool``,
``disconnect()``.
"""

import os
import sys
import time

from firmware import cbor

if hasattr(time, "ticks_ms"):
    _ms = time.ticks_ms
    _diff = time.ticks_diff

    def _sleep_ms(ms):
        time.sleep_ms(int(ms))

else:

    def _ms():
        return int(time.monotonic() * 1000)

    def _diff(a, b):
        return a - b

    def _sleep_ms(ms):
        time.sleep(ms / 1000)


def make_client(host, port=1883, client_id="edgefw", username=None, password=None, tls=None, timeout_ms=5000):
    if sys.implementation.name == "micropython":
        from firmware.mqtt_umqtt import Client
    else:
        from firmware.mqtt_paho import Client
    return Client(host, port, client_id, username, password, tls, timeout_ms)


def check_config(cfg, src="<config>"):
    """Check the config's ``uplink`` section, and that the files it names
    exist (ConfigError names the field). Returns (host, port). The rules
    live in ``firmware.config.check_uplink``, which load_config runs too."""
    from firmware.config import check_uplink

    return check_uplink(cfg, src, files=True)


def topic_for(device_id):
    return "edgefw/%s/up" % device_id


class Uplink:
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
    ):
        self.j = journal
        self.live_first = live_first
        self.client = client
        self.device = device_id
        self.topic = topic or topic_for(device_id)
        self.sealer = None
        if key is not None:
            from firmware.seal import Sealer

            self.sealer = Sealer(key, device_id)
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
        self._inflight = []  # (handle, queue, last_seq, sent_ms)
        self._sent_to = {}  # queue -> last seq handed to the broker
        self._waiting_since = None
        self._tokens = 0
        self._tok_t = _ms()
        self.batches = 0
        self.records = 0
        self.bytes = 0
        self.reconnects = 0
        self.errors = 0
        self.last_error = None

    # ------------------------------------------------------------------
    def _fail(self, e):
        self.errors += 1
        self.last_error = repr(e)
        try:
            self.client.disconnect()
        except Exception:
            pass
        self.connected = False
        self._inflight = []
        self._sent_to = {}
        delay = min(self.backoff_max_ms, self.backoff_ms * (1 << min(self._attempt, 16)))
        # full jitter in [delay/2, delay*3/2): devices that lost the broker
        # together do not all come back in the same millisecond
        r = int.from_bytes(os.urandom(2), "little") / 65536
        self._retry_at = (_ms(), int(delay * (0.5 + r)))
        self._attempt += 1

    def _ensure_connected(self):
        if self.connected:
            return True
        if self._retry_at is not None:
            t0, wait = self._retry_at
            if _diff(_ms(), t0) < wait:
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
            from firmware import outbox

            outbox.start_live(self.j)
        self.connected = True
        self._attempt = 0
        self._retry_at = None
        return True

    def _take_tokens(self, n):
        if not self.rate:
            return True
        now = _ms()
        self._tokens = min(self.rate, self._tokens + self.rate * _diff(now, self._tok_t) / 1000)
        self._tok_t = now
        if self._tokens >= n or (self._tokens >= self.rate and n > self.rate):
            self._tokens -= n
            return True
        return False

    def _batch(self):
        q, recs = self.j.read_batch_after(self._sent_to, self.batch_records, self.batch_bytes)
        if not recs:
            self._waiting_since = None
            return None
        nbytes = sum(len(p) for _s, p in recs)
        if len(recs) < self.batch_records and nbytes < self.batch_bytes * 3 // 4:
            # not full: wait for more, up to batch_ms after the first one
            if self._waiting_since is None:
                self._waiting_since = _ms()
            if _diff(_ms(), self._waiting_since) < self.batch_ms:
                return None
        self._waiting_since = None
        first, last = recs[0][0], recs[-1][0]
        body = cbor.dumps({"dev": self.device, "q": q, "first": first, "last": last, "recs": [p for _s, p in recs]})
        if self.sealer is not None:
            body = self.sealer.seal(q, first, last, body)
        return q, first, last, len(recs), body

    def pump(self, max_batches=64):
        """Send what is due and collect acknowledgements; returns the number
        of records acknowledged in this call."""
        # a group of held records that is due goes to disk before reading
        # (the caller holds the journal's lock, as for everything here)
        self.j.tick()
        if not self._ensure_connected():
            return 0
        acked = 0
        try:
            sent = 0
            while len(self._inflight) < self.window and sent < max_batches:
                b = self._batch()
                if b is None:
                    break
                q, first, last, n, body = b
                if not self._take_tokens(len(body)):
                    break
                h = self.client.publish(self.topic, body)
                self._inflight.append((h, q, last, n, len(body), _ms()))
                live = self.j._live.get(q)
                # a live range's records are in flight on a lane of their own
                self._sent_to[q + 2 if live is not None and first >= live[0] else q] = last
                sent += 1
            acked += self._collect(block=len(self._inflight) >= self.window)
        except Exception as e:
            self._fail(e)
        return acked

    def _collect(self, block):
        acked = 0
        while self._inflight:
            h, q, last, n, size, t0 = self._inflight[0]
            ok = self.client.wait(h, self.ack_timeout_ms if block else 0)
            if not ok:
                if _diff(_ms(), t0) > self.ack_timeout_ms:
                    raise OSError("no PUBACK within %d ms" % self.ack_timeout_ms)
                break
            self._inflight.pop(0)
            self.j.ack(q, last)
            self.batches += 1
            self.records += n
            self.bytes += size
            acked += n
            block = False
        return acked

    def drain(self, timeout_ms=60000, idle_sleep_ms=5):
        """Pump until nothing is pending or the time is up; True when the
        journal is fully acknowledged."""
        t0 = _ms()
        # whatever the journal still holds is written and synced first
        self.j.flush()
        saved = self.batch_ms
        self.batch_ms = 0
        try:
            while _diff(_ms(), t0) < timeout_ms:
                self.pump()
                if not self._inflight and self.j.pending() == 0:
                    return True
                if not self.connected or not self._inflight:
                    _sleep_ms(idle_sleep_ms)
        finally:
            self.batch_ms = saved
        return False

    def stats(self):
        return {
            "batches": self.batches,
            "records": self.records,
            "bytes": self.bytes,
            "reconnects": self.reconnects,
            "errors": self.errors,
            "last_error": self.last_error,
            "connected": self.connected,
        }
