"""Board data, backend choice, and the simulator's parts."""

import sys

import boards
from hal.backend import choose_board, detect_board, open_board
from hal.clock import TICKS_PERIOD, ticks_add, ticks_diff
from hal.errors import BoardError, ConfigError
from sim.clock import VirtualClock
from sim.gpio import SimGPIO, SimPin
from sim.scenario import parse_scenario
from tests.dual._util import IS_MP, raises, tmp_path


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


# fixture trees: tests/data/devicetree/<board>/proc/device-tree/{model,compatible}
DT = __file__[: __file__.rfind("tests/dual")] + "tests/data/devicetree/"


def test_device_tree_detection():
    # the real model and compatible strings of each board's device tree
    for name in ("rpi4", "rpi5", "jetson_nano", "jetson_orin_nano"):
        assert choose_board(None, DT + name) == name, name
    # the same SoC on another board is not that board
    assert detect_board(DT + "cm4") is None
    # no known compatible entry: the model decides
    assert choose_board(None, DT + "rpi5_model_only") == "rpi5"
    assert choose_board(None, tmp_path("none")) == "sim"
    assert choose_board("jetson_nano", DT + "rpi5") == "jetson_nano"


def test_compatible_entries_match_whole():
    assert boards.match_compatible("raspberrypi,4-model-b\x00brcm,bcm2711\x00") == "rpi4"
    # a prefix of an entry is not the entry
    assert boards.match_compatible("xraspberrypi,4-model-b-foo\x00brcm,bcm2711\x00") is None
    assert boards.match_model("Raspberry Pi 4 Model B Rev 1.5\x00") == "rpi4"
    assert boards.match_model("Raspberry Pi Compute Module 4 Rev 1.0") is None


def test_linux_boards_off_linux_say_what_is_missing():
    if not IS_MP:
        return  # on CPython the Linux backend loads; tests/test_linux_hal.py
    try:
        open_board("rpi4")
    except RuntimeError as e:
        assert "sim" in str(e) and "CPython" in str(e)
    else:
        raise AssertionError("rpi4 backend should not load on MicroPython")
    assert "hal.linux" not in sys.modules and "hal.linux.hardware" not in sys.modules


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
    assert choose_board(None, DT + "rpi5") == "rpi5"
    assert choose_board(None, tmp_path("none")) == "sim"
    assert choose_board("jetson_nano", DT + "rpi5") == "jetson_nano"
    assert [n for n in boards.KNOWN if "boards." + n in sys.modules] == []
    assert boards.get("sim").NAME == "sim"
    assert [n for n in boards.KNOWN if "boards." + n in sys.modules] == ["sim"]


def test_every_detection_key_names_a_known_board():
    names = [n for n, _ in boards.COMPATIBLE] + [n for n, _ in boards.PLATFORMS]
    assert sorted(names) == sorted(n for n in boards.KNOWN if boards.get(n).FAMILY != "sim")
    assert boards.match_platform("esp32") == "esp32_devkitc" and boards.match_platform("linux") is None
