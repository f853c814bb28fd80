"""The uplink on the target: the journal of a scenario forwarded through
a mosquitto on this host's loopback (started here; a board over SSH
reaches it through a reverse forward) to edgefw's ingest,
receipts on: every record arrives once, sealed with the device's key, and
the device's journal is left with nothing pending. Targets that cannot
reach this host's network (the wasm32 port under node has no sockets)
skip it."""

import time

import pytest

KEY = bytes(range(90, 122))
DEV = "bench-uplink"


@pytest.fixture
def broker(tmp_path_factory):
    from edgefw.emul.broker import Mosquitto

    with Mosquitto(tmp_path_factory.mktemp("broker")) as b:
        yield b


@pytest.fixture
def ingest(broker, tmp_path_factory):
    from edgefw.ingest.server import Ingest, Receiver

    ing = Ingest(str(tmp_path_factory.mktemp("ingest") / "i.sqlite"), {DEV: KEY}, log=None)
    r = Receiver(ing, "127.0.0.1", broker.port, "bench-ingest", None, receipts=True)
    r.start()
    assert r.subscribed.wait(10), "ingest did not subscribe to the broker"
    yield ing
    r.stop()


def _records(ing):
    from firmware import cbor

    with ing.lock:
        rows = list(ing.db.execute("SELECT seq, body FROM records WHERE device=? ORDER BY seq", (DEV,)))
    return [(seq, cbor.loads(body)) for seq, body in rows]


@pytest.mark.needs("network", "fs")
def test_records_are_forwarded_to_ingest_and_receipted(probe, runner, broker, ingest, tmp_path):
    r = probe("uplink", "forward", board=runner.runtime.board, broker=runner.reach(broker.port), device_id=DEV, key_hex=KEY.hex(), journal=str(tmp_path / "j"))
    u = r["uplink"]
    assert u["pending"] == 0 and u["records"] > 0 and u["receipts"] > 0, u
    assert u["rejected"] == 0 and u["bad_receipts"] == 0, u
    deadline = time.monotonic() + 10
    while ingest.counts["records"] < r["seq"] and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = _records(ingest)
    # every record of the journal, once, in order, none forged
    assert [s for s, _b in rows] == list(range(1, r["seq"] + 1)), [s for s, _b in rows][:20]
    assert ingest.counts["tampered"] == 0
    kinds = [b.get("k") for _s, b in rows]
    if runner.runtime.board == "sim":
        assert kinds.count("trip") == len(r["trips"]) == 1 and r["trips"][0]["cause"] == "estop", r["trips"]
