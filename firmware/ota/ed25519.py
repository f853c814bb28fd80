"""Ed25519 signature verification (RFC 8032, 5.1.7) in plain integers,
for MicroPython, which has neither Ed25519 nor SHA-512, and CPython.

    from firmware.ota import ed25519
    ed25519.verify(pub, msg, sig)          # True or False, all at once

    v = ed25519.Verifier(pub, msg, sig)    # the same in short steps:
    while v.step():                        # each step: 0.3-0.4 ms on the
        pass                               # unix port, the whole 14-90 ms
    v.ok

The device verifies an update's manifest in the loop's idle time, so the
work is a generator: the SHA-512 yields after every 20 of a block's 80 rounds, the two scalar
multiplications after every bit, and the modular powers (decoding the
public key, the final inversion) every few bits. Nothing here takes more
than one field operation's worth of time between two yields, which on an
ESP32 matters more than the total.

The check is the cofactorless one OpenSSL makes: encode([S]B - [k]A)
equals R, with S < L and A a valid point encoding. Verification only:
there is no secret here, so nothing needs to run in constant time.
"""

_P = (1 << 255) - 19
_L = (1 << 252) + 27742317777372353535851937790883648493
_D = 37095705934669439343138083508754565189542113879843219016388785533085940283555
_D2 = (2 * _D) % _P
_SQRT_M1 = 19681161376707505956807079304988542015446066515923890162744021073123829784752
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202
_BY = 46316835694926478169428394003475163141307993866256225615783033603165251855960
_M64 = 0xFFFFFFFFFFFFFFFF

# SHA-512 (FIPS 180-4): the first 64 bits of the fractional parts of the
# cube roots of the first 80 primes, and of the square roots of the first 8
_K = (
    0x428a2f98d728ae22, 0x7137449123ef65cd, 0xb5c0fbcfec4d3b2f, 0xe9b5dba58189dbbc,
    0x3956c25bf348b538, 0x59f111f1b605d019, 0x923f82a4af194f9b, 0xab1c5ed5da6d8118,
    0xd807aa98a3030242, 0x12835b0145706fbe, 0x243185be4ee4b28c, 0x550c7dc3d5ffb4e2,
    0x72be5d74f27b896f, 0x80deb1fe3b1696b1, 0x9bdc06a725c71235, 0xc19bf174cf692694,
    0xe49b69c19ef14ad2, 0xefbe4786384f25e3, 0x0fc19dc68b8cd5b5, 0x240ca1cc77ac9c65,
    0x2de92c6f592b0275, 0x4a7484aa6ea6e483, 0x5cb0a9dcbd41fbd4, 0x76f988da831153b5,
    0x983e5152ee66dfab, 0xa831c66d2db43210, 0xb00327c898fb213f, 0xbf597fc7beef0ee4,
    0xc6e00bf33da88fc2, 0xd5a79147930aa725, 0x06ca6351e003826f, 0x142929670a0e6e70,
    0x27b70a8546d22ffc, 0x2e1b21385c26c926, 0x4d2c6dfc5ac42aed, 0x53380d139d95b3df,
    0x650a73548baf63de, 0x766a0abb3c77b2a8, 0x81c2c92e47edaee6, 0x92722c851482353b,
    0xa2bfe8a14cf10364, 0xa81a664bbc423001, 0xc24b8b70d0f89791, 0xc76c51a30654be30,
    0xd192e819d6ef5218, 0xd69906245565a910, 0xf40e35855771202a, 0x106aa07032bbd1b8,
    0x19a4c116b8d2d0c8, 0x1e376c085141ab53, 0x2748774cdf8eeb99, 0x34b0bcb5e19b48a8,
    0x391c0cb3c5c95a63, 0x4ed8aa4ae3418acb, 0x5b9cca4f7763e373, 0x682e6ff3d6b2b8a3,
    0x748f82ee5defb2fc, 0x78a5636f43172f60, 0x84c87814a1f0ab72, 0x8cc702081a6439ec,
    0x90befffa23631e28, 0xa4506cebde82bde9, 0xbef9a3f7b2c67915, 0xc67178f2e372532b,
    0xca273eceea26619c, 0xd186b8c721c0c207, 0xeada7dd6cde0eb1e, 0xf57d4f7fee6ed178,
    0x06f067aa72176fba, 0x0a637dc5a2c898a6, 0x113f9804bef90dae, 0x1b710b35131c471b,
    0x28db77f523047d84, 0x32caab7b40c72493, 0x3c9ebe0a15c9bebc, 0x431d67c49c100d4c,
    0x4cc5d4becb3e42b6, 0x597f299cfc657e2a, 0x5fcb6fab3ad6faec, 0x6c44198c4a475817,
)
_H0 = (
    0x6a09e667f3bcc908, 0xbb67ae8584caa73b, 0x3c6ef372fe94f82b, 0xa54ff53a5f1d36f1,
    0x510e527fade682d1, 0x9b05688c2b3e6c1f, 0x1f83d9abfb41bd6b, 0x5be0cd19137e2179,
)


# --- SHA-512 ------------------------------------------------------------------
def _rotr(x, n):
    return ((x >> n) | (x << (64 - n))) & _M64


def _compress(h, block):
    """One block into the state ``h`` (a list, updated in place), in four
    steps of 20 rounds: a whole block is about a millisecond on the unix
    port, tens of them on an ESP32."""
    w = [int.from_bytes(block[i : i + 8], "big") for i in range(0, 128, 8)]
    for t in range(16, 80):
        a = w[t - 15]
        b = w[t - 2]
        s0 = _rotr(a, 1) ^ _rotr(a, 8) ^ (a >> 7)
        s1 = _rotr(b, 19) ^ _rotr(b, 61) ^ (b >> 6)
        w.append((w[t - 16] + s0 + w[t - 7] + s1) & _M64)
    yield
    a, b, c, d, e, f, g, hh = h
    for t in range(80):
        t1 = (hh + (_rotr(e, 14) ^ _rotr(e, 18) ^ _rotr(e, 41)) + ((e & f) ^ (~e & g)) + _K[t] + w[t]) & _M64
        t2 = ((_rotr(a, 28) ^ _rotr(a, 34) ^ _rotr(a, 39)) + ((a & b) ^ (a & c) ^ (b & c))) & _M64
        hh = g
        g = f
        f = e
        e = (d + t1) & _M64
        d = c
        c = b
        b = a
        a = (t1 + t2) & _M64
        if t % 20 == 19:
            yield
    for i, x in enumerate((a, b, c, d, e, f, g, hh)):
        h[i] = (h[i] + x) & _M64


def _pieces(parts):
    # a part is bytes, or a file read a block at a time (a manifest on
    # the device's flash need never be on the heap whole)
    for part in parts:
        if hasattr(part, "read"):
            while True:
                b = part.read(512)
                if not b:
                    break
                yield b
        else:
            yield part


def _sha512_steps(parts, out):
    """SHA-512 of the concatenated ``parts`` (bytes, or files), in steps of
    a fraction of a block; the digest is appended to ``out``."""
    h = list(_H0)
    buf = b""
    n = 0
    for part in _pieces(parts):
        n += len(part)
        mv = memoryview(part)
        i = 0
        if buf:
            take = 128 - len(buf)
            buf += bytes(mv[:take])
            i = take
            if len(buf) < 128:
                continue
            yield from _compress(h, buf)
            buf = b""
        while i + 128 <= len(part):
            yield from _compress(h, mv[i : i + 128])
            i += 128
        buf = bytes(mv[i:])
    buf += b"\x80" + bytes((111 - n) % 128) + (n * 8).to_bytes(16, "big")
    for i in range(0, len(buf), 128):
        yield from _compress(h, buf[i : i + 128])
    out.append(b"".join(x.to_bytes(8, "big") for x in h))


def sha512(data):
    out = []
    for _ in _sha512_steps((data,), out):
        pass
    return out[0]


# --- the field and the curve ---------------------------------------------------
def _pow_steps(b, e, out, every=8):
    """b ** e mod p (e < 2**255), square-and-multiply from the top bit, yielding every
    every bits; the result is appended to out."""
    r = 1
    n = 0
    # every exponent here is below 2**255 (MicroPython has no bit_length)
    for i in range(254, -1, -1):
        r = r * r % _P
        if (e >> i) & 1:
            r = r * b % _P
        n += 1
        if n == every:
            n = 0
            yield
    out.append(r)


def _add(p1, p2):
    # extended coordinates, a = -1 (RFC 8032, 5.1.4)
    x1, y1, z1, t1 = p1
    x2, y2, z2, t2 = p2
    a = (y1 - x1) * (y2 - x2) % _P
    b = (y1 + x1) * (y2 + x2) % _P
    c = t1 * _D2 * t2 % _P
    d = 2 * z1 * z2 % _P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _double(p1):
    x1, y1, z1, _t = p1
    a = x1 * x1 % _P
    b = y1 * y1 % _P
    c = 2 * z1 * z1 % _P
    h = a + b
    e = h - (x1 + y1) * (x1 + y1) % _P
    g = a - b
    f = c + g
    return (e * f % _P, g * h % _P, f * g % _P, e * h % _P)


def _decode_steps(s, out):
    """The point encoded in the 32 bytes s (RFC 8032, 5.1.3), appended
    to out; None appended when s encodes no point."""
    y = int.from_bytes(s, "little")
    sign = y >> 255
    y &= (1 << 255) - 1
    if y >= _P:
        out.append(None)
        return
    u = (y * y - 1) % _P
    v = (_D * y * y + 1) % _P
    r = []
    yield from _pow_steps(u * pow(v, 7, _P) % _P, (_P - 5) // 8, r)
    x = u * pow(v, 3, _P) * r[0] % _P
    vxx = v * x * x % _P
    if vxx == (-u) % _P:
        x = x * _SQRT_M1 % _P
    elif vxx != u:
        out.append(None)
        return
    if x == 0 and sign:
        out.append(None)
        return
    if x & 1 != sign:
        x = _P - x
    out.append((x, y, 1, x * y % _P))


# --- verification ------------------------------------------------------------
def _verify_steps(pub, msg, sig, out):
    if len(pub) != 32 or len(sig) != 64:
        out.append(False)
        return
    s = int.from_bytes(sig[32:], "little")
    if s >= _L:
        out.append(False)
        return
    r = []
    yield from _decode_steps(pub, r)
    a = r[0]
    if a is None:
        out.append(False)
        return
    hk = []
    yield from _sha512_steps((sig[:32], pub, msg), hk)
    k = int.from_bytes(hk[0], "little") % _L
    del hk
    # [S]B + [k](-A), both scalars in one pass of doublings (Straus)
    neg_a = ((_P - a[0]) % _P, a[1], a[2], (_P - a[3]) % _P)
    both = _add((_BX, _BY, 1, _BX * _BY % _P), neg_a)
    q = (0, 1, 1, 0)
    for i in range(252, -1, -1):  # both below L < 2**253
        q = _double(q)
        bs = (s >> i) & 1
        bk = (k >> i) & 1
        if bs and bk:
            q = _add(q, both)
        elif bs:
            q = _add(q, (_BX, _BY, 1, _BX * _BY % _P))
        elif bk:
            q = _add(q, neg_a)
        yield
    zi = []
    yield from _pow_steps(q[2], _P - 2, zi)
    x = q[0] * zi[0] % _P
    y = q[1] * zi[0] % _P
    enc = (y | ((x & 1) << 255)).to_bytes(32, "little")
    out.append(enc == bytes(sig[:32]))


class Verifier:
    """One verification in steps: step() does a little and returns
    True while there is more; ok is then the answer."""

    def __init__(self, pub, msg, sig):
        self._out = []
        self._g = _verify_steps(bytes(pub), msg, bytes(sig), self._out)
        self.ok = None
        self.steps = 0

    def step(self):
        try:
            next(self._g)
        except StopIteration:
            self.ok = bool(self._out and self._out[0])
            self._g = None
            return False
        self.steps += 1
        return True


def verify(pub, msg, sig):
    v = Verifier(pub, msg, sig)
    while v.step():
        pass
    return v.ok
