"""The whole loop on the sim board, in virtual time."""

import asyncio

from firmware.app import build
from tests.dual._util import RESET_AT_0_1, firmware, raises, run, tmp_path

PERIOD_US = 10000


def _permit_edges(fw):
    return [(t, v) for t, _n, v in fw.hw.gpio.transitions("RELAY_PERMIT")]


def test_default_scenario_trips_within_one_cycle_and_stays_low_until_reset():
    fw, sc = build("sim", journal=tmp_path("j.bin"))
    run(fw, cycles=2000)
    trips = fw.summary()["trips"]
    assert len(trips) == 1
    # the scenario steps the temperature to 75 degC at t = 8.0 s
    assert 0 <= trips[0]["t_us"] - 8000000 <= PERIOD_US
    assert trips[0]["cause"] == "env.temperature_c:high"
    edges = _permit_edges(fw)
    # energized by the reset at 0.2 s, off at the trip, on again only after
    # the reset at 15 s (the one at 10 s is refused: still over the limit)
    assert [v for _t, v in edges] == [1, 0, 1, 0]
    assert 200000 <= edges[0][0] <= 200000 + PERIOD_US
    assert edges[1][0] == trips[0]["t_us"]
    assert 15000000 <= edges[2][0] <= 15000000 + PERIOD_US
    assert fw.interlock.refused == 1
    kinds = [e["k"] for e in fw.events]
    assert kinds == ["reset", "trip", "reset_refused", "reset"]


def test_bus_error_trips_within_one_period():
    fw = firmware([RESET_AT_0_1, {"at_s": 1.0, "fault": {"sensor": "env", "kind": "eio", "register": "0xF7"}, "for_s": 0.02}])
    run(fw, until_us=2000000)
    t = fw.trips
    assert len(t) == 1 and t[0]["cause"] == "env:bus"
    assert 0 <= t[0]["t_us"] - 1000000 <= PERIOD_US
    assert fw.permit == 0 and fw.interlock.tripped


def test_missing_device_trips():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.5, "fault": {"sensor": "vib", "kind": "nodev"}}])
    run(fw, until_us=1000000)
    assert fw.trips[0]["cause"].startswith("vib:bus")
    assert 0 <= fw.trips[0]["t_us"] - 500000 <= PERIOD_US


def test_stuck_sensor_trips_as_stale():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.5, "fault": {"sensor": "vib", "kind": "stuck"}}])
    run(fw, until_us=1000000)
    assert fw.trips[0]["cause"] == "vib:stale"
    # stale_ms of vib is 50 in the default config
    assert 0 <= fw.trips[0]["t_us"] - (500000 + 50000) <= PERIOD_US


def test_estop_press_trips_in_the_next_cycle():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.505, "press": "ESTOP", "for_s": 0.2}])
    run(fw, until_us=1000000)
    assert fw.trips[0]["cause"] == "estop"
    assert 0 <= fw.trips[0]["t_us"] - 505000 <= PERIOD_US


def test_broken_estop_wire_keeps_it_tripped():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.3, "input": {"role": "ESTOP", "level": 1}}, {"at_s": 0.6, "press": "RESET"}])
    run(fw, until_us=1000000)
    assert fw.interlock.refused == 1 and fw.permit == 0


def test_overruns_past_the_limit_trip():
    # a CPU overloaded for 60 ms: every cycle takes 12 ms of a 10 ms period
    ev = [RESET_AT_0_1, {"at_s": 0.5, "load_ms": 12, "for_s": 0.06}]
    fw = firmware(ev)
    run(fw, until_us=1000000)
    assert fw.overruns >= 4
    assert fw.trips and fw.trips[0]["cause"] == "deadline"


def test_single_overrun_is_counted_not_tripped():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.5, "stall_ms": 25}])
    run(fw, until_us=1000000)
    assert fw.overruns == 1
    assert fw.trips == []


def test_long_stall_trips():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.5, "stall_ms": 300}])
    run(fw, until_us=1500000)
    assert [t["cause"] for t in fw.trips] == ["stall"]


def test_welded_relay_trips_on_readback():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.4, "relay": "welded"}, {"at_s": 0.5, "press": "ESTOP"}])
    run(fw, until_us=1000000)
    assert fw.trips[0]["cause"] == "estop"
    causes = [c for _c, c in fw.interlock.active_causes()]
    assert "readback" in causes  # the contact stayed closed after the trip


def test_watchdog_is_fed_while_on_time():
    fw = firmware([RESET_AT_0_1])
    run(fw, until_us=2000000)
    assert fw.wdt.expired_at is None


def test_exception_in_the_loop_leaves_outputs_safe():
    fw = firmware([RESET_AT_0_1])
    run(fw, until_us=500000)

    class Broken:
        def fetch(self):
            raise ZeroDivisionError("driver bug")

    fw.drivers[0] = Broken()

    async def go():
        await fw.run(cycles=fw.cycles + 10)

    fw.interlock.tripped = 0
    fw.permit_pin.value(1)
    raises(ZeroDivisionError, asyncio.run, go())
    assert fw.hw.level("RELAY_PERMIT") == 0


def test_journal_has_windows_and_events():
    fw = firmware([RESET_AT_0_1, {"at_s": 0.5, "set": {"env.temperature_c": 70.0}}])
    run(fw, until_us=3000000)
    fw.journal.close()
    from firmware.store.journal import Journal

    j = Journal(fw.journal.path)
    recs = [r for _s, r in j.records()]
    kinds = [r["k"] for r in recs]
    assert kinds.count("win") == 3
    assert "trip" in kinds and "reset" in kinds
    seqs = [r["seq"] for r in recs]
    assert seqs == list(range(1, len(recs) + 1))
    win = [r for r in recs if r["k"] == "win"][1]
    n, lo, mean, hi = win["ch"]["env.temperature_c"]
    assert n == 100 and lo == mean == hi == 70000
    trip = [r for r in recs if r["k"] == "trip"][0]
    assert trip["causes"] == [[0x1000, "env.temperature_c:high"]]
    j.close()


def _three_thermometers():
    sensors = [
        {"name": "t1", "type": "bme280", "bus": "I2C0", "address": 0x76},
        {"name": "t2", "type": "bme280", "bus": "I2C0", "address": 0x77},
        {"name": "t3", "type": "bme280", "bus": "I2C1", "address": 0x76},
    ]
    rule = {"high": 60.0, "hysteresis": 2.0}
    return {
        "sensors": sensors,
        "interlock": {
            "channels": {"t1.temperature_c": rule, "t2.temperature_c": rule, "t3.temperature_c": rule},
            "vote": [{"name": "oven", "channels": ["t1.temperature_c", "t2.temperature_c", "t3.temperature_c"], "need": 2}],
            "readback": {"enabled": False, "grace_ms": 50},
        },
    }


def test_two_out_of_three_voting():
    fw = firmware(
        [
            RESET_AT_0_1,
            {"at_s": 0.3, "set": {"t1.temperature_c": 75.0}},  # one vote: no trip
            {"at_s": 0.6, "set": {"t3.temperature_c": 75.0}},  # two votes: trip
        ],
        overrides=_three_thermometers(),
    )
    run(fw, until_us=1000000)
    assert [t["cause"] for t in fw.trips] == ["vote:oven+t1.temperature_c:high+t3.temperature_c:high"]
    assert 0 <= fw.trips[0]["t_us"] - 600000 <= PERIOD_US
    assert fw.trips[0]["codes"][0] == 0x4000


def test_voting_degrades_to_one_out_of_two_with_a_dead_sensor():
    fw = firmware(
        [
            RESET_AT_0_1,
            {"at_s": 0.3, "fault": {"sensor": "t2", "kind": "nodev"}},  # votes trip, alone: no trip
            {"at_s": 0.6, "set": {"t1.temperature_c": 75.0}},  # second vote: trip
        ],
        overrides=_three_thermometers(),
    )
    run(fw, until_us=1000000)
    assert len(fw.trips) == 1
    assert 0 <= fw.trips[0]["t_us"] - 600000 <= PERIOD_US
    assert "t2:bus" in fw.trips[0]["cause"] and "vote:oven" in fw.trips[0]["cause"]


def test_reset_allowed_with_one_vote_left():
    fw = firmware(
        [
            RESET_AT_0_1,
            {"at_s": 0.3, "set": {"t1.temperature_c": 75.0, "t2.temperature_c": 75.0}},
            {"at_s": 0.5, "set": {"t2.temperature_c": 20.0}},
            {"at_s": 0.7, "press": "RESET"},
        ],
        overrides=_three_thermometers(),
    )
    run(fw, until_us=1000000)
    assert len(fw.trips) == 1 and fw.interlock.resets == 2
    # on at the first reset, off at the trip, on at the reset with t1 still
    # hot, off when run() ends
    edges = _permit_edges(fw)
    assert [v for _t, v in edges] == [1, 0, 1, 0]
    assert 700000 <= edges[2][0] <= 700000 + PERIOD_US
