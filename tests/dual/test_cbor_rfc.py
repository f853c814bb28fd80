"""RFC 8949 Appendix A: every example decodes, on both targets, and the
ones in preferred serialization encode back to the same bytes.

Skipped, with the reason: none. Bignums (tags 2 and 3) decode as
``Tag(2 | 3, bytes)``: a device has no integers past 64 bits to turn them
into, and the records never carry them; the value is kept, not lost.
"""

import binascii
import math

from firmware import cbor
from firmware.cbor_base import UNDEFINED, Simple, Tag

INF = float("inf")
NAN = float("nan")

# (hex, value, encodes back to the same bytes)
EXAMPLES = [
    ("00", 0, True),
    ("01", 1, True),
    ("0a", 10, True),
    ("17", 23, True),
    ("1818", 24, True),
    ("1819", 25, True),
    ("1864", 100, True),
    ("1903e8", 1000, True),
    ("1a000f4240", 1000000, True),
    ("1b000000e8d4a51000", 1000000000000, True),
    ("1bffffffffffffffff", 18446744073709551615, True),
    ("c249010000000000000000", Tag(2, b"\x01" + bytes(8)), True),
    ("3bffffffffffffffff", -18446744073709551616, True),
    ("c349010000000000000000", Tag(3, b"\x01" + bytes(8)), True),
    ("20", -1, True),
    ("29", -10, True),
    ("3863", -100, True),
    ("3903e7", -1000, True),
    ("f90000", 0.0, True),
    ("f98000", -0.0, True),
    ("f93c00", 1.0, True),
    ("fb3ff199999999999a", 1.1, True),
    ("f93e00", 1.5, True),
    ("f97bff", 65504.0, True),
    ("fa47c35000", 100000.0, True),
    ("fa7f7fffff", 3.4028234663852886e38, True),
    ("fb7e37e43c8800759c", 1.0e300, True),
    ("f90001", 5.960464477539063e-8, True),
    ("f90400", 0.00006103515625, True),
    ("f9c400", -4.0, True),
    ("fbc010666666666666", -4.1, True),
    ("f97c00", INF, True),
    ("f97e00", NAN, True),
    ("f9fc00", -INF, True),
    ("fa7f800000", INF, False),
    ("fa7fc00000", NAN, False),
    ("faff800000", -INF, False),
    ("fb7ff0000000000000", INF, False),
    ("fb7ff8000000000000", NAN, False),
    ("fbfff0000000000000", -INF, False),
    ("f4", False, True),
    ("f5", True, True),
    ("f6", None, True),
    ("f7", UNDEFINED, True),
    ("f0", Simple(16), True),
    ("f8ff", Simple(255), True),
    ("c074323031332d30332d32315432303a30343a30305a", Tag(0, "2013-03-21T20:04:00Z"), True),
    ("c11a514b67b0", Tag(1, 1363896240), True),
    ("c1fb41d452d9ec200000", Tag(1, 1363896240.5), True),
    ("d74401020304", Tag(23, b"\x01\x02\x03\x04"), True),
    ("d818456449455446", Tag(24, b"dIETF"), True),
    ("d82076687474703a2f2f7777772e6578616d706c652e636f6d", Tag(32, "http://www.example.com"), True),
    ("40", b"", True),
    ("4401020304", b"\x01\x02\x03\x04", True),
    ("60", "", True),
    ("6161", "a", True),
    ("6449455446", "IETF", True),
    ("62225c", '"\\', True),
    ("62c3bc", "\u00fc", True),
    ("63e6b0b4", "\u6c34", True),
    ("64f0908591", "\U00010151", True),
    ("80", [], True),
    ("83010203", [1, 2, 3], True),
    ("8301820203820405", [1, [2, 3], [4, 5]], True),
    ("98190102030405060708090a0b0c0d0e0f101112131415161718181819", list(range(1, 26)), True),
    ("a0", {}, True),
    ("a201020304", {1: 2, 3: 4}, True),
    ("a26161016162820203", {"a": 1, "b": [2, 3]}, True),
    ("826161a161626163", ["a", {"b": "c"}], True),
    ("a56161614161626142616361436164614461656145", {"a": "A", "b": "B", "c": "C", "d": "D", "e": "E"}, True),
    ("5f42010243030405ff", b"\x01\x02\x03\x04\x05", False),
    ("7f657374726561646d696e67ff", "streaming", False),
    ("9fff", [], False),
    ("9f018202039f0405ffff", [1, [2, 3], [4, 5]], False),
    ("9f01820203820405ff", [1, [2, 3], [4, 5]], False),
    ("83018202039f0405ff", [1, [2, 3], [4, 5]], False),
    ("83019f0203ff820405", [1, [2, 3], [4, 5]], False),
    ("9f0102030405060708090a0b0c0d0e0f101112131415161718181819ff", list(range(1, 26)), False),
    ("bf61610161629f0203ffff", {"a": 1, "b": [2, 3]}, False),
    ("826161bf61626163ff", ["a", {"b": "c"}], False),
    ("bf6346756ef563416d7421ff", {"Fun": True, "Amt": -2}, False),
]


def _same(a, b):
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return a == b and type(a) is type(b)


def test_every_appendix_a_example_decodes():
    for hexed, value, _ in EXAMPLES:
        got = cbor.loads(binascii.unhexlify(hexed))
        assert _same(got, value), (hexed, got, value)


def test_preferred_encodings_round_trip():
    for hexed, value, preferred in EXAMPLES:
        if preferred:
            assert binascii.hexlify(cbor.dumps_py(value)).decode() == hexed, hexed


def _hex(b):
    return binascii.unhexlify(b)


def test_keys_python_takes_as_equal_are_kept_apart():
    from firmware.cbor_decode import Key

    # {0: "a", false: "b"} and {1: "a", 1.0: "b"}: valid CBOR, no duplicates
    for hexed, first, second in (("a2006161f46162", 0, False), ("a2016161f93c006162", 1, 1.0)):
        d = cbor.loads(_hex(hexed))
        assert len(d) == 2 and d[Key(first)] == "a" and d[Key(second)] == "b", d
        # neither value is read under the other key, nor under the bare one
        assert first not in d and Key(first) != Key(second)
        assert cbor.dumps(d) == cbor.dumps_py(d) == _hex(hexed)
    # three of a group, and a key of another group beside them
    d = cbor.loads(_hex("a4f46161006162f900006163f56164"))
    assert d == {Key(False): "a", Key(0): "b", Key(0.0): "c", True: "d"}, d
    # arrays of them too: [0] and [false]
    d = cbor.loads(_hex("a2810061618201f46162"))
    assert d == {(0,): "a", (1, False): "b"}
    d = cbor.loads(_hex("a28100616181f46162"))
    assert d == {Key((0,)): "a", Key((False,)): "b"}, d


def test_real_duplicate_keys_are_still_refused():
    from hal.errors import CBORError
    from tests.dual._util import raises

    # 0 twice; 0 in its preferred and a longer head; false twice after 0
    # made a group; 1.0 as half and as single float; [0] twice
    for hexed in ("a2006161006162", "a200616118006162", "a3006161f46162f46163", "a2f93c006161fa3f8000006162", "a28100616181006162"):
        e = raises(CBORError, cbor.loads, _hex(hexed))
        assert "duplicate map key" in str(e), (hexed, e)


def test_a_character_split_across_text_chunks_is_refused():
    from hal.errors import CBORError
    from tests.dual._util import raises

    # "é" (c3 a9) as two chunks of one byte each: RFC 8949 3.2.3
    e = raises(CBORError, cbor.loads, _hex("7f61c361a9ff"))
    assert "UTF-8" in str(e)
    assert cbor.loads(_hex("7f62c3a9ff")) == "\u00e9"
    assert cbor.loads(_hex("7f6161626263ff")) == "abc"


def test_ill_formed_utf8_is_refused_on_both_targets():
    from hal.errors import CBORError
    from tests.dual._util import raises

    # overlong NUL (2 and 3 bytes), a surrogate, a code point past U+10FFFF,
    # a lead byte past f4, a lone continuation byte, a cut sequence
    for hexed in ("62c080", "63e08080", "63eda080", "64f4908080", "64f5808080", "6180", "62e282"):
        raises(CBORError, cbor.loads, _hex(hexed))
    for hexed, s in (("62c3bc", "\u00fc"), ("63e6b0b4", "\u6c34"), ("64f0908591", "\U00010151"), ("63ed9fbf", "\ud7ff"), ("64f48fbfbf", "\U0010ffff")):
        assert cbor.loads(_hex(hexed)) == s, hexed


# (value, its encoding, or None: refused) the same on both targets, and
# for every encoder a target has
ENCODABLE = [
    (Tag(2, b"\x01" + bytes(8)), "c249010000000000000000"),
    (Tag(32, "a"), "d8206161"),
    (Simple(16), "f0"),
    (Simple(255), "f8ff"),
    (UNDEFINED, "f7"),
    ({"u": UNDEFINED, "t": Tag(1, 2)}, "a26174c1026175f7"),
    (2**64 - 1, "1bffffffffffffffff"),
    (-(2**64), "3bffffffffffffffff"),
    ({"n": [2**64 - 1]}, "a1616e811bffffffffffffffff"),
    (2**64, None),
    (-(2**64) - 1, None),
    ({"n": [2**64]}, None),
    ({2**70: 1}, None),
    (Simple(20), None),
    (Simple(24), None),
    (Simple(256), None),
    (Tag(-1, 0), None),
    (Tag(2**64, 0), None),
    ({"s": set()}, None),
    (object(), None),
]


def test_both_encoders_agree_on_what_can_be_encoded():
    from hal.errors import CBORError
    from tests.dual._util import raises

    for value, hexed in ENCODABLE:
        for dumps in (cbor.dumps, cbor.dumps_ordered, cbor.dumps_py):
            if hexed is None:
                raises(CBORError, dumps, value)
            else:
                assert binascii.hexlify(dumps(value)).decode() == hexed, (value, dumps)


def test_subnormal_halves_encode_as_halves_on_both_targets():
    # MicroPython's struct.pack(">e") gets subnormal halves wrong, so a
    # device once wrote these as single floats, CPython as halves
    for hexed in ("f98202", "f903ff", "f98001", "f90200", "f98000"):
        v = cbor.loads(_hex(hexed))
        for dumps in (cbor.dumps, cbor.dumps_py):
            assert binascii.hexlify(dumps(v)).decode() == hexed, (hexed, v, dumps)
    # not a multiple of 2**-24: a single float
    assert binascii.hexlify(cbor.dumps_py(2.0**-25)).decode() == "fa33000000"
