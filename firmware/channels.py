"""Channels: what each sensor type measures, and the integer scale.

Kept apart from ``firmware.config`` so the checker can be unloaded after
start-up on small heaps; everything the running loop needs is here.
"""

# Sensor types, one row each: the driver module. It declares QUANTITIES,
# BUS ("i2c" or "uart") and from_spec(bus, sensor_config); the simulator's
# model is sim.chips.<type>. Only the drivers a config names are imported.
DRIVERS = {
    "bme280": "hal.drivers.bme280",
    "adxl345": "hal.drivers.adxl345",
    "pms5003": "hal.drivers.pms5003",
}


def driver(kind):
    """The driver module of a sensor type."""
    return __import__(DRIVERS[kind], None, None, ["x"])


class _Quantities:
    """``SENSOR_TYPES[kind]``: the quantities the type's driver declares;
    iterating gives the type names."""

    def __getitem__(self, kind):
        return driver(kind).QUANTITIES

    def __contains__(self, kind):
        return kind in DRIVERS

    def __iter__(self):
        return iter(DRIVERS)


SENSOR_TYPES = _Quantities()


def scale(v):
    """Real units to integer thousandths."""
    return int(round(v * 1000))


def channel_names(sensors):
    """``sensor.quantity`` for every channel of the config's ``sensors``
    list, in sensor then quantity order."""
    out = []
    for s in sensors:
        for q in SENSOR_TYPES[s["type"]]:
            out.append(s["name"] + "." + q)
    return out
