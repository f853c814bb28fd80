"""Building the reference models from data generated here (numpy only).

    python -m tools.models.build    # writes tools/models/vib_dense.tflite

``vib_dense``: ADXL345 windows (64 samples of one axis at 100 Hz) ->
firmware.features (6 values) -> FULLY_CONNECTED 6x12 RELU ->
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

from firmware.features import features
from tools.tflite_build import _buffer, _tensor

MODELS = Path(__file__).resolve().parent
WINDOW = 64
RATE = 100


def windows(n, rng):
    """(features, label) for n generated windows, half with vibration."""
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
        xs.append(features([int(v) for v in base], RATE))
        ys.append(label)
    return np.array(xs), np.array(ys, dtype=float)


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
    return 0


if __name__ == "__main__":
    sys.exit(main())
