"""``edgefw infer MODEL --backend NAME --inputs IN.npy --out OUT.npy``:
run an int8 model on a batch (first axis) with one backend, so anyone can
compare backends on their own model. ``edgefw infer MODEL --describe``
prints its inputs and outputs (shape, type, scale, zero point) and its
operators instead.

One input rule for every backend: the batch is an array of N samples,
each of the model's input shape, or of that shape without its leading 1
(for an input of shape (1, 6): (N, 1, 6) or (N, 6)); an empty batch gives
an empty output. The output has N samples of the model's output shape.

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

from firmware.nn import backend as _backend
from firmware.nn.backend import open_model
from hal.errors import BackendUnavailable

# the names of firmware.nn.backend's table, the one list of backends
BACKENDS = tuple(sorted(_backend.BACKENDS))
AUTO_ORDER = _backend.AUTO_ORDER


class BackendMissing(BackendUnavailable):
    """The backend asked for cannot load here; the message says how to
    install it."""


def _runner(name, data, reference=False):
    """A function int8 array (one sample, model input shape) -> int8 array.
    ``reference``: LiteRT / tflite-runtime with their BUILTIN_REF kernels."""
    import numpy as np

    try:
        if reference and name in ("litert", "tflite"):
            it = _backend.resolve(name)(data, reference=True)
        else:
            it = open_model(data, name)
    except BackendUnavailable as e:
        raise BackendMissing(str(e))
    except ImportError as e:
        raise BackendMissing("backend %r is not installed (%s): %s" % (name, e, _backend.install_hint(name)))
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
    run.in_shape = tuple(m.tensors[m.inputs[0]].shape)
    run.out_shape = tuple(shape)
    return run


def _is_float(it, ti):
    from firmware.nn.model import FLOAT32

    return it.model.tensors[ti].type == FLOAT32


def choose(name, data, reference=False):
    if name != "auto":
        return name, _runner(name, data, reference)
    missing = []
    for n in AUTO_ORDER:
        try:
            fn = _runner(n, data, reference)
        except BackendMissing as e:
            missing.append(str(e))
            continue
        if missing:
            # one line, whatever the number of backends passed over
            print("edgefw infer: using %s (%s not installed)" % (n, ", ".join(m for m in AUTO_ORDER[: AUTO_ORDER.index(n)])), file=sys.stderr)
        return n, fn
    raise BackendMissing("no backend could load the model: " + "; ".join(missing))


def _fmt_shape(shape):
    return "(%s)" % ", ".join(str(d) for d in shape) if len(shape) != 1 else "(%d,)" % shape[0]


def describe(data):
    """Lines describing a model: its inputs, outputs and operators. The
    model is loaded by the micro interpreter, so one it refuses is
    refused here too (ModelError), with the reason."""
    from firmware.nn.interp import Interpreter
    from firmware.nn.model import TYPE_NAMES

    m = Interpreter(data).model
    lines = []

    def tensor(role, k, ti):
        t = m.tensors[ti]
        q = "scale %.6g, zero point %d" % (t.scale[0], t.zero_point[0]) if t.scale and t.zero_point else "not quantized"
        if len(t.scale) > 1:
            q = "per-channel, %d scales" % len(t.scale)
        lines.append("%s %d: tensor %d %r, shape %s, %s, %s" % (role, k, ti, t.name, _fmt_shape(t.shape), TYPE_NAMES.get(t.type, "type %d" % t.type), q))

    for k, ti in enumerate(m.inputs):
        tensor("input", k, ti)
    for k, ti in enumerate(m.outputs):
        tensor("output", k, ti)
    for k, (name, ins, outs, _opts) in enumerate(m.operators):
        lines.append("operator %d: %s, inputs %s, outputs %s" % (k, name, list(ins), list(outs)))
    return lines


def run(args):
    import numpy as np

    try:
        with open(args.model, "rb") as f:
            data = f.read()
    except OSError as e:
        print("edgefw infer: %s: %s" % (args.model, e), file=sys.stderr)
        return 2
    if args.describe:
        try:
            print("\n".join(describe(data)))
        except ValueError as e:  # ModelError
            print("edgefw infer: %s: %s" % (args.model, e), file=sys.stderr)
            return 2
        return 0
    if args.inputs is None or args.out is None:
        print("edgefw infer: --inputs and --out are needed to run a model (or --describe to print it)", file=sys.stderr)
        return 2
    try:
        xs = np.load(args.inputs)
    except (OSError, ValueError, EOFError) as e:
        print("edgefw infer: %s: not a readable .npy file (%s)" % (args.inputs, e), file=sys.stderr)
        return 2
    try:
        name, fn = choose(args.backend, data, args.reference)
    except BackendMissing as e:
        print("edgefw infer: %s" % e, file=sys.stderr)
        return 2
    except (ValueError, RuntimeError) as e:  # ModelError; tflm's own refusal
        print("edgefw infer: %s: %s" % (args.model, e), file=sys.stderr)
        return 2
    in_shape, out_shape = fn.in_shape, fn.out_shape
    shapes = [in_shape] + ([in_shape[1:]] if len(in_shape) > 1 and in_shape[0] == 1 else [])
    if xs.ndim == 0 or tuple(xs.shape[1:]) not in shapes:
        print(
            "edgefw infer: %s: inputs have shape %s; the model takes samples of shape %s, so the batch must be %s"
            % (args.inputs, _fmt_shape(xs.shape), _fmt_shape(in_shape), " or ".join(_fmt_shape(("N",) + s) for s in shapes)),
            file=sys.stderr,
        )
        return 2
    if xs.dtype != fn.dtype:
        hint = "quantize them with the model's input scale and zero point first" if fn.dtype == np.int8 else "this model quantizes its own input"
        print("edgefw infer: %s: inputs are %s; the model takes %s: %s" % (args.inputs, xs.dtype, fn.dtype, hint), file=sys.stderr)
        return 2
    outs = []
    for i, x in enumerate(xs):
        try:
            outs.append(fn(x.reshape(in_shape)))
        except (ValueError, RuntimeError) as e:
            print("edgefw infer: sample %d: %s (input shape %s)" % (i, e, x.shape), file=sys.stderr)
            return 2
    try:
        np.save(args.out, np.stack(outs) if outs else np.zeros((0,) + out_shape, dtype=np.float32 if fn.dtype == np.float32 else np.int8))
    except OSError as e:
        print("edgefw infer: %s: %s" % (args.out, e), file=sys.stderr)
        return 2
    print("edgefw infer: %d samples through %s -> %s" % (len(outs), name, args.out), file=sys.stderr)
    return 0


def add_parser(p):
    p.add_argument("model")
    p.add_argument("--backend", default="auto", choices=("auto",) + BACKENDS)
    p.add_argument("--inputs", help=".npy of int8 inputs: first axis = batch, each item the model's input shape (a leading 1 may be left out)")
    p.add_argument("--out", help=".npy to write the outputs to")
    p.add_argument(
        "--describe", action="store_true", help="print the model's inputs and outputs (shape, type, scale, zero point) and its operators, and run nothing"
    )
    p.add_argument("--reference", action="store_true", help="litert/tflite: use the runtime's reference kernels (BUILTIN_REF) instead of its optimised ones")
    return p


def main(args):
    return run(args)
