"""FULLY_CONNECTED on int8, per-tensor or per-channel weights (TFLM's
reference FullyConnected).

    run, plan = prepare(interp, "FULLY_CONNECTED", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

from firmware.nn import q31
from hal.errors import ModelError


def options(b, o, name):
    if o is None:
        return {}
    return {"activation": b.scalar(o, 0, "b", 0), "keep_num_dims": b.scalar(o, 2, "B", 0)}


def prepare(it, name, ins, outs, opts):
    m = it.model
    if len(ins) < 2 or len(outs) != 1 or min(ins[:2]) < 0:
        raise ModelError("FULLY_CONNECTED needs input, weights (and bias) and one output, got inputs %r outputs %r" % (ins, outs))
    ti, tw, tb = ins[0], ins[1], ins[2] if len(ins) > 2 else -1
    tin, tw_, tout = it.quantized(ti, name), m.tensors[tw], it.quantized(outs[0], name)
    it.check_weights(name, tw, tb)
    if len(tw_.shape) != 2 or min(tw_.shape) <= 0:
        raise ModelError("FULLY_CONNECTED weights %r: shape %r, expected [units, inputs]" % (tw_.name, tw_.shape))
    n_out, n_in = tw_.shape[0], tw_.shape[1]
    t = it.t
    if len(t[tw]) != n_out * n_in or len(t[ti]) % n_in or len(t[outs[0]]) != len(t[ti]) // n_in * n_out:
        sizes = (tout.name, len(t[ti]), len(t[tw]), len(t[outs[0]]))
        raise ModelError("FULLY_CONNECTED %r: tensor sizes disagree (input %d, weights %d, output %d)" % sizes)
    if tb >= 0 and len(t[tb]) != n_out:
        raise ModelError("FULLY_CONNECTED %r: bias has %d values for %d units" % (tout.name, len(t[tb]), n_out))
    if not tw_.scale or len(tw_.scale) not in (1, n_out):
        raise ModelError("FULLY_CONNECTED %r: input, weights and output must be quantized (scale and zero point)" % (tout.name,))
    if min(tw_.scale) <= 0:
        raise ModelError("FULLY_CONNECTED %r: scales must be positive and zero points int8" % (tout.name,))
    mults, shifts = q31.channel_multipliers(tin.scale[0], tw_.scale, tout.scale[0])
    lo, hi = it.activation(opts.get("activation", 0), tout, name)
    wzp = tw_.zero_point[0] if tw_.zero_point else 0
    return run, (name, ti, tw, tb, outs[0], tin.zero_point[0], wzp, tout.zero_point[0], mults, shifts, n_in, n_out, lo, hi)


def run(t, k, p):
    _n, ti, tw, tb, to, izp, wzp, ozp, mults, shifts, n_in, n_out, lo, hi = p
    k.fully_connected(t[ti], izp, t[tw], wzp, t[tb] if tb >= 0 else None, t[to], ozp, mults, shifts, n_in, n_out, lo, hi)


def macs(t, p):
    return len(t[p[1]]) * p[11]
