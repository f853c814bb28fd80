"""The int8 kernels' inner loops as MicroPython native code (viper), for a
port with a native emitter: the unix port on x86-64, and an ESP32 from a
``.mpy`` built with ``mpy-cross -march=xtensawin``. Same arguments and the
same output bytes as firmware.nn.kernels (TFLM's reference kernels); the
operators not here (SOFTMAX and LOGISTIC, table look-ups; QUANTIZE and
DEQUANTIZE, float) are firmware.nn.kernels' own, re-exported.

    from firmware.nn import kernels_native as k   # ImportError on CPython,
    k.fully_connected(...)                        # SyntaxError or ValueError
                                                  # on a port without one

firmware.nn.interp tries this module once, at import, and keeps the pure
kernels if it does not load. Viper integers are machine words, 64 bits on
x86-64 and 32 on an ESP32, so the arithmetic is written to give TFLM's
int32 results on both: the accumulator and a left-shifted one wrap to 32
bits (``(x + M) & MASK) - M``, the identity on a 32-bit word), and the
requantization is ``q31.srdhm_split``'s, in 15-bit limbs that never pass
2**31. FULLY_CONNECTED and the convolutions requantize inline: calling
another viper function boxes the arguments, and a box past 2**30 is a
heap allocation on a 32-bit port. ADD, MUL and MEAN call ``_mbqm``, whose
arguments stay below 2**30 there (an int8 difference shifted by 20 bits,
a product of two, a sum of int8 values). Viper takes no default
arguments: every argument is passed, as the operators' run functions do.
"""

# ruff: noqa: F821 (ptr8, ptr32 and uint are viper's own types)
import micropython

from firmware.nn.kernels import dequantize, logistic, quantize, softmax  # noqa: F401


@micropython.viper
def fully_connected(inp, in_zp: int, w, w_zp: int, bias, out, out_zp: int, mults, shifts, n_in: int, n_out: int, lo: int, hi: int):
    pi = ptr8(inp)
    pw = ptr8(w)
    po = ptr8(out)
    pm = ptr32(mults)
    ps = ptr32(shifts)
    has_bias = 0
    if bias:
        pb = ptr32(bias)
        has_bias = 1
    per_channel = int(len(shifts)) > 1
    batches = int(len(inp)) // n_in
    M = int(1) << 31
    MASK = M + (M - 1)
    k = 0
    for bt in range(batches):
        base = bt * n_in
        for o in range(n_out):
            acc = 0
            wb = o * n_in
            for i in range(n_in):
                acc += (((pi[base + i] ^ 0x80) - 0x80) - in_zp) * (((pw[wb + i] ^ 0x80) - 0x80) - w_zp)
            if has_bias:
                acc += (pb[o] ^ M) - M
            if per_channel:
                k = o
            # mbqm(acc, qh, ql, shift): as q31.mbqm
            acc = ((acc + M) & MASK) - M
            sh = (ps[k] ^ M) - M
            if sh > 0:
                acc = (((acc << sh) + M) & MASK) - M
            qh = pm[2 * k]
            ql = pm[2 * k + 1]
            s = 0
            mu = uint(acc)
            if acc < 0:
                s = 1
                mu = uint(0 - acc)
            mh = int(mu >> 15)
            ml = int(mu & 0x7FFF)
            b2 = qh >> 15
            b1 = qh & 0x7FFF
            u = mh * ql
            v = ml * b1
            c = mh * b1
            x = (ml * ql - s) >> 15
            x = ((x + (u & 0x7FFF) + (v & 0x7FFF)) >> 15) + (u >> 15) + (v >> 15) + (c & 0x7FFF) + ml * b2 + 1
            q = (((x >> 15) + (c >> 15) + mh * b2) << 14) + ((x & 0x7FFF) >> 1)
            if s:
                q = 0 - q
            if sh < 0:
                e = 0 - sh
                mask = (1 << e) - 1
                thr = mask >> 1
                if q < 0:
                    thr += 1
                r = q & mask
                q = q >> e
                if r > thr:
                    q += 1
            q += out_zp
            if q < lo:
                q = lo
            elif q > hi:
                q = hi
            po[bt * n_out + o] = q


@micropython.viper
def conv2d(inp, in_zp: int, shp, filt, fshp, bias, out, oshp, out_zp: int, mults, shifts, stride, dil, pad, lo: int, hi: int, depthwise, dm: int):
    pi = ptr8(inp)
    pf = ptr8(filt)
    po = ptr8(out)
    pm = ptr32(mults)
    ps = ptr32(shifts)
    has_bias = 0
    if bias:
        pb = ptr32(bias)
        has_bias = 1
    dw = 0
    if depthwise:
        dw = 1
    per_channel = int(len(shifts)) > 1
    n = int(shp[0])
    ih = int(shp[1])
    iw = int(shp[2])
    ic = int(shp[3])
    oh = int(oshp[1])
    ow = int(oshp[2])
    oc = int(oshp[3])
    fh = int(fshp[1])
    fw = int(fshp[2])
    fc = int(fshp[3])
    sh_ = int(stride[0])
    sw = int(stride[1])
    dh = int(dil[0])
    dwl = int(dil[1])
    ph = int(pad[0])
    pw = int(pad[1])
    M = int(1) << 31
    MASK = M + (M - 1)
    k = 0
    for b in range(n):
        for oy in range(oh):
            y0 = oy * sh_ - ph
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
                            x = x0 + dwl * kx
                            if x < 0 or x >= iw:
                                continue
                            ib = ((b * ih + y) * iw + x) * ic
                            if dw:
                                acc += ((pf[(ky * fw + kx) * fc + o] ^ 0x80) - 0x80) * (((pi[ib + o // dm] ^ 0x80) - 0x80) - in_zp)
                            else:
                                fb = ((o * fh + ky) * fw + kx) * fc
                                for c in range(ic):
                                    acc += ((pf[fb + c] ^ 0x80) - 0x80) * (((pi[ib + c] ^ 0x80) - 0x80) - in_zp)
                    if has_bias:
                        acc += (pb[o] ^ M) - M
                    if per_channel:
                        k = o
                    # mbqm(acc, qh, ql, shift), as in fully_connected above
                    acc = ((acc + M) & MASK) - M
                    sh = (ps[k] ^ M) - M
                    if sh > 0:
                        acc = (((acc << sh) + M) & MASK) - M
                    qh = pm[2 * k]
                    ql = pm[2 * k + 1]
                    s = 0
                    mu = uint(acc)
                    if acc < 0:
                        s = 1
                        mu = uint(0 - acc)
                    mh = int(mu >> 15)
                    ml = int(mu & 0x7FFF)
                    b2 = qh >> 15
                    b1 = qh & 0x7FFF
                    u = mh * ql
                    v = ml * b1
                    c2 = mh * b1
                    xx = (ml * ql - s) >> 15
                    xx = ((xx + (u & 0x7FFF) + (v & 0x7FFF)) >> 15) + (u >> 15) + (v >> 15) + (c2 & 0x7FFF) + ml * b2 + 1
                    q = (((xx >> 15) + (c2 >> 15) + mh * b2) << 14) + ((xx & 0x7FFF) >> 1)
                    if s:
                        q = 0 - q
                    if sh < 0:
                        e = 0 - sh
                        mask = (1 << e) - 1
                        thr = mask >> 1
                        if q < 0:
                            thr += 1
                        r = q & mask
                        q = q >> e
                        if r > thr:
                            q += 1
                    q += out_zp
                    if q < lo:
                        q = lo
                    elif q > hi:
                        q = hi
                    po[obase + o] = q


@micropython.viper
def pool2d(inp, shp, out, oshp, filt, stride, pad, lo: int, hi: int, average):
    pi = ptr8(inp)
    po = ptr8(out)
    avg = 0
    if average:
        avg = 1
    n = int(shp[0])
    ih = int(shp[1])
    iw = int(shp[2])
    c = int(shp[3])
    oh = int(oshp[1])
    ow = int(oshp[2])
    fh = int(filt[0])
    fw = int(filt[1])
    sh = int(stride[0])
    sw = int(stride[1])
    ph = int(pad[0])
    pw = int(pad[1])
    for b in range(n):
        for oy in range(oh):
            y0 = oy * sh - ph
            ys = 0 - y0
            if ys < 0:
                ys = 0
            ye = ih - y0
            if ye > fh:
                ye = fh
            for ox in range(ow):
                x0 = ox * sw - pw
                xs = 0 - x0
                if xs < 0:
                    xs = 0
                xe = iw - x0
                if xe > fw:
                    xe = fw
                for ch in range(c):
                    if avg:
                        acc = 0
                        cnt = 0
                        for ky in range(ys, ye):
                            for kx in range(xs, xe):
                                acc += (pi[((b * ih + y0 + ky) * iw + x0 + kx) * c + ch] ^ 0x80) - 0x80
                                cnt += 1
                        if cnt == 0:
                            v = 0
                        elif acc > 0:
                            v = (acc + cnt // 2) // cnt
                        else:
                            # C division truncates toward zero
                            v = 0 - ((0 - (acc - cnt // 2)) // cnt)
                    else:
                        v = -128
                        for ky in range(ys, ye):
                            for kx in range(xs, xe):
                                x = (pi[((b * ih + y0 + ky) * iw + x0 + kx) * c + ch] ^ 0x80) - 0x80
                                if x > v:
                                    v = x
                    if v < lo:
                        v = lo
                    elif v > hi:
                        v = hi
                    po[((b * oh + oy) * ow + ox) * c + ch] = v


@micropython.viper
def _mbqm(x: int, qh: int, ql: int, sh: int) -> int:
    # q31.mbqm, for the element-wise kernels below
    M = int(1) << 31
    MASK = M + (M - 1)
    x = ((x + M) & MASK) - M
    if sh > 0:
        x = (((x << sh) + M) & MASK) - M
    s = 0
    mu = uint(x)
    if x < 0:
        s = 1
        mu = uint(0 - x)
    mh = int(mu >> 15)
    ml = int(mu & 0x7FFF)
    b2 = qh >> 15
    b1 = qh & 0x7FFF
    u = mh * ql
    v = ml * b1
    c = mh * b1
    y = (ml * ql - s) >> 15
    y = ((y + (u & 0x7FFF) + (v & 0x7FFF)) >> 15) + (u >> 15) + (v >> 15) + (c & 0x7FFF) + ml * b2 + 1
    q = (((y >> 15) + (c >> 15) + mh * b2) << 14) + ((y & 0x7FFF) >> 1)
    if s:
        q = 0 - q
    if sh < 0:
        e = 0 - sh
        mask = (1 << e) - 1
        thr = mask >> 1
        if q < 0:
            thr += 1
        r = q & mask
        q = q >> e
        if r > thr:
            q += 1
    return q


@micropython.viper
def add(a, a_off: int, am, ash: int, b, b_off: int, bm, bsh: int, out, om, osh: int, out_zp: int, lo: int, hi: int, amap, bmap):
    pa = ptr8(a)
    pb = ptr8(b)
    po = ptr8(out)
    amh = int(am[0])
    aml = int(am[1])
    bmh = int(bm[0])
    bml = int(bm[1])
    omh = int(om[0])
    oml = int(om[1])
    has_a = 0
    if amap:
        ma = ptr32(amap)
        has_a = 1
    has_b = 0
    if bmap:
        mb = ptr32(bmap)
        has_b = 1
    for i in range(int(len(out))):
        ia = i
        if has_a:
            ia = ma[i]
        ib = i
        if has_b:
            ib = mb[i]
        x = int(_mbqm((((pa[ia] ^ 0x80) - 0x80) + a_off) << 20, amh, aml, ash))
        y = int(_mbqm((((pb[ib] ^ 0x80) - 0x80) + b_off) << 20, bmh, bml, bsh))
        v = int(_mbqm(x + y, omh, oml, osh)) + out_zp
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        po[i] = v


@micropython.viper
def mul(a, a_off: int, b, b_off: int, out, m, sh: int, out_zp: int, lo: int, hi: int, amap, bmap):
    pa = ptr8(a)
    pb = ptr8(b)
    po = ptr8(out)
    mh = int(m[0])
    ml = int(m[1])
    has_a = 0
    if amap:
        ma = ptr32(amap)
        has_a = 1
    has_b = 0
    if bmap:
        mb = ptr32(bmap)
        has_b = 1
    for i in range(int(len(out))):
        ia = i
        if has_a:
            ia = ma[i]
        ib = i
        if has_b:
            ib = mb[i]
        v = int(_mbqm((((pa[ia] ^ 0x80) - 0x80) + a_off) * (((pb[ib] ^ 0x80) - 0x80) + b_off), mh, ml, sh)) + out_zp
        if v < lo:
            v = lo
        elif v > hi:
            v = hi
        po[i] = v


@micropython.viper
def mean(src, omap, acc, out, in_zp_n: int, m, sh: int, out_zp: int):
    ps = ptr8(src)
    pm = ptr32(omap)
    pa = ptr32(acc)
    po = ptr8(out)
    mh = int(m[0])
    ml = int(m[1])
    M = int(1) << 31
    na = int(len(acc))
    for j in range(na):
        pa[j] = 0
    for i in range(int(len(src))):
        k = pm[i]
        pa[k] = pa[k] + ((ps[i] ^ 0x80) - 0x80)
    for j in range(int(len(out))):
        v = int(_mbqm(((pa[j] ^ M) - M) - in_zp_n, mh, ml, sh)) + out_zp
        if v < -128:
            v = -128
        elif v > 127:
            v = 127
        po[j] = v
