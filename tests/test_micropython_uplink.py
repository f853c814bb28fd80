"""The MicroPython journal, uplink (umqtt.simple) and sealing against a real
mosquitto and the CPython ingest."""

import json
import os
import time

import pytest

from edgefw.build import mpdeps
from firmware import cbor
from firmware.uplink.seal import Sealer, open_sealed
from tests.conftest import run_micropython
from tests.test_store_forward import IngestWorker

pytestmark = pytest.mark.micropython
KEY = bytes(range(100, 132))


@pytest.fixture(scope="module", autouse=True)
def umqtt():
    if not mpdeps.installed():
        pytest.fail("umqtt.simple is missing: run 'edgefw mp-deps' (the README's test command does)")


def mp(args, **kw):
    from edgefw.util import ROOT

    return run_micropython(args, path=str(ROOT) + ":" + str(mpdeps.LIB), **kw)


def test_micropython_device_to_cpython_ingest(tmp_path, broker):
    w = IngestWorker(broker.port, tmp_path / "i.sqlite", keys={"mp-dev": KEY})
    p = mp(["tests/mp_only/uplink_device.py", str(broker.port), str(tmp_path / "j"), KEY.hex(), "400"])
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["drained"] and s["pending"] == 0 and s["records"] == 400
    assert w.wait_for(400)
    with w.ing.lock:
        rows = list(w.ing.db.execute("SELECT seq, body FROM records WHERE device='mp-dev' ORDER BY seq"))
    w.close()
    assert [r[0] for r in rows] == list(range(1, 401))
    assert sorted(cbor.loads(b)["n"] for _s, b in rows) == list(range(1, 401))
    assert w.ing.counts["tampered"] == 0


def test_micropython_device_keeps_to_the_holds_of_a_pacing_ingest(tmp_path, broker):
    """Ingest paces at 100 records/s (8-record batches: a slot each 80 ms):
    the device under the MicroPython unix port reads the holds, waits them
    out, and every record goes in once."""
    from edgefw.ingest.pace import Pace

    w = IngestWorker(broker.port, tmp_path / "i.sqlite", keys={"mp-dev": KEY}, pace=Pace(rate=100, size=8))
    t0 = time.monotonic()
    p = mp(["tests/mp_only/uplink_device.py", str(broker.port), str(tmp_path / "j"), KEY.hex(), "400"])
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["drained"] and s["pending"] == 0 and s["records"] == 400
    assert w.wait_for(400)
    with w.ing.lock:
        seqs = [r[0] for r in w.ing.db.execute("SELECT seq FROM records WHERE device='mp-dev' ORDER BY seq")]
    w.close()
    assert seqs == list(range(1, 401))
    assert w.ing.pace.held > 0
    # 400 records at 100/s: held, the drain takes seconds (not the
    # fraction of one it takes unpaced)
    assert took >= 2.5, took


def test_packet_id_wraps_past_65535(tmp_path, broker):
    p = mp(["tests/mp_only/uplink_device.py", str(broker.port), str(tmp_path / "j"), KEY.hex(), "100", "65530", "receipts=0"])
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    # 13 batches: the ids ran 65531..65535, then wrapped to 1
    assert s["drained"] and s["records"] == 100 and s["errors"] == 0
    assert 1 <= s["pid"] < 65530


def test_sealed_on_cpython_opened_on_micropython(tmp_path):
    plain = os.urandom(200)
    blob = Sealer(KEY, "dev9").seal(1, 10, 20, plain)
    (tmp_path / "blob").write_bytes(blob)
    p = mp(["tests/mp_only/open_sealed.py", "dev9", KEY.hex(), str(tmp_path / "blob")])
    assert p.stdout.split() == ["OK", "dev9", "1", "10", "20", plain.hex()], p.stderr
    bad = bytearray(blob)
    bad[60] ^= 4
    (tmp_path / "blob").write_bytes(bytes(bad))
    p = mp(["tests/mp_only/open_sealed.py", "dev9", KEY.hex(), str(tmp_path / "blob")])
    assert p.stdout.startswith("REJECTED")


def test_sealed_on_micropython_opened_on_cpython():
    code = (
        "import binascii\nfrom firmware.uplink.seal import Sealer\n"
        "print(binascii.hexlify(Sealer(binascii.unhexlify('%s'), 'dev9').seal(0, 3, 4, b'from the device')).decode())" % KEY.hex()
    )
    p = mp(["-c", code])
    blob = bytes.fromhex(p.stdout.strip())
    assert open_sealed(blob, {"dev9": KEY})[1:4] == (0, 3, 4)
    assert open_sealed(blob, {"dev9": KEY})[5] == b"from the device"


def test_micropython_cbor_matches_cbor2():
    import cbor2

    values = [
        0,
        23,
        24,
        255,
        256,
        65535,
        65536,
        2**32,
        2**64 - 1,
        -1,
        -24,
        -25,
        -(2**64),
        1.5,
        0.1,
        1e300,
        -0.0,
        65504.0,
        1e-7,
        "",
        "ü水",
        b"\x00\xff",
        [],
        [1, [2, [3]]],
        {},
        {"b": 1, "aa": 2, "a": [True, False, None]},
        {1: "x", "y": 2.5},
    ]
    code = "import binascii\nfrom firmware import cbor\nfor v in %r:\n    print(binascii.hexlify(cbor.dumps(v)).decode())" % (values,)
    p = mp(["-c", code])
    got = p.stdout.split()
    assert got == [cbor2.dumps(v, canonical=True).hex() for v in values], p.stderr
