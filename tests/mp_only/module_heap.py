"""MicroPython only: the heap each module takes when imported from .mpy,
one after the other in the order given (a module's imports not yet loaded
count with it; list them first to see them apart). Prints ``module NAME
BYTES`` lines and ``N passed, N failed``. Run on the 32-bit port in step
mode (``edgefw/build/budget.py``'s ``module_costs``): the port collects
only between steps."""

import gc
import sys


async def measure(names):
    import asyncio

    async def settle():
        gc.collect()
        await asyncio.sleep(0)
        gc.collect()
        await asyncio.sleep(0)
        return gc.mem_alloc()

    class StandIn:
        pass

    for lack in ("socket", "select", "cryptolib"):
        try:
            __import__(lack)
        except ImportError:
            # what the wasm port lacks: referenced only when called
            sys.modules[lack] = StandIn()
    m = await settle()
    for name in names:
        __import__(name)
        n = await settle()
        print("module", name, n - m)
        m = n
    print("1 passed, 0 failed")


if "--no-run" not in sys.argv:
    import asyncio

    asyncio.run(measure(sys.argv[1:]))
