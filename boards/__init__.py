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
to ``KNOWN`` below, and its detection key to ``COMPATIBLE`` or ``PLATFORMS``.
"""

from hal.errors import BoardError

KNOWN = ("rpi4", "rpi5", "jetson_nano", "jetson_orin_nano", "esp32_devkitc", "sim")

ROLES = ("I2C0", "I2C1", "UART0", "RELAY_PERMIT", "RELAY_READBACK", "ESTOP", "RESET", "STATUS_LED")

# Detection reads only these tables, so it imports no board module; the
# board found is imported when it is used (``get``). In order: the first
# board whose strings appear in the device tree's ``compatible`` list wins.
# Whole entries of the NUL-separated list, from the boards' device trees
# (the SoC entries, brcm,bcm2711 and so on, are shared by other boards).
COMPATIBLE = (
    ("rpi4", ("raspberrypi,4-model-b",)),
    ("rpi5", ("raspberrypi,5-model-b",)),
    ("jetson_nano", ("nvidia,p3450-0000", "nvidia,jetson-nano")),
    ("jetson_orin_nano", ("nvidia,p3768-0000+p3767-0003", "nvidia,p3768-0000+p3767-0004", "nvidia,p3768-0000+p3767-0005")),
)
# When ``compatible`` names no known board: the start of ``model``
MODELS = (
    ("rpi4", "Raspberry Pi 4 Model B"),
    ("rpi5", "Raspberry Pi 5"),
    ("jetson_nano", "NVIDIA Jetson Nano Developer Kit"),
    ("jetson_orin_nano", "NVIDIA Jetson Orin Nano"),
)
# MicroPython boards by ``sys.platform``
PLATFORMS = (("esp32_devkitc", "esp32"),)


def get(name):
    """The board module called ``name``; ``BoardError`` lists the known ones."""
    if name not in KNOWN:
        raise BoardError("unknown board %r; known boards: %s (set EDGEFW_BOARD or --board to one of them)" % (name, ", ".join(KNOWN)))
    mod = __import__("boards." + name)
    return getattr(mod, name)


def check(name):
    """``name`` if it is a known board (without importing it), else
    ``BoardError`` as ``get``."""
    if name not in KNOWN:
        get(name)
    return name


def match_compatible(compatible):
    """The board name one of whose strings is an entry of a device tree's
    ``compatible`` list (NUL-separated), or None."""
    entries = compatible.split("\x00")
    for name, strings in COMPATIBLE:
        for s in strings:
            if s in entries:
                return name
    return None


def match_model(model):
    """The board whose model string ``model`` starts with, or None."""
    model = model.strip("\x00 \n")
    for name, prefix in MODELS:
        if model.startswith(prefix):
            return name
    return None


def match_platform(platform):
    """The MicroPython board whose ``sys.platform`` this is, or None."""
    for name, plat in PLATFORMS:
        if plat == platform:
            return name
    return None
