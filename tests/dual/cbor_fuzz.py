"""Mutation fuzzing of the CBOR decoder, the same cases on both targets
(a PRNG of its own: CPython's and MicroPython's ``random`` differ).

    counts, verdicts = fuzz(seed=1, n=2000)

Each case is a valid encoding (of a generated value, or an RFC 8949
example) with one to three mutations: a byte changed, inserted, removed,
a slice repeated, or a cut. Verdicts, one per case: ``"-"`` when refused
with CBORError, else the hex of the decoded value re-encoded. Counts:
``cases``, ``refused``, ``accepted``, ``tracebacks`` (any exception but
CBORError, with the first few kept in ``errors``) and ``invalid``:
accepted values that do not re-encode, or whose re-encoding does not
decode back to the same bytes.
"""

import binascii

from firmware import cbor
from firmware.cbor_base import UNDEFINED, Simple, Tag
from hal.errors import CBORError
from tests.dual.fuzz import Rand

# bytes a mutation likes to write: heads with long or indefinite lengths,
# breaks, simple values, tags, the largest arguments
INTERESTING = (0x00, 0x17, 0x18, 0x1B, 0x1F, 0x3F, 0x5F, 0x7F, 0x9F, 0xBF, 0xC2, 0xD8, 0xE0, 0xF4, 0xF7, 0xF8, 0xF9, 0xFB, 0xFF, 0x80, 0xC3, 0xED)


def _value(r, depth=0):
    k = r.below(12 if depth < 3 else 7)
    if k == 0:
        return r.next() - 0x80000000
    if k == 1:
        return (r.next() << 32 | r.next()) - (r.below(2) << 63)
    if k == 2:
        return [0.0, -0.0, 1.5, 65504.0, 1e300, -4.1, float("inf"), 1 / 3][r.below(8)]
    if k == 3:
        return "".join(["a", "\u00e9", "\u6c34", "\U00010151", "z"][r.below(5)] for _ in range(r.below(6)))
    if k == 4:
        return bytes(r.below(256) for _ in range(r.below(6)))
    if k == 5:
        return [True, False, None, UNDEFINED, Simple(16), Simple(255)][r.below(6)]
    if k == 6:
        return r.below(24)
    if k in (7, 8):
        return [_value(r, depth + 1) for _ in range(r.below(4))]
    if k in (9, 10):
        d = {}
        for _ in range(r.below(4)):
            key = [r.below(50), "k%d" % r.below(50), -1 - r.below(5), False, 2.5][r.below(5)]
            d[key] = _value(r, depth + 1)
        return d
    return Tag(r.below(300), _value(r, depth + 1))


def _mutate(r, b):
    # slices and concatenation: MicroPython's bytearray has no del or insert
    for _ in range(1 + r.below(3)):
        k = r.below(6)
        i = r.below(len(b) + 1)
        j = min(i, len(b) - 1)
        if k == 0 and b:
            b = b[:j] + bytes([r.below(256)]) + b[j + 1 :]
        elif k == 1 and b:
            b = b[:j] + bytes([INTERESTING[r.below(len(INTERESTING))]]) + b[j + 1 :]
        elif k == 2:
            b = b[:i] + bytes([INTERESTING[r.below(len(INTERESTING))]]) + b[i:]
        elif k == 3 and b:
            b = b[:j] + b[j + 1 :]
        elif k == 4 and b:
            e = min(len(b), i + 1 + r.below(4))
            b = b[:e] + b[i:e] + b[e:]
        else:
            b = b[:i]
    return bytes(b)


def _seeds():
    from tests.dual.test_cbor_rfc import EXAMPLES

    return [binascii.unhexlify(h) for h, _v, _p in EXAMPLES]


def fuzz(seed, n):
    r = Rand(seed)
    rfc = _seeds()
    counts = {"cases": 0, "refused": 0, "accepted": 0, "tracebacks": 0, "invalid": 0}
    errors = []
    verdicts = []
    for _ in range(n):
        base = rfc[r.below(len(rfc))] if r.below(4) == 0 else cbor.dumps_py(_value(r))
        data = _mutate(r, base)
        counts["cases"] += 1
        try:
            v = cbor.loads(data)
        except CBORError:
            counts["refused"] += 1
            verdicts.append("-")
            continue
        except Exception as e:  # a traceback: what this suite exists to find
            counts["tracebacks"] += 1
            if len(errors) < 5:
                errors.append("%s: %s: %r" % (binascii.hexlify(data).decode(), type(e).__name__, e))
            verdicts.append("!")
            continue
        counts["accepted"] += 1
        try:
            again = cbor.dumps_py(v)
            ok = cbor.dumps_py(cbor.loads(again)) == again
        except Exception as e:
            ok = False
            if len(errors) < 5:
                errors.append("%s: accepted, then %s: %r" % (binascii.hexlify(data).decode(), type(e).__name__, e))
        if not ok:
            counts["invalid"] += 1
            verdicts.append("?")
        else:
            verdicts.append(binascii.hexlify(again).decode())
    counts["errors"] = errors
    return counts, verdicts
