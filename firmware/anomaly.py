"""The vibration anomaly score: features of an accelerometer window, run
through an int8 model, dequantized.

    a = Anomaly(model_bytes)
    a.score(window)                  # CPython (the child process calls this)
    await a.score_async(window)      # MicroPython: yields between steps

Which interpreter runs the model: the micro interpreter (firmware.nn) on
MicroPython and wherever nothing else is installed; LiteRT or
tflite-runtime can stand in on Linux through ``edgefw infer``'s backends.
"""

from firmware.features import features, quantize
from firmware.nn.interp import Interpreter
from hal.errors import ModelError


class Anomaly:
    def __init__(self, model_bytes, rate_hz=100):
        self.it = Interpreter(model_bytes)
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
