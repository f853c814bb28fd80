"""edgefw's labgrid classes, registered with labgrid's target factory on
import. An environment file names them with ``imports: [bench.lab]``::

    targets:
      main:
        resources:
          EdgefwRuntime: {runtime: unix, board: sim}
        drivers:
          EdgefwRunDriver: {}
          EdgefwStrategy: {}

``EdgefwRuntime`` is where edgefw code runs (CPython, the MicroPython unix
port, the 32-bit wasm port, a board on a serial port, a Linux board over
SSH); ``EdgefwRunDriver`` runs a probe from
``bench/probes`` there and returns its JSON result, and starts the
firmware as a console process; ``EdgefwStrategy`` brings the target to
``ready``. ``VirtualESP32Driver`` and ``QEMUPiDriver`` start the virtual
ESP32 and boot the emulated Pi; ``GuestLineDriver`` is the emulated Pi's
fixture. A new kind of target is one more runtime in ``runner.py``; the
tests do not change.
"""

from bench.lab.driver import EdgefwRunDriver
from bench.lab.fixture import GuestLineDriver
from bench.lab.qemu import QEMUPiDriver
from bench.lab.resources import EdgefwRuntime
from bench.lab.strategy import EdgefwStrategy
from bench.lab.virtual import VirtualESP32Driver

__all__ = ("EdgefwRuntime", "EdgefwRunDriver", "EdgefwStrategy", "GuestLineDriver", "QEMUPiDriver", "VirtualESP32Driver")
