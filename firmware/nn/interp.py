"""The micro interpreter: runs an int8 ``.tflite`` model op by op.

    it = Interpreter(model_bytes)
    it.input(0)[:] = int8 values       # an array('b')
    it.invoke()
    it.output(0)                       # array('b')

The int8 activations live in one arena planned at load, tensors that are
never alive together sharing bytes; weights stay in their own arrays.
``invoke`` allocates nothing (checked under MicroPython's heap lock for
every integer operator; QUANTIZE and DEQUANTIZE make float objects, which
MicroPython allocates). ``arena_bytes`` is the activation arena plus
scratch, ``weights_bytes`` the constants. Each operator's checks, plan and
run are its kernel module's (``firmware.nn.ops``, one table); an operator
not in that table is refused at load, by name.
"""

import array
import struct

from firmware.nn import kernels, ops
from firmware.nn.model import FLOAT32, INT8, INT32, TYPE_NAMES, Model
from hal.compat import IS_MICROPYTHON
from hal.errors import ModelError


def _kernel_set():
    """The kernels every Interpreter runs, chosen once, at import: the
    native ones (firmware.nn.kernels_native) where the port has a native
    emitter, else the pure ones. A port without one refuses the module
    (SyntaxError from source, ValueError from a .mpy with native code);
    CPython runs the pure or the numpy kernels."""
    if not IS_MICROPYTHON:
        return kernels
    try:
        from firmware.nn import kernels_native

        return kernels_native
    except (ImportError, SyntaxError, ValueError):
        return kernels


KERNELS = _kernel_set()
# CPython's struct.error is no ValueError; MicroPython raises ValueError
_STRUCT_ERROR = getattr(struct, "error", ValueError)
# Interpreter(vectorise=None) follows this: None = numpy kernels on CPython
# for models big enough to gain from them; the parity tests force each way
VECTORISE = None
# multiply-accumulates per invoke below which numpy's per-call overhead
# (tens of microseconds) costs more than it saves
VECTORISE_MIN_MACS = 1000


def _int8(data):
    return array.array("b", bytes(data))


def _int32(data):
    if len(data) % 4:
        raise ModelError("malformed model: int32 buffer of %d bytes" % len(data))
    n = len(data) // 4
    return array.array("i", struct.unpack("<%di" % n, bytes(data)))


class Interpreter:
    # firmware.nn.backend's name for it
    backend = "micro"

    def __init__(self, data, vectorise=None):
        """``vectorise``: True runs the numpy kernels (CPython, numpy
        installed), False the scalar ones (what MicroPython runs); None
        chooses numpy on CPython when the model has at least
        VECTORISE_MIN_MACS multiply-accumulates."""
        self.k = KERNELS
        try:
            self._load(data)
        except ModelError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, OverflowError, _STRUCT_ERROR) as e:
            # whatever else a damaged file provokes is reported the same way
            raise ModelError("malformed model: %s" % (e,))
        if vectorise is None:
            vectorise = VECTORISE
        if vectorise is None:
            vectorise = not IS_MICROPYTHON and self.macs >= VECTORISE_MIN_MACS
        if vectorise:
            try:
                from firmware.nn import kernels_np

                self.k = kernels_np
            except ImportError:
                pass

    def _load(self, data):
        self.model = m = Model(data)
        self.arena_bytes = 0
        self.weights_bytes = 0
        self.t = []
        for t in m.tensors:
            if t.type == INT8:
                # activations get their place in the shared arena below
                a = _int8(t.data) if t.data else None
            elif t.type == INT32:
                a = _int32(t.data) if t.data else array.array("i", bytes(4 * t.size()))
            elif t.type == FLOAT32 and not t.data:
                # float only at the edges: QUANTIZE in, DEQUANTIZE out
                a = array.array("f", bytes(4 * t.size()))
                self.arena_bytes += 4 * len(a)
            else:
                raise ModelError("tensor %r is of type %d; the micro interpreter runs int8 models (int32 bias)" % (t.name, t.type))
            if t.data:
                if len(a) != t.size():
                    raise ModelError("tensor %r: %d values in its buffer for shape %r" % (t.name, len(a), t.shape))
                self.weights_bytes += len(a) * (4 if t.type == INT32 else 1)
            elif t.type == INT32:
                self.arena_bytes += 4 * len(a)
            self.t.append(a)
        self._plan_arena()
        # (run, plan) per operator: the function the kernel module chose,
        # called as it is in invoke (a bound method would be allocated)
        self.plan = []
        self.macs = 0
        for name, ins, outs, opts in m.operators:
            kern = ops.kernel(name)
            run, p = kern.prepare(self, name, ins, outs, opts)
            self.plan.append((run, p))
            # rough multiply-accumulates: numpy pays off past VECTORISE_MIN_MACS
            self.macs += kern.macs(self.t, p) if hasattr(kern, "macs") else len(self.t[ins[0]])

    def _plan_arena(self):
        """Place every int8 activation in one array, sharing bytes between
        tensors that are never alive at the same time (greedy, largest
        first, as TFLM's planner does). A tensor is alive from the operator
        that writes it (or the start, for model inputs) to the last one that
        reads it (or the end, for model outputs)."""
        m = self.model
        n_ops = len(m.operators)
        first, last = {}, {}
        for k, (_n, ins, outs, _o) in enumerate(m.operators):
            for ti in ins + outs:
                if ti >= 0 and self.t[ti] is None:
                    first.setdefault(ti, k)
                    last[ti] = k
        for ti in m.inputs:
            first[ti] = -1
            last.setdefault(ti, -1)
        for ti in m.outputs:
            first.setdefault(ti, n_ops)
            last[ti] = n_ops
        acts = [ti for ti in range(len(self.t)) if self.t[ti] is None]
        for ti in acts:
            if ti not in first:
                first[ti] = last[ti] = -2  # used by no operator: any place does
        acts.sort(key=lambda ti: -m.tensors[ti].size())
        placed = []  # (offset, size, first, last)
        offsets = {}
        for ti in acts:
            size = m.tensors[ti].size()
            off = 0
            clash = True
            while clash:
                clash = False
                for o, sz, f, la in placed:
                    if f <= last[ti] and first[ti] <= la and o < off + size and off < o + sz:
                        off = o + sz
                        clash = True
            placed.append((off, size, first[ti], last[ti]))
            offsets[ti] = off
        total = 0
        for o, sz, _f, _l in placed:
            total = max(total, o + sz)
        self.arena = array.array("b", bytes(total))
        self.arena_bytes += total
        view = memoryview(self.arena)
        for ti in acts:
            self.t[ti] = view[offsets[ti] : offsets[ti] + m.tensors[ti].size()]

    def check_weights(self, name, tw, tb):
        """Weights int8 and bias int32, as the int8 kernels read them."""
        t = self.model.tensors
        if t[tw].type != INT8 or (tb >= 0 and t[tb].type != INT32):
            raise ModelError("%s: weights %r must be int8 and bias int32" % (name, t[tw].name))

    def probabilities(self, name, ins, outs):
        """Input and output of an op whose int8 output is a probability:
        TFLite fixes its quantization at scale 1/256, zero point -128."""
        if len(ins) != 1 or len(outs) != 1 or len(self.t[ins[0]]) != len(self.t[outs[0]]):
            raise ModelError("%s needs one input and one output of the same size" % name)
        tin, tout = self.quantized(ins[0], name), self.quantized(outs[0], name)
        if tout.zero_point[0] != -128 or abs(tout.scale[0] * 256 - 1) > 1e-6:
            raise ModelError("%s %r: int8 output must be quantized with scale 1/256 and zero point -128" % (name, tout.name))
        return tin, tout

    def quantized(self, ti, what):
        tt = self.model.tensors[ti]
        if tt.type != INT8:
            raise ModelError("%s: tensor %r is %s, expected int8" % (what, tt.name, TYPE_NAMES.get(tt.type, tt.type)))
        if not tt.scale or not tt.zero_point or tt.scale[0] <= 0 or not -128 <= tt.zero_point[0] <= 127:
            raise ModelError("%s: tensor %r must be int8-quantized (scale > 0, zero point in int8)" % (what, tt.name))
        return tt

    def index_map(self, shape, strides):
        """For every position of ``shape`` in row-major order, the offset
        ``strides`` give it in another tensor (stride 0 along an axis that
        tensor repeats or that is summed into one place): built once at
        load, so the kernels only look offsets up."""
        n = 1
        for d in shape:
            n *= d
        nd = len(shape)
        imap = array.array("i", bytes(4 * n))
        idx = [0] * nd
        off = 0
        for i in range(n):
            imap[i] = off
            d = nd - 1
            while d >= 0:
                idx[d] += 1
                off += strides[d]
                if idx[d] < shape[d]:
                    break
                off -= strides[d] * shape[d]
                idx[d] = 0
                d -= 1
        self.arena_bytes += 4 * n
        return imap

    def activation(self, act, tout, name):
        try:
            return kernels.activation_range(act, tout.scale[0], tout.zero_point[0])
        except (ValueError, OverflowError) as e:
            raise ModelError("%s %r: %s" % (name, tout.name, e))

    def input(self, k=0):
        return self.t[self.model.inputs[k]]

    def output(self, k=0):
        return self.t[self.model.outputs[k]]

    def invoke(self):
        # no generator here: creating one allocates, and invoke must not
        t, k = self.t, self.k
        for run, p in self.plan:
            run(t, k, p)

    def steps(self):
        """Run the model one operator at a time, yielding after each: a
        cooperative caller (MicroPython's inference task) lets the loop run
        between layers."""
        for run, p in self.plan:
            yield
            run(self.t, self.k, p)
