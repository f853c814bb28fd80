"""Encoding ``Tag`` and ``Simple`` values for ``firmware.cbor``, which
loads this module only when it meets one (a device's records hold none).
Both checked here: a tag is an integer 0..2**64-1 (a ``cbor_decode.Key``,
a Tag with tag None, is written as its value alone), a simple value one
of 0..19, 23 (undefined) or 32..255 (20..22 are false, true and null,
24..31 are reserved).
"""

from firmware.cbor import Tag, _enc, _head
from hal.errors import CBORError


def encode(out, obj, depth):
    if isinstance(obj, Tag):
        n = obj.tag
        if n is not None:
            if not isinstance(n, int) or isinstance(n, bool) or n < 0:
                raise CBORError("tag %r: CBOR tags are integers 0..2**64-1" % (n,))
            _head(out, 6, n)
        _enc(out, obj.value, depth + 1)
        return
    v = obj.value
    if not isinstance(v, int) or isinstance(v, bool) or not (0 <= v < 20 or v == 23 or 31 < v < 256):
        raise CBORError("simple value %r: CBOR has 0..19, 23 (undefined) and 32..255" % (v,))
    if v < 24:
        out.append(0xE0 | v)
    else:
        out.append(0xF8)
        out.append(v)
