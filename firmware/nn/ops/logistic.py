"""LOGISTIC int8 -> int8 (TFLM reference), as a 256-entry table built at
load: gemmlowp's arithmetic needs ints past 2**30.

    run, plan = prepare(interp, "LOGISTIC", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

from firmware.nn import kernels


def options(b, o, name):
    return {}


def prepare(it, name, ins, outs, opts):
    tin, _tout = it.probabilities(name, ins, outs)
    mult, shift, radius = kernels.logistic_params(tin.scale[0])
    table = kernels.logistic_table(tin.zero_point[0], mult, shift, radius)
    it.arena_bytes += 256
    return run, (name, ins[0], outs[0], tin.zero_point[0], mult, shift, radius, table)


def run(t, k, p):
    k.logistic(t[p[1]], t[p[2]], p[3], p[4], p[5], p[6], p[7])
