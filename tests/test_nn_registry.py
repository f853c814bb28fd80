"""The interpreter's operators are registered once, in
firmware.nn.ops.OPERATORS: every row resolves to a kernel module, every
kernel module has a row, and the model reader accepts exactly the table's
builtin codes (any other is refused at load, by its code)."""

from pathlib import Path

import pytest

from firmware.nn import ops
from firmware.nn.model import Model
from hal.errors import ModelError

s = pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="pip install tflite-micro (the test extra)").schema_fb


@pytest.mark.parametrize("code", sorted(ops.OPERATORS))
def test_every_row_resolves_to_a_kernel(code):
    name, module = ops.OPERATORS[code]
    kern = ops.kernel(name)
    assert kern.__name__ == "firmware.nn.ops." + module
    assert callable(kern.options) and callable(kern.prepare), name
    # the builtin code is TFLite's own for that name
    assert getattr(s.BuiltinOperator, name) == code


def test_every_kernel_module_is_in_the_table():
    here = Path(ops.__file__).parent
    modules = {p.stem for p in here.glob("*.py")} - {"__init__"}
    assert modules == {m for _n, m in ops.OPERATORS.values()}
    assert len({n for n, _m in ops.OPERATORS.values()}) == len(ops.OPERATORS), "a name registered twice"


def _one_op_model(code):
    from edgefw.build.tflite_build import single_op_model

    tensors = [
        {"shape": [1, 4], "type": "int8", "name": "x", "scales": [0.1], "zps": [0]},
        {"shape": [1, 4], "type": "int8", "name": "y", "scales": [0.1], "zps": [0]},
    ]
    return single_op_model(code, tensors, [0], [1])


def test_the_model_reader_accepts_exactly_the_table():
    accepted = set()
    for code in range(0, 210):
        data = _one_op_model(code)
        try:
            m = Model(data)
        except ModelError as e:
            assert "builtin code %d is not supported" % code in str(e), (code, str(e))
            for name in ops.names():
                assert name in str(e)
            continue
        accepted.add(code)
        assert m.operators[0][0] == ops.OPERATORS[code][0]
    assert accepted == set(ops.OPERATORS)


def test_an_unknown_name_is_an_error_naming_it():
    with pytest.raises(ModelError, match="operator SQUARED_DIFFERENCE is not supported.*FULLY_CONNECTED"):
        ops.kernel("SQUARED_DIFFERENCE")
