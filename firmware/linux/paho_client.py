"""MQTT 3.1.1 client for the uplink on CPython: paho-mqtt 2.x.

CPython only (paho runs a network thread). ``publish`` returns at once;
``wait`` asks whether the PUBACK has arrived.
"""

import collections
import threading
import time

import paho.mqtt.client as mqtt

from firmware.uplink.mqtt import ClientBase


class Client(ClientBase):
    LOST_POLL_S = 0.1
    # a device's uplink takes its gateway's commands on the topic beside
    # its receipts; a gateway's upstream client names its own (pull
    # requests: edgefw.gateway.pull), or False for none
    listen_commands = True
    # what waits for the taker at most: past it a flood's newest are not
    # kept (this thread only appends; the taker alone removes)
    COMMANDS_KEPT = 64

    def __init__(self, *args, **kw):
        ClientBase.__init__(self, *args, **kw)
        self._c = None
        self._lost = threading.Event()
        self._inbox = collections.deque()
        self._arrived = threading.Event()

    def connect(self):
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, protocol=mqtt.MQTTv311, clean_session=True)
        # the journal is the queue; paho must not hold its own backlog
        c.max_inflight_messages_set(64)
        c.max_queued_messages_set(0)
        if self.username is not None:
            c.username_pw_set(self.username, self.password)
        if self.tls:
            c.tls_set(ca_certs=self.tls.get("ca"), certfile=self.tls.get("cert"), keyfile=self.tls.get("key"))
        connected = threading.Event()
        result = {}

        def on_connect(client, userdata, flags, reason_code, properties):
            result["rc"] = reason_code
            connected.set()

        def on_disconnect(client, userdata, flags, reason_code, properties):
            self._lost.set()
            connected.set()

        subscribed = threading.Event()

        cmd_topic = self.listen_commands if isinstance(self.listen_commands, str) else None
        if self.listen_commands is True and self.receipt_topic is not None:
            cmd_topic = self.receipt_topic[:-7] + "cmd"

        def on_message(client, userdata, msg):
            if msg.topic == cmd_topic:
                # taken by another thread (firmware.uplink.command; a
                # gateway's pull requests: edgefw.gateway.pull)
                if self.commands is None:
                    self.commands = []
                if len(self.commands) < self.COMMANDS_KEPT:
                    self.commands.append(msg.payload)
                return
            self._inbox.append(msg.payload)
            self._arrived.set()

        c.on_connect = on_connect
        c.on_disconnect = on_disconnect
        c.on_message = on_message
        c.on_subscribe = lambda *a: subscribed.set()
        self._lost.clear()
        c.connect(self.host, self.port, keepalive=30)
        c.loop_start()
        if not connected.wait(self.timeout_s) or "rc" not in result or result["rc"].is_failure:
            c.loop_stop()
            rc = result.get("rc", "timeout")
            hint = " (check uplink.username and uplink.password)" if str(rc) in ("Not authorized", "Bad user name or password") else ""
            raise OSError("MQTT connect to %s:%d failed: %s%s" % (self.host, self.port, rc, hint))
        if self.receipt_topic is not None:
            # subscribed before the first batch goes, or its receipt is lost
            # and the command topic beside it (a broker that refuses it
            # refuses that topic alone)
            c.subscribe([(self.receipt_topic, 1)] + ([(cmd_topic, 1)] if cmd_topic else []))
            if not subscribed.wait(self.timeout_s) or self._lost.is_set():
                c.loop_stop()
                raise OSError("MQTT subscribe to %s at %s:%d failed or timed out" % (self.receipt_topic, self.host, self.port))
        self._c = c

    def publish(self, topic, payload):
        if self._c is None or self._lost.is_set():
            raise OSError("not connected to the broker")
        info = self._c.publish(topic, payload, qos=1)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise OSError("publish failed: %s" % mqtt.error_string(info.rc))
        return info

    def wait(self, handle, timeout_ms):
        if handle.is_published():
            return True
        if self._lost.is_set():
            raise OSError("connection to the broker lost")
        t_end = time.monotonic() + timeout_ms / 1000
        while True:
            left = t_end - time.monotonic()
            if left <= 0:
                return handle.is_published()
            try:
                # in slices: paho does not wake this wait when the
                # connection drops, and a long wait must notice that
                handle.wait_for_publish(min(left, self.LOST_POLL_S))
            except (RuntimeError, ValueError) as e:
                raise OSError(str(e))
            if handle.is_published():
                return True
            if self._lost.is_set():
                raise OSError("connection to the broker lost")

    def receipts(self, timeout_ms=0):
        if not self._inbox and timeout_ms:
            self._arrived.wait(timeout_ms / 1000)
        self._arrived.clear()
        # cleared before taking: a message arriving now sets it again
        out = []
        while self._inbox:
            out.append(self._inbox.popleft())
        return out

    def disconnect(self):
        c, self._c = self._c, None
        if c is not None:
            try:
                c.disconnect()
            finally:
                try:
                    c.loop_stop()
                except AttributeError:
                    # paho's thread clears its own handle as it ends: one
                    # that ended between loop_stop's check and its join
                    # makes it raise, with the thread already gone (which
                    # is all loop_stop waits for)
                    pass
