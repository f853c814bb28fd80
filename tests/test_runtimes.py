"""The Linux runtimes beside the micro interpreter.

* tflite-runtime 2.14 with its reference kernels (BUILTIN_REF) gives the
  same bytes as the micro interpreter. tflite-runtime needs numpy < 2, so
  it lives in its own venv, ``.venv-tflite`` (the README's test command
  makes it; EDGEFW_TFLITE_PYTHON names another interpreter).
* LiteRT rounds differently (single rounding, optimised kernels): the
  differences are measured in LSB and printed, not asserted away.
* The loop's inference stage runs on each backend the config names.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

from edgefw.infer import BackendMissing, _runner
from firmware.app import build
from firmware.nn.backend import open_model
from firmware.nn.interp import Interpreter
from hal.errors import BackendUnavailable
from tests.conftest import ROOT

MODELS = sorted((ROOT / "firmware" / "models").glob("*.tflite"))
# as TensorFlow's converter writes them (tests/data/tf/README.md)
CONVERTED = sorted((ROOT / "tests" / "data" / "tf").glob("*.tflite"))


def _single_op_models():
    from edgefw.build.tflite_build import conv_model, elementwise_model, mean_model, pool_model, softmax_model

    rng = np.random.default_rng(3)
    filt = rng.integers(-127, 128, (4, 3, 3, 2)).astype(np.int8)
    dw = rng.integers(-127, 128, (1, 3, 3, 4)).astype(np.int8)
    return {
        "conv_same_relu6_per_channel": conv_model(
            "CONV_2D", [1, 6, 5, 2], filt, rng.integers(-900, 900, 4), (0.03, -3), [0.004, 0.006, 0.005, 0.007], (0.05, 2), (1, 1), "SAME", 3
        ),
        "depthwise_valid_stride2": conv_model(
            "DEPTHWISE_CONV_2D", [1, 7, 7, 2], dw, rng.integers(-900, 900, 4), (0.03, 4), [0.005] * 4, (0.04, -1), (2, 2), "VALID", 0, 2
        ),
        "avg_pool_same": pool_model("AVERAGE_POOL_2D", [1, 5, 6, 3], (0.05, -4), (2, 3), (2, 2), "SAME"),
        "mean_axes_1_2": mean_model([1, 4, 5, 3], [1, 2], True, (0.05, 3), (0.02, -5)),
        "add_broadcast": elementwise_model("ADD", [2, 3, 4], (0.04, 5), (0.02, -9), (0.05, 1), 1, [4]),
        "softmax": softmax_model([2, 10], (0.1, -10)),
    }


def _inputs(data, n, seed):
    it = Interpreter(data)
    t = it.model.tensors[it.model.inputs[0]]
    rng = np.random.default_rng(seed)
    if t.type == 0:  # float32: the model quantizes its own input
        return rng.normal(0, 3, (n, *t.shape)).astype(np.float32)
    return rng.integers(-128, 128, (n, *t.shape)).astype(np.int8)


def _micro(data, xs):
    return np.stack([_runner("micro", data)(x) for x in xs])


def _tflite_python():
    exe = os.environ.get("EDGEFW_TFLITE_PYTHON") or str(ROOT / ".venv-tflite" / "bin" / "python")
    how = "python3 -m venv .venv-tflite && .venv-tflite/bin/pip install tflite-runtime==2.14.0 'numpy<2' (Python <= 3.11)"
    if not os.path.exists(exe):
        pytest.skip("tflite-runtime venv missing: " + how)
    if subprocess.run([exe, "-c", "import tflite_runtime"], capture_output=True).returncode != 0:
        pytest.skip("tflite-runtime is not installed in %s: %s" % (exe, how))
    return exe


@pytest.mark.slow
def test_tflite_runtime_reference_kernels_equal_the_micro_interpreter(tmp_path):
    py = _tflite_python()
    cases = {p.stem: p.read_bytes() for p in MODELS + CONVERTED}
    cases.update(_single_op_models())
    for k, (name, data) in enumerate(cases.items()):
        model = tmp_path / (name + ".tflite")
        model.write_bytes(data)
        xs = _inputs(data, 1000 if name.startswith(("vib", "tf_")) else 300, k)
        np.save(tmp_path / "in.npy", xs)
        # the venv has only tflite-runtime and numpy < 2; edgefw's own tools run from the checkout
        p = subprocess.run(
            [
                py,
                "-m",
                "edgefw.cli",
                "infer",
                str(model),
                "--backend",
                "tflite",
                "--reference",
                "--inputs",
                str(tmp_path / "in.npy"),
                "--out",
                str(tmp_path / "ref.npy"),
            ],
            cwd=ROOT,
            env=dict(os.environ, PYTHONPATH=str(ROOT)),
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert p.returncode == 0, p.stderr
        ref = np.load(tmp_path / "ref.npy")
        assert ref.tobytes() == _micro(data, xs).tobytes(), name


def test_litert_differences_in_lsb_are_reported():
    pytest.importorskip("ai_edge_litert", reason="pip install 'edgefw[litert]'")
    print()
    print("%-28s %-12s %10s %10s %8s" % ("model", "litert", "outputs", "differ", "max LSB"))
    # int8 outputs only: a float output's differences are not in LSB
    for path in MODELS + [p for p in CONVERTED if "float" not in p.stem]:
        data = path.read_bytes()
        xs = _inputs(data, 1000, 1)
        ours = _micro(data, xs).astype(int)
        for kernels, ref in (("optimised", False), ("BUILTIN_REF", True)):
            run = _runner("litert", data, ref)
            theirs = np.stack([run(x) for x in xs]).astype(int)
            d = np.abs(theirs - ours)
            print("%-28s %-12s %10d %10d %8d" % (path.stem, kernels, d.size, int((d > 0).sum()), int(d.max())))
            # the same model computed with other rounding: a few LSB at most, mostly none
            assert d.max() <= 4 and (d > 0).mean() < 0.1, (path.stem, kernels, int(d.max()), float((d > 0).mean()))


@pytest.mark.parametrize("backend", ["micro", "litert"])
def test_the_loop_scores_with_the_configured_backend(tmp_path, backend):
    if backend == "litert":
        pytest.importorskip("ai_edge_litert", reason="pip install 'edgefw[litert]'")
    fw, _sc = build("sim", journal=str(tmp_path / "j"), overrides={"inference": {"enabled": True, "backend": backend}})
    fw.inference.mode = "task"  # deterministic in virtual time
    from tests.dual._util import run

    run(fw, cycles=700)
    s = fw.summary()
    assert s["inference"]["backend"] == backend and s["inference"]["errors"] == 0
    assert [t["cause"] for t in s["trips"]] == ["inference"]


def test_a_backend_that_is_not_installed_is_named_with_its_install_command(monkeypatch):
    data = MODELS[0].read_bytes()
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    with pytest.raises(BackendUnavailable, match=r"pip install 'edgefw\[tflite\]'"):
        open_model(data, "tflite")
    with pytest.raises(BackendMissing, match="tflite"):
        _runner("tflite", data)
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    # auto falls through to the micro interpreter when no Linux runtime is there
    assert open_model(data, "auto").backend == "micro"


def test_unknown_backend_in_config_names_the_field(tmp_path):
    from firmware.config import load_config
    from hal.errors import ConfigError

    with pytest.raises(ConfigError, match="inference.backend"):
        load_config(overrides={"inference": {"backend": "tensorrt"}})
