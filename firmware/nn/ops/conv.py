"""CONV_2D and DEPTHWISE_CONV_2D on int8 NHWC with per-channel
requantization (TFLM's ConvPerChannel / DepthwiseConvPerChannel).

    run, plan = prepare(interp, "CONV_2D", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

from firmware.nn import kernels, q31
from hal.errors import ModelError


def options(b, o, name):
    # DepthwiseConv2DOptions holds depth_multiplier in field 3, so its
    # activation and dilations sit one field later than Conv2DOptions'
    if name == "DEPTHWISE_CONV_2D":
        return b.conv_opts(o, (0, 1, 2, 4, 5, 6), 3)
    return b.conv_opts(o, (0, 1, 2, 3, 4, 5), None)


def prepare(it, name, ins, outs, o):
    m = it.model
    if len(ins) < 2 or len(outs) != 1:
        raise ModelError("%s needs input, filter (and bias) and one output" % name)
    tin, tf, tout = it.quantized(ins[0], name), m.tensors[ins[1]], it.quantized(outs[0], name)
    tb = ins[2] if len(ins) > 2 else -1
    it.check_weights(name, ins[1], tb)
    if len(tin.shape) != 4 or len(tf.shape) != 4 or len(tout.shape) != 4:
        raise ModelError("%s %r: input, filter and output must be 4-D (NHWC)" % (name, tout.name))
    dw = name == "DEPTHWISE_CONV_2D"
    oc = tout.shape[3]
    if (tf.shape[3] if dw else tf.shape[0]) != oc or (not dw and tf.shape[3] != tin.shape[3]):
        raise ModelError("%s %r: filter shape %r does not fit input %r and output %r" % (name, tout.name, tf.shape, tin.shape, tout.shape))
    dm = o.get("depth_multiplier", 1) if dw else 1
    if dw and (dm < 1 or tin.shape[3] * dm != oc):
        raise ModelError("%s %r: depth multiplier %d does not fit %d -> %d channels" % (name, tout.name, dm, tin.shape[3], oc))
    sh, sw = o["stride_h"], o["stride_w"]
    dh, dwl = o["dilation_h"], o["dilation_w"]
    if min(sh, sw, dh, dwl) < 1:
        raise ModelError("%s %r: strides and dilations must be >= 1" % (name, tout.name))
    same = o["padding"] == 0
    oh, ph = kernels.padding(tin.shape[1], tf.shape[1], sh, dh, same)
    ow, pw = kernels.padding(tin.shape[2], tf.shape[2], sw, dwl, same)
    if [tin.shape[0], oh, ow, oc] != list(tout.shape):
        raise ModelError("%s %r: output shape %r, expected %r" % (name, tout.name, tout.shape, [tin.shape[0], oh, ow, oc]))
    if len(tf.scale) not in (1, oc) or min(tf.scale) <= 0 or (tb >= 0 and len(it.t[tb]) != oc):
        raise ModelError("%s %r: filter scales or bias do not match %d output channels" % (name, tout.name, oc))
    mults, shifts = q31.channel_multipliers(tin.scale[0], tf.scale, tout.scale[0])
    lo, hi = it.activation(o.get("activation", 0), tout, name)
    izp, ozp = tin.zero_point[0], tout.zero_point[0]
    return run, (name, ins[0], tin.shape, ins[1], tf.shape, tb, outs[0], tout.shape, izp, ozp, mults, shifts, (sh, sw), (dh, dwl), (ph, pw), lo, hi, dw, dm)


def run(t, k, p):
    _n, ti, ishp, tf, fshp, tb, to, oshp, izp, ozp, mults, shifts, st, dil, pad, lo, hi, dw, dm = p
    k.conv2d(t[ti], izp, ishp, t[tf], fshp, t[tb] if tb >= 0 else None, t[to], oshp, ozp, mults, shifts, st, dil, pad, lo, hi, dw, dm)


def macs(t, p):
    fshp = p[4]
    return len(t[p[6]]) * fshp[1] * fshp[2] * (1 if p[17] else fshp[3])
