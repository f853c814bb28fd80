# edgefw boot.py: runs first after every reset. The permit output goes low
# (load off) before anything else can fail; main.py starts the firmware.
try:
    from machine import Pin

    Pin(PERMIT_LINE, Pin.OUT, value=0)  # noqa: F821 (set by edgefw mpy-build)
except ImportError:
    pass  # no machine.Pin here (the virtual ESP32): its sim board starts low
