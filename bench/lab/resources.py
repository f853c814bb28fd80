"""The resource a bench target's edgefw code runs on."""

import attr
from labgrid.factory import target_factory
from labgrid.resource import Resource

RUNTIMES = ("cpython", "unix", "wasm32")


@target_factory.reg_resource
@attr.s(eq=False)
class EdgefwRuntime(Resource):
    """``runtime``: ``cpython`` (this interpreter, in-process), ``unix``
    (the MicroPython unix port on PATH) or ``wasm32`` (the 32-bit wasm
    MicroPython under node); ``board``: the edgefw board the code opens;
    ``heap``: the MicroPython heap; ``root``: the source tree the target
    imports from (default: this checkout)."""

    runtime = attr.ib(validator=attr.validators.in_(RUNTIMES))
    board = attr.ib(default="sim", validator=attr.validators.instance_of(str))
    heap = attr.ib(default="8M", validator=attr.validators.instance_of(str))
    root = attr.ib(default=None)

    def __attrs_post_init__(self):
        super().__attrs_post_init__()
        self.avail = True
