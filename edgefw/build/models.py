"""Building the reference models from data generated here (numpy only).

    python -m edgefw.build.models    # writes firmware/models/vib_dense.tflite

``vib_dense``: ADXL345 windows (64 samples of one axis at 100 Hz) ->
firmware.infer.features (6 values) -> FULLY_CONNECTED 6x12 RELU ->
FULLY_CONNECTED 12x1 -> an anomaly logit (int8). Trained with plain
gradient descent on windows of quiet operation (gravity, sensor noise,
slow drift) against windows with a vibration burst (5-45 Hz, 0.2-3 g).

``vib_autoencoder``: the same 6 features -> 3 -> 6, fitted to quiet
windows only (linear: their principal subspace); the reconstruction error
scores how unlike quiet operation a window is.
"""

import sys
from pathlib import Path

import flatbuffers
import numpy as np
from tflite_micro.python.tflite_micro.runtime import schema_fb as s

from edgefw.build.tflite_build import _buffer, _tensor
from firmware.infer.features import features

MODELS = Path(__file__).resolve().parents[2] / "firmware" / "models"
WINDOW = 64
RATE = 100


def generate(n, rng):
    """n windows of one axis in milli-g and their labels, half with a
    vibration burst."""
    xs, ys = [], []
    t = np.arange(WINDOW) / RATE
    for k in range(n):
        base = rng.normal(0, rng.uniform(5, 30), WINDOW) + rng.uniform(-50, 50) * t
        label = k % 2
        if label:
            f = rng.uniform(5, 45)
            amp = rng.uniform(200, 3000)
            start = rng.integers(0, WINDOW // 2)
            burst = np.zeros(WINDOW)
            burst[start:] = amp * np.sin(2 * np.pi * f * t[start:] + rng.uniform(0, 6.28))
            base = base + burst
        xs.append(base)
        ys.append(label)
    return xs, np.array(ys, dtype=float)


def windows(n, rng):
    """(features, label) for n generated windows."""
    xs, ys = generate(n, rng)
    return np.array([features([int(v) for v in w], RATE) for w in xs]), ys


def train(x, y, hidden=12, steps=3000, lr=0.05, seed=0):
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.5, (x.shape[1], hidden))
    b1 = np.zeros(hidden)
    w2 = rng.normal(0, 0.5, (hidden, 1))
    b2 = np.zeros(1)
    for _ in range(steps):
        h = np.maximum(0, x @ w1 + b1)
        z = (h @ w2 + b2)[:, 0]
        p = 1 / (1 + np.exp(-z))
        g = (p - y)[:, None] / len(y)
        gw2 = h.T @ g
        gb2 = g.sum(0)
        gh = g @ w2.T * (h > 0)
        w1 -= lr * 10 * (x.T @ gh)
        b1 -= lr * 10 * gh.sum(0)
        w2 -= lr * 10 * gw2
        b2 -= lr * 10 * gb2
    return w1, b1, w2, b2


def _qparams(lo, hi):
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255 or 1.0
    zp = int(round(-128 - lo / scale))
    return float(scale), max(-128, min(127, zp))


def build_dense(w1, b1, w2, b2, calib):
    """The two-layer classifier as an int8 .tflite (per-tensor weights)."""
    return build_layers([(w1, b1, 1), (w2, b2, 0)], calib)


def build_layers(spec, calib):
    """FULLY_CONNECTED layers [(w [in, out], b, activation 0|1), ...] as an
    int8 .tflite; activation ranges calibrated on ``calib``."""
    qs = [_qparams(calib.min(), calib.max())]
    a = calib
    for w, b, act in spec:
        a = a @ w + b
        if act:
            a = np.maximum(0, a)
        qs.append(_qparams(a.min(), a.max()))
    layers = [(w.T, b, qs[k], qs[k + 1], act) for k, (w, b, act) in enumerate(spec)]
    w1 = spec[0][0]
    qi = qs[0]
    m = s.ModelT()
    m.version = 3
    oc = s.OperatorCodeT()
    oc.builtinCode = oc.deprecatedBuiltinCode = s.BuiltinOperator.FULLY_CONNECTED
    oc.version = 4
    m.operatorCodes = [oc]
    m.buffers = [_buffer(), _buffer()]
    sg = s.SubGraphT()
    sg.tensors = [_tensor([1, w1.shape[0]], s.TensorType.INT8, 1, "features", [qi[0]], [qi[1]])]
    sg.operators = []
    cur = 0
    for k, (w, b, qin, qout, act) in enumerate(layers):
        ws = float(np.abs(w).max() / 127) or 1.0
        wq = np.clip(np.round(w / ws), -127, 127).astype(np.int8)
        bq = np.round(b / (qin[0] * ws)).astype("<i4")
        m.buffers += [_buffer(wq), _buffer(bq), _buffer()]
        nb = len(m.buffers)
        sg.tensors += [
            _tensor(list(wq.shape), s.TensorType.INT8, nb - 3, "w%d" % k, [ws], [0]),
            _tensor([wq.shape[0]], s.TensorType.INT32, nb - 2, "b%d" % k, [qin[0] * ws], [0]),
            _tensor([1, wq.shape[0]], s.TensorType.INT8, nb - 1, "h%d" % k if k < len(layers) - 1 else "out", [qout[0]], [qout[1]]),
        ]
        nt = len(sg.tensors)
        op = s.OperatorT()
        op.opcodeIndex = 0
        op.inputs = [cur, nt - 3, nt - 2]
        op.outputs = [nt - 1]
        op.builtinOptionsType = s.BuiltinOptions.FullyConnectedOptions
        o = s.FullyConnectedOptionsT()
        o.fusedActivationFunction = act
        op.builtinOptions = o
        sg.operators.append(op)
        cur = nt - 1
    sg.inputs = [0]
    sg.outputs = [cur]
    m.subgraphs = [sg]
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def raw_windows(n, rng):
    """Generated windows in g with the mean taken out, and labels."""
    xs, ys = generate(n, rng)
    return np.array([(w - w.mean()) / 1000.0 for w in xs]), ys


def fir_bank(taps=9):
    """Four band-pass FIR filters (windowed sinc) over 0-50 Hz at 100 Hz."""
    n = np.arange(taps) - (taps - 1) / 2
    win = np.hamming(taps)
    out = []
    for lo, hi in ((2, 12), (12, 25), (25, 37), (37, 49)):
        h = 2 * hi / RATE * np.sinc(2 * hi / RATE * n) - 2 * lo / RATE * np.sinc(2 * lo / RATE * n)
        out.append(h * win)
    return np.array(out)


def build_conv1d(rng):
    """A 1-D conv model on raw windows: CONV_2D (4 band-pass FIR filters,
    1x9, RELU) -> AVERAGE_POOL_2D over time -> FULLY_CONNECTED 4 -> 1,
    the last layer trained by logistic regression."""
    x, y = raw_windows(2000, rng)
    bank = fir_bank()
    taps = bank.shape[1]
    conv = np.maximum(0, np.stack([np.stack([np.convolve(w, f[::-1], "valid") for f in bank], -1) for w in x]))
    pooled = conv.mean(1)
    w = np.zeros(4)
    b = 0.0
    for _ in range(3000):
        p = 1 / (1 + np.exp(-(pooled @ w + b)))
        g = p - y
        w -= 0.5 * pooled.T @ g / len(y) * 20
        b -= 0.5 * g.mean() * 20
    logits = pooled @ w + b
    acc = ((logits > 0) == (y > 0.5)).mean()
    qin = (float(np.abs(x).max() / 127), 0)
    ws = float(np.abs(bank).max() / 127)
    qconv = _qparams(0.0, conv.max())
    fw = float(np.abs(w).max() / 127) or 1.0
    qout = _qparams(logits.min(), logits.max())
    steps = WINDOW - taps + 1
    tensors = [
        {"shape": [1, 1, WINDOW, 1], "type": "int8", "name": "window", "scales": [qin[0]], "zps": [qin[1]]},
        {
            "shape": [4, 1, taps, 1],
            "type": "int8",
            "name": "fir",
            "data": np.clip(np.round(bank / ws), -127, 127).reshape(4, 1, taps, 1),
            "scales": [ws] * 4,
            "zps": [0] * 4,
        },
        {"shape": [4], "type": "int32", "name": "fir_bias", "data": np.zeros(4), "scales": [qin[0] * ws] * 4, "zps": [0] * 4},
        {"shape": [1, 1, steps, 4], "type": "int8", "name": "bands", "scales": [qconv[0]], "zps": [qconv[1]]},
        {"shape": [1, 1, 1, 4], "type": "int8", "name": "energy", "scales": [qconv[0]], "zps": [qconv[1]]},
        {"shape": [1, 4], "type": "int8", "name": "w", "data": np.clip(np.round(w / fw), -127, 127).reshape(1, 4), "scales": [fw], "zps": [0]},
        {"shape": [1], "type": "int32", "name": "b", "data": np.array([round(b / (qconv[0] * fw))]), "scales": [qconv[0] * fw], "zps": [0]},
        {"shape": [1, 1], "type": "int8", "name": "out", "scales": [qout[0]], "zps": [qout[1]]},
    ]
    co = s.Conv2DOptionsT()
    co.padding, co.strideW, co.strideH, co.fusedActivationFunction = s.Padding.VALID, 1, 1, 1
    co.dilationWFactor = co.dilationHFactor = 1
    po = s.Pool2DOptionsT()
    po.padding, po.strideW, po.strideH, po.filterWidth, po.filterHeight = s.Padding.VALID, 1, 1, steps, 1
    fo = s.FullyConnectedOptionsT()
    ops = [
        (s.BuiltinOperator.CONV_2D, [0, 1, 2], [3], s.BuiltinOptions.Conv2DOptions, co, 3),
        (s.BuiltinOperator.AVERAGE_POOL_2D, [3], [4], s.BuiltinOptions.Pool2DOptions, po, 2),
        (s.BuiltinOperator.FULLY_CONNECTED, [4, 5, 6], [7], s.BuiltinOptions.FullyConnectedOptions, fo, 4),
    ]
    from edgefw.build.tflite_build import graph_model

    return graph_model(tensors, ops, [0], [7]), acc


def main():
    rng = np.random.default_rng(2026)
    x, y = windows(2000, rng)
    w1, b1, w2, b2 = train(x, y)
    acc = (((np.maximum(0, x @ w1 + b1) @ w2 + b2)[:, 0] > 0) == (y > 0.5)).mean()
    xt, yt = windows(1000, np.random.default_rng(7))
    acc_t = (((np.maximum(0, xt @ w1 + b1) @ w2 + b2)[:, 0] > 0) == (yt > 0.5)).mean()
    data = build_dense(w1, b1, w2, b2, x)
    (MODELS / "vib_dense.tflite").write_bytes(data)
    print("vib_dense.tflite: %d bytes; float accuracy train %.3f, held-out %.3f" % (len(data), acc, acc_t), file=sys.stderr)
    # autoencoder: learns quiet windows only (a linear one: the principal
    # subspace of their features); reconstruction error is the score
    quiet = x[y < 0.5]
    mu = quiet.mean(0)
    _u, _sv, vt = np.linalg.svd(quiet - mu, full_matrices=False)
    enc = vt[:3].T
    ae = build_layers([(enc, -mu @ enc, 0), (enc.T, mu, 0)], quiet)
    (MODELS / "vib_autoencoder.tflite").write_bytes(ae)
    err = lambda f: ((f - ((f - mu) @ enc @ enc.T + mu)) ** 2).sum(1)  # noqa: E731
    sep = (err(xt[yt > 0.5]) > np.percentile(err(quiet), 99)).mean()
    print("vib_autoencoder.tflite: %d bytes; held-out bursts above the quiet 99th-percentile error: %.3f" % (len(ae), sep), file=sys.stderr)
    conv, acc_c = build_conv1d(np.random.default_rng(11))
    (MODELS / "vib_conv1d.tflite").write_bytes(conv)
    print("vib_conv1d.tflite: %d bytes; float training accuracy %.3f" % (len(conv), acc_c), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
