"""MicroPython only: BME280 compensation allocates nothing (heap locked)
over a sweep of raw values, t_fine from -40 to 85 degC and trimming values
(the shipped ones, each of P2..P9 at its extremes, and random ones with
P1 at 28000 or more). On a 32-bit port any intermediate past 2**30 would
be a long integer, and allocating it under the lock fails. Inputs whose
pressure is 2**20 Pa or more (ten times the sensor's range) are skipped.

    MICROPYPATH=.frozen:. micropython tests/mp_only/bme280_sweep.py
"""

import random
import sys

import micropython

from hal.drivers.bme280_maths import humidity_q10, pressure_pa, t_fine, temperature_centi
from sim.chips.bme280 import DEFAULT_TRIM


def cals():
    base = list(DEFAULT_TRIM)
    yield tuple(base)
    for i in range(4, 12):
        for v in (-32768, 32767):
            c = list(base)
            c[i] = v
            yield tuple(c)
    rnd = random.Random(32) if hasattr(random, "Random") else None
    if rnd is None:
        random.seed(32)
    r = rnd or random
    for _ in range(40):
        c = list(base)
        c[3] = r.randint(28000, 65535)
        for i in range(4, 12):
            c[i] = r.randint(-32768, 32767)
        yield tuple(c)


def main():
    calls = fails = skipped = 0
    for cal in cals():
        for tf in range(-204800, 435201, 25600):
            for adc in range(0, 1 << 20, 32767):
                if abs(pressure_pa(cal, tf, adc)) >= 1 << 20:
                    skipped += 1
                    continue
                micropython.heap_lock()
                try:
                    pressure_pa(cal, tf, adc)
                    temperature_centi(tf)
                    humidity_q10(cal, tf, adc >> 4)
                except MemoryError:
                    fails += 1
                finally:
                    micropython.heap_unlock()
                calls += 1
    # t_fine itself over the raw temperature codes of -40..85 degC
    for adc_t in range(300000, 700000, 997):
        micropython.heap_lock()
        try:
            t_fine(DEFAULT_TRIM, adc_t)
        except MemoryError:
            fails += 1
        finally:
            micropython.heap_unlock()
        calls += 1
    print("calls", calls, "skipped", skipped, "allocation failures", fails)
    ok = fails == 0 and calls > 20000
    print("%d passed, %d failed" % (1 if ok else 0, 0 if ok else 1))
    return 0 if ok else 1


sys.exit(main())
