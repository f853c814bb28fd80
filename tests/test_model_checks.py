"""Models the loader must refuse, by name, rather than run on nonsense:
subgraph inputs and outputs missing or out of range, operators out of
order, a constant without its buffer, a tensor written twice."""

import pytest

from firmware.nn.interp import Interpreter
from hal.errors import ModelError
from tests.conftest import ROOT

s = pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="pip install tflite-micro (the test extra)").schema_fb


def _edited(name, edit):
    """A shipped model, unpacked, changed by ``edit(model)``, packed."""
    import flatbuffers

    m = s.ModelT.InitFromPackedBuf((ROOT / "firmware" / "models" / (name + ".tflite")).read_bytes(), 0)
    edit(m)
    b = flatbuffers.Builder(4096)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _refused(data, *words):
    with pytest.raises(ModelError) as e:
        Interpreter(data)
    for w in words:
        assert w in str(e.value), str(e.value)
    return str(e.value)


def _set(attr, value):
    def edit(m):
        setattr(m.subgraphs[0], attr, value)

    return edit


def test_the_shipped_models_load():
    for name in ("vib_dense", "vib_conv1d", "vib_autoencoder"):
        Interpreter((ROOT / "firmware" / "models" / (name + ".tflite")).read_bytes())


@pytest.mark.parametrize("attr", ["inputs", "outputs"])
def test_empty_or_out_of_range_inputs_and_outputs_are_refused(attr):
    _refused(_edited("vib_dense", _set(attr, [])), "lists no " + attr)
    _refused(_edited("vib_dense", _set(attr, [99])), attr, "tensor 99 of 7")
    _refused(_edited("vib_dense", _set(attr, [-1])), attr, "tensor -1 of 7")


def test_operators_out_of_order_are_refused():
    def swap(m):
        ops = m.subgraphs[0].operators
        ops[0], ops[1] = ops[1], ops[0]

    _refused(_edited("vib_dense", swap), "operator 0 (FULLY_CONNECTED) reads tensor", "before operator 1 (FULLY_CONNECTED) writes it", "out of order")


def test_a_constant_without_its_buffer_is_refused():
    def drop_weights(m):
        sg = m.subgraphs[0]
        w = sg.operators[0].inputs[1]
        m.buffers[sg.tensors[w].buffer].data = None

    _refused(_edited("vib_dense", drop_weights), "operator 0 (FULLY_CONNECTED) reads tensor", "no buffer", "constant")

    def drop_bias(m):
        sg = m.subgraphs[0]
        bias = sg.operators[2].inputs[2]
        m.buffers[sg.tensors[bias].buffer].data = None

    # an int32 bias without data once ran as zeros
    _refused(_edited("vib_conv1d", drop_bias), "operator 2 (FULLY_CONNECTED) reads tensor 6 'b'", "no buffer")


def test_an_output_no_operator_writes_and_a_tensor_written_twice_are_refused():
    def output_is_a_weight(m):
        m.subgraphs[0].outputs = [m.subgraphs[0].operators[0].inputs[1]]

    _refused(_edited("vib_dense", output_is_a_weight), "written by no operator")

    def write_twice(m):
        ops = m.subgraphs[0].operators
        ops[1].outputs = list(ops[0].outputs)

    _refused(_edited("vib_dense", write_twice), "operator 1 (FULLY_CONNECTED) writes tensor", "already written by operator 0")


@pytest.mark.parametrize("scale", [0.0, -0.5, float("nan"), float("inf"), 3e38])
def test_a_scale_that_is_not_a_positive_finite_number_is_refused(scale):
    def bad_scale(m):
        m.subgraphs[0].tensors[m.subgraphs[0].outputs[0]].quantization.scale = [scale]

    _refused(_edited("vib_dense", bad_scale), "tensor 'out': quantization scale", "positive number up to 1e36")


@pytest.mark.parametrize("vectorise", [False, True])
def test_quantize_saturates_huge_and_nan_inputs(vectorise):
    import array

    from firmware.nn.interp import Interpreter as Ours

    data = (ROOT / "tests" / "data" / "tf" / "tf_float_io.tflite").read_bytes()
    it = Ours(data, vectorise=vectorise)
    ok = Ours(data, vectorise=vectorise)
    # 3e38 / scale overflows float32; NaN has no integer: -128 and 127 as
    # the saturated inputs -1e6 and 1e6 give
    for x, same in ((3e38, 1e6), (-3e38, -1e6), (float("inf"), 1e6), (float("nan"), -1e6)):
        it.input(0)[:] = array.array("f", [x] * 6)
        it.invoke()
        ok.input(0)[:] = array.array("f", [same] * 6)
        ok.invoke()
        assert bytes(it.output(0)) == bytes(ok.output(0)), x
