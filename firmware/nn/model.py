"""Reading a ``.tflite`` file: a flatbuffer, parsed here by hand
(MicroPython has no flatbuffers library).

    m = load("model.tflite")          # or Model(bytes)
    m.tensors[i].shape, .type, .scale, .zero_point, .data
    m.operators -> (opcode name, inputs, outputs, options dict)

Only what the interpreter uses is read. A malformed file raises
``ModelError`` with the byte offset where reading went wrong; an
operator not in ``firmware.nn.ops.OPERATORS`` raises it with its builtin
code, at load, and each operator's options are read by its kernel module.
"""

import struct

from firmware.nn import ops
from hal.errors import ModelError

MAX_DIM = 1 << 16
MAX_VALUES = 1 << 22
# TensorType
INT8 = 9
INT32 = 2
FLOAT32 = 0
TYPE_NAMES = {0: "float32", 2: "int32", 3: "uint8", 9: "int8", 7: "int16", 4: "int64"}


class _Buf:
    """Bounds-checked little-endian reads from the flatbuffer."""

    def __init__(self, data):
        self.d = data
        self.n = len(data)

    def _chk(self, off, size):
        if off < 0 or off + size > self.n:
            raise ModelError("malformed model: read of %d bytes at offset %d, file is %d bytes" % (size, off, self.n))

    def u8(self, off):
        self._chk(off, 1)
        return self.d[off]

    def i8(self, off):
        v = self.u8(off)
        return v - 256 if v > 127 else v

    def u16(self, off):
        self._chk(off, 2)
        return struct.unpack_from("<H", self.d, off)[0]

    def i32(self, off):
        self._chk(off, 4)
        return struct.unpack_from("<i", self.d, off)[0]

    def u32(self, off):
        self._chk(off, 4)
        return struct.unpack_from("<I", self.d, off)[0]

    def table(self, off):
        """A table at ``off``: its vtable location and sizes."""
        vt = off - self.i32(off)
        vt_len = self.u16(vt)
        if vt_len < 4 or vt_len % 2:
            raise ModelError("malformed model: bad vtable at offset %d" % vt)
        self._chk(vt, vt_len)
        return (off, vt, vt_len)

    def field(self, t, idx):
        """Absolute offset of field ``idx`` of table ``t``, or None."""
        off, vt, vt_len = t
        slot = 4 + 2 * idx
        if slot >= vt_len:
            return None
        rel = self.u16(vt + slot)
        return off + rel if rel else None

    def ref(self, at):
        return at + self.u32(at)

    def vector(self, at):
        """(start, length) of the vector referenced at ``at``."""
        v = self.ref(at)
        return v + 4, self.u32(v)

    def sub(self, t, idx):
        f = self.field(t, idx)
        return None if f is None else self.table(self.ref(f))

    def scalar(self, t, idx, fmt, default):
        f = self.field(t, idx)
        if f is None:
            return default
        if fmt == "b":
            return self.i8(f)
        if fmt == "B":
            return self.u8(f)
        return self.i32(f)

    def vec_tables(self, t, idx):
        f = self.field(t, idx)
        if f is None:
            return []
        start, n = self.vector(f)
        self._chk(start, 4 * n)
        return [self.table(self.ref(start + 4 * i)) for i in range(n)]

    def vec_i32(self, t, idx):
        f = self.field(t, idx)
        if f is None:
            return []
        start, n = self.vector(f)
        self._chk(start, 4 * n)
        return list(struct.unpack_from("<%di" % n, self.d, start))

    def vec_fmt(self, t, idx, fmt, size):
        f = self.field(t, idx)
        if f is None:
            return []
        start, n = self.vector(f)
        self._chk(start, size * n)
        return list(struct.unpack_from("<%d%s" % (n, fmt), self.d, start))

    def f32(self, off):
        self._chk(off, 4)
        return struct.unpack_from("<f", self.d, off)[0]

    def conv_opts(self, o, fields, dm_field):
        """padding, strides, activation, dilations (and depth multiplier)
        from a Conv2D / DepthwiseConv2D / Pool2D options table: ``fields``
        are the field numbers of the first five (or six) in that order."""
        if o is None:
            return {"padding": 0, "stride_w": 0, "stride_h": 0, "activation": 0, "dilation_w": 1, "dilation_h": 1, "depth_multiplier": 1}
        pad, sw, sh, act, dw, dh = fields
        return {
            "padding": self.scalar(o, pad, "b", 0),
            "stride_w": self.scalar(o, sw, "i", 0),
            "stride_h": self.scalar(o, sh, "i", 0),
            "activation": self.scalar(o, act, "b", 0),
            "dilation_w": self.scalar(o, dw, "i", 1) if dw is not None else 1,
            "dilation_h": self.scalar(o, dh, "i", 1) if dh is not None else 1,
            "depth_multiplier": self.scalar(o, dm_field, "i", 1) if dm_field is not None else 1,
        }

    def bytes_(self, t, idx):
        f = self.field(t, idx)
        if f is None:
            return b""
        start, n = self.vector(f)
        self._chk(start, n)
        return self.d[start : start + n]


class Tensor:
    def __init__(self, shape, type_, data, scale, zero_point, qdim, name):
        self.shape = shape
        self.type = type_
        self.data = data
        self.scale = scale
        self.zero_point = zero_point
        self.quantized_dimension = qdim
        self.name = name

    def size(self):
        n = 1
        for d in self.shape:
            n *= d
        return n


class Model:
    def __init__(self, data):
        if len(data) < 8:
            raise ModelError("malformed model: %d bytes is too short for a .tflite file" % len(data))
        if bytes(data[4:8]) != b"TFL3":
            raise ModelError("not a .tflite model: file identifier %r, expected b'TFL3'" % (bytes(data[4:8]),))
        b = _Buf(data)
        root = b.table(b.u32(0))
        self.version = b.scalar(root, 0, "i", 0)
        codes = []
        for oc in b.vec_tables(root, 1):
            code = b.scalar(oc, 3, "i", 0)
            dep = b.scalar(oc, 0, "b", 0)
            codes.append(max(code, dep))
        subgraphs = b.vec_tables(root, 2)
        if len(subgraphs) != 1:
            raise ModelError("model has %d subgraphs; only single-subgraph models are supported" % len(subgraphs))
        bufs = [b.bytes_(bt, 0) for bt in b.vec_tables(root, 4)]
        sg = subgraphs[0]
        self.tensors = []
        for t in b.vec_tables(sg, 0):
            shape = b.vec_i32(t, 0)
            ttype = b.scalar(t, 1, "B", 0)
            bi = b.scalar(t, 2, "i", 0)
            if bi < 0 or bi >= max(1, len(bufs)):
                raise ModelError("malformed model: tensor refers to buffer %d of %d" % (bi, len(bufs)))
            try:
                name = bytes(b.bytes_(t, 3)).decode() if b.field(t, 3) is not None else ""
            except UnicodeError:
                raise ModelError("malformed model: tensor %d has a name that is not UTF-8" % len(self.tensors))
            n = 1
            for dim in shape:
                if dim <= 0 or dim > MAX_DIM:
                    raise ModelError("tensor %r: dimension %d out of range in shape %r" % (name, dim, shape))
                n *= dim
            if n > MAX_VALUES:
                raise ModelError("tensor %r: %d values, more than the %d the micro interpreter takes" % (name, n, MAX_VALUES))
            q = b.sub(t, 4)
            scale, zp, qdim = [], [], 0
            if q is not None:
                scale = b.vec_fmt(q, 2, "f", 4)
                for v in scale:
                    # NaN fails this too; past 1e36 a dequantized int8 overflows float32
                    if not 0.0 < v <= 1e36:
                        raise ModelError("tensor %r: quantization scale %r is not a positive number up to 1e36" % (name, v))
                zp = b.vec_fmt(q, 3, "q", 8)
                qdim = b.scalar(q, 6, "i", 0)
            data_ = bufs[bi] if bufs else b""
            self.tensors.append(Tensor(shape, ttype, data_, scale, zp, qdim, name))
        self.inputs = b.vec_i32(sg, 1)
        self.outputs = b.vec_i32(sg, 2)
        self.operators = []
        for k, op in enumerate(b.vec_tables(sg, 3)):
            idx = b.scalar(op, 0, "i", 0)
            if idx < 0 or idx >= len(codes):
                raise ModelError("malformed model: operator %d uses opcode %d of %d" % (k, idx, len(codes)))
            try:
                name = ops.name(codes[idx])
            except ModelError as e:
                raise ModelError("operator %d: %s" % (k, e))
            ins = b.vec_i32(op, 1)
            outs = b.vec_i32(op, 2)
            for ti in ins + outs:
                if ti >= len(self.tensors) or ti < -1:
                    raise ModelError("malformed model: operator %d (%s) uses tensor %d of %d" % (k, name, ti, len(self.tensors)))
            opts = ops.kernel(name).options(b, b.sub(op, 4), name)
            self.operators.append((name, ins, outs, opts))
        self._check_graph()

    def _check_graph(self):
        """Refuse at load what would run on nonsense: inputs and outputs
        that are missing or out of range, an operator reading a tensor
        before any operator writes it, a tensor written twice, and a
        constant (a weight, a bias) without its buffer."""
        nt = len(self.tensors)
        for what, idx in (("inputs", self.inputs), ("outputs", self.outputs)):
            if not idx:
                raise ModelError("malformed model: the subgraph lists no %s" % what)
            for ti in idx:
                if not 0 <= ti < nt:
                    raise ModelError("malformed model: subgraph %s name tensor %d of %d" % (what, ti, nt))
        written = {}
        for ti in self.inputs:
            written[ti] = "a model input"
        for k, (name, ins, outs, _o) in enumerate(self.operators):
            for ti in ins:
                if ti < 0 or ti in written or self.tensors[ti].data:
                    continue
                later = [j for j in range(k + 1, len(self.operators)) if ti in self.operators[j][2]]
                t = self.tensors[ti]
                if later:
                    raise ModelError(
                        "operator %d (%s) reads tensor %d %r before operator %d (%s) writes it: operators out of order"
                        % (k, name, ti, t.name, later[0], self.operators[later[0]][0])
                    )
                raise ModelError(
                    "operator %d (%s) reads tensor %d %r, which has no buffer and which no operator writes: a constant's data is missing"
                    % (k, name, ti, t.name)
                )
            for ti in outs:
                if ti < 0:
                    raise ModelError("malformed model: operator %d (%s) writes tensor %d" % (k, name, ti))
                if ti in written or self.tensors[ti].data:
                    by = written.get(ti, "a constant")
                    raise ModelError("operator %d (%s) writes tensor %d %r, which is already %s" % (k, name, ti, self.tensors[ti].name, by))
                written[ti] = "written by operator %d (%s)" % (k, name)
        for ti in self.outputs:
            if ti not in written:
                raise ModelError("model output tensor %d %r is written by no operator" % (ti, self.tensors[ti].name))


def load(path):
    with open(path, "rb") as f:
        return Model(f.read())
