"""Bench helpers, the ones a Renode or Robot Framework user looks for.

    m = wait_for_line(console, r"trips (\\d+)", timeout=30)
    assert_level(pins, "RELAY_PERMIT", 0, at_us=8_010_000)
    assert_transitions(pins, "RELAY_PERMIT", [1, 0], within_us=(0, 8_010_000))
    inject = Injector.for_target(target); inject.value("env.temperature_c", 70.0, at_s=1.0)
    wait_level(target.get_driver("DigitalOutputProtocol", name="RELAY_PERMIT"), 1, timeout=10)

Every wait has a timeout and fails the test (an ``AssertionError``) when
it runs out; the session's teardown then releases the target or place.

``pins`` is a list of ``[t_us, role, level]`` transitions, as the sim's
GPIO records them (``sim.gpio.SimGPIO.transitions``) or a logic
analyser on a bench does.
"""

import pexpect


def wait_for_line(console, pattern, timeout):
    """The match of the first console line matching ``pattern``, within
    ``timeout`` s. ``console``: a runner's console, or any labgrid
    console driver (``SerialDriver`` on a real board)."""
    try:
        _i, _before, match, _after = console.expect(pattern, timeout=timeout)
    except pexpect.TIMEOUT:
        raise AssertionError("no console line matching %r within %.1f s" % (pattern, timeout))
    return match


def wait_level(line, level, timeout, poll_s=0.1):
    """Seconds until a labgrid digital line (``get()``: a fixture's
    input watching the relay) reads ``level``; an ``AssertionError``
    after ``timeout`` s."""
    import time

    t0 = time.monotonic()
    while True:
        got = bool(line.get())
        if got == bool(level):
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s stayed %s for %.1f s, expected %s" % (getattr(line, "name", "the line"), got, timeout, bool(level)))
        time.sleep(poll_s)


def _levels(pins, role, start, end):
    return [v for t, n, v in pins if n == role and start <= t <= end]


def level_at(pins, role, at_us, initial=0):
    """The level of ``role`` at ``at_us`` from its transitions."""
    v = initial
    for t, n, lv in pins:
        if n == role and t <= at_us:
            v = lv
    return v


def assert_level(pins, role, level, at_us, initial=0):
    got = level_at(pins, role, at_us, initial)
    assert got == level, "%s was %d at t=%d us, expected %d; transitions: %s" % (role, got, at_us, level, [p for p in pins if p[1] == role])


def assert_transitions(pins, role, levels, within_us):
    """``role`` changed exactly through ``levels`` in the window
    ``(start_us, end_us)``, both ends included."""
    start, end = within_us
    got = _levels(pins, role, start, end)
    assert got == list(levels), "%s went %s in [%d, %d] us, expected %s" % (role, got, start, end, list(levels))


class Injector:
    """Injects sensor values and faults. On virtual targets they become
    scenario events (the sim applies them at the stated virtual time; see
    docs/scenarios.md); on a real bench a fixture does it: a labgrid
    ``DigitalOutputProtocol`` driver per named line (for example the
    e-stop chain through a relay) given in the environment file."""

    def __init__(self, target=None):
        self.target = target
        self.events = []

    @classmethod
    def for_target(cls, target):
        runtime = target.get_resource("EdgefwRuntime", wait_avail=False)
        if runtime.board == "sim":
            return SimInjector(target)
        return FixtureInjector(target)


class SimInjector(Injector):
    def value(self, channel, value, at_s):
        self.events.append({"at_s": at_s, "set": {channel: value}})

    def press(self, role, at_s, for_s):
        self.events.append({"at_s": at_s, "press": role, "for_s": for_s})

    def fault(self, sensor, kind, at_s, for_s=None, register=None):
        f = {"sensor": sensor, "kind": kind}
        if register is not None:
            f["register"] = register
        e = {"at_s": at_s, "fault": f}
        if for_s is not None:
            e["for_s"] = for_s
        self.events.append(e)

    def scenario(self, duration_s, expect=None):
        doc = {"duration_s": duration_s, "events": sorted(self.events, key=lambda e: e["at_s"])}
        if expect:
            doc["expect"] = {"trips": expect}
        return doc


class FixtureInjector(Injector):
    """A real bench: ``press("ESTOP")`` drives the output driver named
    ``ESTOP`` in the environment (a relay opening the e-stop chain)."""

    def press(self, role, at_s=0, for_s=0.1):
        import time

        out = self.target.get_driver("DigitalOutputProtocol", name=role)
        time.sleep(at_s)
        out.set(True)
        time.sleep(for_s)
        out.set(False)

    def value(self, channel, value, at_s=0):
        raise NotImplementedError("a real sensor's value is set by the bench's stimulus (a climate chamber, a shaker), not by software")
