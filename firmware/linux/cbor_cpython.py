"""CBOR on CPython: C encoders writing the same bytes as the pure-Python
encoder in firmware/cbor.py (canonical key order, shortest floats);
tests/test_cbor_cpython.py holds them to that. MicroPython never loads
this module.

libipld's DAG-CBOR encoder goes first: it sorts keys in the same
canonical order, and takes only text-keyed maps, lists, text, bytes,
integers within CBOR's 64 bits, floats, booleans and None (and its own
CID type, as tag 42), refusing the rest. orjson screens a value first:
only exact types and no bytes, nested less than 255 deep. libipld
writes every float in 8 bytes where the canonical form is the shortest,
so a value whose encoding may hold a float or a tag (a 0xfb or 0xd8
byte), or that nests too deep, goes to cbor2 instead. Without libipld
or orjson, cbor2 does it all.

It encodes what the pure-Python encoder encodes and refuses what that one
refuses (integers past 64 bits, which cbor2 would write as bignums, and
any type that encoder does not know, such as ``set`` or ``datetime``):
a value is encodable or not the same on both targets.
"""

import re

import cbor2 as _cbor2

from firmware.cbor_base import MAX_DEPTH as _MAX_DEPTH
from firmware.cbor_base import Simple, Tag
from hal.errors import CBORError

_U64 = 0x10000000000000000
# a tag or simple-value head: where cbor2 alone could have written a value
# that the pure-Python encoder refuses (a bignum, a datetime, a set)
_TAG_OR_SIMPLE = re.compile(b"[\xc0-\xdb\xe0-\xf8]")

# every byte but an array's or a map's head: what is left of an encoding
# once they are deleted counts its containers, or more (a payload byte
# may look like one), so no more than MAX_DEPTH of them proves the
# nesting no deeper
_NOT_CONTAINER = bytes(b for b in range(256) if not 0x80 <= b <= 0xBF)
# the same, keeping also a float64's head and a one-byte tag's (libipld's
# float and its CID tag)
_NOT_SUSPECT = bytes(b for b in range(256) if not (0x80 <= b <= 0xBF or b == 0xD8 or b == 0xFB))
# tag 37, which cbor2 writes for a uuid.UUID (one type orjson takes, below)
_UUID_TAG = b"\xd8\x25"

try:
    import orjson as _orjson
except ImportError:  # optional: _check does it all
    _orjson = None

try:
    from libipld import encode_dag_cbor as _ipld
except ImportError:  # optional: cbor2 does it all
    _ipld = None
if _orjson is None:
    # orjson screens what libipld may take (_ipld_form)
    _ipld = None
_ORJSON_STRICT = _orjson.OPT_PASSTHROUGH_DATETIME | _orjson.OPT_PASSTHROUGH_SUBCLASS | _orjson.OPT_PASSTHROUGH_DATACLASS if _orjson else 0

_ORDER = {}
_PLAIN = frozenset((int, str, bytes, bool, type(None)))
# items _check passes without a look (no int: it may be past 64 bits)
_LEAVES = frozenset((str, bytes, bytearray, bool, type(None), float))


def _canonical_order(ks):
    """The canonical order of a key set not seen before (then kept in
    _ORDER, which _plain_form looks in first), or None for non-text keys."""
    for k in ks:
        if type(k) is not str:
            return None
    # length first, then bytewise (a text key's header grows with its length)
    order = tuple(sorted(ks, key=lambda k: (len(k.encode()), k.encode())))
    if len(_ORDER) < 4096:
        _ORDER[ks] = order
    return order


def _plain_form(obj):
    """``obj`` with every map in canonical key order, or None when it
    holds anything (a float, a tag, a non-text key) whose plain cbor2
    encoding could differ from the canonical one."""
    t = type(obj)
    if t is dict:
        ks = tuple(obj)
        order = _ORDER.get(ks)
        if order is None:
            order = _canonical_order(ks)
            if order is None:
                return None
        if order == ks:
            for v in obj.values():
                tv = type(v)
                if tv in _PLAIN or ((tv is list or tv is tuple) and _PLAIN.issuperset(map(type, v))):
                    continue
                w = _plain_form(v)
                if w is None:
                    return None
                if w is not v:
                    break
            else:
                # canonical all the way down: the caller's own object
                return obj
        out = {}
        for k in order:
            w = _plain_form(obj[k])
            if w is None:
                return None
            out[k] = w
        return out
    if t is list or t is tuple:
        if _PLAIN.issuperset(map(type, obj)):
            return obj
        out = []
        same = True
        for v in obj:
            w = v
            if type(v) not in _PLAIN:
                w = _plain_form(v)
                if w is None:
                    return None
                same = same and w is v
            out.append(w)
        return obj if same else out
    return obj if t in _PLAIN else None


def _check(obj, depth=0):
    """Raise CBORError where the pure-Python encoder would; True when
    ``obj`` holds a memoryview (which cbor2 would write as an array)."""
    # the journal's records come here often (their integers' bytes look
    # like tag heads to dumps_ordered's search): maps and lists of exact
    # plain types are checked without a call per item; anything else, and
    # anything near the depth bound, takes the general path below
    t = type(obj)
    if depth < _MAX_DEPTH and (t is dict or t is list or t is tuple):
        views = False
        for v in obj.values() if t is dict else obj:
            tv = type(v)
            if tv is int:
                if not -_U64 <= v < _U64:
                    raise CBORError("integer outside CBOR's 64 bits: %d" % v)
            elif tv not in _LEAVES:
                views = _check(v, depth + 1) or views
        if t is dict:
            for k in obj:
                if type(k) is not str:
                    _check(k, depth + 1)
        return views
    if depth > _MAX_DEPTH:
        raise CBORError("nesting deeper than %d" % _MAX_DEPTH)
    if obj is None or obj is True or obj is False or isinstance(obj, (float, str, bytes, bytearray)):
        return False
    views = False
    if isinstance(obj, memoryview):
        return True
    if isinstance(obj, int):
        if not -_U64 <= obj < _U64:
            raise CBORError("integer outside CBOR's 64 bits: %d" % obj)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            views = _check(v, depth + 1) or views
    elif isinstance(obj, dict):
        for k, v in obj.items():
            _check(k, depth + 1)
            views = _check(v, depth + 1) or views
    elif isinstance(obj, Tag):
        if obj.tag is not None and not (type(obj.tag) is int and 0 <= obj.tag < _U64):
            raise CBORError("tag %r: CBOR tags are integers 0..2**64-1" % (obj.tag,))
        views = _check(obj.value, depth + 1)
    elif isinstance(obj, Simple):
        v = obj.value
        if not (type(v) is int and (0 <= v < 20 or v == 23 or 31 < v < 256)):
            raise CBORError("simple value %r: CBOR has 0..19, 23 (undefined) and 32..255" % (v,))
    else:
        raise CBORError("cannot encode %s" % type(obj).__name__)
    return views


def _without_views(obj):
    """``obj`` with every memoryview (a map value, an item) as bytes."""
    if isinstance(obj, memoryview):
        return bytes(obj)
    if isinstance(obj, list):
        return [_without_views(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_without_views(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _without_views(v) for k, v in obj.items()}
    if isinstance(obj, Tag) and obj.tag is not None:
        return Tag(obj.tag, _without_views(obj.value))
    return obj


def _default(encoder, obj):
    """cbor2's hook for the types it does not know (already checked)."""
    if isinstance(obj, Tag):
        # tag None: a map key kept apart by the decoder (cbor_decode.Key)
        encoder.encode(obj.value if obj.tag is None else _cbor2.CBORTag(obj.tag, obj.value))
    elif isinstance(obj, Simple):
        encoder.encode(_cbor2.undefined if obj.value == 23 else _cbor2.CBORSimpleValue(obj.value))
    else:
        raise CBORError("cannot encode %s" % type(obj).__name__)


def _ipld_form(obj):
    """libipld's encoding of ``obj`` when it is the canonical one, or None."""
    # orjson first, in C: it passes only exact types, which libipld reads
    # as the pure-Python encoder does (a subclass may override items() or
    # __iter__; libipld reads the storage beneath), and it stops at 254
    # levels, where libipld would recurse as deep as Python's recursion
    # limit allows, past what a thread's stack holds. It refuses bytes
    # too: a value carrying encoded records (a batch) would nearly always
    # hold a byte that looks like a float's head, so libipld's work on it
    # would be thrown away
    if not _json_plain(obj):
        return None
    try:
        out = _ipld(obj)
    except Exception:
        # a type, a key or a number it refuses: cbor2's answer
        return None
    # what may be a container's head, a tag's or a float's: few bytes
    rest = out.translate(None, _NOT_SUSPECT)
    # an int, not a bytes, to look for: bytes' "in" tries the int first
    # and clears the exception, which costs more than the search
    if 0xFB in rest or 0xD8 in rest:
        return None
    if len(rest) > _MAX_DEPTH:
        # maybe too deep: refused here, before any C encoder recurses
        # into it; otherwise those bytes were data
        _check(obj)
    return out


def dumps(obj):
    if _ipld is not None:
        out = _ipld_form(obj)
        if out is not None:
            return out
    try:
        # sorting keys is most of cbor2's canonical cost: when the
        # value has maps of text keys and no floats, put the keys in
        # canonical order here (the order is cached per key set) and
        # let the plain encoder write the very same bytes
        plain = _plain_form(obj)
        if plain is not None:
            out = _cbor2.dumps(plain)
            if b"\xc2" in out or b"\xc3" in out or _deep(out):
                _check(obj)  # a bignum head or deep nesting, or only bytes that look like them
            return out
    except CBORError:
        raise
    except Exception as e:
        raise CBORError("cannot encode: %s" % (e,))
    if _check(obj):
        obj = _without_views(obj)
    try:
        return _cbor2.dumps(obj, canonical=True, default=_default)
    except Exception as e:
        raise CBORError("cannot encode: %s" % (e,))


def _deep(out):
    """True when ``out`` may nest deeper than MAX_DEPTH (the exact answer
    is _check's)."""
    return len(out) > _MAX_DEPTH and len(out.translate(None, _NOT_CONTAINER)) > _MAX_DEPTH


def _json_plain(obj):
    """True when orjson takes ``obj`` as it is: maps with text keys,
    lists, tuples, text, integers from -2**63 to 2**64-1, floats, booleans
    and None, each of its exact type (or a uuid.UUID, which the caller
    looks for). Done in C, this is a tenth of _check's time on a window
    record: the journal's records take the check this way."""
    if _orjson is None:
        return False
    try:
        _orjson.dumps(obj, option=_ORJSON_STRICT)
    except TypeError:
        return False
    return True


def dumps_ordered(obj):
    """``dumps`` for a value the caller built in canonical form: maps
    with text keys in canonical order and no floats (the recorder's
    window records), and no memoryview. cbor2's plain encoder then writes
    the canonical bytes; tests/test_cbor_cpython.py holds the recorder to
    that."""
    if _ipld is not None:
        out = _ipld_form(obj)
        if out is not None:
            return out
    try:
        out = _cbor2.dumps(obj)
    except Exception:
        return dumps(obj)  # a Tag, a Simple: the general encoder's answer
    # a window record's integers have bytes that look like tag heads: the
    # search finds one in most of them, orjson then clears them
    if _deep(out) or (_TAG_OR_SIMPLE.search(out) and (_UUID_TAG in out or not _json_plain(obj))):
        _check(obj)
    return out
