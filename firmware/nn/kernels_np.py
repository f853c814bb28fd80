"""The integer kernels of firmware.nn.kernels, vectorised with numpy for
CPython (MicroPython never imports this module).

Same arguments, same results bit for bit: every step of the fixed-point
requantization is done on int64 arrays exactly as the scalar code does it
on Python ints (int32 x int32 products fit in int64). The tensors stay the
interpreter's ``array.array`` objects; numpy works on views of them.
Operators whose int8 output depends on one input value alone (LOGISTIC,
and the exponentials inside SOFTMAX) go through 256-entry tables built
once from the scalar kernels.
"""

import numpy as np

from firmware.nn import kernels as scalar
from firmware.nn import q31

_I32_MIN = -(1 << 31)
_I32_MAX = (1 << 31) - 1
_cache = {}


def _v(a, dtype=np.int8):
    return np.frombuffer(a, dtype=dtype)


def _vi(a):
    return np.frombuffer(a, dtype=np.int32 if a.itemsize == 4 else np.int64)


def srdhm(a, b):
    ab = a * b
    v = ab + np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    q = np.where(v >= 0, v >> 31, -((-v) >> 31))
    return np.where((a == _I32_MIN) & (b == _I32_MIN), _I32_MAX, q)


def rdbpot(x, exponent):
    exponent = np.asarray(exponent, dtype=np.int64)
    mask = (np.int64(1) << exponent) - 1
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def _wrap32(x):
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def _q31(m):
    # the plan holds multipliers as halves (kernels.split_multiplier)
    if isinstance(m, tuple):
        return (m[0] << 15) | m[1]
    return np.array([(h << 15) | lo for h, lo in m], dtype=np.int64)


def _channels(mults, shifts):
    """A layer's (multiplier as halves, shift), one pair or arrays of one
    per output channel, from q31.channel_multipliers' flat arrays."""
    if len(shifts) == 1:
        return (mults[0], mults[1]), shifts[0]
    a = np.frombuffer(mults, dtype=np.int32).astype(np.int64)
    return list(zip(a[0::2].tolist(), a[1::2].tolist(), strict=True)), np.frombuffer(shifts, dtype=np.int32).astype(np.int64)


def mbqm(x, qm, shift):
    """MultiplyByQuantizedMultiplier on an int64 array; ``qm`` a multiplier
    as halves or a list of them, ``shift`` a scalar or an array, both
    broadcasting against ``x``."""
    qm = _q31(qm)
    shift = np.asarray(shift, dtype=np.int64)
    left = np.maximum(shift, 0)
    right = np.maximum(-shift, 0)
    return rdbpot(srdhm(_wrap32(x << left), qm), right)


def _clamp_into(out, v, lo, hi):
    np.clip(v, lo, hi, out=v)
    _v(out)[:] = v


def fully_connected(inp, in_zp, w, w_zp, bias, out, out_zp, mults, shifts, n_in, n_out, lo, hi):
    x = _v(inp).astype(np.int64).reshape(-1, n_in) - in_zp
    wm = _v(w).astype(np.int64).reshape(n_out, n_in) - w_zp
    acc = x @ wm.T
    if bias is not None:
        acc += _vi(bias)
    m, sh = _channels(mults, shifts)
    v = mbqm(acc, m, sh) + out_zp
    _clamp_into(out, v.reshape(-1), lo, hi)


def _gather(shp, fh, fw, stride, dil, pad, oshp):
    """Flat indices into the input padded by (ph, pw) on each side, for
    every output position and filter tap: shape (n*oh*ow, fh*fw)."""
    key = ("g", tuple(shp), fh, fw, stride, dil, pad, tuple(oshp))
    g = _cache.get(key)
    if g is None:
        n, ih, iw, _c = shp
        _n, oh, ow, _oc = oshp
        sh, sw = stride
        dh, dw = dil
        ph, pw = pad
        # padded generously on the far side too, so every tap has an index
        H = max(ih + 2 * ph, (oh - 1) * sh + (fh - 1) * dh + 1)
        W = max(iw + 2 * pw, (ow - 1) * sw + (fw - 1) * dw + 1)
        oy = np.arange(oh) * sh
        ox = np.arange(ow) * sw
        ky = np.arange(fh) * dh
        kx = np.arange(fw) * dw
        rows = (oy[:, None, None, None] + ky[None, None, :, None]) * W + (ox[None, :, None, None] + kx[None, None, None, :])
        rows = rows.reshape(oh * ow, fh * fw)
        per_batch = (np.arange(n) * H * W)[:, None, None] + rows[None]
        g = (per_batch.reshape(n * oh * ow, fh * fw), H, W)
        _cache[key] = g
    return g


def _padded(x, shp, H, W, pad, fill):
    n, ih, iw, c = shp
    ph, pw = pad
    p = np.full((n, H, W, c), fill, dtype=np.int64)
    p[:, ph : ph + ih, pw : pw + iw, :] = x.reshape(n, ih, iw, c)
    return p.reshape(n * H * W, c)


def conv2d(inp, in_zp, shp, filt, fshp, bias, out, oshp, out_zp, mults, shifts, stride, dil, pad, lo, hi, depthwise, dm):
    fh, fw, fc = fshp[1], fshp[2], fshp[3]
    oc = oshp[3]
    g, H, W = _gather(shp, fh, fw, tuple(stride), tuple(dil), tuple(pad), oshp)
    # taps outside the input add nothing: pad with the zero point, which
    # contributes (zp - zp) * w = 0, as the reference skips them
    x = _padded(_v(inp).astype(np.int64) - in_zp, shp, H, W, pad, 0)
    patches = x[g]  # (positions, fh*fw, in_c)
    f = _v(filt).astype(np.int64)
    if depthwise:
        f = f.reshape(fh * fw, fc)  # [taps, out_c]
        src = patches[:, :, np.arange(oc) // dm]  # (positions, taps, out_c)
        acc = np.einsum("ptc,tc->pc", src, f)
    else:
        f = f.reshape(oc, fh * fw * shp[3])
        acc = patches.reshape(patches.shape[0], -1) @ f.T
    if bias is not None:
        acc += _vi(bias)
    m, sh = _channels(mults, shifts)
    v = mbqm(acc, m, sh) + out_zp
    _clamp_into(out, v.reshape(-1), lo, hi)


def pool2d(inp, shp, out, oshp, filt, stride, pad, lo, hi, average):
    fh, fw = filt
    g, H, W = _gather(shp, fh, fw, tuple(stride), (1, 1), tuple(pad), oshp)
    x = _v(inp).astype(np.int64)
    valid = _padded(np.ones_like(x), shp, H, W, pad, 0)[g]
    if average:
        vals = _padded(x, shp, H, W, pad, 0)[g]
        acc = vals.sum(axis=1)
        cnt = valid.sum(axis=1)
        half = cnt // 2
        safe = np.maximum(cnt, 1)
        pos = (acc + half) // safe
        neg = -((-(acc - half)) // safe)
        v = np.where(cnt == 0, 0, np.where(acc > 0, pos, neg))
    else:
        vals = _padded(x, shp, H, W, pad, -128)[g]
        v = vals.max(axis=1)
    _clamp_into(out, v.reshape(-1), lo, hi)


def _operand(a, imap):
    """An elementwise input as int64, spread to the output's shape by its
    broadcast index map (None: already that shape)."""
    x = _v(a).astype(np.int64)
    return x if imap is None else x[_vi(imap)]


def add(a, a_off, am, ash, b, b_off, bm, bsh, out, om, osh, out_zp, lo, hi, amap=None, bmap=None):
    x = mbqm((_operand(a, amap) + a_off) << 20, am, ash)
    y = mbqm((_operand(b, bmap) + b_off) << 20, bm, bsh)
    v = mbqm(x + y, om, osh) + out_zp
    _clamp_into(out, v, lo, hi)


def mul(a, a_off, b, b_off, out, m, sh, out_zp, lo, hi, amap=None, bmap=None):
    x = _operand(a, amap) + a_off
    y = _operand(b, bmap) + b_off
    v = mbqm(x * y, m, sh) + out_zp
    _clamp_into(out, v, lo, hi)


def mean(src, omap, acc, out, in_zp_n, m, sh, out_zp):
    sums = np.zeros(len(out), dtype=np.int64)
    np.add.at(sums, _vi(omap), _v(src).astype(np.int64))
    v = mbqm(sums - in_zp_n, m, sh) + out_zp
    _clamp_into(out, v, -128, 127)


def _table(key, fn):
    t = _cache.get(key)
    if t is None:
        t = np.array([fn(x) for x in range(-256, 256)], dtype=np.int64)
        _cache[key] = t
    return t


def logistic(src, out, in_zp, mult, shift, radius, table):
    _v(out)[:] = np.frombuffer(table, dtype=np.int8)[_v(src).astype(np.int64) + 128]


def softmax(src, out, depth, mult, shift, diff_min, tables=None):
    from firmware.nn import fixedpoint as fp

    def exp_of(d):
        if d > 0 or d < diff_min:
            return 0
        return fp.exp_on_negative_values(scalar.srdhm(d * (1 << shift), mult), 5)

    # exp of every possible difference (input minus the row's max), Q0.31
    ex = _table(("s", mult, shift, diff_min), exp_of)
    x = _v(src).astype(np.int64).reshape(-1, depth)
    d = x - x.max(axis=1, keepdims=True)
    e = ex[d + 256]
    o = np.empty_like(d)
    for r in range(d.shape[0]):
        total = 0
        for c in range(depth):
            if d[r, c] >= diff_min:
                total = q31.wrap32(total + fp.rescale(int(e[r, c]), 0, 12))
        ux = total & 0xFFFFFFFF
        headroom = scalar._clz32(ux)
        shifted = q31.wrap32(((ux << headroom) & 0xFFFFFFFF) - (1 << 31))
        sc = fp.one_over_one_plus_x(shifted)
        v = rdbpot(srdhm(np.int64(sc), e[r]), 12 - headroom + 31 - 8) - 128
        o[r] = np.where(d[r] >= diff_min, np.clip(v, -128, 127), -128)
    _v(out)[:] = o.reshape(-1)


def quantize(src, out, scale, zp):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        q = (_v(src, np.float32) / np.float32(scale)).astype(np.float64)
    # saturate past int32 and for NaN, as the scalar kernel does
    q = np.clip(np.nan_to_num(q, nan=-(2.0**31), posinf=2.0**31, neginf=-(2.0**31)), -(2.0**31), 2.0**31)
    r = np.where(q >= 0, np.floor(q + 0.5), -np.floor(-q + 0.5))
    _v(out)[:] = np.clip(r.astype(np.int64) + zp, -128, 127)


def dequantize(src, out, scale, zp):
    _v(out, np.float32)[:] = ((_v(src).astype(np.float64) - zp) * scale).astype(np.float32)
