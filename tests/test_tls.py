"""The uplink over TLS with a user name and password, against a real
mosquitto that has a second listener for it (a throwaway CA and server
certificate made with openssl), from CPython and from MicroPython, and
edgefw ingest receiving over TLS as well."""

import json
import subprocess
import time

import pytest

from edgefw.emul.broker import Mosquitto, make_ca_and_server_cert
from tests.test_cli import edgefw, last_json, run
from tests.test_micropython_uplink import KEY, mp
from tests.test_store_forward import IngestWorker


@pytest.fixture
def tls_broker(tmp_path):
    with Mosquitto(tmp_path, tls_users={"sim-0001": "s3cret-pw", "mp-dev": "mp-pw", "ingest": "ing-pw"}) as b:
        yield b


def _device_config(tmp_path, broker, password):
    key = "cd" * 32
    (tmp_path / "device.key").write_text(key + "\n")
    (tmp_path / "keys.json").write_text(json.dumps({"sim-0001": key}))
    cfg = tmp_path / "device.json"
    up = {"key_file": str(tmp_path / "device.key"), "batch_ms": 50, "tls_ca": broker.ca_pem, "username": "sim-0001", "password": password}
    cfg.write_text(json.dumps({"uplink": up}))
    return cfg


def test_cpython_device_forwards_over_tls_with_a_password(tmp_path, tls_broker):
    cfg = _device_config(tmp_path, tls_broker, "s3cret-pw")
    db = tmp_path / "ingest.sqlite"
    ingest = subprocess.Popen(
        [
            edgefw(),
            "ingest",
            "--broker",
            "127.0.0.1:%d" % tls_broker.port,
            "--keys",
            str(tmp_path / "keys.json"),
            "--db",
            str(db),
            "--idle-exit",
            "3",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.0)
    p = run("run", "--cycles", "1000", "--json", "--config", str(cfg), "--broker", "127.0.0.1:%d" % tls_broker.tls_port, "--journal", str(tmp_path / "j"))
    assert p.returncode == 0, p.stderr
    s = last_json(p.stdout)
    # the loop's records and the run's boot event
    assert s["journal_pending"] == 0 and s["uplink"]["records"] == s["records"] + 1 > 1
    out, _err = ingest.communicate(timeout=60)
    assert json.loads(out.strip().splitlines()[-1])["records"] == s["records"] + 1


def test_wrong_password_is_refused_and_nothing_leaves_the_journal(tmp_path, tls_broker):
    cfg = _device_config(tmp_path, tls_broker, "not-the-password")
    p = run(
        "run",
        "--cycles",
        "300",
        "--json",
        "--drain-s",
        "1",
        "--config",
        str(cfg),
        "--broker",
        "127.0.0.1:%d" % tls_broker.tls_port,
        "--journal",
        str(tmp_path / "j"),
    )
    assert p.returncode == 0, p.stderr
    s = last_json(p.stdout)
    assert s["uplink"]["records"] == 0 and s["journal_pending"] == s["records"] + 1 > 1  # and the boot event
    assert s["uplink"]["errors"] > 0 and "uplink.password" in s["uplink"]["last_error"]


def test_micropython_device_forwards_over_tls(tmp_path, tls_broker):
    w = IngestWorker(tls_broker.port, tmp_path / "i.sqlite", keys={"mp-dev": KEY})
    p = mp(
        [
            "tests/mp_only/uplink_device.py",
            str(tls_broker.tls_port),
            str(tmp_path / "j"),
            KEY.hex(),
            "60",
            "ca=" + tls_broker.ca_pem,
            "user=mp-dev",
            "password=mp-pw",
        ]
    )
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert s["drained"] and s["records"] == 60 and s["pending"] == 0
    assert w.wait_for(60)
    w.close()


def test_micropython_refuses_a_broker_its_ca_did_not_sign(tmp_path, tls_broker):
    other = tmp_path / "other"
    other.mkdir()
    other_ca = make_ca_and_server_cert(other)[0]
    args = [
        "tests/mp_only/uplink_device.py",
        str(tls_broker.tls_port),
        str(tmp_path / "j"),
        KEY.hex(),
        "10",
        "ca=" + other_ca,
        "user=mp-dev",
        "password=mp-pw",
        "drain_ms=1500",
    ]
    p = mp(args)
    assert p.returncode == 0, p.stdout + p.stderr
    s = json.loads(p.stdout.strip().splitlines()[-1])
    assert not s["drained"] and s["records"] == 0 and s["pending"] == 10
    assert s["errors"] > 0 and "not correctly signed" in s["last_error"]
