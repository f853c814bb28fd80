"""The uplink's tls_cert/tls_key fields, checked as strictly as tls_ca: a
fleet device's credential directory passes, half a pair or a certificate
without TLS does not, and a missing file is named where the uplink starts."""

import json

import pytest

from edgefw.fleet import ops
from firmware.config import check_uplink, load_config
from hal.errors import ConfigError


@pytest.fixture
def creds(tmp_path):
    ops.init(tmp_path / "fleet", port=8883)
    _f, out = ops.add_device(tmp_path / "fleet", "dev-a", "esp32_devkitc")
    return out


def _cfg(creds, tmp_path, **up):
    base = json.load(open(creds + "/uplink.json"))
    u = {k: (creds + "/" + v if k in ("tls_ca", "tls_cert", "tls_key", "key_file") else v) for k, v in base["uplink"].items()}
    u.update(up)
    p = tmp_path / "device.json"
    p.write_text(json.dumps({"device_id": base["device_id"], "uplink": u}))
    return p


def test_the_fleet_credential_directory_makes_a_valid_uplink_section(creds, tmp_path):
    cfg = load_config(str(_cfg(creds, tmp_path)))
    assert check_uplink(cfg, files=True) == ("127.0.0.1", 8883)
    assert cfg["uplink"]["tls_cert"].endswith("client.pem") and cfg["uplink"]["tls_key"].endswith("client.key")


def test_defaults_leave_the_pair_unset():
    cfg = load_config()
    assert cfg["uplink"]["tls_cert"] is None and cfg["uplink"]["tls_key"] is None


@pytest.mark.parametrize(
    "change, field",
    [
        ({"tls_key": None}, "uplink.tls_key"),
        ({"tls_cert": None}, "uplink.tls_cert"),
        ({"tls_ca": None}, "uplink.tls_ca"),
        ({"tls_cert": 5}, "uplink.tls_cert"),
        ({"tls_key": ""}, "uplink.tls_key"),
    ],
)
def test_half_a_pair_or_a_certificate_without_tls_is_refused(creds, tmp_path, change, field):
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        load_config(str(_cfg(creds, tmp_path, **change)))


def test_a_missing_certificate_file_is_named_where_the_uplink_starts(creds, tmp_path):
    cfg = load_config(str(_cfg(creds, tmp_path, tls_cert=creds + "/nope.pem")))
    with pytest.raises(ConfigError, match=r"uplink\.tls_cert.*a file that exists"):
        check_uplink(cfg, files=True)
