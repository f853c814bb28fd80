"""``edgefw run``: the board's own ``run`` (``firmware.linux.run``), plus
what only a workstation can do: the same firmware under the MicroPython
unix port (``--target micropython``).

    edgefw run                                   # CPython, the sim board
    edgefw run --target micropython --heap 256k  # the unix port
"""

from edgefw.emul import micropython
from firmware.linux import run


def add_parser(p):
    run.add_parser(p)
    p.add_argument("--target", choices=("cpython", "micropython"), default="cpython", help="interpreter to run the firmware in")
    # from source: compiling the inference modules alone takes most of 256k;
    # precompiled (edgefw mpy-build) the loop runs in 128k
    p.add_argument(
        "--heap",
        type=micropython.heap_size,
        default="512k",
        metavar="SIZE",
        help="MicroPython heap size with --target micropython (default 512k: it runs from source)",
    )


def main(args):
    if args.target == "micropython":
        return micropython.run_firmware(args)
    return run.main(args)
