"""MEAN over constant axes on int8 (TFLM reference: int32 sums, the input
zero point taken out, one rescale that folds in 1/count).

    run, plan = prepare(interp, "MEAN", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

import array

from firmware.nn import q31
from firmware.nn.model import INT32
from hal.errors import ModelError


def options(b, o, name):
    return {}


def prepare(it, name, ins, outs, opts):
    m = it.model
    if len(ins) != 2 or len(outs) != 1 or min(ins) < 0 or not m.tensors[ins[1]].data or m.tensors[ins[1]].type != INT32:
        raise ModelError("MEAN needs an input, a constant int32 axis tensor and one output")
    tin, tout = it.quantized(ins[0], "MEAN"), it.quantized(outs[0], "MEAN")
    shape = tin.shape
    nd = len(shape)
    axes = []
    for a in it.t[ins[1]]:
        r = a + nd if a < 0 else a
        if not 0 <= r < nd:
            raise ModelError("MEAN %r: axis %d is outside a %d-D input" % (tout.name, a, nd))
        if r not in axes:
            axes.append(r)
    n = 1
    for a in axes:
        n *= shape[a]
    if len(it.t[outs[0]]) * n != len(it.t[ins[0]]):
        raise ModelError("MEAN %r: output shape %r does not fit input %r reduced over %r" % (tout.name, tout.shape, shape, axes))
    # where each input position lands in the output (stride 0 along a reduced axis)
    ostr = [0] * nd
    step = 1
    for d in range(nd - 1, -1, -1):
        if d not in axes:
            ostr[d] = step
            step *= shape[d]
    omap = it.index_map(shape, ostr)
    # TFLM folds the 1/n of the mean into the rescaling multiplier
    mult, sh = q31.quantize_multiplier(tin.scale[0] / tout.scale[0])
    k = min(len(bin(n)) - 3, 32, 31 + sh)
    mult = (mult << k) // n
    sh -= k
    acc = array.array("i", bytes(4 * len(it.t[outs[0]])))
    it.arena_bytes += 4 * len(acc)
    return run, ("MEAN", ins[0], omap, acc, outs[0], tin.zero_point[0] * n, q31.split_multiplier(mult), sh, tout.zero_point[0])


def run(t, k, p):
    _n, ti, omap, acc, to, zpn, m_, sh, ozp = p
    k.mean(t[ti], omap, acc, t[to], zpn, m_, sh, ozp)
