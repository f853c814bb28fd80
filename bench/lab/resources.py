"""The resource a bench target's edgefw code runs on."""

import attr
from labgrid.factory import target_factory
from labgrid.resource import Resource

RUNTIMES = ("cpython", "unix", "wasm32", "esp32", "ssh")


@target_factory.reg_resource
@attr.s(eq=False)
class EdgefwRuntime(Resource):
    """``runtime``: ``cpython`` (this interpreter, in-process), ``unix``
    (the MicroPython unix port on PATH), ``wasm32`` (the 32-bit wasm
    MicroPython under node) or ``esp32`` (a MicroPython board on the
    target's serial port, through mpremote); ``board``: the edgefw board
    the code opens (``sim`` on the virtual ESP32, whose HAL is the sim
    board's); ``heap``: the MicroPython heap (unix, wasm32); ``root``: the
    source tree the target imports from (default: this checkout).
    ``image`` and ``config`` (esp32): the board image to flash
    (edgefw/build/mpy.py ``IMAGES``) and the config built into it. ``ssh``: a
    Linux board over SSH (the target's NetworkService), running the
    probes with its python3 from a copy of this tree in ``remote_dir``
    (relative: to the login's home)."""

    runtime = attr.ib(validator=attr.validators.in_(RUNTIMES))
    board = attr.ib(default="sim", validator=attr.validators.instance_of(str))
    heap = attr.ib(default="8M", validator=attr.validators.instance_of(str))
    root = attr.ib(default=None)
    image = attr.ib(default=None)
    config = attr.ib(default=None)
    remote_dir = attr.ib(default="edgefw-bench", validator=attr.validators.instance_of(str))

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.avail = True
