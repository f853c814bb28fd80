"""Board definitions: data only.

Each module maps the roles edgefw uses to one board's real buses and pins,
and lists the features the board supports (tests filter on them)::

    import boards
    b = boards.get("rpi4")
    b.PINS["RELAY_PERMIT"]["line"]     # 17 (BCM numbering)
    "wdt" in b.FEATURES

Roles:
    I2C0, I2C1       I2C buses for sensors
    UART0            serial port on the header
    RELAY_PERMIT     output that energizes the load; low = tripped
    RELAY_READBACK   input reading the relay's auxiliary contact back
    ESTOP            input from a normally-closed e-stop chain; high = trip
    RESET            input from the manual reset button; high = pressed
    STATUS_LED       output

To add a board, copy the closest module, change the numbers, and add its name
to ``KNOWN`` below.
"""

from hal.errors import BoardError

# Detection order matters: the first module whose MATCH strings appear in
# the device tree wins.
KNOWN = ("rpi4", "rpi5", "jetson_nano", "jetson_orin_nano", "esp32_devkitc", "sim")

ROLES = ("I2C0", "I2C1", "UART0", "RELAY_PERMIT", "RELAY_READBACK", "ESTOP", "RESET", "STATUS_LED")


def get(name):
    """The board module called ``name``; ``BoardError`` lists the known ones."""
    if name not in KNOWN:
        raise BoardError("unknown board %r; known boards: %s (set EDGEFW_BOARD or --board to one of them)" % (name, ", ".join(KNOWN)))
    mod = __import__("boards." + name)
    return getattr(mod, name)


def match_compatible(compatible):
    """The board name whose MATCH strings occur in a device tree's
    ``compatible`` list, or None."""
    for name in KNOWN:
        b = get(name)
        for s in b.MATCH:
            if s in compatible:
                return name
    return None
