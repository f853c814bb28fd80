"""Compressing upstream batches.

A batch's records may travel compressed: the map then has ``"codec"``
(``"zlib"``, or ``"zstd"`` with ``"dict"``, the zstd dictionary's id) and
``"z"``, the compressed CBOR array of the records, in place of ``"recs"``.
The header fields (dev, q, first, last, id, boot, clocks) stay as they
are, so a receiver reads them before decompressing. A batch that does not
shrink goes as it is, with ``"recs"`` and no ``"codec"``.

Compression is applied before sealing (ciphertext does not compress).
``edgefw ingest`` does not read compressed batches yet (it would refuse
them as malformed, and the gateway would keep them and retry): the
default codec is ``none``; ``expand`` is the function an ingest needs.
"""

import zlib

from firmware import cbor

CODECS = ("none", "zlib", "zstd")
# a batch is at most 64 KiB of records on the wire; anything expanding
# far past that is refused rather than filling memory
MAX_EXPANDED = 16 << 20


class CodecError(ValueError):
    pass


class Packer:
    def __init__(self, codec="none", level=None, zdict=None):
        if codec not in CODECS:
            raise CodecError("codec must be one of %s, got %r" % (", ".join(CODECS), codec))
        self.codec = codec
        self.level = level
        self.dict_id = None
        self._z = None
        if codec == "zstd":
            import zstandard

            d = zstandard.ZstdCompressionDict(zdict) if zdict else None
            self.dict_id = d.dict_id() if d is not None else None
            self._z = zstandard.ZstdCompressor(level=level or 3, dict_data=d)
        self.bytes_in = 0
        self.bytes_out = 0
        self.raw_batches = 0

    def pack(self, m, recs):
        """Put ``recs`` (record CBOR bytes) into the batch map ``m``,
        compressed when that makes it smaller."""
        plain = cbor.dumps(recs)
        self.bytes_in += len(plain)
        if self.codec != "none":
            if self.codec == "zlib":
                z = zlib.compress(plain, self.level or 6)
            else:
                z = self._z.compress(plain)
            if len(z) + 12 < len(plain):
                m["codec"] = self.codec
                if self.dict_id is not None:
                    m["dict"] = self.dict_id
                m["z"] = z
                self.bytes_out += len(z)
                return m
        self.raw_batches += 1
        m["recs"] = recs
        self.bytes_out += len(plain)
        return m


def expand(m, dicts=None):
    """The records of a batch map, decompressed if it says so; CodecError
    for an unknown codec, a dictionary not held, or a payload that does
    not decompress within ``MAX_EXPANDED``."""
    codec = m.get("codec")
    if codec is None:
        return m["recs"]
    z = m.get("z")
    if not isinstance(z, bytes):
        raise CodecError("compressed batch without bytes in 'z'")
    if codec == "zlib":
        d = zlib.decompressobj()
        plain = d.decompress(z, MAX_EXPANDED)
        if d.unconsumed_tail:
            raise CodecError("batch expands past %d bytes" % MAX_EXPANDED)
    elif codec == "zstd":
        import zstandard

        did = m.get("dict")
        dd = None
        if did is not None:
            raw = (dicts or {}).get(did)
            if raw is None:
                raise CodecError("zstd dictionary %r not held here" % (did,))
            dd = zstandard.ZstdCompressionDict(raw)
        try:
            plain = zstandard.ZstdDecompressor(dict_data=dd).decompress(z, max_output_size=MAX_EXPANDED)
        except zstandard.ZstdError as e:
            raise CodecError(str(e))
    else:
        raise CodecError("unknown codec %r" % (codec,))
    recs = cbor.loads(plain)
    if not isinstance(recs, list):
        raise CodecError("compressed records are not a CBOR array")
    return recs
