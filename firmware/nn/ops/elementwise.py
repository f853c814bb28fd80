"""ADD and MUL on int8, with numpy's broadcasting (TFLM reference: ADD
rescales both inputs to twice the larger scale with 20 bits of headroom).

    run, plan = prepare(interp, "ADD", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

from firmware.nn import q31
from hal.errors import ModelError


def options(b, o, name):
    return {"activation": b.scalar(o, 0, "b", 0) if o else 0}


def prepare(it, name, ins, outs, o):
    if len(ins) != 2 or len(outs) != 1 or min(ins) < 0:
        raise ModelError("%s needs two inputs and one output" % name)
    ta, tb, tout = it.quantized(ins[0], name), it.quantized(ins[1], name), it.quantized(outs[0], name)
    amap, bmap = _broadcast(it, name, ins[0], tout), _broadcast(it, name, ins[1], tout)
    lo, hi = it.activation(o.get("activation", 0), tout, name)
    split, qm = q31.split_multiplier, q31.quantize_multiplier
    if name == "ADD":
        twice = 2 * max(ta.scale[0], tb.scale[0])
        am, ash = qm(ta.scale[0] / twice)
        bm, bsh = qm(tb.scale[0] / twice)
        om, osh = qm(twice / ((1 << 20) * tout.scale[0]))
        plan = (
            name,
            ins[0],
            -ta.zero_point[0],
            split(am),
            ash,
            ins[1],
            -tb.zero_point[0],
            split(bm),
            bsh,
            outs[0],
            split(om),
            osh,
            tout.zero_point[0],
            lo,
            hi,
            amap,
            bmap,
        )
        return run_add, plan
    m_, sh = qm(ta.scale[0] * tb.scale[0] / tout.scale[0])
    return run_mul, (name, ins[0], -ta.zero_point[0], ins[1], -tb.zero_point[0], outs[0], split(m_), sh, tout.zero_point[0], lo, hi, amap, bmap)


def _broadcast(it, name, ti, tout):
    """Index of ``ti``'s value for each output position (numpy's rules:
    shapes aligned at the right, a dimension of 1 repeats), or None when
    the shapes are the same."""
    shp, oshp = it.model.tensors[ti].shape, tout.shape
    if list(shp) == list(oshp):
        return None
    nd = len(oshp)
    full = [1] * (nd - len(shp)) + list(shp)
    if len(shp) > nd or any(full[d] != oshp[d] and full[d] != 1 for d in range(nd)):
        raise ModelError("%s %r: input shape %r does not broadcast to the output's %r" % (name, tout.name, shp, oshp))
    strides = [0] * nd
    step = 1
    for d in range(nd - 1, -1, -1):
        if full[d] != 1:
            strides[d] = step
        step *= full[d]
    return it.index_map(oshp, strides)


def run_add(t, k, p):
    _n, ta, ao, am, ash, tb, bo, bm, bsh, to, om, osh, ozp, lo, hi, amap, bmap = p
    k.add(t[ta], ao, am, ash, t[tb], bo, bm, bsh, t[to], om, osh, ozp, lo, hi, amap, bmap)


def run_mul(t, k, p):
    _n, ta, ao, tb, bo, to, m_, sh, ozp, lo, hi, amap, bmap = p
    k.mul(t[ta], ao, t[tb], bo, t[to], m_, sh, ozp, lo, hi, amap, bmap)
