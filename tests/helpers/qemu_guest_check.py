"""Runs inside the emulated ARM64 guest (tests/helpers/qemu_arm64.py), as
its init's last step: gpio-sim lines named as the rpi4 board's, labelled
as its gpiochip; i2c-stub at 0x76 and 0x53 holding a BME280 and an
ADXL345 register image; then ``edgefw run --board rpi4`` on the Linux
backend, and the interlock driven from outside: raw temperature past the
limit, the e-stop line, reset presses. Prints one result line (JSON)
after ``EDGEFW-QEMU-RESULT``; never raises (QEMU's exit status says
nothing, the line is the verdict).

/regs.json (written by the host) holds the register images:
{"bme280": [256 ints], "adxl345": [256 ints], "hot": [3], "cool": [3]},
"hot"/"cool" being the raw temperature bytes at 0xFA..0xFC.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time

T_START = time.monotonic()
PERIOD_MS = 50  # the sensors' stale_ms (50, 100) must not be shorter
CONFIG = {
    "period_ms": PERIOD_MS,
    # no kernel watchdog device on QEMU's virt board
    "interlock": {"watchdog_ms": 0, "stall_ms": 2000, "max_consecutive_overruns": 20, "readback": {"enabled": True, "grace_ms": 300}},
    "record": {"journal": "/tmp/journal"},
}
result = {"ok": False, "steps": []}


def uptime():
    with open("/proc/uptime") as f:
        return float(f.read().split()[0])


def step(name, ok, **kw):
    kw.update(name=name, ok=bool(ok))
    result["steps"].append(kw)
    print("guest: %s %s %s" % ("ok  " if ok else "FAIL", name, kw), flush=True)
    return ok


def setup_gpio():
    import boards

    board = boards.get("rpi4")
    chip, lines = gpio_lines(board)
    return board, lines, chip


def setup_i2c(board, regs):
    import smbus2

    adapter, _dev = i2c_stub(board, regs)
    bus = smbus2.SMBus(adapter)
    assert bus.read_byte_data(0x76, 0xD0) == 0x60 and bus.read_byte_data(0x53, 0x00) == 0xE5
    return bus


class Relay(threading.Thread):
    """The relay's auxiliary contact: RELAY_READBACK follows RELAY_PERMIT."""

    def __init__(self, lines):
        threading.Thread.__init__(self, daemon=True)
        self.lines = lines
        self.stop = False

    def run(self):
        last = None
        while not self.stop:
            v = read(self.lines["RELAY_PERMIT"] + "/value")
            if v != last:
                write(self.lines["RELAY_READBACK"] + "/pull", "pull-up" if v == "1" else "pull-down")
                last = v
            time.sleep(0.005)


def permit(lines):
    return read(lines["RELAY_PERMIT"] + "/value") == "1"


def wait_permit(lines, want, timeout_s):
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if permit(lines) == want:
            return time.monotonic() - t0
        time.sleep(0.001)
    return None


def press_reset(lines):
    write(lines["RESET"] + "/pull", "pull-up")
    time.sleep(0.05)  # shorter than a period: the kernel's edge detection keeps it
    write(lines["RESET"] + "/pull", "pull-down")


def scenario(lines, bus, regs):
    period = PERIOD_MS / 1000.0
    # the e-stop chain is closed (the input was requested with a pull-up)
    write(lines["ESTOP"] + "/pull", "pull-down")
    time.sleep(3 * period)
    if not step("permit low at start (manual start)", not permit(lines)):
        return
    press_reset(lines)
    dt = wait_permit(lines, True, 5)
    if not step("reset press starts the permit", dt is not None, s=dt):
        return
    time.sleep(5 * period)
    step("permit held with readback following", permit(lines))

    bus.write_i2c_block_data(0x76, 0xFA, list(regs["hot"]))
    dt = wait_permit(lines, False, 5)
    result["trip_latency_temp_ms"] = None if dt is None else round(dt * 1000, 1)
    if not step("temperature past the limit drops the permit", dt is not None, ms=result["trip_latency_temp_ms"]):
        return
    # the change lands anywhere in a period, the next read sees it and
    # that cycle drops the permit: at most one period plus one cycle
    step("within the next cycle", dt <= 2 * period, ms=round(dt * 1000, 1), period_ms=PERIOD_MS, within_one_period=dt <= period)
    time.sleep(3 * period)
    press_reset(lines)
    time.sleep(5 * period)
    step("reset refused while hot", not permit(lines))
    bus.write_i2c_block_data(0x76, 0xFA, list(regs["cool"]))
    time.sleep(5 * period)
    step("trip latched after cooling", not permit(lines))
    press_reset(lines)
    dt = wait_permit(lines, True, 5)
    if not step("reset accepted once cool", dt is not None, s=dt):
        return
    time.sleep(5 * period)

    write(lines["ESTOP"] + "/pull", "pull-up")
    dt = wait_permit(lines, False, 5)
    result["trip_latency_estop_ms"] = None if dt is None else round(dt * 1000, 1)
    if not step("e-stop drops the permit", dt is not None, ms=result["trip_latency_estop_ms"]):
        return
    step("e-stop within the next cycle", dt <= 2 * period, ms=round(dt * 1000, 1), period_ms=PERIOD_MS, within_one_period=dt <= period)
    write(lines["ESTOP"] + "/pull", "pull-down")
    time.sleep(5 * period)
    step("e-stop trip latched after release", not permit(lines))
    press_reset(lines)
    dt = wait_permit(lines, True, 5)
    step("reset accepted after the e-stop", dt is not None, s=dt)
    time.sleep(5 * period)


def main():
    result["guest_uptime_at_script_s"] = uptime()
    with open("/regs.json") as f:
        regs = json.load(f)
    board, lines, chip = setup_gpio()
    result["gpiochip"] = chip
    bus = setup_i2c(board, regs)
    with open("/tmp/edgefw.json", "w") as f:
        json.dump(CONFIG, f)
    env = dict(os.environ, PYTHONPATH="/edgefw", EDGEFW_BOARD="rpi4")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edgefw", "run", "--config", "/tmp/edgefw.json", "--json"],
        cwd="/edgefw", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    err = []
    ready = threading.Event()

    def pump():
        for line in proc.stderr:
            err.append(line.rstrip())
            print("edgefw: " + line.rstrip(), flush=True)
            if "ready" in line:
                ready.set()

    threading.Thread(target=pump, daemon=True).start()
    relay = Relay(lines)
    relay.start()
    try:
        while not ready.is_set() and proc.poll() is None and time.monotonic() - t0 < 180:
            ready.wait(0.5)
        if step("edgefw ready (self-test passed)", ready.is_set(), s=round(time.monotonic() - t0, 1)):
            result["edgefw_start_s"] = round(time.monotonic() - t0, 1)
            scenario(lines, bus, regs)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate(timeout=30)
        relay.stop = True
    step("edgefw stopped by SIGTERM", proc.returncode == 143, rc=proc.returncode)
    step("permit low after stop", not permit(lines))
    summary = None
    for line in reversed(out.splitlines()):
        if line.startswith("{"):
            try:
                summary = json.loads(line)
            except ValueError:
                pass
            break
    if step("summary line", summary is not None):
        result["summary"] = {k: summary.get(k) for k in ("board", "cycles", "trips", "store", "overruns", "wall_s")}
        trips = summary.get("trips") or []
        step("trips recorded", len(trips) >= 2, n=len(trips))
    size = 0
    for dirpath, _, files in os.walk("/tmp/journal"):
        for n in files:
            size += os.path.getsize(os.path.join(dirpath, n))
    result["journal_bytes"] = size
    step("records journaled", size > 0, bytes=size)
    result["ok"] = all(s["ok"] for s in result["steps"])


if __name__ == "__main__":
    try:
        # board_setup.py (beside this file in the initrd) sets the board up
        # for the systemd guest too; imported here so that even its failure
        # ends in the result line
        from board_setup import gpio_lines, i2c_stub, read, write

        main()
    except BaseException as e:  # noqa: BLE001 - the result line must come out
        import traceback

        traceback.print_exc()
        result["error"] = "%s: %s" % (type(e).__name__, e)
        result["ok"] = False
    result["guest_uptime_s"] = uptime()
    result["script_s"] = round(time.monotonic() - T_START, 1)
    sys.stdout.flush()
    print("EDGEFW-QEMU-RESULT " + json.dumps(result), flush=True)
