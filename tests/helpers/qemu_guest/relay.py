"""Runs in the systemd guest (guest-relay.service): the relay's auxiliary
contact. RELAY_READBACK follows RELAY_PERMIT, as the wiring makes it on a
board, whatever happens to edgefw's process."""

import json
import time

with open("/run/edgefw-guest/board.json") as f:
    LINES = json.load(f)["lines"]
last = None
while True:
    with open(LINES["RELAY_PERMIT"] + "/value") as f:
        v = f.read().strip()
    if v != last:
        with open(LINES["RELAY_READBACK"] + "/pull", "w") as f:
            f.write("pull-up" if v == "1" else "pull-down")
        last = v
    time.sleep(0.005)
