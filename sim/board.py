"""The simulated board: the sim backend of ``hal``.

    from sim.board import SimHardware
    hw = SimHardware(boards.get("sim"), sensors=cfg["sensors"], scenario=sc)
    i2c = hw.i2c("I2C0"); permit = hw.pin("RELAY_PERMIT")

Chip models are placed on the virtual buses where the configuration says the
sensors are. The relay's auxiliary contact (RELAY_READBACK) follows
RELAY_PERMIT after ``relay_delay_us``, unless a scenario welds it.
"""

import errno

from hal.errors import BoardError, ConfigError
from sim.clock import VirtualClock
from sim.gpio import SimGPIO, SimPin
from sim.i2c import SimI2C
from sim.player import ScenarioPlayer


def chip_model(spec):
    """The model of a configured sensor: ``sim.chips.<type>.from_spec``."""
    return __import__("sim.chips." + spec["type"], None, None, ["x"]).from_spec(spec)


class SimWDT:
    """Once fed, must be fed again within ``timeout`` ms of virtual time or
    the board is held in reset: every output low."""

    def __init__(self, hw, timeout):
        self.hw = hw
        self.timeout_us = timeout * 1000
        self.last_feed = hw.clock.now_us
        self.expired_at = None

    def feed(self):
        self.last_feed = self.hw.clock.now_us

    def check(self, now):
        if self.expired_at is None and now - self.last_feed > self.timeout_us:
            self.expired_at = now
            self.hw.gpio.hold_reset()


class SimUART:
    """A UART whose transmit line is looped back to its receive line."""

    def __init__(self):
        self._rx = bytearray()

    def readinto(self, buf):
        data = self.read(len(buf))
        if not data:
            return None
        buf[: len(data)] = data
        return len(data)

    def write(self, buf):
        self._rx.extend(buf)
        return len(buf)

    def any(self):
        return len(self._rx)

    def read(self, n=None):
        if not self._rx:
            return None
        if n is None or n >= len(self._rx):
            n = len(self._rx)
        out = bytes(self._rx[:n])
        self._rx = self._rx[n:]
        return out


class SimHardware:
    def __init__(self, board, sensors=(), scenario=None, speed=0.0, relay_delay_us=5000, clock=None):
        self.board = board
        self.clock = clock if clock is not None else VirtualClock(speed)
        self.gpio = SimGPIO(self.clock)
        self.buses = {}
        for role, spec in board.I2C.items():
            self.buses[role] = SimI2C(spec["id"])
        self.chips = {}
        self.uarts = {}
        for s in sensors:
            model = chip_model(s)
            if hasattr(model, "attach"):  # a UART sensor: it sends, the driver listens
                if s["bus"] not in board.UART:
                    raise BoardError("sensor %r is on UART %r, which the %s board has not got" % (s["name"], s["bus"], board.NAME))
                model.attach(self.uarts.setdefault(s["bus"], SimUART()))
                self.chips[s["name"]] = model
                continue
            bus = self.buses.get(s["bus"])
            if bus is None:
                raise BoardError(
                    "sensor %r is on bus %r, which the %s board has not got (buses: %s)" % (s["name"], s["bus"], board.NAME, ", ".join(sorted(self.buses)))
                )
            bus.attach(model)
            self.chips[s["name"]] = model
        self._pins = {}
        self.wdts = []
        self.relay_state = "ok"
        self.relay_delay_us = relay_delay_us
        self._relay_change_at = None
        # the world at rest: e-stop chain closed (reads 0), reset released
        self.set_input("ESTOP", 0)
        self.set_input("RESET", 0)
        self.set_input("RELAY_READBACK", 0)
        self.player = ScenarioPlayer(scenario, self) if scenario else None
        self.clock.add_hook(self._tick)
        self._tick(0)

    # --- the hal interface -------------------------------------------------
    def i2c(self, role):
        if role not in self.buses:
            raise BoardError("the %s board has no I2C bus %r (has: %s)" % (self.board.NAME, role, ", ".join(sorted(self.buses))))
        return self.buses[role]

    def pin(self, role):
        if role not in self.board.PINS:
            raise BoardError("the %s board has no pin role %r (has: %s)" % (self.board.NAME, role, ", ".join(sorted(self.board.PINS))))
        if role not in self._pins:
            spec = self.board.PINS[role]
            mode = SimPin.OUT if spec["mode"] == "out" else SimPin.IN
            pull = {"up": SimPin.PULL_UP, "down": SimPin.PULL_DOWN}.get(spec.get("pull"))
            self._pins[role] = self.gpio.pin(spec["line"], mode, pull, name=role)
        return self._pins[role]

    def wdt(self, timeout):
        w = SimWDT(self, timeout)
        self.wdts.append(w)
        return w

    def uart(self, role):
        if role not in self.board.UART:
            raise BoardError("the %s board has no UART %r" % (self.board.NAME, role))
        return self.uarts.setdefault(role, SimUART())

    # --- the scenario's verdict ------------------------------------------------
    def check_expect(self, expect, trips, period_us, src, write):
        """A scenario's ``expect`` block against the run's trips
        (sim.expect): writes the verdict, returns the failure lines."""
        from sim.expect import check_trips, report

        failures = check_trips(expect, trips, period_us)
        report(src, failures, write)
        return failures

    def publish_relay(self, path, hold_ms):
        """``edgefw run --bench FILE``: the relay's state in FILE for other
        processes (sim.bench)."""
        from sim.bench import Bench

        return Bench(path, self.line("RELAY_PERMIT"), hold_ms=hold_ms).attach(self)

    # --- the simulated world -----------------------------------------------
    def line(self, role):
        return self.board.PINS[role]["line"]

    def level(self, role):
        return self.gpio.levels[self.line(role)]

    def set_input(self, role, level):
        self.pin(role)
        self.gpio.set_input(self.line(role), level)

    def press(self, role, pressed):
        # The e-stop chain is normally closed: pressing opens it and the
        # pull-up takes the input high. The reset button pulls its input up.
        self.set_input(role, 1 if pressed else 0)

    def chip(self, sensor):
        if sensor not in self.chips:
            raise ConfigError("<scenario>", "sensor", "a sensor named in the config (%s)" % ", ".join(sorted(self.chips)), sensor)
        return self.chips[sensor]

    def set_channel(self, channel, value):
        sensor, q = channel.split(".", 1)
        self.chip(sensor).set_channel(q, value)

    def get_channel(self, channel):
        sensor, q = channel.split(".", 1)
        m = self.chip(sensor)
        if hasattr(m, "values"):
            return m.values[q]
        return m.static_g[m.QUANTITIES.index(q)]

    def inject_fault(self, sensor, kind, register=None):
        """Start a fault; returns the function that ends it."""
        m = self.chip(sensor)
        if kind == "eio":
            m.inject_fault(register)
            return m.clear_faults
        if kind == "nodev":
            m.absent = True

            def undo():
                m.absent = False

            return undo
        if kind == "stuck":
            m.stuck = True

            def unstick():
                m.stuck = False

            return unstick
        raise ValueError("unknown fault kind %r (errno %d)" % (kind, errno.EINVAL))

    def _tick(self, now):
        if self.player:
            self.player(now)
        for m in self.chips.values():
            m.tick(now)
        self._relay(now)
        for w in self.wdts:
            w.check(now)

    def _relay(self, now):
        if self.relay_state == "welded":
            want = 1
        elif self.relay_state == "open":
            want = 0
        else:
            want = self.level("RELAY_PERMIT")
        if want == self.level("RELAY_READBACK"):
            self._relay_change_at = None
            return
        if self._relay_change_at is None:
            self._relay_change_at = now + self.relay_delay_us
        if now >= self._relay_change_at:
            self.gpio.set_input(self.line("RELAY_READBACK"), want)
            self._relay_change_at = None
