"""Runs in the systemd guest, from a test over SSH: drives and reads the
simulated board (see board_setup.py). Prints one JSON line.

    board.py permit                  {"permit": true}
    board.py wait-permit 0|1 SECONDS {"permit": ..., "s": seconds or null}
    board.py reset                   a reset press (50 ms)
    board.py estop on|off            the e-stop chain opened / closed
    board.py hot | cool              the BME280's raw temperature
    board.py watch SECONDS [MARKER]  the permit's transitions, with times
                                     (MARKER is created once it watches)
"""

import json
import sys
import time

with open("/run/edgefw-guest/board.json") as f:
    B = json.load(f)
L = B["lines"]


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def permit():
    with open(L["RELAY_PERMIT"] + "/value") as f:
        return f.read().strip() == "1"


def wait_permit(want, timeout_s):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if permit() == want:
            return round(time.monotonic() - t0, 4)
        time.sleep(0.001)
    return None


def main(argv):
    cmd = argv[0]
    out = {}
    if cmd == "permit":
        pass
    elif cmd == "wait-permit":
        out["s"] = wait_permit(argv[1] == "1", float(argv[2]))
    elif cmd == "reset":
        write(L["RESET"] + "/pull", "pull-up")
        time.sleep(0.05)
        write(L["RESET"] + "/pull", "pull-down")
    elif cmd == "estop":
        write(L["ESTOP"] + "/pull", "pull-up" if argv[1] == "on" else "pull-down")
    elif cmd in ("hot", "cool"):
        import smbus2

        with smbus2.SMBus(B["adapter"]) as bus:
            bus.write_i2c_block_data(0x76, 0xFA, list(B[cmd]))
    elif cmd == "watch":
        t0 = time.monotonic()
        last = permit()
        changes = [[0.0, last]]
        if len(argv) > 2:
            open(argv[2], "w").close()
        while time.monotonic() - t0 < float(argv[1]):
            v = permit()
            if v != last:
                changes.append([round(time.monotonic() - t0, 3), v])
                last = v
            time.sleep(0.002)
        out["changes"] = changes
    else:
        raise SystemExit("unknown command %r" % cmd)
    out["permit"] = permit()
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
