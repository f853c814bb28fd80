"""Command tables and their dispatcher, shared by ``python -m firmware.linux``
on a board and the ``edgefw`` command on a workstation.

A table is a tuple of rows ``(name, module, help)``. A command module has
``add_parser(parser)``, which fills the ``argparse.ArgumentParser`` it is
handed, and ``main(args)``, which returns the exit status::

    COMMANDS = (("run", "firmware.linux.run", "run the firmware"),)
    sys.exit(dispatch("edgefw", COMMANDS))

Only the chosen command's module is imported, so a command that needs
paho, numpy or sqlite costs nothing to the others (and a board without a
host tool's dependencies still runs its own commands).
"""

import argparse
import importlib
import sys


def _top(prog, table, description, version):
    width = max(len(n) for n, _m, _h in table)
    lines = ["  %-*s  %s" % (width, n, h) for n, _m, h in table]
    p = argparse.ArgumentParser(
        prog=prog,
        description=description,
        epilog="commands:\n" + "\n".join(lines) + "\n\n'%s COMMAND --help' shows a command's options" % prog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if version:
        p.add_argument("--version", action="version", version=version)
    p.add_argument("command", metavar="COMMAND", choices=[n for n, _m, _h in table], help="one of the commands below")
    return p


def command_parser(prog, row):
    """The parser of one table row, its module imported: (module, parser)."""
    name, module, text = row
    mod = importlib.import_module(module)
    p = argparse.ArgumentParser(prog="%s %s" % (prog, name), description=text)
    mod.add_parser(p)
    return mod, p


def parse_args(prog, table, argv, description="", version=""):
    """(module, args) for ``argv``; help, ``--version``, a missing or an
    unknown command end here as argparse ends them (exit 0 or 2)."""
    rows = {row[0]: row for row in table}
    if not argv or argv[0] not in rows:
        _top(prog, table, description, version).parse_args(argv[:1])
        raise SystemExit(2)  # not reached: parse_args exited
    mod, p = command_parser(prog, rows[argv[0]])
    return mod, p.parse_args(argv[1:])


def dispatch(prog, table, argv=None, description="", version=""):
    mod, args = parse_args(prog, table, sys.argv[1:] if argv is None else list(argv), description, version)
    return mod.main(args)
