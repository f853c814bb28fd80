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
    from firmware.uplink.uplink import check_config

    cfg = load_config(None)
    assert check_config(cfg) == ("127.0.0.1", 1883)
    cfg["uplink"]["broker"] = "no-port"
    assert "uplink.broker" in str(raises(ConfigError, check_config, cfg, "site.json"))
    cfg["uplink"]["broker"] = "h:1"
    cfg["uplink"]["batch_records"] = 0
    assert "uplink.batch_records" in str(raises(ConfigError, check_config, cfg, "site.json"))
    p = _write({"uplink": {"brokr": "x"}})
    assert "uplink.brokr" in str(raises(ConfigError, load_config, p))


def _refused(doc, field, *words):
    """The config is refused, naming ``field`` and each of ``words``."""
    msg = str(raises(ConfigError, load_config, _write(doc)))
    assert "'" + field + "'" in msg, msg
    for w in words:
        assert w in msg, (w, msg)
    return msg


def _temp(rule):
    return {"interlock": {"channels": {"env.temperature_c": rule}}}


def test_limits_beyond_the_interlock_tables_are_refused_with_the_range():
    # 3000000.0 degC would wrap in a 32-bit table of thousandths
    f = "interlock.channels.env.temperature_c.high"
    _refused(_temp({"high": 3000000.0}), f, "-1000000", "1000000")
    _refused(_temp({"low": -3000000.0}), "interlock.channels.env.temperature_c.low", "1000000")
    _refused(_temp({"rate_per_s": 1e7}), "interlock.channels.env.temperature_c.rate_per_s", "1000000")
    _refused(_temp({"plausible": [-1e9, 85]}), "interlock.channels.env.temperature_c.plausible[0]")
    # the bound itself is a limit the tables hold
    cfg = load_config(_write(_temp({"high": 1000000.0, "low": -1000000.0})))
    assert cfg["interlock"]["channels"]["env.temperature_c"]["high"] == 1000000.0


def test_nan_and_infinity_are_refused():
    # written as JSON literals, which both targets' parsers accept or refuse
    f = "interlock.channels.env.temperature_c.high"
    for lit in ("NaN", "Infinity", "-Infinity", "1e400"):
        p = _write('{"interlock": {"channels": {"env.temperature_c": {"high": %s}}}}' % lit)
        msg = str(raises(ConfigError, load_config, p))
        assert f in msg or "valid JSON" in msg, msg
    p = _write('{"inference": {"threshold": NaN}}')
    msg = str(raises(ConfigError, load_config, p))
    assert "inference.threshold" in msg or "valid JSON" in msg, msg


def test_nan_threshold_from_overrides_is_refused():
    e = raises(ConfigError, load_config, None, {"inference": {"threshold": float("nan")}})
    assert "inference.threshold" in str(e)
    e = raises(ConfigError, load_config, None, {"interlock": {"channels": {"env.temperature_c": {"high": float("inf")}}}})
    assert "high" in str(e) and "1000000" in str(e)


def test_deeply_nested_json_is_a_config_error():
    # too deep to parse here (CPython), or parsed and refused as not an
    # object (MicroPython with a large heap): a ConfigError either way
    p = _write("[" * 20000 + "]" * 20000)
    msg = str(raises(ConfigError, load_config, p))
    assert p in msg and ("(file)" in msg or "(top level)" in msg), msg


def test_a_deeply_nested_value_is_named_without_printing_it_whole():
    v = 0
    for _ in range(200):
        v = [v]
    msg = str(raises(ConfigError, load_config, None, {"device_id": v}))
    assert "device_id" in msg and len(msg) < 400


def test_stale_ms_must_cover_the_sample_interval_and_the_period():
    base = load_config(None)["sensors"]
    env, vib = dict(base[0]), dict(base[1])
    env["stale_ms"] = 5  # BME280 samples every ~10 ms
    _refused({"period_ms": 2, "sensors": [env, vib]}, "sensors[0].stale_ms", "10")
    env["stale_ms"] = 100
    vib["stale_ms"] = 20  # 25 Hz: a sample every 40 ms
    vib["rate_hz"] = 25
    _refused({"sensors": [env, vib]}, "sensors[1].stale_ms", "40")
    vib["stale_ms"], vib["rate_hz"] = 50, 800
    _refused({"period_ms": 60, "sensors": [env, vib], "interlock": {"watchdog_ms": 0}}, "sensors[1].stale_ms", "60")


def test_stall_ms_must_be_longer_than_the_period():
    _refused({"period_ms": 50, "interlock": {"stall_ms": 20, "watchdog_ms": 0}}, "interlock.stall_ms", "period_ms")
    assert load_config(_write({"interlock": {"stall_ms": 0}}))["interlock"]["stall_ms"] == 0


def test_hysteresis_must_fit_between_the_limits():
    _refused(_temp({"high": 60, "low": -20, "hysteresis": 81}), "interlock.channels.env.temperature_c.hysteresis", "high - low")
    assert load_config(_write(_temp({"high": 60, "low": -20, "hysteresis": 80})))


def test_uplink_fields_are_checked_with_the_uplink_off():
    _refused({"uplink": {"batch_records": -1}}, "uplink.batch_records")
    _refused({"uplink": {"broker": "nohost"}}, "uplink.broker", "HOST:PORT")
    for port in ("0", "99999"):
        _refused({"uplink": {"broker": "h:" + port}}, "uplink.broker", "65535")
    _refused({"uplink": {"rate_bytes_s": 1 << 40}}, "uplink.rate_bytes_s")


def test_uplink_files_must_exist_where_the_uplink_starts():
    from firmware.uplink.uplink import check_config

    cfg = load_config(_write({"uplink": {"tls_ca": tmp_path("absent-ca.pem")}}))
    msg = str(raises(ConfigError, check_config, cfg, "site.json"))
    assert "uplink.tls_ca" in msg and "exists" in msg
    cfg = load_config(_write({"uplink": {"key_file": tmp_path("absent.key")}}))
    assert "uplink.key_file" in str(raises(ConfigError, check_config, cfg, "site.json"))


def test_device_id_is_one_topic_level():
    for bad in ("a/b", "sim+1", "#", "", "x" * 65, "-lead", "sp ace", 7):
        _refused({"device_id": bad}, "device_id", "A-Z")
    for good in ("sim-0001", "Oven_2.east", "x" * 64):
        assert load_config(_write({"device_id": good}))["device_id"] == good
