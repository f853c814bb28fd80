"""The interlock's decision, rule by rule, as a pure function."""

import array

from firmware.safety.interlock import Interlock

T = "env.temperature_c"
P = "env.pressure_hpa"


def make(rules=None, startup="auto", stale_ms=100, readback=False, estop=True):
    chans = [T, P]
    rules = rules if rules is not None else {T: {"high": 60.0, "low": -20.0, "hysteresis": 2.0, "on_delay": 1}}
    return Interlock(chans, ["env"], rules, [0, 0], [stale_ms], estop=estop, readback=readback, readback_grace_ms=50, startup=startup)


class Bench:
    """Drives one Interlock through steps of 10 ms."""

    def __init__(self, il):
        self.il = il
        self.now = 0
        self.values = array.array("i", [22000, 1013250])
        self.status = bytearray([1])
        self.estop = 0
        self.reset = 0
        self.readback = 0
        self.deadline = 0
        self.stall = 0
        self.ml = 0

    def step(self, temp_c=None, n=1):
        p = None
        for _ in range(n):
            if temp_c is not None:
                self.values[0] = int(temp_c * 1000)
            p = self.il.step(self.now, self.values, self.status, self.estop, self.reset, self.readback, self.deadline, self.stall, self.ml)
            self.now += 10000
        return p

    def press_reset(self):
        self.reset = 1
        p = self.step()
        self.reset = 0
        self.step()
        return p


def test_manual_startup_needs_a_reset():
    b = Bench(make(startup="manual"))
    assert b.step(n=5) == 0
    assert b.press_reset() == 1
    assert b.step() == 1


def test_auto_startup_grants_permit_when_clear():
    b = Bench(make())
    assert b.step() == 1


def test_high_limit_trips_and_latches_with_hysteresis():
    b = Bench(make())
    assert b.step(59.9) == 1
    assert b.step(60.001) == 0
    ev = b.il.pop_events()
    assert ev[0][0] == "trip" and ev[0][2] == [(0x1000, "env.temperature_c:high")]
    # inside the hysteresis band the cause stays active: reset refused
    b.step(58.5)
    assert b.press_reset() == 0
    assert b.il.pop_events()[0][0] == "reset_refused"
    # below high - hysteresis the cause clears, but the trip stays latched
    assert b.step(57.9, n=3) == 0
    assert b.press_reset() == 1
    assert [e[0] for e in b.il.pop_events()] == ["reset"]


def test_low_limit_mirrors_high():
    b = Bench(make())
    assert b.step(-20.5) == 0
    b.step(-19.0)
    assert b.press_reset() == 0  # -19 is within 2.0 of the low limit
    b.step(-17.9)
    assert b.press_reset() == 1


def test_on_delay_counts_consecutive_samples():
    b = Bench(make({T: {"high": 60.0, "on_delay": 3}}))
    assert b.step(61, n=2) == 1
    assert b.step(59) == 1  # the count restarts
    assert b.step(61, n=2) == 1
    assert b.step(61) == 0


def test_rate_of_change():
    b = Bench(make({T: {"rate_per_s": 5.0}}))
    b.step(20.0)
    assert b.step(20.04) == 1  # 4 degC/s
    assert b.step(20.10) == 0  # 6 degC/s


def test_implausible_value_is_a_sensor_fault():
    b = Bench(make({T: {"plausible": [-40.0, 85.0]}}))
    assert b.step(84.9) == 1
    assert b.step(150.0) == 0
    assert (0x1003, "env.temperature_c:implausible") in b.il.pop_events()[0][2]


def test_bus_error_trips_at_once():
    b = Bench(make())
    b.step(n=2)
    b.status[0] = 2
    assert b.step() == 0
    assert b.il.pop_events()[0][2] == [(0x2000, "env:bus")]


def test_stale_sensor_trips_after_stale_time():
    b = Bench(make(stale_ms=100))
    b.step()
    b.status[0] = 0  # no new sample
    assert b.step(n=10) == 1  # 100 ms since the last fresh sample is allowed
    assert b.step() == 0
    assert b.il.pop_events()[0][2] == [(0x2001, "env:stale")]


def test_no_rule_advances_on_stale_data():
    b = Bench(make({T: {"high": 60.0, "on_delay": 2}}, stale_ms=1000))
    b.step(61)
    b.status[0] = 0
    assert b.step(61, n=5) == 1  # the same old sample is not counted again


def test_estop_open_chain_trips_and_blocks_reset():
    b = Bench(make())
    b.estop = 1
    assert b.step() == 0
    assert b.press_reset() == 0
    b.estop = 0
    assert b.press_reset() == 1


def test_estop_can_be_disabled():
    b = Bench(make(estop=False))
    b.estop = 1
    assert b.step() == 1


def test_reset_is_an_edge_not_a_level():
    b = Bench(make())
    b.step(70)
    b.reset = 1  # held down through the fault
    b.step(n=3)
    b.step(20, n=3)
    assert b.step() == 0  # still held: no new edge
    b.reset = 0
    b.step()
    assert b.press_reset() == 1


def test_deadline_stall_and_inference_are_causes():
    for attr, name in (("deadline", "deadline"), ("stall", "stall"), ("ml", "inference")):
        b = Bench(make())
        b.step()
        setattr(b, attr, 1)
        assert b.step() == 0, attr
        assert b.il.pop_events()[0][2] == [(0x3000 + ("estop", "deadline", "stall", "readback", "inference").index(name), name)]


def test_inference_cannot_clear_a_trip():
    b = Bench(make())
    b.step(70)
    b.ml = 0
    assert b.step(20, n=10) == 0  # only a reset edge re-energizes


def test_site_request_trips_once_and_only_a_reset_clears_it():
    b = Bench(make())
    assert b.step() == 1
    b.il.site_req += 1
    assert b.step() == 0
    assert b.il.pop_events()[0][2] == [(0x3005, "site")]
    # the cause lasted one step: the trip holds by its latch alone
    assert b.step(n=5) == 0 and b.il.global_causes == 0
    # a second request while tripped is a new cause, never a reset
    b.il.site_req += 1
    assert b.step() == 0
    assert [e[0] for e in b.il.pop_events()] == ["cause"]
    assert b.press_reset() == 1
    # a request raised twice before a step is one trip, not a lost one
    b.il.site_req += 2
    assert b.step() == 0 and b.il.trips == 2


def test_readback_mismatch_after_grace_trips():
    b = Bench(make(readback=True))
    b.readback = 0  # contact never closes although commanded on
    assert b.step(n=5) == 1  # 40 ms < 50 ms grace
    assert b.step(n=2) == 0
    assert (0x3003, "readback") in b.il.pop_events()[0][2]


def test_readback_following_command_is_fine():
    b = Bench(make(readback=True))
    b.readback = 1
    assert b.step(n=20) == 1


def test_new_cause_while_tripped_is_recorded():
    b = Bench(make())
    b.step(70)
    b.estop = 1
    b.step()
    ev = b.il.pop_events()
    assert [e[0] for e in ev] == ["trip", "cause"]
    assert (0x3000, "estop") in ev[1][2]


def test_event_ring_overflow_is_counted_not_fatal():
    b = Bench(make())
    b.step(70)
    for _ in range(40):
        b.press_reset()
    assert b.il.ev_dropped > 0
    assert len(b.il.pop_events()) == 16
