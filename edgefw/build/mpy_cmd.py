"""``edgefw mpy-build``: precompile the dual-target packages to .mpy, a
board's device image (``edgefw.build.mpy``), or the heap budget of the
image on the 32-bit port (``edgefw.build.budget``).

    edgefw mpy-build OUT [--board esp32_devkitc] [--manifest-py FILE]
    edgefw mpy-build OUT --budget [--model vib_conv1d] [--full-journal] [--frozen MICROPYTHON_SRC]
"""

import sys

from edgefw.build.mpy import build, read_manifest, write_manifest_py


def add_parser(p):
    p.add_argument("out")
    p.add_argument("--config", help="config to check here and ship (default: the shipped defaults)")
    p.add_argument("--scenario", help="sim scenario to check here and ship (default: the shipped one)")
    p.add_argument("--board", help="build the device image for this board (esp32_devkitc): its modules only, with a manifest")
    p.add_argument("--manifest-py", metavar="FILE", help="with --board: also write a micropython-lib style manifest.py for freezing")
    p.add_argument(
        "--budget",
        action="store_true",
        help="build with the inference stage and the uplink on, run it on the 32-bit MicroPython port and print the heap per subsystem against the budget",
    )
    p.add_argument("--model", default="vib_dense", choices=("vib_dense", "vib_conv1d"), help="with --budget: the model the inference stage runs")
    p.add_argument("--full-journal", action="store_true", help="with --budget: fill a small journal to its cap first, and measure a restart over it")
    p.add_argument(
        "--frozen",
        metavar="MICROPYTHON_SRC",
        help="with --budget: build a 32-bit unix port from this MicroPython source tree with every module frozen in, and measure on it (edgefw.build.frozen)",
    )


def main(args):
    if args.budget:
        if args.board or args.config or args.scenario:
            print("edgefw mpy-build: --budget builds its own config on the sim board; it takes no --board, --config or --scenario", file=sys.stderr)
            return 2
        if args.frozen:
            from edgefw.build import frozen

            return frozen.main(args.out, args.frozen, args.model, args.full_journal)
        from edgefw.build import budget

        return budget.main(args.out, args.model, args.full_journal)
    try:
        n = build(args.out, config=args.config, scenario=args.scenario, board=args.board)
    except ValueError as e:
        print("edgefw mpy-build: %s" % e, file=sys.stderr)
        return 2
    if args.board:
        m = read_manifest(args.out)
        print(
            "compiled %d modules for %s into %s: %d files, %d bytes, bundle %s, mpy v%s"
            % (n, args.board, args.out, len(m["files"]), m["bytes"], m["bundle"], m["mpy"])
        )
        if args.manifest_py:
            write_manifest_py(args.manifest_py, args.board)
            print("wrote %s (for freezing into a MicroPython build)" % args.manifest_py)
    else:
        print("compiled %d modules into %s" % (n, args.out))
    return 0
