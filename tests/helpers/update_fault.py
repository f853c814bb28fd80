"""The A/B installer with a power cut at one of its steps, for the tests.

    python tests/helpers/update_fault.py --kill-at STEP install --rootfs DIR B.edgefw
    python tests/helpers/update_fault.py --pause-at STEP install --rootfs / B.edgefw

The seam is the installer's own ``progress`` callback: every step reports
through it (``firmware.linux.update.step``), so the fault lives here, in
the tests, and the product holds no fault hook. ``--kill-at`` ends the
process with SIGKILL as the step is reached; ``--pause-at`` prints
``paused at STEP`` and waits there for the test to cut the power.
"""

import argparse
import os
import signal
import sys
import time

from firmware.linux import update as U
from firmware.linux import update_cli


def main(argv=None):
    ap = argparse.ArgumentParser(prog="update_fault")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--kill-at", choices=U.STEPS, metavar="STEP")
    where.add_argument("--pause-at", choices=U.STEPS, metavar="STEP")
    ap.add_argument("update", nargs=argparse.REMAINDER, help="the arguments of 'python -m firmware.linux update'")
    a = ap.parse_args(argv)

    def progress(msg):
        U._progress(msg)
        if msg == "step %s" % a.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if msg == "step %s" % a.pause_at:
            U._progress("paused at %s" % a.pause_at)
            while True:
                time.sleep(3600)

    p = argparse.ArgumentParser(prog="python -m firmware.linux update")
    update_cli.add_parser(p)
    u = p.parse_args(a.update)
    if u.update_cmd == "install":
        return U.install(u.rootfs or "/", u.bundle, board=u.board, progress=progress, **update_cli.install_kw(u))
    if u.update_cmd == "recover":
        return U.recover(u.rootfs, progress=progress)
    return update_cli.main(u)


if __name__ == "__main__":
    sys.exit(main())
