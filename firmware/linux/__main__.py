"""What a Linux board runs: ``python -m firmware.linux COMMAND``.

    python -m firmware.linux run --board rpi4 --config /etc/edgefw/edgefw.json
    python -m firmware.linux update status

The systemd unit starts ``run``; the A/B installer and its boot-time
recovery use ``update``; an installed slot is judged with ``health``. On
a workstation the ``edgefw`` command offers the same commands and more.
"""

import sys

from firmware.linux.commands import dispatch

# one row per command: name, module (add_parser + main), help
COMMANDS = (
    ("run", "firmware.linux.run", "run the firmware (the board's own unless told otherwise)"),
    ("service", "firmware.linux.service", "install, remove or show the systemd service"),
    ("update", "firmware.linux.update_cli", "install, verify, recover an A/B update on this board; show its status"),
    ("health", "firmware.linux.health", "run this slot's firmware for a few cycles and print READY when healthy"),
)

if __name__ == "__main__":
    sys.exit(dispatch("python -m firmware.linux", COMMANDS, description="edgefw on a Linux board"))
