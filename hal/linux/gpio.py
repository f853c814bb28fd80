"""``machine.Pin`` on a libgpiod v2 line (PyPI ``gpiod`` 2.x).

    chip = find_chip("pinctrl-bcm2711")          # by label, not by number
    permit = LinuxPin(chip, "GPIO17", LinuxPin.OUT)
    estop = LinuxPin(chip, "GPIO27", LinuxPin.IN, LinuxPin.PULL_UP, edges=True)

Lines are requested by name (the board's ``name`` field), falling back
to the offset (``line``) only when the chip has no line of that name and
the board gives one. The Pi 5's RP1 and the Pi 4's BCM2711 are different
chips whose numbers moved between kernels; names and labels did not.

Outputs are requested with their initial value, low, in the same call, so
the line never glitches high. Inputs get the board's bias; with
``edges=True`` both edges are detected by the kernel and ``value()``
returns 1 if the line rose since the last call even when it is low again
now, so a reset press or an e-stop chain opening shorter than a loop
period is not lost.

What the line does after the process dies is up to the kernel and the
chip (the request is released; the line may keep its level or float):
the permit output needs the pull-down and the external watchdog relay of
docs/interlock.md.
"""

import errno
import os


def _gpiod(mod):
    if mod is not None:
        return mod
    try:
        import gpiod
    except ImportError:
        from hal.errors import BackendUnavailable

        raise BackendUnavailable("the Linux GPIO backend needs PyPI gpiod >= 2 (pip install 'edgefw[linux]')")
    return gpiod


def find_chip(label, dev_dir="/dev", gpiod=None):
    """The open ``gpiod.Chip`` whose label is ``label``; ``OSError(ENODEV)``
    naming the labels seen when there is none. A chip this user may not
    open is skipped (a board's other chips need not be in the gpio group);
    ``OSError(EACCES)`` when the label was not found among the rest."""
    gpiod = _gpiod(gpiod)
    seen = []
    denied = []
    try:
        names = sorted(n for n in os.listdir(dev_dir) if n.startswith("gpiochip"))
    except OSError:
        names = []
    for n in names:
        path = dev_dir + "/" + n
        if not gpiod.is_gpiochip_device(path):
            continue
        try:
            chip = gpiod.Chip(path)
        except PermissionError:
            denied.append(n)
            continue
        got = chip.get_info().label
        if got == label:
            return chip
        seen.append("%s=%s" % (n, got))
        chip.close()
    if denied:
        raise OSError(errno.EACCES, "no gpiochip labelled %r among those this user may open (%s); no access to %s: add the user to their group"
                      % (label, ", ".join(seen) or "none", ", ".join(denied)))
    raise OSError(errno.ENODEV, "no gpiochip labelled %r under %s (found: %s)" % (label, dev_dir, ", ".join(seen) or "none"))


class LinuxPin:
    IN = 0
    OUT = 1
    PULL_UP = 1
    PULL_DOWN = 2

    def __init__(self, chip, name, mode, pull=None, offset=None, edges=False, consumer="edgefw", gpiod=None):
        gpiod = _gpiod(gpiod)
        from gpiod.line import Bias, Direction, Edge, Value

        self._active = Value.ACTIVE
        self._inactive = Value.INACTIVE
        line = self._resolve(chip, name, offset)
        self.name = name
        self.offset = line
        self.mode = mode
        if mode == self.OUT:
            settings = gpiod.LineSettings(direction=Direction.OUTPUT, output_value=Value.INACTIVE)
        else:
            bias = {self.PULL_UP: Bias.PULL_UP, self.PULL_DOWN: Bias.PULL_DOWN}.get(pull, Bias.AS_IS)
            settings = gpiod.LineSettings(direction=Direction.INPUT, bias=bias, edge_detection=Edge.BOTH if edges else Edge.NONE)
        self._edges = bool(edges) and mode != self.OUT
        self._req = chip.request_lines(config={line: settings}, consumer=consumer)
        self._out = 0

    @staticmethod
    def _resolve(chip, name, offset):
        if name:
            try:
                return chip.line_offset_from_id(name)
            except OSError:
                if offset is None:
                    raise OSError(errno.ENODEV, "gpiochip %s has no line named %r" % (chip.path, name))
        if offset is None:
            raise ValueError("a pin needs a line name or an offset")
        return offset

    def value(self, v=None):
        if v is not None:
            self._out = 1 if v else 0
            # an input ignores a write, as machine.Pin's does (the kernel
            # refuses to set an input line: EPERM)
            if self.mode == self.OUT:
                self._req.set_value(self.offset, self._active if v else self._inactive)
            return None
        if self.mode == self.OUT:
            return self._out
        level = 1 if self._req.get_value(self.offset) == self._active else 0
        if self._edges and not level and self._req.wait_edge_events(0):
            for ev in self._req.read_edge_events():
                if ev.event_type == ev.Type.RISING_EDGE:
                    level = 1
        elif self._edges and level and self._req.wait_edge_events(0):
            self._req.read_edge_events()
        return level

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)

    def release(self):
        self._req.release()
