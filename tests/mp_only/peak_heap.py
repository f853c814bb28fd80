"""MicroPython only: the peak heap of the whole loop with the inference
stage on (the shipped model): ``gc.mem_alloc()`` after every cycle, with
the collector asked to run whenever 2 KB have been allocated since the
last collection. It counts everything live: modules, config, journal,
interpreter and its arena; the build's own garbage is collected before
the loop starts. Prints ``peak heap N bytes ...`` and ``N passed, N
failed``.

    MICROPYPATH=.frozen:. micropython tests/mp_only/peak_heap.py [CYCLES]

On the 32-bit wasm port the collector runs only between calls from
JavaScript, so there node runs the tasks one step per call
(``edgefw/emul/wasm/run.mjs --step``)::

    -c "import sys; sys.argv.append('--no-run'); exec(open('tests/mp_only/peak_heap.py').read()); import asyncio; asyncio.create_task(measure(3000))"
"""

import gc
import sys

gc.collect()
gc.threshold(2048)
peak = [gc.mem_alloc()]


def sample(_fw):
    m = gc.mem_alloc()
    if m > peak[0]:
        peak[0] = m


async def measure(cycles):
    import asyncio

    from firmware.app import build

    fw, _sc = build("sim", journal="peak-heap-journal", overrides={"inference": {"enabled": True}})
    peak[0] = 0
    sample(fw)
    build_peak = peak[0]  # with the garbage of building it, uncollected on wasm
    gc.collect()
    await asyncio.sleep(0)  # on the wasm port the collection happens here
    built = peak[0] = gc.mem_alloc()
    await fw.run(cycles=cycles, on_status=sample, status_every=1)
    fw.journal.close()
    s = fw.summary()
    inf = s.get("inference") or {}
    print("peak heap", peak[0], "bytes; built", built, "(", build_peak, "before collecting ); cycles", s["cycles"], "windows", inf.get("windows"))
    ok = s["cycles"] == cycles and (inf.get("windows") or 0) > 0
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return ok


def main():
    import asyncio

    cycles = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    return 0 if asyncio.run(measure(cycles)) else 1


if "--no-run" not in sys.argv:
    sys.exit(main())
