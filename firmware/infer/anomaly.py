"""The vibration anomaly score: an accelerometer window through an int8
model, dequantized.

    a = Anomaly(model_bytes, backend="auto", window=64)
    a.kind, a.score_kind             # "features" | "window", "output" | "reconstruction"
    a.score(window)                  # CPython (the child process calls this)
    await a.score_async(window)      # MicroPython: yields between steps

What goes in and what the score is come from the model itself:

* input of 6 values: the window's features (firmware.infer.features);
  an input of as many values as the window: the raw window, in g with
  its mean taken out (as edgefw/build/models.py trains ``vib_conv1d``);
* output of 1 value: the score is that value, dequantized (a logit or a
  class probability, whatever the model was trained to give); an output
  of as many values as the input: an autoencoder, and the score is the
  reconstruction error, the sum of squared differences between the input
  and the output (``vib_autoencoder``).

Anything else is refused with ModelError, naming the shapes. int8 or
float32 at the model's edges (a float model quantizes its own input).

Which runtime runs the model is firmware.nn.backend's choice: the micro
interpreter on MicroPython; on Linux LiteRT or tflite-runtime when
installed, else the micro interpreter (config ``inference.backend``).
"""


from firmware.infer.features import N_FEATURES, features, quantize
from firmware.nn.backend import open_model
from firmware.nn.model import FLOAT32
from hal.compat import IS_MICROPYTHON
from hal.errors import ModelError


def _q(t, which):
    """(scale, zero point) of an int8 tensor, None for a float one."""
    if t.type == FLOAT32:
        return None
    if not t.scale or not t.zero_point:
        raise ModelError("model %s tensor %r has no quantization (scale, zero point)" % (which, t.name))
    return (t.scale[0], t.zero_point[0])


class Anomaly:
    def __init__(self, model_bytes, rate_hz=100, backend="auto", window=None):
        self.it = open_model(model_bytes, backend)
        self.backend = self.it.backend
        m = self.it.model
        tin = m.tensors[m.inputs[0]]
        tout = m.tensors[m.outputs[0]]
        n_in, n_out = tin.size(), tout.size()
        if n_in == N_FEATURES:
            self.kind = "features"
        elif window is None or n_in == window:
            self.kind = "window"
        else:
            raise ModelError(
                "anomaly model takes %d values (shape %r): %d features, or a raw window of %d samples (set inference.window to %d)"
                % (n_in, tin.shape, N_FEATURES, window, n_in)
            )
        if n_out == 1:
            self.score_kind = "output"
        elif n_out == n_in:
            self.score_kind = "reconstruction"
        else:
            raise ModelError(
                "anomaly model must give 1 score, or reconstruct its %d input values; this one takes %r and gives %r" % (n_in, tin.shape, tout.shape)
            )
        self.n_in = n_in
        self.in_q = _q(tin, "input")
        self.out_q = _q(tout, "output")
        self.rate = rate_hz
        self._x = None

    def _load(self, window):
        if self.kind == "features":
            x = features(window, self.rate)
        else:
            if len(window) != self.n_in:
                raise ModelError("the model takes windows of %d samples, got %d" % (self.n_in, len(window)))
            mean = sum(window) / len(window)
            x = [(v - mean) / 1000.0 for v in window]
        self._x = x
        q = x if self.in_q is None else quantize(x, self.in_q[0], self.in_q[1])
        inp = self.it.input(0)
        for i in range(len(q)):
            inp[i] = q[i]

    def _value(self, k):
        y = self.it.output(0)[k]
        # int(): a Linux runtime's numpy int8 would wrap in the subtraction
        return float(y) if self.out_q is None else (int(y) - self.out_q[1]) * self.out_q[0]

    def _result(self):
        if self.score_kind == "output":
            return self._value(0)
        x = self._x
        err = 0.0
        for i in range(self.n_in):
            d = self._value(i) - x[i]
            err += d * d
        return err

    def score(self, window):
        self._load(window)
        self.it.invoke()
        return self._result()

    async def score_async(self, window):
        import asyncio

        await asyncio.sleep(0)
        self._load(window)
        for _ in self.it.steps():
            await asyncio.sleep(0)
        return self._result()


def model_path(path):
    """A model path as given, or else relative to the checkout/install
    (where the shipped models are)."""
    import os

    try:
        os.stat(path)
        return path
    except OSError:
        import firmware

        return firmware.__file__.rsplit("/", 2)[0] + "/" + path


def stage_from_config(inf, channels, period_ms):
    """The anomaly model in the inference stage, as the config's
    ``inference`` section says, over the loop's ``channels``."""
    from firmware.infer.stage import InferenceStage

    with open(model_path(inf["model"]), "rb") as f:
        a = Anomaly(f.read(), 1000 // period_ms, inf["backend"], inf["window"])
    fn = a.score_async if IS_MICROPYTHON else a.score
    stage = InferenceStage(channels, [inf["channel"]], inf["window"], inf["hop"], fn, inf["threshold"], inf["k"])
    stage.backend = a.backend
    stage.arena_bytes = a.it.arena_bytes
    return stage
