"""The operators the micro interpreter runs: one table, one module each.

    from firmware.nn import ops
    ops.name(9)                           # "FULLY_CONNECTED" (a ModelError if unknown)
    kern = ops.kernel("FULLY_CONNECTED")  # firmware.nn.ops.fully_connected
    opts = kern.options(buf, table)       # its options, read from the flatbuffer
    run, plan = kern.prepare(interp, name, ins, outs, opts)   # at load
    run(tensors, kernel_set, plan)        # in invoke

As TFLM's MicroMutableOpResolver: a builtin code not in ``OPERATORS`` is
refused at load, naming it; nothing runs by default. Adding an operator is
a module here (``options``, ``prepare``, and the ``run`` that ``prepare``
hands back) and its row below. A kernel module is imported the first time
a model uses one of its operators (measured on the 32-bit port: a model
of fully-connected layers alone does not pay for the others' code).
"""

from hal.errors import ModelError

# TFLite BuiltinOperator code (schema.fbs): (name, module in this package)
OPERATORS = {
    0: ("ADD", "elementwise"),
    1: ("AVERAGE_POOL_2D", "pool"),
    3: ("CONV_2D", "conv"),
    4: ("DEPTHWISE_CONV_2D", "conv"),
    6: ("DEQUANTIZE", "quantize"),
    9: ("FULLY_CONNECTED", "fully_connected"),
    14: ("LOGISTIC", "logistic"),
    17: ("MAX_POOL_2D", "pool"),
    18: ("MUL", "elementwise"),
    22: ("RESHAPE", "reshape"),
    25: ("SOFTMAX", "softmax"),
    40: ("MEAN", "mean"),
    114: ("QUANTIZE", "quantize"),
}
_loaded = {}


def names():
    return sorted(row[0] for row in OPERATORS.values())


def name(code):
    """The operator's name for a builtin code; refused if not in the table."""
    row = OPERATORS.get(code)
    if row is None:
        raise ModelError("builtin code %d is not supported by the micro interpreter (supported: %s)" % (code, ", ".join(names())))
    return row[0]


def kernel(op_name):
    """The kernel module of an operator named in the table."""
    mod = _loaded.get(op_name)
    if mod is None:
        for n, m in OPERATORS.values():
            if n == op_name:
                mod = __import__("firmware.nn.ops." + m, None, None, (m,))
                break
        else:
            raise ModelError("operator %s is not supported by the micro interpreter (supported: %s)" % (op_name, ", ".join(names())))
        _loaded[op_name] = mod
    return mod
