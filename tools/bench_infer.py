"""``edgefw bench infer``: median invoke time per model and backend, side
by side in one run, and the overhead the loop's inference stage adds
around ``invoke`` (quantized input in, score out) against a bare
``invoke``. Feature extraction is not counted: it is the same for every
backend.
"""

import os
import shutil
import statistics
import subprocess
import time

import numpy as np

from tools.cli_util import ROOT

MP_SCRIPT = """
import time, array
from firmware.nn.interp import Interpreter
it = Interpreter(open(%r, 'rb').read())
ts = []
for _ in range(%d):
    t = time.ticks_us(); it.invoke(); ts.append(time.ticks_diff(time.ticks_us(), t))
ts.sort()
print(ts[len(ts) // 2])
"""


def _median_us(fn, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t)
    return statistics.median(ts) / 1000


def _models():
    from tools.tflite_build import conv_model

    out = {p.stem: p.read_bytes() for p in sorted((ROOT / "tools" / "models").glob("*.tflite"))}
    rng = np.random.default_rng(0)
    filt = rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8)
    out["conv_8x3x3x3_16x16"] = conv_model("CONV_2D", [1, 16, 16, 3], filt, rng.integers(-500, 500, 8), (0.02, 0), [0.01] * 8, (0.5, 0), (1, 1), "SAME", 1)
    return out


def bench_infer(n=200, progress=print):
    import array

    from tools.infer import BackendMissing, _runner

    res = {}
    for name, data in _models().items():
        progress("model %s" % name)
        row = {}
        shape = None
        for backend in ("micro", "tflm", "litert", "tflite"):
            try:
                run = _runner(backend, data)
            except BackendMissing as e:
                row[backend] = {"error": str(e)}
                continue
            if shape is None:
                from firmware.nn.interp import Interpreter

                m = Interpreter(data).model
                shape = m.tensors[m.inputs[0]].shape
            x = np.zeros(shape, np.int8)
            run(x)
            row[backend] = {"median_us": round(_median_us(lambda run=run, x=x: run(x), n if backend != "micro" else max(20, n // 4)), 2)}
        exe = shutil.which("micropython")
        if exe:
            path = ROOT / ".bench-model.tflite"
            path.write_bytes(data)
            try:
                p = subprocess.run(
                    [exe, "-X", "heapsize=8M", "-c", MP_SCRIPT % (str(path), 30)],
                    cwd=ROOT,
                    env=dict(os.environ, MICROPYPATH=".frozen:" + str(ROOT)),
                    capture_output=True,
                    text=True,
                    timeout=600,
                )
                row["micro_micropython"] = {"median_us": float(p.stdout.strip())} if p.returncode == 0 else {"error": p.stderr.strip()[-200:]}
            finally:
                path.unlink()
        # the stage's work around invoke, micro backend: quantized input in, output out
        from firmware.nn.interp import Interpreter

        it = Interpreter(data)
        src = array.array("b", bytes(len(it.input(0))))

        def wrapped(it=it, src=src):
            inp = it.input(0)
            for i in range(len(src)):
                inp[i] = src[i]
            it.invoke()
            return it.output(0)[0]

        bare = _median_us(it.invoke, max(20, n // 4))
        wrap = _median_us(wrapped, max(20, n // 4))
        row["overhead_vs_bare_invoke"] = round(wrap / bare, 3)
        res[name] = row
    return {"models": res, "targets": {"overhead_vs_bare_invoke": 1.3}}
