"""Bad input on the command line gets a clear error, never a traceback;
a scenario's expect block decides ``edgefw run``'s exit code."""

import json

import pytest

from tests.test_cli import last_json, run

FAULTS = "sim/scenarios/faults"


def _scenario(tmp_path, doc):
    p = tmp_path / "s.json"
    p.write_text(json.dumps(doc))
    return str(p)


def _clear(p, *words):
    """Refused with a message holding every word, and no traceback."""
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr, p.stderr
    for w in words:
        assert w in p.stderr, (w, p.stderr)


EXPECT_ESTOP = {
    "duration_s": 1.0,
    "events": [{"at_s": 0.1, "press": "RESET", "for_s": 0.05}, {"at_s": 0.5, "press": "ESTOP"}],
    "expect": {"trips": [{"cause": "estop", "at_s": 0.5}]},
}


@pytest.mark.parametrize("target", ["cpython", "micropython"])
def test_a_scenario_expect_block_is_a_test(tmp_path, target):
    ok = _scenario(tmp_path, EXPECT_ESTOP)
    p = run("run", "--target", target, "--scenario", ok, "--json", "--journal", str(tmp_path / "j1"), timeout=300)
    assert p.returncode == 0, p.stderr
    assert "expect: passed" in p.stderr
    assert last_json(p.stdout)["trips"][0]["cause"].startswith("estop")
    # the same file expecting a trip that never comes fails, saying which
    bad = dict(EXPECT_ESTOP, expect={"trips": [{"cause": "estop", "at_s": 0.5}, {"cause": "env.temperature_c:high", "at_s": 0.8}]})
    p = run("run", "--target", target, "--scenario", _scenario(tmp_path, bad), "--json", "--journal", str(tmp_path / "j2"), timeout=300)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert "expect: FAILED: expected trip 2 (env.temperature_c:high at 0.800 s) did not happen" in p.stderr
    assert last_json(p.stdout)["cycles"] == 100


def test_a_shipped_fault_scenario_passes_its_own_expect(tmp_path):
    p = run("run", "--config", FAULTS + "/config.json", "--scenario", FAULTS + "/over_temperature.json", "--json", "--journal", str(tmp_path / "j"))
    assert p.returncode == 0 and "expect: passed" in p.stderr, p.stderr


def test_a_misspelt_scenario_channel_is_refused_before_the_run(tmp_path):
    sc = _scenario(tmp_path, {"duration_s": 2, "events": [{"at_s": 1.0, "set": {"env.temprature_c": 70}}]})
    _clear(run("run", "--scenario", sc, "--json", "--journal", str(tmp_path / "j")), "events[0].set", "env.temperature_c")
    late = _scenario(tmp_path, {"duration_s": 2, "events": [{"at_s": 3.0, "press": "RESET"}]})
    _clear(run("run", "--scenario", late, "--json", "--journal", str(tmp_path / "j")), "events[0].at_s", "from 0 to 2")


@pytest.mark.parametrize(
    "args,words",
    [
        (["--cycles", "-5"], ["--cycles", "1 or more"]),
        (["--cycles", "0"], ["--cycles"]),
        (["--speed", "-1"], ["--speed", "0 or more"]),
        (["--speed", "nan"], ["--speed"]),
        (["--drain-s", "-2"], ["--drain-s"]),
        (["--heap", "lots"], ["--heap", "256k"]),
        (["--broker", "127.0.0.1"], ["argument --broker", "HOST:PORT"]),
        (["--broker", "127.0.0.1:99999"], ["argument --broker", "65535"]),
    ],
)
def test_bad_run_options_are_refused_by_name(args, words, tmp_path):
    _clear(run("run", *args, "--journal", str(tmp_path / "j")), *words)


def test_a_config_broker_error_names_the_file_not_the_command_line(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"uplink": {"enabled": True, "broker": "h:0"}}))
    _clear(run("run", "--config", str(cfg), "--cycles", "5", "--json", "--journal", str(tmp_path / "j")), str(cfg), "uplink.broker")


def test_a_missing_tls_ca_stops_the_uplink_at_start(tmp_path):
    cfg = tmp_path / "c.json"
    cfg.write_text(json.dumps({"uplink": {"enabled": True, "tls_ca": str(tmp_path / "none.pem")}}))
    _clear(run("run", "--config", str(cfg), "--cycles", "5", "--json", "--journal", str(tmp_path / "j")), "uplink.tls_ca", "exists")


def test_a_small_micropython_heap_gets_a_hint(tmp_path):
    p = run("run", "--target", "micropython", "--heap", "16k", "--cycles", "5", "--journal", str(tmp_path / "j"))
    assert p.returncode != 0
    assert "--heap 16k" in p.stderr and "256k" in p.stderr and "mpy-build" in p.stderr


def test_a_device_board_on_the_unix_port_is_a_clear_error(tmp_path):
    p = run("run", "--target", "micropython", "--board", "esp32_devkitc", "--cycles", "5", "--journal", str(tmp_path / "j"))
    _clear(p, "esp32_devkitc", "--board sim")


def test_version_and_help():
    p = run("--version")
    assert p.returncode == 0 and p.stdout.startswith("edgefw ") and p.stdout.split()[1][0].isdigit()
    p = run("--help")
    for cmd in ("run", "mpy-build", "bench", "mp-deps", "infer", "ingest"):
        assert cmd in p.stdout, cmd
    assert "journal directory" in run("run", "--help").stdout


def test_every_bench_option_has_help():
    for what in ("interlock", "store", "forward", "infer"):
        p = run("bench", what, "--help")
        assert p.returncode == 0
        opts = [ln for ln in p.stdout.splitlines() if ln.strip().startswith("--")]
        assert opts, p.stdout
        for ln in opts:
            # argparse puts the help on the option's line or the next one
            i = p.stdout.splitlines().index(ln)
            nxt = p.stdout.splitlines()[i + 1] if i + 1 < len(p.stdout.splitlines()) else ""
            assert len(ln.split()) > 2 or (nxt.startswith(" " * 10) and not nxt.strip().startswith("-")), (what, ln)


def test_ingest_command_line_errors_are_clear(tmp_path):
    db = str(tmp_path / "i.sqlite")
    p = run("ingest", "--keys", str(tmp_path / "absent.json"), "--db", db, "--idle-exit", "1")
    assert p.returncode == 1 and "Traceback" not in p.stderr and "cannot read" in p.stderr, p.stderr
    (tmp_path / "k.json").write_text("[1, 2]")
    p = run("ingest", "--keys", str(tmp_path / "k.json"), "--db", db, "--idle-exit", "1")
    assert p.returncode == 1 and "Traceback" not in p.stderr and "JSON object" in p.stderr, p.stderr
    _clear(run("ingest", "--broker", "127.0.0.1:abc", "--db", db), "--broker", "HOST:PORT")
    _clear(run("ingest", "--db", str(tmp_path / "no" / "i.sqlite")), "--db", "does not exist")
    _clear(run("ingest", "--tls-ca", str(tmp_path / "ca.pem"), "--db", db), "--tls-ca")
