"""Board data, backend choice, and the simulator's parts."""

import boards
from hal.backend import choose_board, open_board
from hal.clock import TICKS_PERIOD, ticks_add, ticks_diff
from hal.errors import BoardError, ConfigError
from sim.clock import VirtualClock
from sim.gpio import SimGPIO, SimPin
from sim.scenario import parse_scenario
from tests.dual._util import raises, tmp_path


def test_every_board_maps_the_roles():
    for name in boards.KNOWN:
        b = boards.get(name)
        assert b.NAME == name
        assert "I2C0" in b.I2C
        for role in ("RELAY_PERMIT", "ESTOP", "RESET", "STATUS_LED"):
            assert role in b.PINS, (name, role)
        assert b.PINS["RELAY_PERMIT"]["mode"] == "out"
        # the e-stop chain is normally closed: a pull-up makes a break read high
        assert b.PINS["ESTOP"].get("pull") == "up", name
        assert "i2c" in b.FEATURES and "gpio" in b.FEATURES


def test_unknown_board_lists_known_ones():
    msg = str(raises(BoardError, boards.get, "rpi3"))
    for name in boards.KNOWN:
        assert name in msg


def test_device_tree_detection():
    p = tmp_path("compatible")
    with open(p, "wb") as f:
        f.write(b"raspberrypi,5-model-b\x00brcm,bcm2712\x00")
    assert choose_board(None, p) == "rpi5"
    with open(p, "wb") as f:
        f.write(b"nvidia,p3768-0000+p3767-0005\x00nvidia,tegra234\x00")
    assert choose_board(None, p) == "jetson_orin_nano"
    assert choose_board(None, tmp_path("none")) == "sim"
    assert choose_board("jetson_nano", p) == "jetson_nano"


def test_linux_boards_say_what_is_missing():
    try:
        open_board("rpi4")
    except RuntimeError as e:
        assert "sim" in str(e)
    else:
        raise AssertionError("rpi4 backend should not load here")


def test_ticks_wrap_like_micropython():
    t = TICKS_PERIOD - 5
    assert ticks_diff(ticks_add(t, 10), t) == 10
    assert ticks_add(t, 10) == 5
    assert ticks_diff(t, ticks_add(t, 10)) == -10


def test_virtual_clock_hooks_and_stall():
    c = VirtualClock()
    seen = []
    c.add_hook(seen.append)
    c.advance(100)
    c.stall(50)
    assert c.ticks_us() == 150
    assert seen == [100, 150]


def test_gpio_records_transitions_in_virtual_time():
    c = VirtualClock()
    g = SimGPIO(c)
    p = g.pin(0, SimPin.OUT, name="RELAY_PERMIT")
    p.value(1)
    p.value(1)
    c.advance(1000)
    p.value(0)
    assert g.transitions("RELAY_PERMIT") == [(0, "RELAY_PERMIT", 1), (1000, "RELAY_PERMIT", 0)]
    g.hold_reset()
    p.value(1)
    assert p.value() == 0


def test_scenario_errors_name_event_and_field():
    e = raises(ConfigError, parse_scenario, {"events": [{"at_s": 1, "set": {"env.temperature_c": 1}}, {"at_s": 2, "press": "START"}]}, "s.json")
    assert "s.json" in str(e) and "events[1].press" in str(e)
    e = raises(ConfigError, parse_scenario, {"events": [{"at_s": 1, "fault": {"sensor": "env", "kind": "melt"}}]}, "s.json")
    assert "events[0].fault" in str(e)
    e = raises(ConfigError, parse_scenario, {"events": [{"at_s": 1, "set": {"x": 1}, "press": "RESET"}]}, "s.json")
    assert "exactly one" in str(e)
    e = raises(ConfigError, parse_scenario, {"evnets": []}, "s.json")
    assert "evnets" in str(e)


def test_scenario_events_sorted_and_in_microseconds():
    sc = parse_scenario({"events": [{"at_s": 2, "press": "RESET"}, {"at_s": 0.5, "fault": {"sensor": "env", "kind": "eio", "register": "0xF7"}}]})
    assert [e["at_us"] for e in sc["events"]] == [500000, 2000000]
    assert sc["events"][0]["arg"]["register"] == 0xF7
    assert sc["events"][1]["for_us"] == 100000


def test_detection_imports_no_board_module():
    # the board found is imported only when it is used: the others never
    import sys

    for name in boards.KNOWN:
        sys.modules.pop("boards." + name, None)
    p = tmp_path("compatible")
    with open(p, "wb") as f:
        f.write(b"raspberrypi,5-model-b\x00brcm,bcm2712\x00")
    assert choose_board(None, p) == "rpi5"
    assert choose_board(None, tmp_path("none")) == "sim"
    assert choose_board("jetson_nano", p) == "jetson_nano"
    assert [n for n in boards.KNOWN if "boards." + n in sys.modules] == []
    assert boards.get("sim").NAME == "sim"
    assert [n for n in boards.KNOWN if "boards." + n in sys.modules] == ["sim"]


def test_every_detection_key_names_a_known_board():
    names = [n for n, _ in boards.COMPATIBLE] + [n for n, _ in boards.PLATFORMS]
    assert sorted(names) == sorted(n for n in boards.KNOWN if boards.get(n).FAMILY != "sim")
    assert boards.match_platform("esp32") == "esp32_devkitc" and boards.match_platform("linux") is None
