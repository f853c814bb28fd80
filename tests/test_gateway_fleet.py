"""A gateway that takes its nodes' identities from the fleet registry
(``site.fleet``): the seal keys of the devices the registry lets it relay
for, a revoked node's batches refused with a negative receipt sealed with
its key, and SIGHUP reading the registry again, as ingest does. Over real
mosquitto brokers (site and upstream) with the gateway as a process."""

import json
import os
import signal
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest

from edgefw.emul.broker import Mosquitto
from edgefw.fleet import ops
from firmware.uplink import receipt
from tests.conftest import ROOT
from tests.helpers.fleet import make_fleet
from tests.test_fleet_ingest import _batch, _seal_key, _sealed


def _wait(pred, timeout=20):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.05)
    return False


def test_site_fleet_keys_revocation_and_sighup(tmp_path):
    root = tmp_path / "fleet"
    make_fleet(root, devices=(("dev-a", "esp32_devkitc"), ("dev-b", "esp32_devkitc"), ("dev-c", "esp32_devkitc")), services=())
    ops.add_service(root, "gw-1", "gateway", ["dev-a", "dev-b"])
    (tmp_path / "gw.key").write_text(os.urandom(32).hex())
    (tmp_path / "site").mkdir()
    (tmp_path / "up").mkdir()
    with Mosquitto(tmp_path / "site") as site, Mosquitto(tmp_path / "up") as up:
        cfg = {
            "gateway": {"id": "gw-1", "key_file": str(tmp_path / "gw.key")},
            "site": {"broker": "127.0.0.1:%d" % site.port, "fleet": str(root)},
            "upstream": {"broker": "127.0.0.1:%d" % up.port},
            "store": {"path": str(tmp_path / "gw-store")},
        }
        (tmp_path / "gw.json").write_text(json.dumps(cfg))
        log = tmp_path / "gw.log"
        gw = subprocess.Popen([sys.executable, "-m", "edgefw", "gateway", "--config", str(tmp_path / "gw.json")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=open(log, "w"))
        got = {}
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="nodes", protocol=mqtt.MQTTv311)
        c.on_message = lambda _c, _u, m: got.setdefault(m.topic.split("/")[1], []).append(m.payload)
        c.connect("127.0.0.1", site.port)
        for d in ("dev-a", "dev-b", "dev-c"):
            c.subscribe("edgefw/%s/receipt" % d, qos=1)
        c.loop_start()
        try:

            def send(dev, first, last, key=None, want=True):
                key = key or _seal_key(root, dev)
                n = len(got.get(dev, []))
                deadline = time.monotonic() + 20
                while len(got.get(dev, [])) == n and time.monotonic() < deadline:
                    c.publish("edgefw/%s/up" % dev, _sealed(key, _batch(dev, first, last, os.urandom(8))), qos=1)
                    if not want:
                        time.sleep(2)
                        break
                    _wait(lambda: len(got.get(dev, [])) > n, 2)
                if not want:
                    return None
                assert len(got.get(dev, [])) > n, "no receipt for %s within 20 s" % dev
                return receipt.parse(got[dev][-1], key)

            r = send("dev-a", 1, 2)
            assert r["ok"] is True and r["verified"]
            # dev-c is registered but not one this gateway relays for: refused
            # as a stranger (no key to seal a receipt with)
            send("dev-c", 1, 1, want=False)
            assert "dev-c" not in got and "unknown_device" in log.read_text()
            key_b = _seal_key(root, "dev-b")
            ops.revoke(root, "dev-b", "stolen")
            gw.send_signal(signal.SIGHUP)
            assert _wait(lambda: "fleet registry read again: 1 nodes, 1 revoked" in log.read_text() or "2 nodes, 1 revoked" in log.read_text())
            r = send("dev-b", 1, 2, key=key_b)
            # sealed with its own key: the node can trust the refusal, keeps its records
            assert r["ok"] is False and r["verified"] and "revoked" in r["why"]
            assert send("dev-a", 3, 4)["ok"] is True
        finally:
            c.loop_stop()
            c.disconnect()
            gw.send_signal(signal.SIGTERM)
            gw.wait(30)
    assert "Traceback" not in log.read_text(), log.read_text()


def test_site_fleet_config_errors(tmp_path):
    from edgefw.gateway import config
    from hal.errors import ConfigError

    base = {"gateway": {"id": "gw-1", "key_file": None}, "upstream": {"broker": "127.0.0.1:1"}}
    with pytest.raises(ConfigError, match="site.fleet"):
        config.check(dict(base, site={"fleet": str(tmp_path)}))
    (tmp_path / "k.json").write_text("{}")
    with pytest.raises(ConfigError, match="not both"):
        config.check(dict(base, site={"fleet": str(tmp_path), "keys": str(tmp_path / "k.json")}))
