"""The store: framing, recovery, sequence numbers, priorities, bounds,
TTL and acknowledgement; the CBOR codec."""

import os

from firmware import cbor
from firmware.store.journal import PRIO_EVENT, PRIO_TELEMETRY, Journal, frame
from firmware.store.scan import scan, scan_file
from hal.errors import CBORError, JournalError
from tests.dual._util import raises, tmp_path


def _seg_files(j, q=PRIO_TELEMETRY):
    d = j.path + "/q%d" % q
    return [d + "/" + n for n in sorted(os.listdir(d)) if n.endswith(".seg")]


def _read(p):
    with open(p, "rb") as f:
        return f.read()


def _write(p, data):
    with open(p, "wb") as f:
        f.write(data)


def test_append_and_read_back():
    j = Journal(tmp_path("j"), "fsync")
    assert j.append({"k": "win", "t": 0}) == 1
    assert j.append({"k": "trip", "t": 8000000, "causes": [[4096, "x"]]}, PRIO_EVENT) == 2
    got = list(j.records())
    assert [s for s, _r in got] == [2, 1]  # events queue first
    assert got[0][1]["causes"] == [[4096, "x"]]
    j.close()


def test_group_durability_sends_only_synced_records():
    p = tmp_path("grp")
    j = Journal(p, "group", group_records=5, group_ms=3600000)
    for n in range(3):
        j.append({"k": "win", "n": n})
    # not yet synced: a power cut could take these back, so none is offered
    assert j.read_batch() == (None, [])
    assert j.synced_seq == 0
    for n in range(3, 5):
        j.append({"k": "win", "n": n})
    # the fifth record completes the group: written, synced, offered
    assert j.synced_seq == 5
    q, batch = j.read_batch()
    assert [s for s, _p in batch] == [1, 2, 3, 4, 5]
    j.append({"k": "win", "n": 5})
    assert [s for s, _p in j.read_batch()[1]] == [1, 2, 3, 4, 5]
    j.flush()
    assert [s for s, _p in j.read_batch()[1]] == [1, 2, 3, 4, 5, 6]
    j.append({"k": "win", "n": 6})
    j.close()
    # close writes and syncs what was held; reopening finds all of it
    j = Journal(p, "group")
    assert [r["n"] for _s, r in j.records()] == list(range(7)) and j.next_seq == 8
    j.close()


def test_live_records_go_before_the_backlog_and_the_ranges_merge():
    from firmware.store import outbox

    p = tmp_path("live")
    j = Journal(p, "fsync", segment_bytes=256)
    for n in range(20):
        j.append({"k": "win", "n": n})
    outbox.start_live(j)
    for n in range(20, 23):
        j.append({"k": "win", "n": n})
    q, b = j.read_batch(max_records=5)
    assert [s for s, _p in b] == [21, 22, 23]
    j.ack(q, 23)
    q, b = j.read_batch(max_records=5)
    assert [s for s, _p in b] == [1, 2, 3, 4, 5]
    j.ack(q, 5)
    assert j.pending() == 15
    j.close()
    # both cursors survive a restart
    j = Journal(p, "fsync", segment_bytes=256)
    assert j.acked(1) == 5 and j.pending() == 15
    q, b = j.read_batch(max_records=100)
    assert [s for s, _p in b] == list(range(6, 21))
    j.ack(q, 20)
    # caught up: one range again, one number in the ack file
    assert j.acked(1) == 23 and j.pending() == 0
    with open(p + "/q1/ack") as f:
        assert f.read().split() == ["23"]
    # and every wholly acknowledged segment went
    assert len([n for n in os.listdir(p + "/q1") if n.endswith(".seg")]) == 1
    assert j.append({"k": "win", "n": 23}) == 24
    assert [s for s, _p in j.read_batch()[1]] == [24]
    j.close()


def test_expired_records_in_a_live_range_are_dropped_once():
    from firmware.store import outbox

    t = [1000]
    j = Journal(tmp_path("livettl"), "fsync", ttl_s={1: 10}, now=lambda: t[0])
    for n in range(3):
        j.append({"n": n})  # the backlog
    outbox.start_live(j)
    for n in range(3, 5):
        j.append({"n": n})  # live, soon expired
    t[0] = 1005
    j.append({"n": 5})
    t[0] = 1012
    q, b = j.read_batch()
    assert [s for s, _p in b] == [6] and j.dropped_ttl == 2
    q, b = j.read_batch()
    assert [s for s, _p in b] == [6] and j.dropped_ttl == 2  # not counted twice
    j.ack(q, 6)
    # the backlog expired too: dropped, counted, and the ranges are one again
    assert j.read_batch() == (None, [])
    assert j.dropped_ttl == 5 and j.pending() == 0 and j.acked(1) == 6
    j.close()


def test_sequence_continues_across_reopen_even_when_all_was_acked():
    p = tmp_path("j")
    j = Journal(p, segment_bytes=1024, cap_bytes=1 << 20)
    for i in range(40):
        j.append({"i": i, "pad": "x" * 20})
    q, batch = j.read_batch(max_records=1000)
    j.ack(q, batch[-1][0])
    j.close()
    assert len(_seg_files(j)) == 1  # acked segments deleted, the open one kept
    j = Journal(p)
    assert j.pending() == 0
    assert j.append({"i": 40}) == 41
    j.close()


def test_events_go_before_telemetry():
    j = Journal(tmp_path("j"))
    for i in range(5):
        j.append({"i": i})
    j.append({"k": "trip"}, PRIO_EVENT)
    q, batch = j.read_batch()
    assert q == PRIO_EVENT and [s for s, _p in batch] == [6]
    j.ack(q, 6)
    q, batch = j.read_batch(max_records=3)
    assert q == PRIO_TELEMETRY and [s for s, _p in batch] == [1, 2, 3]
    j.close()


def test_nothing_is_deleted_before_ack():
    p = tmp_path("j")
    j = Journal(p, segment_bytes=1024)
    for i in range(100):
        j.append({"i": i, "pad": "y" * 30})
    q, batch = j.read_batch(max_records=50)
    j.close()
    j = Journal(p)
    q, batch2 = j.read_batch(max_records=50)
    assert batch2 == batch  # not acked: delivered again after a restart
    j.ack(q, batch2[-1][0])
    q, batch3 = j.read_batch(max_records=1000)
    assert batch3[0][0] == 51 and batch3[-1][0] == 100
    j.close()


def test_torn_tail_is_truncated_at_every_offset():
    p = tmp_path("j")
    j = Journal(p)
    for i in range(3):
        j.append({"i": i, "pad": "x" * i})
    j.close()
    (seg,) = _seg_files(j)
    data = _read(seg)
    ends = [off + 20 + len(pl) for off, _s, _c, pl in scan(data)]
    for cut in range(ends[1], len(data)):
        _write(seg, data[:cut])
        j = Journal(p)
        assert j.count == 2, cut
        assert j.recovered_bytes == cut - ends[1]
        assert j.append({"i": 9}) == 3
        j.close()
        assert [r["i"] for _s, r in Journal(p).records()] == [0, 1, 9]


def test_corrupt_record_in_the_middle_is_skipped_and_counted():
    p = tmp_path("j")
    j = Journal(p)
    for i in range(5):
        j.append({"i": i})
    j.close()
    (seg,) = _seg_files(j)
    data = bytearray(_read(seg))
    offs = [off for off, _s, _c, _pl in scan(bytes(data))]
    data[offs[2] + 22] ^= 0x40  # inside the third record's payload
    _write(seg, data)
    j = Journal(p)
    assert [r["i"] for _s, r in j.records()] == [0, 1, 3, 4]
    assert j.corrupt_skipped == offs[3] - offs[2]
    q, batch = j.read_batch()
    assert [s for s, _p in batch] == [1, 2, 4, 5]
    j.close()


def test_scan_of_bytes_and_of_a_file_agree_on_damage():
    # the uplink reads through scan (whole frames in one loop until one
    # fails), recovery through scan_file (frame by frame): the same frames
    # and the same damage, wherever it is
    good = b"".join(frame(s, cbor.dumps({"i": s}), 7) for s in range(1, 7))
    offs = [o for o, _s, _c, _p in scan(good)]
    cases = [good, good[:-3], good[: offs[3] + 5]]
    bad = bytearray(good)
    bad[offs[2] + 21] ^= 0x01  # the third payload
    cases.append(bytes(bad))
    bad[offs[0] + 1] ^= 0x10  # and the first length
    cases.append(bytes(bad))
    p = tmp_path("scan.bin")
    for data in cases:
        st_b, st_f = {}, {}
        from_bytes = [(o, s, c) for o, s, c, _p in scan(data, st_b)]
        _write(p, data)
        with open(p, "rb") as f:
            from_file = list(scan_file(f, len(data), st_f))
        assert from_bytes == from_file, (from_bytes, from_file)
        assert st_b == st_f, (st_b, st_f)
    assert [s for _o, s, _c in from_bytes] == [2, 4, 5, 6]


def test_ack_cursor_survives_and_is_atomic():
    p = tmp_path("j")
    j = Journal(p)
    for i in range(10):
        j.append({"i": i})
    j.ack(PRIO_TELEMETRY, 4)
    j.close()
    names = os.listdir(p + "/q1")
    assert "ack" in names and "ack.tmp" not in names
    assert Journal(p).read_batch()[1][0][0] == 5


def test_byte_cap_drops_oldest_telemetry_first():
    p = tmp_path("j")
    j = Journal(p, segment_bytes=1024, cap_bytes=4096)
    j.append({"k": "trip"}, PRIO_EVENT)
    for i in range(200):
        j.append({"i": i, "pad": "z" * 20})
    assert j.size <= 4096
    assert j.dropped_cap > 0
    recs = list(j.records())
    assert recs[0][1]["k"] == "trip"  # the event survived
    seqs = [s for s, _r in recs[1:]]
    assert seqs == list(range(seqs[0], 202))  # the newest telemetry, no gaps
    # everything dropped is counted: kept + dropped = appended telemetry
    assert len(seqs) + j.dropped_cap == 200
    j.close()


def test_pause_policy_refuses_and_counts():
    j = Journal(tmp_path("j"), segment_bytes=1024, cap_bytes=2048, full_policy="pause")
    got = [j.append({"i": i, "pad": "z" * 20}) for i in range(100)]
    assert 0 in got and j.refused == got.count(0)
    assert j.size <= 2048
    kept = [s for s in got if s]
    assert kept == list(range(1, len(kept) + 1))
    j.close()


def test_ttl_drops_expired_before_sending():
    clock = [1000]
    j = Journal(tmp_path("j"), ttl_s={PRIO_TELEMETRY: 60}, now=lambda: clock[0])
    for i in range(5):
        j.append({"i": i})
    clock[0] += 30
    for i in range(5, 8):
        j.append({"i": i})
    clock[0] += 40  # the first five are 70 s old, the last three 40 s
    q, batch = j.read_batch()
    assert [s for s, _p in batch] == [6, 7, 8]
    assert j.dropped_ttl == 5 and j.acked(PRIO_TELEMETRY) == 5
    j.close()


def test_bad_settings_are_refused():
    raises(JournalError, Journal, tmp_path("j"), "sometimes")
    raises(JournalError, Journal, tmp_path("j"), "none", 4096, 1024)
    raises(JournalError, Journal, tmp_path("j"), "none", 1024, 4096, "grow")


def test_frame_layout():
    fr = frame(7, b"\xa0", 5)
    assert fr[:4] == b"\x01\x00\x00\x00"
    assert fr[8:16] == b"\x07" + bytes(7)
    assert fr[16:20] == b"\x05\x00\x00\x00"
    assert fr[20:] == b"\xa0"
    assert list(scan(fr)) == [(0, 7, 5, b"\xa0")]
    bad = bytearray(fr)
    bad[9] ^= 1  # the CRC covers the sequence number
    assert list(scan(bytes(bad))) == []


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


def test_random_sends_acks_restarts_and_live_ranges_deliver_everything_once():
    """Random runs of appends to both queues, batches read and acknowledged
    in order (as the uplink does), live ranges opened, and restarts; at the
    end everything is delivered once and pending() counted right all along."""
    from firmware.store import outbox

    state = [12345]

    def rnd(n):
        # a small LCG: the same sequence on both targets
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % n

    for run in range(6):
        p = tmp_path("rand%d" % run)
        j = Journal(p, "fsync", segment_bytes=200)
        appended = []
        delivered = []
        for _step in range(120):
            r = rnd(10)
            if r < 5:
                q = PRIO_EVENT if rnd(4) == 0 else PRIO_TELEMETRY
                appended.append(j.append({"k": "x", "i": len(appended)}, q))
            elif r < 8:
                q, batch = j.read_batch(max_records=1 + rnd(4))
                if batch:
                    delivered.extend(s for s, _p in batch)
                    j.ack(q, batch[-1][0])
            elif r == 8:
                outbox.start_live(j)
            else:
                j.close()
                j = Journal(p, "fsync", segment_bytes=200)
            assert j.pending() == len(appended) - len(delivered)
        while True:
            q, batch = j.read_batch(max_records=5)
            if not batch:
                break
            delivered.extend(s for s, _p in batch)
            j.ack(q, batch[-1][0])
        assert sorted(delivered) == sorted(appended) and len(set(delivered)) == len(delivered)
        assert j.pending() == 0 and not j._live
        j.close()


def test_a_garbled_ack_file_means_send_again_never_lose_or_crash():
    """Whatever the ack file holds, opening does not crash, nothing on disk
    is taken as sent unless the file makes sense, and sequence numbers go
    on above everything seen."""
    garbage = (
        b"99999999999999999999\n",  # past u64: once crashed the next append
        b"1 2\n",  # two numbers: neither form
        b"\xff\xfe\x00\x01",  # not text
        b"-5\n",
        b"3 2 1\n",  # a live range before its own cursor
        b"12 13 400\n",  # a live cursor past every record
        b"400\n",  # past every record: would mark them all sent
        b"",
        b"x",
    )
    for k, junk in enumerate(garbage):
        p = tmp_path("garbled%d" % k)
        j = Journal(p, "fsync")
        for i in range(20):
            j.append({"k": "win", "i": i})
        j.close()
        _write(p + "/q1/ack", junk)
        j = Journal(p, "fsync")
        if junk:
            assert j.ack_repaired == 1, junk
        # everything is pending again, and a new record gets a new number
        assert j.pending() == 20, junk
        seq = j.append({"k": "win", "i": 20})
        assert seq > 20, junk
        q, batch = j.read_batch(100)
        assert [s for s, _p in batch] == list(range(1, 21)) + [seq], junk
        j.close()
    # a well-formed cursor is still believed
    p = tmp_path("garbled-ok")
    j = Journal(p, "fsync")
    for i in range(20):
        j.append({"k": "win", "i": i})
    j.ack(PRIO_TELEMETRY, 7)
    j.close()
    j = Journal(p, "fsync")
    assert j.ack_repaired == 0 and j.pending() == 13
    j.close()
