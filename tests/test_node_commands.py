"""A node's side of its gateway's trip commands (firmware.uplink.command):
what trips the interlock, what is refused and why, and that an update's
messages on the same topic are left alone. The end-to-end paths (a real
gateway's rule tripping a CPython node, a command reaching the
MicroPython unix port's coop uplink) are in tests/test_gateway_trip.py
and tests/test_micropython_coop.py."""

import json

import pytest

from edgefw.gateway import commands
from firmware import cbor, clocks
from firmware.safety.interlock import Interlock
from firmware.uplink import command
from firmware.uplink.seal import derive, hmac_sha256

KEY = bytes(range(32))
OTHER = bytes(range(1, 33))


class Client:
    commands = None


class Up:
    def __init__(self, key=KEY):
        self.key = key
        self.client = Client()
        # the class defaults, as on firmware.uplink.uplink.Uplink
        self.commands_taken = 0
        self.commands_refused = 0
        self.last_command_refusal = None


def interlock(site_trip=True):
    return Interlock(["env.t"], ["env"], {}, [0], [100], site_trip=site_trip)


@pytest.fixture(autouse=True)
def fresh_ids():
    command._seen.clear()
    yield
    command._seen.clear()


def deliver(up, il, *msgs, others=True):
    up.client.commands = list(msgs)
    return command.take(up, il, others)


def now():
    return clocks.utc_ms()


def test_a_tagged_trip_raises_the_request_once():
    up, il = Up(), interlock()
    assert deliver(up, il, commands.make("trip", "r", now(), KEY)) == 1
    assert il.site_req == 1 and up.commands_taken == 1 and up.commands_refused == 0
    assert up.client.commands == []


@pytest.mark.parametrize(
    "msg,why",
    [
        # the gateway without the node's key, or anyone else on the broker
        (lambda: commands.make("trip", "r", now()), "untagged"),
        (lambda: commands.make("trip", "r", now(), OTHER), "bad tag"),
        # a tag that held, cut off
        (lambda: commands.make("trip", "r", now(), KEY)[:-1], "bad tag"),
        # a broker that held it while the node was away
        (lambda: commands.make("trip", "r", now() - command.MAX_AGE_MS - 5000, KEY), "stale"),
        (lambda: commands.make("trip", "r", now() + command.MAX_AGE_MS + 5000, KEY), "stale"),
    ],
)
def test_refused_commands_trip_nothing(msg, why):
    up, il = Up(), interlock()
    assert deliver(up, il, msg()) == 0
    assert il.site_req == 0 and up.commands_refused == 1 and up.last_command_refusal == why


def _forged(m, key=KEY):
    # what commands.make refuses to make, made by hand with a valid tag
    body = cbor.dumps(m)
    return body + hmac_sha256(derive(key)[1], command._DOMAIN + body)


def test_no_command_clears_even_with_a_valid_tag():
    up, il = Up(), interlock()
    il.step(0, [22000], bytearray([1]), 0, 0, 0, 0, 0, 0)
    il.site_req += 1
    assert il.step(10000, [22000], bytearray([1]), 0, 0, 0, 0, 0, 0) == 0
    for cmd in ("reset", "clear", "permit"):
        assert deliver(up, il, _forged({"cmd": cmd, "rule": "r", "id": b"12345678", "utc_ms": now()})) == 0
        assert up.last_command_refusal == "unknown"
    assert il.step(20000, [22000], bytearray([1]), 0, 0, 0, 0, 0, 0) == 0 and il.tripped


def test_a_replayed_command_is_refused():
    up, il = Up(), interlock()
    c = commands.make("trip", "r", now(), KEY)
    assert deliver(up, il, c, c) == 1
    assert il.site_req == 1 and up.last_command_refusal == "replay"


def test_site_trip_off_in_the_config():
    up, il = Up(), interlock(site_trip=False)
    assert deliver(up, il, commands.make("trip", "r", now(), KEY)) == 0
    assert il.site_req == 0 and up.last_command_refusal == "off"


def test_an_unkeyed_node_takes_tagged_and_untagged_commands():
    up, il = Up(key=None), interlock()
    assert deliver(up, il, commands.make("trip", "r", now()), commands.make("trip", "r", now(), OTHER)) == 2
    assert il.site_req == 2


def test_update_messages_stay_for_the_update_or_are_dropped_on_linux():
    offer = cbor.dumps({"op": "offer", "v": 1})
    status = cbor.dumps({"op": "status"})
    up, il = Up(), interlock()
    assert deliver(up, il, offer, commands.make("trip", "r", now(), KEY), status, b"\x00junk") == 1
    assert up.client.commands == [offer, status, b"\x00junk"]
    assert deliver(up, il, offer, commands.make("trip", "r", now(), KEY), status, others=False) == 1
    assert up.client.commands == [] and il.site_req == 2


def test_a_config_that_is_not_a_bool_is_named(tmp_path):
    from firmware.config import ConfigError, load_config

    p = tmp_path / "cfg.json"
    p.write_text(json.dumps({"interlock": {"site_trip": "yes"}}))
    with pytest.raises(ConfigError, match="interlock.site_trip"):
        load_config(str(p))
