"""SOFTMAX int8 -> int8 over the last dimension (TFLM reference; the
exponentials are tabled at load).

    run, plan = prepare(interp, "SOFTMAX", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

from firmware.nn import kernels
from hal.errors import ModelError


def options(b, o, name):
    f = b.field(o, 0) if o is not None else None
    return {"beta": b.f32(f) if f is not None else 0.0}


def prepare(it, name, ins, outs, opts):
    tin, tout = it.probabilities(name, ins, outs)
    if not tin.shape or opts.get("beta", 0) <= 0:
        raise ModelError("SOFTMAX %r: needs a shape and beta > 0" % tout.name)
    mult, shift, diff_min = kernels.softmax_params(opts["beta"], tin.scale[0])
    tables = kernels.softmax_tables(mult, shift, diff_min)
    it.arena_bytes += 3 * 1024
    return run, (name, ins[0], outs[0], tin.shape[-1], mult, shift, diff_min, tables)


def run(t, k, p):
    k.softmax(t[p[1]], t[p[2]], p[3], p[4], p[5], p[6], p[7])
