"""Sealing batches: AES-128-CBC, then HMAC-SHA256 over everything
(encrypt-then-MAC), with a per-device key.

    box = Sealer(key32, "sim-0001")
    blob = box.seal(q, first_seq, last_seq, plaintext)
    dev, q, first, last, nonce, plain = open_sealed(blob, keys_by_device)

Layout::

    "EFS1" | u8 len(device) | device | u8 queue | u64 first | u64 last
    | nonce (12) | iv (16) | ciphertext | tag (32)

The header is authenticated, not encrypted: the receiver needs the device
name to find the key, and binding the sequence range and nonce into the
tag stops a batch being replayed under another range or device. Keys for
encryption and authentication are derived from the device key with
HMAC-SHA256 so neither is ever used for both.

Backends: ``cryptolib`` on MicroPython (its AES has ECB and CBC; CBC is
what both sides have), pycryptodome on CPython. HMAC is written here on top
of ``hashlib.sha256``, the same code on both.
"""

import hashlib
import os
import struct

from hal.errors import _Value

try:
    import cryptolib

    def _cbc(key, iv, data, encrypt):
        a = cryptolib.aes(key, 2, iv)
        return a.encrypt(data) if encrypt else a.decrypt(data)

except ImportError:
    from Crypto.Cipher import AES

    def _cbc(key, iv, data, encrypt):
        a = AES.new(bytes(key), AES.MODE_CBC, bytes(iv))
        return a.encrypt(bytes(data)) if encrypt else a.decrypt(bytes(data))


MAGIC = b"EFS1"
TAG_LEN = 32


class SealError(_Value):
    """A sealed batch that is malformed, from an unknown device, or fails
    authentication (a ValueError; on CPython an EdgefwError too)."""


def hmac_sha256(key, msg):
    if len(key) > 64:
        key = hashlib.sha256(key).digest()
    key = bytes(key) + bytes(64 - len(key))
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = hashlib.sha256(ipad + msg).digest()
    return hashlib.sha256(opad + inner).digest()


def _same(a, b):
    # constant time: the loop does not stop at the first difference
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def derive(key):
    if len(key) < 16:
        raise ValueError("device key must be at least 16 bytes, got %d" % len(key))
    return hmac_sha256(key, b"edgefw enc")[:16], hmac_sha256(key, b"edgefw mac")


class Sealer:
    def __init__(self, key, device_id):
        self.enc, self.mac = derive(key)
        self.device = device_id.encode() if isinstance(device_id, str) else device_id
        if len(self.device) > 255:
            raise ValueError("device id longer than 255 bytes")

    def seal(self, q, first, last, plaintext, nonce=None, iv=None):
        nonce = nonce or os.urandom(12)
        iv = iv or os.urandom(16)
        hdr = MAGIC + bytes((len(self.device),)) + self.device + struct.pack("<BQQ", q, first, last) + nonce
        pad = 16 - len(plaintext) % 16
        ct = _cbc(self.enc, iv, bytes(plaintext) + bytes((pad,)) * pad, True)
        body = hdr + iv + ct
        return body + hmac_sha256(self.mac, body)


def parse_header(blob):
    """(device, queue, first, last, nonce, header length) without checking
    the tag."""
    if len(blob) < 4 + 1 + 17 + 12 + 16 + 16 + TAG_LEN or blob[:4] != MAGIC:
        raise SealError("not a sealed edgefw batch")
    n = blob[4]
    i = 5 + n
    if len(blob) < i + 17 + 12 + 16 + 16 + TAG_LEN:
        raise SealError("sealed batch too short")
    dev = bytes(blob[5:i]).decode()
    q, first, last = struct.unpack("<BQQ", blob[i : i + 17])
    nonce = bytes(blob[i + 17 : i + 29])
    return dev, q, first, last, nonce, i + 29


def open_sealed(blob, keys):
    """Check and decrypt; ``keys`` maps device id to key bytes. Returns
    (device, queue, first, last, nonce, plaintext)."""
    dev, q, first, last, nonce, h = parse_header(blob)
    key = keys.get(dev)
    if key is None:
        raise SealError("unknown device %r" % dev)
    enc, mac = derive(key)
    body, tag = blob[:-TAG_LEN], blob[-TAG_LEN:]
    if not _same(hmac_sha256(mac, bytes(body)), tag):
        raise SealError("authentication failed for a batch from %r (tampered, or the wrong key)" % dev)
    ct = body[h + 16 :]
    if len(ct) == 0 or len(ct) % 16:
        raise SealError("ciphertext length %d is not a whole number of blocks" % len(ct))
    plain = _cbc(enc, body[h : h + 16], ct, False)
    pad = plain[-1]
    if not 1 <= pad <= 16:
        raise SealError("bad padding")
    return dev, q, first, last, nonce, bytes(plain[:-pad])
