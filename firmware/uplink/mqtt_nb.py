"""MQTT 3.1.1 client that never blocks, over ``socket`` + ``select.poll``:
the uplink of the firmware app on MicroPython, which shares one thread
with the safety loop (``firmware.uplink.coop``).

    c = Client("192.168.1.10", 1883, "esp-0001")
    c.deadline_us = time.ticks_add(time.ticks_us(), 3000)   # this slice's end
    c.connect()                      # returns at once; CONNACK comes later
    h = c.publish("edgefw/esp-0001/up", body)
    c.wait(h, 10000)                 # waits at most until deadline_us

Every call returns by ``deadline_us`` (when set) whatever the broker does:
a connect, CONNECT, SUBSCRIBE and PUBLISH are queued and written as far as
the socket takes them; reads take what has arrived. A broker that stops
answering shows as a missing CONNACK (``timeout_s`` after connecting:
``OSError``) or a missing PUBACK (the uplink's ``ack_timeout_ms``), and
the uplink reconnects with backoff. Packets after CONNECT are sent without
waiting for the CONNACK, as MQTT 3.1.1 allows. Incoming QoS 1 messages
(receipts) are acknowledged. No TLS: a TLS uplink on MicroPython uses
``firmware.uplink.umqtt_client``, which blocks for up to its timeout.

The host name is resolved at connect (``getaddrinfo`` may block on a
device for a name; an address literal does not).
"""

import errno
import select
import socket
import time

from firmware.uplink.mqtt import ClientBase

if hasattr(time, "ticks_us"):
    _us = time.ticks_us
    _diff = time.ticks_diff
else:  # CPython, for tests

    def _us():
        return time.monotonic_ns() // 1000

    def _diff(a, b):
        return a - b


_AGAIN = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN), errno.EINPROGRESS, getattr(errno, "EALREADY", 114))


def _again(e):
    return isinstance(e, OSError) and (e.args[0] if e.args else None) in _AGAIN or type(e).__name__ == "BlockingIOError"


def _varlen(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return out


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return len(s).to_bytes(2, "big") + s


class Client(ClientBase):
    keepalive_s = 30

    def __init__(self, *args, **kw):
        ClientBase.__init__(self, *args, **kw)
        self.deadline_us = None
        self.sock = None
        self._poll = None
        self._out = []  # bytes-like chunks still to write
        self._off = 0  # bytes of _out[0] already written
        self._in = b""
        self._pid = 0
        self._acked = set()
        self._inbox = []
        self._connack = False
        self._t_conn = 0
        self._t_sent = 0

    # -- packets --------------------------------------------------------
    def _queue(self, *chunks):
        for c in chunks:
            if len(c):
                self._out.append(c)

    def _next_pid(self):
        self._pid = self._pid % 65535 + 1
        return self._pid

    def connect(self):
        self.disconnect()
        ai = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0]
        s = socket.socket(ai[0], socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(ai[-1])
        except OSError as e:
            if not _again(e):
                s.close()
                raise OSError("MQTT connect to %s:%d failed: %r" % (self.host, self.port, e))
        self.sock = s
        self._poll = select.poll()
        self._poll.register(s, select.POLLIN)
        flags = 0x02  # clean session
        payload = _str(self.client_id)
        if self.username is not None:
            flags |= 0x80
            payload += _str(self.username)
            if self.password is not None:
                flags |= 0x40
                payload += _str(self.password)
        vh = b"\x00\x04MQTT\x04" + bytes([flags]) + self.keepalive_s.to_bytes(2, "big")
        self._queue(b"\x10" + _varlen(len(vh) + len(payload)), vh + payload)
        if self.receipt_topic is not None:
            # and the command topic beside it (mqtt.ClientBase)
            t = self.receipt_topic
            body = self._next_pid().to_bytes(2, "big") + _str(t) + b"\x01" + _str(t[:-7] + "cmd") + b"\x01"
            self._queue(b"\x82" + _varlen(len(body)), body)
        self._t_conn = self._t_sent = _us()
        self._io(0)

    def publish(self, topic, payload):
        if self.sock is None:
            raise OSError("not connected to the broker")
        pid = self._next_pid()
        head = _str(topic) + pid.to_bytes(2, "big")
        self._queue(b"\x32" + _varlen(len(head) + len(payload)) + head, payload)
        self._io(0)
        return pid

    def wait(self, handle, timeout_ms):
        self._io(timeout_ms, handle)
        if handle in self._acked:
            self._acked.discard(handle)
            return True
        return False

    def receipts(self, timeout_ms=0):
        self._io(timeout_ms, -1 if timeout_ms else None)
        out, self._inbox = self._inbox, []
        return out

    def disconnect(self):
        s, self.sock = self.sock, None
        if s is not None:
            try:
                s.send(b"\xe0\x00")
            except Exception:
                pass
            s.close()
        self._out = []
        self._off = 0
        self._in = b""
        self._acked = set()
        self._connack = False

    @property
    def pending_out(self):
        return sum(len(c) for c in self._out) - self._off

    # -- I/O --------------------------------------------------------------
    def _io(self, timeout_ms, want=None):
        """Write what the socket takes, read what has come; wait up to
        ``timeout_ms`` (cut to ``deadline_us``) for ``want`` (a packet id,
        or -1 for any message)."""
        if self.sock is None:
            raise OSError("not connected to the broker")
        t0 = _us()
        limit = timeout_ms * 1000
        if self.deadline_us is not None:
            limit = min(limit, _diff(self.deadline_us, t0))
        if not self._connack and _diff(t0, self._t_conn) > self.timeout_s * 1000000:
            raise OSError("no CONNACK within %d ms (timeout)" % (self.timeout_s * 1000))
        if _diff(t0, self._t_sent) > self.keepalive_s * 500000 and not self._out:
            self._queue(b"\xc0\x00")
        while True:
            self._write()
            self._read()
            if want is None or (want == -1 and self._inbox) or want in self._acked:
                return
            left = limit - _diff(_us(), t0)
            if left < 1000:
                return  # poll counts in ms: never past the deadline
            self._poll.poll(left // 1000)

    def _write(self):
        while self._out:
            chunk = self._out[0]
            try:
                n = self.sock.send(memoryview(chunk)[self._off :])
            except OSError as e:
                if _again(e):
                    return
                raise OSError("send failed: %r" % (e,))
            if n is None:
                return
            self._t_sent = _us()
            self._off += n
            if self._off < len(chunk):
                return
            self._out.pop(0)
            self._off = 0

    def _read(self):
        while True:
            try:
                data = self.sock.recv(512)
            except OSError as e:
                if _again(e):
                    break
                raise OSError("receive failed: %r" % (e,))
            if data is None:
                break
            if not data:
                raise OSError("the broker closed the connection")
            self._in += data
        while self._packet():
            pass

    def _packet(self):
        """Handle one complete packet from ``_in``; False when none is."""
        buf = self._in
        if len(buf) < 2:
            return False
        n = 0
        shift = 0
        i = 1
        while True:
            if i >= len(buf):
                return False
            b = buf[i]
            n |= (b & 0x7F) << shift
            shift += 7
            i += 1
            if not b & 0x80:
                break
            if i > 4:
                raise OSError("malformed packet from the broker")
        if len(buf) < i + n:
            return False
        kind = buf[0] & 0xF0
        body = buf[i : i + n]
        self._in = buf[i + n :]
        if kind == 0x20:  # CONNACK
            if n < 2 or body[1] != 0:
                raise OSError("the broker refused the connection (code %d)" % (body[1] if n >= 2 else -1))
            self._connack = True
        elif kind == 0x40:  # PUBACK
            self._acked.add(int.from_bytes(body[:2], "big"))
        elif kind == 0x30:  # PUBLISH: a receipt or a command
            qos = (buf[0] >> 1) & 3
            tl = int.from_bytes(body[:2], "big")
            j = 2 + tl
            if qos:
                pid = body[j : j + 2]
                j += 2
                self._queue(b"\x40\x02" + pid)
            if tl == len(self.receipt_topic) - 4:  # a command: its topic is 4 bytes shorter
                if self.commands is None:
                    self.commands = []
                self.commands.append(body[j:])
            else:
                self._inbox.append(body[j:])
        elif kind == 0x90 and n >= 3 and body[2] == 0x80:  # SUBACK: refused
            # (the command topic's refusal, body[3], shows as no update
            # ever arriving: the fleet's ACL grants both)
            raise OSError("the broker refused the subscription to %s" % self.receipt_topic)
        return True
