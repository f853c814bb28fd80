"""Attestation of firmware: a device's boot event names its image (the
SHA-256 of the image's manifest.json, ``firmware.attest``); ``edgefw
ingest --fleet`` compares it with the registry's ``firmware_sha256``,
stores every comparison in ``attestations`` and flags a mismatch in its
log and metrics. The ESP32 image's side is checked on the unix port in
tests/test_micropython_coop.py; the Linux slot's here."""

import hashlib
import io
import json
import os
import subprocess
import sys

import pytest

from edgefw.deploy import bundle as DB
from edgefw.fleet import FleetError, ops
from edgefw.ingest.fleet import fleet_firmware, fleet_keys
from edgefw.ingest.server import Ingest
from firmware import cbor
from firmware.linux import update as U
from firmware.uplink.seal import Sealer
from tests.conftest import ROOT
from tests.helpers.fleet import make_fleet

GOOD = hashlib.sha256(b"image v2").hexdigest()
OTHER = hashlib.sha256(b"image v1").hexdigest()


def _seal_key(root, dev):
    return bytes.fromhex(open(os.path.join(str(root), "creds", dev, "seal.key")).read().strip())


def _boot_batch(key, dev, seq, fw, boot):
    recs = [cbor.dumps({"k": "boot", "seq": seq, "boot": boot, "utc_ms": None, "fw": fw}), cbor.dumps({"k": "trip", "seq": seq + 1})]
    m = {"dev": dev, "q": 0, "first": seq, "last": seq + 1, "id": os.urandom(8), "boot": boot, "utc_ms": None, "mono_ms": 5, "recs": recs}
    return Sealer(key, dev).seal(0, seq, seq + 1, cbor.dumps(m))


def _metric(text, line_start):
    return [ln for ln in text.splitlines() if ln.startswith(line_start)]


def _check(ing, root, rows_of):
    a, b = _seal_key(root, "dev-a"), _seal_key(root, "dev-b")
    log = ing.log
    # dev-a boots the expected image, then another one; dev-b has no
    # expectation: its hash is stored unchecked
    first = _boot_batch(a, "dev-a", 1, GOOD, b"boot-one")
    for blob, dev in ((first, "dev-a"), (_boot_batch(a, "dev-a", 3, OTHER, b"boot-two"), "dev-a"), (_boot_batch(b, "dev-b", 1, OTHER, b"boot-b"), "dev-b")):
        _dev, _r = ing.handle(blob, dev)
    # the same batch again (a resend): nothing is counted twice
    ing.handle(first, "dev-a")
    assert rows_of() == [("dev-a", 1, GOOD, GOOD, True), ("dev-a", 3, OTHER, GOOD, False), ("dev-b", 1, OTHER, None, None)]
    text = ing.metrics.render(ing.counts)
    assert _metric(text, "edgefw_ingest_boots_attested_total") == [
        'edgefw_ingest_boots_attested_total{result="match"} 1',
        'edgefw_ingest_boots_attested_total{result="mismatch"} 1',
        'edgefw_ingest_boots_attested_total{result="unchecked"} 1',
    ]
    # the gauge follows the device's latest boot
    assert _metric(text, "edgefw_ingest_device_firmware_match") == ['edgefw_ingest_device_firmware_match{device="dev-a"} 0']
    said = log.getvalue()
    assert said.count("firmware mismatch") == 1 and OTHER in said and GOOD in said and "dev-a" in said
    # the boot records themselves are stored as any other
    assert ing.counts["records"] == 6 and ing.counts["refusals"] == 0


def _fleet(tmp_path):
    root = tmp_path / "fleet"
    make_fleet(root)
    ops.set_firmware(root, "dev-a", GOOD)
    keys, revoked = fleet_keys(root)
    assert fleet_firmware(root) == {"dev-a": GOOD, "dev-b": None}
    return root, keys, revoked


def test_boot_events_compared_with_the_registry_sqlite(tmp_path):
    root, keys, revoked = _fleet(tmp_path)
    ing = Ingest(tmp_path / "i.sqlite", keys, log=io.StringIO(), revoked=revoked, firmware=fleet_firmware(root))

    def rows():
        with ing.lock:
            return [(d, s, r, e, None if m is None else bool(m)) for d, s, r, e, m in ing.db.execute("SELECT device, seq, reported, expected, match FROM attestations ORDER BY device, seq")]

    _check(ing, root, rows)


@pytest.mark.slow
def test_boot_events_compared_with_the_registry_postgres(tmp_path):
    from tests.helpers.postgres import Postgres

    root, keys, revoked = _fleet(tmp_path)
    with Postgres() as pg:
        ing = Ingest(pg.url, keys, log=io.StringIO(), revoked=revoked, firmware=fleet_firmware(root))
        try:
            import psycopg

            def rows():
                with psycopg.connect(pg.url) as c:
                    return [tuple(r) for r in c.execute("SELECT device, seq, reported, expected, match FROM attestations ORDER BY device, seq")]

            _check(ing, root, rows)
        finally:
            ing.store.close()


def test_without_a_registry_hashes_are_stored_unchecked(tmp_path):
    root, keys, _revoked = _fleet(tmp_path)
    ing = Ingest(tmp_path / "i.sqlite", keys, log=io.StringIO())
    ing.handle(_boot_batch(_seal_key(root, "dev-a"), "dev-a", 1, OTHER, b"x"), "dev-a")
    with ing.lock:
        assert list(ing.db.execute("SELECT reported, expected, match FROM attestations")) == [(OTHER, None, None)]
    assert "mismatch" not in ing.log.getvalue()


def test_image_hash_of_each_kind_of_image_and_bad_input(tmp_path):
    DB.keygen(str(tmp_path / "rel"))
    out = str(tmp_path / "b.edgefw")
    DB.build("rpi4", str(tmp_path / "rel.key"), out, version="1.0.0")
    import tarfile

    with tarfile.open(out) as t:
        want = hashlib.sha256(t.extractfile("manifest.json").read()).hexdigest()
    assert ops.image_hash(out) == want
    d = tmp_path / "img"
    d.mkdir()
    (d / "manifest.json").write_text('{"files": {}}')
    assert ops.image_hash(str(d)) == ops.image_hash(str(d / "manifest.json")) == hashlib.sha256(b'{"files": {}}').hexdigest()
    (tmp_path / "junk.json").write_text("not json")
    with pytest.raises(FleetError, match="not JSON"):
        ops.image_hash(str(tmp_path / "junk.json"))
    with pytest.raises(FleetError, match="no image manifest"):
        ops.image_hash(str(tmp_path))
    # the command sets it in the registry, and says what it set
    root = tmp_path / "fleet"
    make_fleet(root)
    r = subprocess.run([sys.executable, "-m", "edgefw", "fleet", "--dir", str(root), "firmware", "dev-b", "--image", out], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0 and want in r.stdout, r.stderr
    assert json.loads((root / "registry.json").read_text())["devices"]["dev-b"]["firmware_sha256"] == want


def test_a_linux_slot_reports_its_bundle_manifest_hash(tmp_path):
    """Installed into an A/B root, the slot's firmware names its manifest in
    its boot event; a development tree names none."""
    DB.keygen(str(tmp_path / "rel"))
    out = str(tmp_path / "v1.edgefw")
    DB.build("rpi4", str(tmp_path / "rel.key"), out, version="1.0.0", health=["{python}", "-c", "print('READY', flush=True)"])
    root = tmp_path / "root"
    (root / "etc" / "edgefw" / "keys").mkdir(parents=True)
    os.replace(tmp_path / "rel.pub", root / "etc" / "edgefw" / "keys" / "rel.pub")
    (root / "etc" / "edgefw" / "board").write_text("rpi4\n")
    assert U.install(str(root), out, progress=lambda m: None, timeout=10.0, settle=0.2, max_restarts=1) == U.OK
    from firmware.store.journal import Journal

    def boot_fw(app, journal):
        r = subprocess.run(
            [sys.executable, "-m", "firmware.linux", "run", "--cycles", "3", "--json", "--journal", str(journal)],
            capture_output=True, text=True, cwd=str(tmp_path), env=dict(os.environ, PYTHONPATH=str(app)), timeout=60,
        )
        assert r.returncode == 0, r.stderr[-2000:]
        j = Journal(str(journal))
        try:
            return [rec.get("fw") for _s, rec in j.records() if isinstance(rec, dict) and rec.get("k") == "boot"]
        finally:
            j.close()

    assert boot_fw(root / "opt" / "edgefw" / "current" / "app", tmp_path / "j1") == [ops.image_hash(out)]
    assert boot_fw(ROOT, tmp_path / "j2") == [None]
