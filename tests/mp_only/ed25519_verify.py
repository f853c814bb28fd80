"""MicroPython: verify Ed25519 signatures made elsewhere, in steps.

    micropython tests/mp_only/ed25519_verify.py CASEFILE [heap]

CASEFILE holds lines ``PUBHEX MSGHEX SIGHEX``. Prints one line per case:
``True|False steps total_us longest_step_us``, then ``HEAP peak_bytes``.
With ``heap`` the heap is collected after every step and the peak is
what the verification holds live (the message aside); the times are
then meaningless.
"""

import binascii
import gc
import sys
import time

from firmware.ota.ed25519 import Verifier

measure = sys.argv[2:] == ["heap"]
cases = []
with open(sys.argv[1]) as f:
    for line in f:
        if line.strip():
            cases.append([binascii.unhexlify(x) for x in line.split()])
gc.collect()
base = gc.mem_alloc()
peak = 0
for pub, msg, sig in cases:
    gc.collect()
    base = gc.mem_alloc()
    v = Verifier(pub, msg, sig)
    longest = 0
    t0 = time.ticks_us()
    while True:
        t = time.ticks_us()
        more = v.step()
        dt = time.ticks_diff(time.ticks_us(), t)
        if dt > longest:
            longest = dt
        if measure:
            gc.collect()
        used = gc.mem_alloc() - base
        if used > peak:
            peak = used
        if not more:
            break
    print(v.ok, v.steps, time.ticks_diff(time.ticks_us(), t0), longest)
    del v
    gc.collect()
print("HEAP", peak)
