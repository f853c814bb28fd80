"""The README's commands are the ones CI runs, and the docs name every
config field and scenario event the code accepts."""

import contextlib
import io
import re

import pytest

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


def _run_usage(readme):
    block = re.findall(r"```\n(edgefw run .*?)```", readme, re.S)[0]
    return re.findall(r"\[(--[a-z-]+)(?: ([A-Z:|a-z]+))?\]", block)


def test_readme_run_usage_and_table_match_the_parser():
    from edgefw.cli import parser

    readme = (ROOT / "README.md").read_text()
    run = parser("run")
    want = {}
    for a in run._actions:
        opt = a.option_strings[-1] if a.option_strings else None
        if opt and opt != "--help":
            want[opt] = "" if a.nargs == 0 else (a.metavar or "|".join(a.choices or ()))
    assert dict(_run_usage(readme)) == want
    table = readme.split("## `edgefw run`", 1)[1].split("##", 1)[0]
    missing = [o for o in want if "| `" + o not in table]
    assert not missing, missing


def test_readme_names_every_command_in_help():
    from edgefw.cli import COMMANDS, main

    readme = (ROOT / "README.md").read_text()
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        main(["--help"])
    help_text = out.getvalue()
    for cmd, _module, _help in COMMANDS:
        assert cmd in help_text and "edgefw " + cmd in readme, cmd
    assert "edgefw --version" in readme
