"""Property tests of the interlock's state machine (hypothesis).

A reference model written separately from ``firmware.safety.interlock`` says, for
each step, which causes must be active; the properties hold over random
input sequences:

- the permit never goes 0 -> 1 without a reset edge in that step;
- the permit is never 1 while any cause is active;
- every cause, once active, trips (permit 0 in the same step);
- hysteresis and on-delay: a high cause is active exactly when the
  reference says so.
"""

import array

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.safety.interlock import Interlock

HIGH, LOW, HYST, DELAY = 60000, -20000, 2000, 3
STALE_US = 50000
STEP_US = 10000

step_inputs = st.fixed_dictionaries(
    {
        # most values near a limit or its hysteresis band, where bugs live
        "temp": st.one_of(
            st.integers(-30000, 70000),
            st.integers(HIGH - HYST - 500, HIGH + 500),
            st.integers(LOW - 500, LOW + HYST + 500),
            st.sampled_from([HIGH - HYST - 1, HIGH - HYST, HIGH - HYST + 1, HIGH, HIGH + 1, LOW - 1, LOW, LOW + HYST - 1, LOW + HYST, LOW + HYST + 1]),
        ),
        "status": st.sampled_from([1, 1, 1, 1, 0, 2]),
        "estop": st.sampled_from([0, 0, 0, 1]),
        "reset": st.booleans(),
        "deadline": st.sampled_from([0, 0, 0, 0, 1]),
        "ml": st.sampled_from([0, 0, 0, 0, 1]),
    }
)


class Reference:
    """An independent statement of what must be active."""

    def __init__(self):
        self.high = False
        self.low = False
        self.hcount = 0
        self.lcount = 0
        self.last_fresh = 0

    def step(self, t, inp):
        fresh = inp["status"] == 1
        if fresh:
            self.last_fresh = t
            v = inp["temp"]
            self.hcount = self.hcount + 1 if v > HIGH else 0
            self.lcount = self.lcount + 1 if v < LOW else 0
            if self.hcount >= DELAY:
                self.high = True
            elif v <= HIGH - HYST:
                self.high = False
            if self.lcount >= DELAY:
                self.low = True
            elif v >= LOW + HYST:
                self.low = False
        stale = t - self.last_fresh > STALE_US
        bus = inp["status"] == 2
        return self.high or self.low or stale or bus or inp["estop"] or inp["deadline"] or inp["ml"], self.high


def make():
    rules = {"env.temperature_c": {"high": HIGH / 1000, "low": LOW / 1000, "hysteresis": HYST / 1000, "on_delay": DELAY}}
    return Interlock(["env.temperature_c"], ["env"], rules, [0], [STALE_US // 1000], startup="manual")


@settings(max_examples=1500, deadline=None)
@given(st.lists(step_inputs, min_size=1, max_size=80))
def test_state_machine_properties(seq):
    il = make()
    ref = Reference()
    values = array.array("i", [0])
    status = bytearray(1)
    prev_permit = 0
    prev_reset = 0
    for k, inp in enumerate(seq):
        t = k * STEP_US
        values[0] = inp["temp"]
        status[0] = inp["status"]
        permit = il.step(t, values, status, inp["estop"], inp["reset"], 0, inp["deadline"], 0, inp["ml"])
        must_trip, high = ref.step(t, inp)
        edge = inp["reset"] and not prev_reset
        if prev_permit == 0 and permit == 1:
            assert edge, "re-energized without a reset edge at step %d" % k
        if must_trip:
            assert permit == 0, "permit on with a cause active at step %d" % k
        assert bool(il.chan_causes[0] & 1) == high, "high cause disagrees with hysteresis/on-delay at step %d" % k
        if not must_trip and edge and prev_permit == 0:
            assert permit == 1, "a reset with nothing active was refused at step %d" % k
        prev_permit, prev_reset = permit, inp["reset"]


@settings(max_examples=300, deadline=None)
@given(st.integers(60001, 70000), st.integers(0, 10))
def test_on_delay_exactly(v, extra):
    il = make()
    values = array.array("i", [v])
    status = bytearray([1])
    il.step(0, values, status, 0, 1, 0, 0, 0, 0)  # reset edge at start: permit on
    permits = []
    for k in range(1, DELAY + 1 + extra):
        permits.append(il.step(k * STEP_US, values, status, 0, 0, 0, 0, 0, 0))
    # the first DELAY-1 over-limit samples leave the permit on; the DELAY-th
    # sample (counting the one at the reset) trips and it stays off
    assert permits[: DELAY - 2] == [1] * (DELAY - 2)
    assert all(p == 0 for p in permits[DELAY - 2 :])
