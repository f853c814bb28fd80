"""Journal framing, recovery and sequence numbers; the CBOR codec."""

from firmware import cbor
from firmware.journal import Journal, frame, scan
from hal.errors import CBORError, JournalError
from tests.dual._util import raises, tmp_path


def test_append_and_read_back():
    p = tmp_path("j.bin")
    j = Journal(p, "fsync")
    assert j.append({"k": "win", "t": 0}) == 1
    assert j.append({"k": "trip", "t": 8000000, "causes": [[4096, "x"]]}) == 2
    got = list(j.records())
    assert [s for s, _r in got] == [1, 2]
    assert got[1][1]["causes"] == [[4096, "x"]]
    j.close()


def test_sequence_continues_across_reopen():
    p = tmp_path("j.bin")
    j = Journal(p)
    for i in range(5):
        j.append({"i": i})
    j.close()
    j = Journal(p)
    assert j.count == 5
    assert j.append({"i": 5}) == 6
    j.close()


def test_torn_tail_is_truncated_at_every_offset():
    p = tmp_path("j.bin")
    j = Journal(p)
    for i in range(3):
        j.append({"i": i, "pad": "x" * i})
    j.close()
    with open(p, "rb") as f:
        data = f.read()
    ends = [off + 16 + len(pl) for off, _seq, pl in scan(data)]
    for cut in range(ends[1], len(data)):
        with open(p, "wb") as f:
            f.write(data[:cut])
        j = Journal(p)
        assert j.count == 2, cut
        assert j.recovered_bytes == cut - ends[1]
        assert j.append({"i": 9}) == 3
        j.close()
        assert [r["i"] for _s, r in Journal(p).records()] == [0, 1, 9]


def test_flipped_bit_stops_the_scan():
    p = tmp_path("j.bin")
    j = Journal(p)
    for i in range(3):
        j.append({"i": i})
    j.close()
    with open(p, "rb") as f:
        data = bytearray(f.read())
    data[len(data) - 3] ^= 0x10
    with open(p, "wb") as f:
        f.write(data)
    j = Journal(p)
    assert j.count == 2 and j.recovered_bytes > 0
    j.close()


def test_frame_layout():
    fr = frame(7, b"\xa0")
    assert fr[:4] == b"\x01\x00\x00\x00"
    assert fr[8:16] == b"\x07" + bytes(7)
    assert fr[16:] == b"\xa0"
    assert list(scan(fr)) == [(0, 7, b"\xa0")]
    # a flipped bit in the sequence number is caught by the CRC
    bad = bytearray(fr)
    bad[9] ^= 1
    assert list(scan(bytes(bad))) == []


def test_bad_durability_is_refused():
    raises(JournalError, Journal, tmp_path("j.bin"), "sometimes")


def test_cbor_round_trip_and_known_encodings():
    cases = [
        (0, "00"),
        (23, "17"),
        (24, "1818"),
        (1000000, "1a000f4240"),
        (18446744073709551615, "1bffffffffffffffff"),
        (-1, "20"),
        (-18446744073709551616, "3bffffffffffffffff"),
        (1.5, "f93e00"),
        (100000.0, "fa47c35000"),
        (1.1, "fb3ff199999999999a"),
        (False, "f4"),
        (None, "f6"),
        ("IETF", "6449455446"),
        (b"\x01\x02", "420102"),
        ([1, [2, 3]], "8201820203"),
        ({"b": 1, "a": 2}, "a2616102616201"),
    ]
    import binascii

    for value, hexed in cases:
        enc = cbor.dumps(value)
        assert binascii.hexlify(enc).decode() == hexed, (value, enc)
        assert cbor.loads(enc) == value


def test_cbor_malformed_raises_only_cborerror():
    import binascii

    for hexed in ("", "18", "1c", "5f01ff", "62ff", "a1", "9f", "ff", "8201", "0000", "7f61ff", "fb0000", "f818", "a201020102"):
        raises(CBORError, cbor.loads, binascii.unhexlify(hexed))
