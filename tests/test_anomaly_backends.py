"""The anomaly score of each shipped model is the same, to a quantization
step, whichever backend runs it (the Linux runtimes hand back numpy int8,
which must not wrap when dequantized)."""

import math
import random

import pytest

from firmware.infer.anomaly import Anomaly
from tests.conftest import ROOT

pytest.importorskip("ai_edge_litert", reason="pip install 'edgefw[litert]'")


def _windows():
    rnd = random.Random(4)
    quiet = [1000 + rnd.randint(-5, 5) for _ in range(64)]
    burst = [1000 + int(2500 * math.sin(2 * math.pi * 20 * i / 100)) for i in range(64)]
    return quiet, burst


@pytest.mark.parametrize("name", ["vib_dense", "vib_conv1d", "vib_autoencoder"])
def test_litert_and_micro_give_the_same_score(name):
    data = (ROOT / "firmware" / "models" / (name + ".tflite")).read_bytes()
    micro, litert = Anomaly(data, backend="micro", window=64), Anomaly(data, backend="litert", window=64)
    quiet, burst = _windows()
    step = micro.out_q[0]
    for w in (quiet, burst):
        a, b = micro.score(w), litert.score(w)
        # one output step apart at most (the runtimes' optimised kernels
        # may round one LSB differently); the reconstruction error sums six
        tol = step * (1.01 if micro.score_kind == "output" else 6 * (2 * abs(a) ** 0.5 + step))
        assert abs(a - b) <= tol, (name, a, b)
    assert micro.score(burst) > micro.score(quiet)
