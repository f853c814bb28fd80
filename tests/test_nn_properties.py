"""Property tests: single-operator models with parameters drawn by
hypothesis (shapes, strides, padding, dilation, activations, per-tensor
and per-channel scales, zero points, broadcast shapes, reduction axes),
each run by the micro interpreter (numpy and scalar kernels) and by
tflite-micro on the same random inputs: the outputs must be the same
bytes."""

import array

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from firmware.nn.interp import Interpreter

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="pip install tflite-micro (the test extra)")

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scales = st.floats(0.002, 0.2)
zero_points = st.integers(-30, 30)


def _same(data, inputs, seed):
    """Run both interpreters on a few random inputs; return the outputs."""
    ref = runtime.Interpreter.from_bytes(data)
    ours = [Interpreter(data, vectorise=v) for v in (False, True)]
    rng = np.random.default_rng(seed)
    for _ in range(3):
        xs = [rng.integers(-128, 128, shape).astype(np.int8) for shape in inputs]
        for k, x in enumerate(xs):
            ref.set_input(x, k)
        ref.invoke()
        want = ref.get_output(0).tobytes()
        for it in ours:
            for k, x in enumerate(xs):
                it.input(k)[:] = array.array("b", x.tobytes())
            it.invoke()
            assert bytes(it.output(0)) == want, "numpy" if it.k.__name__.endswith("_np") else "scalar"


def _out_size(n, f, stride, dil, same):
    eff = (f - 1) * dil + 1
    return (n + stride - 1) // stride if same else (n - eff + stride) // stride


@SETTINGS
@given(
    st.sampled_from(["CONV_2D", "DEPTHWISE_CONV_2D"]),
    st.integers(1, 7),
    st.integers(1, 7),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 2),
    st.integers(1, 2),
    st.booleans(),
    st.sampled_from([0, 1, 3]),
    st.booleans(),
    st.integers(1, 4),
    st.integers(0, 2**16),
    scales,
    zero_points,
    zero_points,
)
def test_conv(kind, h, w, fh, fw, sh, sw, dh, dw, same, act, per_channel, ch, seed, s_in, z_in, z_out):
    from tflite_micro.python.tflite_micro.runtime import schema_fb as s

    from edgefw.build.tflite_build import single_op_model

    dm = 1 + (seed % 2 if kind == "DEPTHWISE_CONV_2D" else 0)
    oc = ch * dm if kind == "DEPTHWISE_CONV_2D" else (seed % 4) + 1
    oh, ow = _out_size(h, fh, sh, dh, same), _out_size(w, fw, sw, dw, same)
    assume(oh >= 1 and ow >= 1)
    rng = np.random.default_rng(seed)
    fshape = [oc, fh, fw, ch] if kind == "CONV_2D" else [1, fh, fw, ch * dm]
    filt = rng.integers(-127, 128, fshape).astype(np.int8)
    w_scales = [float(x) for x in rng.uniform(0.002, 0.02, oc if per_channel else 1)]
    bias = rng.integers(-2000, 2000, oc)
    taps = fh * fw * (ch if kind == "CONV_2D" else 1)
    s_out = s_in * max(w_scales) * 60 * taps**0.5 / 127
    tensors = [
        {"shape": [1, h, w, ch], "type": "int8", "name": "x", "scales": [s_in], "zps": [z_in]},
        {"shape": fshape, "type": "int8", "name": "f", "data": filt, "scales": w_scales, "zps": [0] * len(w_scales), "qdim": 0 if kind == "CONV_2D" else 3},
        {"shape": [oc], "type": "int32", "name": "b", "data": bias, "scales": [s_in * x for x in w_scales], "zps": [0] * len(w_scales)},
        {"shape": [1, oh, ow, oc], "type": "int8", "name": "y", "scales": [s_out], "zps": [z_out]},
    ]
    pad = s.Padding.SAME if same else s.Padding.VALID
    if kind == "CONV_2D":
        o = s.Conv2DOptionsT()
        otype, version = s.BuiltinOptions.Conv2DOptions, 3
    else:
        o = s.DepthwiseConv2DOptionsT()
        o.depthMultiplier = dm
        otype, version = s.BuiltinOptions.DepthwiseConv2DOptions, 3
    o.padding, o.strideW, o.strideH, o.fusedActivationFunction = pad, sw, sh, act
    o.dilationWFactor, o.dilationHFactor = dw, dh
    code = s.BuiltinOperator.CONV_2D if kind == "CONV_2D" else s.BuiltinOperator.DEPTHWISE_CONV_2D
    _same(single_op_model(code, tensors, [0, 1, 2], [3], otype, o, version), [(1, h, w, ch)], seed)


@SETTINGS
@given(
    st.sampled_from(["MAX_POOL_2D", "AVERAGE_POOL_2D"]),
    st.integers(1, 8),
    st.integers(1, 8),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from([0, 1, 3]),
    st.integers(1, 3),
    st.integers(0, 2**16),
    scales,
    zero_points,
)
def test_pool(kind, h, w, fh, fw, sh, sw, same, act, ch, seed, s_in, z_in):
    from edgefw.build.tflite_build import pool_model

    assume(_out_size(h, fh, sh, 1, same) >= 1 and _out_size(w, fw, sw, 1, same) >= 1)
    data = pool_model(kind, [1, h, w, ch], (s_in, z_in), (fh, fw), (sh, sw), "SAME" if same else "VALID", act)
    _same(data, [(1, h, w, ch)], seed)


@SETTINGS
@given(
    st.integers(1, 40),
    st.integers(1, 12),
    st.integers(1, 3),
    st.booleans(),
    st.sampled_from([0, 1, 3]),
    st.integers(0, 2**16),
    scales,
    zero_points,
    zero_points,
)
def test_fully_connected(n_in, n_out, batch, per_channel, act, seed, s_in, z_in, z_out):
    from edgefw.build.tflite_build import dense_model

    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
    w_scales = [float(x) for x in rng.uniform(0.002, 0.02, n_out if per_channel else 1)]
    s_out = s_in * max(w_scales) * 60 * n_in**0.5 / 127
    data = dense_model(w, rng.integers(-3000, 3000, n_out), s_in, z_in, w_scales, s_out, z_out, act, batch)
    _same(data, [(batch, n_in)], seed)


@st.composite
def broadcast_pair(draw):
    rank = draw(st.integers(1, 4))
    out = [draw(st.integers(1, 4)) for _ in range(rank)]
    a = [d if draw(st.booleans()) else 1 for d in out]
    b = [d if draw(st.booleans()) else 1 for d in out]
    # either side may repeat along an axis; the second may also drop
    # leading axes (numpy's rules, as TFLite broadcasts)
    b = b[draw(st.integers(0, rank - 1)) :]
    return a, b


@SETTINGS
@given(
    st.sampled_from(["ADD", "MUL"]), broadcast_pair(), st.sampled_from([0, 1, 3]), st.integers(0, 2**16), scales, zero_points, scales, zero_points, zero_points
)
def test_add_and_mul(kind, shapes, act, seed, s_a, z_a, s_b, z_b, z_out):
    from edgefw.build.tflite_build import elementwise_model

    a, b = shapes
    s_out = (s_a + s_b) * 1.5 if kind == "ADD" else s_a * s_b * 128
    data = elementwise_model(kind, a, (s_a, z_a), (s_b, z_b), (s_out, z_out), act, b)
    _same(data, [tuple(a), tuple(b)], seed)


@st.composite
def mean_case(draw):
    rank = draw(st.integers(1, 4))
    shape = [draw(st.integers(1, 6)) for _ in range(rank)]
    axes = draw(st.lists(st.integers(-rank, rank - 1), min_size=1, max_size=rank, unique=True))
    return shape, axes


@SETTINGS
@given(mean_case(), st.booleans(), st.integers(0, 2**16), scales, zero_points, scales, zero_points)
def test_mean(case, keep, seed, s_in, z_in, s_out, z_out):
    from edgefw.build.tflite_build import mean_model

    shape, axes = case
    assume(len({a % len(shape) for a in axes}) == len(axes))  # not one axis twice (-1 and rank-1)
    data = mean_model(shape, axes, keep, (s_in, z_in), (s_out, z_out))
    _same(data, [tuple(shape)], seed)


@SETTINGS
@given(st.integers(1, 4), st.integers(2, 20), st.integers(0, 2**16), st.floats(0.005, 0.5), zero_points, st.floats(0.3, 2.0))
def test_softmax(rows, depth, seed, s_in, z_in, beta):
    from edgefw.build.tflite_build import softmax_model

    _same(softmax_model([rows, depth], (s_in, z_in), beta), [(rows, depth)], seed)


@SETTINGS
@given(st.integers(0, 2**16), st.floats(0.0005, 5.0), zero_points)
def test_logistic_every_input(seed, s_in, z_in):
    from edgefw.build.tflite_build import logistic_model

    data = logistic_model([1, 256], (s_in, z_in))
    ref = runtime.Interpreter.from_bytes(data)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    ref.set_input(x, 0)
    ref.invoke()
    for v in (False, True):
        it = Interpreter(data, vectorise=v)
        it.input(0)[:] = array.array("b", x.tobytes())
        it.invoke()
        assert bytes(it.output(0)) == ref.get_output(0).tobytes()


@SETTINGS
@given(st.integers(0, 2**16), st.floats(0.001, 2.0), zero_points)
def test_quantize_and_dequantize(seed, scale, zp):
    from edgefw.build.tflite_build import convert_model

    rng = np.random.default_rng(seed)
    for kind in ("QUANTIZE", "DEQUANTIZE"):
        data = convert_model(kind, [1, 40], (scale, zp))
        ref = runtime.Interpreter.from_bytes(data)
        if kind == "QUANTIZE":
            x = rng.uniform(-160 * scale, 160 * scale, (1, 40)).astype(np.float32)
            x[0, :8] = ((np.arange(8) - 4) + 0.5) * np.float32(scale)  # halfway cases
            code = "f"
        else:
            x = rng.integers(-128, 128, (1, 40)).astype(np.int8)
            code = "b"
        ref.set_input(x, 0)
        ref.invoke()
        for v in (False, True):
            it = Interpreter(data, vectorise=v)
            it.input(0)[:] = array.array(code, x.tobytes())
            it.invoke()
            assert bytes(it.output(0)) == ref.get_output(0).tobytes(), kind


def _random_models(rng, n):
    """n single-op models with random parameters: (bytes, input shapes)."""
    from edgefw.build.tflite_build import conv_model, dense_model, elementwise_model, mean_model, pool_model, softmax_model

    out = []
    for k in range(n):
        kind = k % 6
        alt = (k // 6) % 2  # the variant of that kind, alternating
        if kind == 0:
            h, w, ch, oc = (int(v) for v in rng.integers(2, 7, 4))
            filt = rng.integers(-127, 128, (oc, 3, 3, ch)).astype(np.int8)
            ws = [float(v) for v in rng.uniform(0.002, 0.02, oc)]
            data = conv_model(
                "CONV_2D",
                [1, h, w, ch],
                filt,
                rng.integers(-900, 900, oc),
                (0.03, int(rng.integers(-9, 9))),
                ws,
                (0.3, 3),
                (int(rng.integers(1, 3)), 1),
                "SAME",
                3,
            )
            out.append((data, [(1, h, w, ch)]))
        elif kind == 1:
            h, w, ch = (int(v) for v in rng.integers(2, 7, 3))
            filt = rng.integers(-127, 128, (1, 3, 2, ch)).astype(np.int8)
            data = conv_model(
                "DEPTHWISE_CONV_2D",
                [1, h, w, ch],
                filt,
                rng.integers(-900, 900, ch),
                (0.03, 2),
                [0.01] * ch,
                (0.2, -4),
                (1, 2),
                "VALID" if h > 2 else "SAME",
                1,
            )
            out.append((data, [(1, h, w, ch)]))
        elif kind == 2:
            h, w, ch = (int(v) for v in rng.integers(2, 8, 3))
            data = pool_model(["MAX_POOL_2D", "AVERAGE_POOL_2D"][alt], [1, h, w, ch], (0.05, 3), (2, 2), (2, 1), "SAME")
            out.append((data, [(1, h, w, ch)]))
        elif kind == 3:
            a = [int(v) for v in rng.integers(1, 4, 3)]
            b = [1 if rng.random() < 0.5 else d for d in a][1:]
            data = elementwise_model(["ADD", "MUL"][alt], a, (0.04, 5), (0.02, -9), (0.05, 1) if alt == 0 else (0.01, 2), 0, b)
            out.append((data, [tuple(a), tuple(b)]))
        elif kind == 4:
            shape = [int(v) for v in rng.integers(1, 5, 4)]
            data = mean_model(shape, [1, 2], bool(alt), (0.05, 3), (0.02, -5))
            out.append((data, [tuple(shape)]))
        else:
            n_in, n_out = int(rng.integers(2, 20)), int(rng.integers(2, 8))
            if alt:
                data = softmax_model([2, n_out], (0.1, -10))
                out.append((data, [(2, n_out)]))
            else:
                w = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
                data = dense_model(w, rng.integers(-3000, 3000, n_out), 0.02, 3, [float(v) for v in rng.uniform(0.002, 0.02, n_out)], 0.5, -2, 1)
                out.append((data, [(1, n_in)]))
    return out


def test_random_single_op_models_on_micropython(tmp_path):
    """Forty random single-op models, three inputs each, under the real
    MicroPython: the same bytes as tflite-micro."""
    from tests.conftest import run_micropython

    rng = np.random.default_rng(2024)
    models = _random_models(rng, 40)
    want = bytearray()
    for k, (data, shapes) in enumerate(models):
        (tmp_path / ("m%d.tflite" % k)).write_bytes(data)
        ref = runtime.Interpreter.from_bytes(data)
        blob = bytearray()
        for _ in range(3):
            xs = [rng.integers(-128, 128, s).astype(np.int8) for s in shapes]
            for i, x in enumerate(xs):
                ref.set_input(x, i)
                blob += x.tobytes()
            ref.invoke()
            want += ref.get_output(0).tobytes()
        (tmp_path / ("m%d.in" % k)).write_bytes(bytes(blob))
    code = (
        "import array\nfrom firmware.nn.interp import Interpreter\nout = bytearray()\n"
        "for k in range(%d):\n"
        "    it = Interpreter(open('%s/m%%d.tflite' %% k, 'rb').read())\n"
        "    blob = open('%s/m%%d.in' %% k, 'rb').read()\n"
        "    sizes = [len(it.input(i)) for i in range(len(it.model.inputs))]\n"
        "    pos = 0\n"
        "    for _ in range(3):\n"
        "        for i, n in enumerate(sizes):\n"
        "            it.input(i)[:] = array.array('b', blob[pos:pos + n])\n"
        "            pos += n\n"
        "        it.invoke()\n"
        "        out.extend(bytes(it.output(0)))\n"
        "open('%s/mp.out', 'wb').write(out)\n" % (len(models), tmp_path, tmp_path, tmp_path)
    )
    p = run_micropython(["-c", code])
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "mp.out").read_bytes() == bytes(want)
