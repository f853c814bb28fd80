"""MicroPython only: the heap each subsystem holds, built as
``firmware.start`` builds it but one part at a time, with
``gc.mem_alloc()`` read after a collection before and after each import
and each construction; then the peak over ``CYCLES`` cycles of the loop
with the inference stage and the uplink on. Run from an ``edgefw
mpy-build`` tree (``edgefw/build/budget.py`` does, on the 32-bit port).

What is not edgefw's is measured apart and named so: the interpreter and
this script (``base``), the simulated board and its scenario (``sim``),
and the stand-ins for what the wasm port lacks (``standin``): a
``machine`` module for the ESP32 backend, ``cryptolib`` where the port has
none, and ``socket``/``select`` over a
broker in memory that answers CONNACK, SUBACK and PUBACK and sends the
receiver's positive receipt for every batch, so that the real
non-blocking MQTT client and the real uplink run: batches are read,
encoded, sent, acknowledged and deleted from the journal.

Prints one ``row KIND NAME CODE OBJECT`` line per part (bytes after its
imports, and after its construction), ``journal_top T`` (the heap once the
journal is open and recovered, before its garbage is collected), then
``peak P built B``, then ``N passed, N failed``.

On the wasm port the collector runs only between calls from JavaScript,
so every figure is taken after an ``await`` (``run.mjs --step``).
"""

import gc
import sys

gc.collect()
CYCLES = 3000
ROWS = []


async def settle():
    import asyncio

    gc.collect()
    await asyncio.sleep(0)
    gc.collect()
    await asyncio.sleep(0)
    return gc.mem_alloc()


class Meter:
    def __init__(self, m):
        self.m = m

    async def take(self):
        m = await settle()
        d, self.m = m - self.m, m
        return d


def row(kind, name, code, obj):
    ROWS.append((kind, name, code, obj))
    print("row", kind, name, code, obj)


# -- stand-ins ----------------------------------------------------------------
class _StandIn:
    pass


def standin_machine():
    """What ``hal.native`` reads of ``machine``. On an ESP32 the Pin, I2C
    and WDT objects are the port's static C objects: no heap beyond the
    Python wrapper, so these instances are as small as a Python object
    can be, and the module itself is measured apart."""
    m = _StandIn()

    class Pin:
        OUT = 1
        IN = 0
        PULL_UP = 1
        PULL_DOWN = 2

        def __init__(self, *a, **k):
            pass

        def value(self, v=None):
            return 0

    class I2C:
        def __init__(self, *a, **k):
            pass

    class WDT:
        def __init__(self, *a, **k):
            pass

        def feed(self):
            pass

    m.Pin = Pin
    m.I2C = I2C
    m.WDT = WDT
    m.UART = I2C
    return m


class _Sock:
    """A broker in memory: every chunk the client sends is a whole
    packet's head or the rest of its payload (``mqtt_nb._queue``)."""

    def __init__(self, *a):
        self.rx = bytearray()
        self.skip = 0
        self.sub = False
        self.batch = False

    def setblocking(self, f):
        pass

    def connect(self, addr):
        pass

    def close(self):
        pass

    def send(self, mv):
        n = len(mv)
        if self.skip:
            if self.sub:
                # SUBSCRIBE's head goes alone; its packet id opens the body
                self.rx.extend(bytes((0x90, 3, mv[0], mv[1], 1)))
                self.sub = False
            elif self.batch:
                self.receipt(mv)
                self.batch = False
            self.skip -= n
            return n
        t = mv[0]
        i = 1
        ln = 0
        sh = 0
        while True:
            b = mv[i]
            ln |= (b & 0x7F) << sh
            sh += 7
            i += 1
            if not b & 0x80:
                break
        if t == 0x10:
            self.rx.extend(b"\x20\x02\x00\x00")
        elif t == 0x32:
            p = i + 2 + (mv[i] << 8 | mv[i + 1])
            self.rx.extend(bytes((0x40, 2, mv[p], mv[p + 1])))
            self.batch = True
        elif t == 0x82:
            self.sub = True
        elif t == 0xC0:
            self.rx.extend(b"\xd0\x00")
        self.skip = ln - (n - i)
        return n

    def receipt(self, mv):
        """The receiver's positive receipt for the batch whose body starts
        in ``mv``: its id follows the key "id" near the start of the map
        (``Uplink._batch``); the uplink matches receipts by id alone."""
        head = bytes(mv[:80])
        k = head.find(b"\x62id\x48")
        if k < 0:
            return
        bid = head[k + 4 : k + 12]
        m = b"\xa2\x62id\x48" + bid + b"\x62ok\xf5"
        self.rx.extend(bytes((0x32, 5 + len(m), 0, 1, 0x72, 0, 1)))
        self.rx.extend(m)

    def recv(self, n):
        if not self.rx:
            raise OSError(11)  # EAGAIN
        out = bytes(self.rx[:n])
        self.rx = self.rx[n:]
        return out


class _Poll:
    def register(self, *a):
        pass

    def poll(self, ms):
        return []


def standin_net():
    s = _StandIn()
    s.SOCK_STREAM = 1
    s.AF_INET = 2
    s.socket = _Sock
    s.getaddrinfo = lambda host, port, *a: [(2, 1, 0, "", (host, port))]
    sel = _StandIn()
    sel.POLLIN = 1
    sel.poll = _Poll
    try:
        import cryptolib  # noqa: F401  (an ESP32's: C, no heap)
    except ImportError:
        # the wasm port has none; firmware.uplink.seal imports it, and a
        # device without a key never calls it
        sys.modules["cryptolib"] = _StandIn()
    return s, sel


# -- the measurement ------------------------------------------------------------
async def measure(cycles):
    import asyncio  # noqa: F401  (the interpreter's, before the base figure)
    import json

    base = await settle()
    row("base", "interpreter+probe", base, 0)
    mt = Meter(base)

    # stand-ins first: they sit below everything they stand in for
    machine = standin_machine()
    sock, sel = standin_net()
    row("standin", "machine+socket", await mt.take(), 0)

    from hal.compat import IS_MICROPYTHON  # noqa: F401
    from hal.errors import BoardError  # noqa: F401

    row("edgefw", "hal.core", await mt.take(), 0)

    # the checked config, as a device reads it; the scenario apart
    import firmware
    from firmware.start import PRECHECKED, loop_settings, open_journal, unload

    code = await mt.take()
    path = firmware.__file__.rsplit("/", 1)[0] + "/" + PRECHECKED
    with open(path) as f:
        cfg = json.load(f)["config"]
    row("edgefw", "start+config", code, await mt.take())
    with open(path) as f:
        sc = json.load(f)["scenario"]
    row("sim", "scenario", 0, await mt.take())

    # ESP32 backend over the stand-in machine: its code, the board's
    # data, the clock and the pins the loop takes; dropped again (the
    # loop below runs on the simulated board)
    sys.modules["machine"] = machine
    import boards.esp32_devkitc as esp
    from hal.native import NativeHardware

    code = await mt.take()
    nh = NativeHardware(esp)
    for role in ("RELAY_PERMIT", "STATUS_LED", "ESTOP", "RESET", "RELAY_READBACK"):
        if role in esp.PINS:
            nh.pin(role)
    nh.i2c("I2C0")
    row("edgefw", "hal.native+board", code, await mt.take())
    # the board table goes, as firmware.start drops it once the board is chosen
    unload("boards")
    row("edgefw", "board_table.freed", await mt.take(), 0)
    del nh, esp, NativeHardware
    unload("hal.native", "boards.esp32_devkitc")
    del sys.modules["machine"]
    # in the heap during the run below no longer: added back for a device
    row("adjust", "hal.native.dropped", 0, await mt.take())

    # the drivers first: the interlock reads their quantities (channel_names)
    from firmware.channels import driver

    for s in cfg["sensors"]:
        driver(s["type"])
    row("edgefw", "drivers", await mt.take(), 0)

    from firmware.safety.interlock import Interlock

    code = await mt.take()
    il = Interlock.from_sections(cfg["sensors"], cfg["interlock"], cfg["startup"])
    unload("firmware.safety.setup")
    row("edgefw", "interlock", code, await mt.take())

    from firmware.store.journal import Journal  # noqa: F401

    code = await mt.take()
    j = open_journal(cfg["record"], None)
    from firmware.clocks import boot_id, utc_ms
    from firmware.store import recovery

    recovery.note_start(j, boot_id(), utc_ms())
    # nothing was collected since the last figure on the wasm port (only
    # between steps): the heap now bounds the peak of opening the journal
    # and recovering it, garbage and all
    print("journal_top", gc.mem_alloc())
    del recovery
    unload("firmware.store.recovery", "firmware.store.scan")
    row("edgefw", "journal", code, await mt.take())

    import boards.sim as simboard
    from sim.board import SimHardware

    code = await mt.take()
    hw = SimHardware(simboard, sensors=cfg["sensors"], scenario=sc, speed=0.0)
    del sc, simboard
    unload("boards.sim", "boards")
    row("sim", "board+player", code, await mt.take())

    from firmware.loop import Firmware

    row("edgefw", "loop", await mt.take(), 0)

    inf = None
    if cfg["inference"]["enabled"]:
        from firmware.infer.anomaly import stage_from_config
        from firmware.infer.stage import InferenceStage  # noqa: F401

        code = await mt.take()
        from firmware.channels import channel_names

        inf = stage_from_config(cfg["inference"], channel_names(cfg["sensors"]), cfg["period_ms"])
        row("edgefw", "inference", code, await mt.take())

    kw = loop_settings(cfg)
    kw["journal"] = j
    kw["inference"] = inf
    fw = Firmware(hw, cfg["sensors"], il, **kw)
    del il, j, inf, kw
    row("edgefw", "loop.object", 0, await mt.take())

    up = None
    if cfg["uplink"]["enabled"]:
        sys.modules["socket"] = sock
        sys.modules["select"] = sel
        from firmware.uplink.coop import attach

        code = await mt.take()
        up = attach(fw, cfg["device_id"], cfg["uplink"])
        del attach
        unload("firmware.uplink.coop")
        row("edgefw", "uplink", code, await mt.take())
    del cfg, sock, sel, loop_settings, open_journal
    unload("firmware.start")
    del unload
    row("edgefw", "start.freed", 0, await mt.take())

    built = await settle()
    gc.threshold(2048)
    peak = [built]

    def sample(_fw):
        m = gc.mem_alloc()
        if m > peak[0]:
            peak[0] = m

    await fw.run(cycles=cycles, on_status=sample, status_every=1)
    fw.journal.close()
    s = fw.summary()
    inf = s.get("inference") or {}
    ups = up.stats() if up is not None else {}
    print("peak", peak[0], "built", built)
    print("modules", " ".join(sorted(k for k in sys.modules if k.split(".")[0] in ("firmware", "hal", "boards"))))
    print("cycles", s["cycles"], "windows", inf.get("windows"), "batches", ups.get("batches"), "errors", ups.get("errors"), ups.get("last_error"))
    ok = s["cycles"] == cycles and (up is None or ups.get("batches", 0) > 0 and not ups.get("errors")) and (not fw.inference or (inf.get("windows") or 0) > 0)
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return ok


def main():
    import asyncio

    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else CYCLES
    return 0 if asyncio.run(measure(cycles)) else 1


if "--no-run" not in sys.argv:
    sys.exit(main())
