"""A small CBOR (RFC 8949) codec for both targets.

    from firmware import cbor
    b = cbor.dumps({"seq": 7, "t": 8000000, "v": [1, -2, 3.5]})
    cbor.loads(b)

Encoding is deterministic: shortest integer heads, map keys sorted by their
encoded bytes, floats in the shortest of half/single/double that keeps the
value exactly. Decoding accepts any well-formed CBOR of the types below and
raises ``CBORError`` (a ``ValueError``) for anything malformed, truncated or
unsupported, and for maps with duplicate keys (well-formed but not valid
CBOR; accepting them would let two readers see different records), and
nothing else.

Types: int (to 64 bits either sign), bytes, str, list/tuple, dict, float,
bool, None, and ``Tag(n, value)``. Indefinite-length items are decoded;
``undefined`` and simple values decode to ``Simple(n)``.
"""

import struct

from hal.errors import CBORError

_MAX_DEPTH = 64


class Tag:
    def __init__(self, tag, value):
        self.tag = tag
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Tag) and other.tag == self.tag and other.value == self.value

    def __repr__(self):
        return "Tag(%d, %r)" % (self.tag, self.value)


class Simple:
    def __init__(self, value):
        self.value = value

    def __eq__(self, other):
        return isinstance(other, Simple) and other.value == self.value

    def __repr__(self):
        return "Simple(%d)" % self.value


UNDEFINED = Simple(23)


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


def _float(out, v):
    if v != v:
        out.extend(b"\xf9\x7e\x00")
        return
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
    elif isinstance(obj, float):
        _float(out, obj)
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
        items.sort(key=lambda kv: kv[0])
        _head(out, 5, len(items))
        prev = None
        for kb, v in items:
            if kb == prev:
                raise CBORError("duplicate map key")
            prev = kb
            out.extend(kb)
            _enc(out, v, depth + 1)
    elif isinstance(obj, Tag):
        _head(out, 6, obj.tag)
        _enc(out, obj.value, depth + 1)
    elif isinstance(obj, Simple):
        if obj.value < 24:
            out.append(0xE0 | obj.value)
        else:
            out.append(0xF8)
            out.append(obj.value)
    else:
        raise CBORError("cannot encode %s" % type(obj).__name__)


def dumps(obj):
    out = bytearray()
    _enc(out, obj, 0)
    return bytes(out)


def dump_into(out, obj):
    """Append the encoding of ``obj`` to the bytearray ``out``."""
    _enc(out, obj, 0)


class _Reader:
    def __init__(self, data):
        self.b = data
        self.i = 0

    def take(self, n):
        i = self.i
        if n < 0 or i + n > len(self.b):
            raise CBORError("truncated at offset %d (wanted %d bytes)" % (i, n))
        self.i = i + n
        return self.b[i : i + n]

    def byte(self):
        i = self.i
        if i >= len(self.b):
            raise CBORError("truncated at offset %d" % i)
        self.i = i + 1
        return self.b[i]


_BREAK = object()


def _arg(r, ai):
    if ai < 24:
        return ai
    if ai == 24:
        return r.byte()
    if ai == 25:
        return struct.unpack(">H", r.take(2))[0]
    if ai == 26:
        return struct.unpack(">I", r.take(4))[0]
    if ai == 27:
        return struct.unpack(">Q", r.take(8))[0]
    raise CBORError("reserved additional information %d at offset %d" % (ai, r.i - 1))


def _text(b):
    try:
        return bytes(b).decode("utf-8")
    except (UnicodeError, ValueError):
        raise CBORError("invalid UTF-8 in text string")


def _dec(r, depth):
    if depth > _MAX_DEPTH:
        raise CBORError("nesting deeper than %d" % _MAX_DEPTH)
    ib = r.byte()
    major = ib >> 5
    ai = ib & 0x1F
    if major == 7:
        if ai < 20:
            return Simple(ai)
        if ai == 20:
            return False
        if ai == 21:
            return True
        if ai == 22:
            return None
        if ai == 23:
            return UNDEFINED
        if ai == 24:
            v = r.byte()
            if v < 32:
                raise CBORError("invalid two-byte simple value %d" % v)
            return Simple(v)
        if ai == 25:
            return struct.unpack(">e", r.take(2))[0]
        if ai == 26:
            return struct.unpack(">f", r.take(4))[0]
        if ai == 27:
            return struct.unpack(">d", r.take(8))[0]
        if ai == 31:
            return _BREAK
        raise CBORError("reserved simple encoding %d" % ai)
    if ai == 31:
        if major in (0, 1, 6):
            raise CBORError("indefinite length not allowed for major type %d" % major)
        if major in (2, 3):
            parts = []
            while True:
                ib2 = r.byte()
                if ib2 == 0xFF:
                    break
                if ib2 >> 5 != major or ib2 & 0x1F == 31:
                    raise CBORError("bad chunk in indefinite string")
                parts.append(bytes(r.take(_arg(r, ib2 & 0x1F))))
            b = b"".join(parts)
            return b if major == 2 else _text(b)
        if major == 4:
            out = []
            while True:
                v = _dec(r, depth + 1)
                if v is _BREAK:
                    return out
                out.append(v)
        out = {}
        while True:
            k = _dec(r, depth + 1)
            if k is _BREAK:
                return out
            v = _dec(r, depth + 1)
            if v is _BREAK:
                raise CBORError("map ended between key and value")
            _put(out, k, v)
    n = _arg(r, ai)
    if major == 0:
        return n
    if major == 1:
        return -1 - n
    if major == 2:
        return bytes(r.take(n))
    if major == 3:
        return _text(r.take(n))
    if major == 4:
        if n > len(r.b) - r.i:
            raise CBORError("array of %d items cannot fit in %d bytes" % (n, len(r.b) - r.i))
        out = []
        for _ in range(n):
            v = _dec(r, depth + 1)
            if v is _BREAK:
                raise CBORError("unexpected break")
            out.append(v)
        return out
    if major == 5:
        if 2 * n > len(r.b) - r.i:
            raise CBORError("map of %d pairs cannot fit in %d bytes" % (n, len(r.b) - r.i))
        out = {}
        for _ in range(n):
            k = _dec(r, depth + 1)
            v = _dec(r, depth + 1)
            if k is _BREAK or v is _BREAK:
                raise CBORError("unexpected break")
            _put(out, k, v)
        return out
    v = _dec(r, depth + 1)
    if v is _BREAK:
        raise CBORError("unexpected break")
    return Tag(n, v)


def _put(d, k, v):
    if isinstance(k, list):
        k = tuple(k)
    try:
        if k in d:
            raise CBORError("duplicate map key %r" % (k,))
        d[k] = v
    except TypeError:
        raise CBORError("map key of unhashable type %s" % type(k).__name__)


def loads(data):
    """Decode exactly one CBOR item occupying all of ``data``."""
    r = _Reader(data)
    try:
        v = _dec(r, 0)
    except CBORError:
        raise
    except Exception as e:  # struct, recursion: anything malformed input can provoke
        raise CBORError("malformed CBOR: %s" % (e,))
    if v is _BREAK:
        raise CBORError("unexpected break")
    if r.i != len(data):
        raise CBORError("%d trailing bytes after the item" % (len(data) - r.i))
    return v
