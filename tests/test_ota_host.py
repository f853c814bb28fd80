"""The host's side of ESP32 updates over the network, without a device:
the bundle and its manifest, the fleet's ACL for it, the rollout plan's
MQTT engine."""

import json
import tarfile

import pytest

from edgefw.build.mpy import BUILD
from edgefw.deploy.bundle import keygen
from edgefw.fleet import FleetError, ops, ota
from edgefw.fleet.broker import acl_text
from edgefw.fleet.registry import Fleet
from edgefw.rollout import plan as P
from firmware.ota.ed25519 import verify


def fake_image(d):
    for rel, data in (
        ("firmware/app.mpy", b"app"),
        ("firmware/prechecked.json", b'{"config": {"device_id": "x"}}'),
        ("lib/umqtt/simple.mpy", b"mqtt"),
        ("boot.py", b"# boot"),
        ("main.py", b"# main"),
        ("device.key", b"00"),
        ("manifest.json", b"{}"),
    ):
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(data)
    (d / BUILD).write_text(json.dumps({"version": "1.0.0", "board": "esp32_devkitc", "bundle": "x", "mpy": "6.3"}))
    return d


def test_bundle_holds_the_application_signed_and_nothing_of_the_device(tmp_path):
    img = fake_image(tmp_path / "img")
    keygen(str(tmp_path / "k"))
    m = ota.build_bundle(img, str(tmp_path / "k.key"), str(tmp_path / "b.edgefw"), "1.2.0", selftest_s=20)
    names = [f[0] for f in m["files"]]
    # the device's own files (its key, its config) and the boot files stay on the device
    assert names == ["build.json", "firmware/app.mpy", "lib/umqtt/simple.mpy"], names
    assert m["version"] == "1.2.0" and m["selftest_s"] == 20 and m["board"] == "esp32_devkitc"
    b = ota.Bundle(str(tmp_path / "b.edgefw"))
    assert json.loads(b.data[0])["version"] == "1.2.0"
    kid, pub = ota.key_hex(str(tmp_path / "k.pub"))
    assert b.key == kid
    # what the device checks: the signature over the manifest's bytes, with the device's own code
    assert verify(bytes.fromhex(pub), b.mbytes, b.sig)
    assert not verify(bytes.fromhex(pub), b.mbytes + b"x", b.sig)
    # the revert it carries names this bundle and no other
    key, rsig = b.revert_sig
    assert verify(bytes.fromhex(pub), ota.REVERT + b.id.encode(), rsig)
    assert not verify(bytes.fromhex(pub), ota.REVERT + b"0123456789abcdef", rsig)
    with tarfile.open(tmp_path / "b.edgefw") as t:
        assert sorted(t.getnames()) == ["manifest", "manifest.sig", "payload/build.json", "payload/firmware/app.mpy", "payload/lib/umqtt/simple.mpy", "revert.sig"]


def test_flash_layout_splits_device_and_application(tmp_path):
    img = fake_image(tmp_path / "img")
    st = ota.flash_layout(img, tmp_path / "fs")
    fs = tmp_path / "fs"
    assert st["current"] == "a" and st["try"] is None and st["version"] == "1.0.0"
    assert (fs / "device.key").exists() and (fs / "main.py").exists() and not (fs / "a" / "device.key").exists()
    assert (fs / "a" / "firmware" / "app.mpy").exists() and (fs / "a" / "firmware" / "prechecked.json").exists()
    assert json.loads((fs / "ota.json").read_text()) == st


def test_not_a_bundle_is_refused_by_name(tmp_path):
    (tmp_path / "x").write_text("no")
    with pytest.raises(FleetError, match="is not an ESP32 bundle"):
        ota.Bundle(str(tmp_path / "x"))


def test_acl_grants_devices_their_update_topics_and_the_ota_role_the_rest(tmp_path):
    root = tmp_path / "fleet"
    ops.init(root, port=18883)
    ops.add_device(root, "esp-1", "esp32_devkitc")
    ops.add_service(root, "ota-1", "ota")
    text = acl_text(Fleet(root).load())
    dev = text.split("user esp-1\n")[1].split("\n\n")[0]
    assert "topic write edgefw/esp-1/ota/#" in dev and "topic read edgefw/esp-1/cmd" in dev
    srv = text.split("user ota-1\n")[1]
    assert "topic read edgefw/+/ota/#" in srv and "topic write edgefw/+/cmd" in srv
    with pytest.raises(FleetError, match="--devices is for a gateway"):
        ops.add_service(root, "ota-2", "ota", devices=["esp-1"])


def test_plan_engine_mqtt_needs_its_broker(tmp_path):
    base = {"bundle": "b.edgefw", "inventory": "inv.json", "stages": [1], "engine": "mqtt"}
    (tmp_path / "p.json").write_text(json.dumps(base))
    with pytest.raises(P.PlanError, match=r"engine mqtt needs an \[mqtt\] table"):
        P.load(str(tmp_path / "p.json"))
    (tmp_path / "p.json").write_text(json.dumps(dict(base, mqtt={"broker": "127.0.0.1:1883", "bogus": 1})))
    with pytest.raises(P.PlanError, match="unknown field mqtt.bogus"):
        P.load(str(tmp_path / "p.json"))
    (tmp_path / "p.json").write_text(json.dumps(dict(base, mqtt={"broker": "127.0.0.1:1883", "tls_ca": "ca.pem"})))
    p = P.load(str(tmp_path / "p.json"))
    assert p.engine == "mqtt" and p.mqtt["broker"] == "127.0.0.1:1883" and p.mqtt["tls_ca"] == str(tmp_path / "ca.pem")


def test_fleet_commands_trust_lay_out_and_sign(tmp_path, capsys):
    import argparse

    from edgefw.fleet import cli

    def fleet(*argv):
        p = cli.add_parser(argparse.ArgumentParser(prog="edgefw fleet"))
        return cli.main(p.parse_args([str(a) for a in argv]))

    img = fake_image(tmp_path / "img")
    keygen(str(tmp_path / "k"))
    assert fleet("ota-trust", img, tmp_path / "k.pub") == 0
    kid, pub = ota.key_hex(str(tmp_path / "k.pub"))
    assert json.loads((img / "ota_keys.json").read_text()) == {kid: pub}
    assert fleet("ota-layout", img, tmp_path / "fs") == 0
    assert (tmp_path / "fs" / "a" / "ota_keys.json").exists()
    assert fleet("ota-bundle", img, "--key", tmp_path / "k.key", "--version", "2.0.0", "-o", tmp_path / "b.edgefw") == 0
    assert ota.Bundle(str(tmp_path / "b.edgefw")).version == "2.0.0"
    assert fleet("ota-bundle", img, "--key", tmp_path / "nokey", "--version", "2.0.0", "-o", tmp_path / "c.edgefw") == 2
    assert "ota-bundle:" in capsys.readouterr().err
