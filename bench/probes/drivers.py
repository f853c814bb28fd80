"""The sensor drivers against the board's chips (the register models on
sim; the real chips on a bench)."""

from bench.probes._hw import open_hw


def _driver(hw, spec):
    # as the loop builds it, from the driver's own declaration
    from firmware.loop import build_driver

    return build_driver(hw, spec)


def _read(hw, d, n):
    vals = [0] * n
    hw.clock.sleep_ms(20)
    assert d.fetch()
    d.read_into(vals, 0)
    return vals


def set_and_read(board, points):
    """For each ``[channel, value]``: set it on the model (``sim``'s
    ``set_channel``), read it back through the driver, in the channel's
    thousandths."""
    from firmware.channels import SENSOR_TYPES

    hw, cfg = open_hw(board)
    specs = dict((s["name"], s) for s in cfg["sensors"])
    drivers = dict((n, _driver(hw, s)) for n, s in specs.items())
    out = []
    for channel, value in points:
        sensor, q = channel.split(".", 1)
        hw.set_channel(channel, value)
        d = drivers[sensor]
        names = SENSOR_TYPES[specs[sensor]["type"]]
        vals = _read(hw, d, len(names))
        out.append([channel, value, vals[names.index(q)]])
    return out


def faults(board, sensor, register):
    """What the driver raises with the chip absent, and with an I/O error
    on one register; and that it reads again once the fault ends."""
    from hal.errors import SensorError

    hw, cfg = open_hw(board)
    spec = [s for s in cfg["sensors"] if s["name"] == sensor][0]
    out = {}
    undo = hw.inject_fault(sensor, "nodev")
    try:
        _driver(hw, spec)
        out["absent"] = "no error"
    except OSError as e:
        out["absent"] = "%s%s" % (type(e).__name__, " (SensorError)" if isinstance(e, SensorError) else "")
    undo()
    d = _driver(hw, spec)
    undo = hw.inject_fault(sensor, "eio", register)
    try:
        hw.clock.sleep_ms(20)
        d.fetch()
        out["eio"] = "no error"
    except OSError as e:
        out["eio"] = type(e).__name__
    undo()
    hw.clock.sleep_ms(20)
    out["after"] = bool(d.fetch())
    return out
