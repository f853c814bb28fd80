"""Upstream compression: the codec in the batch map, raw when it does not
shrink, and expansion bounded."""

import os
import zlib

import pytest

from edgefw.gateway.codec import MAX_EXPANDED, CodecError, Packer, expand
from firmware import cbor

RECS = [cbor.dumps({"k": "win", "t": i * 1000000, "ch": {"temp_c": [100, 20000, 21000 + i % 5, 22000]}, "seq": i}) for i in range(1, 60)]


@pytest.mark.parametrize("codec", ["zlib", "zstd"])
def test_round_trip_and_smaller(codec):
    if codec == "zstd":
        pytest.importorskip("zstandard")
    p = Packer(codec)
    m = p.pack({"dev": "n", "q": 1}, RECS)
    assert m["codec"] == codec and "recs" not in m
    assert expand(cbor.loads(cbor.dumps(m))) == RECS
    assert p.bytes_out < p.bytes_in / 3


def test_zstd_dictionary_named_and_required():
    zstandard = pytest.importorskip("zstandard")
    d = zstandard.train_dictionary(4096, [r for _ in range(20) for r in RECS])
    p = Packer("zstd", zdict=d.as_bytes())
    m = p.pack({"dev": "n"}, RECS)
    assert m["dict"] == d.dict_id()
    assert expand(m, {d.dict_id(): d.as_bytes()}) == RECS
    with pytest.raises(CodecError):
        expand(m, {})


def test_incompressible_goes_raw():
    p = Packer("zlib")
    noise = [os.urandom(200) for _ in range(3)]
    m = p.pack({"dev": "n"}, noise)
    assert "codec" not in m and m["recs"] == noise and p.raw_batches == 1
    assert expand(m) == noise


def test_expansion_is_bounded_and_unknown_codecs_refused():
    bomb = zlib.compress(b"\0" * (MAX_EXPANDED + 1024), 9)
    with pytest.raises(CodecError):
        expand({"codec": "zlib", "z": bomb})
    with pytest.raises(CodecError):
        expand({"codec": "lzma", "z": b"x"})
