"""The sensor table and the drivers' declarations agree: adding a sensor
type is one driver module plus one row in ``firmware.channels.DRIVERS``
(docs/extending.md), and everything else (the config checker, the loop,
the bench's probes) reads the driver's declaration."""

import copy

import pytest

from firmware.channels import DRIVERS, driver
from tests.conftest import ROOT


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_each_driver_declares_what_the_table_needs(kind):
    mod = driver(kind)
    assert mod.BUS in ("i2c", "uart")
    assert mod.QUANTITIES and len(set(mod.QUANTITIES)) == len(mod.QUANTITIES)
    assert all(isinstance(q, str) and "." not in q for q in mod.QUANTITIES)
    spec = {"name": "s", "type": kind, "bus": "X"}
    for name, default, allowed in mod.OPTIONS:
        assert isinstance(name, str) and default in allowed, name
        spec[name] = default
    assert isinstance(mod.sample_ms(spec), int) and mod.sample_ms(spec) > 0
    assert callable(mod.from_spec)
    if mod.BUS == "i2c":
        assert 0 <= mod.ID_REGISTER <= 0xFF and isinstance(mod.CHIP_ID, int)
    # its register model for the sim board, found by name
    assert (ROOT / "sim" / "chips" / (kind + ".py")).exists(), kind


def test_every_driver_module_is_in_the_table():
    modules = {p.stem for p in (ROOT / "hal" / "drivers").glob("*.py") if "QUANTITIES" in p.read_text()}
    assert modules == set(DRIVERS) and all(DRIVERS[k] == "hal.drivers." + k for k in DRIVERS)


def _config_with(sensor):
    from firmware.config import load_config

    base = load_config(None)
    user = {"sensors": copy.deepcopy(base["sensors"]) + [sensor]}
    return user


@pytest.mark.parametrize("kind", sorted(DRIVERS))
def test_the_config_checker_reads_the_declaration(kind, tmp_path):
    import json

    from firmware.config import load_config
    from hal.errors import ConfigError

    mod = driver(kind)
    s = {"name": "extra", "type": kind, "bus": "I2C0" if mod.BUS == "i2c" else "UART0", "stale_ms": 600000}
    if mod.BUS == "i2c":
        s["address"] = 0x30
    p = tmp_path / "c.json"
    p.write_text(json.dumps(_config_with(s)))
    cfg = load_config(str(p))
    got = [x for x in cfg["sensors"] if x["name"] == "extra"][0]
    for name, default, _allowed in mod.OPTIONS:
        assert got[name] == default
    # a field no driver of this type declares is refused, naming it
    s["no_such_option"] = 1
    p.write_text(json.dumps(_config_with(s)))
    with pytest.raises(ConfigError) as e:
        load_config(str(p))
    assert "no_such_option" in str(e.value)
    # a declared option outside its allowed values is refused, naming it
    for name, _default, allowed in mod.OPTIONS:
        del s["no_such_option"]
        s[name] = max(allowed) + 1
        p.write_text(json.dumps(_config_with(s)))
        with pytest.raises(ConfigError) as e:
            load_config(str(p))
        assert "sensors[%d].%s" % (len(_config_with(s)["sensors"]) - 1, name) in str(e.value)
        s[name] = allowed[0]
        s["no_such_option"] = 1
