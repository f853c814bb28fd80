"""Runs in the emulated Pi (started by bench/lab/qemu.py): the e-stop
chain's wiring. A closed chain is a wire to ground: the ESTOP input reads
low whatever pull-up the program that opens the line asks for. gpio-sim
turns a requested bias into the line's simulated pull, so the line is
pulled down again whenever something asks for a pull-up while the chain
is closed; the fixture opens the chain by creating ``estop-open`` in the
state directory (then ``board.py estop on``). Standalone: no edgefw import."""

import json
import os
import sys
import time

STATE = sys.argv[1] if len(sys.argv) > 1 else "/run/edgefw-bench"
with open("/run/edgefw-guest/board.json") as f:
    PULL = json.load(f)["lines"]["ESTOP"] + "/pull"
OPEN = STATE + "/estop-open"
open(STATE + "/wiring.on", "w").close()
while True:
    if not os.path.exists(OPEN):
        with open(PULL) as f:
            pull = f.read().strip()
        if pull != "pull-down":
            with open(PULL, "w") as f:
                f.write("pull-down")
    time.sleep(0.002)
