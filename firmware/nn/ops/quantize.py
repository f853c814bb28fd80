"""QUANTIZE (float32 -> int8) and DEQUANTIZE (int8 -> float32): the float
edges of a model (TFLM's AffineQuantize and Dequantize).

    run, plan = prepare(interp, "QUANTIZE", ins, outs, opts)
    run(interp.t, interp.k, plan)
"""

from firmware.nn.model import FLOAT32, INT8
from hal.errors import ModelError


def options(b, o, name):
    return {}


def prepare(it, name, ins, outs, opts):
    m = it.model
    if len(ins) != 1 or len(outs) != 1 or len(it.t[ins[0]]) != len(it.t[outs[0]]):
        raise ModelError("%s needs one input and one output of the same size" % name)
    src, dst = m.tensors[ins[0]], m.tensors[outs[0]]
    want = (FLOAT32, INT8) if name == "QUANTIZE" else (INT8, FLOAT32)
    if (src.type, dst.type) != want:
        raise ModelError("%s %r: only float32 <-> int8 is supported" % (name, dst.name))
    q = it.quantized(outs[0] if name == "QUANTIZE" else ins[0], name)
    return (run_quantize if name == "QUANTIZE" else run_dequantize), (name, ins[0], outs[0], q.scale[0], q.zero_point[0])


def run_quantize(t, k, p):
    k.quantize(t[p[1]], t[p[2]], p[3], p[4])


def run_dequantize(t, k, p):
    k.dequantize(t[p[1]], t[p[2]], p[3], p[4])
