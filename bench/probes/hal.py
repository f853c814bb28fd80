"""HAL conformance, per bus and pin role of the board (the subset of
``machine`` edgefw uses: hal/interfaces.py)."""

from bench.probes._hw import open_hw


def _errno(e):
    return e.args[0] if e.args and isinstance(e.args[0], int) else -1


def i2c_roles(board):
    """Per I2C role: the addresses a scan finds, the chip ID register of
    each configured sensor found there, and what reading an address with
    nothing on it raises."""
    hw, cfg = open_hw(board)
    out = {}
    for role in sorted(hw.board.I2C):
        bus = hw.i2c(role)
        found = sorted(bus.scan())
        ids = {}
        for s in cfg["sensors"]:
            if s["bus"] == role and s["address"] in found:
                from firmware.channels import driver

                buf = bytearray(1)
                bus.readfrom_mem_into(s["address"], driver(s["type"]).ID_REGISTER, buf)
                ids[s["name"]] = buf[0]
        free = 0x08
        while free in found:
            free += 1
        try:
            bus.readfrom_mem_into(free, 0, bytearray(1))
            absent = "no error"
        except OSError as e:
            absent = "OSError %d" % _errno(e)
        out[role] = {"scan": found, "chip_ids": ids, "absent": absent}
    return out


def pin_roles(board, settle_ms=0):
    """Per pin role: outputs read back what is written (value and
    on/off); inputs read 0 or 1 and ignore writes. Every pin is opened
    first and the inputs read ``settle_ms`` later, as the firmware reads
    them after its start-up."""
    hw, _cfg = open_hw(board)
    out = {}
    pins = dict((role, hw.pin(role)) for role in sorted(hw.board.PINS))
    hw.clock.sleep_ms(settle_ms)
    for role in sorted(hw.board.PINS):
        spec = hw.board.PINS[role]
        p = pins[role]
        if spec["mode"] == "out":
            seen = []
            for v in (1, 0, 1):
                p.value(v)
                seen.append(p.value())
            p.off()
            seen.append(p.value())
            p.on()
            seen.append(p.value())
            p.value(0)
            out[role] = {"mode": "out", "levels": seen}
        else:
            before = p.value()
            p.value(1 - before)
            out[role] = {"mode": "in", "level": before, "after_write": p.value(), "pull": spec.get("pull")}
    return out


def readback(board, settle_ms=100):
    """RELAY_READBACK follows RELAY_PERMIT within ``settle_ms``: the level
    after driving it high, then low."""
    hw, _cfg = open_hw(board)
    permit, rb = hw.pin("RELAY_PERMIT"), hw.pin("RELAY_READBACK")
    got = []
    for v in (1, 0):
        permit.value(v)
        for _ in range(settle_ms):
            hw.clock.sleep_ms(1)
        got.append(rb.value())
    return {"readback": got}


def uart_loopback(board, data="edgefw bench\n"):
    """What comes back on UART0 (sim: a loopback; a real bench: a TX-RX
    jumper, see the example environments)."""
    hw, _cfg = open_hw(board)
    u = hw.uart("UART0")
    n = u.write(data.encode())
    t = 0
    got = b""
    while len(got) < n and t < 100:
        chunk = u.read()
        if chunk:
            got += chunk
        else:
            hw.clock.sleep_ms(1)
            t += 1
    return {"written": n, "read": got.decode()}


def watchdog(board, timeout_ms=200):
    """Feed the watchdog, then stop: within the timeout the outputs stay
    as driven; past it the board is held in reset (every output low)."""
    hw, _cfg = open_hw(board)
    permit = hw.pin("RELAY_PERMIT")
    w = hw.wdt(timeout_ms)
    permit.value(1)
    w.feed()
    hw.clock.sleep_ms(timeout_ms // 2)
    w.feed()
    hw.clock.sleep_ms(timeout_ms // 2)
    fed = permit.value()
    hw.clock.sleep_ms(timeout_ms * 2)
    return {"fed": fed, "starved": permit.value()}
