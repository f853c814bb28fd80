"""Fuzzing ``edgefw run`` and ``edgefw ingest`` option handling, seeded
and bounded, in-process: every combination with a bad value exits 2 with
a message naming it, every good one runs (exit 0, or 1 when a scenario's
expect fails); nothing raises. The counts are printed."""

import contextlib
import io
import json
import signal

from tests.conftest import ROOT
from tests.dual.fuzz import Rand

CASES = 240
INGEST_CASES = 200
FAULTS = str(ROOT / "sim" / "scenarios" / "faults")


def _files(tmp):
    def w(name, text):
        p = tmp / name
        p.write_text(text)
        return str(p)

    return {
        "bad_cfg": w("bad.json", json.dumps({"interlock": {"channels": {"env.temperature_c": {"high": 3000000.0}}}})),
        "list_cfg": w("list.json", "[1, 2]"),
        "deep_cfg": w("deep.json", '{"interlock": ' + "[" * 5000 + "]" * 5000 + "}"),
        "nan_cfg": w("nan.json", '{"inference": {"threshold": NaN}}'),
        "typo_sc": w("typo.json", json.dumps({"duration_s": 1, "events": [{"at_s": 0.1, "set": {"env.temprature_c": 70}}]})),
        "late_sc": w("late.json", json.dumps({"duration_s": 1, "events": [{"at_s": 2, "press": "RESET"}]})),
        "keys_list": w("keys.json", "[1]"),
        "keys_short": w("short.json", json.dumps({"d": "0011"})),
    }


def _run_options(f, tmp):
    # option -> (good values, bad values)
    return {
        "--cycles": (["1", "5", "20"], ["-5", "0", "abc", "", "1.5", "nan"]),
        "--speed": (["0", "100"], ["-1", "nan", "inf", "x", "-0.5"]),
        "--drain-s": (["0", "0.5"], ["-1", "inf", "x"]),
        "--heap": (["256k", "1M", "300000"], ["", "16q", "k", "-1k"]),
        "--broker": (["127.0.0.1:1883", "h:1"], ["127.0.0.1", "h:0", "h:99999", ":1883", "h:abc", ""]),
        "--target": (["cpython"], ["pypy", ""]),
        "--board": (["sim"], ["nope", "rpi4"]),
        "--config": ([FAULTS + "/config.json"], [str(tmp / "absent.json"), f["bad_cfg"], f["list_cfg"], f["deep_cfg"], f["nan_cfg"]]),
        "--scenario": (
            [FAULTS + "/over_temperature.json", str(ROOT / "sim" / "scenarios" / "default.json")],
            [str(tmp / "absent.json"), f["typo_sc"], f["late_sc"]],
        ),
    }


def _main(argv):
    """(exit code, stderr, exception or None) of edgefw.cli.main(argv)."""
    from edgefw.cli import main

    err = io.StringIO()
    old = signal.getsignal(signal.SIGTERM)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(argv)
            except SystemExit as e:
                rc = e.code
            except Exception as e:  # noqa: BLE001 - the point: nothing may escape
                return None, err.getvalue(), e
    finally:
        signal.signal(signal.SIGTERM, old)
    return rc, err.getvalue(), None


def test_fuzz_run_options(tmp_path):
    f = _files(tmp_path)
    opts = _run_options(f, tmp_path)
    names = sorted(opts)
    r = Rand(30)
    n = {"cases": 0, "refused": 0, "ran": 0, "parsed_only": 0, "tracebacks": 0, "accepted_invalid": 0, "unclear": 0}
    bad = []
    for case in range(CASES):
        chosen = {}
        for _ in range(1 + r.below(3)):
            name = r.pick(names)
            good, wrong = opts[name]
            chosen[name] = (r.pick(wrong), False) if r.below(2) else (r.pick(good), True)
        argv = ["run", "--json", "--cycles", "20", "--journal", str(tmp_path / ("j%d" % case))]
        for name, (v, _ok) in chosen.items():
            argv += [name, v]
        invalid = [name for name, (_v, ok) in chosen.items() if not ok]
        n["cases"] += 1
        if "--broker" in chosen and not invalid:
            # a good broker would start the uplink: parse, do not run
            from edgefw.cli import parse_args

            parse_args(argv)
            n["parsed_only"] += 1
            continue
        rc, err, exc = _main(argv)
        if exc is not None:
            n["tracebacks"] += 1
            bad.append("%s: %s: %s" % (argv, type(exc).__name__, exc))
        elif invalid:
            if rc != 2:
                n["accepted_invalid"] += 1
                bad.append("%s: exit %r" % (argv, rc))
            elif "Traceback" in err or not err.strip():
                n["unclear"] += 1
                bad.append("%s: %r" % (argv, err[-300:]))
            else:
                n["refused"] += 1
        elif rc not in (0, 1):
            bad.append("%s: good options, exit %r: %s" % (argv, rc, err[-300:]))
        else:
            n["ran"] += 1
    print("fuzz cli run: " + " ".join("%s=%d" % kv for kv in sorted(n.items())))
    assert not bad, bad[:5]
    assert n["refused"] > 50 and n["ran"] > 20, n


def test_fuzz_ingest_options(tmp_path):
    from edgefw.cli import parse_args
    from edgefw.ingest.server import load_keys

    f = _files(tmp_path)
    (tmp_path / "ca.pem").write_text("x")
    opts = {
        "--broker": (["127.0.0.1:1883", "h", "h:65535"], ["127.0.0.1:abc", "h:0", "h:99999", ":1"]),
        "--db": ([str(tmp_path / "i.sqlite")], [str(tmp_path / "no" / "i.sqlite"), str(tmp_path)]),
        "--tls-ca": ([str(tmp_path / "ca.pem")], [str(tmp_path / "none.pem")]),
        "--idle-exit": (["1", "0.5"], ["x"]),
    }
    names = sorted(opts)
    r = Rand(40)
    n = {"cases": 0, "refused": 0, "accepted": 0, "tracebacks": 0, "accepted_invalid": 0}
    bad = []
    for _case in range(INGEST_CASES):
        argv = ["ingest"]
        invalid = False
        for _ in range(1 + r.below(3)):
            name = r.pick(names)
            good, wrong = opts[name]
            ok = r.below(2) == 0
            invalid = invalid or not ok
            argv += [name, r.pick(good if ok else wrong)]
        n["cases"] += 1
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err):
                parse_args(argv)
            rc = 0
        except SystemExit as e:
            rc = e.code
        except Exception as e:  # noqa: BLE001
            n["tracebacks"] += 1
            bad.append("%s: %s" % (argv, e))
            continue
        if invalid and rc != 2:
            n["accepted_invalid"] += 1
            bad.append("%s accepted" % argv)
        elif not invalid and rc != 0:
            bad.append("%s refused: %s" % (argv, err.getvalue()))
        else:
            n["refused" if invalid else "accepted"] += 1
    # keys files: each a clear SystemExit message, never a traceback
    for p in (str(tmp_path / "absent.json"), f["keys_list"], f["keys_short"], f["deep_cfg"], f["list_cfg"]):
        n["cases"] += 1
        try:
            load_keys(p)
            n["accepted_invalid"] += 1
            bad.append("keys %s accepted" % p)
        except SystemExit as e:
            assert isinstance(e.code, str) and p in e.code, e.code
            n["refused"] += 1
        except Exception as e:  # noqa: BLE001
            n["tracebacks"] += 1
            bad.append("keys %s: %s: %s" % (p, type(e).__name__, e))
    print("fuzz cli ingest: " + " ".join("%s=%d" % kv for kv in sorted(n.items())))
    assert not bad, bad[:5]
    assert n["refused"] > 30 and n["accepted"] > 30, n
