"""Which runtime runs an int8 ``.tflite`` model: chosen here, in one place.

    it = open_model(model_bytes, "auto")     # or "micro", "litert", "tflite"
    it.backend                               # the name that was chosen
    it.input(0)[i] = q; it.invoke(); it.output(0)[0]

``micro`` is edgefw's own interpreter (firmware.nn.interp): the only one
on MicroPython, and bit-exact with TensorFlow Lite Micro. On Linux,
``litert`` (ai-edge-litert) and ``tflite`` (tflite-runtime 2.14) run the
same file with their optimised kernels. ``auto`` takes the first of
``AUTO_ORDER`` that is installed; a backend asked for by name that is not
installed raises BackendUnavailable with the command that installs it.

Every backend answers the micro interpreter's questions the same way:
``model.tensors[model.inputs[0]]`` has ``type``, ``shape``, ``scale``,
``zero_point`` and ``size()``, and ``steps()`` yields between layers (the
Linux runtimes run the whole model in one step).
"""

from hal.compat import IS_MICROPYTHON
from hal.errors import BackendUnavailable

BACKENDS = ("micro", "litert", "tflite")
AUTO_ORDER = ("litert", "tflite", "micro")
INSTALL = {
    "litert": "pip install 'edgefw[litert]'  (ai-edge-litert)",
    "tflite": "pip install 'edgefw[tflite]'  (tflite-runtime 2.14: numpy<2, Python<=3.11)",
}


def open_model(data, name="auto"):
    if name not in ("auto",) + BACKENDS:
        raise BackendUnavailable("inference backend %r is unknown: use auto, %s" % (name, ", ".join(BACKENDS)))
    order = AUTO_ORDER if name == "auto" else (name,)
    if IS_MICROPYTHON:
        if name not in ("auto", "micro"):
            raise BackendUnavailable("inference backend %r does not exist on MicroPython: use micro (or auto)" % name)
        order = ("micro",)
    missing = []
    for n in order:
        if n == "micro":
            from firmware.nn.interp import Interpreter

            return Interpreter(data)
        try:
            from firmware.linux.runtimes import LinuxRuntime

            return LinuxRuntime(data, n)
        except ImportError as e:
            missing.append("%s (%s): %s" % (n, e, INSTALL[n]))
    raise BackendUnavailable("inference backend not installed: " + "; ".join(missing))
