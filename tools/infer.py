"""``edgefw infer MODEL --backend NAME --inputs IN.npy --out OUT.npy``:
run an int8 model on a batch (first axis) with one backend, so anyone can
compare backends on their own model.

Backends, chosen by name or in this order by ``auto``:
    micro    edgefw's pure-Python interpreter (firmware/nn), runs anywhere
    tflm     TensorFlow Lite Micro's Python binding (pip install tflite-micro)
    litert   LiteRT (pip install 'edgefw[litert]', ai-edge-litert)
    tflite   tflite-runtime 2.14 (pip install 'edgefw[tflite]'; numpy < 2,
             Python <= 3.11)
"""

import sys

BACKENDS = ("micro", "tflm", "litert", "tflite")
INSTALL = {
    "tflm": "pip install tflite-micro",
    "litert": "pip install 'edgefw[litert]'  (ai-edge-litert)",
    "tflite": "pip install 'edgefw[tflite]'  (tflite-runtime 2.14, needs numpy<2 and Python<=3.11)",
}


class BackendMissing(Exception):
    pass


def _runner(name, data):
    """A function int8 array (one sample, model input shape) -> int8 array."""
    import numpy as np

    if name == "micro":
        import array

        from firmware.nn.interp import Interpreter

        it = Interpreter(data)
        shape = it.model.tensors[it.model.outputs[0]].shape

        def run(x):
            it.input(0)[:] = array.array("b", x.astype(np.int8).tobytes())
            it.invoke()
            return np.frombuffer(bytes(it.output(0)), dtype=np.int8).reshape(shape)

        return run
    try:
        if name == "tflm":
            from tflite_micro.python.tflite_micro import runtime

            it = runtime.Interpreter.from_bytes(data)

            def run(x):
                it.set_input(x, 0)
                it.invoke()
                return it.get_output(0).copy()

            return run
        if name == "litert":
            from ai_edge_litert.interpreter import Interpreter
        else:
            from tflite_runtime.interpreter import Interpreter
    except ImportError as e:
        raise BackendMissing("backend %r is not installed (%s): %s" % (name, e, INSTALL[name]))
    it = Interpreter(model_content=data)
    it.allocate_tensors()
    inp, out = it.get_input_details()[0]["index"], it.get_output_details()[0]["index"]

    def run(x):
        it.set_tensor(inp, x)
        it.invoke()
        return it.get_tensor(out).copy()

    return run


def choose(name, data):
    if name != "auto":
        return name, _runner(name, data)
    for n in ("litert", "tflite", "micro"):
        try:
            return n, _runner(n, data)
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
    if xs.dtype != np.int8:
        print(
            "edgefw infer: %s: inputs are %s; the models are int8: quantize them with the model's input scale and zero point first" % (args.inputs, xs.dtype),
            file=sys.stderr,
        )
        return 2
    try:
        name, fn = choose(args.backend, data)
    except BackendMissing as e:
        print("edgefw infer: %s" % e, file=sys.stderr)
        return 2
    except ValueError as e:  # ModelError from the micro interpreter
        print("edgefw infer: %s: %s" % (args.model, e), file=sys.stderr)
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
    p.set_defaults(fn=run)
    return p
