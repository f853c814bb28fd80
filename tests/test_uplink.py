"""Journal -> uplink -> a real mosquitto -> a subscriber."""

import os
import threading
import time

import paho.mqtt.client as mqtt

from firmware import cbor
from firmware.store.journal import PRIO_EVENT, Journal
from firmware.uplink.seal import open_sealed
from firmware.uplink.uplink import Uplink, make_client, topic_for

KEY = bytes(range(32))


class Sub:
    """A plain paho subscriber collecting payloads."""

    def __init__(self, port, topic="edgefw/+/up"):
        self.msgs = []
        self.ready = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda *a: self.ready.set()
        c.on_message = lambda cl, u, m: self.msgs.append(m.payload)
        c.connect("127.0.0.1", port)
        c.loop_start()
        assert self.ready.wait(10)
        self.c = c

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


def _records(msgs, key=KEY):
    out = []
    for m in msgs:
        dev, q, first, last, nonce, plain = open_sealed(m, {"dev1": key})
        batch = cbor.loads(plain)
        assert (batch["first"], batch["last"], batch["q"], batch["dev"]) == (first, last, q, dev)
        out += [cbor.loads(r) for r in batch["recs"]]
    return out


def test_records_reach_the_subscriber_sealed_and_in_order(tmp_path, broker):
    sub = Sub(broker.port)
    j = Journal(str(tmp_path / "j"))
    j.append({"k": "trip"}, PRIO_EVENT)
    for i in range(500):
        j.append({"k": "win", "i": i})
    up = Uplink(j, make_client("127.0.0.1", broker.port, "dev1"), "dev1", key=KEY, batch_records=64, receipts=False)
    assert up.drain(20000)
    deadline = time.monotonic() + 10
    while len(_records(sub.msgs)) < 501 and time.monotonic() < deadline:
        time.sleep(0.02)
    recs = _records(sub.msgs)
    assert recs[0]["k"] == "trip"  # the event went first
    assert [r["seq"] for r in recs] == [1] + list(range(2, 502))
    assert j.pending() == 0 and j.acked(1) == 501
    assert up.stats()["batches"] == len(sub.msgs)
    sub.close()


def test_nothing_acked_while_the_broker_is_down(tmp_path, broker):
    j = Journal(str(tmp_path / "j"))
    for i in range(50):
        j.append({"i": i})
    broker.stop()
    up = Uplink(j, make_client("127.0.0.1", broker.port, "dev1", timeout_ms=500), "dev1", backoff_ms=20, backoff_max_ms=100, receipts=False)
    t0 = time.monotonic()
    while time.monotonic() - t0 < 0.5:
        up.pump()
        time.sleep(0.01)
    assert j.pending() == 50 and j.acked(1) == 0
    assert up.stats()["errors"] >= 2  # retried with backoff
    broker.start()
    assert up.drain(20000)
    assert j.pending() == 0 and up.stats()["reconnects"] >= 1


def test_bandwidth_cap_is_held(tmp_path, broker):
    j = Journal(str(tmp_path / "j"))
    for i in range(200):
        j.append({"i": i, "pad": os.urandom(40)})
    up = Uplink(j, make_client("127.0.0.1", broker.port, "dev1"), "dev1", batch_records=20, rate_bytes_s=8000, receipts=False)
    t0 = time.monotonic()
    assert up.drain(30000)
    dt = time.monotonic() - t0
    # ~12 kB at 8 kB/s: one second's burst allowance, then paced
    assert up.stats()["bytes"] > 10000
    assert dt >= (up.stats()["bytes"] - 8000) / 8000 * 0.9


def test_topic_is_per_device():
    assert topic_for("sim-0001") == "edgefw/sim-0001/up"
