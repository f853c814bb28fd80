"""Configuration: defaults, merging, and errors that name file and field."""

import json

from firmware.config import load_config
from hal.errors import ConfigError
from tests.dual._util import raises, tmp_path


def _write(doc):
    p = tmp_path("cfg.json")
    with open(p, "w") as f:
        f.write(doc if isinstance(doc, str) else json.dumps(doc))
    return p


def test_defaults_load():
    cfg = load_config(None)
    assert cfg["period_ms"] == 10
    assert cfg["interlock"]["channels"]["env.temperature_c"]["high"] == 60.0
    # defaults are filled in for every rule
    assert cfg["interlock"]["channels"]["env.humidity_pct"]["on_delay"] == 1


def test_user_file_merges_over_defaults():
    p = _write({"period_ms": 5, "interlock": {"watchdog_ms": 100}})
    cfg = load_config(p)
    assert cfg["period_ms"] == 5
    assert cfg["interlock"]["watchdog_ms"] == 100
    assert cfg["interlock"]["estop"] is True


def test_channels_replace_not_merge():
    p = _write({"interlock": {"channels": {"env.pressure_hpa": {"low": 900.0}}}})
    cfg = load_config(p)
    assert list(cfg["interlock"]["channels"]) == ["env.pressure_hpa"]


def test_error_names_file_and_field():
    p = _write({"interlock": {"channels": {"env.temperature_c": {"high": "hot"}}}})
    e = raises(ConfigError, load_config, p)
    msg = str(e)
    assert p in msg and "interlock.channels.env.temperature_c.high" in msg and "a number" in msg


def test_unknown_field_is_refused_with_the_allowed_ones():
    p = _write({"interlock": {"watchdg_ms": 5}})
    msg = str(raises(ConfigError, load_config, p))
    assert "interlock.watchdg_ms" in msg and "watchdog_ms" in msg


def test_unknown_channel_lists_the_channels():
    p = _write({"interlock": {"channels": {"env.temp": {"high": 1}}}})
    msg = str(raises(ConfigError, load_config, p))
    assert "env.temperature_c" in msg


def test_low_must_be_below_high():
    p = _write({"interlock": {"channels": {"env.temperature_c": {"high": 10, "low": 20}}}})
    assert "low" in str(raises(ConfigError, load_config, p))


def test_bad_json_and_missing_file():
    p = _write("{not json")
    assert "valid JSON" in str(raises(ConfigError, load_config, p))
    assert "readable" in str(raises(ConfigError, load_config, tmp_path("absent.json")))


def test_watchdog_must_outlast_a_period():
    p = _write({"period_ms": 50, "interlock": {"watchdog_ms": 20}})
    assert "watchdog_ms" in str(raises(ConfigError, load_config, p))


def test_sensor_fields_checked():
    base = load_config(None)["sensors"]
    bad = [dict(base[0]), dict(base[1])]
    bad[1]["range_g"] = 3
    p = _write({"sensors": bad})
    assert "sensors[1].range_g" in str(raises(ConfigError, load_config, p))
    dup = [dict(base[0]), dict(base[0])]
    p = _write({"sensors": dup})
    assert "sensors[1].name" in str(raises(ConfigError, load_config, p))


def test_uplink_section_checked_where_the_uplink_starts():
    from firmware.uplink import check_config

    cfg = load_config(None)
    assert check_config(cfg) == ("127.0.0.1", 1883)
    cfg["uplink"]["broker"] = "no-port"
    assert "uplink.broker" in str(raises(ConfigError, check_config, cfg, "site.json"))
    cfg["uplink"]["broker"] = "h:1"
    cfg["uplink"]["batch_records"] = 0
    assert "uplink.batch_records" in str(raises(ConfigError, check_config, cfg, "site.json"))
    p = _write({"uplink": {"brokr": "x"}})
    assert "uplink.brokr" in str(raises(ConfigError, load_config, p))
