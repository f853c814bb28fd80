"""The interpreter's operators are registered in one table: every operator
the model reader names has a row (and nothing else runs)."""

from firmware.nn.interp import OPERATORS, Interpreter
from firmware.nn.model import OPS


def test_every_named_operator_is_registered_once():
    assert sorted(OPS.values()) == sorted(OPERATORS)
    for name, (prepare, run) in OPERATORS.items():
        assert callable(getattr(Interpreter, prepare)), name
        assert callable(run), name
