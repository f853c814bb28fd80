"""Uplink.drain waits for its broker and receiver instead of spinning."""

import time

import pytest

from firmware.store.journal import Journal
from firmware.uplink.uplink import Uplink, make_client

KEY = bytes(range(32))


@pytest.mark.parametrize(
    "records,receipt_timeout_ms",
    [
        (50, 5000),  # one batch in flight, the window far from full
        (2000, 5000),  # the window full (at start it is one batch)
        (300, 700),  # receipts time out during the drain: batches go again
    ],
)
def test_drain_without_a_receiver_sleeps(tmp_path, broker, records, receipt_timeout_ms):
    j = Journal(str(tmp_path / "j"))
    for i in range(records):
        j.append({"k": "win", "i": i})
    up = Uplink(j, make_client("127.0.0.1", broker.port, "dev1"), "dev1", key=KEY, receipt_timeout_ms=receipt_timeout_ms)
    # connected before the clock starts: the drain's time is all waiting
    assert up.pump() == 0 and up.connected
    c0, t0 = time.process_time(), time.monotonic()
    assert not up.drain(3000)
    cpu, wall = time.process_time() - c0, time.monotonic() - t0
    # no receiver: nothing may be deleted, and the drain keeps its deadline
    assert j.pending() == records
    assert 2.9 <= wall <= 3.25, wall
    # this process's CPU (paho's network thread included) while waiting
    assert cpu < 0.5, "drain used %.2f s of CPU in %.2f s" % (cpu, wall)
    if receipt_timeout_ms < 3000:
        assert up.stats()["resent"] > 0
    up.client.disconnect()
