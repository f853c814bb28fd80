"""RESHAPE: the values copied as they are (the arena gives input and
output their own places).

    run, plan = prepare(interp, "RESHAPE", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

from hal.errors import ModelError


def options(b, o, name):
    return {}


def prepare(it, name, ins, outs, opts):
    m = it.model
    if not ins or len(outs) != 1 or ins[0] < 0 or len(it.t[ins[0]]) != len(it.t[outs[0]]) or m.tensors[ins[0]].type != m.tensors[outs[0]].type:
        raise ModelError("RESHAPE: input and output must hold the same number of values")
    return run, (name, ins[0], outs[0])


def run(t, k, p):
    src, dst = t[p[1]], t[p[2]]
    for i in range(len(dst)):
        dst[i] = src[i]


def macs(t, p):
    return 0
