"""``edgefw bench infer``: median invoke time per model and backend, side
by side in one run (MicroPython three times: the 64-bit unix port with its
native kernels and with the pure ones, and the 32-bit wasm port, each with
the bytes allocated per invoke, which must be 0), and the overhead the
loop's inference stage adds around ``invoke`` (quantized input in, score
out) against a bare ``invoke``. Feature extraction is not counted: it is
the same for every backend. Every time is the median of batches, with the
spread of the batches (``spread_us``: fastest, slowest).

``instructions_per_invoke`` counts instructions with valgrind's callgrind,
which a shared machine's load does not change: the unix port's invoke
with pure and native kernels, and tflite-micro's C++ ``Invoke`` on the
same model, and their ratios. On MicroPython the invokes run inside
``map()``, the only place callgrind collects (``--toggle-collect``), and
the same map over a function that does nothing is subtracted; for TFLM
callgrind collects inside ``MicroInterpreter::Invoke`` alone.

    edgefw bench infer --json     # or bench_infer(n) from here
"""

import os
import shutil
import statistics
import subprocess
import time

import numpy as np

from edgefw.util import ROOT

MP_SCRIPT = """
import gc, time, micropython
from firmware.nn import interp, kernels


def main(path, batches, pure):
    if pure:
        interp.KERNELS = kernels
    it = interp.Interpreter(open(path, 'rb').read())
    it.invoke()
    # time per invoke: the mean over a batch of at least 50 ms (the 32-bit
    # port's clock ticks in milliseconds), median of the batches
    per = []
    for _ in range(batches):
        n = 0
        t = time.ticks_ms()
        while True:
            it.invoke()
            n += 1
            dt = time.ticks_diff(time.ticks_ms(), t)
            if dt >= 50:
                break
        per.append(dt * 1000 / n)
    per.sort()
    # bytes allocated per invoke, the collector off; then invokes that fail
    # under the heap lock (any allocation raises MemoryError there)
    k = 10
    gc.collect()
    gc.disable()
    a = gc.mem_alloc()
    for _ in range(k):
        it.invoke()
    b = gc.mem_alloc()
    gc.enable()
    failed = 0
    ok = 0
    for _ in range(k):
        gc.collect()
        micropython.heap_lock()
        try:
            it.invoke()
            ok = 1
        except MemoryError:
            ok = 0
        micropython.heap_unlock()
        failed += 1 - ok
    print(interp.KERNELS.__name__, per[0], per[-1], per[len(per) // 2], (b - a) // k, failed, k)


main(%r, %d, %d)
"""


def _mp_row(p):
    if p is None:
        return {"error": "not installed"}
    if p.returncode != 0:
        return {"error": (p.stdout + p.stderr).strip()[-200:]}
    kset, lo, hi, us, per_invoke, failed, k = p.stdout.split()[-7:]
    return {
        "median_us": round(float(us), 1),
        "spread_us": [round(float(lo), 1), round(float(hi), 1)],
        "kernels": kset.rsplit(".", 1)[-1],
        "alloc_bytes_per_invoke": int(per_invoke),
        "heap_locked_failures": "%s/%s" % (failed, k),
    }


def _run_unix(code):
    """The script under the 64-bit unix port."""
    exe = shutil.which("micropython")
    if exe is None:
        return _mp_row(None)
    env = dict(os.environ, MICROPYPATH=".frozen:" + str(ROOT))
    return _mp_row(subprocess.run([exe, "-X", "heapsize=8M", "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600))


def _run_wasm32(code):
    """The script under the 32-bit wasm port (edgefw/emul/wasm32.py)."""
    from edgefw.emul import wasm32

    if wasm32.missing():
        return {"error": wasm32.missing()}
    return _mp_row(wasm32.run(["-c", code], heap="8M", timeout=600))


def _median_us(fn, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        ts.append(time.perf_counter_ns() - t)
    return statistics.median(ts) / 1000


def _timed(fn, n, batches=5):
    """Median of ``batches`` batch medians of ``n // batches`` calls each,
    and the spread of those batch medians (fastest, slowest)."""
    per = sorted(_median_us(fn, max(1, n // batches)) for _ in range(batches))
    return {"median_us": round(per[len(per) // 2], 2), "spread_us": [round(per[0], 2), round(per[-1], 2)]}


def _models():
    from edgefw.build.tflite_build import conv_model

    out = {p.stem: p.read_bytes() for p in sorted((ROOT / "firmware" / "models").glob("*.tflite"))}
    rng = np.random.default_rng(0)
    filt = rng.integers(-127, 128, (8, 3, 3, 3)).astype(np.int8)
    out["conv_8x3x3x3_16x16"] = conv_model("CONV_2D", [1, 16, 16, 3], filt, rng.integers(-500, 500, 8), (0.02, 0), [0.01] * 8, (0.5, 0), (1, 1), "SAME", 1)
    return out


TFLITE_PYTHON = ROOT / ".venv-tflite" / "bin" / "python"
TFLITE_SCRIPT = """
import sys, time, statistics
import numpy as np
from tflite_runtime.interpreter import Interpreter
it = Interpreter(model_path=sys.argv[1], num_threads=1)
it.allocate_tensors()
i, o = it.get_input_details()[0], it.get_output_details()[0]
x = np.zeros(i["shape"], np.int8)
ts = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter_ns()
    it.set_tensor(i["index"], x); it.invoke(); it.get_tensor(o["index"])
    ts.append(time.perf_counter_ns() - t)
print(statistics.median(ts) / 1000)
"""


def _invoker(backend, data, x, n):
    """(function that runs one inference, repetitions): the runtime's own
    calls only (set input, invoke, get output), nothing of edgefw's."""
    from edgefw.infer import BackendMissing
    from firmware.nn.interp import Interpreter

    if backend.startswith("micro"):
        it = Interpreter(data, vectorise=backend == "micro_numpy")
        return it.invoke, max(20, n // 4)
    if backend == "tflm":
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError as e:
            raise BackendMissing(str(e))
        ref = runtime.Interpreter.from_bytes(data)

        def tflm():
            ref.set_input(x, 0)
            ref.invoke()
            return ref.get_output(0)

        return tflm, n
    try:
        if backend == "litert":
            from ai_edge_litert.interpreter import Interpreter as RT
        else:
            from tflite_runtime.interpreter import Interpreter as RT
    except ImportError as e:
        raise BackendMissing(str(e))
    it = RT(model_content=data, num_threads=1)
    it.allocate_tensors()
    ii, oi = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def linux():
        it.set_tensor(ii, x)
        it.invoke()
        return it.get_tensor(oi)

    return linux, n * 10


def _tflite_in_venv(data, n):
    """tflite-runtime needs numpy < 2: time it in its own venv."""
    path = ROOT / ".bench-tflite.tflite"
    path.write_bytes(data)
    try:
        p = subprocess.run([str(TFLITE_PYTHON), "-c", TFLITE_SCRIPT, str(path), str(n * 10)], capture_output=True, text=True, timeout=600)
    finally:
        path.unlink()
    if p.returncode != 0:
        return {"error": p.stderr.strip()[-200:]}
    return {"median_us": round(float(p.stdout.strip()), 2), "where": ".venv-tflite (numpy < 2)"}


def _overhead(it, bare, n):
    """Median of the stage's work around invoke (the quantized input
    copied in, the first output value read) over the median of ``bare``."""
    src = it.input(0)[:]

    def wrapped():
        it.input(0)[:] = src
        it.invoke()
        return it.output(0)[0]

    b = _median_us(bare, n)
    w = _median_us(wrapped, n)
    return {"bare_us": round(b, 2), "wrapped_us": round(w, 2), "ratio": round(w / b, 3)}


# MicroPython: invokes inside map(), where callgrind collects; K > 0 runs
# K invokes, K < 0 the same map over a function that does nothing
CG_MP_SCRIPT = """
import sys
from firmware.nn import interp, kernels
if %d:
    interp.KERNELS = kernels
it = interp.Interpreter(open(%r, "rb").read())
it.invoke()
inv = it.invoke
K = %d
f = (lambda _: inv()) if K > 0 else (lambda _: None)
for _ in map(f, range(abs(K))):
    pass
print(interp.KERNELS.__name__)
"""
CG_TFLM_SCRIPT = """
import sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
ref = runtime.Interpreter.from_bytes(open(sys.argv[1], "rb").read())
d = ref.get_input_details(0)
ref.set_input(np.zeros(d["shape"], d["dtype"]), 0)
for _ in range(int(sys.argv[2])):
    ref.invoke()
"""
CG_INVOKES = 10
# the models whose instructions are counted (callgrind is slow): the shipped ones
SHIPPED = ("vib_dense", "vib_conv1d", "vib_autoencoder")


def _callgrind(argv, toggle, env=None, cwd=ROOT):
    """Instructions callgrind collected inside ``toggle`` (a function name
    pattern) while ``argv`` ran, and the run's stdout."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "cg.out")
        cmd = ["valgrind", "--tool=callgrind", "--toggle-collect=" + toggle, "--callgrind-out-file=" + out] + argv
        p = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
        if p.returncode != 0:
            raise RuntimeError((p.stdout + p.stderr).strip()[-300:])
        with open(out) as f:
            for line in f:
                if line.startswith("summary:"):
                    return int(line.split()[1]), p.stdout
    raise RuntimeError("callgrind wrote no summary")


def _mp_argv():
    """The unix port's command line: the pip package's ``micropython`` is a
    Python script around the port (run under its Python, so callgrind
    follows the port's C code), a build from source a binary."""
    import sys

    exe = shutil.which("micropython")
    with open(exe, "rb") as f:
        script = f.read(2) == b"#!"
    return ([sys.executable, exe] if script else [exe]) + ["-X", "heapsize=8M"]


def instructions_per_invoke(path, k=CG_INVOKES):
    """Instructions per invoke of the model at ``path``: the unix port with
    pure and with native kernels, and tflite-micro (see the module's
    docstring); a reason instead where something is missing."""
    if shutil.which("valgrind") is None:
        return {"error": "valgrind not installed (apt-get install valgrind)"}
    if shutil.which("micropython") is None:
        return {"error": "micropython not installed"}
    env = dict(os.environ, MICROPYPATH=".frozen:" + str(ROOT))
    res = {"invokes": k}
    try:
        for key, pure in (("unix_pure", 1), ("unix_native", 0)):
            runs = {}
            for sign in (1, -1):
                ir, out = _callgrind(_mp_argv() + ["-c", CG_MP_SCRIPT % (pure, str(path), sign * k)], "map_iternext", env)
                runs[sign] = ir
            res[key] = round((runs[1] - runs[-1]) / k)
            res[key + "_kernels"] = out.split()[-1].rsplit(".", 1)[-1]
    except RuntimeError as e:
        return {"error": "callgrind on the unix port: %s" % e}
    try:
        import sys

        ir, _out = _callgrind([sys.executable, "-c", CG_TFLM_SCRIPT, str(path), str(k)], "*MicroInterpreter::Invoke*", dict(os.environ, PYTHONHASHSEED="0"))
        res["tflm"] = round(ir / k)
    except RuntimeError as e:
        res["tflm_error"] = str(e)[-200:]
    res["pure_over_native"] = round(res["unix_pure"] / res["unix_native"], 2) if res["unix_native"] > 0 else None
    if res.get("tflm"):
        res["native_over_tflm"] = round(res["unix_native"] / res["tflm"], 2)
    return res


def bench_infer(n=200, progress=print, count=True):
    from edgefw.infer import BackendMissing
    from firmware.linux.runtimes import LinuxRuntime
    from firmware.nn.backend import open_model
    from firmware.nn.interp import Interpreter

    res = {}
    for name, data in _models().items():
        progress("model %s" % name)
        row = {}
        m = Interpreter(data).model
        x = np.zeros(m.tensors[m.inputs[0]].shape, np.int8)
        for backend in ("micro_scalar", "micro_numpy", "tflm", "litert", "tflite"):
            try:
                fn, reps = _invoker(backend, data, x, n)
            except BackendMissing as e:
                if backend == "tflite" and TFLITE_PYTHON.exists():
                    row[backend] = _tflite_in_venv(data, n)
                else:
                    row[backend] = {"error": str(e)}
                continue
            fn()
            row[backend] = _timed(fn, reps)
        path = ROOT / ".bench-model.tflite"
        path.write_bytes(data)
        try:
            # the unix port as it chooses (native kernels), then pure
            row["micro_micropython"] = _run_unix(MP_SCRIPT % (str(path), 5, 0))
            row["micro_micropython_pure"] = _run_unix(MP_SCRIPT % (str(path), 5, 1))
            row["micro_micropython32"] = _run_wasm32(MP_SCRIPT % (str(path), 5, 0))
            if count and name in SHIPPED:
                progress("  instructions per invoke (callgrind)")
                row["instructions_per_invoke"] = instructions_per_invoke(path)
        finally:
            path.unlink()
        # the stage around invoke, for the micro interpreter as the loop
        # chooses its kernels, and for LiteRT against its own bare
        # set_tensor + invoke + get_tensor
        it = Interpreter(data)
        row["overhead_vs_bare_invoke"] = ov = {"micro": _overhead(it, it.invoke, max(20, n // 4))}
        try:
            lr = open_model(data, "litert")
        except Exception:
            lr = None
        if isinstance(lr, LinuxRuntime):
            lr.invoke()
            raw, ii, oi = lr._it, lr._in_idx[0], lr._out_idx[0]
            xb = np.zeros(lr._in[0].shape, np.int8)

            def bare(raw=raw, ii=ii, oi=oi, xb=xb):
                raw.set_tensor(ii, xb)
                raw.invoke()
                return raw.get_tensor(oi)

            ov["litert"] = _overhead(lr, bare, n * 10)
        row["overhead_vs_bare_invoke_ratio"] = ov["micro"]["ratio"]
        row["micro_kernels"] = "numpy" if it.k.__name__.endswith("_np") else "scalar"
        row["micro_arena_bytes"] = it.arena_bytes
        res[name] = row
    return {"models": res, "targets": {"overhead_vs_bare_invoke_ratio": 1.3}}
