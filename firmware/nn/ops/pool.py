"""MAX_POOL_2D and AVERAGE_POOL_2D on int8 NHWC (TFLM reference).

run, plan = prepare(interp, "MAX_POOL_2D", ins, outs, opts)
run(interp.t, interp.k, plan)
"""

from firmware.nn import kernels
from hal.errors import ModelError


def options(b, o, name):
    opts = b.conv_opts(o, (0, 1, 2, 5, None, None), None)
    opts["filter_w"] = b.scalar(o, 3, "i", 0) if o else 0
    opts["filter_h"] = b.scalar(o, 4, "i", 0) if o else 0
    return opts


def prepare(it, name, ins, outs, o):
    if len(ins) != 1 or len(outs) != 1:
        raise ModelError("%s needs one input and one output" % name)
    tin, tout = it.quantized(ins[0], name), it.quantized(outs[0], name)
    fh, fw, sh, sw = o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"]
    if min(fh, fw, sh, sw) < 1 or len(tin.shape) != 4:
        raise ModelError("%s %r: filter and strides must be >= 1 on a 4-D input" % (name, tout.name))
    same = o["padding"] == 0
    oh, ph = kernels.padding(tin.shape[1], fh, sh, 1, same)
    ow, pw = kernels.padding(tin.shape[2], fw, sw, 1, same)
    if [tin.shape[0], oh, ow, tin.shape[3]] != list(tout.shape):
        raise ModelError("%s %r: output shape %r, expected %r" % (name, tout.name, tout.shape, [tin.shape[0], oh, ow, tin.shape[3]]))
    lo, hi = it.activation(o.get("activation", 0), tout, name)
    return run, (name, ins[0], tin.shape, outs[0], tout.shape, (fh, fw), (sh, sw), (ph, pw), lo, hi, name == "AVERAGE_POOL_2D")


def run(t, k, p):
    _n, ti, ishp, to, oshp, filt, st, pad, lo, hi, average = p
    k.pool2d(t[ti], ishp, t[to], oshp, filt, st, pad, lo, hi, average)
