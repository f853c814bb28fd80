"""The device's Ed25519 verification (firmware/ota/ed25519.py) against the
``cryptography`` package's signatures, good and bad, on CPython and on
the MicroPython unix port (where its time and heap are measured)."""

import hashlib
import os

import pytest
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.ota import ed25519 as E
from tests.conftest import run_micropython

L = (1 << 252) + 27742317777372353535851937790883648493


def raw(pub):
    return pub.public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)


def theirs(pub, msg, sig):
    try:
        Ed25519PublicKey.from_public_bytes(pub).verify(sig, msg)
        return True
    except Exception:
        return False


def flip(b, i):
    x = bytearray(b)
    x[i // 8] ^= 1 << (i % 8)
    return bytes(x)


def cases(n=12):
    """(pub, msg, sig) good ones and their broken variants."""
    out = []
    for i in range(n):
        k = Ed25519PrivateKey.generate()
        pub = raw(k.public_key())
        msg = os.urandom((0, 1, 63, 64, 127, 128, 129, 1000, 4096)[i % 9])
        sig = k.sign(msg)
        out.append((pub, msg, sig))
        out.append((pub, msg, flip(sig, i * 37 % 256)))  # in R
        out.append((pub, msg, flip(sig, 256 + i * 41 % 250)))  # in S
        out.append((pub, msg + b"x", sig))
        out.append((flip(pub, i * 13 % 255), msg, sig))
        other = raw(Ed25519PrivateKey.generate().public_key())
        out.append((other, msg, sig))
    return out


def test_sha512_matches_hashlib():
    for n in (0, 1, 111, 112, 113, 127, 128, 129, 255, 256, 1000, 5000):
        m = os.urandom(n)
        assert E.sha512(m) == hashlib.sha512(m).digest(), n


def test_rfc8032_vectors():
    # RFC 8032, 7.1, TEST 1 and TEST 2
    pub = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
    sig = bytes.fromhex(
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
    )
    assert E.verify(pub, b"", sig)
    pub2 = bytes.fromhex("3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c")
    sig2 = bytes.fromhex(
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    )
    assert E.verify(pub2, b"\x72", sig2)
    assert not E.verify(pub2, b"\x73", sig2)


def test_agrees_with_cryptography():
    for pub, msg, sig in cases():
        assert E.verify(pub, msg, sig) == theirs(pub, msg, sig), (pub.hex(), msg.hex(), sig.hex())


def test_refuses_malleable_and_malformed():
    k = Ed25519PrivateKey.generate()
    pub = raw(k.public_key())
    sig = k.sign(b"m")
    s = int.from_bytes(sig[32:], "little")
    # S + L verifies the same equation; RFC 8032 says refuse it
    assert not E.verify(pub, b"m", sig[:32] + (s + L).to_bytes(32, "little"))
    assert not E.verify(pub, b"m", sig[:63])
    assert not E.verify(pub[:31], b"m", sig)
    # a y coordinate >= p encodes no point
    assert not E.verify(b"\xff" * 31 + b"\x7f", b"m", sig)


@pytest.mark.micropython
def test_on_micropython(tmp_path):
    k = Ed25519PrivateKey.generate()
    pub = raw(k.public_key())
    rows = []
    for msg in (os.urandom(100), os.urandom(3000)):
        sig = k.sign(msg)
        rows += [(pub, msg, sig), (pub, msg, flip(sig, 300)), (pub, msg + b"!", sig)]
    (tmp_path / "cases").write_text("".join("%s %s %s\n" % (p.hex(), m.hex(), s.hex()) for p, m, s in rows))
    p = run_micropython(["tests/mp_only/ed25519_verify.py", str(tmp_path / "cases")], heap="256k")
    lines = p.stdout.split("\n")
    got = [ln.split() for ln in lines if ln.startswith(("True", "False"))]
    assert [g[0] == "True" for g in got] == [True, False, False, True, False, False], p.stdout + p.stderr
    # each step is a fraction of a SHA-512 block or one bit of the ladder:
    # measured 0.3-0.4 ms on the unix port (the whole: 14 ms for a short
    # message, 50 ms for 3 KB); the bound leaves room for a loaded machine
    assert max(int(g[3]) for g in got) < 20000, p.stdout
    p = run_micropython(["tests/mp_only/ed25519_verify.py", str(tmp_path / "cases"), "heap"], heap="256k")
    heap = int(p.stdout.split("HEAP")[1])
    # measured 8.4 KB live at its worst (the SHA-512 message schedule)
    assert heap < 16384, p.stdout
