"""Which runtime runs an int8 ``.tflite`` model: one table, resolved by name.

    it = open_model(model_bytes, "auto")     # or a name in BACKENDS
    it.backend                               # the name that was chosen
    it.input(0)[i] = q; it.invoke(); it.output(0)[0]

``BACKENDS`` maps a name to ``"module:Class"``, imported only when that
backend is asked for (as gpiozero names its pin factories), and to the
command that installs it. ``Class(model_bytes)`` loads the model; the
instance answers the micro interpreter's questions:
``model.tensors[model.inputs[0]]`` has ``type``, ``shape``, ``scale``,
``zero_point`` and ``size()``, ``input(k)`` / ``output(k)`` are flat
buffers, ``invoke()`` runs it and ``steps()`` yields between layers (the
Linux runtimes run the whole model in one step).

``micro`` is edgefw's own interpreter (firmware.nn.interp): the only one
on MicroPython, and bit-exact with TensorFlow Lite Micro. On Linux,
``litert`` (ai-edge-litert) and ``tflite`` (tflite-runtime 2.14) run the
same file with their optimised kernels; ``tflm`` is TFLM's own Python
binding, for comparisons on a workstation. ``auto`` takes the first of
``AUTO_ORDER`` that is installed; a backend asked for by name that is not
installed raises BackendUnavailable with the command that installs it,
and an unknown name one that lists the known ones.

Adding a backend: a class with that interface in its own module, and its
row here (and in AUTO_ORDER if ``auto`` may choose it).
"""

from hal.compat import IS_MICROPYTHON
from hal.errors import BackendUnavailable

# name: ("module:Class", how to install it; None: part of edgefw everywhere)
BACKENDS = {
    "micro": ("firmware.nn.interp:Interpreter", None),
    "litert": ("firmware.linux.runtimes:LiteRT", "pip install 'edgefw[litert]'  (ai-edge-litert)"),
    "tflite": ("firmware.linux.runtimes:TfliteRuntime", "pip install 'edgefw[tflite]'  (tflite-runtime 2.14: numpy<2, Python<=3.11)"),
    "tflm": ("firmware.linux.runtimes:Tflm", "pip install tflite-micro"),
}
AUTO_ORDER = ("litert", "tflite", "micro")
# the ones MicroPython has: the others need CPython and their packages
ON_MICROPYTHON = ("micro",)


def resolve(name):
    """The class registered as ``name``; ImportError if it is not installed."""
    spec = BACKENDS[name][0]
    mod, _, cls = spec.partition(":")
    return getattr(__import__(mod, None, None, (cls,)), cls)


def install_hint(name):
    return BACKENDS[name][1] or ""


def open_model(data, name="auto"):
    if name != "auto" and name not in BACKENDS:
        raise BackendUnavailable("inference backend %r is unknown: use auto, %s" % (name, ", ".join(sorted(BACKENDS))))
    order = AUTO_ORDER if name == "auto" else (name,)
    if IS_MICROPYTHON:
        if name != "auto" and name not in ON_MICROPYTHON:
            raise BackendUnavailable("inference backend %r does not exist on MicroPython: use %s (or auto)" % (name, ", ".join(ON_MICROPYTHON)))
        order = [n for n in order if n in ON_MICROPYTHON]
    missing = []
    for n in order:
        try:
            cls = resolve(n)
        except ImportError as e:
            missing.append("%s (%s): %s" % (n, e, install_hint(n)))
            continue
        try:
            return cls(data)
        except ImportError as e:
            # a runtime whose package is imported when it loads a model
            missing.append("%s (%s): %s" % (n, e, install_hint(n)))
    raise BackendUnavailable("inference backend not installed: " + "; ".join(missing))
