"""The README's commands are the ones CI runs, and the docs name every
config field and scenario event the code accepts."""

import re

from firmware import config
from sim import scenario
from tests.conftest import ROOT


def _sh_blocks(text):
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    test_cmd = _sh_blocks(readme.split("## Test it", 1)[1])[0].strip()
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_cmd in ci


def test_readme_run_command_installs_and_runs():
    readme = (ROOT / "README.md").read_text()
    run_cmd = _sh_blocks(readme.split("## Run it", 1)[1])[0].strip()
    assert run_cmd == "python3 -m venv .venv && . .venv/bin/activate && pip install . && edgefw run"


def test_config_doc_names_every_field():
    doc = (ROOT / "docs" / "config.md").read_text()
    fields = list(config.TOP_FIELDS) + list(config.SENSOR_FIELDS) + list(config.INTERLOCK_FIELDS)
    fields += list(config.CHANNEL_FIELDS) + list(config.READBACK_FIELDS) + list(config.RECORD_FIELDS) + list(config.INFERENCE_FIELDS)
    fields += list(config.VOTE_FIELDS) + list(config.TTL_FIELDS) + list(config.UPLINK_FIELDS)
    missing = [f for f in fields if "`" + f + "`" not in doc]
    assert not missing, missing


def test_scenario_doc_names_every_event_kind():
    doc = (ROOT / "docs" / "scenarios.md").read_text()
    missing = [k for k in scenario.EVENT_KINDS + scenario.FAULT_KINDS + scenario.RELAY_STATES if "`" + k + "`" not in doc]
    assert not missing, missing
