"""Encoding floats, ``Tag`` and ``Simple`` values for ``firmware.cbor``,
which loads this module only when it meets one (a device's window
records hold none, and the heap of a small board is tight).

Floats in the shortest of half, single and double that keeps the value.
A tag is an integer 0..2**64-1 (a ``cbor_decode.Key``, a Tag with tag
None, is written as its value alone), a simple value one of 0..19, 23
(undefined) or 32..255 (20..22 are false, true and null, 24..31 are
reserved).
"""

import struct

from firmware.cbor_base import Simple, Tag
from hal.errors import CBORError


def _float(out, v):
    if v != v:
        out.extend(b"\xf9\x7e\x00")
        return
    m = v * 16777216
    if v and -1024 < m < 1024 and m == int(m):
        # a subnormal half (a multiple of 2**-24; MicroPython's pack(">e")
        # gets these wrong): the sign bit and that multiple
        h = struct.pack(">H", int(m) if m > 0 else 0x8000 - int(m))
    else:
        h = struct.pack(">e", v) if -65504.0 <= v <= 65504.0 or v in (float("inf"), float("-inf")) else None
    if h is not None and struct.unpack(">e", h)[0] == v:
        out.append(0xF9)
        out.extend(h)
        return
    try:
        s = struct.pack(">f", v)
    except OverflowError:
        s = None
    if s is not None and struct.unpack(">f", s)[0] == v:
        out.append(0xFA)
        out.extend(s)
        return
    out.append(0xFB)
    out.extend(struct.pack(">d", v))


def encode(out, obj, depth, enc, head):
    """Write a float, Tag or Simple ``obj``; refuse any other type.
    ``enc`` and ``head`` are firmware.cbor's (passed in so that this
    module imports nothing of that one)."""
    if isinstance(obj, float):
        _float(out, obj)
        return
    if isinstance(obj, Tag):
        n = obj.tag
        if n is not None:
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise CBORError("tag %r: CBOR tags are integers 0..2**64-1" % (n,))
            head(out, 6, n)
        enc(out, obj.value, depth + 1)
        return
    if not isinstance(obj, Simple):
        raise CBORError("cannot encode %s" % type(obj).__name__)
    v = obj.value
    if not isinstance(v, int) or isinstance(v, bool) or not (0 <= v < 20 or v == 23 or 31 < v < 256):
        raise CBORError("simple value %r: CBOR has 0..19, 23 (undefined) and 32..255" % (v,))
    if v < 24:
        out.append(0xE0 | v)
    else:
        out.append(0xF8)
        out.append(v)
