"""The gateway's config checker and its command module, without brokers."""

import argparse
import json

import pytest

from edgefw.gateway import cli, config
from hal.errors import ConfigError

BASE = {"gateway": {"id": "gw-1"}, "upstream": {"broker": "10.0.0.1:1883"}}


def _with(**sections):
    d = json.loads(json.dumps(BASE))
    for k, v in sections.items():
        d.setdefault(k, {}).update(v)
    return d


def test_defaults_filled_in():
    cfg = config.check(BASE)
    assert cfg["site"]["broker"] == "127.0.0.1:1883"
    assert cfg["upstream"]["window"] == 8 and cfg["store"]["cap_bytes"] == 256 << 20


@pytest.mark.parametrize(
    "doc, field",
    [
        ({"upstream": {"broker": "x:1"}}, "gateway.id"),
        (_with(gateway={"id": "a/b"}), "gateway.id"),
        ({"gateway": {"id": "gw"}}, "upstream.broker"),
        (_with(upstream={"broker": "host"}), "upstream.broker"),
        (_with(upstream={"window": 0}), "upstream.window"),
        (_with(upstream={"windw": 3}), "upstream.windw"),
        (_with(store={"segment_bytes": 1 << 30}), "store.segment_bytes"),
        # a queue's cap holds two segments at least, and fits the total
        (_with(store={"event_cap_bytes": 1 << 20}), "store.event_cap_bytes"),
        (_with(store={"telemetry_cap_bytes": 1 << 40}), "store.telemetry_cap_bytes"),
        (_with(store={"kept_cap_bytes": 100}), "store.kept_cap_bytes"),
        (_with(store={"kept_s": 0}), "store.kept_s"),
        (_with(site={"keys": "/nonexistent/keys.json"}), "site.keys"),
        (_with(bogus={}), "bogus"),
    ],
)
def test_wrong_fields_are_named(doc, field):
    with pytest.raises(ConfigError) as e:
        config.check(doc)
    assert e.value.field == field


def test_keys_without_a_gateway_key_refused(tmp_path):
    k = tmp_path / "k.json"
    k.write_text("{}")
    with pytest.raises(ConfigError) as e:
        config.check(_with(site={"keys": str(k)}))
    assert e.value.field == "gateway.key_file"


def test_cli_check_and_bad_config(tmp_path, capsys):
    p = cli.add_parser(argparse.ArgumentParser())
    good = tmp_path / "g.json"
    good.write_text(json.dumps(BASE))
    assert cli.main(p.parse_args(["--config", str(good), "--check"])) == 0
    bad = tmp_path / "b.json"
    bad.write_text(json.dumps(_with(upstream={"window": "many"})))
    assert cli.main(p.parse_args(["--config", str(bad)])) == 2
    assert "upstream.window" in capsys.readouterr().err


def test_the_docs_config_example_checks():
    from tests.conftest import ROOT

    text = (ROOT / "docs" / "gateway.md").read_text()
    block = text.split("## Config", 1)[1].split("```json", 1)[1].split("```", 1)[0]
    cfg = config.check(json.loads(block), "docs/gateway.md", files=False)
    assert cfg["aggregate"]["channels"] == {"vib.accel_x_g": "around"}
