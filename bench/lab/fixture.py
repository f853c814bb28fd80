"""The emulated Pi's fixture as labgrid digital I/O, the drivers a real
bench has in their place (a relay opening the e-stop chain, one pressing
RESET, an input watching the relay), so that a test drives either the
same way::

    drivers:
      - GuestLineDriver: {name: ESTOP}
      - GuestLineDriver: {name: RESET}
      - GuestLineDriver: {name: HEATER}
      - GuestLineDriver: {name: RELAY_PERMIT}

``set(True)`` on ESTOP opens the chain, ``set(False)`` closes it; on
RESET it presses the button (``board.py reset``: a 50 ms press) and
``set(False)`` does nothing; HEATER makes the BME280 read 75 C
(``board.py hot``) and, off, 22 C (``board.py cool``); ``get()`` reads the line (RELAY_PERMIT: the
relay's coil). Each goes through ``board.py`` in the guest.
"""

import attr
from labgrid.driver.common import Driver
from labgrid.factory import target_factory
from labgrid.protocol import DigitalOutputProtocol

from bench.lab.runner import BenchTimeout


@target_factory.reg_driver
@attr.s(eq=False)
class GuestLineDriver(Driver, DigitalOutputProtocol):
    bindings = {"guest": "QEMUPiDriver"}

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self._level = False

    @Driver.check_active
    def set(self, status):
        role = self.name
        if role == "ESTOP":
            self.guest.board("estop", "on" if status else "off")
        elif role == "RESET":
            if status:
                self.guest.board("reset")
        elif role == "HEATER":
            self.guest.board("hot" if status else "cool")
        else:
            raise BenchTimeout("the emulated Pi's fixture drives ESTOP, RESET and HEATER, not %s" % role)
        self._level = bool(status)

    @Driver.check_active
    def get(self):
        if self.name == "RELAY_PERMIT":
            return self.guest.board("permit")["permit"]
        return self._level
