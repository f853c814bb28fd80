"""MQTT 3.1.1 client for the uplink on MicroPython: umqtt.simple, with its
known problems handled.

- TCP_NODELAY: umqtt.simple leaves Nagle's algorithm on, and each QoS 1
  publish waits for its PUBACK, so every message waits out the delayed-ACK
  timer (about 22 messages/s). Set after connecting.
- Packet ids: umqtt.simple increments ``pid`` without wrapping; the 65,536th
  publish packs 65536 into 16 bits and fails. Wrapped to 1 here (0 is not a
  valid packet id).
- TLS: ``ssl=True`` imports ``ussl``, which MicroPython 1.2x no longer has;
  ``ssl`` is registered under that name before connecting. The broker's
  certificate is checked against the configured CA (``tls["ca"]``, PEM or
  DER; mbedtls here takes DER, so PEM is decoded first) and the broker's
  host name or address. ``tls["cert"]`` and ``tls["key"]`` (PEM or DER)
  add a client certificate (``edgefw fleet add`` writes them).

- Timeouts: umqtt.simple's ``wait_msg`` calls ``setblocking(True)`` on
  every packet, which on MicroPython drops the socket's timeout, so a
  broker that stops answering would block the next read for ever. The
  socket is wrapped so that "blocking" means "with the timeout".

umqtt.simple's ``publish`` returns only after the PUBACK, so a handle is
complete when ``publish`` returns; a broker that does not answer raises
``OSError`` from the socket timeout. Receipts arrive through umqtt's
callback, during a publish or from ``check_msg``.
"""

import sys

from umqtt.simple import MQTTClient

from firmware.uplink.mqtt import ClientBase

_IPPROTO_TCP = 6
_TCP_NODELAY = 1


class _Fixed(MQTTClient):
    def publish(self, topic, msg, retain=False, qos=0):
        if self.pid >= 65535:
            self.pid = 0
        return MQTTClient.publish(self, topic, msg, retain, qos)


class _TimedSock:
    """The socket with umqtt's ``setblocking(True)`` made a timeout."""

    def __init__(self, sock, timeout_s):
        self.s = sock
        self.timeout_s = timeout_s
        self.read = sock.read
        self.write = sock.write

    def setblocking(self, flag):
        if flag:
            self.s.settimeout(self.timeout_s)
        else:
            self.s.setblocking(False)

    def close(self):
        self.s.close()


class Client(ClientBase):
    def __init__(self, *args, **kw):
        ClientBase.__init__(self, *args, **kw)
        self._c = None
        self._inbox = []

    def connect(self):
        params = {}
        if self.tls is not None:
            import ssl

            if "ussl" not in sys.modules:
                sys.modules["ussl"] = ssl
            params = {"cert_reqs": ssl.CERT_REQUIRED, "server_hostname": self.host, "cadata": _der(self.tls["ca"])}
            if self.tls.get("cert"):
                # a client certificate, for a broker that requires one;
                # mbedtls takes a PEM buffer only NUL-terminated, DER as is
                params["cert"] = _der(self.tls["cert"])
                params["key"] = _der(self.tls["key"])
        c = _Fixed(
            self.client_id,
            self.host,
            self.port,
            user=self.username,
            password=self.password,
            keepalive=30,
            ssl=self.tls is not None,
            ssl_params=params,
        )
        try:
            c.connect()
        except Exception as e:
            raise OSError("MQTT connect to %s:%d failed: %r" % (self.host, self.port, e))
        sock = c.sock
        try:
            sock.setsockopt(_IPPROTO_TCP, _TCP_NODELAY, 1)
        except (OSError, AttributeError):
            pass  # a TLS socket may not pass options through
        if hasattr(sock, "settimeout"):
            sock.settimeout(self.timeout_s)
            c.sock = _TimedSock(sock, self.timeout_s)
        self._c = c
        if self.receipt_topic is not None:
            c.set_callback(self._on_msg)
            # and the command topic beside it (mqtt.ClientBase)
            for t in (self.receipt_topic, self.receipt_topic[:-7] + "cmd"):
                try:
                    c.subscribe(t, 1)
                except Exception as e:
                    self.disconnect()
                    raise OSError("MQTT subscribe to %s failed: %r" % (t, e))

    def _on_msg(self, topic, msg):
        if topic == self.receipt_topic.encode():
            self._inbox.append(msg)
        else:
            if self.commands is None:
                self.commands = []
            self.commands.append(msg)

    def publish(self, topic, payload):
        if self._c is None:
            raise OSError("not connected to the broker")
        try:
            self._c.publish(topic, payload, qos=1)
        except Exception as e:
            raise OSError("publish failed: %r" % (e,))
        return True

    def _take(self):
        if self._c is None:
            raise OSError("not connected to the broker")
        try:
            # what has arrived, without waiting: at most a window's worth
            for _ in range(16):
                n = len(self._inbox) + len(self.commands or ())
                if self._c.check_msg() is None and len(self._inbox) + len(self.commands or ()) == n:
                    break
        except Exception as e:
            raise OSError("receive failed: %r" % (e,))

    def wait(self, handle, timeout_ms):
        if handle is None:
            self._take()  # wait(None, 0): take what has arrived (firmware.ota)
        return handle

    def receipts(self, timeout_ms=0):
        self._take()
        out, self._inbox = self._inbox, []
        return out

    def disconnect(self):
        c, self._c = self._c, None
        if c is not None:
            try:
                c.disconnect()
            except Exception:
                c.sock.close()


def _der(path):
    """A certificate or key file as DER (the first block of a PEM file)."""
    import binascii

    with open(path, "rb") as f:
        data = f.read()
    if b"-----BEGIN" not in data:
        return data
    body = data.split(b"-----BEGIN", 1)[1].split(b"\n", 1)[1].split(b"-----END", 1)[0]
    return binascii.a2b_base64(body.replace(b"\n", b"").replace(b"\r", b""))
