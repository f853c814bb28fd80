"""A fleet made with edgefw.fleet in a test directory, mosquitto started
from the configuration it generates, and paho clients holding its (or an
attacker's) certificates."""

import os
import subprocess
import threading
import time

import paho.mqtt.client as mqtt

from edgefw.emul.broker import free_port
from edgefw.fleet import ops

CONNECT_S = 5


def make_fleet(root, devices=(("dev-a", "esp32_devkitc"), ("dev-b", "rpi4")), services=(("ingest-1", "ingest"),)):
    f = ops.init(
        root,
        port=free_port(),
        pid_file=str(root) + "/mosquitto.pid",
        # as root, mosquitto would drop to user "mosquitto", who cannot read
        # the 0600 server key in this test's directory
        user="root" if os.geteuid() == 0 else None,
    )
    for d, board in devices:
        ops.add_device(root, d, board)
    for name, role in services:
        ops.add_service(root, name, role)
    return f


class FleetBroker:
    """mosquitto run from DIR/broker/mosquitto.conf exactly as generated."""

    def __init__(self, fleet_root, conf=None, pid_file=None):
        """``conf``: a main config that includes the generated one (as
        Debian's /etc/mosquitto/mosquitto.conf does from conf.d), with its
        ``pid_file``."""
        from edgefw.fleet.registry import Fleet

        self.f = Fleet(fleet_root).load()
        s = self.f.settings["broker"]
        self.port = s["port"]
        self.pid_file = pid_file or s["pid_file"]
        self.conf = conf or os.path.join(self.f.broker_dir, "mosquitto.conf")
        self.log_path = os.path.join(str(fleet_root), "mosquitto.log")
        self.proc = None

    def start(self):
        import socket

        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(["mosquitto", "-c", self.conf], stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mosquitto exited: %s" % self.log())
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                # created first and written after: wait for the number
                with open(self.pid_file) as f:
                    if int(f.read().split()[0]) == self.proc.pid:
                        return self
            except (OSError, ValueError, IndexError):
                pass
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not listen on port %d: %s" % (self.port, self.log()))

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def stop(self):
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
            self.logf.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class Peer:
    """A paho client; ``ok`` says whether the broker accepted it (CONNACK 0),
    ``why`` what happened otherwise."""

    def __init__(self, port, ca, cert=None, key=None, client_id="peer", clean=True):
        self.got = []
        self.subacks = []
        self.lock = threading.Lock()
        self.arrived = threading.Condition(self.lock)
        self.ok = False
        self.why = None
        self._ev = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=clean)
        c.tls_set(ca_certs=ca, certfile=cert, keyfile=key)
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_message = self._on_message
        c.on_subscribe = lambda cl, u, mid, rcs, p: self.subacks.append([r.value for r in rcs])
        self.c = c
        try:
            c.connect("127.0.0.1", port, keepalive=30)
        except OSError as e:  # ssl.SSLError is one
            self.why = "handshake: %s" % e
            return
        c.loop_start()
        if not self._ev.wait(CONNECT_S):
            self.why = "no CONNACK in %d s" % CONNECT_S
        if not self.ok:
            c.loop_stop()

    def _on_connect(self, cl, u, flags, rc, p):
        self.ok = not rc.is_failure
        self.why = None if self.ok else "CONNACK %s" % rc
        self._ev.set()

    def _on_disconnect(self, cl, u, flags, rc, p):
        if not self.ok:
            self.why = "dropped before CONNACK: %s" % rc
        self.ok = False
        self._ev.set()

    def _on_message(self, cl, u, m):
        with self.lock:
            self.got.append((m.topic, bytes(m.payload)))
            self.arrived.notify_all()

    def subscribe(self, *topics):
        n = len(self.subacks)
        for t in topics:
            self.c.subscribe(t, qos=1)
        deadline = time.monotonic() + CONNECT_S
        while len(self.subacks) < n + len(topics) and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.subacks[n:]

    def publish(self, topic, payload):
        info = self.c.publish(topic, payload, qos=1)
        info.wait_for_publish(CONNECT_S)
        return info.is_published()

    def wait_for(self, pred, timeout=CONNECT_S):
        deadline = time.monotonic() + timeout
        with self.lock:
            while not pred(self.got):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.arrived.wait(left)
        return True

    def close(self):
        try:
            self.c.disconnect()
        finally:
            self.c.loop_stop()


def creds(root, name):
    d = os.path.join(str(root), "creds", name)
    return {"ca": d + "/ca.pem", "cert": d + "/client.pem", "key": d + "/client.key"}


def peer(broker, root, name, **kw):
    c = creds(root, name)
    return Peer(broker.port, c["ca"], c["cert"], c["key"], client_id=kw.pop("client_id", name), **kw)
