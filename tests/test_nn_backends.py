"""The inference backends are one table (firmware.nn.backend.BACKENDS):
every row resolves to a class with the micro interpreter's interface, the
``edgefw infer`` choices are the table's names, and an unknown name is
refused with the list of known ones."""

import pytest

from firmware.nn import backend
from hal.errors import BackendUnavailable
from tests.conftest import ROOT

DENSE = (ROOT / "firmware" / "models" / "vib_dense.tflite").read_bytes()


def test_auto_order_and_micropython_names_are_rows():
    assert set(backend.AUTO_ORDER) <= set(backend.BACKENDS)
    assert set(backend.ON_MICROPYTHON) <= set(backend.BACKENDS)
    assert "micro" in backend.AUTO_ORDER and backend.BACKENDS["micro"][1] is None


@pytest.mark.parametrize("name", sorted(backend.BACKENDS))
def test_every_row_resolves_to_a_backend_with_the_interface(name):
    try:
        cls = backend.resolve(name)
    except ImportError as e:
        # a row whose package is missing here must say how to install it
        assert backend.install_hint(name).startswith("pip install"), (name, e)
        pytest.skip("%s not installed: %s" % (name, e))
    try:
        it = backend.open_model(DENSE, name)
    except BackendUnavailable as e:
        assert backend.install_hint(name) in str(e)
        pytest.skip(str(e))
    assert isinstance(it, cls) and it.backend == name
    m = it.model
    assert m.tensors[m.inputs[0]].shape == [1, 6] and m.tensors[m.outputs[0]].zero_point == [-110]
    for i in range(len(it.input(0))):
        it.input(0)[i] = 0
    it.invoke()
    assert len(it.output(0)) == 1
    assert 1 <= sum(1 for _ in it.steps()) <= len(m.tensors)


def test_the_cli_offers_exactly_the_table():
    from edgefw import infer

    assert set(infer.BACKENDS) == set(backend.BACKENDS)
    assert infer.AUTO_ORDER == backend.AUTO_ORDER


def test_an_unknown_name_lists_the_known_ones():
    with pytest.raises(BackendUnavailable) as e:
        backend.open_model(DENSE, "tensorrt")
    for name in backend.BACKENDS:
        assert name in str(e.value)
    assert "'tensorrt' is unknown" in str(e.value)


def test_the_same_output_from_every_installed_backend():
    """The table's rows are real runtimes: all that are installed agree on
    a zero input to one output step."""
    outs = {}
    for name in backend.BACKENDS:
        try:
            it = backend.open_model(DENSE, name)
        except BackendUnavailable:
            continue
        it.invoke()
        outs[name] = int(it.output(0)[0])
    assert "micro" in outs and len(outs) >= 2, outs
    assert max(outs.values()) - min(outs.values()) <= 1, outs
