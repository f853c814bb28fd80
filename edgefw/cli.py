"""The ``edgefw`` command: one table of commands, one module each.

    edgefw run                      # the firmware on the sim board
    edgefw COMMAND --help

Adding a command is one module with ``add_parser(parser)`` and
``main(args)`` plus one row below (docs/extending.md); the dispatcher
(``firmware.linux.commands``) imports only the module of the command
given.
"""

import sys

from edgefw.util import version
from firmware.linux.commands import command_parser, dispatch
from firmware.linux.commands import parse_args as _parse_args

# name, module, help
COMMANDS = (
    ("run", "edgefw.run", "run the firmware (the sim board unless told otherwise)"),
    ("ingest", "edgefw.ingest.server", "receive, verify and store device batches (SQLite or PostgreSQL)"),
    ("bench", "edgefw.perf.cli", "benchmarks, each beside its peer: interlock, store, forward, infer, ingest, gateway"),
    ("infer", "edgefw.infer", "run an int8 .tflite model on a batch of inputs with one backend"),
    ("mpy-build", "edgefw.build.mpy_cmd", "precompile the dual-target packages to .mpy; a board's device image"),
    ("mp-deps", "edgefw.build.mpdeps", "fetch the MicroPython libraries (umqtt.simple) into .mp-lib/"),
    ("service", "firmware.linux.service", "install, remove or show the systemd service (Linux boards)"),
    ("update", "edgefw.deploy.update", "signed A/B application updates for the Linux boards (docs/updates.md)"),
    ("gateway", "edgefw.gateway.cli", "a site gateway: store-and-forward with receipts on both hops, summaries, local rules (docs/gateway.md)"),
    ("pull", "edgefw.gateway.pull", "ask a gateway to send a node's kept raw records for a time range upstream (docs/gateway.md)"),
    ("fleet", "edgefw.fleet.cli", "the fleet: identities (CA, registry, certificates, seal keys, the broker's configuration) and staged rollouts"),
    ("sim-esp32", "edgefw.emul.sim_esp32", "a virtual ESP32 (ROM bootloader and MicroPython REPL on two ptys) for tools/flash.py"),
)

PROG = "edgefw"
DESCRIPTION = "edgefw: firmware for edge sensor nodes"


def parse_args(argv):
    """(module, args) for the command line ``argv`` (without the program)."""
    return _parse_args(PROG, COMMANDS, list(argv), DESCRIPTION, "edgefw " + version())


def parser(name):
    """One command's parser (its module imported)."""
    return command_parser(PROG, next(row for row in COMMANDS if row[0] == name))[1]


def main(argv=None):
    return dispatch(PROG, COMMANDS, argv, DESCRIPTION, "edgefw " + version())


if __name__ == "__main__":
    sys.exit(main())
