"""HAL conformance for every I2C bus, UART and pin role of the board."""

import pytest


def test_the_target_runs_the_board_the_environment_names(info, runner):
    assert info["board"] == runner.runtime.board
    want = {"cpython": "cpython", "unix": "micropython", "wasm32": "micropython", "esp32": "micropython", "ssh": "cpython"}[runner.kind]
    assert info["impl"] == want
    if runner.kind == "wasm32" or info["platform"] == "esp32":
        assert info["maxsize"] == 2**31 - 1  # 31-bit small ints, as on an ESP32


@pytest.mark.needs("i2c")
def test_i2c_scan_finds_the_configured_sensors_with_their_chip_ids(probe, runner):
    got = probe("hal", "i2c_roles", board=runner.runtime.board)
    assert got, "the board has no I2C role"
    bus = got["I2C0"]
    assert 0x76 in bus["scan"] and 0x53 in bus["scan"], bus
    assert bus["chip_ids"] == {"env": 0x60, "vib": 0xE5}
    # nothing at an address: an OSError (ENODEV on the sim, EIO/ETIMEDOUT on a real bus)
    for role, r in got.items():
        assert r["absent"].startswith("OSError"), (role, r)


@pytest.mark.needs("gpio")
def test_every_pin_role_behaves_as_its_mode(probe, runner, info):
    # inputs read after 50 ms: what the wiring does to a line once its
    # pull is set (a closed chain holds ESTOP low against the pull-up)
    got = probe("hal", "pin_roles", board=runner.runtime.board, settle_ms=50)
    assert sorted(got) == info["roles"]["pins"]
    for role, r in got.items():
        if r["mode"] == "out":
            assert r["levels"] == [1, 0, 1, 0, 1], (role, r)
        else:
            assert r["level"] in (0, 1) and r["after_write"] == r["level"], (role, r)
            if role == "ESTOP":
                assert r["level"] == 0, "the e-stop chain is closed at rest: the input reads low"


@pytest.mark.needs("gpio", "readback")
def test_relay_readback_follows_the_permit(probe, runner):
    assert probe("hal", "readback", board=runner.runtime.board) == {"readback": [1, 0]}


@pytest.mark.needs("uart", "uart_loopback")
def test_uart_loopback(probe, runner):
    got = probe("hal", "uart_loopback", board=runner.runtime.board)
    assert got == {"written": 13, "read": "edgefw bench\n"}


@pytest.mark.needs("wdt", "virtual_time")
def test_a_starved_watchdog_drops_the_outputs(probe, runner):
    assert probe("hal", "watchdog", board=runner.runtime.board) == {"fed": 1, "starved": 0}
