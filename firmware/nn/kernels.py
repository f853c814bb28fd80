"""Integer kernels, following TensorFlow Lite Micro's reference kernels.

Requantization is the reference path (not TFLITE_SINGLE_ROUNDING): the
real multiplier input_scale * filter_scale / output_scale is turned into a
Q31 fixed-point multiplier and a shift the way TFLite's
``QuantizeMultiplier`` does, and applied with
``SaturatingRoundingDoublingHighMul`` then ``RoundingDivideByPOT``, each
rounding once: the "double rounding" of the reference kernels.

The requantization itself (``mbqm`` and the Q31 arithmetic under it) is
``firmware.nn.q31``'s, shared with ``firmware.nn.fixedpoint``: imports run
one way, kernels -> fixedpoint -> q31.

    from firmware.nn import kernels
    kernels.fully_connected(inp, in_zp, w, w_zp, bias, out, out_zp, mults, shifts, n_in, n_out, lo, hi)
"""

import math

from firmware.nn.q31 import mbqm, quantize_multiplier, rdbpot, split_multiplier, srdhm, srdhm_split, wrap32


def activation_range(act, scale, zero_point):
    """Clamp bounds in the output's int8 domain for a fused activation
    (0 none, 1 RELU, 3 RELU6), as TFLite computes them."""
    lo, hi = -128, 127
    if act == 1:
        lo = max(lo, zero_point)
    elif act == 3:
        lo = max(lo, zero_point)
        hi = min(hi, zero_point + int(math.floor(6.0 / scale + 0.5)))
    elif act != 0:
        raise ValueError("fused activation %d is not supported" % act)
    return lo, hi


def fully_connected(inp, in_zp, w, w_zp, bias, out, out_zp, mults, shifts, n_in, n_out, lo, hi):
    """out[b*n_out + o] for every batch row b; ``mults``/``shifts`` hold one
    entry (per tensor) or one per output channel
    (``q31.channel_multipliers``)."""
    per_channel = len(shifts) > 1
    batches = len(inp) // n_in
    for bt in range(batches):
        base = bt * n_in
        for o in range(n_out):
            acc = 0
            wb = o * n_in
            for i in range(n_in):
                acc += (inp[base + i] - in_zp) * (w[wb + i] - w_zp)
            if bias is not None:
                acc += bias[o]
            k = o if per_channel else 0
            acc = mbqm(acc, mults[2 * k], mults[2 * k + 1], shifts[k]) + out_zp
            if acc < lo:
                acc = lo
            elif acc > hi:
                acc = hi
            out[bt * n_out + o] = acc


def padding(in_size, filt, stride, dilation, same):
    """(output size, padding before) as TFLite computes them."""
    eff = (filt - 1) * dilation + 1
    if same:
        out = (in_size + stride - 1) // stride
    else:
        out = (in_size - eff + stride) // stride
    total = (out - 1) * stride + eff - in_size
    return out, (total // 2 if total > 0 else 0)


def conv2d(inp, in_zp, shp, filt, fshp, bias, out, oshp, out_zp, mults, shifts, stride, dil, pad, lo, hi, depthwise, dm):
    """CONV_2D / DEPTHWISE_CONV_2D, NHWC, per-channel requantization
    (TFLM's ConvPerChannel / DepthwiseConvPerChannel)."""
    n, ih, iw, ic = shp
    _n, oh, ow, oc = oshp
    fh, fw = fshp[1], fshp[2]
    sh, sw = stride
    dh, dw = dil
    ph, pw = pad
    fc = fshp[3]
    for b in range(n):
        for oy in range(oh):
            y0 = oy * sh - ph
            for ox in range(ow):
                x0 = ox * sw - pw
                obase = ((b * oh + oy) * ow + ox) * oc
                for o in range(oc):
                    acc = 0
                    for ky in range(fh):
                        y = y0 + dh * ky
                        if y < 0 or y >= ih:
                            continue
                        for kx in range(fw):
                            x = x0 + dw * kx
                            if x < 0 or x >= iw:
                                continue
                            ib = ((b * ih + y) * iw + x) * ic
                            if depthwise:
                                acc += filt[(ky * fw + kx) * fc + o] * (inp[ib + o // dm] - in_zp)
                            else:
                                fb = ((o * fh + ky) * fw + kx) * fc
                                for c in range(ic):
                                    acc += filt[fb + c] * (inp[ib + c] - in_zp)
                    if bias is not None:
                        acc += bias[o]
                    k = o if len(shifts) > 1 else 0
                    acc = mbqm(acc, mults[2 * k], mults[2 * k + 1], shifts[k]) + out_zp
                    out[obase + o] = lo if acc < lo else (hi if acc > hi else acc)


def pool2d(inp, shp, out, oshp, filt, stride, pad, lo, hi, average):
    """MAX_POOL_2D / AVERAGE_POOL_2D on int8 NHWC (TFLM reference)."""
    n, ih, iw, c = shp
    _n, oh, ow, _c = oshp
    fh, fw = filt
    sh, sw = stride
    ph, pw = pad
    for b in range(n):
        for oy in range(oh):
            y0 = oy * sh - ph
            ys = max(0, -y0)
            ye = min(fh, ih - y0)
            for ox in range(ow):
                x0 = ox * sw - pw
                xs = max(0, -x0)
                xe = min(fw, iw - x0)
                for ch in range(c):
                    if average:
                        acc = 0
                        cnt = 0
                        for ky in range(ys, ye):
                            for kx in range(xs, xe):
                                acc += inp[((b * ih + y0 + ky) * iw + x0 + kx) * c + ch]
                                cnt += 1
                        if cnt == 0:
                            v = 0
                        elif acc > 0:
                            v = (acc + cnt // 2) // cnt
                        else:
                            # C division truncates toward zero
                            v = -((-(acc - cnt // 2)) // cnt)
                    else:
                        v = -128
                        for ky in range(ys, ye):
                            for kx in range(xs, xe):
                                x = inp[((b * ih + y0 + ky) * iw + x0 + kx) * c + ch]
                                if x > v:
                                    v = x
                    out[((b * oh + oy) * ow + ox) * c + ch] = lo if v < lo else (hi if v > hi else v)


def add(a, a_off, am, ash, b, b_off, bm, bsh, out, om, osh, out_zp, lo, hi, amap=None, bmap=None):
    """ADD, TFLite reference: both inputs rescaled to twice the larger
    input scale with 20 bits of headroom, summed, then rescaled.
    ``amap``/``bmap``: broadcast index maps (None: same shape as out)."""
    for i in range(len(out)):
        x = mbqm((a[amap[i] if amap else i] + a_off) << 20, am[0], am[1], ash)
        y = mbqm((b[bmap[i] if bmap else i] + b_off) << 20, bm[0], bm[1], bsh)
        v = mbqm(x + y, om[0], om[1], osh) + out_zp
        out[i] = lo if v < lo else (hi if v > hi else v)


def mul(a, a_off, b, b_off, out, m, sh, out_zp, lo, hi, amap=None, bmap=None):
    for i in range(len(out)):
        v = mbqm((a[amap[i] if amap else i] + a_off) * (b[bmap[i] if bmap else i] + b_off), m[0], m[1], sh) + out_zp
        out[i] = lo if v < lo else (hi if v > hi else v)


def mean(src, omap, acc, out, in_zp_n, m, sh, out_zp):
    """MEAN over some axes (TFLM reference): int32 sums per output, the
    input zero point taken out, one rescale that includes 1/count.
    ``omap``: the output index of every input position; ``acc``: scratch
    planned at load."""
    for j in range(len(acc)):
        acc[j] = 0
    for i in range(len(src)):
        acc[omap[i]] += src[i]
    for j in range(len(out)):
        v = mbqm(acc[j] - in_zp_n, m[0], m[1], sh) + out_zp
        out[j] = -128 if v < -128 else (127 if v > 127 else v)


def quantize(src, out, scale, zp):
    """QUANTIZE float32 -> int8 as TFLM's AffineQuantize: round half away
    from zero of value / scale (a float32 division: the double division
    here, rounded to float32 by the caller's array, is the same number),
    plus the zero point, clamped. A quotient past int32 (a huge input, a
    tiny scale) or NaN saturates: 127 above, -128 below and for NaN."""
    for i in range(len(out)):
        q = src[i] / scale
        if not -2147483648.0 < q < 2147483648.0:
            out[i] = 127 if q > 0 else -128
            continue
        q = _f32(q)
        r = math.floor(q + 0.5) if q >= 0 else -math.floor(-q + 0.5)
        v = int(r) + zp
        out[i] = -128 if v < -128 else (127 if v > 127 else v)


def dequantize(src, out, scale, zp):
    """DEQUANTIZE int8 -> float32: (q - zero point) * scale, one float32
    rounding (the array does it)."""
    for i in range(len(out)):
        out[i] = (src[i] - zp) * scale


def _f32(x):
    import struct

    return struct.unpack("<f", struct.pack("<f", x))[0]


def logistic_params(scale):
    """(multiplier, left shift, input range radius) as TFLM computes them
    for an int8 LOGISTIC (4 integer bits of input)."""
    _fixedpoint()
    real = scale * (1 << 27)
    q, shift = math.frexp(real)
    mult = math.floor(q * (1 << 31) + 0.5)
    radius = math.floor(15.0 * (1 << 27) / (1 << shift))
    return mult, shift, radius


_fp = None


def _fixedpoint():
    """firmware.nn.fixedpoint, imported by the first model that needs it
    (LOGISTIC, SOFTMAX), at load: a model without them does not carry its
    code on the heap, and an import statement in a kernel would allocate."""
    global _fp
    if _fp is None:
        from firmware.nn import fixedpoint

        _fp = fixedpoint
    return _fp


def _logistic_direct(src, out, in_zp, mult, shift, radius):
    # Q0.31 raws pass 2**30: used at load to fill the table below
    fixedpoint = _fixedpoint()
    mh, ml = split_multiplier(mult)
    for i in range(len(out)):
        x = src[i] - in_zp
        if x <= -radius:
            out[i] = -128
        elif x >= radius:
            out[i] = 127
        else:
            q4 = mbqm(x, mh, ml, shift)
            v = rdbpot(fixedpoint.logistic(q4, 4), 23) - 128
            out[i] = -128 if v < -128 else (127 if v > 127 else v)


def logistic_table(in_zp, mult, shift, radius):
    """LOGISTIC's int8 output for every int8 input (``table[x + 128]``),
    built at load: gemmlowp's Q0.31 arithmetic needs ints past 2**30,
    which a 32-bit MicroPython allocates, and the output depends on the
    one input value alone."""
    import array

    out = array.array("b", bytes(256))
    _logistic_direct(array.array("b", range(-128, 128)), out, in_zp, mult, shift, radius)
    return out


def logistic(src, out, in_zp, mult, shift, radius, table):
    for i in range(len(out)):
        out[i] = table[src[i] + 128]


def softmax_params(beta, scale):
    """(multiplier, left shift, diff_min) as TFLM's SoftmaxPrepare computes
    them for int8 (5 integer bits for the scaled differences)."""
    _fixedpoint()
    real = min(beta * scale * (1 << 26), (1 << 31) - 1.0)
    mult, shift = quantize_multiplier(real)
    diff_min = -math.floor(31.0 * (1 << 26) / (1 << shift))
    return mult, shift, diff_min


def _clz32(x):
    n = 0
    while n < 32 and not x & (1 << (31 - n)):
        n += 1
    return n


def softmax_tables(mult, shift, diff_min):
    """exp of every difference d (input minus its row's max, -255..0, at
    ``d + 255``) as TFLM computes it, built at load: in Q0.31 as halves
    (``e >> 15``, ``e & 0x7FFF``) and as the Q12.19 terms of the sum."""
    import array

    fp = _fixedpoint()
    eh, el, e12 = array.array("i", bytes(1024)), array.array("i", bytes(1024)), array.array("i", bytes(1024))
    for j in range(256):
        d = j - 255
        e = fp.exp_on_negative_values(srdhm(d * (1 << shift), mult), 5) if d >= diff_min else 0
        eh[j] = e >> 15
        el[j] = e & 0x7FFF
        e12[j] = fp.rescale(e, 0, 12)
    return eh, el, e12


def _mulhi_hi(ah, al, bh, bl):
    # srdhm(a, b) >> 15 for 0 <= a, b < 2**31 given as halves (h = v >> 15,
    # l = v & 0x7FFF): a * b + 2**30 summed in 15-bit limbs, each small
    a2 = ah >> 15
    a1 = ah & 0x7FFF
    b2 = bh >> 15
    b1 = bh & 0x7FFF
    u = a1 * bl
    w = al * b1
    v = a1 * b1
    x = (((al * bl) >> 15) + (u & 0x7FFF) + (w & 0x7FFF)) >> 15
    x = (x + (u >> 15) + (w >> 15) + (v & 0x7FFF) + a2 * bl + al * b2 + 1) >> 15
    x = x + (v >> 15) + a2 * b1 + a1 * b2
    return (((x >> 15) + a2 * b2) << 14) + ((x & 0x7FFF) >> 1)


def softmax(src, out, depth, mult, shift, diff_min, tables):
    """int8 -> int8 softmax over the last dimension (TFLM reference), in
    small ints: the exponentials come from ``softmax_tables``, and
    gemmlowp's 1 / (1 + x) and the final product run on 15-bit halves.
    A row whose reciprocal would saturate (never seen) takes the direct
    path, which allocates on a 32-bit port."""
    eh, el, e12 = tables
    base = 0
    while base < len(out):
        mx = -128
        for c in range(depth):
            if src[base + c] > mx:
                mx = src[base + c]
        total = 0
        for c in range(depth):
            total += e12[src[base + c] - mx + 255]
        n = 0
        t = total
        while t:
            t >>= 1
            n += 1
        h = 32 - n  # headroom
        if total >= 0x40000000 or h < 1:
            _softmax_direct(src, out, depth, mult, shift, diff_min, base)
            base += depth
            continue
        # shifted = (total << h) - 2**31, then half_den = shifted / 2 + 2**30
        if h >= 15:
            sh = (total << (h - 15)) - 0x10000
            sl = 0
        else:
            sh = (total >> (15 - h)) - 0x10000
            sl = (total & ((1 << (15 - h)) - 1)) << h
        dh = (sh >> 1) + 0x8000
        dl = ((sh & 1) << 14) | (sl >> 1)
        # gemmlowp's one_over_one_plus_x: 48/17 - 32/17 * half_den, then
        # three Newton steps; 48/17 (past 2**30) is added in two parts
        x = srdhm_split(-1010580540, dh, dl) + 0x30000000 + 710564442
        for _ in range(3):
            t = srdhm_split(0x20000000 - srdhm_split(x, dh, dl), x >> 15, x & 0x7FFF)
            if t > 0x1FFFFFFF or t < -0x1FFFFFFF:
                break
            x += t << 2
        else:
            y = x >> 1
            if y > 0x1FFFFFFF:
                ch, cl = 0xFFFF, 0x7FFF  # saturated: 2**31 - 1
            else:
                ch = y >> 13
                cl = (y & 0x1FFF) << 2
            k = n + 3  # the final shift: 12 - h + 31 - 8
            r = 1 << (k - 16)
            for c in range(depth):
                d = src[base + c] - mx
                if d >= diff_min:
                    j = d + 255
                    v = ((_mulhi_hi(ch, cl, eh[j], el[j]) + r) >> (k - 15)) - 128
                    out[base + c] = -128 if v < -128 else (127 if v > 127 else v)
                else:
                    out[base + c] = -128
            base += depth
            continue
        _softmax_direct(src, out, depth, mult, shift, diff_min, base)
        base += depth


def _softmax_direct(src, out, depth, mult, shift, diff_min, base):
    # one row the way TFLM writes it, in Python's unbounded ints
    fp = _fixedpoint()
    mx = -128
    for c in range(depth):
        if src[base + c] > mx:
            mx = src[base + c]
    total = 0
    for c in range(depth):
        d = src[base + c] - mx
        if d >= diff_min:
            e = fp.exp_on_negative_values(srdhm(d * (1 << shift), mult), 5)
            total = wrap32(total + fp.rescale(e, 0, 12))
    ux = total & 0xFFFFFFFF
    headroom = _clz32(ux)
    bits_over_unit = 12 - headroom
    shifted = wrap32(((ux << headroom) & 0xFFFFFFFF) - (1 << 31))
    scale = fp.one_over_one_plus_x(shifted)
    for c in range(depth):
        d = src[base + c] - mx
        if d >= diff_min:
            e = fp.exp_on_negative_values(srdhm(d * (1 << shift), mult), 5)
            v = rdbpot(srdhm(scale, e), bits_over_unit + 31 - 8) - 128
            out[base + c] = -128 if v < -128 else (127 if v > 127 else v)
        else:
            out[base + c] = -128
