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
scratch, ``weights_bytes`` the constants. Operators without a kernel here
are refused at load, by name.
"""

import array
import struct

from firmware.nn import kernels
from firmware.nn.model import FLOAT32, INT8, INT32, TYPE_NAMES, Model
from hal.compat import IS_MICROPYTHON
from hal.errors import ModelError

KERNELS = (
    "FULLY_CONNECTED",
    "RESHAPE",
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "ADD",
    "MUL",
    "QUANTIZE",
    "DEQUANTIZE",
    "LOGISTIC",
    "SOFTMAX",
    "MEAN",
)
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


def _macs(p, op, t):
    """Rough multiply-accumulates of one planned operator."""
    if p[0] in ("CONV_2D", "DEPTHWISE_CONV_2D"):
        fshp = p[4]
        return len(t[p[6]]) * fshp[1] * fshp[2] * (1 if p[17] else fshp[3])
    if p[0] == "FULLY_CONNECTED":
        return len(t[p[1]]) * p[11]
    return len(t[op[1][0]]) if p[0] != "RESHAPE" else 0


class Interpreter:
    # firmware.nn.backend's name for it
    backend = "micro"

    def __init__(self, data, vectorise=None):
        """``vectorise``: True runs the numpy kernels (CPython, numpy
        installed), False the scalar ones (what MicroPython runs); None
        chooses numpy on CPython when the model has at least
        VECTORISE_MIN_MACS multiply-accumulates."""
        self.k = kernels
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
        for k, (name, _i, _o, _opts) in enumerate(m.operators):
            if name not in KERNELS:
                raise ModelError("operator %d (%s) has no kernel in the micro interpreter yet (available: %s)" % (k, name, ", ".join(KERNELS)))
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
        self.plan = [self._prepare(op) for op in m.operators]
        self.macs = 0
        for k, p in enumerate(self.plan):
            self.macs += _macs(p, m.operators[k], self.t)

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

    def _prepare(self, op):
        name, ins, outs, opts = op
        row = OPERATORS.get(name)
        if row is None:
            raise ModelError("operator %s is not supported by the micro interpreter (supported: %s)" % (name, ", ".join(sorted(OPERATORS))))
        return getattr(self, row[0])(name, ins, outs, opts)

    def _prepare_softmax(self, name, ins, outs, opts):
        tin, tout = self._probabilities(name, ins, outs)
        if not tin.shape or opts.get("beta", 0) <= 0:
            raise ModelError("SOFTMAX %r: needs a shape and beta > 0" % tout.name)
        mult, shift, diff_min = kernels.softmax_params(opts["beta"], tin.scale[0])
        tables = kernels.softmax_tables(mult, shift, diff_min)
        self.arena_bytes += 3 * 1024
        return (name, ins[0], outs[0], tin.shape[-1], mult, shift, diff_min, tables)

    def _prepare_logistic(self, name, ins, outs, opts):
        tin, tout = self._probabilities(name, ins, outs)
        mult, shift, radius = kernels.logistic_params(tin.scale[0])
        table = kernels.logistic_table(tin.zero_point[0], mult, shift, radius)
        self.arena_bytes += 256
        return (name, ins[0], outs[0], tin.zero_point[0], mult, shift, radius, table)

    def _prepare_quantize(self, name, ins, outs, opts):
        m = self.model
        if len(ins) != 1 or len(outs) != 1 or len(self.t[ins[0]]) != len(self.t[outs[0]]):
            raise ModelError("%s needs one input and one output of the same size" % name)
        src, dst = m.tensors[ins[0]], m.tensors[outs[0]]
        want = (FLOAT32, INT8) if name == "QUANTIZE" else (INT8, FLOAT32)
        if (src.type, dst.type) != want:
            raise ModelError("%s %r: only float32 <-> int8 is supported" % (name, dst.name))
        q = self._q(outs[0] if name == "QUANTIZE" else ins[0], name)
        return (name, ins[0], outs[0], q.scale[0], q.zero_point[0])

    def _prepare_reshape(self, name, ins, outs, opts):
        m = self.model
        if not ins or len(outs) != 1 or ins[0] < 0 or len(self.t[ins[0]]) != len(self.t[outs[0]]) or m.tensors[ins[0]].type != m.tensors[outs[0]].type:
            raise ModelError("RESHAPE: input and output must hold the same number of values")
        return (name, ins[0], outs[0])

    def _prepare_fc(self, name, ins, outs, opts):
        m = self.model
        if len(ins) < 2 or len(outs) != 1 or min(ins[:2]) < 0:
            raise ModelError("FULLY_CONNECTED needs input, weights (and bias) and one output, got inputs %r outputs %r" % (ins, outs))
        ti, tw, tb = ins[0], ins[1], ins[2] if len(ins) > 2 else -1
        tin, tw_, tout = self._q(ti, name), m.tensors[tw], self._q(outs[0], name)
        self._weights(name, tw, tb)
        if len(tw_.shape) != 2 or min(tw_.shape) <= 0:
            raise ModelError("FULLY_CONNECTED weights %r: shape %r, expected [units, inputs]" % (tw_.name, tw_.shape))
        n_out, n_in = tw_.shape[0], tw_.shape[1]
        t = self.t
        if len(t[tw]) != n_out * n_in or len(t[ti]) % n_in or len(t[outs[0]]) != len(t[ti]) // n_in * n_out:
            sizes = (tout.name, len(t[ti]), len(t[tw]), len(t[outs[0]]))
            raise ModelError("FULLY_CONNECTED %r: tensor sizes disagree (input %d, weights %d, output %d)" % sizes)
        if tb >= 0 and len(t[tb]) != n_out:
            raise ModelError("FULLY_CONNECTED %r: bias has %d values for %d units" % (tout.name, len(t[tb]), n_out))
        if not tin.scale or not tout.scale or not tw_.scale or not tin.zero_point or not tout.zero_point or len(tw_.scale) not in (1, n_out):
            raise ModelError("FULLY_CONNECTED %r: input, weights and output must be quantized (scale and zero point)" % (tout.name,))
        if not -128 <= tin.zero_point[0] <= 127 or not -128 <= tout.zero_point[0] <= 127 or tin.scale[0] <= 0 or tout.scale[0] <= 0 or min(tw_.scale) <= 0:
            raise ModelError("FULLY_CONNECTED %r: scales must be positive and zero points int8" % (tout.name,))
        mults, shifts = [], []
        for s in tw_.scale:
            q, sh = kernels.quantize_multiplier(tin.scale[0] * s / tout.scale[0])
            mults.append(kernels.split_multiplier(q))
            shifts.append(sh)
        try:
            lo, hi = kernels.activation_range(opts.get("activation", 0), tout.scale[0], tout.zero_point[0])
        except (ValueError, OverflowError) as e:
            raise ModelError("FULLY_CONNECTED %r: %s" % (tout.name, e))
        return (
            name,
            ti,
            tw,
            tb,
            outs[0],
            tin.zero_point[0],
            tw_.zero_point[0] if tw_.zero_point else 0,
            tout.zero_point[0],
            mults,
            shifts,
            n_in,
            n_out,
            lo,
            hi,
        )

    def _weights(self, name, tw, tb):
        """Weights int8 and bias int32, as the int8 kernels read them."""
        t = self.model.tensors
        if t[tw].type != INT8 or (tb >= 0 and t[tb].type != INT32):
            raise ModelError("%s: weights %r must be int8 and bias int32" % (name, t[tw].name))

    def _probabilities(self, name, ins, outs):
        """Input and output of an op whose int8 output is a probability:
        TFLite fixes its quantization at scale 1/256, zero point -128."""
        if len(ins) != 1 or len(outs) != 1 or len(self.t[ins[0]]) != len(self.t[outs[0]]):
            raise ModelError("%s needs one input and one output of the same size" % name)
        tin, tout = self._q(ins[0], name), self._q(outs[0], name)
        if tout.zero_point[0] != -128 or abs(tout.scale[0] * 256 - 1) > 1e-6:
            raise ModelError("%s %r: int8 output must be quantized with scale 1/256 and zero point -128" % (name, tout.name))
        return tin, tout

    def _q(self, ti, what):
        tt = self.model.tensors[ti]
        if tt.type != INT8:
            raise ModelError("%s: tensor %r is %s, expected int8" % (what, tt.name, TYPE_NAMES.get(tt.type, tt.type)))
        if not tt.scale or not tt.zero_point or tt.scale[0] <= 0 or not -128 <= tt.zero_point[0] <= 127:
            raise ModelError("%s: tensor %r must be int8-quantized (scale > 0, zero point in int8)" % (what, tt.name))
        return tt

    def _prepare_conv(self, name, ins, outs, o):
        m = self.model
        if len(ins) < 2 or len(outs) != 1:
            raise ModelError("%s needs input, filter (and bias) and one output" % name)
        tin, tf, tout = self._q(ins[0], name), m.tensors[ins[1]], self._q(outs[0], name)
        tb = ins[2] if len(ins) > 2 else -1
        self._weights(name, ins[1], tb)
        if len(tin.shape) != 4 or len(tf.shape) != 4 or len(tout.shape) != 4:
            raise ModelError("%s %r: input, filter and output must be 4-D (NHWC)" % (name, tout.name))
        dw = name == "DEPTHWISE_CONV_2D"
        oc = tout.shape[3]
        if (tf.shape[3] if dw else tf.shape[0]) != oc or (not dw and tf.shape[3] != tin.shape[3]):
            raise ModelError("%s %r: filter shape %r does not fit input %r and output %r" % (name, tout.name, tf.shape, tin.shape, tout.shape))
        dm = o.get("depth_multiplier", 1) if dw else 1
        if dw and (dm < 1 or tin.shape[3] * dm != oc):
            raise ModelError("%s %r: depth multiplier %d does not fit %d -> %d channels" % (name, tout.name, dm, tin.shape[3], oc))
        sh, sw = o["stride_h"], o["stride_w"]
        dh, dwl = o["dilation_h"], o["dilation_w"]
        if min(sh, sw, dh, dwl) < 1:
            raise ModelError("%s %r: strides and dilations must be >= 1" % (name, tout.name))
        same = o["padding"] == 0
        oh, ph = kernels.padding(tin.shape[1], tf.shape[1], sh, dh, same)
        ow, pw = kernels.padding(tin.shape[2], tf.shape[2], sw, dwl, same)
        if [tin.shape[0], oh, ow, oc] != list(tout.shape):
            raise ModelError("%s %r: output shape %r, expected %r" % (name, tout.name, tout.shape, [tin.shape[0], oh, ow, oc]))
        if len(tf.scale) not in (1, oc) or min(tf.scale) <= 0 or (tb >= 0 and len(self.t[tb]) != oc):
            raise ModelError("%s %r: filter scales or bias do not match %d output channels" % (name, tout.name, oc))
        mults, shifts = [], []
        for sc in tf.scale:
            q, s_ = kernels.quantize_multiplier(tin.scale[0] * sc / tout.scale[0])
            mults.append(kernels.split_multiplier(q))
            shifts.append(s_)
        lo, hi = self._act(o.get("activation", 0), tout, name)
        return (
            name,
            ins[0],
            tin.shape,
            ins[1],
            tf.shape,
            tb,
            outs[0],
            tout.shape,
            tin.zero_point[0],
            tout.zero_point[0],
            mults,
            shifts,
            (sh, sw),
            (dh, dwl),
            (ph, pw),
            lo,
            hi,
            dw,
            dm,
        )

    def _prepare_pool(self, name, ins, outs, o):
        if len(ins) != 1 or len(outs) != 1:
            raise ModelError("%s needs one input and one output" % name)
        tin, tout = self._q(ins[0], name), self._q(outs[0], name)
        fh, fw, sh, sw = o["filter_h"], o["filter_w"], o["stride_h"], o["stride_w"]
        if min(fh, fw, sh, sw) < 1 or len(tin.shape) != 4:
            raise ModelError("%s %r: filter and strides must be >= 1 on a 4-D input" % (name, tout.name))
        same = o["padding"] == 0
        oh, ph = kernels.padding(tin.shape[1], fh, sh, 1, same)
        ow, pw = kernels.padding(tin.shape[2], fw, sw, 1, same)
        if [tin.shape[0], oh, ow, tin.shape[3]] != list(tout.shape):
            raise ModelError("%s %r: output shape %r, expected %r" % (name, tout.name, tout.shape, [tin.shape[0], oh, ow, tin.shape[3]]))
        lo, hi = self._act(o.get("activation", 0), tout, name)
        return (name, ins[0], tin.shape, outs[0], tout.shape, (fh, fw), (sh, sw), (ph, pw), lo, hi)

    def _prepare_elementwise(self, name, ins, outs, o):
        if len(ins) != 2 or len(outs) != 1 or min(ins) < 0:
            raise ModelError("%s needs two inputs and one output" % name)
        ta, tb, tout = self._q(ins[0], name), self._q(ins[1], name), self._q(outs[0], name)
        amap, bmap = self._broadcast(name, ins[0], tout), self._broadcast(name, ins[1], tout)
        lo, hi = self._act(o.get("activation", 0), tout, name)
        if name == "ADD":
            twice = 2 * max(ta.scale[0], tb.scale[0])
            am, ash = kernels.quantize_multiplier(ta.scale[0] / twice)
            bm, bsh = kernels.quantize_multiplier(tb.scale[0] / twice)
            om, osh = kernels.quantize_multiplier(twice / ((1 << 20) * tout.scale[0]))
            am, bm, om = kernels.split_multiplier(am), kernels.split_multiplier(bm), kernels.split_multiplier(om)
            return (name, ins[0], -ta.zero_point[0], am, ash, ins[1], -tb.zero_point[0], bm, bsh, outs[0], om, osh, tout.zero_point[0], lo, hi, amap, bmap)
        m_, sh = kernels.quantize_multiplier(ta.scale[0] * tb.scale[0] / tout.scale[0])
        m_ = kernels.split_multiplier(m_)
        return (name, ins[0], -ta.zero_point[0], ins[1], -tb.zero_point[0], outs[0], m_, sh, tout.zero_point[0], lo, hi, amap, bmap)

    def _prepare_mean(self, name, ins, outs, opts):
        m = self.model
        if len(ins) != 2 or len(outs) != 1 or min(ins) < 0 or not m.tensors[ins[1]].data or m.tensors[ins[1]].type != INT32:
            raise ModelError("MEAN needs an input, a constant int32 axis tensor and one output")
        tin, tout = self._q(ins[0], "MEAN"), self._q(outs[0], "MEAN")
        shape = tin.shape
        nd = len(shape)
        axes = []
        for a in self.t[ins[1]]:
            r = a + nd if a < 0 else a
            if not 0 <= r < nd:
                raise ModelError("MEAN %r: axis %d is outside a %d-D input" % (tout.name, a, nd))
            if r not in axes:
                axes.append(r)
        n = 1
        for a in axes:
            n *= shape[a]
        if len(self.t[outs[0]]) * n != len(self.t[ins[0]]):
            raise ModelError("MEAN %r: output shape %r does not fit input %r reduced over %r" % (tout.name, tout.shape, shape, axes))
        # where each input position lands in the output (stride 0 along a reduced axis)
        ostr = [0] * nd
        step = 1
        for d in range(nd - 1, -1, -1):
            if d not in axes:
                ostr[d] = step
                step *= shape[d]
        omap = self._index_map(shape, ostr)
        # TFLM folds the 1/n of the mean into the rescaling multiplier
        mult, sh = kernels.quantize_multiplier(tin.scale[0] / tout.scale[0])
        k = min(len(bin(n)) - 3, 32, 31 + sh)
        mult = (mult << k) // n
        sh -= k
        acc = array.array("i", bytes(4 * len(self.t[outs[0]])))
        self.arena_bytes += 4 * len(acc)
        return ("MEAN", ins[0], omap, acc, outs[0], tin.zero_point[0] * n, kernels.split_multiplier(mult), sh, tout.zero_point[0])

    def _broadcast(self, name, ti, tout):
        """Index of ``ti``'s value for each output position (numpy's rules:
        shapes aligned at the right, a dimension of 1 repeats), or None
        when the shapes are the same."""
        shp, oshp = self.model.tensors[ti].shape, tout.shape
        if list(shp) == list(oshp):
            return None
        nd = len(oshp)
        full = [1] * (nd - len(shp)) + list(shp)
        if len(shp) > nd or any(full[d] != oshp[d] and full[d] != 1 for d in range(nd)):
            raise ModelError("%s %r: input shape %r does not broadcast to the output's %r" % (name, tout.name, shp, oshp))
        strides = [0] * nd
        step = 1
        for d in range(nd - 1, -1, -1):
            if full[d] != 1:
                strides[d] = step
            step *= full[d]
        return self._index_map(oshp, strides)

    def _index_map(self, shape, strides):
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

    def _act(self, act, tout, name):
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
        for p in self.plan:
            self._run(p)

    def steps(self):
        """Run the model one operator at a time, yielding after each: a
        cooperative caller (MicroPython's inference task) lets the loop run
        between layers."""
        for p in self.plan:
            yield
            self._run(p)

    def _run(self, p):
        # a plain function from the table: a bound method would be
        # allocated on every call
        OPERATORS[p[0]][1](self.t, self.k, p)


# --- running: one function per operator, handed the tensors, the kernel
# set (scalar, or numpy on CPython) and what prepare planned --------------
def _run_conv(t, kernels, p):
    name, ti, ishp, tf, fshp, tb, to, oshp, izp, ozp, mults, shifts, st, dil, pad, lo, hi, dw, dm = p
    kernels.conv2d(t[ti], izp, ishp, t[tf], fshp, t[tb] if tb >= 0 else None, t[to], oshp, ozp, mults, shifts, st, dil, pad, lo, hi, dw, dm)


def _run_pool(t, kernels, p):
    name, ti, ishp, to, oshp, filt, st, pad, lo, hi = p
    kernels.pool2d(t[ti], ishp, t[to], oshp, filt, st, pad, lo, hi, name == "AVERAGE_POOL_2D")


def _run_add(t, kernels, p):
    _n, ta, ao, am, ash, tb, bo, bm, bsh, to, om, osh, ozp, lo, hi, amap, bmap = p
    kernels.add(t[ta], ao, am, ash, t[tb], bo, bm, bsh, t[to], om, osh, ozp, lo, hi, amap, bmap)


def _run_mul(t, kernels, p):
    _n, ta, ao, tb, bo, to, m_, sh, ozp, lo, hi, amap, bmap = p
    kernels.mul(t[ta], ao, t[tb], bo, t[to], m_, sh, ozp, lo, hi, amap, bmap)


def _run_mean(t, kernels, p):
    _n, ti, omap, acc, to, zpn, m_, sh, ozp = p
    kernels.mean(t[ti], omap, acc, t[to], zpn, m_, sh, ozp)


def _run_softmax(t, kernels, p):
    kernels.softmax(t[p[1]], t[p[2]], p[3], p[4], p[5], p[6], p[7])


def _run_logistic(t, kernels, p):
    kernels.logistic(t[p[1]], t[p[2]], p[3], p[4], p[5], p[6], p[7])


def _run_quantize(t, kernels, p):
    kernels.quantize(t[p[1]], t[p[2]], p[3], p[4])


def _run_dequantize(t, kernels, p):
    kernels.dequantize(t[p[1]], t[p[2]], p[3], p[4])


def _run_reshape(t, kernels, p):
    src, dst = t[p[1]], t[p[2]]
    for i in range(len(dst)):
        dst[i] = src[i]


def _run_fc(t, kernels, p):
    _n, ti, tw, tb, to, izp, wzp, ozp, mults, shifts, n_in, n_out, lo, hi = p
    kernels.fully_connected(t[ti], izp, t[tw], wzp, t[tb] if tb >= 0 else None, t[to], ozp, mults, shifts, n_in, n_out, lo, hi)


# Every operator the interpreter runs, registered once: the Interpreter
# method that checks it and plans its work at load, and the function that
# runs it. Adding an operator is a row here (and its kernel in kernels.py,
# with a numpy twin in kernels_np.py); a name not here is refused at load.
OPERATORS = {
    "CONV_2D": ("_prepare_conv", _run_conv),
    "DEPTHWISE_CONV_2D": ("_prepare_conv", _run_conv),
    "MAX_POOL_2D": ("_prepare_pool", _run_pool),
    "AVERAGE_POOL_2D": ("_prepare_pool", _run_pool),
    "ADD": ("_prepare_elementwise", _run_add),
    "MUL": ("_prepare_elementwise", _run_mul),
    "MEAN": ("_prepare_mean", _run_mean),
    "SOFTMAX": ("_prepare_softmax", _run_softmax),
    "LOGISTIC": ("_prepare_logistic", _run_logistic),
    "QUANTIZE": ("_prepare_quantize", _run_quantize),
    "DEQUANTIZE": ("_prepare_quantize", _run_dequantize),
    "RESHAPE": ("_prepare_reshape", _run_reshape),
    "FULLY_CONNECTED": ("_prepare_fc", _run_fc),
}
