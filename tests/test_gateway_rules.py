"""The gateway's rules: checked at load, a quorum of nodes' events fires
once per set, silence fires once per silence, and nothing can clear a
node's trip."""

import json

import pytest

from edgefw.gateway import commands, config
from edgefw.gateway.rules import Rules
from edgefw.gateway.verify import Batch
from firmware import cbor
from hal.errors import ConfigError

Q = {"name": "site", "kind": "quorum", "match": {"k": "trip", "cause": "inference"}, "nodes": ["a", "b", "c"], "need": 2, "window_s": 60, "then": ["event", "trip"]}
S = {"name": "quiet", "kind": "silent", "nodes": ["a", "b"], "period_s": 10, "periods": 3, "then": ["event"]}
BASE = {"gateway": {"id": "gw"}, "upstream": {"broker": "h:1"}}


def _cfg(rules):
    return dict(BASE, rules=rules)


def test_good_rules_load():
    assert config.check(_cfg([Q, S]))["rules"] == [Q, S]


@pytest.mark.parametrize(
    "rule, field",
    [
        (dict(Q, need=4), "rules[0].need"),
        (dict(Q, need=1), "rules[0].need"),
        (dict(Q, nodes=["a"]), "rules[0].nodes"),
        (dict(Q, nodes=["a", "a"]), "rules[0].nodes"),
        (dict(Q, nodes=["a", "b/c"]), "rules[0].nodes"),
        (dict(Q, then=["reset"]), "rules[0].then"),
        (dict(Q, then=["clear"]), "rules[0].then"),
        (dict(Q, match={"k": "trip", "level": 3}), "rules[0].match.level"),
        (dict(Q, kind="vote"), "rules[0].kind"),
        (dict(S, then=["trip"]), "rules[0].then"),
        (dict(S, periods=0), "rules[0].periods"),
        ({k: v for k, v in Q.items() if k != "window_s"}, "rules[0].window_s"),
    ],
)
def test_bad_rules_named(rule, field):
    with pytest.raises(ConfigError) as e:
        config.check(_cfg([rule]))
    assert e.value.field == field


def test_duplicate_names_and_unknown_nodes(tmp_path):
    with pytest.raises(ConfigError) as e:
        config.check(_cfg([Q, dict(Q)]))
    assert e.value.field == "rules[1].name"
    keys = tmp_path / "k.json"
    keys.write_text(json.dumps({"a": "00" * 32, "b": "00" * 32}))
    (tmp_path / "gw.key").write_text("00" * 32)
    doc = dict(_cfg([Q]), site={"keys": str(keys)}, gateway={"id": "gw", "key_file": str(tmp_path / "gw.key")})
    with pytest.raises(ConfigError) as e:
        config.check(doc)
    assert e.value.field == "rules[0].nodes" and "c" in str(e.value)


def _event(dev, t_s, cause="inference", utc=1_700_000_000_000, boot=b"b" * 8):
    b = Batch()
    b.dev, b.q, b.boot, b.utc_ms, b.mono_ms, b.id = dev, 0, boot, utc, 0, b"i" * 8
    b.recs = [{"k": "trip", "t": int(t_s * 1e6), "causes": [[0x3004, cause]], "seq": 5}]
    b.raw = [cbor.dumps(r) for r in b.recs]
    b.first = b.last = 5
    return b


def _boot(dev, utc, boot=b"b" * 8):
    b = _event(dev, 0)
    b.boot = boot
    b.recs = [{"k": "boot", "t": 0, "boot": boot, "utc_ms": utc, "seq": 1}]
    return b


def test_quorum_fires_once_per_set_in_node_time():
    r = Rules([Q], now=0)
    u = 1_700_000_000_000
    r.observe(_boot("a", u), now=1)
    r.observe(_boot("b", u + 500_000), now=1)
    assert r.observe(_event("a", 100), now=2) == []
    # b's trip is 500 s later by the nodes' clocks, though it arrives now
    assert r.observe(_event("b", 10), now=2) == []
    assert r.observe(_event("b", 10, cause="temp high"), now=2) == []
    # c has no boot seen: its batch's clock places it near a's
    acts = r.observe(_event("c", 5, utc=u + 130_000), now=3)
    assert [(a, n) for _r, a, n, _t in acts] == [("event", ["a", "c"]), ("trip", ["a", "c"])]
    # the same set again: nothing new
    assert r.observe(_event("c", 6, utc=u + 131_000), now=3) == []


def test_silence_fires_once_and_again_after_being_heard():
    r = Rules([S], now=0)
    assert r.tick(now=29) == []
    acts = r.tick(now=30)
    assert sorted(n[0] for _r, _a, n, _t in acts) == ["a", "b"]
    assert r.tick(now=40) == []
    r.observe(_boot("a", 1), now=41)
    assert r.tick(now=60) == []
    assert [n for _r, _a, n, _t in r.tick(now=71)] == [["a"]]


def test_no_command_clears_a_trip():
    assert commands.COMMANDS == ("trip",)
    for cmd in ("reset", "clear", "permit"):
        with pytest.raises(ValueError):
            commands.make(cmd, "site", 0)
    body = commands.make("trip", "site", 5, key=b"k" * 32)
    assert cbor.loads(body[:-32])["cmd"] == "trip"
