"""Writing small int8 ``.tflite`` models from numpy arrays, without
TensorFlow: the flatbuffer is built with the ``flatbuffers`` package and
the TFLite schema classes that the ``tflite-micro`` package ships.

    data = dense_model(weights, bias, in_scale, in_zp, w_scales, out_scale, out_zp, activation)
"""

import flatbuffers
import numpy as np
from tflite_micro.python.tflite_micro.runtime import schema_fb as s


def _tensor(shape, ttype, buffer, name, scales=None, zps=None, qdim=0):
    t = s.TensorT()
    t.shape = list(shape)
    t.type = ttype
    t.buffer = buffer
    t.name = name.encode()
    if scales is not None:
        q = s.QuantizationParametersT()
        q.scale = [float(x) for x in scales]
        q.zeroPoint = [int(x) for x in zps]
        q.quantizedDimension = qdim
        t.quantization = q
    return t


def _buffer(data=None):
    b = s.BufferT()
    if data is not None:
        b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
    return b


def dense_model(weights, bias, in_scale, in_zp, w_scales, out_scale, out_zp, activation=0, batch=1):
    """One FULLY_CONNECTED layer: int8 input [batch, n_in], int8 weights
    [n_out, n_in] (per-tensor when ``w_scales`` has one entry, else per
    output channel), int32 bias, int8 output. ``activation``: 0 none,
    1 RELU, 3 RELU6."""
    n_out, n_in = weights.shape
    per_channel = len(w_scales) > 1
    bias_scales = [in_scale * ws for ws in w_scales]
    m = s.ModelT()
    m.version = 3
    oc = s.OperatorCodeT()
    oc.builtinCode = s.BuiltinOperator.FULLY_CONNECTED
    oc.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    oc.version = 5 if per_channel else 4
    m.operatorCodes = [oc]
    m.buffers = [_buffer(), _buffer(), _buffer(weights.astype(np.int8)), _buffer(bias.astype("<i4")), _buffer()]
    sg = s.SubGraphT()
    sg.tensors = [
        _tensor([batch, n_in], s.TensorType.INT8, 1, "input", [in_scale], [in_zp]),
        _tensor([n_out, n_in], s.TensorType.INT8, 2, "weights", w_scales, [0] * len(w_scales), 0),
        _tensor([n_out], s.TensorType.INT32, 3, "bias", bias_scales, [0] * len(w_scales), 0),
        _tensor([batch, n_out], s.TensorType.INT8, 4, "output", [out_scale], [out_zp]),
    ]
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs = [0, 1, 2]
    op.outputs = [3]
    op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
    opts = s.FullyConnectedOptionsT()
    opts.fusedActivationFunction = activation
    op.builtinOptions = opts
    sg.operators = [op]
    sg.inputs = [0]
    sg.outputs = [3]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
