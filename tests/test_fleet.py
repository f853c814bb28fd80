"""edgefw fleet without a broker: the registry, the files and their modes,
certificates, seal keys, the ACL and CRL it generates, rotation, and what
happens when a file it depends on is broken. The command module is driven
through its own add_parser/main, as the edgefw command table will."""

import argparse
import datetime
import json
import os
import stat

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgefw.fleet import FleetError, cli, ops, pki
from edgefw.fleet.registry import Fleet, write_atomic


def fleet_cli(*argv):
    p = cli.add_parser(argparse.ArgumentParser(prog="edgefw fleet"))
    return cli.main(p.parse_args([str(a) for a in argv]))


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "fleet"
    assert fleet_cli("init", r, "--listen", "127.0.0.1:18883", "--cert-days", "90", "--overlap-days", "3") == 0
    assert fleet_cli("--dir", r, "add", "dev-a", "--board", "esp32_devkitc", "--label", "site=lab", "--label", "row=3") == 0
    assert fleet_cli("--dir", r, "add", "dev-b", "--board", "rpi4") == 0
    assert fleet_cli("--dir", r, "add-service", "ingest-1", "--role", "ingest") == 0
    return r


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def snapshot(r):
    out = {}
    for dirpath, _dirs, files in os.walk(r):
        for n in files:
            p = os.path.join(dirpath, n)
            out[os.path.relpath(p, r)] = open(p, "rb").read()
    return out


def test_init_and_add_write_the_files_with_the_right_modes(root):
    assert mode(root / "private") == 0o700
    for secret in ("private/ca.key", "private/seal_keys.json", "broker/server.key", "creds/dev-a/client.key", "creds/dev-a/seal.key"):
        assert mode(root / secret) == 0o600, secret
    assert mode(root / "creds" / "dev-a") == 0o700
    assert mode(root / "registry.json") == 0o644
    assert "private/" in (root / ".gitignore").read_text() and "creds/" in (root / ".gitignore").read_text()
    # nothing secret in the registry or the broker's public files
    reg = (root / "registry.json").read_text()
    seal_hex = (root / "creds/dev-a/seal.key").read_text().strip()
    for public in (reg, (root / "broker/acl").read_text(), (root / "broker/mosquitto.conf").read_text()):
        assert seal_hex not in public and "PRIVATE KEY" not in public


def test_init_never_overwrites_a_fleet(root, capsys):
    before = snapshot(root)
    assert fleet_cli("init", root) == 2
    assert "already here" in capsys.readouterr().err
    assert snapshot(root) == before


def test_registry_is_stable_sorted_json_a_person_can_diff(root):
    text = (root / "registry.json").read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2, sort_keys=True) + "\n"
    a = doc["devices"]["dev-a"]
    assert a["board"] == "esp32_devkitc" and a["labels"] == {"site": "lab", "row": "3"}
    assert a["firmware_sha256"] is None and a["status"] == "active" and a["key_origin"] == "workstation"
    assert doc["services"]["ingest-1"]["role"] == "ingest"


def test_device_certificate_is_for_its_id_signed_by_the_fleet_ca_for_the_fleet_validity(root):
    cert = x509.load_pem_x509_certificate((root / "creds/dev-a/client.pem").read_bytes())
    ca = x509.load_pem_x509_certificate((root / "ca.pem").read_bytes())
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "dev-a"
    cert.verify_directly_issued_by(ca)
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    life = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert datetime.timedelta(days=90) <= life <= datetime.timedelta(days=90, minutes=6)
    key = pki.load_key(str(root / "creds/dev-a/client.key"), "")
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()
    up = json.loads((root / "creds/dev-a/uplink.json").read_text())
    assert up == {
        "device_id": "dev-a",
        "uplink": {"broker": "127.0.0.1:18883", "key_file": "seal.key", "tls_ca": "ca.pem", "tls_cert": "client.pem", "tls_key": "client.key"},
    }


def test_ingest_keys_are_what_edgefw_ingest_reads(root, tmp_path):
    from edgefw.ingest.server import load_keys

    out = tmp_path / "keys.json"
    assert fleet_cli("--dir", root, "ingest-keys", "--out", out) == 0
    assert mode(out) == 0o600
    keys = load_keys(str(out))
    assert sorted(keys) == ["dev-a", "dev-b"]  # services have no seal key
    assert keys["dev-a"] == bytes.fromhex((root / "creds/dev-a/seal.key").read_text().strip())
    assert len(keys["dev-a"]) == 32


@pytest.mark.parametrize("bad", ["a/b", "+", "#", "dev a", "$SYS", "", "-x", "a%c", "x" * 65, "dev\n"])
def test_names_that_would_be_read_as_mqtt_or_acl_syntax_are_refused(root, bad):
    before = snapshot(root)
    with pytest.raises(FleetError, match="topic level"):
        ops.add_device(root, bad, "sim")
    with pytest.raises(FleetError, match="topic level"):
        ops.add_service(root, bad, "ingest")
    assert snapshot(root) == before


def test_duplicate_names_and_unknown_boards_and_roles_are_refused(root, capsys):
    assert fleet_cli("--dir", root, "add", "dev-a", "--board", "sim") == 2
    assert fleet_cli("--dir", root, "add", "ingest-1", "--board", "sim") == 2
    assert fleet_cli("--dir", root, "add-service", "dev-b", "--role", "ingest") == 2
    assert fleet_cli("--dir", root, "add", "dev-c", "--board", "toaster") == 2
    assert fleet_cli("--dir", root, "add-service", "gw", "--role", "gateway", "--devices", "dev-zzz") == 2
    err = capsys.readouterr().err
    assert "already in the registry" in err and "board 'toaster'" in err and "dev-zzz" in err


def test_acl_grants_each_identity_its_own_topics_only(root):
    assert fleet_cli("--dir", root, "add-service", "gw-1", "--role", "gateway", "--devices", "dev-b") == 0
    acl = (root / "broker/acl").read_text()
    blocks = {}
    user = None
    for line in acl.splitlines():
        if line.startswith("user "):
            user = line.split()[1]
            blocks[user] = []
        elif line.startswith("topic ") and user:
            blocks[user].append(tuple(line.split()[1:]))
        elif line.startswith(("pattern", "topic")):
            raise AssertionError("a rule outside a user block applies to everyone: %r" % line)
    assert blocks == {
        "dev-a": [("write", "edgefw/dev-a/up"), ("write", "edgefw/dev-a/ota/#"), ("read", "edgefw/dev-a/receipt"), ("read", "edgefw/dev-a/cmd")],
        "dev-b": [("write", "edgefw/dev-b/up"), ("write", "edgefw/dev-b/ota/#"), ("read", "edgefw/dev-b/receipt"), ("read", "edgefw/dev-b/cmd")],
        "ingest-1": [("read", "edgefw/+/up"), ("write", "edgefw/+/receipt")],
        # a gateway relays what its devices may: their updates too; and it
        # reads its own command topic (pull requests)
        "gw-1": [("read", "edgefw/gw-1/cmd"), ("write", "edgefw/dev-b/up"), ("write", "edgefw/dev-b/ota/#"), ("read", "edgefw/dev-b/receipt"), ("read", "edgefw/dev-b/cmd")],
    }
    # revoking dev-b takes it from its own block and from the gateway's
    assert fleet_cli("--dir", root, "revoke", "dev-b") == 0
    acl = (root / "broker/acl").read_text()
    assert "dev-b/" not in acl and "user dev-b" not in acl and "user gw-1" in acl


def _crl_serials(root):
    crl = x509.load_pem_x509_crl((root / "broker/crl.pem").read_bytes())
    return {r.serial_number for r in crl}, crl


def test_revoke_puts_every_certificate_of_the_device_on_the_crl_and_ingest_forgets_it(root):
    assert fleet_cli("--dir", root, "rotate", "dev-a") == 0
    assert fleet_cli("--dir", root, "revoke", "dev-a", "--reason", "stolen") == 0
    doc = json.loads((root / "registry.json").read_text())
    a = doc["devices"]["dev-a"]
    assert a["status"] == "revoked" and a["revoked"]["reason"] == "stolen"
    serials, crl = _crl_serials(root)
    assert serials == {int(c["serial"], 16) for c in a["certs"]} and len(serials) == 2
    ca = x509.load_pem_x509_certificate((root / "ca.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    # the CRL's own expiry: OpenSSL refuses everyone once it has passed
    assert crl.next_update_utc - datetime.datetime.now(datetime.timezone.utc) > datetime.timedelta(days=29)
    assert sorted(ops.ingest_keys(root)) == ["dev-b"]
    assert fleet_cli("--dir", root, "revoke", "dev-a") == 2
    assert fleet_cli("--dir", root, "rotate", "dev-a") == 2


def test_rotate_keeps_the_old_certificate_and_seal_key_for_the_overlap_only(root):
    old_cert = (root / "creds/dev-a/client.pem").read_bytes()
    old_seal = (root / "creds/dev-a/seal.key").read_text().strip()
    assert fleet_cli("--dir", root, "rotate", "dev-a") == 0
    assert (root / "creds/dev-a/client.pem").read_bytes() != old_cert
    new_seal = (root / "creds/dev-a/seal.key").read_text().strip()
    assert new_seal != old_seal
    # ingest's --keys holds one key a device: the new one; --all lists both
    assert ops.ingest_keys(root)["dev-a"] == new_seal
    assert ops.ingest_keys(root, all_keys=True)["dev-a"] == [new_seal, old_seal]
    f = Fleet(root).load()
    old = f.doc["devices"]["dev-a"]["certs"][1]
    retire = pki.parse_iso(old["retire_at"])
    assert datetime.timedelta(days=3) - datetime.timedelta(minutes=1) < retire - pki.utcnow() <= datetime.timedelta(days=3)
    assert _crl_serials(root)[0] == set()
    # once the overlap has passed (written into the registry here rather
    # than waited for), the next broker-config puts it on the CRL
    doc = json.loads((root / "registry.json").read_text())
    doc["devices"]["dev-a"]["certs"][1]["retire_at"] = pki.iso(pki.utcnow() - datetime.timedelta(seconds=1))
    (root / "registry.json").write_text(json.dumps(doc))
    assert fleet_cli("--dir", root, "broker-config") == 0
    assert _crl_serials(root)[0] == {int(old["serial"], 16)}


def test_a_malformed_certificate_file_is_named_with_its_fix_and_nothing_is_written(root, capsys):
    f = Fleet(root).load()
    rel = f.doc["devices"]["dev-b"]["certs"][0]["file"]
    (root / rel).write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    before = snapshot(root)
    for argv in (("broker-config",), ("revoke", "dev-a"), ("add", "dev-c", "--board", "sim"), ("rotate", "dev-a")):
        assert fleet_cli("--dir", root, *argv) == 2, argv
        err = capsys.readouterr().err
        assert str(root / rel) in err and "not a PEM certificate" in err and "edgefw fleet rotate dev-b" in err, err
        after = snapshot(root)
        # the failed command may have left an orphan certificate (never
        # named by the registry) and credentials no one was told about are
        # not written; every file that was there is unchanged
        assert {k: after[k] for k in before} == before, argv
        assert not any(k.startswith("creds/dev-c") for k in after)


def test_a_certificate_swapped_for_another_valid_one_is_caught(root, capsys):
    f = Fleet(root).load()
    rel = f.doc["devices"]["dev-b"]["certs"][0]["file"]
    (root / rel).write_bytes((root / "creds/dev-a/client.pem").read_bytes())
    assert fleet_cli("--dir", root, "broker-config") == 2
    assert "not the certificate the registry recorded for dev-b" in capsys.readouterr().err


def test_a_broken_registry_or_ca_key_is_a_clear_error(root, capsys):
    good = (root / "registry.json").read_text()
    (root / "registry.json").write_text(good[: len(good) // 2])
    assert fleet_cli("--dir", root, "list") == 2
    assert "registry.json: not valid JSON" in capsys.readouterr().err
    (root / "registry.json").write_text(good)
    other = pki.new_key()
    (root / "private/ca.key").write_bytes(pki.key_pem(other))
    assert fleet_cli("--dir", root, "broker-config") == 2
    assert "ca.key does not belong to" in capsys.readouterr().err
    assert fleet_cli("--dir", root / "nowhere", "list") == 2
    assert "edgefw fleet init" in capsys.readouterr().err


def test_write_atomic_leaves_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    p = tmp_path / "f.json"
    write_atomic(p, "old\n")

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", disk_full)
    with pytest.raises(OSError):
        write_atomic(p, "new and longer\n")
    assert p.read_text() == "old\n" and os.listdir(tmp_path) == ["f.json"]


def test_list_shows_devices_and_services(root, capsys):
    assert fleet_cli("--dir", root, "list", "--json") == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["identities"]
    assert out["crl"]["revoked"] == 0 and 29 * 24 < out["crl"]["hours_left"] <= 30 * 24
    assert [(r["name"], r["kind"], r["what"], r["status"]) for r in rows] == [
        ("dev-a", "device", "esp32_devkitc", "active"),
        ("dev-b", "device", "rpi4", "active"),
        ("ingest-1", "service", "ingest", "active"),
    ]
    assert all(89 <= r["cert_days_left"] <= 90 for r in rows)


def test_list_fails_when_the_crl_is_about_to_expire(root, capsys):
    f = Fleet(root).load()
    ca_key, ca = pki.load_key(f.ca_key_path, ""), pki.load_cert(f.ca_path, "")
    (root / "broker/crl.pem").write_bytes(pki.cert_pem(pki.make_crl(ca_key, ca, [], 1, 0)))
    assert fleet_cli("--dir", root, "list") == 1
    assert "the CRL expires in" in capsys.readouterr().err
    assert fleet_cli("--dir", root, "broker-config") == 0
    assert fleet_cli("--dir", root, "list") == 0


@pytest.mark.parametrize("opt", [("--crl-days", "0"), ("--cert-days", "0"), ("--overlap-days", "400")])
def test_init_refuses_validities_that_make_no_sense(tmp_path, opt, capsys):
    assert fleet_cli("init", tmp_path / "f", *opt) == 2
    assert "days" in capsys.readouterr().err and not (tmp_path / "f").exists()


def test_write_credentials_for_other_tools(tmp_path):
    """tools/flash.py and the Linux install call this with what they have."""
    ca_key, ca = pki.make_ca("t", 1)
    key = pki.new_key()
    now = pki.utcnow()
    cert = pki.issue(ca_key, ca, "dev-x", key.public_key(), now, now + datetime.timedelta(days=1))
    d = tmp_path / "out" / "dev-x"
    ops.write_credentials(str(d), "dev-x", pki.key_pem(key), cert, ca, b"\x01" * 32, {"hosts": ["broker.lan"], "port": 8883})
    assert sorted(os.listdir(d)) == ["ca.pem", "client.key", "client.pem", "seal.key", "uplink.json"]
    assert mode(d) == 0o700 and mode(d / "client.key") == 0o600 and mode(d / "seal.key") == 0o600
    assert (d / "seal.key").read_text() == "01" * 32 + "\n"
    assert json.loads((d / "uplink.json").read_text())["uplink"]["broker"] == "broker.lan:8883"


def test_fleet_error_is_what_main_reports():
    with pytest.raises(FleetError):
        ops.parse_labels(["novalue"])


def _openssl_csr(tmp_path, cn, curve="prime256v1"):
    import subprocess

    key, csr = tmp_path / (cn + ".key"), tmp_path / (cn + ".csr")
    subprocess.run(
        ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:" + curve, "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return key, csr


def test_a_device_made_key_is_certified_from_its_csr_and_never_written(root, tmp_path):
    key, csr = _openssl_csr(tmp_path, "pi-1")
    out = tmp_path / "pi-1-creds"
    assert fleet_cli("--dir", root, "add", "pi-1", "--board", "rpi4", "--csr", csr, "--out", out) == 0
    assert sorted(os.listdir(out)) == ["ca.pem", "client.pem", "seal.key", "uplink.json"]
    cert = x509.load_pem_x509_certificate((out / "client.pem").read_bytes())
    dev_key = pki.load_key(str(key), "")
    assert cert.public_key().public_numbers() == dev_key.public_key().public_numbers()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "pi-1"
    assert json.loads((root / "registry.json").read_text())["devices"]["pi-1"]["key_origin"] == "device (CSR)"
    # a rotation with a new request from the device
    (tmp_path / "r").mkdir()
    key2, csr2 = _openssl_csr(tmp_path / "r", "pi-1", "secp384r1")
    assert fleet_cli("--dir", root, "rotate", "pi-1", "--csr", csr2, "--out", out) == 0
    cert2 = x509.load_pem_x509_certificate((out / "client.pem").read_bytes())
    assert cert2.public_key().public_numbers() == pki.load_key(str(key2), "").public_key().public_numbers()


def test_a_bad_csr_is_refused_with_the_reason_and_nothing_is_written(root, tmp_path, capsys):
    _key, other = _openssl_csr(tmp_path, "someone-else")
    _key, good = _openssl_csr(tmp_path, "pi-2")
    from cryptography.hazmat.primitives.serialization import Encoding

    der = bytearray(x509.load_pem_x509_csr(good.read_bytes()).public_bytes(Encoding.DER))
    der[-3] ^= 0xFF  # inside the signature
    tampered = tmp_path / "tampered.csr"
    tampered.write_bytes(bytes(der))
    garbage = tmp_path / "garbage.csr"
    garbage.write_text("hello\n")
    before = snapshot(root)
    for path, why in ((other, "CN=someone-else, not pi-2"), (tampered, "signature does not match"), (garbage, "not a certificate signing request")):
        assert fleet_cli("--dir", root, "add", "pi-2", "--board", "rpi5", "--csr", path) == 2
        err = capsys.readouterr().err
        assert str(path) in err and why in err, err
        assert snapshot(root) == before


@pytest.mark.parametrize(
    "edit, what",
    [
        (lambda d: d["devices"].__setitem__("x\ntopic readwrite #", d["devices"].pop("dev-b")), "device id"),
        (lambda d: d["devices"]["dev-a"].__setitem__("board", "esp32\nuser dev-b"), "board of dev-a"),
        (lambda d: d["fleet"]["broker"].__setitem__("user", "root\nallow_anonymous true"), "fleet.broker.user"),
        (lambda d: d["fleet"]["broker"].__setitem__("port", "8883\nlistener 1883"), "fleet.broker.port"),
    ],
)
def test_a_hand_edited_registry_cannot_add_lines_to_the_acl_or_config(root, edit, what, capsys):
    doc = json.loads((root / "registry.json").read_text())
    edit(doc)
    (root / "registry.json").write_text(json.dumps(doc))
    before = {p: (root / "broker" / p).read_bytes() for p in ("acl", "mosquitto.conf", "crl.pem")}
    assert fleet_cli("--dir", root, "broker-config") == 2
    err = capsys.readouterr().err
    assert "registry.json" in err and what in err, err
    assert {p: (root / "broker" / p).read_bytes() for p in before} == before


def test_the_expected_firmware_hash_is_set_checked_and_cleared(root, capsys):
    h = "AB" * 32
    assert fleet_cli("--dir", root, "firmware", "dev-a", "--sha256", h) == 0
    assert json.loads((root / "registry.json").read_text())["devices"]["dev-a"]["firmware_sha256"] == h.lower()
    assert fleet_cli("--dir", root, "firmware", "dev-a", "--sha256", "abc") == 2
    assert fleet_cli("--dir", root, "firmware", "ingest-1", "--sha256", h) == 2
    assert "64 hex digits" in capsys.readouterr().err
    assert fleet_cli("--dir", root, "firmware", "dev-a", "--clear") == 0
    assert json.loads((root / "registry.json").read_text())["devices"]["dev-a"]["firmware_sha256"] is None
