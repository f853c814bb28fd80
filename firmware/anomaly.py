"""The vibration anomaly score: features of an accelerometer window, run
through an int8 model, dequantized.

    a = Anomaly(model_bytes, backend="auto")
    a.score(window)                  # CPython (the child process calls this)
    await a.score_async(window)      # MicroPython: yields between steps

Which runtime runs the model is firmware.nn.backend's choice: the micro
interpreter on MicroPython; on Linux LiteRT or tflite-runtime when
installed, else the micro interpreter (config ``inference.backend``).
"""

import sys

from firmware.features import features, quantize
from firmware.nn.backend import open_model
from hal.errors import ModelError


class Anomaly:
    def __init__(self, model_bytes, rate_hz=100, backend="auto"):
        self.it = open_model(model_bytes, backend)
        self.backend = self.it.backend
        m = self.it.model
        tin = m.tensors[m.inputs[0]]
        tout = m.tensors[m.outputs[0]]
        if tin.size() != 6 or tout.size() != 1:
            raise ModelError("anomaly model must take 6 features and give 1 score; this one takes %r and gives %r" % (tin.shape, tout.shape))
        self.in_q = (tin.scale[0], tin.zero_point[0])
        self.out_q = (tout.scale[0], tout.zero_point[0])
        self.rate = rate_hz

    def _load(self, window):
        x = quantize(features(window, self.rate), self.in_q[0], self.in_q[1])
        inp = self.it.input(0)
        for i in range(len(x)):
            inp[i] = x[i]

    def _result(self):
        return (self.it.output(0)[0] - self.out_q[1]) * self.out_q[0]

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


def stage_from_config(cfg):
    """The anomaly model in the inference stage, as the config says."""
    from firmware.channels import channel_names
    from firmware.inference import InferenceStage

    inf = cfg["inference"]
    with open(model_path(inf["model"]), "rb") as f:
        a = Anomaly(f.read(), 1000 // cfg["period_ms"], inf["backend"])
    fn = a.score_async if sys.implementation.name == "micropython" else a.score
    stage = InferenceStage(channel_names(cfg), [inf["channel"]], inf["window"], inf["hop"], fn, inf["threshold"], inf["k"])
    stage.backend = a.backend
    stage.arena_bytes = a.it.arena_bytes
    return stage
