"""The Linux inference runtimes behind the micro interpreter's interface
(CPython only): LiteRT (ai-edge-litert) and tflite-runtime 2.14.
``firmware.nn.backend.open_model`` chooses among them and the micro
interpreter."""

import sys


def _tensor(detail):
    """A runtime's tensor details as firmware.nn.model describes a tensor."""
    from firmware.nn.model import FLOAT32, INT8, Tensor

    scale, zp = detail["quantization"]
    ttype = FLOAT32 if detail["dtype"].__name__ == "float32" else INT8
    return Tensor([int(d) for d in detail["shape"]], ttype, b"", [float(scale)], [int(zp)], 0, detail["name"])


class _Model:
    def __init__(self, ins, outs):
        self.tensors = [_tensor(d) for d in ins + outs]
        self.inputs = list(range(len(ins)))
        self.outputs = list(range(len(ins), len(ins) + len(outs)))


class LinuxRuntime:
    """LiteRT or tflite-runtime behind the micro interpreter's interface.

    The runtime's interpreter is made once here, to refuse a bad model at
    start-up, and again on first use in the process that invokes it: the
    inference stage forks its worker, and a runtime's thread pool does not
    survive a fork."""

    def __init__(self, data, name, reference=False):
        self.backend = name
        self._data = data
        # BUILTIN_REF: the runtime's reference kernels instead of its optimised ones
        self._reference = reference
        self._cls = self._interpreter_class(name)
        it = self._make(reference)
        ins, outs = it.get_input_details(), it.get_output_details()
        if not ins or not outs:
            from hal.errors import ModelError

            raise ModelError("%s: the model has %d inputs and %d outputs; it needs at least one of each" % (name, len(ins), len(outs)))
        for d in ins + outs:
            if d["dtype"].__name__ not in ("int8", "float32"):
                from hal.errors import ModelError

                raise ModelError("tensor %r is %s; edgefw runs int8 models" % (d["name"], d["dtype"].__name__))
        self.model = _Model(ins, outs)
        import numpy as np

        self._in = [np.zeros(d["shape"], dtype=d["dtype"]) for d in ins]
        self._flat_in = [a.reshape(-1) for a in self._in]
        self._flat_out = [np.zeros(int(np.prod(d["shape"])), dtype=d["dtype"]) for d in outs]
        self._in_idx = [d["index"] for d in ins]
        self._out_idx = [d["index"] for d in outs]
        self._it = None
        # the runtime plans its own arena and does not say how big it is
        self.arena_bytes = None

    @staticmethod
    def _interpreter_class(name):
        if name == "litert":
            from ai_edge_litert.interpreter import Interpreter
        else:
            from tflite_runtime.interpreter import Interpreter
        return Interpreter

    def _make(self, reference=False):
        from hal.errors import ModelError

        kw = {}
        if reference:
            kw["experimental_op_resolver_type"] = sys.modules[self._cls.__module__].OpResolverType.BUILTIN_REF
        try:
            with native_info_dropped():
                it = self._cls(model_content=self._data, num_threads=1, **kw)
                it.allocate_tensors()
        except (ValueError, RuntimeError) as e:
            raise ModelError("%s cannot load the model: %s" % (self.backend, e))
        return it

    def input(self, k=0):
        return self._flat_in[k]

    def output(self, k=0):
        return self._flat_out[k]

    def invoke(self):
        it = self._it
        if it is None:
            it = self._it = self._make(self._reference)
        if len(self._in) == 1 and len(self._flat_out) == 1:
            # the common case without the loops: this runs once per window
            it.set_tensor(self._in_idx[0], self._in[0])
            it.invoke()
            # get_tensor hands back a fresh copy: keep it rather than copy again
            self._flat_out[0] = it.get_tensor(self._out_idx[0]).reshape(-1)
            return
        for k, idx in enumerate(self._in_idx):
            it.set_tensor(idx, self._in[k])
        it.invoke()
        for k, idx in enumerate(self._out_idx):
            self._flat_out[k] = it.get_tensor(idx).reshape(-1)

    def steps(self):
        yield
        self.invoke()


class native_info_dropped:
    """The runtimes' C++ side prints "INFO: Created TensorFlow Lite XNNPACK
    delegate for CPU." on the process's stderr when an interpreter is made,
    into the middle of a live status line: their INFO lines are dropped,
    anything else they print is passed on."""

    def __enter__(self):
        import os
        import tempfile

        sys.stderr.flush()
        self._saved = os.dup(2)
        self._tmp = tempfile.TemporaryFile()
        os.dup2(self._tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        import os

        os.dup2(self._saved, 2)
        os.close(self._saved)
        self._tmp.seek(0)
        for line in self._tmp.read().decode("utf-8", "replace").splitlines():
            if not line.startswith("INFO: "):
                sys.stderr.write(line + "\n")
        self._tmp.close()
        return False


class LiteRT(LinuxRuntime):
    """firmware.nn.backend's ``litert``."""

    def __init__(self, data, reference=False):
        LinuxRuntime.__init__(self, data, "litert", reference)


class TfliteRuntime(LinuxRuntime):
    """firmware.nn.backend's ``tflite``."""

    def __init__(self, data, reference=False):
        LinuxRuntime.__init__(self, data, "tflite", reference)


class Tflm:
    """TensorFlow Lite Micro's own Python binding (PyPI tflite-micro)
    behind the micro interpreter's interface: firmware.nn.backend's
    ``tflm``, the reference the micro interpreter is compared with
    (``edgefw infer --backend tflm``, the parity tests, the benchmarks)."""

    backend = "tflm"
    arena_bytes = None

    def __init__(self, data):
        import numpy as np
        from tflite_micro.python.tflite_micro import runtime

        from firmware.nn.model import FLOAT32, INT8, Tensor

        self._it = runtime.Interpreter.from_bytes(data)
        tensors = []
        for d in (self._it.get_input_details(0), self._it.get_output_details(0)):
            q = d["quantization_parameters"]
            ttype = FLOAT32 if np.dtype(d["dtype"]) == np.float32 else INT8
            tensors.append(Tensor([int(n) for n in d["shape"]], ttype, b"", [float(x) for x in q["scales"]], [int(x) for x in q["zero_points"]], 0, ""))
        self.model = type("TflmModel", (), {"tensors": tensors, "inputs": [0], "outputs": [1]})()
        self._in = np.zeros(tensors[0].shape, dtype=self._it.get_input_details(0)["dtype"])
        self._flat_in = self._in.reshape(-1)
        self._out = np.zeros(tensors[1].size(), dtype=self._it.get_output_details(0)["dtype"])

    def input(self, k=0):
        return self._flat_in

    def output(self, k=0):
        return self._out

    def invoke(self):
        self._it.set_input(self._in, 0)
        self._it.invoke()
        self._out[:] = self._it.get_output(0).reshape(-1)

    def steps(self):
        yield
        self.invoke()
