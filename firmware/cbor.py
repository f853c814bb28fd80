"""A small CBOR (RFC 8949) codec for both targets.

    from firmware import cbor
    b = cbor.dumps({"seq": 7, "t": 8000000, "v": [1, -2, 3.5]})
    cbor.loads(b)

Encoding is deterministic: shortest integer heads, map keys sorted by the
length and then the bytes of their encoding (RFC 7049 canonical order), floats in the shortest of half/single/double that keeps the
value exactly. Decoding accepts any well-formed CBOR of the types below and
raises ``CBORError`` (a ``ValueError``) for anything malformed, truncated or
unsupported, for text that is not well-formed UTF-8 (each chunk of an
indefinite-length string on its own), and for maps with duplicate keys
(well-formed but not valid CBOR; accepting them would let two readers see
different records), and nothing else. Keys that CBOR tells apart but
Python takes as equal (``0`` and ``false``) are kept apart as
``cbor_decode.Key``.

On CPython ``dumps`` is cbor2's encoder in canonical mode, byte for byte
the same as ``dumps_py`` (tests/test_cbor_cpython.py holds them to it).

Types, the same for every encoder on both targets (anything else raises
``CBORError``): int (to 64 bits either sign), bytes, str, list/tuple, dict,
float, bool, None, ``Tag(n, value)`` (n to 64 bits) and ``Simple(n)`` (n in
0..19 or 32..255; ``UNDEFINED`` is ``Simple(23)``), all three in
``firmware.cbor_base``. Indefinite-length items are decoded; ``undefined``
and simple values decode to ``Simple(n)``.
"""

import struct

from hal.compat import IS_MICROPYTHON, const
from hal.errors import CBORError

# cbor_base.MAX_DEPTH, as a const of this module: the encoder a device
# loads then needs no other (tests/test_import_layers.py holds the two equal)
_MAX_DEPTH = const(64)


def _head(out, major, n):
    mt = major << 5
    if n < 24:
        out.append(mt | n)
    elif n < 0x100:
        out.append(mt | 24)
        out.append(n)
    elif n < 0x10000:
        out.append(mt | 25)
        out.extend(struct.pack(">H", n))
    elif n < 0x100000000:
        out.append(mt | 26)
        out.extend(struct.pack(">I", n))
    elif n < 0x10000000000000000:
        out.append(mt | 27)
        out.extend(struct.pack(">Q", n))
    else:
        raise CBORError("integer too large for CBOR: %d" % n)


def _enc(out, obj, depth):
    if depth > _MAX_DEPTH:
        raise CBORError("nesting deeper than %d" % _MAX_DEPTH)
    if obj is True:
        out.append(0xF5)
    elif obj is False:
        out.append(0xF4)
    elif obj is None:
        out.append(0xF6)
    elif isinstance(obj, int):
        if obj >= 0:
            _head(out, 0, obj)
        else:
            _head(out, 1, -1 - obj)
    elif isinstance(obj, str):
        b = obj.encode("utf-8")
        _head(out, 3, len(b))
        out.extend(b)
    elif isinstance(obj, (bytes, bytearray, memoryview)):
        _head(out, 2, len(obj))
        out.extend(obj)
    elif isinstance(obj, (list, tuple)):
        _head(out, 4, len(obj))
        for x in obj:
            _enc(out, x, depth + 1)
    elif isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            kb = bytearray()
            _enc(kb, k, depth + 1)
            items.append((bytes(kb), v))
        # length first, then bytewise: RFC 7049 canonical order, as cbor2
        # writes with canonical=True
        items.sort(key=lambda kv: (len(kv[0]), kv[0]))
        _head(out, 5, len(items))
        prev = None
        for kb, v in items:
            if kb == prev:
                raise CBORError("duplicate map key")
            prev = kb
            out.extend(kb)
            _enc(out, v, depth + 1)
    else:
        # floats, Tag and Simple values are rare in a device's records:
        # written by a module loaded only then (which refuses the rest)
        from firmware.cbor_rare import encode

        encode(out, obj, depth, _enc, _head)


def dumps_py(obj):
    """The pure-Python encoder (MicroPython's, and the reference)."""
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


if IS_MICROPYTHON:
    dumps = dumps_py
    dumps_ordered = dumps_py
else:
    try:
        # cbor2's C encoder writes the same bytes; kept in a module of its
        # own so that a device never loads its code
        from firmware.linux.cbor_cpython import dumps, dumps_ordered
    except ImportError:
        dumps = dumps_py
        dumps_ordered = dumps_py


def loads(data):
    """Decode exactly one CBOR item occupying all of ``data``."""
    # the decoder lives apart so a device that only writes never loads it
    from firmware.cbor_decode import loads as _loads

    return _loads(data)
