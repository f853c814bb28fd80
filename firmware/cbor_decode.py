"""CBOR decoding; see ``firmware.cbor`` (``cbor.loads`` calls this).

Map keys that CBOR tells apart but Python takes as equal (``0``,
``false`` and ``0.0``; ``1`` and ``1.0``; arrays of them) are not
duplicates: when a map has more than one of such a group, each of them is
kept as a ``Key(value)``, which compares equal only to a key of the same
CBOR type and value, so no value is lost or read under another key::

    loads(bytes.fromhex("a200610af46162"))   # {Key(0): "a", Key(False): "b"}
"""

import struct

from firmware.cbor_base import MAX_DEPTH as _MAX_DEPTH
from firmware.cbor_base import UNDEFINED, Simple, Tag
from hal.compat import IS_MICROPYTHON
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


_MP = IS_MICROPYTHON


class Key(Tag):
    """A map key that Python would confuse with another key of the map."""

    def __init__(self, value):
        # tag None: the encoders write the value alone
        Tag.__init__(self, None, value)

    def __eq__(self, other):
        return isinstance(other, Key) and _kind(other.value) == _kind(self.value)

    def __hash__(self):
        return hash(_kind(self.value))

    def __repr__(self):
        return "Key(%r)" % (self.value,)


def _kind(v):
    """A key with its CBOR type: equal only for equal CBOR data items."""
    if isinstance(v, tuple):
        return ("array",) + tuple(_kind(x) for x in v)
    return (type(v).__name__, v)


# (lead bytes, continuation bytes, first continuation's range): RFC 3629's
# table of well-formed sequences
_UTF8 = (
    (0xC2, 0xDF, 1, 0x80, 0xBF),
    (0xE0, 0xE0, 2, 0xA0, 0xBF),
    (0xE1, 0xEC, 2, 0x80, 0xBF),
    (0xED, 0xED, 2, 0x80, 0x9F),
    (0xEE, 0xEF, 2, 0x80, 0xBF),
    (0xF0, 0xF0, 3, 0x90, 0xBF),
    (0xF1, 0xF3, 3, 0x80, 0xBF),
    (0xF4, 0xF4, 3, 0x80, 0x8F),
)


def _well_formed(b):
    """MicroPython's decode lets overlong forms, surrogates and code points
    past U+10FFFF through; CPython's refuses them, and so does this."""
    i = 0
    n = len(b)
    while i < n:
        c = b[i]
        i += 1
        if c < 0x80:
            continue
        row = None
        for r in _UTF8:
            if r[0] <= c <= r[1]:
                row = r
                break
        if row is None:
            return False
        k = row[2]
        if i + k > n or not row[3] <= b[i] <= row[4]:
            return False
        for j in range(i + 1, i + k):
            if not 0x80 <= b[j] <= 0xBF:
                return False
        i += k
    return True


def _text(b):
    b = bytes(b)
    try:
        s = b.decode("utf-8")
    except (UnicodeError, ValueError):
        s = None
    if s is None or (_MP and not _well_formed(b)):
        raise CBORError("invalid UTF-8 in text string")
    return s


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
            if major == 2:
                return b"".join(parts)
            # each chunk is a text string of its own: a character split
            # across two chunks is invalid (RFC 8949 3.2.3)
            return "".join([_text(p) for p in parts])
        if major == 4:
            out = []
            while True:
                v = _dec(r, depth + 1)
                if v is _BREAK:
                    return out
                out.append(v)
        out = {}
        grouped = False
        while True:
            k = _dec(r, depth + 1)
            if k is _BREAK:
                return out
            v = _dec(r, depth + 1)
            if v is _BREAK:
                raise CBORError("map ended between key and value")
            grouped = _put(out, k, v, grouped)
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
        grouped = False
        for _ in range(n):
            k = _dec(r, depth + 1)
            v = _dec(r, depth + 1)
            if k is _BREAK or v is _BREAK:
                raise CBORError("unexpected break")
            grouped = _put(out, k, v, grouped)
        return out
    v = _dec(r, depth + 1)
    if v is _BREAK:
        raise CBORError("unexpected break")
    return Tag(n, v)


def _put(d, k, v, grouped):
    """d[k] = v, refusing a duplicate key. ``grouped``: d holds Keys
    already (returned, for the map's next key)."""
    if isinstance(k, list):
        k = tuple(k)
    try:
        # only numbers, booleans and arrays of them can meet their like
        if k in d or (grouped and type(k) not in (str, bytes) and [e for e in d if isinstance(e, Key) and e.value == k]):
            kind = _kind(k)
            same = [e for e in d if (e.value if isinstance(e, Key) else e) == k]
            for e in same:
                if _kind(e.value if isinstance(e, Key) else e) == kind:
                    raise CBORError("duplicate map key %r" % (k,))
            # equal in Python, different in CBOR: every key of the group
            # becomes a Key (order kept), so none is read as another
            items = list(d.items())
            d.clear()
            for e, x in items:
                d[Key(e) if e in same and not isinstance(e, Key) else e] = x
            k = Key(k)
            grouped = True
        d[k] = v
    except TypeError:
        raise CBORError("map key of unhashable type %s" % type(k).__name__)
    return grouped


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
