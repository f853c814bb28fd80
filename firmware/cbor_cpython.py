"""CBOR on CPython: cbor2's C encoder, writing the same bytes as the
pure-Python encoder in firmware/cbor.py (canonical key order, shortest
floats); tests/test_cbor_cpython.py holds the two to that. MicroPython
never loads this module.
"""

import cbor2 as _cbor2

from hal.errors import CBORError

_ORDER = {}
_PLAIN = frozenset((int, str, bytes, bool, type(None)))


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


def dumps(obj):
    try:
        # sorting keys is most of cbor2's canonical cost: when the
        # value has maps of text keys and no floats, put the keys in
        # canonical order here (the order is cached per key set) and
        # let the plain encoder write the very same bytes
        plain = _plain_form(obj)
        if plain is not None:
            return _cbor2.dumps(plain)
        return _cbor2.dumps(obj, canonical=True)
    except Exception as e:
        raise CBORError("cannot encode: %s" % (e,))


def dumps_ordered(obj):
    """``dumps`` for a value the caller built in canonical form: maps
    with text keys in canonical order and no floats (the recorder's
    window records). cbor2's plain encoder then writes the canonical
    bytes; tests/test_cbor_cpython.py holds the recorder to that."""
    try:
        return _cbor2.dumps(obj)
    except Exception as e:
        raise CBORError("cannot encode: %s" % (e,))
