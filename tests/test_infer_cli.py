"""``edgefw infer`` on bad input: a clear line and exit status 2, never a
traceback; one input-shape rule for every backend; ``--describe``."""

import types

import numpy as np
import pytest

from edgefw import infer
from tests.conftest import ROOT

DENSE = ROOT / "firmware" / "models" / "vib_dense.tflite"


def _run(capsys, model=DENSE, xs=None, tmp_path=None, backend="micro", **kw):
    args = types.SimpleNamespace(model=str(model), backend=backend, inputs=None, out=None, reference=False, describe=False)
    if xs is not None:
        np.save(tmp_path / "in.npy", xs)
        args.inputs, args.out = str(tmp_path / "in.npy"), str(tmp_path / "out.npy")
    vars(args).update(kw)
    rc = infer.run(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


BACKENDS = ["micro", "tflm"] + [b for b, mod in (("litert", "ai_edge_litert"), ("tflite", "tflite_runtime")) if __import__("importlib").util.find_spec(mod)]


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_backend_takes_the_batch_with_or_without_the_leading_1(backend, capsys, tmp_path):
    xs = np.random.default_rng(1).integers(-128, 128, (5, 1, 6)).astype(np.int8)
    outs = []
    for batch in (xs, xs.reshape(5, 6)):
        rc, _out, err = _run(capsys, xs=batch, tmp_path=tmp_path, backend=backend)
        assert rc == 0, err
        outs.append(np.load(tmp_path / "out.npy"))
    assert outs[0].shape == (5, 1, 1) and outs[0].tobytes() == outs[1].tobytes()


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_wrong_shaped_batch_names_the_shape_the_model_takes(backend, capsys, tmp_path):
    for bad in (np.zeros((5, 7), np.int8), np.zeros((5, 2, 6), np.int8), np.zeros((5,), np.int8), np.zeros((), np.int8)):
        rc, _out, err = _run(capsys, xs=bad, tmp_path=tmp_path, backend=backend)
        assert rc == 2 and "Traceback" not in err, err
        assert "the model takes samples of shape (1, 6), so the batch must be (N, 1, 6) or (N, 6)" in err, err


def test_an_empty_batch_gives_an_empty_output(capsys, tmp_path):
    for empty in (np.zeros((0, 1, 6), np.int8), np.zeros((0, 6), np.int8)):
        rc, _out, err = _run(capsys, xs=empty, tmp_path=tmp_path)
        assert rc == 0, err
        out = np.load(tmp_path / "out.npy")
        assert out.shape == (0, 1, 1) and out.dtype == np.int8
        assert "0 samples" in err


def test_describe_prints_inputs_outputs_and_operators(capsys):
    rc, out, err = _run(capsys, describe=True)
    assert rc == 0, err
    lines = out.splitlines()
    assert lines[0] == "input 0: tensor 0 'features', shape (1, 6), int8, scale 0.0123748, zero point -128"
    assert lines[1] == "output 0: tensor 6 'out', shape (1, 1), int8, scale 0.486366, zero point -110"
    assert lines[2].startswith("operator 0: FULLY_CONNECTED, inputs [0, ") and lines[3].startswith("operator 1: FULLY_CONNECTED")
    assert len(lines) == 4
    rc, out, err = _run(capsys, model=ROOT / "firmware" / "models" / "vib_conv1d.tflite", describe=True)
    assert "shape (1, 1, 64, 1)" in out.splitlines()[0] and [ln.split(",")[0] for ln in out.splitlines()[2:]] == [
        "operator 0: CONV_2D",
        "operator 1: AVERAGE_POOL_2D",
        "operator 2: FULLY_CONNECTED",
    ]


def test_describe_of_a_broken_model_is_one_line(capsys, tmp_path):
    (tmp_path / "bad.tflite").write_bytes(DENSE.read_bytes()[:100])
    rc, _out, err = _run(capsys, model=tmp_path / "bad.tflite", describe=True)
    assert rc == 2 and err.startswith("edgefw infer: ") and "malformed model" in err and len(err.splitlines()) == 1


def test_running_without_inputs_says_what_is_needed(capsys):
    rc, _out, err = _run(capsys)
    assert rc == 2 and "--inputs and --out" in err


def test_a_plain_install_says_once_which_backend_it_uses(capsys, tmp_path, monkeypatch):
    from firmware.linux.runtimes import LinuxRuntime

    def missing(name):
        raise ImportError("No module named %r" % name)

    # neither LiteRT nor tflite-runtime, as after a plain pip install
    monkeypatch.setattr(LinuxRuntime, "_interpreter_class", staticmethod(missing))
    xs = np.zeros((3, 1, 6), np.int8)
    for _ in range(2):
        rc, _out, err = _run(capsys, xs=xs, tmp_path=tmp_path, backend="auto")
        assert rc == 0, err
        assert err.count("not installed") == 1 and "trying the next" not in err, err
        assert "using micro (litert, tflite not installed)" in err
