"""CBOR decoding; see ``firmware.cbor`` (``cbor.loads`` calls this)."""

import struct

from firmware.cbor import _MAX_DEPTH, UNDEFINED, Simple, Tag
from hal.errors import CBORError


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
