"""``edgefw infer MODEL --backend NAME --inputs IN.npy --out OUT.npy``:
run an int8 model on a batch (first axis) with one backend, so anyone can
compare backends on their own model.

Backends (``auto`` tries litert, tflite, then micro, as the firmware's
inference stage does; tflm only when named):
    micro    edgefw's pure-Python interpreter (firmware/nn), runs anywhere
    litert   LiteRT (pip install 'edgefw[litert]', ai-edge-litert)
    tflite   tflite-runtime 2.14 (pip install 'edgefw[tflite]'; numpy < 2,
             Python <= 3.11)
    tflm     TensorFlow Lite Micro's Python binding (pip install tflite-micro)
"""

import array
import sys

from firmware.nn.backend import BACKENDS as _FIRMWARE_BACKENDS
from firmware.nn.backend import INSTALL, open_model
from hal.errors import BackendUnavailable

BACKENDS = _FIRMWARE_BACKENDS + ("tflm",)
AUTO_ORDER = ("litert", "tflite", "micro")


class BackendMissing(Exception):
    pass


def _runner(name, data, reference=False):
    """A function int8 array (one sample, model input shape) -> int8 array.
    ``reference``: LiteRT / tflite-runtime with their BUILTIN_REF kernels."""
    import numpy as np

    if name == "tflm":
        try:
            from tflite_micro.python.tflite_micro import runtime
        except ImportError as e:
            raise BackendMissing("backend 'tflm' is not installed (%s): pip install tflite-micro" % e)
        ref = runtime.Interpreter.from_bytes(data)

        def run_tflm(x):
            ref.set_input(x, 0)
            ref.invoke()
            return ref.get_output(0).copy()

        run_tflm.dtype = np.dtype(ref.get_input_details(0)["dtype"])
        return run_tflm
    try:
        if name == "micro" or not reference:
            it = open_model(data, name)
        else:
            from firmware.nn.backend import LinuxRuntime

            it = LinuxRuntime(data, name, reference=True)
    except BackendUnavailable as e:
        raise BackendMissing(str(e))
    except ImportError as e:
        raise BackendMissing("backend %r is not installed (%s): %s" % (name, e, INSTALL.get(name, "")))
    m = it.model
    shape = m.tensors[m.outputs[0]].shape
    # int8 models, or float at the edges (QUANTIZE in, DEQUANTIZE out)
    dtype_in = np.dtype(np.float32 if _is_float(it, m.inputs[0]) else np.int8)
    dtype_out = np.dtype(np.float32 if _is_float(it, m.outputs[0]) else np.int8)

    def run(x):
        x = np.ascontiguousarray(x, dtype=dtype_in).reshape(-1)
        it.input(0)[:] = array.array(dtype_in.char if dtype_in.char == "f" else "b", x.tobytes()) if name == "micro" else x
        it.invoke()
        return np.array(it.output(0), dtype=dtype_out).reshape(shape)

    run.dtype = dtype_in
    return run


def _is_float(it, ti):
    from firmware.nn.model import FLOAT32

    return it.model.tensors[ti].type == FLOAT32


def choose(name, data, reference=False):
    if name != "auto":
        return name, _runner(name, data, reference)
    for n in AUTO_ORDER:
        try:
            return n, _runner(n, data, reference)
        except BackendMissing as e:
            print("edgefw infer: %s; trying the next backend" % e, file=sys.stderr)
    raise BackendMissing("no backend could load the model")


def run(args):
    import numpy as np

    try:
        with open(args.model, "rb") as f:
            data = f.read()
    except OSError as e:
        print("edgefw infer: %s: %s" % (args.model, e), file=sys.stderr)
        return 2
    try:
        xs = np.load(args.inputs)
    except (OSError, ValueError) as e:
        print("edgefw infer: %s: not a readable .npy file (%s)" % (args.inputs, e), file=sys.stderr)
        return 2
    try:
        name, fn = choose(args.backend, data, args.reference)
    except BackendMissing as e:
        print("edgefw infer: %s" % e, file=sys.stderr)
        return 2
    except ValueError as e:  # ModelError from the micro interpreter
        print("edgefw infer: %s: %s" % (args.model, e), file=sys.stderr)
        return 2
    if xs.dtype != fn.dtype:
        hint = "quantize them with the model's input scale and zero point first" if fn.dtype == np.int8 else "this model quantizes its own input"
        print("edgefw infer: %s: inputs are %s; the model takes %s: %s" % (args.inputs, xs.dtype, fn.dtype, hint), file=sys.stderr)
        return 2
    outs = []
    for i, x in enumerate(xs):
        try:
            outs.append(fn(x))
        except (ValueError, RuntimeError) as e:
            print("edgefw infer: sample %d: %s (input shape %s)" % (i, e, x.shape), file=sys.stderr)
            return 2
    np.save(args.out, np.stack(outs))
    print("edgefw infer: %d samples through %s -> %s" % (len(outs), name, args.out), file=sys.stderr)
    return 0


def add_parser(sub):
    p = sub.add_parser("infer", help="run an int8 .tflite model on a batch of inputs with one backend")
    p.add_argument("model")
    p.add_argument("--backend", default="auto", choices=("auto",) + BACKENDS)
    p.add_argument("--inputs", required=True, help=".npy of int8 inputs: first axis = batch, each item the model's input shape")
    p.add_argument("--out", required=True, help=".npy to write the outputs to")
    p.add_argument("--reference", action="store_true", help="litert/tflite: use the runtime's reference kernels (BUILTIN_REF) instead of its optimised ones")
    p.set_defaults(fn=run)
    return p
