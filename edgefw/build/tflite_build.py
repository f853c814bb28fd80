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


def single_op_model(op_code, tensors, inputs, outputs, options_type=0, options=None, version=1):
    """A model of one operator. ``tensors``: list of dicts with shape,
    type ("int8" | "int32" | "float32"), name, optional data (numpy),
    scales, zps, qdim. ``inputs``/``outputs``: tensor indices of the
    operator; the model's inputs are the operator's inputs that carry no
    data."""
    model_inputs = [i for i in inputs if i >= 0 and tensors[i].get("data") is None]
    return graph_model(tensors, [(op_code, inputs, outputs, options_type, options, version)], model_inputs, outputs)


def conv_model(kind, in_shape, filt, bias, in_q, w_scales, out_q, stride=(1, 1), padding="SAME", activation=0, depth_multiplier=1):
    """CONV_2D (``filt`` [out_c, fh, fw, in_c]) or DEPTHWISE_CONV_2D
    (``filt`` [1, fh, fw, in_c * depth_multiplier]) with int8 NHWC input.
    ``in_q``/``out_q``: (scale, zero point). Per-channel when ``w_scales``
    has one scale per output channel."""
    n, h, w, c = in_shape
    oc = filt.shape[0] if kind == "CONV_2D" else filt.shape[3]
    fh, fw = filt.shape[1], filt.shape[2]
    sh, sw = stride
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
    else:
        oh, ow = (h - fh + sh) // sh, (w - fw + sw) // sw
    qdim = 0 if kind == "CONV_2D" else 3
    tensors = [
        {"shape": in_shape, "type": "int8", "name": "input", "scales": [in_q[0]], "zps": [in_q[1]]},
        {"shape": list(filt.shape), "type": "int8", "name": "filter", "data": filt, "scales": w_scales, "zps": [0] * len(w_scales), "qdim": qdim},
        {"shape": [oc], "type": "int32", "name": "bias", "data": bias, "scales": [in_q[0] * x for x in w_scales], "zps": [0] * len(w_scales)},
        {"shape": [n, oh, ow, oc], "type": "int8", "name": "output", "scales": [out_q[0]], "zps": [out_q[1]]},
    ]
    pad = s.Padding.SAME if padding == "SAME" else s.Padding.VALID
    if kind == "CONV_2D":
        o = s.Conv2DOptionsT()
        o.padding, o.strideW, o.strideH, o.fusedActivationFunction = pad, sw, sh, activation
        o.dilationWFactor = o.dilationHFactor = 1
        return single_op_model(s.BuiltinOperator.CONV_2D, tensors, [0, 1, 2], [3], s.BuiltinOptions.Conv2DOptions, o, 3)
    o = s.DepthwiseConv2DOptionsT()
    o.padding, o.strideW, o.strideH, o.fusedActivationFunction = pad, sw, sh, activation
    o.depthMultiplier = depth_multiplier
    o.dilationWFactor = o.dilationHFactor = 1
    return single_op_model(s.BuiltinOperator.DEPTHWISE_CONV_2D, tensors, [0, 1, 2], [3], s.BuiltinOptions.DepthwiseConv2DOptions, o, 3)


def pool_model(kind, in_shape, in_q, filt=(2, 2), stride=(2, 2), padding="VALID", activation=0):
    """MAX_POOL_2D or AVERAGE_POOL_2D, int8 NHWC; output quantized like
    the input (as TFLite requires)."""
    n, h, w, c = in_shape
    fh, fw = filt
    sh, sw = stride
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
    else:
        oh, ow = (h - fh + sh) // sh, (w - fw + sw) // sw
    tensors = [
        {"shape": in_shape, "type": "int8", "name": "input", "scales": [in_q[0]], "zps": [in_q[1]]},
        {"shape": [n, oh, ow, c], "type": "int8", "name": "output", "scales": [in_q[0]], "zps": [in_q[1]]},
    ]
    o = s.Pool2DOptionsT()
    o.padding = s.Padding.SAME if padding == "SAME" else s.Padding.VALID
    o.strideW, o.strideH, o.filterWidth, o.filterHeight, o.fusedActivationFunction = sw, sh, fw, fh, activation
    code = s.BuiltinOperator.MAX_POOL_2D if kind == "MAX_POOL_2D" else s.BuiltinOperator.AVERAGE_POOL_2D
    return single_op_model(code, tensors, [0], [1], s.BuiltinOptions.Pool2DOptions, o, 2)


def elementwise_model(kind, shape, q1, q2, qo, activation=0, shape_b=None):
    """ADD or MUL of two int8 tensors (both model inputs). ``shape_b``:
    the second input's shape when it broadcasts (numpy's rules) to the
    first's."""
    out_shape = list(np.broadcast_shapes(tuple(shape), tuple(shape_b or shape)))
    tensors = [
        {"shape": shape, "type": "int8", "name": "a", "scales": [q1[0]], "zps": [q1[1]]},
        {"shape": shape_b or shape, "type": "int8", "name": "b", "scales": [q2[0]], "zps": [q2[1]]},
        {"shape": out_shape, "type": "int8", "name": "out", "scales": [qo[0]], "zps": [qo[1]]},
    ]
    if kind == "ADD":
        o = s.AddOptionsT()
        o.fusedActivationFunction = activation
        return single_op_model(s.BuiltinOperator.ADD, tensors, [0, 1], [2], s.BuiltinOptions.AddOptions, o, 2)
    o = s.MulOptionsT()
    o.fusedActivationFunction = activation
    return single_op_model(s.BuiltinOperator.MUL, tensors, [0, 1], [2], s.BuiltinOptions.MulOptions, o, 2)


def mean_model(shape, axes, keep_dims, in_q, out_q):
    """MEAN of an int8 tensor over ``axes`` (a constant int32 tensor;
    negative axes count from the end)."""
    nd = len(shape)
    red = {a % nd for a in axes}
    out_shape = [1 if d in red else n for d, n in enumerate(shape)] if keep_dims else [n for d, n in enumerate(shape) if d not in red]
    tensors = [
        {"shape": shape, "type": "int8", "name": "x", "scales": [in_q[0]], "zps": [in_q[1]]},
        {"shape": [len(axes)], "type": "int32", "name": "axes", "data": np.array(axes, dtype=np.int32)},
        {"shape": out_shape, "type": "int8", "name": "mean", "scales": [out_q[0]], "zps": [out_q[1]]},
    ]
    o = s.ReducerOptionsT()
    o.keepDims = keep_dims
    return single_op_model(s.BuiltinOperator.MEAN, tensors, [0, 1], [2], s.BuiltinOptions.ReducerOptions, o, 2)


def convert_model(kind, shape, q):
    """QUANTIZE (float32 -> int8) or DEQUANTIZE (int8 -> float32)."""
    f = {"shape": shape, "type": "float32", "name": "real"}
    i = {"shape": shape, "type": "int8", "name": "quantized", "scales": [q[0]], "zps": [q[1]]}
    if kind == "QUANTIZE":
        return single_op_model(s.BuiltinOperator.QUANTIZE, [f, i], [0], [1], version=1)
    return single_op_model(s.BuiltinOperator.DEQUANTIZE, [i, f], [0], [1], version=2)


def logistic_model(shape, in_q):
    """LOGISTIC on int8; the output quantization TFLite requires (1/256, -128)."""
    tensors = [
        {"shape": shape, "type": "int8", "name": "x", "scales": [in_q[0]], "zps": [in_q[1]]},
        {"shape": shape, "type": "int8", "name": "y", "scales": [1.0 / 256], "zps": [-128]},
    ]
    return single_op_model(s.BuiltinOperator.LOGISTIC, tensors, [0], [1], version=2)


def softmax_model(shape, in_q, beta=1.0):
    tensors = [
        {"shape": shape, "type": "int8", "name": "logits", "scales": [in_q[0]], "zps": [in_q[1]]},
        {"shape": shape, "type": "int8", "name": "probs", "scales": [1.0 / 256], "zps": [-128]},
    ]
    o = s.SoftmaxOptionsT()
    o.beta = beta
    return single_op_model(s.BuiltinOperator.SOFTMAX, tensors, [0], [1], s.BuiltinOptions.SoftmaxOptions, o, 2)


def graph_model(tensors, ops, inputs, outputs):
    """A model of several operators. ``tensors`` as in ``single_op_model``;
    ``ops``: (builtin code, inputs, outputs, options type, options,
    version) in execution order."""
    types = {"int8": s.TensorType.INT8, "int32": s.TensorType.INT32, "float32": s.TensorType.FLOAT32}
    m = s.ModelT()
    m.version = 3
    codes = []
    m.operatorCodes = []
    m.buffers = [_buffer()]
    sg = s.SubGraphT()
    sg.tensors = []
    for t in tensors:
        data = t.get("data")
        m.buffers.append(_buffer(None if data is None else data.astype(np.int8 if t["type"] == "int8" else "<i4")))
        sg.tensors.append(_tensor(t["shape"], types[t["type"]], len(m.buffers) - 1, t["name"], t.get("scales"), t.get("zps"), t.get("qdim", 0)))
    sg.operators = []
    for code, ins, outs, otype, opts, version in ops:
        if code not in codes:
            codes.append(code)
            oc = s.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            m.operatorCodes.append(oc)
        op = s.OperatorT()
        op.opcodeIndex = codes.index(code)
        op.inputs = list(ins)
        op.outputs = list(outs)
        if opts is not None:
            op.builtinOptionsType = otype
            op.builtinOptions = opts
        sg.operators.append(op)
    sg.inputs = list(inputs)
    sg.outputs = list(outputs)
    m.subgraphs = [sg]
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())
