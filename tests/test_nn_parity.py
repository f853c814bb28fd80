"""The micro interpreter against TensorFlow Lite Micro (PyPI tflite-micro,
pinned to one nightly): the same output bytes for the same int8 inputs.

Models are written here with edgefw/build/tflite_build.py (numpy + flatbuffers,
no TensorFlow), one operator at a time over its parameters, plus the
shipped models; a subset also runs under the real MicroPython.
"""

import array
import random

import numpy as np
import pytest

from edgefw.build.tflite_build import dense_model
from firmware.nn.interp import Interpreter
from hal.errors import ModelError
from tests.conftest import TARGETS

runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="pip install tflite-micro (the test extra)")


@pytest.fixture(autouse=True, params=["numpy", "scalar"])
def kernels(request, monkeypatch):
    """Every test here runs with the numpy kernels and with the scalar
    ones MicroPython uses."""
    import firmware.nn.interp

    monkeypatch.setattr(firmware.nn.interp, "VECTORISE", request.param == "numpy")
    return request.param


CASES = [
    # (n_in, n_out, per_channel, activation, batch)
    (16, 8, False, 0, 1),
    (16, 8, True, 0, 1),
    (64, 10, False, 1, 1),
    (64, 10, True, 3, 1),
    (7, 3, True, 1, 4),
]


def mp_outputs(tmp_path, model, xs, target="unix"):
    """Run ``model`` (bytes) under a real MicroPython (``target``: the
    64-bit unix port or the 32-bit wasm port) on each row of the int8 (or
    float32) array ``xs``; returns the outputs concatenated."""
    (tmp_path / "mp.tflite").write_bytes(model)
    (tmp_path / "mp.in").write_bytes(xs.tobytes())
    n = xs[0].nbytes
    tc = "f" if xs.dtype == np.float32 else "b"
    code = (
        "import array\nfrom firmware.nn.interp import Interpreter\n"
        "it = Interpreter(open('%s','rb').read())\nxs = open('%s','rb').read()\nout = bytearray()\n"
        "for k in range(%d):\n    it.input(0)[:] = array.array('%s', xs[k*%d:(k+1)*%d])\n    it.invoke()\n    out.extend(bytes(it.output(0)))\n"
        "open('%s','wb').write(out)\n" % (tmp_path / "mp.tflite", tmp_path / "mp.in", len(xs), tc, n, n, tmp_path / "mp.out")
    )
    p = TARGETS[target](["-c", code])
    assert p.returncode == 0, p.stdout + p.stderr
    return (tmp_path / "mp.out").read_bytes()


def tflm_outputs(model, xs):
    ref = runtime.Interpreter.from_bytes(model)
    out = b""
    for x in xs:
        ref.set_input(x, 0)
        ref.invoke()
        out += ref.get_output(0).tobytes()
    return out


def make(case, seed):
    n_in, n_out, per_channel, act, batch = case
    rng = np.random.default_rng(seed)
    w = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
    b = rng.integers(-3000, 3000, n_out)
    in_scale = float(rng.uniform(0.005, 0.05))
    w_scales = [float(x) for x in rng.uniform(0.001, 0.02, n_out if per_channel else 1)]
    # an output scale that puts about three standard deviations of the
    # accumulator inside int8, so few results clip
    out_scale = float(in_scale * max(w_scales) * 74 * 74 * n_in**0.5 * 3 / 127)
    return dense_model(w, b, in_scale, int(rng.integers(-20, 20)), w_scales, out_scale, int(rng.integers(-10, 10)), act, batch)


@pytest.mark.parametrize("case", CASES)
def test_bit_exact_with_tflite_micro(case):
    _check(make(case, hash(case) & 0xFFFF), 1000, seed=7, max_clipped=0.1)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_micropython_matches_tflite_micro(tmp_path, target):
    data = make(CASES[3], 99)
    xs = np.random.default_rng(3).integers(-128, 128, (50, 1, 64)).astype(np.int8)
    assert mp_outputs(tmp_path, data, xs, target) == tflm_outputs(data, xs)


def test_the_fixture_really_switches_kernels(kernels):
    from firmware.nn import kernels as scalar
    from firmware.nn import kernels_np

    it = Interpreter(make(CASES[0], 1))
    assert it.k is (kernels_np if kernels == "numpy" else scalar)


def _mutation_cases():
    from edgefw.build.tflite_build import elementwise_model, mean_model
    from tests.conftest import ROOT

    cases = {"dense": make(CASES[1], 5)}
    for p in sorted((ROOT / "firmware" / "models").glob("*.tflite")):
        cases[p.stem] = p.read_bytes()
    cases["mean"] = mean_model([1, 4, 5, 3], [1, 2], True, (0.05, 3), (0.02, -5))
    cases["add_broadcast"] = elementwise_model("ADD", [2, 3, 4], (0.04, 5), (0.02, -9), (0.05, 1), 1, [4])
    return cases


@pytest.mark.parametrize("name", ["dense", "vib_conv1d", "vib_autoencoder", "mean", "add_broadcast"])
def test_truncated_and_mutated_models_raise_only_modelerror(name):
    _mutate(_mutation_cases()[name], 1000, seed=1)


@pytest.mark.slow
def test_many_mutations_raise_only_modelerror():
    for k, data in enumerate(_mutation_cases().values()):
        _mutate(data, 10000, seed=100 + k)


def _mutate(data, n, seed):
    rnd = random.Random(seed)
    for cut in list(range(0, len(data), 7)):
        try:
            Interpreter(data[:cut])
        except ModelError:
            pass
    loaded = 0
    for _ in range(n):
        b = bytearray(data)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        try:
            it = Interpreter(bytes(b))
            it.invoke()
            loaded += 1
        except ModelError:
            pass
    # many mutations only touch weights: those models must still run
    assert loaded > n // 20


def test_unsupported_operator_is_named_at_load():
    from tflite_micro.python.tflite_micro.runtime import schema_fb as s

    data = bytearray(make(CASES[0], 1))
    m = s.ModelT.InitFromPackedBuf(bytes(data), 0)
    m.operatorCodes[0].builtinCode = s.BuiltinOperator.LSTM
    m.operatorCodes[0].deprecatedBuiltinCode = s.BuiltinOperator.LSTM
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ModelError, match="builtin code 16"):
        Interpreter(bytes(b.Output()))


def _check(data, n, seed=0, max_clipped=0.35, inputs=None):
    """``n`` random int8 inputs (or the given ``inputs``) through both."""
    from firmware.nn.interp import Interpreter as Ours

    ours = Ours(data)
    ref = runtime.Interpreter.from_bytes(data)
    rng = np.random.default_rng(seed)
    shape = ref.get_input_details(0)["shape"]
    # int8 models, or float at the edges (QUANTIZE in, DEQUANTIZE out)
    real_in = ref.get_input_details(0)["dtype"] == np.float32
    real_out = ref.get_output_details(0)["dtype"] == np.float32
    clipped = total = 0
    seen = set()
    for k in range(n):
        if inputs is not None:
            x = inputs[k].reshape(shape)
        elif real_in:
            x = rng.normal(0, 3, shape).astype(np.float32)
        else:
            x = rng.integers(-128, 128, shape).astype(np.int8)
        ref.set_input(x, 0)
        ref.invoke()
        want = ref.get_output(0).tobytes()
        ours.input(0)[:] = array.array("f" if real_in else "b", x.tobytes())
        ours.invoke()
        assert bytes(ours.output(0)) == want
        if real_out:
            seen.add(want)
            continue
        v = np.frombuffer(want, dtype=np.int8)
        clipped += int(((v == 127) | (v == -128)).sum())
        total += v.size
    if real_out:
        assert len(seen) > 10, len(seen)  # not one saturated answer
    else:
        assert clipped < total * max_clipped, (clipped, total)


CONV_CASES = [(k, p, st, act) for k in ("CONV_2D", "DEPTHWISE_CONV_2D") for p in ("SAME", "VALID") for st in ((1, 1), (2, 1)) for act in (0, 3)]


@pytest.mark.parametrize("kind,pad,stride,act", CONV_CASES)
def test_conv_ops_bit_exact(kind, pad, stride, act):
    from edgefw.build.tflite_build import conv_model

    rng = np.random.default_rng(len(kind) + 7 * stride[0] + act)
    c = 3
    conv = kind == "CONV_2D"
    filt = rng.integers(-127, 128, (4, 3, 3, c) if conv else (1, 3, 3, 2 * c)).astype(np.int8)
    oc = 4 if conv else 6
    per_channel = [float(x) for x in rng.uniform(0.004, 0.02, oc)]
    w_scales = per_channel if act == 0 else per_channel[:1]  # per-channel and per-tensor
    out_scale = 0.02 * 0.02 * 74 * 74 * (27 if conv else 9) ** 0.5 * 3 / 127
    data = conv_model(kind, [1, 8, 7, c], filt, rng.integers(-500, 500, oc), (0.02, -3), w_scales, (out_scale, 2), stride, pad, act, depth_multiplier=2)
    _check(data, 150)


@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
@pytest.mark.parametrize("pad", ["SAME", "VALID"])
def test_pool_ops_bit_exact(kind, pad):
    from edgefw.build.tflite_build import pool_model

    _check(pool_model(kind, [1, 7, 9, 3], (0.05, 4), (3, 3), (2, 2), pad, 0), 300, max_clipped=0.6)


def test_edgefw_infer_compares_backends(tmp_path):
    import subprocess

    from tests.test_cli import edgefw

    (tmp_path / "m.tflite").write_bytes(make(CASES[2], 11))
    xs = np.random.default_rng(0).integers(-128, 128, (20, 1, 64)).astype(np.int8)
    np.save(tmp_path / "in.npy", xs)
    outs = {}
    for b in ("micro", "tflm"):
        p = subprocess.run(
            [edgefw(), "infer", str(tmp_path / "m.tflite"), "--backend", b, "--inputs", str(tmp_path / "in.npy"), "--out", str(tmp_path / (b + ".npy"))],
            capture_output=True,
            text=True,
        )
        assert p.returncode == 0, p.stderr
        outs[b] = np.load(tmp_path / (b + ".npy"))
    assert outs["micro"].shape == (20, 1, 10)
    assert outs["micro"].tobytes() == outs["tflm"].tobytes()
    p = subprocess.run(
        [edgefw(), "infer", str(tmp_path / "m.tflite"), "--backend", "tflite", "--inputs", str(tmp_path / "in.npy"), "--out", str(tmp_path / "x.npy")],
        capture_output=True,
        text=True,
    )
    assert p.returncode == 2 and "pip install" in p.stderr


@pytest.mark.parametrize("kind", ["ADD", "MUL"])
@pytest.mark.parametrize("act", [0, 1, 3])
def test_elementwise_ops_bit_exact(kind, act):
    from edgefw.build.tflite_build import elementwise_model

    qo = (0.06, 3) if kind == "ADD" else (0.02, -4)
    data = elementwise_model(kind, [1, 5, 4], (0.03, -2), (0.05, 7), qo, act)
    _check_two(data, (1, 5, 4), (1, 5, 4), 500, seed=act)


BROADCASTS = [([1, 5, 4], [1, 1, 4]), ([2, 3, 4], [4]), ([1, 6], [1, 1]), ([3, 1, 5], [1, 4, 1])]


@pytest.mark.parametrize("kind", ["ADD", "MUL"])
@pytest.mark.parametrize("shapes", BROADCASTS)
def test_broadcasting_elementwise_bit_exact(kind, shapes):
    from edgefw.build.tflite_build import elementwise_model

    sa, sb = shapes
    data = elementwise_model(kind, sa, (0.04, 5), (0.02, -9), (0.05, 1) if kind == "ADD" else (0.01, 2), 0, sb)
    _check_two(data, sa, sb, 300, seed=len(sa) * 10 + len(sb))


def _check_two(data, shape_a, shape_b, n, seed):
    """A two-input model through both interpreters on ``n`` random pairs."""
    ours = Interpreter(data)
    ref = runtime.Interpreter.from_bytes(data)
    rng = np.random.default_rng(seed)
    for _ in range(n):
        a = rng.integers(-128, 128, shape_a).astype(np.int8)
        b = rng.integers(-128, 128, shape_b).astype(np.int8)
        ref.set_input(a, 0)
        ref.set_input(b, 1)
        ref.invoke()
        ours.input(0)[:] = array.array("b", a.tobytes())
        ours.input(1)[:] = array.array("b", b.tobytes())
        ours.invoke()
        assert bytes(ours.output(0)) == ref.get_output(0).tobytes()


def test_shapes_that_do_not_broadcast_are_refused_at_load():
    from edgefw.build.tflite_build import elementwise_model

    data = bytearray(elementwise_model("ADD", [1, 5, 4], (0.04, 5), (0.02, -9), (0.05, 1), 0, [1, 1, 4]))
    from tflite_micro.python.tflite_micro.runtime import schema_fb as s

    m = s.ModelT.InitFromPackedBuf(bytes(data), 0)
    m.subgraphs[0].tensors[1].shape = [1, 3, 4]
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ModelError, match=r"ADD 'out': input shape \[1, 3, 4\] does not broadcast"):
        Interpreter(bytes(b.Output()))


MEAN_CASES = [
    ([1, 4, 5, 3], [1, 2], True, (0.05, 3), (0.02, -5)),
    ([1, 4, 5, 3], [2, 1], False, (0.05, 3), (0.05, 3)),
    ([2, 6, 4], [1], False, (0.1, -7), (0.03, 10)),
    ([1, 8, 8, 2], [1, 2], True, (0.07, 0), (0.07, 0)),
    ([3, 10], [-1], True, (0.013, -128), (0.011, 12)),
    ([2, 3, 4, 5], [0, 3], False, (0.02, 1), (0.004, -3)),
    ([1, 64, 1, 8], [1], True, (0.1, -4), (0.9, -4)),
]


@pytest.mark.parametrize("case", MEAN_CASES)
def test_mean_bit_exact(case):
    from edgefw.build.tflite_build import mean_model

    shape, axes, keep, qi, qo = case
    _check(mean_model(shape, axes, keep, qi, qo), 300, seed=len(shape) + len(axes), max_clipped=1.0)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_mean_and_broadcast_on_micropython(tmp_path, target):
    from edgefw.build.tflite_build import elementwise_model, mean_model

    data = mean_model([1, 4, 5, 3], [1, 2], True, (0.05, 3), (0.02, -5))
    xs = np.random.default_rng(4).integers(-128, 128, (30, 1, 4, 5, 3)).astype(np.int8)
    assert mp_outputs(tmp_path, data, xs, target) == tflm_outputs(data, xs)
    # broadcasting against a constant: the second operand baked into the model
    from tflite_micro.python.tflite_micro.runtime import schema_fb as s

    m = s.ModelT.InitFromPackedBuf(elementwise_model("MUL", [1, 5, 4], (0.04, 5), (0.02, -9), (0.01, 2), 0, [4]), 0)
    m.buffers[2].data = np.array([7, -100, 127, -128], dtype=np.int8).view(np.uint8)
    m.subgraphs[0].inputs = [0]
    import flatbuffers

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    data = bytes(b.Output())
    xs = np.random.default_rng(5).integers(-128, 128, (30, 1, 5, 4)).astype(np.int8)
    assert mp_outputs(tmp_path, data, xs, target) == tflm_outputs(data, xs)


def test_shipped_models_bit_exact_on_1000_inputs():
    from tests.conftest import ROOT

    models = sorted((ROOT / "firmware" / "models").glob("*.tflite"))
    assert models, "no shipped models"
    for path in models:
        _check(path.read_bytes(), 1000, seed=5, max_clipped=0.9)


def test_models_from_tensorflows_converter_bit_exact_on_1000_inputs():
    from edgefw.build.models import raw_windows
    from tests.conftest import ROOT

    d = ROOT / "tests" / "data" / "tf"
    _check((d / "tf_dense.tflite").read_bytes(), 1000, seed=8, max_clipped=0.9)
    # float in and out: QUANTIZE and DEQUANTIZE as the converter places them
    _check((d / "tf_float_io.tflite").read_bytes(), 1000, seed=9)
    # the conv model on windows like those it was trained on (half with a
    # vibration burst), in its input quantization: random bytes are all
    # "vibration" to it and pin the sigmoid
    data = (d / "tf_conv.tflite").read_bytes()
    q = runtime.Interpreter.from_bytes(data).get_input_details(0)["quantization_parameters"]
    w, _y = raw_windows(1000, np.random.default_rng(12))
    xs = np.clip(np.round(w / q["scales"][0]) + q["zero_points"][0], -128, 127).astype(np.int8)
    _check(data, 1000, max_clipped=0.6, inputs=xs)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_converter_model_on_micropython_matches_tflite_micro(tmp_path, target):
    from tests.conftest import ROOT

    data = (ROOT / "tests" / "data" / "tf" / "tf_conv.tflite").read_bytes()
    xs = np.random.default_rng(10).integers(-128, 128, (40, 1, 1, 64, 1)).astype(np.int8)
    assert mp_outputs(tmp_path, data, xs, target) == tflm_outputs(data, xs)
    # float in and out: QUANTIZE and DEQUANTIZE in MicroPython's floats
    data = (ROOT / "tests" / "data" / "tf" / "tf_float_io.tflite").read_bytes()
    xs = np.random.default_rng(11).normal(0, 3, (40, 1, 6)).astype(np.float32)
    assert mp_outputs(tmp_path, data, xs, target) == tflm_outputs(data, xs)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_shipped_model_on_micropython_matches_tflite_micro(tmp_path, target):
    from tests.conftest import ROOT

    data = (ROOT / "firmware" / "models" / "vib_dense.tflite").read_bytes()
    xs = np.random.default_rng(9).integers(-128, 128, (200, 1, 6)).astype(np.int8)
    assert mp_outputs(tmp_path, data, xs, target) == tflm_outputs(data, xs)


@pytest.mark.parametrize("q", [(0.05, 3), (0.0137, -20), (1.7, 0)])
def test_quantize_and_dequantize_bit_exact(q):
    from edgefw.build.tflite_build import convert_model
    from firmware.nn.interp import Interpreter as Ours

    rng = np.random.default_rng(11)
    for kind in ("QUANTIZE", "DEQUANTIZE"):
        data = convert_model(kind, [1, 50], q)
        ours, ref = Ours(data), runtime.Interpreter.from_bytes(data)
        for _ in range(300):
            if kind == "QUANTIZE":
                x = rng.uniform(-200 * q[0], 200 * q[0], (1, 50)).astype(np.float32)
                x[0, :6] = ((np.arange(6) - 3) + 0.5) * np.float32(q[0])  # halfway cases
                code = "f"
            else:
                x = rng.integers(-128, 128, (1, 50)).astype(np.int8)
                code = "b"
            ref.set_input(x, 0)
            ref.invoke()
            ours.input(0)[:] = array.array(code, x.tobytes())
            ours.invoke()
            assert bytes(ours.output(0)) == ref.get_output(0).tobytes(), kind


@pytest.mark.parametrize("q", [(0.05, 3), (0.1, -10), (0.02, 0), (0.2, 5), (0.0078, -128)])
def test_logistic_bit_exact_on_every_int8_value(q):
    from edgefw.build.tflite_build import logistic_model
    from firmware.nn.interp import Interpreter as Ours

    data = logistic_model([1, 256], q)
    ours, ref = Ours(data), runtime.Interpreter.from_bytes(data)
    x = np.arange(-128, 128, dtype=np.int8).reshape(1, 256)
    ref.set_input(x, 0)
    ref.invoke()
    ours.input(0)[:] = array.array("b", x.tobytes())
    ours.invoke()
    assert bytes(ours.output(0)) == ref.get_output(0).tobytes()


@pytest.mark.parametrize("q", [(0.05, 3), (0.1, -10), (0.5, 0)])
@pytest.mark.parametrize("depth", [4, 10])
def test_softmax_bit_exact(q, depth):
    from edgefw.build.tflite_build import softmax_model

    _check(softmax_model([3, depth], q), 300, seed=depth, max_clipped=1.0)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_softmax_and_logistic_on_micropython(tmp_path, target):
    from edgefw.build.tflite_build import logistic_model, softmax_model

    for data, shape in ((softmax_model([3, 10], (0.1, -10)), (3, 10)), (logistic_model([1, 256], (0.05, 3)), (1, 256))):
        xs = np.random.default_rng(1).integers(-128, 128, (20,) + shape).astype(np.int8)
        assert mp_outputs(tmp_path, data, xs, target) == tflm_outputs(data, xs)


def test_arena_shares_bytes_between_tensors_never_alive_together():
    from tests.conftest import ROOT

    it = Interpreter((ROOT / "firmware" / "models" / "vib_autoencoder.tflite").read_bytes())
    activations = [t.size() for t in it.model.tensors if t.type == 9 and not t.data]
    assert len(activations) >= 3 and it.arena_bytes < sum(activations)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_invoke_allocates_nothing_on_micropython(tmp_path, target):
    """Every integer operator and shipped model, invoked under
    micropython.heap_lock(): any allocation raises MemoryError. On the
    32-bit target an int past 2**30 would be one."""
    from tests.conftest import ROOT
    from tests.test_runtimes import _single_op_models

    models = dict(_single_op_models())
    from edgefw.build.tflite_build import elementwise_model, logistic_model

    models["logistic"] = logistic_model([1, 16], (0.05, 3))
    models["mul_broadcast"] = elementwise_model("MUL", [2, 3, 4], (0.04, 5), (0.02, -9), (0.01, 2), 0, [3, 1])
    for p in (ROOT / "firmware" / "models").glob("*.tflite"):
        models[p.stem] = p.read_bytes()
    names = sorted(models)
    for n in names:
        (tmp_path / (n + ".tflite")).write_bytes(models[n])
    (tmp_path / "names").write_text("\n".join(names))
    code = (
        "import gc, micropython\nfrom firmware.nn.interp import Interpreter\n"
        "for n in open('%s/names').read().split():\n"
        "    it = Interpreter(open('%s/' + n + '.tflite', 'rb').read())\n"
        # ok is bound before the lock: a new global would grow the dict
        "    it.invoke()\n    ok = 0\n    gc.collect()\n    micropython.heap_lock()\n"
        "    try:\n        it.invoke()\n        ok = 1\n    except MemoryError:\n        ok = 0\n"
        "    micropython.heap_unlock()\n    print(n, ok, it.arena_bytes)\n" % (tmp_path, tmp_path)
    )
    p = TARGETS[target](["-c", code])
    assert p.returncode == 0, p.stdout + p.stderr
    rows = [line.split() for line in p.stdout.strip().splitlines()]
    assert [r[0] for r in rows] == names
    assert [r[0] for r in rows if r[1] != "1"] == []


@pytest.mark.parametrize("with_shape_tensor", [True, False])
def test_reshape_bit_exact(with_shape_tensor):
    from tflite_micro.python.tflite_micro.runtime import schema_fb as s

    from edgefw.build.tflite_build import single_op_model

    tensors = [
        {"shape": [1, 2, 3, 4], "type": "int8", "name": "x", "scales": [0.05], "zps": [3]},
        {"shape": [1, 24], "type": "int8", "name": "y", "scales": [0.05], "zps": [3]},
    ]
    ins = [0]
    if with_shape_tensor:
        tensors.append({"shape": [2], "type": "int32", "name": "shape", "data": np.array([1, 24], dtype=np.int32)})
        ins = [0, 2]
    o = s.ReshapeOptionsT()
    o.newShape = [1, 24]
    data = single_op_model(s.BuiltinOperator.RESHAPE, tensors, ins, [1], s.BuiltinOptions.ReshapeOptions, o, 1)
    _check(data, 100, seed=2, max_clipped=1.0)


def test_every_model_on_32_bit_micropython_matches_tflite_micro(tmp_path):
    """The shipped models and the TensorFlow-converted ones on the 32-bit
    target (31-bit small ints, as on an ESP32), on the parity inputs of
    the tests above (the first 200 of each)."""
    from edgefw.build.models import raw_windows
    from tests.conftest import ROOT

    d = ROOT / "tests" / "data" / "tf"
    cases = [(p, 5) for p in sorted((ROOT / "firmware" / "models").glob("*.tflite"))]
    cases += [(d / "tf_dense.tflite", 8), (d / "tf_float_io.tflite", 9)]
    for path, seed in cases:
        data = path.read_bytes()
        det = runtime.Interpreter.from_bytes(data).get_input_details(0)
        rng = np.random.default_rng(seed)
        if det["dtype"] == np.float32:
            xs = np.stack([rng.normal(0, 3, det["shape"]).astype(np.float32) for _ in range(200)])
        else:
            xs = np.stack([rng.integers(-128, 128, det["shape"]).astype(np.int8) for _ in range(200)])
        assert mp_outputs(tmp_path, data, xs, "wasm32") == tflm_outputs(data, xs), path.name
    data = (d / "tf_conv.tflite").read_bytes()
    det = runtime.Interpreter.from_bytes(data).get_input_details(0)
    q = det["quantization_parameters"]
    w, _y = raw_windows(200, np.random.default_rng(12))
    xs = np.clip(np.round(w / q["scales"][0]) + q["zero_points"][0], -128, 127).astype(np.int8).reshape((200,) + tuple(det["shape"]))
    assert mp_outputs(tmp_path, data, xs, "wasm32") == tflm_outputs(data, xs)
